//! `mixdown`: a project (or a range of it) rendered with the engine's mix law to a file, and
//! optionally each track alone as a stem; resampled, loudness-normalised and dithered on the way
//! out. Rendering streams: clips are read block by block and every output is written as it
//! goes, so memory does not grow with the project's length.
//!
//! The mix is summed exactly as the engine sums it (the same pre-fader render, the same
//! `mix_track` in slot order, solo across all tracks), so a float mixdown at the project rate
//! equals the engine's output sample for sample.

use crate::progress::{Report, run_blocking};
use audiolab_domain::mixdown::{MixdownOptions, MixdownPayload, MixdownResult, RenderedFile};
use audiolab_domain::{ProjectId, TrackId};
use audiolab_dsp::dither::Dither;
use audiolab_dsp::loudness::{linear_to_db, normalization_gain};
use audiolab_dsp::resample::{ResampleError, StreamResampler};
use audiolab_media::encode::{AudioWriter, EncodeError};
use audiolab_media::mix::{BLOCK_FRAMES, MixSource};
use audiolab_media::storage::{Storage, StorageError};
use audiolab_media::timeline::{self};
use audiolab_store::{Store, StoreError};
use std::path::{Path, PathBuf};

/// Headroom kept under a true-peak ceiling when the ceiling sets the gain (dB).
const CEILING_HEADROOM_DB: f64 = 0.01;

