//! Recording on a node: a take's journal row, its capture lane on the engine, the writer thread
//! that puts the capture on storage, and the hand-off to finalisation when it stops.
//!
//! ```text
//! record_start: journal row ─▶ manifest on storage ─▶ writer thread ─▶ StartCapture (+ roll)
//! audio thread: block input ─▶ capture ring ─▶ writer: one-second chunks, synced
//! record_stop:  StopCapture ─▶ writer drains ─▶ placement ─▶ take + clip (processing) ─▶ finalize
//! ```

pub mod client_take;
pub mod coverage;
pub mod input;
mod recovery;
mod stopped;
pub mod writer;

pub use input::{HardwareInput, OpenedInput, device_latency, input_source, open_input};
use stopped::{StoppedInput, stop_client_take, stop_engine_capture};
pub use writer::{CaptureWriter, manifest, upload_capture};

use crate::engine::{CaptureMeter, InputSource};
use crate::transport::hub::Hub;
use audiolab_domain::{ProjectId, RecordingSessionId, TrackId};
use std::sync::Arc;

/// A recording in progress on this node.
pub struct ActiveRecording {
    pub id: RecordingSessionId,
    pub project_id: ProjectId,
    pub track_id: TrackId,
    pub device_id: String,
    pub input: RecordingInput,
}

/// Where a take's audio comes from.
pub enum RecordingInput {
    /// A capture lane on the engine (virtual devices, the loopback, a sound card).
    Engine(EngineCapture),
    /// A client device's microphone, placed by its connection (§10).
    Client(Arc<crate::device::DeviceLink>),
}

/// A take captured by the engine's audio thread.
pub struct EngineCapture {
    pub capture_id: u64,
    pub source: InputSource,
    pub meter: Arc<CaptureMeter>,
    pub writer: CaptureWriter,
    /// The sound card's stream, for a take from one; stopped when the recording is dropped.
    pub hardware: Option<HardwareInput>,
    /// Sends the capture to the object store while it records (cloud mode).
    pub uploader: Option<tokio::task::JoinHandle<std::collections::HashSet<String>>>,
}

use crate::engine::{Command, TransportState};
use crate::node::{Node, busy, seconds_to_frames, store_error};
use crate::session::Session;
use audiolab_domain::Frames;
use audiolab_domain::recording::{RecordingSession, RecordingStatus};
use audiolab_domain::transport::{RecordRequest, RecordingStarted, RecordingStopped, TransportError, TransportResult};
use audiolab_transport::protocol::{PlaybackEvent, RecordingEvent, ServerMessage};

