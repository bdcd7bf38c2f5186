//! AudioLab's REST API: metadata CRUD, the mixer, recording, mixdown and import jobs,
//! downloads, health, and the OpenAPI document.
//!
//! Handlers are thin: they turn JSON into domain inputs, call the store, and turn the result
//! back into JSON. One file per resource; the error model lives in [`error`].

mod allow;
pub mod auth;
mod body_limit;
mod clips;
mod comps;
mod context;
mod devices;
mod download;
pub mod edge;
pub mod error;
mod health;
mod history;
mod imports;
mod jobs;
mod loops;
mod members;
mod mixdowns;
mod mixer;
mod optional_body;
mod pagination;
mod playback;
mod projects;
mod recording;
mod states;
mod tracks;

pub use context::{ApiContext, AudioStatus, NoAudio};

use poem::{Endpoint, EndpointExt, Route};
use poem_openapi::{OpenApiService, Tags};

/// Groups of operations in the OpenAPI document.
#[derive(Tags)]
pub(crate) enum Tag {
    /// Liveness, environment and capabilities.
    System,
    /// Accounts, sign-in and personal API keys.
    Accounts,
    /// Projects: the container of tracks, with the project sample rate.
    Projects,
    /// Tracks: up to 32 per project.
    Tracks,
    /// Clips: audio regions placed on tracks.
    Clips,
    /// Loop regions the transport can repeat.
    Loops,
    /// Audio devices and the live mixer.
    Audio,
    /// Background jobs.
    Jobs,
}

type Apis = (
    health::HealthApi,
    auth::AuthApi,
    devices::DevicesApi,
    projects::ProjectsApi,
    history::HistoryApi,
    members::MembersApi,
    tracks::TracksApi,
    clips::ClipsApi,
    loops::LoopsApi,
    mixer::MixerApi,
    playback::PlaybackApi,
    recording::RecordingApi,
    comps::CompsApi,
    jobs::JobsApi,
    mixdowns::MixdownsApi,
);

fn service() -> OpenApiService<Apis, ()> {
    let apis = (
        health::HealthApi,
        auth::AuthApi,
        devices::DevicesApi,
        projects::ProjectsApi,
        history::HistoryApi,
        members::MembersApi,
        tracks::TracksApi,
        clips::ClipsApi,
        loops::LoopsApi,
        mixer::MixerApi,
        playback::PlaybackApi,
        recording::RecordingApi,
        comps::CompsApi,
        jobs::JobsApi,
        mixdowns::MixdownsApi,
    );
    OpenApiService::new(apis, "AudioLab", env!("CARGO_PKG_VERSION")).description(
        "AudioLab is a multi-track recording and overdubbing engine driven over HTTP and WebSocket. \
         Timeline values are seconds (f64); the matching `*_frame` fields give exact sample frames \
         at the project's sample rate. Errors have the body `{\"detail\", \"errors\", \"success\": false}`.",
    )
}

/// The web folder, inside the binary: the page at `/` and its modules under `/web/`.
mod web {
    use poem::{Endpoint, IntoResponse, Request, Response};

    #[derive(rust_embed::RustEmbed)]
    #[folder = "../web"]
    pub struct Files;

    /// `GET /` is the studio's page (the API's routes are nested at the root, so it is
    /// answered before them).
    pub async fn studio_at_root<E: Endpoint>(endpoint: std::sync::Arc<E>, req: Request) -> poem::Result<Response> {
        if req.uri().path() == "/" && matches!(*req.method(), poem::http::Method::GET | poem::http::Method::HEAD) {
            return poem::endpoint::EmbeddedFileEndpoint::<Files>::new("index.html").call(req).await;
        }
        endpoint.call(req).await.map(IntoResponse::into_response)
    }
}

/// The OpenAPI document, as committed under `openapi/`.
pub fn openapi_json() -> String {
    service().spec()
}

/// The HTTP application: the API, `/openapi.json`, `/docs`, one error shape for everything.
pub fn app(context: ApiContext) -> impl Endpoint {
    let service = service();
    let docs = service.swagger_ui();
    let spec = service.spec_endpoint();
    let body_limit = usize::try_from(context.settings.max_request_bytes).unwrap_or(usize::MAX);
    let upload_limit = context.settings.max_upload_bytes;
    Route::new()
        .nest("/", service)
        .nest("/web", poem::endpoint::EmbeddedFilesEndpoint::<web::Files>::new())
        .nest("/docs", docs)
        .at("/openapi.json", spec)
        .around(move |endpoint, req| body_limit::limit_body(endpoint, req, body_limit, upload_limit))
        .catch_all_error(error::framework_error)
        .around(allow::add_allow)
        .around(web::studio_at_root)
        .data(context)
}