#[derive(Debug, thiserror::Error)]
pub enum MixdownError {
    #[error("the job's payload is not a mixdown request: {0}")]
    Payload(String),
    #[error("project not found")]
    ProjectNotFound,
    #[error("nothing to render: {0}")]
    Empty(&'static str),
    #[error("clip audio is missing from storage: {}", .0.join(", "))]
    MissingAudio(Vec<String>),
    #[error("clip audio cannot be read: {0}")]
    UnreadableClips(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Encode(#[from] EncodeError),
    #[error(transparent)]
    Resample(#[from] ResampleError),
    #[error("cannot write the mixdown: {0}")]
    Io(#[from] std::io::Error),
    #[error("the mixdown was cancelled")]
    Cancelled,
}

impl MixdownError {
    /// Whether trying again may succeed (a database or object store hiccup).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Store(err) => err.is_unavailable(),
            Self::Storage(StorageError::Remote(_)) => true,
            _ => false,
        }
    }
}

/// One output file: resampled, gained, metered, dithered and encoded as blocks arrive.
struct Output {
    resampler: Option<StreamResampler>,
    resampled: Vec<f32>,
    gain: f32,
    meter: Option<ebur128::EbuR128>,
    dither: Option<Dither>,
    writer: AudioWriter,
    frames: u64,
}

impl Output {
    fn create(
        path: &Path,
        options: &MixdownOptions,
        project_rate: u32,
        gain: f32,
        seed: u64,
        meter: bool,
    ) -> Result<Self, MixdownError> {
        let resampler = (options.sample_rate != project_rate)
            .then(|| StreamResampler::new(project_rate, options.sample_rate, 2))
            .transpose()?;
        let dither = options.format.integer_bits().filter(|_| options.dither).map(|bits| Dither::new(bits, seed));
        let meter = meter
            .then(|| ebur128::EbuR128::new(2, options.sample_rate, ebur128::Mode::I | ebur128::Mode::TRUE_PEAK).ok())
            .flatten();
        Ok(Self {
            resampler,
            resampled: Vec::with_capacity(BLOCK_FRAMES * 4),
            gain,
            meter,
            dither,
            writer: AudioWriter::create(path, 2, options.sample_rate, options.format)?,
            frames: 0,
        })
    }

    fn push(&mut self, block: &[f32]) -> Result<(), MixdownError> {
        self.resampled.clear();
        match &mut self.resampler {
            Some(resampler) => resampler.process(block, &mut self.resampled),
            None => self.resampled.extend_from_slice(block),
        }
        self.emit()
    }

    fn emit(&mut self) -> Result<(), MixdownError> {
        let samples = &mut self.resampled;
        if self.gain != 1.0 {
            samples.iter_mut().for_each(|s| *s *= self.gain);
        }
        if let Some(meter) = &mut self.meter {
            let _ = meter.add_frames_f32(samples);
        }
        if let Some(dither) = &mut self.dither {
            dither.apply(samples);
        }
        self.writer.write(samples)?;
        self.frames += (samples.len() / 2) as u64;
        Ok(())
    }

    /// Flushes and closes the file; returns its frames and loudness/true peak when metered.
    fn finish(mut self) -> Result<(u64, Option<f64>, Option<f64>), MixdownError> {
        if let Some(mut resampler) = self.resampler.take() {
            self.resampled.clear();
            resampler.finish(&mut self.resampled);
            self.emit()?;
        }
        self.writer.finish()?;
        let (loudness, peak) = match &self.meter {
            Some(meter) => (meter.loudness_global().ok().filter(|l| l.is_finite()), peak_dbtp(meter)),
            None => (None, None),
        };
        Ok((self.frames, loudness, peak))
    }
}

fn peak_dbtp(meter: &ebur128::EbuR128) -> Option<f64> {
    let peak = (0..2).filter_map(|c| meter.true_peak(c).ok()).fold(0.0f64, f64::max);
    (peak > 0.0).then(|| linear_to_db(peak))
}

/// Where one render goes and how it is checked.
#[derive(Debug, Clone)]
pub struct RenderPlan {
    pub options: MixdownOptions,
    pub project_rate: u32,
    /// Timeline range `[start, end)` in project frames.
    pub start: i64,
    pub end: i64,
    pub mix_path: PathBuf,
    /// One path per track of the source, in its order, when stems are asked.
    pub stem_paths: Vec<PathBuf>,
    /// Measure loudness and true peak of the mix as written (the job always does).
    pub measure: bool,
}

/// What [`render_files`] wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct RenderOutcome {
    pub frames: u64,
    pub loudness_lufs: Option<f64>,
    pub true_peak_dbtp: Option<f64>,
    pub gain_db: f64,
    pub limited_by_ceiling: bool,
}

/// Renders `source` to the plan's files. With normalisation, a first pass measures the mix
/// (after resampling) and a second writes it with the gain. `progress` gets the fraction done
/// and returns `false` to cancel (the partial files are then removed).
pub fn render_files(
    source: &mut MixSource,
    plan: &RenderPlan,
    mut progress: impl FnMut(f64) -> bool,
) -> Result<RenderOutcome, MixdownError> {
    let options = &plan.options;
    let passes = if options.normalize.is_some() { 2.0 } else { 1.0 };
    let (mut gain_db, mut limited_by_ceiling) = (0.0, false);
    if let Some(normalize) = options.normalize {
        let mut meter = ebur128::EbuR128::new(2, options.sample_rate, ebur128::Mode::I | ebur128::Mode::TRUE_PEAK)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let mut resampler = (options.sample_rate != plan.project_rate)
            .then(|| StreamResampler::new(plan.project_rate, options.sample_rate, 2))
            .transpose()?;
        let mut resampled = Vec::new();
        let finished = source.render(
            plan.start,
            plan.end,
            false,
            |mix, _| {
                let measured = match &mut resampler {
                    Some(r) => {
                        resampled.clear();
                        r.process(mix, &mut resampled);
                        &resampled[..]
                    }
                    None => mix,
                };
                meter.add_frames_f32(measured).map_err(|e| std::io::Error::other(e.to_string()))
            },
            |done| progress(done / passes),
        )?;
        if !finished {
            return Err(MixdownError::Cancelled);
        }
        if let Some(mut r) = resampler {
            resampled.clear();
            r.finish(&mut resampled);
            let _ = meter.add_frames_f32(&resampled);
        }
        let loudness = meter.loudness_global().ok().filter(|l| l.is_finite());
        // A hundredth of a dB under the ceiling leaves room for dither and quantisation.
        let ceiling = normalize.ceiling_dbtp - CEILING_HEADROOM_DB;
        let decided = normalization_gain(loudness, peak_dbtp(&meter), normalize.target_lufs, ceiling);
        (gain_db, limited_by_ceiling) = (decided.gain_db, decided.limited_by_ceiling);
    }

    let gain = 10f64.powf(gain_db / 20.0) as f32;
    // Written under names of this attempt's own, renamed into place once complete: a reader
    // never sees half a file, and a second delivery of the job cannot interleave with this one.
    let attempt = uuid::Uuid::new_v4();
    let finals: Vec<&PathBuf> = std::iter::once(&plan.mix_path).chain(&plan.stem_paths).collect();
    let partials: Vec<PathBuf> =
        finals.iter().map(|p| p.with_file_name(format!("{}.{attempt}.partial", file_name(p)))).collect();
    let written = (|| {
        let mut mix = Output::create(&partials[0], options, plan.project_rate, gain, 1, plan.measure)?;
        let mut stems = Vec::with_capacity(plan.stem_paths.len());
        for (i, path) in partials[1..].iter().enumerate() {
            stems.push(Output::create(path, options, plan.project_rate, gain, 2 + i as u64, false)?);
        }
        let finished = source.render(
            plan.start,
            plan.end,
            !stems.is_empty(),
            |block, stem_blocks| {
                mix.push(block)?;
                for (output, stem) in stems.iter_mut().zip(stem_blocks) {
                    output.push(stem)?;
                }
                Ok::<_, MixdownError>(())
            },
            |done| progress((passes - 1.0 + done) / passes),
        )?;
        if !finished {
            return Err(MixdownError::Cancelled);
        }
        for stem in stems {
            stem.finish()?;
        }
        let measured = mix.finish()?;
        for (partial, path) in partials.iter().zip(&finals) {
            std::fs::rename(partial, path)?;
        }
        Ok(measured)
    })();
    match written {
        Ok((frames, loudness_lufs, true_peak_dbtp)) => {
            Ok(RenderOutcome { frames, loudness_lufs, true_peak_dbtp, gain_db, limited_by_ceiling })
        }
        Err(err) => {
            for path in &partials {
                let _ = std::fs::remove_file(path);
            }
            Err(err)
        }
    }
}

fn file_name(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// Where a job's files live.
pub fn mixdown_dir(project: ProjectId, job: audiolab_domain::JobId) -> String {
    format!("projects/{project}/mixdowns/{job}")
}

/// Runs a mixdown job's work: loads the project, renders on a blocking thread while reporting
/// progress through `report` (which returns `false` once the job was cancelled: the render then
/// stops), then publishes the files.
pub async fn mixdown(
    store: &Store,
    storage: &Storage,
    job: &audiolab_domain::job::Job,
    payload: &MixdownPayload,
    report: Report,
) -> Result<MixdownResult, MixdownError> {
    let options = payload.options;
    let project_id = job.project_id.ok_or(MixdownError::ProjectNotFound)?;
    let project = store.get_project(project_id).await?.ok_or(MixdownError::ProjectNotFound)?;
    let tracks = store.list_tracks(project_id, audiolab_store::Page { limit: 64, offset: 0 }).await?.items;
    let clips = store.project_clips(project_id).await?;
    let missing = timeline::fetch_audio(storage, &clips).await;
    if !missing.is_empty() {
        return Err(MixdownError::MissingAudio(missing));
    }
    let (opened, skipped) = timeline::open(project.sample_rate, &tracks, &clips, storage);
    if !skipped.is_empty() {
        let reasons: Vec<String> = skipped.iter().map(|s| format!("clip {}: {}", s.clip, s.reason)).collect();
        return Err(MixdownError::UnreadableClips(reasons.join("; ")));
    }
    let mut source = MixSource::open(opened, &tracks);
    let start = options.start.get();
    let end = options.end.map_or(source.duration, |e| e.get());
    if end <= start {
        return Err(MixdownError::Empty(if source.duration == 0 {
            "the project has no ready clips"
        } else {
            "the range starts after the last clip ends"
        }));
    }

    let dir = mixdown_dir(project_id, job.id);
    let extension = options.format.extension();
    let mix_key = format!("{dir}/mix.{extension}");
    let stem_keys: Vec<(TrackId, String)> = if options.stems {
        source.tracks.iter().map(|t| (t.track_id, format!("{dir}/stems/{}.{extension}", t.track_id))).collect()
    } else {
        Vec::new()
    };
    let local = |key: &str| storage.path(key).map_err(|e| MixdownError::Payload(e.to_string()));
    let plan = RenderPlan {
        options,
        project_rate: project.sample_rate.hz(),
        start,
        end,
        mix_path: local(&mix_key)?,
        stem_paths: stem_keys.iter().map(|(_, key)| local(key)).collect::<Result<_, _>>()?,
        measure: true,
    };
    for path in std::iter::once(&plan.mix_path).chain(&plan.stem_paths) {
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent).await?;
        }
    }

    let outcome = {
        let plan = plan.clone();
        run_blocking(move |progress| render_files(&mut source, &plan, |f| progress.set(f)), &report, 0.95).await?
    };
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err(err) => {
            let _ =
                tokio::fs::remove_dir_all(storage.path(&dir).map_err(|e| MixdownError::Payload(e.to_string()))?).await;
            return Err(err);
        }
    };

    let mut files = Vec::with_capacity(1 + stem_keys.len());
    let named =
        std::iter::once(("mix", None, &mix_key)).chain(stem_keys.iter().map(|(id, key)| ("stem", Some(*id), key)));
    for (kind, track_id, key) in named {
        storage.publish(key).await?;
        let bytes =
            tokio::fs::metadata(storage.path(key).map_err(|e| MixdownError::Payload(e.to_string()))?).await?.len();
        // The download routes of the API (the result is what clients read).
        let url = match track_id {
            None => format!("/api/mixdowns/{}/file", job.id),
            Some(track) => format!("/api/mixdowns/{}/stems/{track}", job.id),
        };
        files.push(RenderedFile {
            kind: kind.into(),
            track_id,
            key: key.clone(),
            url,
            bytes,
            content_type: options.format.content_type().into(),
        });
    }
    Ok(MixdownResult {
        fingerprint: payload.fingerprint.clone(),
        format: options.format,
        sample_rate: options.sample_rate,
        frames: outcome.frames,
        files,
        loudness_lufs: outcome.loudness_lufs,
        true_peak_dbtp: outcome.true_peak_dbtp,
        gain_db: outcome.gain_db,
        limited_by_ceiling: outcome.limited_by_ceiling,
    })
}
