// The network side of a client device (§10), off the main thread: owns the project's socket,
// decodes MON frames for the worklet, encodes the worklet's microphone blocks as MIC frames,
// reports what was played, and survives a lost connection: it keeps every MIC frame until the
// node acknowledges it (`mic_ack`), reconnects, attaches again under the same name, and resends
// what the node says it lacks.

import { encodeFrame, decodeFrame, KIND_MIC, KIND_MON } from './wire.js';

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
    send({ type: 'ping' });
    send({
      type: 'attach',
      data: {
        role: 'device',
        name: options.name,
        lookahead_frames: options.lookaheadFrames,
        channels: options.channels,
        ...(options.latencyFrames === null ? {} : { latency_frames: options.latencyFrames }),
      },
    });
  };
  socket.onmessage = (event) => {
    if (typeof event.data !== 'string') {
      const frame = decodeFrame(event.data);
      if (frame.kind !== KIND_MON || frame.seq < nextMonitorSeq) return; // sent again: played
      nextMonitorSeq = frame.seq + 1;
      worklet?.postMessage({ type: 'monitor', timeline: frame.frame, samples: frame.samples }, [frame.samples.buffer]);
      return;
    }
    const message = JSON.parse(event.data);
    if (message.type === 'attached') resumed(message.data);
    if (message.type === 'mic_ack') {
      for (const seq of unacked.keys()) if (seq < message.data.next_seq) unacked.delete(seq);
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

/** After `attached`: on a resume, report the runs and resend the MIC frames the node lacks. */
function resumed(data) {
  attached = true;
  everAttached = true;
  post({ type: 'state', state: 'attached', resumed: data.resumed });
  if (!data.resumed) return;
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
function block({ client, mic, runs: played, consumed: total }) {
  if (!everAttached) return;
  consumed = total;
  runs.push(...played);
  // Runs are kept for a few seconds, in case a report is lost with the connection.
  while (runs.length > 0 && runs[0].client + runs[0].frames < client - 10 * 48_000) runs.shift();
  const bytes = encodeFrame({
    kind: KIND_MIC,
    channels: options.channels,
    stream: MIC_STREAM,
    seq: micSeq,
    frame: client,
    samples: mic,
  });
  unacked.set(micSeq, bytes);
  micSeq++;
  if (attached) {
    send({ type: 'played', data: { consumed, runs: played } });
    socket.send(bytes);
  }
}

self.onmessage = (event) => {
  const data = event.data;
  if (data.type === 'start') {
    options = data;
    worklet = data.port;
    worklet.onmessage = (e) => block(e.data);
    connect();
  } else if (data.type === 'control') {
    send({ type: 'control', id: data.id, command: data.command, data: data.data ?? {} });
  } else if (data.type === 'stop') {
    closing = true;
    send({ type: 'detach' });
    socket?.close();
  } else if (data.type === 'pending') {
    post({ type: 'pending', frames: unacked.size });
  }
};
