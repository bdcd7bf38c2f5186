//! `GET /health` and `GET /api/info`: is this process alive, where does it run, what can it do.

use crate::Tag;
use crate::context::ApiContext;
use crate::error::{Answer, codes};
use audiolab_domain::SampleRate;
use audiolab_domain::track::MAX_TRACKS;
use audiolab_store::Backend;
use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use std::time::{Duration, Instant};

pub struct HealthApi;

/// Where the process runs and what audio it can do.
#[derive(Debug, Object)]
pub struct EnvironmentView {
    /// `desktop`, `cloud`, `container` or `ci_cd`; detected from the platform's variables, or set by `AUDIOLAB_ENVIRONMENT`.
    #[oai(rename = "type")]
    pub kind: String,
    /// `full` (a sound card drives the engine), `mock` (mock clock and virtual devices), `processing_only` (no engine in this process) or `disabled`.
    pub audio_capability: String,
    /// Whether this is a cloud deployment.
    pub is_cloud_deployment: bool,
    /// Whether an audio interface was opened.
    pub has_audio_hardware: bool,
}

/// The state of the services this process depends on.
#[derive(Debug, Object)]
pub struct ServicesView {
    /// `healthy` when a query round trip just succeeded, else `unhealthy`.
    pub database: String,
    /// Round-trip time of that query in milliseconds, when it succeeded.
    #[oai(nullable)]
    pub database_latency_ms: Option<f64>,
    /// `healthy` when an engine can play: this process's own, or (for an API process) at least
    /// one live audio node; else `unhealthy`.
    pub audio_engine: String,
    /// The engine driving playback: `mock`, `cpal`, or `remote` when engines run in node processes.
    pub audio_engine_kind: String,
    /// `real` when recording from hardware inputs is possible, else `mock` (virtual devices).
    pub recording_system: String,
    /// Whether a take can be recorded while other tracks play.
    pub overdubbing_capable: bool,
}

/// Health report.
#[derive(Debug, Object)]
pub struct HealthView {
    /// `healthy`, or `unhealthy` when a dependency is down.
    pub status: String,
    /// AudioLab version.
    pub version: String,
    /// Where the process runs.
    pub environment: EnvironmentView,
    /// Dependencies and audio subsystems.
    pub services: ServicesView,
}

#[derive(ApiResponse)]
pub enum HealthResponse {
    /// Everything this process needs is reachable.
    #[oai(status = 200)]
    Healthy(Json<HealthView>),
    /// A dependency (the database) is unreachable.
    #[oai(status = 503)]
    Unhealthy(Json<HealthView>),
}

/// Facts about this deployment a client may adapt to.
#[derive(Debug, Object)]
pub struct InfoView {
    /// Product name.
    pub name: String,
    /// AudioLab version.
    pub version: String,
    /// Database engine: `postgres` or `sqlite`.
    pub database_backend: String,
    /// Sample rates a project may use.
    pub sample_rates: Vec<u32>,
    /// Most tracks a project may hold.
    pub max_tracks: u8,
    /// Largest accepted audio upload in bytes.
    pub max_upload_bytes: u64,
    /// Largest accepted JSON body in bytes.
    pub max_request_bytes: u64,
    /// Path of the OpenAPI document.
    pub openapi_url: String,
    /// Path of the interactive documentation.
    pub docs_url: String,
    /// Whether requests need a bearer token (when false, everything runs as one local user):
    /// a client asks this before it has a token rather than meeting a 401.
    pub auth_enabled: bool,
}

/// How long the database may take to answer a health probe before it counts as down.
const DATABASE_PROBE_TIMEOUT: Duration = Duration::from_secs(2);

#[OpenApi(tag = "Tag::System")]
impl HealthApi {
    /// Health check
    ///
    /// Reports the environment, a real database round trip, and the audio subsystems. Answers
    /// 503 with the same body when the database is unreachable.
    #[oai(path = "/health", method = "get", operation_id = "health")]
    async fn health(&self, ctx: Data<&ApiContext>) -> HealthResponse {
        let started = Instant::now();
        let reachable = matches!(tokio::time::timeout(DATABASE_PROBE_TIMEOUT, ctx.store.ping()).await, Ok(Ok(())));
        let latency = started.elapsed().as_secs_f64() * 1000.0;
        let audio = ctx.audio_status;
        let engine_up = match audio.engine {
            "remote" => {
                let stale = Duration::from_secs(ctx.settings.node_stale_secs);
                reachable && ctx.store.live_nodes(stale).await.is_ok_and(|nodes| !nodes.is_empty())
            }
            _ => true,
        };
        let healthy = |up: bool| if up { "healthy" } else { "unhealthy" }.to_owned();
        let view = HealthView {
            status: if reachable { "healthy" } else { "unhealthy" }.into(),
            version: env!("CARGO_PKG_VERSION").into(),
            environment: EnvironmentView {
                kind: ctx.environment.as_str().into(),
                audio_capability: audio.capability.as_str().into(),
                is_cloud_deployment: ctx.environment == audiolab_config::EnvironmentKind::Cloud,
                has_audio_hardware: audio.has_hardware,
            },
            services: ServicesView {
                database: healthy(reachable),
                database_latency_ms: reachable.then_some(latency),
                audio_engine: healthy(engine_up),
                audio_engine_kind: audio.engine.into(),
                recording_system: if audio.has_hardware { "real" } else { "mock" }.into(),
                overdubbing_capable: audio.overdubbing,
            },
        };
        if reachable { HealthResponse::Healthy(Json(view)) } else { HealthResponse::Unhealthy(Json(view)) }
    }

    /// Deployment facts
    ///
    /// Version, database engine, limits and supported sample rates.
    #[oai(path = "/api/info", method = "get", operation_id = "get_info")]
    async fn info(&self, ctx: Data<&ApiContext>) -> Answer<Json<InfoView>, { codes::ANY }> {
        Ok(Json(InfoView {
            name: "AudioLab".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            database_backend: match ctx.store.backend() {
                Backend::Postgres => "postgres",
                Backend::Sqlite => "sqlite",
            }
            .into(),
            sample_rates: SampleRate::SUPPORTED.to_vec(),
            max_tracks: MAX_TRACKS,
            max_upload_bytes: ctx.settings.max_upload_bytes,
            max_request_bytes: ctx.settings.max_request_bytes,
            openapi_url: "/openapi.json".into(),
            docs_url: "/docs".into(),
            auth_enabled: ctx.auth_enabled,
        }))
    }
}
