//! Command-line interface: one binary, a subcommand per role.

use clap::{Parser, Subcommand};
use std::net::IpAddr;
use std::path::PathBuf;

/// AudioLab: a multi-track recording and overdubbing engine driven over HTTP and WebSocket.
#[derive(Debug, Parser)]
#[command(name = "audiolab", version)]
pub struct Cli {
    /// TOML settings file (keys as in the README's configuration table).
    #[arg(long, global = true, env = "AUDIOLAB_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to bind (overrides the `host` setting).
    #[arg(long, global = true)]
    pub host: Option<IpAddr>,
    /// Port to bind, 0 for any free port (overrides the `port` setting).
    #[arg(long, global = true)]
    pub port: Option<u16>,
    /// Directory of the embedded database and audio files (overrides `data_dir`).
    #[arg(long, global = true)]
    pub data_dir: Option<PathBuf>,
    /// Check the settings this process would start with, print what it would use, and exit:
    /// non-zero, naming each problem, when a deployment could not run on them.
    #[arg(long, global = true)]
    pub check_config: bool,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Everything in one process: API, worker and audio node (the default).
    Serve,
    /// The REST API only; engines run in `node` processes.
    Api,
    /// The background job worker.
    Worker,
    /// The real-time audio node.
    Node,
    /// Apply database migrations and exit.
    Migrate,
    /// Write the OpenAPI document (REST) and the AsyncAPI document (WebSocket) and exit.
    Openapi {
        /// Where to write the OpenAPI document.
        #[arg(long, default_value = "openapi/openapi.json")]
        output: PathBuf,
        /// Where to write the AsyncAPI document.
        #[arg(long, default_value = "openapi/asyncapi.json")]
        asyncapi: PathBuf,
    },
}

impl Command {
    /// The process this subcommand runs.
    pub fn process(&self) -> crate::preflight::Process {
        use crate::preflight::Process;
        match self {
            Self::Serve => Process::Serve,
            Self::Api => Process::Api,
            Self::Worker => Process::Worker,
            Self::Node => Process::Node,
            Self::Migrate => Process::Migrate,
            Self::Openapi { .. } => Process::Openapi,
        }
    }
}

impl Cli {
    /// The subcommand, `serve` when none is given.
    pub fn command(&self) -> Command {
        self.command.clone().unwrap_or(Command::Serve)
    }
}

use audiolab_config::{ConfigError, Settings};

impl Cli {
    /// The settings for this run: files and environment, then these flags on top.
    ///
    /// Errors: [`ConfigError`] naming the bad setting.
    pub fn settings(&self) -> Result<Settings, ConfigError> {
        let mut figment = Settings::figment(self.config.as_deref());
        if let Some(host) = self.host {
            figment = figment.merge(("host", host));
        }
        if let Some(port) = self.port {
            figment = figment.merge(("port", port));
        }
        if let Some(dir) = &self.data_dir {
            figment = figment.merge(("data_dir", dir));
        }
        Settings::from_figment(figment)
    }
}
