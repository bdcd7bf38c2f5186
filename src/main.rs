//! `audiolab`: parses the command line and settings, then runs the chosen role until a signal.

use audiolab::cli::{Cli, Command};
use audiolab::preflight::{self, Process, StorageLocation};
use audiolab::startup::{self, Application, Role};
use audiolab::telemetry;
use clap::Parser;
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match cli.settings() {
        Ok(settings) => settings,
        Err(err) => {
            eprintln!("audiolab: {err}");
            return ExitCode::from(2);
        }
    };
    if cli.check_config {
        return check_config(cli.command().process(), &settings);
    }
    telemetry::init(settings.log_format);
    match run(cli.command(), settings).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("audiolab: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, settings: audiolab_config::Settings) -> anyhow::Result<()> {
    let role = match command {
        Command::Serve => Role::Serve,
        Command::Api => Role::Api,
        Command::Node => Role::Node,
        Command::Worker => {
            preflight::require(Process::Worker, &settings, false)?;
            let (jobs, queue) = startup::open_worker(&settings).await?;
            println!("AudioLab (Worker) taking jobs from {queue:?}");
            let shutdown = tokio_util::sync::CancellationToken::new();
            let signal = startup::shutdown_signal();
            let mut worker = tokio::spawn(audiolab_worker::run(jobs, queue, shutdown.clone()));
            tokio::select! {
                result = &mut worker => return Ok(result?),
                () = signal => shutdown.cancel(),
            }
            // The worker lets go of the queue (and of a job it holds, which goes back on it)
            // before the process ends, rather than being dropped halfway.
            match tokio::time::timeout(std::time::Duration::from_secs(10), worker).await {
                Ok(result) => result?,
                Err(_) => tracing::warn!("the worker did not stop within 10 s"),
            }
            return Ok(());
        }
        Command::Migrate => {
            startup::open_store(&settings).await?;
            println!("audiolab: migrations applied to {}", preflight::redact(&settings.database_url()));
            return Ok(());
        }
        Command::Openapi { output, asyncapi } => {
            let documents =
                [(output, audiolab_api::openapi_json()), (asyncapi, audiolab_transport::protocol::asyncapi_json())];
            for (path, document) in documents {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir)?;
                }
                std::fs::write(&path, document)?;
                println!("audiolab: wrote {}", path.display());
            }
            return Ok(());
        }
    };
    let signal = startup::shutdown_signal();
    let app = Application::start(settings, role).await?;
    println!("AudioLab ({role:?}) listening on http://{}", app.address());
    let shutdown = app.shutdown_token();
    tokio::spawn(async move {
        signal.await;
        shutdown.cancel();
    });
    app.wait().await;
    Ok(())
}

/// `--check-config`: what the process would start with, and every problem a deployment
/// would meet (exit 2 when there is one).
fn check_config(process: Process, settings: &audiolab_config::Settings) -> ExitCode {
    let auth = settings.auth_enabled(process == Process::Serve);
    let mut problems = preflight::problems(process, settings, auth);
    let names: Vec<String> = std::env::vars_os().filter_map(|(name, _)| name.into_string().ok()).collect();
    problems.extend(preflight::unknown_variables(names.iter().map(String::as_str)));
    if let Ok(StorageLocation::Bucket { bucket, prefix }) = preflight::storage_location(settings.storage_url.as_deref())
    {
        if let Err(error) = startup::bucket_store(&bucket, &prefix) {
            problems.push(preflight::Problem::fatal(format!("{error:#}")));
        }
        problems.extend(preflight::bucket_credentials(|name| std::env::var_os(name).is_some_and(|v| !v.is_empty())));
    }
    let name = format!("{process:?}").to_lowercase();
    for line in preflight::summary(process, settings, auth) {
        println!("audiolab {name}: {line}");
    }
    if problems.is_empty() {
        println!("audiolab {name}: the configuration is complete");
        return ExitCode::SUCCESS;
    }
    for problem in &problems {
        eprintln!("audiolab {name}: {}", problem.message);
    }
    ExitCode::from(2)
}