impl Node {
    /// Starts recording (see [`AudioControl::record_start`]); `self` is shared so the take can be
    /// finalised in the background when it stops.
    pub async fn start_recording(
        &self,
        project: ProjectId,
        request: RecordRequest,
    ) -> TransportResult<RecordingStarted> {
        let track = self.store.get_track(request.track_id).await.map_err(store_error)?;
        let track = track.filter(|t| t.project_id == project).ok_or_else(|| TransportError::not_found("track"))?;
        if !track.record_enabled {
            return Err(TransportError::Conflict(format!(
                "track {} is not armed: enable recording on it first (POST /api/audio/tracks/{}/record/enable)",
                track.id, track.id
            )));
        }
        let device_id = request.device_id.or(track.input_device_id.clone()).unwrap_or_else(|| "mock_0".into());
        // Held until the capture is on the engine, so a project delete cannot miss the take.
        let mut recordings = self.recordings.lock().await;
        let session = self.loaded(project).await?;
        // Busy devices are refused before a sound card's stream is opened (below). Every
        // project has virtual devices of its own; a sound card is one per machine.
        let exclusive = input_source(&device_id, session.tempo()).is_none();
        if let Some(busy) =
            recordings.values().find(|r| r.device_id == device_id && (exclusive || r.project_id == project))
        {
            return Err(TransportError::Conflict(format!(
                "device {device_id} is already recording (session {})",
                busy.id
            )));
        }
        let start_frame = request.start_time.map(|t| seconds_to_frames(t, &session)).transpose()?;
        let punch = match (request.punch_in, request.punch_out) {
            (None, None) => None,
            (Some(punch_in), Some(punch_out)) => {
                let (punch_in, punch_out) =
                    (seconds_to_frames(punch_in, &session)?, seconds_to_frames(punch_out, &session)?);
                if punch_in >= punch_out {
                    return Err(TransportError::Invalid("punch_in: must be before punch_out".into()));
                }
                Some((punch_in, punch_out))
            }
            _ => return Err(TransportError::Invalid("punch_in and punch_out: give both or neither".into())),
        };
        // A count-in rolls the stopped transport that many bars before the record point; the
        // take keeps from the record point on (as a punch-in there, unless a punch is given).
        let count_in_bars = request.count_in_bars.unwrap_or(0);
        if count_in_bars > audiolab_domain::transport::MAX_COUNT_IN_BARS {
            return Err(TransportError::Invalid(format!(
                "count_in_bars: must be at most {}",
                audiolab_domain::transport::MAX_COUNT_IN_BARS
            )));
        }
        let counting_in = count_in_bars > 0 && session.state() != TransportState::Playing;
        let record_point = start_frame.unwrap_or_else(|| session.handle.shared.position());
        let punch = match punch {
            None if counting_in => Some((record_point, i64::MAX)),
            punch => punch,
        };

        if recordings.values().any(|r| r.track_id == track.id) {
            return Err(TransportError::Conflict(format!("track {} is already recording", track.id)));
        }
        if recordings.values().filter(|r| r.project_id == project).count() >= crate::engine::MAX_CAPTURES {
            return Err(TransportError::Conflict("too many tracks are recording in this project".into()));
        }

        // A client device's microphone comes through its connection; any other input is opened here.
        let client = match device_id.strip_prefix(crate::device::CLIENT_PREFIX) {
            Some(_) => Some(session.device_link(&device_id).ok_or_else(|| {
                TransportError::Invalid(format!(
                    "device_id: the client device {device_id} is not attached to this project"
                ))
            })?),
            None => None,
        };
        let opened = match &client {
            Some(_) => None,
            None => Some(open_input(&device_id, session.tempo(), session.rate.hz())?),
        };

        // The journal row comes before the first sample, and the manifest before the writer.
        let now = audiolab_domain::now();
        let journal = RecordingSession {
            id: RecordingSessionId::new(),
            project_id: project,
            track_id: track.id,
            device_id: device_id.clone(),
            status: RecordingStatus::Recording,
            start: Frames(record_point),
            applied_offset: Frames::ZERO,
            capture_key: String::new(),
            error: None,
            created_at: now,
            updated_at: now,
        };
        let journal = RecordingSession { capture_key: format!("captures/{}", journal.id), ..journal };
        let dir = self.storage.path(&journal.capture_key).map_err(|e| TransportError::Internal(e.to_string()))?;
        self.store.insert_recording_session_on(&journal, self.identity).await.map_err(store_error)?;
        let rate = session.rate.hz();
        let input = match client {
            Some(link) => {
                // Laid out from the first frame rendered after this command (a count-in or
                // pre-roll included); the takes are cut from the record point, or the punch range.
                let keep = match punch {
                    Some((punch_in, punch_out)) => punch_in..punch_out,
                    None => journal.start.get()..i64::MAX,
                };
                let manifest =
                    audiolab_media::capture::Manifest { channels: u16::from(link.channels), sample_rate: rate };
                let origin = link.next_rendered_index();
                let take = tokio::task::spawn_blocking(move || {
                    crate::recording::client_take::ClientTake::create(&dir, manifest, origin, keep)
                })
                .await
                .map_err(|e| TransportError::Internal(e.to_string()))?
                .map_err(|e| TransportError::Unavailable(format!("cannot write the capture: {e}")))?;
                *link.take.lock().unwrap_or_else(|p| p.into_inner()) = Some(take);
                RecordingInput::Client(link)
            }
            None => {
                let (source, opened) = opened.ok_or_else(|| TransportError::Internal("no input was opened".into()))?;
                let (hardware, device_ring) = opened.map_or((None, None), |(input, ring)| (Some(input), Some(ring)));
                let chunks = tokio::task::spawn_blocking(move || {
                    audiolab_media::capture::ChunkWriter::create(&dir, manifest(source, rate))
                })
                .await
                .map_err(|e| TransportError::Internal(e.to_string()))?
                .map_err(|e| TransportError::Unavailable(format!("cannot write the capture: {e}")))?;
                let capture_id = self.next_capture.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let (capture, ring, meter) = crate::engine::Capture::new(capture_id, source, rate, punch, device_ring);
                let writer =
                    CaptureWriter::spawn(format!("audiolab-capture-{capture_id}"), ring, meter.clone(), chunks)
                        .map_err(|e| TransportError::Unavailable(format!("cannot start the capture writer: {e}")))?;
                session.handle.send(Command::StartCapture(capture)).map_err(busy)?;
                let uploader = self.storage.is_mirrored().then(|| {
                    let chunk_bytes = u64::from(rate) * source.channels() as u64 * 4;
                    let (storage, key) = (self.storage.clone(), journal.capture_key.clone());
                    tokio::spawn(crate::recording::upload_capture(storage, key, chunk_bytes, meter.clone()))
                });
                tokio::spawn(report_progress(self.hub.clone(), project, journal.id, meter.clone(), rate));
                RecordingInput::Engine(EngineCapture { capture_id, source, meter, writer, hardware, uploader })
            }
        };

        let rolling = session.state() == TransportState::Playing;
        // Waited for (within a block), so the answer and a status read after it agree: the
        // transport rolls and the take records. The take's position comes from the engine's
        // own frame counter whenever that is.
        if rolling {
            session.command(Command::HoldAtEnd(true)).await.map_err(busy)?;
        } else {
            session.handle.send(Command::HoldAtEnd(true)).map_err(busy)?;
            // Starting while stopped rolls the transport: the other tracks play (the overdub),
            // after the count-in's bars of clicks.
            let roll_from = if counting_in {
                session.count_in(record_point).await.map_err(busy)?;
                record_point - session.beat_grid().bar_frames(count_in_bars)
            } else {
                record_point
            };
            session.command(Command::Play { from: Some(roll_from) }).await.map_err(busy)?;
            let rolled = PlaybackEvent {
                project_id: project.0,
                position: Frames(roll_from).to_seconds(session.rate),
                frame: roll_from,
                status: audiolab_domain::transport::TransportState::Playing,
                reason: None,
            };
            self.hub.publish(project, ServerMessage::PlaybackStarted(rolled).frame());
        }
        let started = RecordingStarted {
            session_id: journal.id,
            track_id: track.id,
            device_id: device_id.clone(),
            start_time: journal.start.to_seconds(session.rate),
        };
        recordings.insert(
            journal.id,
            ActiveRecording { id: journal.id, project_id: project, track_id: track.id, device_id, input },
        );
        drop(recordings);
        let event = RecordingEvent::Started {
            project_id: project.0,
            session_id: journal.id.0,
            track_id: track.id.0,
            start_time: started.start_time,
        };
        self.publish_recording(project, event);
        Ok(started)
    }

