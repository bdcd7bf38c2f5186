//! Process startup: open the store, start the roles this process plays, serve HTTP, and stop
//! everything cleanly when asked.

use crate::preflight::{self, Process, StorageLocation};
use anyhow::Context;
use audiolab_api::auth::{Gate, identify};
use audiolab_api::{ApiContext, AudioStatus};
use audiolab_config::{AudioCapability, Settings, detect_environment};
use audiolab_domain::job::JobSubmitter;
use audiolab_domain::transport::AudioControl;
use audiolab_media::storage::Storage;
use audiolab_node::Node;
use audiolab_node::cluster::{bus, registry};
use audiolab_store::{Backend, Store};
use audiolab_transport::nodes::RemoteNodes;
use audiolab_worker::events::{self, JobEvents};
use audiolab_worker::jobs::Jobs;
use audiolab_worker::queue::JobQueue;
use poem::listener::{Acceptor, TcpAcceptor};
use poem::{EndpointExt, Route, Server};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The roles that serve HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// API, worker and audio node in one process: the embedded default.
    Serve,
    /// The REST API alone.
    Api,
    /// The audio node alone.
    Node,
}

impl Role {
    pub fn process(self) -> Process {
        match self {
            Self::Serve => Process::Serve,
            Self::Api => Process::Api,
            Self::Node => Process::Node,
        }
    }
}

/// How long in-flight requests may take to finish after shutdown is requested.
const GRACE_PERIOD: Duration = Duration::from_secs(10);

