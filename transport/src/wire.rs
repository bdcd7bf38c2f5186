//! Binary audio frames on the socket (§10): a 32-byte little-endian header, then interleaved
//! samples. `MIC` frames carry a client's microphone to the node (`frame` = the client's own
//! audio-clock frame of the first sample); `MON` frames carry the project's mix to the client
//! (`frame` = the timeline frame of the first sample). Pure: decoding, encoding and the per-stream
//! sequence bookkeeping, so every malformed or out-of-order frame is an error value, never a panic.

use std::fmt;

pub const MAGIC: u8 = 0xA7;
pub const VERSION: u8 = 1;
pub const HEADER_BYTES: usize = 32;
/// Most frames (per channel) one message carries: 4,096 stereo f32 frames are 32 KiB, well
/// inside the socket's 64 KiB message limit.
pub const MAX_FRAMES: u16 = 4096;
/// Microphones and monitors are mono or stereo.
pub const MAX_CHANNELS: u16 = 2;

/// Which way a frame goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Client → node: captured microphone audio.
    Mic = 1,
    /// Node → client: the monitor mix.
    Mon = 2,
}

/// How samples are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SampleFormat {
    F32 = 1,
    I16 = 2,
}

impl SampleFormat {
    pub fn bytes(self) -> usize {
        match self {
            SampleFormat::F32 => 4,
            SampleFormat::I16 => 2,
        }
    }
}

/// The fixed part of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub kind: Kind,
    pub format: SampleFormat,
    pub channels: u16,
    /// Frames (samples per channel) in this message.
    pub frames: u16,
    /// Which stream of the connection (a take's capture, a monitor feed).
    pub stream: u32,
    /// Counts the stream's messages from 0, to find loss and duplicates.
    pub seq: u32,
    /// The first sample's frame: the client's clock for `MIC`, the timeline for `MON`.
    pub frame: u64,
}

/// A decoded frame: its header and its samples as `f32`, interleaved.
#[derive(Debug, Clone, PartialEq)]
pub struct AudioFrame {
    pub header: Header,
    pub samples: Vec<f32>,
}

/// Why a binary message is not a frame. Each names what was wrong, for the `error` reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    TooShort(usize),
    BadMagic(u8),
    BadVersion(u8),
    BadKind(u8),
    BadFormat(u8),
    BadChannels(u16),
    BadFrameCount(u16),
    /// The payload's length does not match the header's channels × frames × sample size.
    Length {
        expected: usize,
        got: usize,
    },
    /// A float sample that is NaN or infinite.
    NotFinite,
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::TooShort(n) => {
                write!(f, "binary frame of {n} bytes is shorter than the {HEADER_BYTES}-byte header")
            }
            FrameError::BadMagic(m) => write!(f, "binary frame magic is {m:#04x}, expected {MAGIC:#04x}"),
            FrameError::BadVersion(v) => write!(f, "binary frame version {v} is not supported (expected {VERSION})"),
            FrameError::BadKind(k) => write!(f, "binary frame kind {k} is unknown (1 MIC, 2 MON)"),
            FrameError::BadFormat(k) => write!(f, "sample format {k} is unknown (1 f32, 2 i16)"),
            FrameError::BadChannels(c) => write!(f, "{c} channels: a frame carries 1 to {MAX_CHANNELS}"),
            FrameError::BadFrameCount(n) => write!(f, "{n} frames: a message carries 1 to {MAX_FRAMES}"),
            FrameError::Length { expected, got } => {
                write!(f, "the header announces {expected} bytes of samples, the message has {got}")
            }
            FrameError::NotFinite => f.write_str("a sample is NaN or infinite"),
        }
    }
}

impl std::error::Error for FrameError {}

fn u16_at(bytes: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([bytes[at], bytes[at + 1]])
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(word)
}

/// Reads and checks a frame's header (not its payload).
pub fn decode_header(bytes: &[u8]) -> Result<Header, FrameError> {
    if bytes.len() < HEADER_BYTES {
        return Err(FrameError::TooShort(bytes.len()));
    }
    if bytes[0] != MAGIC {
        return Err(FrameError::BadMagic(bytes[0]));
    }
    if bytes[1] != VERSION {
        return Err(FrameError::BadVersion(bytes[1]));
    }
    let kind = match bytes[2] {
        1 => Kind::Mic,
        2 => Kind::Mon,
        other => return Err(FrameError::BadKind(other)),
    };
    let format = match bytes[3] {
        1 => SampleFormat::F32,
        2 => SampleFormat::I16,
        other => return Err(FrameError::BadFormat(other)),
    };
    let channels = u16_at(bytes, 4);
    if !(1..=MAX_CHANNELS).contains(&channels) {
        return Err(FrameError::BadChannels(channels));
    }
    let frames = u16_at(bytes, 6);
    if !(1..=MAX_FRAMES).contains(&frames) {
        return Err(FrameError::BadFrameCount(frames));
    }
    Ok(Header {
        kind,
        format,
        channels,
        frames,
        stream: u32_at(bytes, 8),
        seq: u32_at(bytes, 12),
        frame: u64_at(bytes, 16),
    })
}

