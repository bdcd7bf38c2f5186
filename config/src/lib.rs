//! AudioLab's settings: one typed struct for every process, from defaults, an optional TOML
//! file, the platform's conventional variables (`DATABASE_URL`, `REDIS_URL`, `PORT`) and
//! `AUDIOLAB_*` variables, in rising precedence. A bad value fails at start, naming the setting.

mod environment;

pub use environment::{AudioCapability, EnvironmentKind, detect_environment};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

/// Every setting of every AudioLab process. Field names are the keys of the TOML file and,
/// upper-cased with an `AUDIOLAB_` prefix, the environment variables.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    /// Address the HTTP server binds.
    pub host: IpAddr,
    /// Port the HTTP server binds; 0 picks a free one.
    pub port: u16,
    /// Where the embedded default keeps its SQLite database, job queue and audio files.
    pub data_dir: PathBuf,
    /// `postgres://…` or `sqlite:…`; defaults to a SQLite file in `data_dir`.
    pub database_url: Option<String>,
    /// `redis://…`: job queue and event bus across processes. Unset in the embedded default.
    pub redis_url: Option<String>,
    /// Where audio objects live: a local directory or `s3://bucket/prefix`; defaults to `data_dir/audio`.
    pub storage_url: Option<String>,
    /// Overrides environment detection: desktop, cloud, container or ci_cd.
    pub environment: Option<EnvironmentKind>,
    /// `text` for people, `json` for log collectors.
    pub log_format: LogFormat,
    /// Largest accepted audio upload, in bytes.
    pub max_upload_bytes: u64,
    /// Largest accepted JSON request body, in bytes.
    pub max_request_bytes: u64,
    /// How an API process reaches this node (`http://host:port`); defaults to the bound
    /// address, with the machine's hostname when bound to all interfaces.
    pub node_url: Option<String>,
    /// Seconds between a node's heartbeats.
    pub node_heartbeat_secs: u64,
    /// Seconds without a heartbeat after which a node's projects move to another node.
    pub node_stale_secs: u64,
    /// Longest mixdown, in seconds of audio; longer ranges are refused before rendering.
    pub max_mixdown_secs: u64,
    /// Seconds a client has to send a request's header once connected.
    pub header_timeout_secs: u64,
    /// Seconds after which a connection (keep-alive or socket) with no traffic is closed;
    /// sockets are pinged well within it.
    pub idle_timeout_secs: u64,
    /// Seconds after which an engine that neither plays nor records, and got no command,
    /// unloads (it reloads where it was on the next command).
    pub engine_idle_secs: u64,
    /// Engines one node keeps loaded at once; unset: sized to the machine's cores.
    pub max_engines: Option<usize>,
    /// Name of the deployment's job queue, and prefix of its Redis keys and channels: the
    /// processes of one deployment share it; two deployments on one Redis must not.
    pub queue_name: String,
    /// Whether requests need a bearer token (§8): `auto` (off for `serve` on a loopback
    /// address, on otherwise), `enabled` or `disabled` (one local user, no tokens).
    pub auth: AuthMode,
    /// The secret API processes present to nodes' internal routes; required by `api` and
    /// `node` when auth is on. Never logged.
    pub internal_secret: Option<Secret>,
    /// Browser origins (`https://studio.example.com`, comma-separated) whose pages may open
    /// the socket besides the server's own; sockets from any other page are refused (403).
    pub allowed_origins: Option<String>,
    /// Accounts one address may register per hour (429 past it).
    pub registrations_per_hour: u32,
}

/// The `auth` setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMode {
    Auto,
    Enabled,
    Disabled,
}

/// A configured secret: read like a string, shown as `***` in logs and debug output.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    Text,
    Json,
}

/// `AUDIOLAB_*` variables that are not settings: the command line's settings file, and the
/// server the test suite uses.
pub const NOT_SETTINGS: &[&str] = &["CONFIG", "TEST_POSTGRES_URL"];