    /// Stops a recording (see [`AudioControl::record_stop`]) and finalises it in the background.
    /// Only the session's own project (and track, when given) reaches it: any other pair is
    /// `NotFound` and leaves the take recording.
    pub async fn stop_recording(
        &self,
        project: ProjectId,
        track: Option<TrackId>,
        session_id: RecordingSessionId,
        actor: Option<&audiolab_domain::user::Actor>,
    ) -> TransportResult<RecordingStopped> {
        let belongs =
            |project_id: ProjectId, track_id: TrackId| project_id == project && track.is_none_or(|t| t == track_id);
        let recording = {
            let mut recordings = self.recordings.lock().await;
            let owned = recordings.get(&session_id).is_some_and(|r| belongs(r.project_id, r.track_id));
            if owned { recordings.remove(&session_id) } else { None }
        };
        let Some(recording) = recording else {
            return match self.store.get_recording_session(session_id).await.map_err(store_error)? {
                Some(found) if belongs(found.project_id, found.track_id) => Err(TransportError::Conflict(format!(
                    "recording session {session_id} is not recording (it is {})",
                    found.status.as_str()
                ))),
                _ => Err(TransportError::not_found("recording session")),
            };
        };
        let session = self.loaded(project).await?;
        let ActiveRecording { device_id, track_id, input, .. } = recording;
        // The manual offset for the device, on top of its measured latency: the project's for
        // an engine input, the device's user's own for a client device (§8: scoped).
        let offset_us = match &input {
            RecordingInput::Engine(_) => self.store.device_offset_us(project, &device_id).await,
            RecordingInput::Client(link) => {
                self.store.client_latency(link.owner, &device_id).await.map(|l| l.map_or(0, |l| l.offset_us))
            }
        }
        .map_err(store_error)?;
        let offset = (offset_us as f64 * f64::from(session.rate.hz()) / 1e6).round() as i64;
        let stopped_input = match input {
            RecordingInput::Engine(capture) => stop_engine_capture(&session, capture, offset).await?,
            RecordingInput::Client(link) => stop_client_take(&link, offset).await?,
        };
        if !self.recordings.lock().await.values().any(|r| r.project_id == project) {
            session.handle.send(Command::HoldAtEnd(false)).map_err(busy)?;
        }
        let StoppedInput { written, frames, dropped, missing, first, spans, shift, channels, uploader } = stopped_input;
        let start = first.map_or(0, |f| (f + shift).max(0));
        self.store.stop_recording_session(session_id, Frames(start), Frames(shift)).await.map_err(store_error)?;
        let mut stopped = RecordingStopped {
            session_id,
            track_id,
            clip_id: None,
            clip_ids: Vec::new(),
            finalize_job_id: None,
            start: Frames(start).to_seconds(session.rate),
            start_frame: start,
            frames,
            dropped_frames: dropped,
            missing_frames: missing,
        };
        if let Err(reason) = written {
            self.fail_stopped(session_id, &reason).await;
            let failed = RecordingEvent::Failed {
                project_id: project.0,
                session_id: Some(session_id.0),
                error: Some(reason.clone()),
            };
            self.publish_recording(project, failed);
            return Err(TransportError::Unavailable(format!("the capture could not be written: {reason}")));
        }
        if first.is_none() {
            let reason = "nothing was captured: the transport did not roll";
            self.fail_stopped(session_id, reason).await;
            let event = RecordingEvent::Stopped {
                project_id: project.0,
                session_id: session_id.0,
                clip_id: None,
                frames: 0,
                start: None,
            };
            self.publish_recording(project, event);
            return Ok(stopped);
        }

        let journal = self.store.get_recording_session(session_id).await.map_err(store_error)?;
        let journal = journal.ok_or_else(|| TransportError::not_found("recording session"))?;
        let (clips, outgoing) =
            audiolab_jobs::finalize::create_takes(&self.store, &journal, &spans, channels, session.rate.hz(), actor)
                .await
                .map_err(|e| TransportError::Internal(e.to_string()))?;
        self.deliver_here(outgoing).await;
        let clip = *clips.last().ok_or_else(|| TransportError::Internal("a capture with frames has a pass".into()))?;
        stopped.clip_ids = clips;
        stopped.clip_id = Some(clip);
        let event = RecordingEvent::Stopped {
            project_id: project.0,
            session_id: session_id.0,
            clip_id: Some(clip.0),
            frames,
            start: Some(stopped.start),
        };
        self.publish_recording(project, event);
        let job_id = audiolab_jobs::queue_finalize(&self.store, project, session_id).await.map_err(store_error)?;
        stopped.finalize_job_id = Some(job_id);
        // The capture goes where workers read it (the object store in cloud mode), then to the
        // queue. In the background: the take is safe on this node's disk already, and its job
        // row is queued, so a failure here leaves it for the next start to queue again.
        let (storage, queue, capture_key) = (self.storage.clone(), self.queue.clone(), journal.capture_key.clone());
        let store = self.store.clone();
        tokio::spawn(async move {
            let mut sent = match uploader {
                Some(uploader) => uploader.await.unwrap_or_default(),
                None => Default::default(),
            };
            if let Err(err) = storage.publish_new(&capture_key, &mut sent, |_, _| true).await {
                return tracing::error!(%job_id, %err, "cannot publish the capture for its worker");
            }
            if let Err(err) = queue.push(job_id).await {
                // The outbox keeps it and tries again until the queue takes it (§13).
                tracing::warn!(%job_id, %err, "the queue did not take the finalize_capture job; it will be retried");
                let push = audiolab_domain::history::Outgoing::PushJob { job_id };
                if let Err(err) = store.enqueue(Some(project), &[push], false).await {
                    tracing::error!(%job_id, %err, "cannot keep the finalize_capture job for a retry");
                }
            }
        });
        Ok(stopped)
    }

