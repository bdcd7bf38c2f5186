// AudioLab's reference client device (§10): the browser as the project's microphone and
// speaker. An AudioWorklet plays the mix and captures the microphone in one callback; a Worker
// owns the socket. `calibrate` measures the round trip (or estimates it on headphones).
//
//   const context = new AudioContext({ sampleRate: 48000 });
//   const stream = await navigator.mediaDevices.getUserMedia({ audio: MIC_CONSTRAINTS });
//   const latency = await calibrate(context, stream);
//   const device = await ClientDevice.start(context, stream, { url, name: 'laptop', latencyFrames: latency.frames });
//   await device.control('record_start', { track_id, count_in_bars: 1 });

export const MIC_CONSTRAINTS = { echoCancellation: false, noiseSuppression: false, autoGainControl: false };

export class ClientDevice {
  /**
   * Attaches to the project's socket at `url` (with `?access_token=` when auth is on) as the
   * device `name`, placing takes with `latencyFrames` (else the round trip stored for the
   * device with `PUT /api/audio/devices/client:<name>/latency`). Resolves once the node has
   * answered `attached`. The lookahead (how far the node renders ahead of what was played) is
   * sized from the round trips of a few pings unless `lookaheadFrames` is given. With
   * `role: 'listener'` it only plays the mix the project's device plays (a viewer's way to
   * hear the session); `stream` may then be null, and its worker says `{type: 'heard'}` (at
   * most once a second) while the mix reaches it.
   */
  static async start(context, stream, { url, name, role = 'device', latencyFrames = null, lookaheadFrames = null, channels = 1 }) {
    await context.audioWorklet.addModule(new URL('./device-worklet.js', import.meta.url));
    const node = new AudioWorkletNode(context, 'audiolab-device', {
      numberOfInputs: 1,
      numberOfOutputs: 1,
      outputChannelCount: [2],
      processorOptions: { channels },
    });
    // A listener (`role: 'listener'`) only hears the mix: no microphone, no clock of its own.
    if (stream) context.createMediaStreamSource(stream).connect(node);
    node.connect(context.destination);
    const worker = new Worker(new URL('./device-worker.js', import.meta.url), { type: 'module' });
    const device = new ClientDevice(node, worker);
    const channel = new MessageChannel();
    node.port.postMessage({ type: 'port', port: channel.port2 }, [channel.port2]);
    const attached = device.next((m) => m.type === 'state' && m.state === 'attached');
    const rate = context.sampleRate;
    const options = { type: 'start', url, name, role, latencyFrames, lookaheadFrames, channels, rate, port: channel.port1 };
    worker.postMessage(options, [channel.port1]);
    await attached;
    return device;
  }

  constructor(node, worker) {
    this.node = node;
    this.worker = worker;
    this.listeners = new Set();
    this.nextId = 1;
    worker.onmessage = (event) => {
      for (const listener of [...this.listeners]) listener(event.data);
    };
  }

  /** Calls `listener` with every message from the worker; returns a function that stops it. */
  on(listener) {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The next worker message that `wanted` accepts. */
  next(wanted, timeoutMs = 10_000) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        stop();
        reject(new Error('no answer from the audio node'));
      }, timeoutMs);
      const stop = this.on((message) => {
        if (wanted(message)) {
          clearTimeout(timer);
          stop();
          resolve(message);
        }
      });
    });
  }

  /** Sends a control command on the socket; resolves with its `control_response` data. */
  async control(command, data = {}) {
    const id = `c${this.nextId++}`;
    const answer = this.next((m) => m.type === 'message' && m.message.type === 'control_response' && m.message.data.id === id);
    this.worker.postMessage({ type: 'control', id, command, data });
    const response = (await answer).message.data;
    if (!response.success) throw new Error(`${command}: ${response.error?.message ?? 'refused'}`);
    return response.result;
  }

  /** Microphone frames the node has not acknowledged yet (a take is safe at 0). */
  async pending() {
    const answer = this.next((m) => m.type === 'pending');
    this.worker.postMessage({ type: 'pending' });
    return (await answer).frames;
  }

  /** Detaches (the node's clock takes over) and stops the audio. */
  stop() {
    this.worker.postMessage({ type: 'stop' });
    this.node.disconnect();
  }
}

