// The reference client device in a real browser (Debian's Chromium, driven by playwright-core):
// the fake microphone plays a click file; the page calibrates (the fake device has no path from
// output to input, so it must fall back to the estimate), attaches as the project's device,
// records a take through the socket, and the take ends up in the project with the clicks in it,
// every click one beat (24,000 frames) after the last.
//
//   node tests/browser/device.mjs <base url> <work dir>
import { chromium } from 'playwright-core';
import assert from 'node:assert/strict';
import { RATE, beatIntervals, clickFile, clickOnsets, readWav } from './wav.mjs';

const [base, work] = process.argv.slice(2);


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
  const onsets = clickOnsets(take);
  console.log('click onsets:', onsets.join(', '));
  assert.ok(onsets.length >= 4, `clicks in the take: ${onsets.length}`);
  // Most intervals (see beatIntervals on Chromium's fake capture).
  const exact = beatIntervals(onsets, 2);
  assert.ok(exact >= (onsets.length - 1) * 0.75, `clicks one beat apart: ${exact} of ${onsets.length - 1}`);
  console.log('browser device test: a take recorded through the reference client, clicks one beat apart');
} finally {
  await browser.close();
}