    /// Ends every take recording in `project` as `record_stop` would (the transport is being
    /// stopped). A take another request stops meanwhile is that request's to report.
    pub(crate) async fn end_takes(&self, project: ProjectId, actor: Option<&audiolab_domain::user::Actor>) {
        let recording: Vec<RecordingSessionId> =
            self.recordings.lock().await.values().filter(|r| r.project_id == project).map(|r| r.id).collect();
        for session_id in recording {
            match self.stop_recording(project, None, session_id, actor).await {
                Ok(_) | Err(TransportError::NotFound(_) | TransportError::Conflict(_)) => {}
                Err(error) => tracing::warn!(%session_id, %error, "a take could not be ended with the transport"),
            }
        }
    }

    /// Marks a stopped session failed with `reason` (best effort: the caller reports it anyway).
    async fn fail_stopped(&self, session_id: RecordingSessionId, reason: &str) {
        let (stopped, failed) = (RecordingStatus::Stopped, RecordingStatus::Failed);
        if let Err(err) = self.store.transition_recording_session(session_id, stopped, failed, Some(reason)).await {
            tracing::warn!(%session_id, %err, "cannot mark a recording failed");
        }
    }

    /// Stops and discards every take recording in `project` (being deleted): the captures
    /// leave the engine, their writers end, and their chunks are removed. Returns how many.
    /// `recordings` is the map, locked by the caller so no take can start meanwhile.
    pub(crate) async fn discard_recordings(
        &self,
        project: ProjectId,
        recordings: &mut std::collections::HashMap<RecordingSessionId, ActiveRecording>,
        session: Option<&Session>,
    ) -> usize {
        let ids: Vec<_> = recordings.values().filter(|r| r.project_id == project).map(|r| r.id).collect();
        let doomed: Vec<ActiveRecording> = ids.iter().filter_map(|id| recordings.remove(id)).collect();
        let count = doomed.len();
        for recording in doomed {
            match &recording.input {
                RecordingInput::Engine(capture) => {
                    if let Some(session) = session {
                        let _ = session.handle.send(Command::StopCapture(capture.capture_id));
                    }
                    if let Some(uploader) = &capture.uploader {
                        uploader.abort();
                    }
                }
                RecordingInput::Client(link) => drop(link.take.lock().unwrap_or_else(|p| p.into_inner()).take()),
            }
            let dir = self.storage.path(&format!("captures/{}", recording.id)).ok();
            // The writer ends once the capture is let go of; its files go after it.
            let _ = tokio::task::spawn_blocking(move || {
                drop(recording);
                if let Some(dir) = dir {
                    let _ = std::fs::remove_dir_all(dir);
                }
            })
            .await;
        }
        count
    }
}

/// How often a recording's clients get its length and input level.
const PROGRESS_INTERVAL: std::time::Duration = std::time::Duration::from_millis(250);

/// Sends `recording_status` progress (length and peak level) until the capture finishes.
async fn report_progress(
    hub: Arc<Hub>,
    project: ProjectId,
    session_id: RecordingSessionId,
    meter: Arc<crate::engine::CaptureMeter>,
    rate: u32,
) {
    let mut ticks = tokio::time::interval(PROGRESS_INTERVAL);
    ticks.tick().await;
    while !meter.finished() {
        ticks.tick().await;
        let peak = meter.take_peak();
        let progress = RecordingEvent::Progress {
            project_id: project.0,
            session_id: session_id.0,
            frames: meter.frames(),
            seconds: meter.frames() as f64 / f64::from(rate),
            level: peak,
            level_db: if peak > 0.0 { (20.0 * peak.log10()).max(-120.0) } else { -120.0 },
            dropped_frames: meter.dropped(),
        };
        hub.publish(project, ServerMessage::RecordingStatus(progress).frame());
    }
}