/// Decodes a whole frame, samples converted to `f32` (`i16` scaled by 1/32768).
pub fn decode(bytes: &[u8]) -> Result<AudioFrame, FrameError> {
    let header = decode_header(bytes)?;
    let payload = &bytes[HEADER_BYTES..];
    let count = usize::from(header.channels) * usize::from(header.frames);
    let expected = count * header.format.bytes();
    if payload.len() != expected {
        return Err(FrameError::Length { expected, got: payload.len() });
    }
    let samples: Vec<f32> = match header.format {
        SampleFormat::F32 => payload.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(),
        SampleFormat::I16 => {
            payload.chunks_exact(2).map(|b| f32::from(i16::from_le_bytes([b[0], b[1]])) / 32_768.0).collect()
        }
    };
    if samples.iter().any(|s| !s.is_finite()) {
        return Err(FrameError::NotFinite);
    }
    Ok(AudioFrame { header, samples })
}

/// Appends the frame for `header` and `samples` (interleaved, `header.channels` ×
/// `header.frames` of them) to `out`. `i16` rounds and clamps.
pub fn encode(header: &Header, samples: &[f32], out: &mut Vec<u8>) {
    debug_assert_eq!(samples.len(), usize::from(header.channels) * usize::from(header.frames));
    out.reserve(HEADER_BYTES + samples.len() * header.format.bytes());
    out.extend_from_slice(&[MAGIC, VERSION, header.kind as u8, header.format as u8]);
    out.extend_from_slice(&header.channels.to_le_bytes());
    out.extend_from_slice(&header.frames.to_le_bytes());
    out.extend_from_slice(&header.stream.to_le_bytes());
    out.extend_from_slice(&header.seq.to_le_bytes());
    out.extend_from_slice(&header.frame.to_le_bytes());
    out.extend_from_slice(&0u64.to_le_bytes());
    match header.format {
        SampleFormat::F32 => samples.iter().for_each(|s| out.extend_from_slice(&s.to_le_bytes())),
        SampleFormat::I16 => samples.iter().for_each(|s| {
            let value = (s * 32_768.0).round().clamp(-32_768.0, 32_767.0) as i16;
            out.extend_from_slice(&value.to_le_bytes());
        }),
    }
}

/// Where a message falls in its stream's sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqOrder {
    /// The next one expected.
    Next,
    /// Later than expected: messages `missing_from..seq` have not arrived (yet).
    Ahead { missing_from: u32 },
    /// One that was missing, arriving late (a resend): welcome.
    Filled,
    /// Already received: a duplicate.
    Duplicate,
}

/// Which messages of one stream have arrived: everything before `complete`, and some after it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeqTracker {
    /// One past the highest seen.
    next: u32,
    /// Every message before this one has arrived.
    complete: u32,
    /// Messages at or after `complete` that arrived (so a gap's later arrivals are known).
    beyond: std::collections::BTreeSet<u32>,
}

/// Most out-of-order arrivals remembered past a gap; beyond them the oldest gap is given up.
const MAX_BEYOND: usize = 4_096;

impl SeqTracker {
    /// Notes the arrival of `seq`.
    pub fn observe(&mut self, seq: u32) -> SeqOrder {
        if seq < self.complete || self.beyond.contains(&seq) {
            return SeqOrder::Duplicate;
        }
        self.beyond.insert(seq);
        while self.beyond.first() == Some(&self.complete) {
            self.beyond.pop_first();
            self.complete = self.complete.wrapping_add(1);
        }
        if self.beyond.len() > MAX_BEYOND
            && let Some(&oldest) = self.beyond.first()
        {
            self.complete = oldest;
            while self.beyond.first() == Some(&self.complete) {
                self.beyond.pop_first();
                self.complete = self.complete.wrapping_add(1);
            }
        }
        use std::cmp::Ordering;
        match seq.cmp(&self.next) {
            Ordering::Equal => {
                self.next = seq.wrapping_add(1);
                SeqOrder::Next
            }
            Ordering::Greater => {
                let missing_from = self.next;
                self.next = seq.wrapping_add(1);
                SeqOrder::Ahead { missing_from }
            }
            Ordering::Less => SeqOrder::Filled,
        }
    }

