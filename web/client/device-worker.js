// The network side of a client device (§10), off the main thread: owns the project's socket,
// decodes MON frames for the worklet, encodes the worklet's microphone blocks as MIC frames,
// reports what was played, and survives a lost connection: it keeps every MIC frame until the
// node acknowledges it (`mic_ack`), reconnects, attaches again under the same name, and resends
// what the node says it lacks. What it must not lose is also kept in IndexedDB (keep.js), so a
// page reloaded mid-take resumes the device and sends the rest.

import { encodeFrame, decodeFrame, KIND_MIC, KIND_MON } from './wire.js';
import { openKeep } from './keep.js';

const MIC_STREAM = 1;

let options = null;
let socket = null;
let worklet = null; // MessagePort to the worklet
let attached = false;
let everAttached = false; // the microphone before the first attach is nobody's take
let closing = false;
let retryDelay = 250;

let micSeq = 0;
const unacked = new Map(); // seq → ArrayBuffer (encoded MIC frame)
let consumed = 0;
const runs = []; // played runs not yet known to be reported: {client, timeline, frames}
let nextMonitorSeq = 0;
let heardAt = 0; // when a listener last told its page it hears the mix

// Continuing after a reload: the new page's clock starts again at 0, so its frames are moved
// past the old page's; what it plays and its monitor frames carry on from where it stood.
let keep = null;
let clockBase = 0;
let consumedBase = 0;
let handed = 0; // monitor frames handed to the worklet, counted like `consumed`
const received = []; // monitor frames handed and not fully played: {seq, frames, end}
let trimSeq = -1; // the first monitor frame to play after a reload starts partway through
let trimSkip = 0;

function post(message) {
  self.postMessage(message);
}

function send(value) {
  if (socket?.readyState === WebSocket.OPEN) socket.send(JSON.stringify(value));
}

function connect() {
  socket = new WebSocket(options.url);
  socket.binaryType = 'arraybuffer';
  socket.onopen = () => {
    retryDelay = 250;
    probes = [];
    probe();
  };
  socket.onmessage = (event) => {
    if (typeof event.data !== 'string') {
      const frame = decodeFrame(event.data);
      if (frame.kind !== KIND_MON || frame.seq < nextMonitorSeq) return; // sent again: played
      nextMonitorSeq = frame.seq + 1;
      let { samples, frame: timeline, frames } = frame;
      if (frame.seq === trimSeq && trimSkip > 0) {
        samples = samples.slice(trimSkip * 2);
        timeline += trimSkip;
        frames -= trimSkip;
      }
      handed += frames;
      received.push({ seq: frame.seq, frames, end: handed });
      worklet?.postMessage({ type: 'monitor', timeline, samples }, [samples.buffer]);
      // A listener's page says when the mix reaches it (at most once a second).
      if (options.role === 'listener' && Date.now() - heardAt > 1000) {
        heardAt = Date.now();
        post({ type: 'heard', timeline });
      }
      return;
    }
    const message = JSON.parse(event.data);
    if (message.type === 'pong' && probes.length < PROBES && !attached) {
      probes.push(performance.now() - probeSent);
      if (probes.length < PROBES) setTimeout(probe, 20);
      else attach();
      return;
    }
    if (message.type === 'attached') resumed(message.data);
    if (message.type === 'device_changed') {
      // As a listener: another device's stream from now on, its `seq` counted from its start.
      nextMonitorSeq = 0;
    }
    if (message.type === 'detached') {
      // The owner detached this device, or the user's right to record went: the node's clock
      // paces the project again and nothing more is sent.
      attached = false;
      post({ type: 'state', state: 'detached', reason: message.data.reason ?? null });
    }
    if (message.type === 'mic_ack') {
      for (const seq of unacked.keys()) if (seq < message.data.next_seq) unacked.delete(seq);
      keep?.dropBelow(message.data.next_seq);
    }
    post({ type: 'message', message });
  };
  socket.onclose = () => {
    attached = false;
    if (closing) return;
    post({ type: 'state', state: 'reconnecting' });
    setTimeout(connect, retryDelay);
    retryDelay = Math.min(retryDelay * 2, 4000);
  };
}

// The lookahead is sized from the network: a few pings before attaching, and room for the
// slowest round trip twice over plus 40 ms, between 100 ms and 1 s (a mixer move or a seek is
// heard that much later; what plays stays placed to the sample whatever it is).
const PROBES = 6;
let probes = [];
let probeSent = 0;

function probe() {
  probeSent = performance.now();
  send({ type: 'ping' });
}

function attach() {
  const slowest = Math.max(...probes) / 1000;
  const sized = Math.round((2 * slowest + 0.04) * options.rate);
  const lookahead = options.lookaheadFrames ?? Math.min(Math.max(sized, Math.round(options.rate / 10)), options.rate);
  if (options.role === 'listener') {
    send({ type: 'attach', data: { role: 'listener' } });
    return;
  }
  send({
    type: 'attach',
    data: {
      role: 'device',
      name: options.name,
      lookahead_frames: lookahead,
      channels: options.channels,
      ...(options.latencyFrames === null ? {} : { latency_frames: options.latencyFrames }),
    },
  });
}

