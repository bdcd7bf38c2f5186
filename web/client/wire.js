// Binary audio frames (§10): a 32-byte little-endian header, then interleaved samples.
// u8 magic 0xA7, u8 version 1, u8 kind (1 MIC, 2 MON), u8 format (1 f32, 2 i16), u16 channels,
// u16 frames, u32 stream, u32 seq, u64 frame, u64 reserved. A MON frame's `frame` is a timeline
// frame, signed (before 0 during a count-in).

export const KIND_MIC = 1;
export const KIND_MON = 2;
const HEADER = 32;

/** Encodes f32 samples as a frame; returns its ArrayBuffer. */
export function encodeFrame({ kind, channels, stream, seq, frame, samples }) {
  const frames = samples.length / channels;
  const buffer = new ArrayBuffer(HEADER + samples.length * 4);
  const view = new DataView(buffer);
  view.setUint8(0, 0xa7);
  view.setUint8(1, 1);
  view.setUint8(2, kind);
  view.setUint8(3, 1);
  view.setUint16(4, channels, true);
  view.setUint16(6, frames, true);
  view.setUint32(8, stream, true);
  view.setUint32(12, seq, true);
  view.setBigInt64(16, BigInt(frame), true);
  new Float32Array(buffer, HEADER).set(samples);
  return buffer;
}

/** Decodes a frame (f32 or i16) into its header fields and f32 samples. */
export function decodeFrame(buffer) {
  const view = new DataView(buffer);
  if (view.getUint8(0) !== 0xa7) throw new Error('not an audio frame');
  const format = view.getUint8(3);
  const channels = view.getUint16(4, true);
  const frames = view.getUint16(6, true);
  const count = frames * channels;
  let samples;
  if (format === 1) {
    samples = new Float32Array(buffer.slice(HEADER, HEADER + count * 4));
  } else {
    const ints = new Int16Array(buffer.slice(HEADER, HEADER + count * 2));
    samples = Float32Array.from(ints, (v) => v / 32768);
  }
  return {
    kind: view.getUint8(2),
    channels,
    frames,
    stream: view.getUint32(8, true),
    seq: view.getUint32(12, true),
    frame: Number(view.getBigInt64(16, true)),
    samples,
  };
}
