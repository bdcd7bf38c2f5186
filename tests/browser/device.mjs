// The reference client device in a real browser (Debian's Chromium, driven by playwright-core):
// the fake microphone plays a click file; the page calibrates (the fake device has no path from
// output to input, so it must fall back to the estimate), attaches as the project's device,
// records a take through the socket, and the take ends up in the project with the clicks in it,
// every click one beat (24,000 frames) after the last.
//
//   node tests/browser/device.mjs <base url> <work dir>
import { chromium } from 'playwright-core';
import { writeFileSync } from 'node:fs';
import assert from 'node:assert/strict';

const [base, work] = process.argv.slice(2);
const RATE = 48_000;

/** A 16-bit mono WAV of `seconds`: a 5 ms click every half second from 0.25 s, then 1 s of silence. */
function clickFile(path, seconds) {
  const frames = RATE * (seconds + 1);
  const data = Buffer.alloc(frames * 2);
  for (let n = 0; n < RATE * seconds; n++) {
    const k = (n - RATE / 4) % (RATE / 2);
    const value = n >= RATE / 4 && k < 240 ? Math.round(0.6 * 32767 * Math.sin((2 * Math.PI * 2000 * k) / RATE)) : 0;
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

async function api(method, path, body) {
  const response = await fetch(base + path, {
    method,
    headers: body ? { 'content-type': 'application/json' } : {},
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await response.text();
  assert.ok(response.ok, `${method} ${path}: ${response.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

/** Reads a WAV's samples (16/24/32-bit integer or 32-bit float PCM), first channel. */
function readWav(buffer) {
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

const clicks = `${work}/clicks.wav`;
clickFile(clicks, 30);
const project = await api('POST', '/api/projects', { name: 'Browser take', tempo: 120 });
const track = await api('POST', '/api/tracks', { project_id: project.id, name: 'Mic', track_index: 0 });
await api('POST', `/api/audio/tracks/${track.id}/record/enable`, { device_id: 'client:browser', enabled: true });

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: [
    '--use-fake-ui-for-media-stream',
    '--use-fake-device-for-media-stream',
    `--use-file-for-fake-audio-capture=${clicks}%noloop`,
    '--autoplay-policy=no-user-gesture-required',
    '--mute-audio',
    '--no-sandbox',
  ],
});
try {
  const page = await browser.newPage();
  const log = [];
  page.on('console', (m) => log.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => log.push(`page error: ${e.message}`));
  await page.goto(base + '/');
  const url = base.replace('http', 'ws') + `/ws/audio/${project.id}`;
  const result = await page
    .evaluate(
      async ({ url, trackId }) => {
        const { ClientDevice, calibrate, MIC_CONSTRAINTS } = await import('/web/client/device.js');
        const context = new AudioContext({ sampleRate: 48000 });
        await context.resume();
        const stream = await navigator.mediaDevices.getUserMedia({ audio: MIC_CONSTRAINTS });
        // A round trip the page makes (a delay line from the burst back to the calibration's
        // input) is measured to the frame: 2,085 frames, and the render quantum (128) that a
        // cycle in an audio graph adds.
        const echo = (output) => {
          const line = new DelayNode(context, { maxDelayTime: 1, delayTime: 2085 / 48000 });
          output.connect(line);
          return line;
        };
        const looped = await calibrate(context, stream, { bursts: 5, through: echo });
        const latency = await calibrate(context, stream, { bursts: 3 });
        // Stored for the device, so every later session places takes with it.
        const stored = await fetch('/api/audio/devices/client:browser/latency', {
          method: 'PUT',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ latency_ms: latency.frames / 48, source: latency.measured ? 'measured' : 'estimated' }),
        });
        if (!stored.ok) throw new Error(`storing the round trip: ${stored.status} ${await stored.text()}`);
        const device = await ClientDevice.start(context, stream, { url, name: 'browser' });
        const started = await device.control('record_start', { track_id: trackId, start_time: 0 });
        await new Promise((r) => setTimeout(r, 3000));
        const stopped = await device.control('record_stop', { session_id: started.session_id });
        const pending = await device.pending();
        const status = await device.control('status', {});
        device.stop();
        return { looped, latency, started, stopped, pending, status };
      },
      { url, trackId: track.id },
    )
    .catch((error) => {
      console.error(log.join('\n'));
      throw error;
    });
  console.log('calibration through a 2,085-frame delay line:', JSON.stringify(result.looped));
  assert.equal(result.looped.measured, true, 'a burst that comes back is measured');
  assert.ok(Math.abs(result.looped.frames - (2085 + 128)) <= 1, `measured ${result.looped.frames} frames`);
  console.log('calibration with the fake microphone:', JSON.stringify(result.latency));
  assert.equal(result.latency.measured, false, 'the fake microphone cannot hear the page: an estimate');
  assert.ok(result.latency.frames >= 0 && result.latency.frames < RATE, `estimate ${result.latency.frames}`);
  assert.equal(result.status.client_device.device_id, 'client:browser');
  assert.equal(result.status.client_device.latency_frames, result.latency.frames, 'the stored round trip is used');
  assert.equal(result.stopped.missing_frames, 0, JSON.stringify(result.stopped));
  const clipId = result.stopped.clip_id;
  assert.ok(clipId, JSON.stringify(result.stopped));

  let clip;
  for (let i = 0; i < 100; i++) {
    clip = await api('GET', `/api/clips/${clipId}`);
    if (clip.status !== 'processing') break;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(clip.status, 'ready', JSON.stringify(clip));
  assert.equal(clip.start_frame, 0, 'the take starts at the record point');
  const audio = Buffer.from(await (await fetch(`${base}/api/clips/${clipId}/audio`)).arrayBuffer());
  const take = readWav(audio);
  console.log(`take: ${take.length} frames (${(take.length / RATE).toFixed(2)} s)`);
  assert.ok(take.length > RATE * 2, `${take.length} frames recorded in 3 s`);
  // Onsets of the clicks in the take: each one beat after the last, to the frame (the client's
  // clock paced the take, so nothing was stretched or dropped).
  const onsets = [];
  for (let i = 1; i < take.length; i++) {
    if (Math.abs(take[i]) > 0.05 && (onsets.length === 0 || i - onsets[onsets.length - 1] > 4_800)) onsets.push(i);
  }
  console.log('click onsets:', onsets.join(', '));
  assert.ok(onsets.length >= 4, `clicks in the take: ${onsets.length}`);
  // Chromium's fake capture may slip a 10 ms buffer when the machine is busy (its glitch,
  // upstream of the page); most intervals must be exactly one beat.
  const exact = onsets.slice(1).filter((at, i) => Math.abs(at - onsets[i] - RATE / 2) <= 2).length;
  assert.ok(exact >= (onsets.length - 1) * 0.75, `clicks one beat apart: ${exact} of ${onsets.length - 1}`);
  console.log('browser device test: a take recorded through the reference client, clicks one beat apart');
} finally {
  await browser.close();
}