    /// Every message before this one has arrived: what a sender may forget, and resend from.
    pub fn complete(&self) -> u32 {
        self.complete
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(format: SampleFormat, channels: u16, frames: u16) -> Header {
        Header { kind: Kind::Mic, format, channels, frames, stream: 7, seq: 3, frame: 1_234_567_890_123 }
    }

    #[test]
    fn f32_frames_round_trip_exactly() {
        let samples: Vec<f32> = (0..256).map(|n| (n as f32 * 0.01).sin()).collect();
        let mut bytes = Vec::new();
        encode(&header(SampleFormat::F32, 2, 128), &samples, &mut bytes);
        assert_eq!(bytes.len(), HEADER_BYTES + 256 * 4);
        assert_eq!(&bytes[..4], &[0xA7, 1, 1, 1]);
        let frame = decode(&bytes).unwrap();
        assert_eq!(frame.header, header(SampleFormat::F32, 2, 128));
        assert_eq!(frame.samples, samples);
    }

    #[test]
    fn i16_frames_round_trip_within_half_a_step_and_clamp() {
        let samples = [0.0, 0.5, -0.5, 1.0, -1.0, 0.123_456];
        let mut bytes = Vec::new();
        encode(&header(SampleFormat::I16, 1, 6), &samples, &mut bytes);
        let decoded = decode(&bytes).unwrap().samples;
        assert_eq!(&decoded[..3], &[0.0, 0.5, -0.5]);
        assert_eq!(decoded[3], 32_767.0 / 32_768.0, "full scale clamps");
        assert_eq!(decoded[4], -1.0);
        assert!((decoded[5] - 0.123_456).abs() <= 0.5 / 32_768.0);
    }

    #[test]
    fn every_malformed_frame_is_an_error_naming_the_fault() {
        let mut good = Vec::new();
        encode(&header(SampleFormat::F32, 1, 4), &[0.1; 4], &mut good);
        let with = |at: usize, value: u8| {
            let mut bytes = good.clone();
            bytes[at] = value;
            decode(&bytes)
        };
        assert_eq!(decode(&good[..31]), Err(FrameError::TooShort(31)));
        assert_eq!(with(0, 0x41), Err(FrameError::BadMagic(0x41)));
        assert_eq!(with(1, 2), Err(FrameError::BadVersion(2)));
        assert_eq!(with(2, 9), Err(FrameError::BadKind(9)));
        assert_eq!(with(3, 3), Err(FrameError::BadFormat(3)));
        assert_eq!(with(4, 0), Err(FrameError::BadChannels(0)));
        assert_eq!(with(4, 3), Err(FrameError::BadChannels(3)));
        assert_eq!(with(6, 0), Err(FrameError::BadFrameCount(0)));
        assert_eq!(with(6, 5), Err(FrameError::Length { expected: 20, got: 16 }));
        assert_eq!(decode(&good[..good.len() - 1]), Err(FrameError::Length { expected: 16, got: 15 }));
        let mut nan = good.clone();
        nan[HEADER_BYTES..HEADER_BYTES + 4].copy_from_slice(&f32::NAN.to_le_bytes());
        assert_eq!(decode(&nan), Err(FrameError::NotFinite));
        let mut huge = good.clone();
        huge[6..8].copy_from_slice(&(MAX_FRAMES + 1).to_le_bytes());
        assert_eq!(decode(&huge), Err(FrameError::BadFrameCount(MAX_FRAMES + 1)));
        assert!(with(0, 0).unwrap_err().to_string().contains("magic"));
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // A small deterministic fuzz: every prefix of noisy bytes decodes to a value or an error.
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..2_000 {
            let len = (state % 200) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state as u8
                })
                .collect();
            let mut framed = bytes.clone();
            if framed.len() >= 2 {
                framed[0] = MAGIC;
                framed[1] = VERSION;
            }
            let _ = decode(&bytes);
            let _ = decode(&framed);
        }
    }

    #[test]
    fn sequences_find_gaps_and_duplicates() {
        let mut seq = SeqTracker::default();
        assert_eq!(seq.observe(0), SeqOrder::Next);
        assert_eq!(seq.observe(1), SeqOrder::Next);
        assert_eq!(seq.observe(4), SeqOrder::Ahead { missing_from: 2 });
        assert_eq!(seq.complete(), 2);
        assert_eq!(seq.observe(2), SeqOrder::Filled, "a late resend");
        assert_eq!(seq.complete(), 3, "3 is still missing");
        assert_eq!(seq.observe(4), SeqOrder::Duplicate);
        assert_eq!(seq.observe(3), SeqOrder::Filled);
        assert_eq!(seq.complete(), 5);
        assert_eq!(seq.observe(5), SeqOrder::Next);
        assert_eq!(seq.observe(0), SeqOrder::Duplicate);
    }
}