/// A running AudioLab process: its address and the tasks of its roles.
pub struct Application {
    address: SocketAddr,
    shutdown: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

/// Opens the configured database (creating the embedded data directory if it is used) and
/// applies migrations.
pub async fn open_store(settings: &Settings) -> anyhow::Result<Store> {
    let url = settings.database_url();
    if Backend::of_url(&url) == Some(Backend::Sqlite) {
        std::fs::create_dir_all(&settings.data_dir)
            .with_context(|| format!("cannot create data_dir {}", settings.data_dir.display()))?;
    }
    let store = Store::open(&url).await.context("cannot open the database (database_url)")?;
    store.ensure_local_user().await.context("cannot prepare the database")?;
    Ok(store)
}

impl Application {
    /// Starts `role` on the configured address (port 0 picks a free port) and returns once it
    /// accepts connections.
    pub async fn start(settings: Settings, role: Role) -> anyhow::Result<Self> {
        let auth_enabled = settings.auth_enabled(role == Role::Serve);
        let secret = settings.internal_secret.as_ref().map(|s| s.expose().to_owned());
        preflight::require(role.process(), &settings, auth_enabled)?;
        let store = open_store(&settings).await?;
        let store_for_sweep = store.clone();
        let shutdown = CancellationToken::new();
        let mut tasks = Vec::new();
        let listener = tokio::net::TcpListener::bind(settings.bind_address())
            .await
            .with_context(|| format!("cannot listen on {} (host, port)", settings.bind_address()))?;
        let acceptor = crate::connection::GuardedAcceptor::new(
            TcpAcceptor::from_tokio(listener)?,
            Duration::from_secs(settings.header_timeout_secs),
            Duration::from_secs(settings.idle_timeout_secs),
        );
        let address = acceptor
            .local_addr()
            .first()
            .and_then(|addr| addr.as_socket_addr().copied())
            .context("the listener has no address")?;
        let redis = settings.redis_url.as_deref().map(redis::Client::open).transpose().context("redis_url")?;
        let app = match role {
            Role::Serve => {
                let queue = JobQueue::open(&settings).await?;
                let node = Arc::new(
                    Node::new(store.clone(), audio_storage(&settings)?, queue.clone(), engine_limits(&settings))
                        .context("starting the audio node")?,
                );
                let events = match &redis {
                    Some(redis) => {
                        let channel = events::channel(&settings.queue_name);
                        tasks.push(tokio::spawn(bus::follow(redis.clone(), channel, node.clone(), shutdown.clone())));
                        job_events(&settings, redis)
                    }
                    None => node.local_job_events(),
                };
                let jobs = Jobs { store: store.clone(), storage: audio_storage(&settings)?, events: events.clone() };
                tasks.push(tokio::spawn(audiolab_worker::run(jobs, queue.clone(), shutdown.clone())));
                let stale_after = Duration::from_secs(settings.node_stale_secs);
                tasks.push(tokio::spawn(audiolab_node::run(node.clone(), None, stale_after, shutdown.clone())));
                let store_for_gate = store.clone();
                let mut context = api_context(&settings, store, role, node.clone(), Arc::new(queue.clone()), events)?;
                if node.output() == audiolab_node::engine::backend::Output::Hardware {
                    context.audio_status = AudioStatus {
                        capability: AudioCapability::Full,
                        engine: "cpal",
                        has_hardware: true,
                        overdubbing: true,
                    };
                }
                tasks.push(tokio::spawn(context.courier.clone().run(shutdown.clone())));
                let api = audiolab_api::app(context);
                let gate = Gate::new(store_for_gate, auth_enabled);
                Route::new()
                    .at(audiolab_transport::WS_PATH, audiolab_node::ws_endpoint(node, origin_policy(&settings)))
                    .at("/asyncapi.json", audiolab_transport::asyncapi_endpoint())
                    .nest("/", api)
                    .around(move |endpoint, req| identify(endpoint, req, gate.clone()))
                    .around(audiolab_api::edge::secure_headers)
                    .around(audiolab_api::edge::log_request)
                    .boxed()
            }
            Role::Api => {
                if redis.is_none() {
                    tracing::warn!("redis_url is not set: track changes made here will not reach playing engines");
                }
                let stale_after = Duration::from_secs(settings.node_stale_secs);
                let events = redis.as_ref().map_or(JobEvents::Discard, |redis| job_events(&settings, redis));
                let nodes = Arc::new(RemoteNodes::new(store.clone(), redis, stale_after, secret));
                let queue = Arc::new(JobQueue::open(&settings).await?);
                let gate = Gate::new(store.clone(), auth_enabled);
                let context = api_context(&settings, store, role, nodes.clone(), queue, events)?;
                tasks.push(tokio::spawn(context.courier.clone().run(shutdown.clone())));
                let api = audiolab_api::app(context);
                Route::new()
                    .at(
                        audiolab_transport::WS_PATH,
                        audiolab_transport::ws_proxy_endpoint(nodes, origin_policy(&settings)),
                    )
                    .at("/asyncapi.json", audiolab_transport::asyncapi_endpoint())
                    .nest("/", api)
                    .around(move |endpoint, req| identify(endpoint, req, gate.clone()))
                    .around(audiolab_api::edge::secure_headers)
                    .around(audiolab_api::edge::log_request)
                    .boxed()
            }
            Role::Node => {
                let queue = JobQueue::open(&settings).await?;
                let id = uuid::Uuid::now_v7();
                let node = Node::new(store.clone(), audio_storage(&settings)?, queue, engine_limits(&settings))
                    .context("starting the audio node")?;
                let node = Arc::new(node.with_identity(id));
                let stale_after = Duration::from_secs(settings.node_stale_secs);
                tasks.push(tokio::spawn(audiolab_node::run(node.clone(), Some(id), stale_after, shutdown.clone())));
                tasks.push(tokio::spawn(node.courier().run(shutdown.clone())));
                let url = settings.node_url.clone().unwrap_or_else(|| advertised_url(address, &settings));
                let every = Duration::from_secs(settings.node_heartbeat_secs);
                tracing::info!(%url, "announcing the node");
                tasks.push(tokio::spawn(registry::announce(node.clone(), id, url, every, shutdown.clone())));
                match redis {
                    Some(redis) => {
                        let channel = events::channel(&settings.queue_name);
                        tasks.push(tokio::spawn(bus::follow(redis, channel, node.clone(), shutdown.clone())));
                    }
                    None => tracing::warn!("redis_url is not set: takes will not reach engines once finalised"),
                }
                audiolab_node::app(node, secret).map_to_response().boxed()
            }
        };
        if matches!(role, Role::Serve | Role::Api) {
            tasks.push(tokio::spawn(sweep_expired_tokens(store_for_sweep, shutdown.clone())));
        }
        let stop = shutdown.clone();
        tasks.push(tokio::spawn(async move {
            let server = Server::new_with_acceptor(acceptor).run_with_graceful_shutdown(
                app,
                stop.cancelled_owned(),
                Some(GRACE_PERIOD),
            );
            if let Err(err) = server.await {
                tracing::error!(error = %err, "HTTP server failed");
            }
        }));
        tracing::info!(%address, ?role, "listening");
        Ok(Self { address, shutdown, tasks })
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// A handle that stops the application when cancelled.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Waits until every role has stopped (after the shutdown token is cancelled).
    pub async fn wait(self) {
        for task in self.tasks {
            let _ = task.await;
        }
    }

    /// Requests shutdown and waits for it.
    pub async fn stop(self) {
        self.shutdown.cancel();
        self.wait().await;
    }
}

/// The browser origins that may open sockets besides the server's own.
fn origin_policy(settings: &Settings) -> audiolab_transport::gate::OriginPolicy {
    audiolab_transport::gate::OriginPolicy::new(settings.allowed_origins())
}

/// Forgets expired tokens once an hour (they are refused anyway; this keeps the table small).
async fn sweep_expired_tokens(store: Store, shutdown: CancellationToken) {
    let mut every = tokio::time::interval(Duration::from_secs(3600));
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = every.tick() => {}
        }
        match store.delete_expired_tokens(audiolab_domain::now()).await {
            Ok(0) => {}
            Ok(swept) => tracing::info!(swept, "expired tokens forgotten"),
            Err(error) => tracing::warn!(%error, "cannot sweep expired tokens"),
        }
    }
}