/** After `attached`: on a resume, report the runs and resend the MIC frames the node lacks. */
function resumed(data) {
  attached = true;
  everAttached = true;
  post({ type: 'state', state: 'attached', resumed: data.resumed });
  if (options.role === 'listener') {
    nextMonitorSeq = 0; // the device's stream, counted from its start
    return;
  }
  if (!data.resumed) {
    nextMonitorSeq = 0; // a new device: its own stream, counted from its start
    if (unacked.size > 0) post({ type: 'lost', frames: unacked.size }); // the node let the device go
    unacked.clear();
    keep?.clear();
    return;
  }
  if (data.consumed > consumed) {
    consumedBase += data.consumed - consumed;
    consumed = data.consumed;
  }
  const playedUntil = data.played_until ?? 0;
  const missing = runs
    .filter((r) => r.client + r.frames > playedUntil)
    .map((r) => {
      const skip = Math.max(0, playedUntil - r.client);
      return { client: r.client + skip, timeline: r.timeline + skip, frames: r.frames - skip };
    });
  send({ type: 'played', data: { consumed, runs: missing } });
  const next = data.microphone.find((m) => m.stream === MIC_STREAM)?.next_seq ?? 0;
  for (const [seq, bytes] of unacked) {
    if (seq < next) unacked.delete(seq);
    else socket.send(bytes);
  }
}

/** A block from the worklet: what it played, and the microphone it captured meanwhile. */
function block({ client: local, mic, runs: played, consumed: total }) {
  // A listener's playing paces nothing and its silence is nobody's take.
  if (options.role === 'listener') {
    while (received.length > 0 && received[0].end <= total) received.shift();
    return;
  }
  if (!everAttached) return;
  const client = clockBase + local;
  const reported = played.map((r) => ({ ...r, client: clockBase + r.client }));
  consumed = consumedBase + total;
  runs.push(...reported);
  // Runs are kept for a few seconds, in case a report is lost with the connection.
  while (runs.length > 0 && runs[0].client + runs[0].frames < client - 10 * options.rate) runs.shift();
  while (received.length > 0 && received[0].end <= consumed) received.shift();
  const bytes = encodeFrame({
    kind: KIND_MIC,
    channels: options.channels,
    stream: MIC_STREAM,
    seq: micSeq,
    frame: client,
    samples: mic,
  });
  unacked.set(micSeq, bytes);
  // Kept before it is sent, so the node never has more than the keep.
  keep?.putFrame(micSeq, bytes);
  micSeq++;
  const playing = received[0];
  keep?.putMeta({
    clockEnd: client + mic.length / options.channels,
    consumed,
    micSeq,
    runs: runs.slice(-256),
    monitorSeq: playing ? playing.seq : nextMonitorSeq,
    monitorSkip: playing ? consumed - (playing.end - playing.frames) + (playing.seq === trimSeq ? trimSkip : 0) : 0,
    savedAt: Date.now(),
  });
  if (attached) {
    send({ type: 'played', data: { consumed, runs: reported } });
    socket.send(bytes);
  }
}

/** Picks up where a page that went away left the device, if it was recently. */
async function restore() {
  if (options.role === 'listener') return;
  keep = await openKeep(`${options.url.split('?')[0]}|${options.name}`);
  const stored = await keep?.load().catch(() => null);
  const meta = stored?.meta;
  if (!meta || Date.now() - meta.savedAt > 55_000) {
    keep?.clear();
    return;
  }
  clockBase = meta.clockEnd + options.rate;
  consumedBase = meta.consumed;
  consumed = meta.consumed;
  handed = meta.consumed;
  micSeq = meta.micSeq;
  runs.push(...meta.runs);
  nextMonitorSeq = meta.monitorSeq;
  trimSeq = meta.monitorSeq;
  trimSkip = meta.monitorSkip;
  for (const [seq, bytes] of stored.frames) unacked.set(seq, bytes);
  everAttached = true;
  post({ type: 'restored', frames: unacked.size });
}

self.onmessage = (event) => {
  const data = event.data;
  if (data.type === 'start') {
    options = data;
    worklet = data.port;
    restore().finally(() => {
      worklet.onmessage = (e) => block(e.data);
      connect();
    });
  } else if (data.type === 'control') {
    send({ type: 'control', id: data.id, command: data.command, data: data.data ?? {} });
  } else if (data.type === 'stop') {
    closing = true;
    keep?.clear();
    send({ type: 'detach' });
    socket?.close();
  } else if (data.type === 'pending') {
    post({ type: 'pending', frames: unacked.size });
  }
};
