//! What each process needs from its settings, as one list of problems: checked at every start
//! (fatal problems stop it, the rest are logged) and alone by `audiolab <process>
//! --check-config`, which fails on any problem — so a deployment's blueprint and the binary
//! cannot drift apart unnoticed.

use audiolab_config::Settings;
use audiolab_store::Backend;

/// The processes the binary runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Process {
    Serve,
    Api,
    Worker,
    Node,
    Migrate,
    Openapi,
}

impl Process {
    /// Whether it is one of the cloud mode's processes, which run on several machines sharing
    /// the database, Redis and the bucket.
    fn is_split(self) -> bool {
        matches!(self, Self::Api | Self::Worker | Self::Node)
    }
}

/// How bad a problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// The process cannot start with it.
    Fatal,
    /// The process starts (tests and a single machine run so), but a deployment across
    /// machines would not work: `--check-config` refuses it.
    Deployment,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub severity: Severity,
    /// Names the setting and says what it needs.
    pub message: String,
}

impl Problem {
    pub fn fatal(message: impl Into<String>) -> Self {
        Self { severity: Severity::Fatal, message: message.into() }
    }

    pub fn deployment(message: impl Into<String>) -> Self {
        Self { severity: Severity::Deployment, message: message.into() }
    }
}

/// What `process` cannot live with in `settings`. `auth_enabled` is the settings' verdict for
/// this process.
pub fn problems(process: Process, settings: &Settings, auth_enabled: bool) -> Vec<Problem> {
    let mut problems = Vec::new();
    if auth_enabled && settings.internal_secret.is_none() && matches!(process, Process::Api | Process::Node) {
        problems.push(Problem::fatal(
            "internal_secret: must be set (AUDIOLAB_INTERNAL_SECRET, the same on every api and node process) when \
             auth is on, so only API processes reach the nodes' internal routes",
        ));
    }
    if let Err(message) = storage_location(settings.storage_url.as_deref()) {
        problems.push(Problem::fatal(message));
    }
    if process.is_split() {
        if Backend::of_url(&settings.database_url()) != Some(Backend::Postgres) {
            problems.push(Problem::deployment(
                "database_url: the api, worker and node processes share one PostgreSQL database \
                 (DATABASE_URL=postgres://…)",
            ));
        }
        if settings.redis_url.is_none() {
            problems.push(Problem::deployment(
                "redis_url: the api, worker and node processes share jobs and events through Redis (REDIS_URL=redis://…)",
            ));
        }
        let unreachable = settings.host.is_loopback()
            && (process == Process::Api || (process == Process::Node && settings.node_url.is_none()));
        if unreachable {
            problems.push(Problem::deployment(
                "host: bound to a loopback address, no other machine (a load balancer, an api) reaches this process: \
                 bind every interface (--host 0.0.0.0 or AUDIOLAB_HOST)",
            ));
        }
        if !matches!(storage_location(settings.storage_url.as_deref()), Ok(StorageLocation::Bucket { .. })) {
            problems.push(Problem::deployment(
                "storage_url: processes on different machines share audio through an S3-compatible bucket \
                 (AUDIOLAB_STORAGE_URL=s3://bucket/prefix)",
            ));
        }
    }
    problems
}

/// At a start: fatal problems stop it (each named), the others are logged.
pub fn require(process: Process, settings: &Settings, auth_enabled: bool) -> anyhow::Result<()> {
    let (fatal, other): (Vec<Problem>, Vec<Problem>) =
        problems(process, settings, auth_enabled).into_iter().partition(|p| p.severity == Severity::Fatal);
    for problem in other {
        tracing::warn!(problem = %problem.message, "this process runs, but a deployment across machines would not");
    }
    if !fatal.is_empty() {
        let messages: Vec<String> = fatal.into_iter().map(|p| p.message).collect();
        anyhow::bail!("invalid configuration: {}", messages.join("; "));
    }
    Ok(())
}

