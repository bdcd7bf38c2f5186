// The audio thread of a client device (§10): plays the project's MON stream and captures the
// microphone in the same callback, so both are counted on one clock — the AudioContext's frame
// counter (`currentFrame`). Every 512 frames it hands the worker what it played (runs of client
// frames against timeline frames; an underrun is a gap) and the microphone frames it captured.
// No allocation in the steady state beyond the blocks it posts.

const BLOCK = 512;

class DeviceProcessor extends AudioWorkletProcessor {
  constructor(options) {
    super();
    this.channels = options.processorOptions?.channels ?? 1;
    this.queue = []; // {timeline, samples: Float32Array (stereo interleaved)}
    this.offset = 0; // frames of queue[0] already played
    this.consumed = 0;
    this.runs = [];
    this.mic = new Float32Array(BLOCK * this.channels);
    this.micFrames = 0;
    this.micStart = 0;
    this.worker = null;
    this.port.onmessage = (event) => {
      if (event.data.type === 'port') {
        this.worker = event.data.port;
        this.worker.onmessage = (e) => {
          if (e.data.type === 'monitor') this.queue.push(e.data);
          else if (e.data.type === 'reset') this.queue = [];
        };
      }
    };
  }

  /** Notes that client frames `client..` played timeline frames `timeline..` (merging runs). */
  played(client, timeline, frames) {
    const last = this.runs[this.runs.length - 1];
    if (last && last.client + last.frames === client && last.timeline + last.frames === timeline) {
      last.frames += frames;
    } else {
      this.runs.push({ client, timeline, frames });
    }
    this.consumed += frames;
  }

  process(inputs, outputs) {
    const out = outputs[0];
    const frames = out[0].length;
    const left = out[0];
    const right = out[1] ?? out[0];
    let done = 0;
    while (done < frames && this.queue.length > 0) {
      const block = this.queue[0];
      const available = block.samples.length / 2 - this.offset;
      const take = Math.min(available, frames - done);
      for (let i = 0; i < take; i++) {
        left[done + i] = block.samples[(this.offset + i) * 2];
        right[done + i] = block.samples[(this.offset + i) * 2 + 1];
      }
      this.played(currentFrame + done, block.timeline + this.offset, take);
      this.offset += take;
      done += take;
      if (this.offset * 2 >= block.samples.length) {
        this.queue.shift();
        this.offset = 0;
      }
    }
    for (let i = done; i < frames; i++) {
      left[i] = 0;
      right[i] = 0;
    }

    // The microphone: what arrived in this same callback, at the same client frames.
    const input = inputs[0];
    for (let i = 0; i < frames; i++) {
      if (this.micFrames === 0) this.micStart = currentFrame + i;
      for (let c = 0; c < this.channels; c++) {
        const channel = input[c] ?? input[0];
        this.mic[this.micFrames * this.channels + c] = channel ? channel[i] : 0;
      }
      this.micFrames++;
      if (this.micFrames === BLOCK) this.flush();
    }
    return true;
  }

  flush() {
    if (this.worker) {
      const mic = this.mic.slice(0, this.micFrames * this.channels);
      this.worker.postMessage(
        { type: 'block', client: this.micStart, mic, runs: this.runs, consumed: this.consumed },
        [mic.buffer],
      );
    }
    this.runs = [];
    this.micFrames = 0;
  }
}

registerProcessor('audiolab-device', DeviceProcessor);

// Latency calibration (§10): plays a short burst every half second and records the input on
// the same clock; the main thread finds each burst in the recording by cross-correlation.
class CalibrationProcessor extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const { burst, bursts, period, rate } = options.processorOptions;
    this.burst = burst;
    this.bursts = bursts;
    this.period = period;
    this.recorded = new Float32Array(period * (bursts + 1) + rate);
    this.start = -1;
  }

  process(inputs, outputs) {
    const out = outputs[0];
    const frames = out[0].length;
    if (this.start < 0) this.start = currentFrame;
    const at = currentFrame - this.start;
    for (let i = 0; i < frames; i++) {
      const t = at + i;
      const k = t % this.period;
      const onset = Math.floor(t / this.period);
      const value = onset < this.bursts && k < this.burst.length ? this.burst[k] : 0;
      for (const channel of out) channel[i] = value;
      const input = inputs[0][0];
      if (t < this.recorded.length) this.recorded[t] = input ? input[i] : 0;
    }
    if (at + frames >= this.recorded.length) {
      this.port.postMessage({ recorded: this.recorded });
      return false;
    }
    return true;
  }
}

registerProcessor('audiolab-calibration', CalibrationProcessor);
