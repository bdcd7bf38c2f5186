//! What a take's input leaves when it stops: an engine capture taken off the engine and
//! written, or a client device's take with the microphone audio still on its way waited for —
//! either way its length, where it starts, and the takes cut from it.

use super::EngineCapture;
use super::input::device_latency;
use crate::engine::Command;
use crate::node::busy;
use crate::session::Session;
use audiolab_domain::transport::{TransportError, TransportResult};

/// What a stopped take's input left: its capture written (or why not), its length, where it
/// starts and the takes cut from it.
pub(super) struct StoppedInput {
    pub(super) written: Result<(), String>,
    pub(super) frames: u64,
    pub(super) dropped: u64,
    /// Frames of a client device's microphone that never arrived (silent in the take).
    pub(super) missing: u64,
    /// The timeline frame of its first sample, before `shift`; `None` when nothing came.
    pub(super) first: Option<i64>,
    pub(super) spans: Vec<audiolab_jobs::finalize::TakeSpan>,
    /// Frames the take moves by: the manual offset, less a sound card's latency.
    pub(super) shift: i64,
    pub(super) channels: u16,
    pub(super) uploader: Option<tokio::task::JoinHandle<std::collections::HashSet<String>>>,
}

/// Takes an engine capture off the engine and waits for its writer.
pub(super) async fn stop_engine_capture(
    session: &Session,
    capture: EngineCapture,
    offset: i64,
) -> TransportResult<StoppedInput> {
    let EngineCapture { capture_id, source, meter, writer, hardware, uploader } = capture;
    session.command(Command::StopCapture(capture_id)).await.map_err(busy)?;
    let latency = device_latency(hardware.as_ref(), session.output_latency_frames(), session.rate.hz());
    // The take is over: the sound card's stream stops (joining its thread, off the runtime).
    if let Some(input) = hardware {
        let _ = tokio::task::spawn_blocking(move || drop(input)).await;
    }
    // The writer ends once the audio thread lets go of the capture and the ring is drained.
    let written = tokio::task::spawn_blocking(move || writer.join())
        .await
        .map_err(|e| TransportError::Internal(e.to_string()))?;
    let shift = offset - latency;
    Ok(StoppedInput {
        written,
        frames: meter.frames() - meter.dropped().min(meter.frames()),
        dropped: meter.dropped(),
        missing: 0,
        first: meter.first_frame(),
        spans: take_spans(&meter.passes(), meter.frames(), shift),
        shift,
        channels: source.channels() as u16,
        uploader,
    })
}

/// How long `record/stop` waits for a client device's microphone audio still on its way.
const CLIENT_TAKE_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// Ends a client device's take: its connection placed every block already (latency included),
/// so only the manual offset moves it. The microphone audio of what the client had heard when
/// the stop came is waited for (it may be on its way, or being resent after a reconnect) for up
/// to [`CLIENT_TAKE_WAIT`]; holes left then stay silent and are counted in `missing_frames`.
pub(super) async fn stop_client_take(link: &crate::device::DeviceLink, offset: i64) -> TransportResult<StoppedInput> {
    let heard = link.heard_until.load(std::sync::atomic::Ordering::Acquire);
    let deadline = tokio::time::Instant::now() + CLIENT_TAKE_WAIT;
    loop {
        let missing = link.take.lock().unwrap_or_else(|p| p.into_inner()).as_ref().map(|t| t.missing_before(heard));
        // A device the node detached sends nothing more: the take keeps what arrived.
        if missing.is_none_or(|m| m == 0) || tokio::time::Instant::now() >= deadline || link.ended().is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let take = link.take.lock().unwrap_or_else(|p| p.into_inner()).take();
    let take = take.ok_or_else(|| TransportError::Internal("the client take is gone".into()))?;
    let holes = take.holes();
    let missing: u64 = holes.iter().map(|h| h.end - h.start).sum();
    if missing > 0 {
        tracing::warn!(missing, holes = holes.len(), "a client take stopped with microphone audio missing");
    }
    let spans: Vec<_> = take
        .spans()
        .into_iter()
        .map(|s| audiolab_jobs::finalize::TakeSpan { timeline_start: (s.timeline_start + offset).max(0), ..s })
        .collect();
    let first = spans.first().map(|s| s.timeline_start - offset);
    let frames = spans.iter().map(|s| s.frames).sum();
    let written = tokio::task::spawn_blocking(move || take.finish().map_err(|e| e.to_string()))
        .await
        .map_err(|e| TransportError::Internal(e.to_string()))?;
    Ok(StoppedInput {
        written,
        frames,
        dropped: 0,
        missing,
        first,
        spans,
        shift: offset,
        channels: u16::from(link.channels),
        uploader: None,
    })
}

/// The takes of a capture of `frames` frames from its passes, each moved by `shift` frames.
fn take_spans(passes: &[crate::engine::Pass], frames: u64, shift: i64) -> Vec<audiolab_jobs::finalize::TakeSpan> {
    passes
        .iter()
        .enumerate()
        .map(|(i, pass)| {
            let end = passes.get(i + 1).map_or(frames, |next| next.capture_offset);
            audiolab_jobs::finalize::TakeSpan {
                capture_offset: pass.capture_offset,
                timeline_start: (pass.timeline_start + shift).max(0),
                frames: end.saturating_sub(pass.capture_offset),
            }
        })
        .filter(|span| span.frames > 0)
        .collect()
}