/// What `process` would start with, a line per setting that matters to it (secrets redacted).
pub fn summary(process: Process, settings: &Settings, auth_enabled: bool) -> Vec<String> {
    let mut lines = vec![format!("database: {}", redact(&settings.database_url()))];
    if matches!(process, Process::Migrate | Process::Openapi) {
        return lines;
    }
    lines.push(format!(
        "redis: {}",
        settings.redis_url.as_deref().map_or("none (in-process queue and events)".into(), redact)
    ));
    lines.push(format!(
        "storage: {}",
        match storage_location(settings.storage_url.as_deref()) {
            Ok(StorageLocation::Bucket { bucket, prefix }) => format!("s3://{bucket}/{prefix}"),
            Ok(StorageLocation::Directory(path)) => {
                path.unwrap_or_else(|| settings.data_dir.join("audio").display().to_string())
            }
            Err(message) => message,
        }
    ));
    if process != Process::Worker {
        lines.push(format!("listens on: {}", settings.bind_address()));
        lines.push(format!("auth: {}", if auth_enabled { "on" } else { "off" }));
    }
    if process == Process::Node {
        lines.push(match &settings.node_url {
            Some(url) => format!("announces: {url}"),
            None if settings.host.is_unspecified() => {
                "announces: this instance's address on its route to Redis, found at start".into()
            }
            None => format!("announces: http://{}", settings.bind_address()),
        });
    }
    lines
}

/// The URL without its password, for printing.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// This machine's address on its route to the server of `url` (`redis://`, `postgres://`):
/// what another machine on that network reaches it at. Resolves the name; sends nothing.
pub fn route_address(url: &str) -> Option<std::net::IpAddr> {
    use std::net::{ToSocketAddrs, UdpSocket};
    let (scheme, rest) = url.split_once("://")?;
    let default_port = match scheme {
        "redis" | "rediss" => 6379,
        "postgres" | "postgresql" => 5432,
        _ => return None,
    };
    let authority = rest.split(['/', '?']).next()?;
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    let (host, port) = match host_port.rsplit_once(':') {
        Some((host, port)) if !port.contains(']') => (host, port.parse().ok()?),
        _ => (host_port, default_port),
    };
    let target = (host.trim_matches(['[', ']']), port).to_socket_addrs().ok()?.next()?;
    let socket = UdpSocket::bind(if target.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" }).ok()?;
    socket.connect(target).ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_unspecified()).then_some(ip)
}

/// A bucket's credentials, given which variables are set (`has`): without keys (or a role the
/// platform provides) the client asks the machine's metadata service, which a platform such
/// as Render does not have, and every request would fail at run time.
pub fn bucket_credentials(has: impl Fn(&str) -> bool) -> Option<Problem> {
    let keys = has("AWS_ACCESS_KEY_ID") && has("AWS_SECRET_ACCESS_KEY");
    let role = has("AWS_WEB_IDENTITY_TOKEN_FILE") || has("AWS_CONTAINER_CREDENTIALS_FULL_URI");
    (!keys && !role).then(|| {
        Problem::deployment("storage_url: the bucket needs credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
    })
}

/// `AUDIOLAB_*` variables that are no setting (a misspelt or renamed one is otherwise
/// silently ignored), each with the setting it most likely meant.
pub fn unknown_variables<'a>(names: impl IntoIterator<Item = &'a str>) -> Vec<Problem> {
    let known = setting_keys();
    names
        .into_iter()
        .filter_map(|name| name.strip_prefix("AUDIOLAB_").map(|key| (name, key.to_ascii_lowercase())))
        .filter(|(name, key)| {
            !known.contains(key)
                && !audiolab_config::NOT_SETTINGS.iter().any(|n| name.strip_prefix("AUDIOLAB_") == Some(*n))
        })
        .map(|(name, key)| {
            let closest = known.iter().min_by_key(|k| edit_distance(k, &key)).expect("settings have keys");
            Problem::deployment(format!(
                "{name} is not a setting: it would be ignored (did you mean AUDIOLAB_{}?)",
                closest.to_ascii_uppercase()
            ))
        })
        .collect()
}

/// Every setting's key, from the settings struct itself.
fn setting_keys() -> Vec<String> {
    match serde_json::to_value(Settings::default()) {
        Ok(serde_json::Value::Object(fields)) => fields.keys().cloned().collect(),
        _ => unreachable!("the settings serialise as a map"),
    }
}

/// Levenshtein distance, for suggesting the setting a misspelt variable meant.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (diagonal + usize::from(ca != *cb)).min(row[j] + 1).min(above + 1);
            diagonal = above;
        }
    }
    row[b.len()]
}

/// Where audio objects live, from the `storage_url` setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageLocation {
    /// A local directory (the default: `data_dir/audio`).
    Directory(Option<String>),
    /// `s3://bucket/prefix`.
    Bucket { bucket: String, prefix: String },
}

