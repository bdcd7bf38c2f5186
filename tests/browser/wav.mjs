// WAV files for the browser tests: a click track for Chromium's fake microphone, and the
// first channel of a WAV the server hands back.
import { writeFileSync } from 'node:fs';

export const RATE = 48_000;

/**
 * A 16-bit mono 48 kHz click track of `seconds`: a 5 ms burst of 2 kHz every half second (a
 * beat at 120 bpm) from frame `first`, and a last second of silence (Chromium may repeat the
 * last buffer of a file it plays once).
 */
export function clickFile(path, seconds, first = 0) {
  const frames = RATE * seconds;
  const data = Buffer.alloc(frames * 2);
  for (let n = first; n < frames - RATE; n++) {
    const k = (n - first) % (RATE / 2);
    const value = k < 240 ? Math.round(0.6 * 32767 * Math.sin((2 * Math.PI * 2000 * k) / RATE)) : 0;
    data.writeInt16LE(value, n * 2);
  }
  const header = Buffer.alloc(44);
  header.write('RIFF', 0);
  header.writeUInt32LE(36 + data.length, 4);
  header.write('WAVEfmt ', 8);
  header.writeUInt32LE(16, 16);
  header.writeUInt16LE(1, 20);
  header.writeUInt16LE(1, 22);
  header.writeUInt32LE(RATE, 24);
  header.writeUInt32LE(RATE * 2, 28);
  header.writeUInt16LE(2, 32);
  header.writeUInt16LE(16, 34);
  header.write('data', 36);
  header.writeUInt32LE(data.length, 40);
  writeFileSync(path, Buffer.concat([header, data]));
}

/** A WAV's first channel (16/24/32-bit integer or 32-bit float PCM). */
export function readWav(buffer) {
  let at = 12;
  let format;
  while (at < buffer.length) {
    const id = buffer.toString('ascii', at, at + 4);
    const size = buffer.readUInt32LE(at + 4);
    if (id === 'fmt ') {
      format = { tag: buffer.readUInt16LE(at + 8), channels: buffer.readUInt16LE(at + 10), bits: buffer.readUInt16LE(at + 22) };
      if (format.tag === 0xfffe) format.tag = buffer.readUInt16LE(at + 32);
    }
    if (id === 'data') {
      const bytes = format.bits / 8;
      const count = Math.floor(size / (bytes * format.channels));
      const samples = new Float32Array(count);
      for (let i = 0; i < count; i++) {
        const p = at + 8 + i * bytes * format.channels;
        if (format.tag === 3) samples[i] = buffer.readFloatLE(p);
        else if (format.bits === 16) samples[i] = buffer.readInt16LE(p) / 32768;
        else if (format.bits === 24) samples[i] = buffer.readIntLE(p, 3) / 8388608;
        else samples[i] = buffer.readInt32LE(p) / 2147483648;
      }
      return samples;
    }
    at += 8 + size + (size % 2);
  }
  throw new Error('no data chunk');
}

/** Where the clicks of `samples` start (a click: above 0.05 after 0.1 s without one). */
export function clickOnsets(samples) {
  const onsets = [];
  for (let i = 0; i < samples.length; i++) {
    if (Math.abs(samples[i]) > 0.05 && (onsets.length === 0 || i - onsets[onsets.length - 1] > RATE / 10)) onsets.push(i);
  }
  return onsets;
}

/**
 * How many intervals between `onsets` are one beat (half a second) to within `tolerance`
 * frames. Chromium's fake capture may slip a 10 ms buffer when the machine is busy (its glitch,
 * upstream of the page), so callers ask for most of them, not all.
 */
export function beatIntervals(onsets, tolerance) {
  return onsets.slice(1).filter((at, i) => Math.abs(at - onsets[i] - RATE / 2) <= tolerance).length;
}
