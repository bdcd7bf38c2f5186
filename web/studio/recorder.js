// Recording from this browser (§10): "Enable audio" opens the microphone, measures the round
// trip (or estimates it, to be nudged by ear) and stores it for the device, then attaches the
// reference client device; the record button (and R) starts a take on the armed track, from
// the playhead or the rolling transport, with count-in and punch, and ends it (stopping the
// transport); the microphone's level while armed; a take that stops elsewhere (■, another
// page, the server) is shown stopped. A viewer's "Listen" attaches as a listener instead.

import { api } from './api.js';
import { h, toast } from './ui.js';
import { ClientDevice, calibrate, MIC_CONSTRAINTS } from '../client/device.js';

export class Recorder {
  constructor(studio) {
    this.studio = studio;
    this.device = null;
    this.recording = null; // the session id of this browser's take
    this.recordingFrom = null; // its first timeline frame
    const control = (name, label, onclick, attrs = {}) => h('button', { name, title: label, onclick, ...attrs }, label);
    this.recordButton = control('record', '● Record', () => this.toggle(), { class: 'record', 'aria-label': 'Record (R)' });
    this.countIn = h('select', { name: 'count-in' }, [0, 1, 2, 4].map((n) => h('option', { value: n }, n ? `${n} bar${n > 1 ? 's' : ''}` : 'none')));
    this.punch = h('input', { type: 'checkbox', name: 'punch' });
    this.punchIn = h('input', { type: 'number', name: 'punch-in', min: 0, step: 0.1, value: 1, class: 'short', title: 'Punch in (seconds)', 'aria-label': 'Punch in (seconds)' });
    this.punchOut = h('input', { type: 'number', name: 'punch-out', min: 0, step: 0.1, value: 3, class: 'short', title: 'Punch out (seconds)', 'aria-label': 'Punch out (seconds)' });
    // One handler: what the button does depends on how far audio has come.
    const audio = () => (!studio.canEdit ? this.listen() : this.device ? this.recalibrate() : this.enable());
    this.audioButton = studio.canEdit
      ? control('enable-audio', 'Enable audio', audio, { class: 'primary' })
      : control('enable-audio', 'Listen', audio, { class: 'primary', title: 'Hear the mix as the editors play it' });
    this.latency = h('output', { name: 'latency', class: 'muted' }, studio.canEdit ? 'Audio off: enable it to hear the mix and record.' : 'Listen to hear the mix as it plays.');
    this.inputLevel = h('meter', { name: 'input-level', min: 0, max: 1, low: 0.5, high: 0.8, optimum: 0.3, value: 0, title: 'Microphone level', hidden: true });
    this.nudge = h('input', { type: 'number', name: 'nudge', step: 0.1, value: 0, class: 'short', title: 'Nudge (ms)', disabled: true, onchange: () => this.storeLatency() });
  }

  /** The controls that change the project, for a viewer to see disabled. */
  get changing() {
    return [this.recordButton, this.countIn, this.punch, this.punchIn, this.punchOut];
  }

  /** Leaving the project: the device detaches, the microphone and the audio context close. */
  close() {
    this.device?.stop();
    for (const track of this.stream?.getTracks() ?? []) track.stop();
    this.context?.close().catch(() => {});
  }

  async enable() {
    const { studio } = this;
    this.audioButton.disabled = true;
    try {
      this.context = new AudioContext({ sampleRate: studio.rate, latencyHint: 'interactive' });
      await this.context.resume();
      try {
        this.stream = await navigator.mediaDevices.getUserMedia({ audio: MIC_CONSTRAINTS });
      } catch (error) {
        throw new Error(
          error.name === 'NotAllowedError'
            ? 'Microphone permission was refused: allow the microphone for this site in the browser, then try again.'
            : `No microphone could be opened (${error.message}).`,
        );
      }
      this.analyser = this.context.createAnalyser();
      this.analyser.fftSize = 1024;
      this.context.createMediaStreamSource(this.stream).connect(this.analyser);
      this.latency.textContent = 'Calibrating: a few clicks play; keep the room quiet…';
      this.measured = await calibrate(this.context, this.stream);
      this.nudge.disabled = false;
      this.nudge.value = 0;
      await this.storeLatency();
      this.device = await ClientDevice.start(this.context, this.stream, { url: api.socketUrl(studio.projectId), name: studio.deviceName });
      this.device.on((m) => {
        if (m.type === 'state' && m.state === 'reconnecting') this.latency.textContent = 'Audio connection lost — reconnecting (your take is kept)…';
        if (m.type === 'state' && m.state === 'attached') this.showLatency();
        if (m.type === 'state' && m.state === 'detached') this.latency.textContent = `Audio detached${m.reason ? `: ${m.reason}` : ''}.`;
        if (m.type === 'message' && m.message.type === 'error') toast(m.message.data.message);
        if (m.type === 'restored' && m.frames > 0) toast('Sending the rest of your take…', 'info');
        if (m.type === 'lost') toast('The audio device was away too long: the end of the take could not be sent.');
      });
      this.audioButton.textContent = 'Recalibrate';
      this.showLatency();
    } catch (error) {
      this.latency.textContent = 'Audio off.';
      toast(error.message);
      this.device?.stop();
      this.device = null;
    } finally {
      this.audioButton.disabled = false;
    }
  }

  async recalibrate() {
    this.audioButton.disabled = true;
    try {
      this.measured = await calibrate(this.context, this.stream);
      this.nudge.value = 0;
      await this.storeLatency();
      this.showLatency();
      toast('Calibrated: the new round trip applies to the next connection of the audio device.', 'info');
    } catch (error) {
      toast(`Calibration failed: ${error.message}`);
    } finally {
      this.audioButton.disabled = false;
    }
  }

