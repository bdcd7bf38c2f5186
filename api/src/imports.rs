//! `POST /api/tracks/{id}/clips`: an audio upload (a multipart form, or the file as the raw
//! body) becomes a `processing` clip and an `import` job that decodes it. The bytes stream to
//! storage under a key of this server's making, never the client's file name.

use crate::auth::Caller;
use crate::clips::ClipView;
use crate::context::ApiContext;
use crate::error::{ApiError, ApiResult};
use crate::jobs::JobView;
use audiolab_domain::clip::{Clip, NewClip};
use audiolab_domain::job::{ImportPayload, Job, JobPayload};
use audiolab_domain::user::Need;
use audiolab_domain::{Frames, JobId};
use poem::Body;
use poem_openapi::payload::{Binary, Json};
use poem_openapi::types::multipart::Upload;
use poem_openapi::{ApiRequest, ApiResponse, Multipart, Object};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use uuid::Uuid;

/// A file upload with its placement.
#[derive(Debug, Multipart)]
pub struct UploadForm {
    /// The audio file: WAV, FLAC, MP3, OGG/Vorbis, AIFF or AAC/M4A.
    pub file: Upload,
    /// Timeline position of the clip in seconds (default 0).
    pub start: Option<f64>,
    /// Clip name (default: the file's name).
    pub name: Option<String>,
}

/// An audio upload.
#[derive(Debug, ApiRequest)]
pub enum UploadBody {
    /// `multipart/form-data` with the file and its placement.
    Form(UploadForm),
    /// The file's bytes as the body (`application/octet-stream`); placement in the query.
    Raw(Binary<Body>),
}

/// An accepted upload.
#[derive(Debug, Object)]
pub struct ImportAccepted {
    /// The new clip, `processing` until the job has decoded the file.
    pub clip: ClipView,
    /// The import job; the clip turns `ready` (or `failed` with the reason) when it ends.
    pub job: JobView,
}

#[derive(Debug, ApiResponse)]
pub enum ImportResponse {
    /// Stored and queued for import.
    #[oai(status = 202)]
    Accepted(Json<ImportAccepted>),
}

/// Stores an upload and queues its import (`POST /api/tracks/{id}/clips`, declared in
/// [`crate::clips`] with the other operations of that path).
pub(crate) async fn import(
    ctx: &ApiContext,
    caller: &Caller,
    id: Uuid,
    start: Option<f64>,
    name: Option<String>,
    filename: Option<String>,
    body: UploadBody,
) -> ApiResult<ImportResponse> {
    let (track, project) = ctx.track(caller, id.into(), Need::Change).await?;
    let job_id = JobId::new();
    let upload_key = format!("uploads/{job_id}/source");
    let path = ctx.storage.path(&upload_key).map_err(|e| ApiError::internal(&e))?;
    let limit = ctx.settings.max_upload_bytes;
    let (start, name, file_name, written) = match body {
        UploadBody::Form(form) => {
            let file_name = form.file.file_name().map(str::to_owned);
            let written = store_upload(&path, form.file.into_async_read(), limit).await;
            (form.start.or(start), form.name.or(name), file_name.or(filename), written)
        }
        UploadBody::Raw(Binary(body)) => {
            let written = store_upload(&path, body.into_async_read(), limit).await;
            (start, name, filename, written)
        }
    };
    if let Err(err) = written {
        let _ = tokio::fs::remove_file(&path).await;
        return Err(err);
    }
    let start = Frames::from_seconds("start", start.unwrap_or(0.0), project.sample_rate)?;
    // A file name is only a hint: its control characters are dropped, where a `name` the
    // client chose with them is refused.
    let from_file = || file_name.as_deref().map(|f| f.chars().filter(|c| !c.is_control()).collect::<String>());
    let name = name.or_else(|| from_file().filter(|n| !n.trim().is_empty())).unwrap_or_else(|| "Imported audio".into());
    let new = NewClip {
        project_id: project.id,
        track_id: track.id,
        take_id: None,
        name: name.chars().take(audiolab_domain::clip::MAX_NAME_CHARS).collect(),
        start,
        length: Frames::ZERO,
        source_sample_rate: 0,
        channels: 0,
    };
    let clip = Clip::create(new, audiolab_domain::now())?;
    let payload = ImportPayload { clip_id: clip.id, upload_key, extension: file_name.as_deref().and_then(extension) };
    let mut job = Job::queued(Some(project.id), JobPayload::Import(payload), audiolab_domain::now());
    job.id = job_id;
    ctx.storage.publish(&format!("uploads/{job_id}/source")).await.map_err(|e| ApiError::internal(&e))?;
    let committed = ctx.changes(caller).import_clip(&clip, &job).await?;
    let clip = ClipView::new(clip, project.sample_rate).with_revision(committed.entry.as_ref());
    Ok(ImportResponse::Accepted(Json(ImportAccepted { clip, job: job.into() })))
}

/// A file name's extension as a format hint: lower case, letters and digits only, or nothing.
fn extension(file_name: &str) -> Option<String> {
    let (_, extension) = file_name.rsplit_once('.')?;
    let valid = (1..=5).contains(&extension.len()) && extension.chars().all(|c| c.is_ascii_alphanumeric());
    valid.then(|| extension.to_ascii_lowercase())
}

/// Copies an upload to `path`, refusing (413) past `limit` bytes and an empty upload (422).
async fn store_upload(path: &std::path::Path, mut source: impl AsyncRead + Unpin, limit: u64) -> ApiResult<u64> {
    let io_error = |e: std::io::Error| ApiError::internal(&e);
    if let Some(dir) = path.parent() {
        tokio::fs::create_dir_all(dir).await.map_err(io_error)?;
    }
    let mut file = tokio::fs::File::create(path).await.map_err(io_error)?;
    let mut buffer = vec![0u8; 256 * 1024];
    let mut written = 0u64;
    loop {
        let read =
            source.read(&mut buffer).await.map_err(|e| ApiError::bad_request(format!("the upload broke off: {e}")))?;
        if read == 0 {
            break;
        }
        written += read as u64;
        if written > limit {
            return Err(ApiError::too_large(limit));
        }
        file.write_all(&buffer[..read]).await.map_err(io_error)?;
    }
    file.flush().await.map_err(io_error)?;
    if written == 0 {
        return Err(ApiError::unprocessable("file: the upload is empty"));
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::extension;

    #[test]
    fn only_plain_extensions_become_hints() {
        assert_eq!(extension("Take 1.WAV").as_deref(), Some("wav"));
        assert_eq!(extension("../../etc/passwd"), None);
        assert_eq!(extension("song.mp3/../x"), None);
        assert_eq!(extension("noext"), None);
        assert_eq!(extension("a.verylongext"), None);
    }
}