/// Reads `storage_url`. Errors: the message names the setting.
pub fn storage_location(url: Option<&str>) -> Result<StorageLocation, String> {
    match url {
        None => Ok(StorageLocation::Directory(None)),
        Some(url) if url.starts_with("s3://") => {
            let rest = &url["s3://".len()..];
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(format!("storage_url: s3://bucket/prefix needs a bucket, got {url}"));
            }
            Ok(StorageLocation::Bucket { bucket: bucket.to_owned(), prefix: prefix.trim_matches('/').to_owned() })
        }
        Some(url) if url.contains("://") => {
            Err(format!("storage_url: a local directory or s3://bucket/prefix, got {url}"))
        }
        Some(path) => Ok(StorageLocation::Directory(Some(path.to_owned()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cloud() -> Settings {
        Settings {
            database_url: Some("postgres://db/audiolab".into()),
            redis_url: Some("redis://kv:6379".into()),
            storage_url: Some("s3://audio/prod".into()),
            internal_secret: Some(audiolab_config::Secret("0123456789abcdef0123".into())),
            host: [0, 0, 0, 0].into(),
            ..Settings::default()
        }
    }

    #[test]
    fn a_cloud_process_needs_postgres_redis_a_bucket_and_with_auth_the_secret() {
        for process in [Process::Api, Process::Worker, Process::Node] {
            assert_eq!(problems(process, &cloud(), true), [], "{process:?}");
        }
        let embedded = Settings::default();
        assert_eq!(problems(Process::Serve, &embedded, false), []);
        let api = problems(Process::Api, &embedded, true);
        let named: Vec<&str> = api.iter().map(|p| p.message.split(':').next().unwrap()).collect();
        assert_eq!(named, ["internal_secret", "database_url", "redis_url", "host", "storage_url"]);
        assert_eq!(api[0].severity, Severity::Fatal);
        assert!(api[1..].iter().all(|p| p.severity == Severity::Deployment));
        // The worker never serves the nodes' internal routes.
        let worker = problems(Process::Worker, &Settings { internal_secret: None, ..cloud() }, true);
        assert_eq!(worker, []);
    }

    #[test]
    fn storage_urls_are_a_directory_or_a_bucket() {
        assert_eq!(
            storage_location(Some("s3://audio/prod/")),
            Ok(StorageLocation::Bucket { bucket: "audio".into(), prefix: "prod".into() })
        );
        assert_eq!(
            storage_location(Some("s3://audio")),
            Ok(StorageLocation::Bucket { bucket: "audio".into(), prefix: "".into() })
        );
        assert!(storage_location(Some("s3:///prod")).unwrap_err().starts_with("storage_url"));
        assert!(storage_location(Some("gs://audio")).unwrap_err().starts_with("storage_url"));
        assert_eq!(storage_location(Some("/srv/audio")), Ok(StorageLocation::Directory(Some("/srv/audio".into()))));
    }

    #[test]
    fn the_route_to_a_local_server_is_the_loopback_and_passwords_are_never_printed() {
        let loopback = Some(std::net::IpAddr::from([127, 0, 0, 1]));
        assert_eq!(route_address("redis://127.0.0.1:6379"), loopback);
        assert_eq!(route_address("postgres://user:secret@127.0.0.1/audiolab?sslmode=disable"), loopback);
        assert_eq!(route_address("sqlite://./audiolab.db"), None);
        assert_eq!(redact("postgres://user:secret@db/audiolab"), "postgres://user:***@db/audiolab");
        let lines = summary(Process::Node, &Settings { host: [0, 0, 0, 0].into(), ..cloud() }, true);
        assert!(lines.iter().any(|l| l.starts_with("announces: this instance's address")), "{lines:?}");
        assert!(lines.contains(&"storage: s3://audio/prod".to_owned()), "{lines:?}");
    }

    #[test]
    fn a_bucket_needs_keys_or_a_role() {
        let set = |names: &'static [&'static str]| move |name: &str| names.contains(&name);
        assert_eq!(bucket_credentials(set(&["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"])), None);
        assert_eq!(bucket_credentials(set(&["AWS_WEB_IDENTITY_TOKEN_FILE"])), None);
        let missing = bucket_credentials(set(&["AWS_ACCESS_KEY_ID"])).expect("a problem");
        assert_eq!(missing.severity, Severity::Deployment);
        assert!(missing.message.starts_with("storage_url"), "{missing:?}");
    }

    #[test]
    fn a_misspelt_variable_is_named_with_the_setting_it_meant() {
        let problems = unknown_variables([
            "AUDIOLAB_INTERNAL_SECRT",
            "AUDIOLAB_PORT",
            "AUDIOLAB_CONFIG",
            "AUDIOLAB_TEST_POSTGRES_URL",
            "PATH",
        ]);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].message.contains("did you mean AUDIOLAB_INTERNAL_SECRET?"), "{problems:?}");
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
