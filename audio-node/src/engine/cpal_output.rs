//! The sound-card backend (cargo feature `hw-audio`): the device's callback drives the engine.
//! It asks for what the engine renders — stereo `f32` at the project rate — and when no device
//! offers that, the caller falls back to the mock clock.

use crate::engine::EngineCore;
use crate::engine::backend::{ClockStats, Worker};
use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

/// Whether the default output device can play stereo `f32` at `sample_rate`.
pub fn output_available(sample_rate: u32) -> bool {
    let Some(device) = cpal::default_host().default_output_device() else { return false };
    let Ok(configs) = device.supported_output_configs() else { return false };
    configs.into_iter().any(|c| {
        c.channels() == 2
            && c.sample_format() == cpal::SampleFormat::F32
            && c.min_sample_rate() <= sample_rate
            && sample_rate <= c.max_sample_rate()
    })
}

/// Plays `core` through the default output device until the returned worker is dropped.
/// The stream lives on its own thread (streams are not `Send` on every platform).
pub fn spawn_output(mut core: EngineCore, sample_rate: u32, stats: Arc<ClockStats>) -> Result<Worker, String> {
    let (started_tx, started_rx) = std::sync::mpsc::channel();
    let worker = crate::engine::backend::spawn_worker("audiolab-cpal".into(), move |stop| {
        let stream = (|| {
            let device = cpal::default_host().default_output_device().ok_or("no output device")?;
            let config = cpal::StreamConfig { channels: 2, sample_rate, buffer_size: cpal::BufferSize::Default };
            let period = Duration::from_secs_f64(1.0 / f64::from(sample_rate));
            let callback = move |data: &mut [f32], info: &cpal::OutputCallbackInfo| {
                let started = Instant::now();
                let stamp = info.timestamp();
                stats.output_latency_ns.store(stamp.playback.duration_since(stamp.callback).as_nanos() as u64, Relaxed);
                core.process(data);
                let elapsed = started.elapsed();
                stats.blocks.fetch_add(1, Relaxed);
                stats.total_render_ns.fetch_add(elapsed.as_nanos() as u64, Relaxed);
                stats.max_render_ns.fetch_max(elapsed.as_nanos() as u64, Relaxed);
                if elapsed > period * (data.len() / 2) as u32 {
                    stats.late_blocks.fetch_add(1, Relaxed);
                }
            };
            let on_error = |error: cpal::Error| tracing::warn!(%error, "audio device error");
            let stream = device.build_output_stream(config, callback, on_error, None).map_err(|e| e.to_string())?;
            stream.play().map_err(|e| e.to_string())?;
            Ok::<_, String>(stream)
        })();
        match stream {
            Ok(stream) => {
                let _ = started_tx.send(Ok(()));
                while !stop.load(Relaxed) {
                    std::thread::sleep(Duration::from_millis(50));
                }
                drop(stream);
            }
            Err(error) => {
                let _ = started_tx.send(Err(error));
            }
        }
    })
    .map_err(|e| e.to_string())?;
    match started_rx.recv() {
        Ok(Ok(())) => Ok(worker),
        Ok(Err(error)) => Err(error),
        Err(_) => Err("the audio thread ended before the stream started".into()),
    }
}