/// The URL API processes reach this node at: the bound address; when bound to every
/// interface, this machine's address on its route to the deployment's Redis (or database) —
/// on a platform that runs several instances of a service, that is this instance's own
/// private address, not the service's balanced name — else its hostname.
fn advertised_url(address: SocketAddr, settings: &Settings) -> String {
    if !address.ip().is_unspecified() {
        return format!("http://{address}");
    }
    let toward = settings.redis_url.clone().unwrap_or_else(|| settings.database_url());
    let host = match preflight::route_address(&toward) {
        Some(ip) => SocketAddr::new(ip, address.port()).to_string(),
        None => format!("{}:{}", std::env::var("HOSTNAME").unwrap_or_else(|_| "127.0.0.1".into()), address.port()),
    };
    format!("http://{host}")
}

/// How many engines this process's node keeps, and for how long an unused one stays loaded.
fn engine_limits(settings: &Settings) -> audiolab_node::node::EngineLimits {
    audiolab_node::node::EngineLimits {
        idle_after: Duration::from_secs(settings.engine_idle_secs),
        max_engines: settings.max_engines.unwrap_or_else(audiolab_node::node::EngineLimits::machine_max_engines),
    }
}

/// Where audio objects live: a local directory, or an S3-compatible bucket (`s3://bucket/prefix`,
/// credentials and endpoint from the standard `AWS_*` variables) with `data_dir/audio` as this
/// process's working copy.
fn audio_storage(settings: &Settings) -> anyhow::Result<Storage> {
    let local = settings.data_dir.join("audio");
    match preflight::storage_location(settings.storage_url.as_deref()).map_err(anyhow::Error::msg)? {
        StorageLocation::Bucket { bucket, prefix } => Ok(Storage::mirrored(local, bucket_store(&bucket, &prefix)?)),
        StorageLocation::Directory(Some(path)) => Ok(Storage::new(path)),
        StorageLocation::Directory(None) => Ok(Storage::new(local)),
    }
}