/**
 * The round trip (output + input latency) in frames. Plays a short burst a few times and finds
 * it in the microphone by cross-correlation; the median of the delays, if most of them agree
 * with it within 1 ms, is `{frames, measured: true}`. When no burst comes back (headphones, or a device with
 * no path from output to input) the latencies the browser reports are summed instead:
 * `{frames, measured: false}` — an estimate, to be nudged by ear. `through` (for tests) takes
 * the burst's output node and returns the node the calibration hears instead of the microphone.
 */
export async function calibrate(context, stream, { bursts = 5, through = null } = {}) {
  const rate = context.sampleRate;
  const burst = new Float32Array(Math.round(rate * 0.005));
  // A noise burst (seeded) with a sharp autocorrelation peak.
  let seed = 12345;
  for (let i = 0; i < burst.length; i++) {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    burst[i] = ((seed / 0x7fffffff) * 2 - 1) * 0.5;
  }
  const period = Math.round(rate / 2);
  await context.audioWorklet.addModule(new URL('./device-worklet.js', import.meta.url));
  const node = new AudioWorkletNode(context, 'audiolab-calibration', {
    numberOfInputs: 1,
    numberOfOutputs: 1,
    outputChannelCount: [2],
    processorOptions: { burst, bursts, period, rate },
  });
  const source = through ? through(node) : context.createMediaStreamSource(stream);
  source.connect(node);
  node.connect(context.destination);
  const recorded = await new Promise((resolve) => {
    node.port.onmessage = (event) => resolve(event.data.recorded);
  });
  source.disconnect();
  node.disconnect();
  const delays = [];
  const maxDelay = Math.round(rate * 0.4);
  for (let b = 0; b < bursts; b++) {
    const found = findBurst(recorded, burst, b * period, maxDelay);
    if (found !== null) delays.push(found);
  }
  // Most bursts must agree within 1 ms of their median (a glitch may spoil one).
  delays.sort((a, b) => a - b);
  const median = delays[Math.floor(delays.length / 2)];
  const agreeing = delays.filter((d) => Math.abs(d - median) <= rate / 1000);
  if (agreeing.length > bursts / 2) {
    const spread = agreeing[agreeing.length - 1] - agreeing[0];
    return { frames: median, measured: true, spreadMs: (spread / rate) * 1000 };
  }
  const track = stream.getAudioTracks()[0];
  const input = track?.getSettings().latency ?? 0;
  const seconds = (context.outputLatency || 0) + (context.baseLatency || 0) + input;
  return { frames: Math.round(seconds * rate), measured: false, spreadMs: null };
}

/**
 * The delay (frames after `onset`) where `recorded` holds `burst`, if it does: the normalised
 * cross-correlation must pass 0.6, so other sounds (a click track, speech) are not mistaken
 * for the burst however loud they are.
 */
export function findBurst(recorded, burst, onset, maxDelay) {
  let burstEnergy = 0;
  for (const b of burst) burstEnergy += b * b;
  let window = 0;
  for (let k = 0; k < burst.length; k++) window += (recorded[onset + k] ?? 0) ** 2;
  let best = 0;
  let bestAt = -1;
  for (let d = 0; d < maxDelay; d++) {
    let sum = 0;
    for (let k = 0; k < burst.length; k++) sum += burst[k] * (recorded[onset + d + k] ?? 0);
    const score = window > 1e-9 ? Math.abs(sum) / Math.sqrt(burstEnergy * window) : 0;
    if (score > best) {
      best = score;
      bestAt = d;
    }
    const leaving = recorded[onset + d] ?? 0;
    const entering = recorded[onset + d + burst.length] ?? 0;
    window = Math.max(0, window - leaving * leaving + entering * entering);
  }
  return bestAt >= 0 && best > 0.6 ? bestAt : null;
}