impl Default for Settings {
    fn default() -> Self {
        Self {
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 8080,
            data_dir: PathBuf::from("./audiolab-data"),
            database_url: None,
            redis_url: None,
            storage_url: None,
            environment: None,
            log_format: LogFormat::Text,
            max_upload_bytes: 512 * 1024 * 1024,
            max_request_bytes: 1024 * 1024,
            node_url: None,
            node_heartbeat_secs: 2,
            node_stale_secs: 10,
            max_mixdown_secs: 6 * 3600,
            header_timeout_secs: 10,
            idle_timeout_secs: 120,
            engine_idle_secs: 300,
            max_engines: None,
            queue_name: "audiolab".into(),
            auth: AuthMode::Auto,
            internal_secret: None,
            allowed_origins: None,
            registrations_per_hour: 20,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A value could not be read or has the wrong type; the message names the key and source.
    #[error("invalid configuration: {0}")]
    Invalid(#[from] Box<figment::Error>),
    /// A value parsed but breaks a rule.
    #[error("invalid configuration: {setting}: {message}")]
    Rule { setting: &'static str, message: String },
}

impl Settings {
    /// The layered sources: defaults, then `file` (if given, it must exist), then `DATABASE_URL` /
    /// `REDIS_URL` / `PORT`, then `AUDIOLAB_*`.
    pub fn figment(file: Option<&Path>) -> Figment {
        let mut figment = Figment::from(Serialized::defaults(Settings::default()));
        if let Some(file) = file {
            figment = figment.merge(Toml::file_exact(file));
        }
        figment
            .merge(Env::raw().only(&["DATABASE_URL", "REDIS_URL", "PORT"]))
            .merge(Env::prefixed("AUDIOLAB_").ignore(NOT_SETTINGS))
    }

    /// Reads and checks the settings from `figment`.
    ///
    /// Errors: [`ConfigError`] naming the offending setting.
    pub fn from_figment(figment: Figment) -> Result<Self, ConfigError> {
        let settings: Settings = figment.extract().map_err(Box::new)?;
        settings.check()?;
        Ok(settings)
    }

    fn check(&self) -> Result<(), ConfigError> {
        if let Some(url) = &self.database_url {
            let known = ["postgres://", "postgresql://", "sqlite:"].iter().any(|p| url.starts_with(p));
            if !known {
                return Err(ConfigError::Rule {
                    setting: "database_url",
                    message: "must start with postgres://, postgresql:// or sqlite:".into(),
                });
            }
        }
        if let Some(url) = &self.redis_url
            && !(url.starts_with("redis://") || url.starts_with("rediss://"))
        {
            return Err(ConfigError::Rule {
                setting: "redis_url",
                message: "must start with redis:// or rediss://".into(),
            });
        }
        if self.node_heartbeat_secs == 0 || self.node_stale_secs <= self.node_heartbeat_secs {
            return Err(ConfigError::Rule {
                setting: "node_stale_secs",
                message: "must be longer than node_heartbeat_secs, which must be above zero".into(),
            });
        }
        if self.header_timeout_secs == 0 {
            return Err(ConfigError::Rule { setting: "header_timeout_secs", message: "must be above zero".into() });
        }
        if self.idle_timeout_secs < 30 {
            return Err(ConfigError::Rule {
                setting: "idle_timeout_secs",
                message: "must be at least 30 (sockets are pinged every 15 s)".into(),
            });
        }
        if self.engine_idle_secs == 0 {
            return Err(ConfigError::Rule { setting: "engine_idle_secs", message: "must be above zero".into() });
        }
        if self.max_engines == Some(0) {
            return Err(ConfigError::Rule { setting: "max_engines", message: "must be above zero".into() });
        }
        let name_ok = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
        if self.queue_name.is_empty() || self.queue_name.len() > 64 || !self.queue_name.chars().all(name_ok) {
            return Err(ConfigError::Rule {
                setting: "queue_name",
                message: "must be 1 to 64 letters, digits, '_' or '-'".into(),
            });
        }
        if self.max_upload_bytes == 0 || self.max_request_bytes == 0 {
            return Err(ConfigError::Rule {
                setting: "max_upload_bytes",
                message: "size limits must be above zero".into(),
            });
        }
        if let Some(secret) = &self.internal_secret
            && secret.expose().len() < 16
        {
            return Err(ConfigError::Rule {
                setting: "internal_secret",
                message: "must be at least 16 characters".into(),
            });
        }
        for origin in self.allowed_origins() {
            let scheme_ok = origin.starts_with("http://") || origin.starts_with("https://");
            if !scheme_ok || origin.trim_start_matches("https://").trim_start_matches("http://").contains('/') {
                return Err(ConfigError::Rule {
                    setting: "allowed_origins",
                    message: format!("{origin:?} is not an origin: write scheme://host[:port], comma-separated"),
                });
            }
        }
        if self.registrations_per_hour == 0 {
            return Err(ConfigError::Rule { setting: "registrations_per_hour", message: "must be above zero".into() });
        }
        Ok(())
    }

    /// The browser origins allowed to open sockets besides the server's own.
    pub fn allowed_origins(&self) -> Vec<String> {
        self.allowed_origins
            .as_deref()
            .unwrap_or_default()
            .split(',')
            .map(|o| o.trim().trim_end_matches('/').to_ascii_lowercase())
            .filter(|o| !o.is_empty())
            .collect()
    }

    /// Whether requests need a token, for a process that runs everything in one (`serve`) or not.
    pub fn auth_enabled(&self, serve: bool) -> bool {
        match self.auth {
            AuthMode::Enabled => true,
            AuthMode::Disabled => false,
            AuthMode::Auto => !(serve && self.host.is_loopback()),
        }
    }

    pub fn bind_address(&self) -> SocketAddr {
        SocketAddr::new(self.host, self.port)
    }

    /// The database to use: the configured URL, else the embedded SQLite file.
    pub fn database_url(&self) -> String {
        self.database_url.clone().unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("audiolab.db").display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use figment::Jail;

    #[test]
    fn auth_is_off_only_for_serve_on_a_loopback_address_unless_set() {
        let at = |host: &str, auth| Settings { host: host.parse().unwrap(), auth, ..Settings::default() };
        assert!(!at("127.0.0.1", AuthMode::Auto).auth_enabled(true));
        assert!(!at("::1", AuthMode::Auto).auth_enabled(true));
        assert!(at("0.0.0.0", AuthMode::Auto).auth_enabled(true), "serve on every interface");
        assert!(at("127.0.0.1", AuthMode::Auto).auth_enabled(false), "the api process");
        assert!(at("127.0.0.1", AuthMode::Enabled).auth_enabled(true));
        assert!(!at("0.0.0.0", AuthMode::Disabled).auth_enabled(false));
        Jail::expect_with(|jail| {
            jail.set_env("AUDIOLAB_AUTH", "enabled");
            jail.set_env("AUDIOLAB_INTERNAL_SECRET", "0123456789abcdef");
            let settings = Settings::from_figment(Settings::figment(None)).unwrap();
            assert_eq!(settings.auth, AuthMode::Enabled);
            assert_eq!(format!("{:?}", settings.internal_secret), "Some(***)", "the secret is never printed");
            jail.set_env("AUDIOLAB_INTERNAL_SECRET", "short");
            let err = Settings::from_figment(Settings::figment(None)).unwrap_err().to_string();
            assert!(err.contains("internal_secret"), "{err}");
            jail.set_env("AUDIOLAB_AUTH", "sometimes");
            let err = Settings::from_figment(Settings::figment(None)).unwrap_err().to_string();
            assert!(err.contains("AUTH") && err.contains("`enabled`"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn defaults_run_the_embedded_service_on_localhost_8080() {
        Jail::expect_with(|_| {
            let settings = Settings::from_figment(Settings::figment(None)).unwrap();
            assert_eq!(settings.bind_address().to_string(), "127.0.0.1:8080");
            assert_eq!(settings.database_url(), "sqlite://./audiolab-data/audiolab.db");
            assert_eq!(settings.redis_url, None);
            Ok(())
        });
    }

    #[test]
    fn audiolab_variables_beat_platform_variables_which_beat_the_file() {
        Jail::expect_with(|jail| {
            jail.create_file("audiolab.toml", "port = 9000\ndata_dir = \"/srv/audio\"\nlog_format = \"json\"")?;
            jail.set_env("PORT", "10000");
            jail.set_env("DATABASE_URL", "postgres://db/audiolab");
            let settings = Settings::from_figment(Settings::figment(Some(Path::new("audiolab.toml")))).unwrap();
            assert_eq!(settings.port, 10_000);
            assert_eq!(settings.data_dir, PathBuf::from("/srv/audio"));
            assert_eq!(settings.log_format, LogFormat::Json);
            assert_eq!(settings.database_url(), "postgres://db/audiolab");
            jail.set_env("AUDIOLAB_PORT", "10001");
            jail.set_env("AUDIOLAB_ENVIRONMENT", "cloud");
            let settings = Settings::from_figment(Settings::figment(Some(Path::new("audiolab.toml")))).unwrap();
            assert_eq!(settings.port, 10_001);
            assert_eq!(settings.environment, Some(EnvironmentKind::Cloud));
            Ok(())
        });
    }

    #[test]
    fn a_bad_value_names_the_setting() {
        Jail::expect_with(|jail| {
            jail.set_env("AUDIOLAB_PORT", "eighty");
            let message = Settings::from_figment(Settings::figment(None)).unwrap_err().to_string();
            assert!(message.contains("\"PORT\"") && message.contains("AUDIOLAB_"), "{message}");

            jail.set_env("AUDIOLAB_PORT", "8080");
            jail.set_env("AUDIOLAB_DATABASE_URL", "mysql://x");
            let message = Settings::from_figment(Settings::figment(None)).unwrap_err().to_string();
            assert!(message.contains("database_url"), "{message}");

            jail.set_env("AUDIOLAB_DATABASE_URL", "sqlite::memory:");
            jail.set_env("AUDIOLAB_ENVIRONMENT", "mars");
            let message = Settings::from_figment(Settings::figment(None)).unwrap_err().to_string();
            assert!(message.contains("ENVIRONMENT") && message.contains("mars"), "{message}");

            jail.set_env("AUDIOLAB_ENVIRONMENT", "cloud");
            jail.set_env("AUDIOLAB_QUEUE_NAME", "jobs:*");
            let message = Settings::from_figment(Settings::figment(None)).unwrap_err().to_string();
            assert!(message.contains("queue_name"), "{message}");
            Ok(())
        });
    }

    #[test]
    fn a_missing_config_file_is_an_error() {
        Jail::expect_with(|_| {
            let message =
                Settings::from_figment(Settings::figment(Some(Path::new("nope.toml")))).unwrap_err().to_string();
            assert!(message.contains("nope.toml"), "{message}");
            Ok(())
        });
    }
}