/// The S3-compatible bucket (credentials and endpoint from the standard `AWS_*` variables),
/// under `prefix`. Builds the client only: nothing is sent.
pub fn bucket_store(bucket: &str, prefix: &str) -> anyhow::Result<Arc<dyn object_store::ObjectStore>> {
    let s3 = object_store::aws::AmazonS3Builder::from_env()
        .with_bucket_name(bucket)
        .build()
        .with_context(|| format!("storage_url s3://{bucket}/{prefix}: cannot use the bucket (AWS_* variables)"))?;
    Ok(match prefix {
        "" => Arc::new(s3),
        prefix => Arc::new(object_store::prefix::PrefixStore::new(s3, prefix)),
    })
}

fn api_context(
    settings: &Settings,
    store: Store,
    role: Role,
    audio: Arc<dyn AudioControl>,
    jobs: Arc<dyn JobSubmitter>,
    job_events: JobEvents,
) -> anyhow::Result<ApiContext> {
    let environment = detect_environment(
        settings.environment,
        |name| std::env::var(name).ok(),
        std::path::Path::new("/.dockerenv").exists(),
    );
    let audio_status = match role {
        // The in-process node renders on the mock clock (a sound card is reported by the caller);
        // in the cloud, with no hardware, that is processing only.
        Role::Serve => AudioStatus {
            capability: if environment == audiolab_config::EnvironmentKind::Cloud {
                AudioCapability::ProcessingOnly
            } else {
                AudioCapability::Mock
            },
            engine: "mock",
            has_hardware: false,
            overdubbing: true,
        },
        _ => AudioStatus {
            capability: AudioCapability::ProcessingOnly,
            engine: "remote",
            has_hardware: false,
            overdubbing: true,
        },
    };
    let storage = audio_storage(settings)?;
    let courier = audiolab_app::outbox::Courier::new(store.clone(), audio.clone(), Some(jobs.clone()));
    Ok(ApiContext {
        courier,
        job_events,
        store,
        settings: Arc::new(settings.clone()),
        environment,
        audio_status,
        audio,
        storage,
        jobs,
        auth_enabled: settings.auth_enabled(role == Role::Serve),
        limits: Arc::new(audiolab_app::accounts::Limits::new(settings.registrations_per_hour)),
    })
}

/// Connects the worker role: its jobs' context and the queue to take them from (run them with
/// [`audiolab_worker::run`]).
pub async fn open_worker(settings: &Settings) -> anyhow::Result<(Jobs, JobQueue)> {
    let store = open_store(settings).await?;
    let queue = JobQueue::open(settings).await?;
    let events = match &settings.redis_url {
        Some(url) => job_events(settings, &redis::Client::open(url.as_str()).context("redis_url")?),
        None => JobEvents::Discard,
    };
    Ok((Jobs { store, storage: audio_storage(settings)?, events }, queue))
}

/// Job updates published for every node of the deployment.
fn job_events(settings: &Settings, redis: &redis::Client) -> JobEvents {
    JobEvents::redis(redis.clone(), events::channel(&settings.queue_name))
}

/// Resolves on Ctrl-C or SIGTERM.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send {
    // The handlers are installed now, not when the future is first polled: a SIGTERM that comes
    // right after the process says it is ready must stop it gracefully, not kill it.
    #[cfg(unix)]
    let signals = {
        use tokio::signal::unix::{SignalKind, signal};
        (signal(SignalKind::interrupt()).ok(), signal(SignalKind::terminate()).ok())
    };
    async move {
        #[cfg(unix)]
        {
            let wait = |signal: Option<tokio::signal::unix::Signal>| async move {
                match signal {
                    Some(mut signal) => {
                        signal.recv().await;
                    }
                    None => std::future::pending().await,
                }
            };
            let (interrupt, terminate) = signals;
            tokio::select! {
                () = wait(interrupt) => {},
                () = wait(terminate) => {},
            }
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutdown requested");
    }
}