  totalLatencyMs() {
    return Math.max(0, (this.measured.frames / this.context.sampleRate) * 1000 + Number(this.nudge.value || 0));
  }

  async storeLatency() {
    if (!this.measured) return;
    const source = Number(this.nudge.value) !== 0 ? 'manual' : this.measured.measured ? 'measured' : 'estimated';
    try {
      await api.put(`/api/audio/devices/client:${this.studio.deviceName}/latency`, { latency_ms: Number(this.totalLatencyMs().toFixed(3)), source });
      this.showLatency();
    } catch (error) {
      toast(error.message);
    }
  }

  showLatency() {
    if (!this.measured) return;
    const how = this.measured.measured ? 'measured' : 'estimated — headphones? nudge by ear';
    this.latency.textContent = `Round trip ${this.totalLatencyMs().toFixed(1)} ms (${how})`;
  }

  /** R and the record button: starts a take on the armed track, or ends it and stops the
   * transport (■ Stop). */
  async toggle() {
    const { studio } = this;
    if (!studio.canEdit) return toast(studio.viewerReason, 'info');
    if (this.recording) {
      const session = this.recording;
      this.show(false);
      // A take resumed after a reload, with audio not enabled again yet, stops over the
      // project's socket; the device's socket otherwise.
      const send = (command, data) => (this.device ? this.device.control(command, data) : studio.command(command, data));
      try {
        const stopped = await send('record_stop', { session_id: session });
        if (stopped.missing_frames > 0) {
          const seconds = (stopped.missing_frames / studio.rate).toFixed(3);
          toast(`The take is missing ${seconds} s of audio: it was on its way when the connection or the page went away.`, 'info');
        }
        if (stopped.finalize_job_id) studio.jobs.set(stopped.finalize_job_id, studio.jobRow('Saving the take'));
      } catch (error) {
        toast(error.message);
      }
      await send('stop', {}).catch(() => null);
      return;
    }
    if (!this.device) return toast('Enable audio first: the browser is your microphone.', 'info');
    if (!studio.armed) return toast('Arm a track first (its ● button).', 'info');
    const request = { track_id: studio.armed.id, count_in_bars: Number(this.countIn.value) };
    if (this.punch.checked) Object.assign(request, { punch_in: Number(this.punchIn.value), punch_out: Number(this.punchOut.value) });
    if (!studio.transport.playing) request.start_time = Math.max(0, studio.playheadFrame() / studio.rate);
    try {
      const started = await this.device.control('record_start', request);
      this.show(true, started.session_id, Math.round((started.start_time ?? studio.playheadFrame() / studio.rate) * studio.rate));
    } catch (error) {
      toast(error.message);
    }
  }

  /** A take of this browser's that the server still records (the page was reloaded). */
  resume(session) {
    this.show(true, session.session_id, session.start_frame ?? 0);
    toast('A take was recording from this browser: enable audio within a minute to carry on — nothing recorded is lost.', 'info');
  }

  /** The record button while a take records (its width never changes). */
  show(on, session = null, from = null) {
    this.recording = on ? session : null;
    this.recordingFrom = on ? from : null;
    this.recordButton.classList.toggle('on', on);
    this.recordButton.textContent = on ? '■ Stop' : '● Record';
  }

  /** What the server says of takes: this page's take ending elsewhere; the level while it records. */
  event(data) {
    if (data.event === 'failed') toast(`Recording failed: ${data.error ?? 'unknown reason'}`);
    if (data.event === 'progress' && data.session_id === this.recording) {
      this.inputLevel.hidden = false;
      this.inputLevel.value = Math.min(1, data.level ?? 0);
    }
    if ((data.event === 'stopped' || data.event === 'failed') && data.session_id === this.recording) this.show(false);
  }

  /** Each frame while armed and not recording: the microphone's level as the browser hears it. */
  meter(armed) {
    if (!this.analyser || this.recording) return;
    const samples = this.levelBuffer ?? (this.levelBuffer = new Float32Array(this.analyser.fftSize));
    this.analyser.getFloatTimeDomainData(samples);
    let peak = 0;
    for (const v of samples) peak = Math.max(peak, Math.abs(v));
    this.inputLevel.hidden = !armed;
    this.inputLevel.value = Math.min(1, peak);
  }

  /** A viewer's audio: the mix as the project's device plays it, nothing recorded. */
  async listen() {
    this.audioButton.disabled = true;
    try {
      this.context = new AudioContext({ sampleRate: this.studio.rate, latencyHint: 'playback' });
      await this.context.resume();
      this.device = await ClientDevice.start(this.context, null, { url: api.socketUrl(this.studio.projectId), name: '', role: 'listener' });
      this.latency.textContent = 'Listening: you hear the mix whenever an editor plays it.';
      this.audioButton.textContent = 'Listening';
      // While the mix comes, say so; a second without it, say that it is quiet.
      let quiet = null;
      this.device.on((m) => {
        if (m.type !== 'heard') return;
        this.latency.textContent = 'Listening: hearing the mix as it plays.';
        clearTimeout(quiet);
        quiet = setTimeout(() => (this.latency.textContent = 'Listening: you hear the mix whenever an editor plays it.'), 2500);
      });
    } catch (error) {
      this.audioButton.disabled = false;
      this.latency.textContent = 'Not listening.';
      toast(error.message);
    }
  }
}
