// One project's studio: transport and ruler, track lanes with clips and waveforms, mixer
// strips, recording from the browser's microphone (the reference client device), imports and
// mixdowns. The server is the truth: every edit goes through the API, and the project's socket
// brings everyone's changes (including this page's own) back to redraw.

import { accountDialog } from './account.js';
import { api } from './api.js';
import { dialog, h, toast, clock, barBeat } from './ui.js';
import { parseDat, zoomFor, drawPeaks } from './waveform.js';
import { ClientDevice, calibrate, MIC_CONSTRAINTS } from '../client/device.js';

const RULER = 28;
const LANE = 84;
const EDGE = 6; // pixels at a clip's edge that trim instead of move

export class Studio {
  constructor(root, projectId, me) {
    this.root = root;
    this.projectId = projectId;
    this.me = me;
    this.pps = 80; // pixels per second
    this.tracks = [];
    this.clips = new Map(); // track id → clips
    this.peaks = new Map(); // `${clip id}@${zoom}` → parsed peaks
    this.loop = null;
    this.transport = { frame: 0, playing: false, serverTime: 0, receivedAt: 0 };
    this.clockOffset = 0;
    this.armed = null;
    this.recording = null;
    this.device = null;
    this.jobs = new Map();
    this.revision = 0; // the project revision this page shows (§13)
    this.closed = false;
    this.deviceName = localStorage.getItem('audiolab.device') ?? `studio-${Math.random().toString(36).slice(2, 8)}`;
    localStorage.setItem('audiolab.device', this.deviceName);
  }

  get rate() {
    return this.project.sample_rate;
  }

  async open() {
    try {
      [this.project, this.members] = await Promise.all([
        api.get(`/api/projects/${this.projectId}`),
        api.get(`/api/projects/${this.projectId}/members`).catch(() => []),
      ]);
    } catch (error) {
      this.root.replaceChildren(h('p', { class: 'empty' }, [error.message, ' ', h('a', { href: '#' }, 'Back to projects')]));
      return;
    }
    this.role = this.members.find((m) => m.user_id === this.me.id)?.role ?? 'owner';
    this.build();
    this.connect();
    await this.reload().catch((error) => toast(error.message));
    const status = await api.get(`/api/audio/projects/${this.projectId}/playback/status`).catch(() => null);
    if (status) this.applyStatus(status);
    // A take this browser was recording when the page went away goes on once audio is back.
    const active = await api.get('/api/audio/recording/active').catch(() => []);
    const mine = active.find((r) => r.project_id === this.projectId && r.device_id === `client:${this.deviceName}`);
    if (mine) {
      this.recording = mine.session_id;
      this.recordButton.classList.add('on');
      this.recordButton.textContent = '■ Stop recording';
      toast('A take was recording from this browser: enable audio within a minute to carry on — nothing recorded is lost.', 'info');
    }
    const frame = () => {
      if (this.closed) return;
      this.drawPlayhead();
      requestAnimationFrame(frame);
    };
    requestAnimationFrame(frame);
  }

  close() {
    this.closed = true;
    this.socket?.close();
    this.device?.stop();
  }

  // ---- layout -------------------------------------------------------------------------

  build() {
    const control = (name, label, onclick, attrs = {}) => h('button', { name, title: label, onclick, ...attrs }, label);
    this.position = h('output', { class: 'position', name: 'position' }, '0:00.000');
    this.bars = h('output', { class: 'bars muted' }, '1.1');
    this.recordButton = control('record', '● Record', () => this.toggleRecord(), { class: 'record' });
    this.metronome = h('input', { type: 'checkbox', name: 'metronome', onchange: () => this.setMetronome() });
    this.countIn = h('select', { name: 'count-in' }, [0, 1, 2, 4].map((n) => h('option', { value: n }, n ? `${n} bar${n > 1 ? 's' : ''}` : 'none')));
    this.loopToggle = h('input', { type: 'checkbox', name: 'loop', onchange: () => this.toggleLoop() });
    this.punch = h('input', { type: 'checkbox', name: 'punch' });
    this.punchIn = h('input', { type: 'number', name: 'punch-in', min: 0, step: 0.1, value: 1, class: 'short' });
    this.punchOut = h('input', { type: 'number', name: 'punch-out', min: 0, step: 0.1, value: 3, class: 'short' });
    this.audioButton = control('enable-audio', 'Enable audio', () => this.enableAudio(), { class: 'primary' });
    this.latency = h('output', { name: 'latency', class: 'muted' }, 'Audio off: enable it to hear the mix and record.');
    this.nudge = h('input', { type: 'number', name: 'nudge', step: 0.1, value: 0, class: 'short', title: 'Nudge (ms)', disabled: true, onchange: () => this.storeLatency() });
    this.connection = h('span', { class: 'connection', name: 'connection' }, 'connecting…');
    this.canvas = h('canvas', { class: 'lanes' });
    this.headers = h('div', { class: 'headers' });
    this.playhead = h('div', { class: 'playhead' });
    this.scroller = h('div', { class: 'scroller' }, [this.canvas, this.playhead]);
    this.mixer = h('section', { class: 'mixer' });
    this.jobsArea = h('div', { class: 'jobs' });
    const editor = this.role !== 'viewer';
    this.root.replaceChildren(
      h('header', { class: 'bar' }, [
        h('a', { href: '#', title: 'Projects' }, '← Projects'),
        this.title = h('strong', { class: 'title' }, this.project.name),
        this.meter = h('span', { class: 'muted', name: 'meter' }, `${this.project.tempo} bpm · ${this.project.time_signature}`),
        h('span', { class: 'grow' }),
        this.connection,
        h('button', { name: 'members', onclick: () => this.membersDialog() }, 'Members'),
        this.me.auth_enabled ? h('button', { name: 'account', onclick: () => accountDialog(() => location.reload()) }, 'Account') : null,
        h('button', { name: 'mixdown', onclick: () => this.mixdownDialog() }, 'Mixdown'),
      ]),
      h('section', { class: 'transport' }, [
        control('stop', '■', () => this.command('stop')),
        control('play', '▶', () => this.command('play')),
        control('pause', '❚❚', () => this.command('pause')),
        editor ? this.recordButton : null,
        this.position,
        this.bars,
        h('label', {}, [this.metronome, 'Metronome']),
        h('label', {}, ['Count-in', this.countIn]),
        h('label', {}, [this.loopToggle, 'Loop']),
        h('label', {}, [this.punch, 'Punch', this.punchIn, '–', this.punchOut, 's']),
        h('span', { class: 'grow' }),
        this.audioButton,
        this.latency,
        h('label', { title: 'Move every take by this much (ms) if it sounds early or late' }, ['Nudge', this.nudge, 'ms']),
      ]),
      h('section', { class: 'timeline' }, [this.headers, this.scroller]),
      h('div', { class: 'row add' }, [
        editor ? h('button', { name: 'add-track', onclick: () => this.addTrack() }, '+ Track') : null,
        this.jobsArea,
      ]),
      this.mixer,
    );
    this.canvas.addEventListener('pointerdown', (e) => this.pointerDown(e));
    this.canvas.addEventListener('dragover', (e) => e.preventDefault());
    this.canvas.addEventListener('drop', (e) => this.drop(e));
  }

  // ---- data ---------------------------------------------------------------------------

  async reload() {
    const [project, tracks, loops] = await Promise.all([
      api.get(`/api/projects/${this.projectId}`),
      api.get(`/api/projects/${this.projectId}/tracks?limit=100`),
      api.get(`/api/projects/${this.projectId}/loops?limit=100`),
    ]);
    this.project = project;
    this.revision = Math.max(this.revision, project.revision ?? 0);
    this.title.textContent = project.name;
    this.meter.textContent = `${project.tempo} bpm · ${project.time_signature}`;
    this.tracks = tracks.items.sort((a, b) => a.track_index - b.track_index);
    this.loop = loops.find((l) => l.enabled) ?? loops[0] ?? null;
    this.loopToggle.checked = Boolean(this.loop?.enabled);
    const clips = await Promise.all(this.tracks.map((t) => api.get(`/api/tracks/${t.id}/clips?limit=500`)));
    this.clips = new Map(this.tracks.map((t, i) => [t.id, clips[i].items]));
    const takes = await Promise.all(this.tracks.map((t) => api.get(`/api/tracks/${t.id}/takes?limit=50`).catch(() => [])));
    this.takes = new Map(this.tracks.map((t, i) => [t.id, takes[i]]));
    this.renderHeaders();
    this.renderMixer();
    await this.loadPeaks();
    this.draw();
  }

  /** Reloads once after a burst of changes. */
  reloadSoon() {
    clearTimeout(this.reloadTimer);
    this.reloadTimer = setTimeout(() => this.reload().catch((e) => toast(e.message)), 80);
  }

  async loadPeaks() {
    const zoom = zoomFor(this.rate / this.pps);
    const wanted = [...this.clips.values()].flat().filter((c) => c.status === 'ready' && !this.peaks.has(`${c.id}@${zoom}`));
    await Promise.all(
      wanted.map(async (clip) => {
        try {
          const data = await api.bytes(`/api/clips/${clip.id}/peaks?samples_per_pixel=${zoom}`);
          this.peaks.set(`${clip.id}@${zoom}`, parseDat(data));
        } catch {
          // Drawn without a waveform until it can be read.
        }
      }),
    );
  }

  // ---- socket -------------------------------------------------------------------------

  connect(delay = 500) {
    if (this.closed) return;
    const socket = new WebSocket(api.socketUrl(this.projectId));
    this.socket = socket;
    this.pending = new Map();
    socket.onopen = () => {
      this.connection.textContent = 'live';
      this.connection.className = 'connection live';
      this.pingSent = Date.now() / 1000;
      socket.send(JSON.stringify({ type: 'ping' }));
      if (this.wasLost) {
        this.wasLost = false;
        toast('Connection restored.', 'info');
        // What changed while away comes as `missed` (or `resync` when too much did).
        socket.send(JSON.stringify({ type: 'subscribe', data: { since: this.revision } }));
      }
    };
    socket.onmessage = (event) => this.message(JSON.parse(event.data));
    socket.onclose = (event) => {
      if (this.closed) return;
      if (event.code === 1000 || event.code === 1008) {
        toast(event.reason || 'This project is no longer available.');
        this.connection.textContent = 'closed';
        return;
      }
      this.wasLost = true;
      this.connection.textContent = 'connection lost — reconnecting…';
      this.connection.className = 'connection lost';
      setTimeout(() => this.connect(Math.min(delay * 2, 8000)), delay);
    };
  }

  /** Sends a control command on the project's socket; resolves with its result. */
  command(command, data = {}) {
    return new Promise((resolve, reject) => {
      if (this.socket?.readyState !== WebSocket.OPEN) {
        toast('Not connected to the server: reconnecting…');
        return reject(new Error('not connected'));
      }
      const id = `s${Math.random().toString(36).slice(2)}`;
      this.pending.set(id, { resolve, reject });
      this.socket.send(JSON.stringify({ type: 'control', id, command, data }));
    }).catch((error) => {
      if (error.message !== 'not connected') toast(error.message);
      throw error;
    });
  }

  message({ type, data }) {
    switch (type) {
      case 'pong': {
        const now = Date.now() / 1000;
        this.clockOffset = data.server_time - (this.pingSent + now) / 2;
        break;
      }
      case 'control_response': {
        const waiting = this.pending.get(data.id);
        this.pending.delete(data.id);
        if (!waiting) break;
        if (data.success) waiting.resolve(data.result);
        else waiting.reject(new Error(`${data.command}: ${data.error}`));
        if (data.success && data.result && 'frame' in data.result) this.applyStatus(data.result);
        break;
      }
      case 'position_update':
        this.transport = { frame: data.frame, playing: data.playing, serverTime: data.server_time, receivedAt: Date.now() / 1000 };
        break;
      case 'playback_started':
      case 'playback_paused':
      case 'playback_stopped':
      case 'playback_seeked':
        this.transport = { frame: data.frame, playing: data.status === 'playing', serverTime: 0, receivedAt: Date.now() / 1000 };
        break;
      case 'track_update': {
        if (data.revision) this.revision = Math.max(this.revision, data.revision);
        const track = this.tracks.find((t) => t.id === data.id);
        if (track) {
          Object.assign(track, data);
          this.updateStrip(track);
        }
        break;
      }
      case 'model_changed':
        this.revision = Math.max(this.revision, data.revision);
        this.reloadSoon();
        break;
      case 'missed':
        this.revision = Math.max(this.revision, data.revision);
        if (data.changes.length) this.reloadSoon();
        break;
      case 'resync':
        this.revision = data.revision;
        this.reloadSoon();
        break;
      case 'clip_ready':
      case 'loop_event':
        this.reloadSoon();
        break;
      case 'job_progress':
        this.jobProgress(data);
        break;
      case 'recording_status':
        if (data.event === 'failed') toast(`Recording failed: ${data.error ?? 'unknown reason'}`);
        break;
      case 'error':
        toast(data.message);
        break;
    }
  }

  applyStatus(status) {
    this.transport = { frame: status.frame, playing: status.status === 'playing', serverTime: 0, receivedAt: Date.now() / 1000 };
    if (status.metronome) this.metronome.checked = status.metronome.enabled;
  }

  /** The playhead now, in frames: the last report moved on by the time since it was read. */
  playheadFrame() {
    const t = this.transport;
    if (!t.playing) return t.frame;
    const now = Date.now() / 1000;
    const since = t.serverTime ? now + this.clockOffset - t.serverTime : now - t.receivedAt;
    return t.frame + Math.max(0, Math.min(since, 0.5)) * this.rate;
  }

  // ---- drawing ------------------------------------------------------------------------

  x(frame) {
    return (frame / this.rate) * this.pps;
  }

  frameAt(x) {
    return Math.max(0, Math.round((x / this.pps) * this.rate));
  }

  draw() {
    const clips = [...this.clips.values()].flat();
    const end = Math.max(30 * this.rate, ...clips.map((c) => c.start_frame + c.length_frames + 10 * this.rate));
    const width = Math.ceil(this.x(end));
    const height = RULER + Math.max(1, this.tracks.length) * LANE;
    const ratio = window.devicePixelRatio || 1;
    if (this.canvas.width !== width * ratio || this.canvas.height !== height * ratio) {
      this.canvas.width = width * ratio;
      this.canvas.height = height * ratio;
      this.canvas.style.width = `${width}px`;
      this.canvas.style.height = `${height}px`;
    }
    const ctx = this.canvas.getContext('2d');
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, width, height);
    // Ruler: bars and beats.
    ctx.fillStyle = '#1d2330';
    ctx.fillRect(0, 0, width, RULER);
    const beat = 60 / this.project.tempo;
    const beats = Number(this.project.time_signature.split('/')[0]);
    ctx.font = '11px system-ui';
    for (let n = 0; n * beat * this.pps < width; n++) {
      const x = n * beat * this.pps;
      const bar = n % beats === 0;
      ctx.fillStyle = bar ? '#8a94a8' : '#4a5366';
      ctx.fillRect(x, bar ? 8 : 18, 1, RULER - (bar ? 8 : 18));
      if (bar) ctx.fillText(String(n / beats + 1), x + 3, 12);
      ctx.fillStyle = bar ? '#232a38' : '#1f2533';
      ctx.fillRect(x, RULER, 1, height - RULER);
    }
    if (this.loop) {
      const x0 = this.x(this.loop.start_frame);
      const x1 = this.x(this.loop.end_frame);
      ctx.fillStyle = this.loop.enabled ? 'rgba(255, 196, 0, 0.35)' : 'rgba(255, 196, 0, 0.12)';
      ctx.fillRect(x0, 20, x1 - x0, RULER - 20);
    }
    // Lanes and clips.
    const zoom = zoomFor(this.rate / this.pps);
    this.tracks.forEach((track, i) => {
      const y = RULER + i * LANE;
      ctx.fillStyle = i % 2 ? '#161b25' : '#181e29';
      ctx.fillRect(0, y, width, LANE);
      for (const clip of this.clips.get(track.id) ?? []) {
        const x = this.x(clip.start_frame);
        const w = Math.max(2, this.x(clip.length_frames));
        const inactive = clip.active === false;
        ctx.fillStyle = clip.status === 'failed' ? '#5a2328' : inactive ? '#252b36' : '#2c4a6e';
        ctx.fillRect(x, y + 4, w, LANE - 8);
        const peaks = this.peaks.get(`${clip.id}@${zoom}`);
        if (peaks) {
          drawPeaks(ctx, peaks, {
            x, y: y + 16, width: Math.floor(w), height: LANE - 24,
            offset: clip.offset_frames, length: clip.length_frames, color: inactive ? '#56617a' : '#9cc3ee',
          });
        }
        // Fades.
        ctx.strokeStyle = '#e8eef8';
        if (clip.fade_in > 0) {
          ctx.beginPath();
          ctx.moveTo(x, y + LANE - 4);
          ctx.lineTo(x + clip.fade_in * this.pps, y + 4);
          ctx.stroke();
        }
        if (clip.fade_out > 0) {
          ctx.beginPath();
          ctx.moveTo(x + w - clip.fade_out * this.pps, y + 4);
          ctx.lineTo(x + w, y + LANE - 4);
          ctx.stroke();
        }
        // Fade handles at the top of the fade lines.
        ctx.fillStyle = '#e8eef8';
        ctx.fillRect(x + clip.fade_in * this.pps - 3, y + 4, 6, 6);
        ctx.fillRect(x + w - clip.fade_out * this.pps - 3, y + 4, 6, 6);
        const label = clip.status === 'ready' ? clip.name : `${clip.name} (${clip.status}${clip.error ? `: ${clip.error}` : ''})`;
        ctx.fillText(label, x + 8, y + 16, Math.max(0, w - 16));
      }
    });
    this.playhead.style.height = `${height}px`;
  }

  drawPlayhead() {
    if (!this.project) return;
    const frame = this.playheadFrame();
    const text = clock(frame / this.rate);
    if (this.position.textContent !== text) this.position.textContent = text;
    this.bars.textContent = barBeat(frame / this.rate, this.project.tempo, Number(this.project.time_signature.split('/')[0]));
    this.playhead.style.transform = `translateX(${this.x(frame)}px)`;
    this.playhead.classList.toggle('recording', Boolean(this.recording));
  }

  // ---- editing on the canvas ----------------------------------------------------------

  hit(x, y) {
    if (y < RULER) return { kind: 'ruler' };
    const index = Math.floor((y - RULER) / LANE);
    const track = this.tracks[index];
    if (!track) return null;
    for (const clip of [...(this.clips.get(track.id) ?? [])].reverse()) {
      const x0 = this.x(clip.start_frame);
      const x1 = x0 + Math.max(2, this.x(clip.length_frames));
      if (x >= x0 && x <= x1) {
        // The top corners (and the fade lines' tops) are fade handles; the sides trim.
        const top = y - (RULER + index * LANE) < 14;
        const fadeIn = x0 + clip.fade_in * this.pps;
        const fadeOut = x1 - clip.fade_out * this.pps;
        const edge = top && Math.abs(x - fadeIn) <= EDGE * 1.5 ? 'fade_in'
          : top && Math.abs(x - fadeOut) <= EDGE * 1.5 ? 'fade_out'
          : x1 - x <= EDGE ? 'end' : x - x0 <= EDGE ? 'start' : 'body';
        return { kind: 'clip', clip, track, edge };
      }
    }
    return { kind: 'lane', track };
  }

  pointerDown(event) {
    const rect = this.canvas.getBoundingClientRect();
    const x0 = event.clientX - rect.left;
    const target = this.hit(x0, event.clientY - rect.top);
    if (!target) return;
    if (target.kind === 'ruler') return this.rulerDrag(event, x0, rect);
    if (target.kind !== 'clip' || this.role === 'viewer') return;
    const { clip, edge } = target;
    if (edge === 'fade_in' || edge === 'fade_out') return this.fadeDrag(clip, edge, rect);
    const original = { start: clip.start_frame, length: clip.length_frames, offset: clip.offset_frames };
    const move = (e) => {
      const delta = this.frameAt(Math.abs(e.clientX - rect.left - x0)) * Math.sign(e.clientX - rect.left - x0);
      if (edge === 'body') clip.start_frame = Math.max(0, original.start + delta);
      if (edge === 'end') clip.length_frames = Math.max(this.rate / 20, original.length + delta);
      if (edge === 'start') {
        const d = Math.max(-original.offset, Math.min(delta, original.length - this.rate / 20));
        clip.start_frame = original.start + d;
        clip.offset_frames = original.offset + d;
        clip.length_frames = original.length - d;
      }
      this.draw();
    };
    const up = async () => {
      const changed = clip.start_frame !== original.start || clip.length_frames !== original.length;
      if (!changed) return;
      const body = { start: clip.start_frame / this.rate };
      if (edge !== 'body') Object.assign(body, { offset: clip.offset_frames / this.rate, length: clip.length_frames / this.rate });
      try {
        await api.patch(`/api/clips/${clip.id}`, body);
      } catch (error) {
        toast(error.message);
        Object.assign(clip, { start_frame: original.start, length_frames: original.length, offset_frames: original.offset });
        this.draw();
      }
    };
    drag(move, up);
  }

  /** Drags a clip's fade in or out (its length in seconds, within the clip). */
  fadeDrag(clip, edge, rect) {
    const before = clip[edge];
    const length = clip.length_frames / this.rate;
    const move = (e) => {
      const x = e.clientX - rect.left;
      const x0 = this.x(clip.start_frame);
      const seconds = edge === 'fade_in' ? (x - x0) / this.pps : (x0 + length * this.pps - x) / this.pps;
      const other = edge === 'fade_in' ? clip.fade_out : clip.fade_in;
      clip[edge] = Math.round(Math.max(0, Math.min(seconds, length - other)) * 1000) / 1000;
      this.draw();
    };
    const up = async () => {
      if (clip[edge] === before) return;
      try {
        await api.patch(`/api/clips/${clip.id}`, { [edge]: clip[edge] });
      } catch (error) {
        toast(error.message);
        clip[edge] = before;
        this.draw();
      }
    };
    drag(move, up);
  }

  /** A click on the ruler seeks; a drag along it sets the loop region. */
  rulerDrag(event, x0, rect) {
    let x1 = x0;
    const move = (e) => {
      x1 = e.clientX - rect.left;
      if (Math.abs(x1 - x0) > 4) {
        const [a, b] = [x0, x1].sort((p, q) => p - q);
        this.loop = { ...(this.loop ?? {}), start_frame: this.frameAt(a), end_frame: this.frameAt(b), enabled: true };
        this.draw();
      }
    };
    const up = async () => {
      if (Math.abs(x1 - x0) <= 4) {
        await this.command('seek', { position: this.frameAt(x0) / this.rate }).catch(() => {});
        return;
      }
      const [a, b] = [x0, x1].sort((p, q) => p - q);
      const region = { start: this.frameAt(a) / this.rate, end: this.frameAt(b) / this.rate };
      try {
        const saved = this.loop?.id
          ? await api.patch(`/api/loops/${this.loop.id}`, region)
          : await api.post(`/api/projects/${this.projectId}/loops`, region);
        await this.command('loop_enable', { loop_region_id: saved.id });
        this.loop = { ...saved, enabled: true };
        this.loopToggle.checked = true;
        this.draw();
      } catch (error) {
        toast(error.message);
        this.reloadSoon();
      }
    };
    drag(move, up);
  }

  async drop(event) {
    event.preventDefault();
    const file = event.dataTransfer?.files?.[0];
    const rect = this.canvas.getBoundingClientRect();
    const target = this.hit(event.clientX - rect.left, event.clientY - rect.top);
    if (!file || !target?.track) return;
    await this.importFile(target.track, file, this.frameAt(event.clientX - rect.left) / this.rate);
  }

  // ---- tracks, mixer, takes -----------------------------------------------------------

  async addTrack() {
    // The next free slot; another member may take it at the same moment: then the one after.
    let index = this.tracks.reduce((n, t) => Math.max(n, t.track_index + 1), 0);
    for (let attempt = 0; attempt < 4; attempt++, index++) {
      try {
        const track = await api.post('/api/tracks', { project_id: this.projectId, name: `Track ${index + 1}`, track_index: index });
        this.tracks.push(track);
        return;
      } catch (error) {
        if (error.status !== 409 || attempt === 3) return toast(error.message);
      }
    }
  }

  renderHeaders() {
    this.headers.replaceChildren(
      h('div', { class: 'ruler-head', style: `height:${RULER}px` }),
      ...this.tracks.map((track) => {
        const file = h('input', {
          type: 'file',
          name: 'import',
          accept: 'audio/*,.wav,.flac,.mp3,.ogg,.aiff,.m4a',
          hidden: true,
          onchange: () => file.files[0] && this.importFile(track, file.files[0], 0),
        });
        const takes = this.takes?.get(track.id) ?? [];
        const takeSelect = takes.length
          ? h(
              'select',
              { name: 'take', title: 'Takes', onchange: (e) => this.activateTake(e.target.value) },
              takes.map((take, i) =>
                h('option', { value: take.id, selected: take.active }, `Take ${takes.length - i}${take.pass_index ? ` · pass ${take.pass_index + 1}` : ''}`),
              ),
            )
          : null;
        const armed = track.record_enabled && track.input_device_id === `client:${this.deviceName}`;
        if (armed) this.armed = track;
        return h('div', { class: 'track-head', style: `height:${LANE}px`, 'data-track': track.name }, [
          h('input', {
            class: 'name',
            name: 'track-name',
            value: track.name,
            onchange: (e) => api.patch(`/api/tracks/${track.id}`, { name: e.target.value }).catch((err) => toast(err.message)),
          }),
          h('div', { class: 'row' }, [
            h('button', { name: 'arm', class: armed ? 'armed' : '', title: 'Arm for recording', onclick: () => this.arm(track, !armed) }, '●'),
            h('button', { name: 'import-file', title: 'Import audio (or drop a file on the lane)', onclick: () => file.click() }, 'Import…'),
            file,
            takeSelect,
          ]),
        ]);
      }),
    );
  }

  renderMixer() {
    this.strips = new Map();
    this.mixer.replaceChildren(
      ...this.tracks.map((track) => {
        const volume = h('input', {
          type: 'range', name: 'volume', min: 0, max: 2, step: 0.01, value: track.volume, orient: 'vertical',
          oninput: (e) => this.mix(track, 'volume', Number(e.target.value)),
        });
        const pan = h('input', {
          type: 'range', name: 'pan', min: -1, max: 1, step: 0.01, value: track.pan,
          oninput: (e) => this.mix(track, 'pan', Number(e.target.value)),
          ondblclick: () => this.mix(track, 'pan', 0),
        });
        const mute = h('button', { name: 'mute', class: track.muted ? 'on' : '', onclick: () => this.mix(track, 'muted', !track.muted) }, 'M');
        const solo = h('button', { name: 'solo', class: track.soloed ? 'on' : '', onclick: () => this.mix(track, 'soloed', !track.soloed) }, 'S');
        const level = h('output', { class: 'muted' }, db(track.volume));
        this.strips.set(track.id, { volume, pan, mute, solo, level });
        return h('div', { class: 'strip', 'data-track': track.name }, [h('span', { class: 'strip-name' }, track.name), volume, level, pan, h('div', { class: 'row' }, [mute, solo])]);
      }),
    );
  }

  /** A mixer move: sent at once over the socket; everyone's strips follow `track_update`. */
  mix(track, field, value) {
    track[field] = value;
    this.updateStrip(track);
    this.command('set_track', { track_id: track.id, [field]: value }).catch(() => {});
  }

  updateStrip(track) {
    const strip = this.strips?.get(track.id);
    if (!strip) return;
    if (document.activeElement !== strip.volume) strip.volume.value = track.volume;
    if (document.activeElement !== strip.pan) strip.pan.value = track.pan;
    strip.level.textContent = db(track.volume);
    strip.mute.className = track.muted ? 'on' : '';
    strip.solo.className = track.soloed ? 'on' : '';
  }

  async arm(track, enabled) {
    try {
      await api.post(`/api/audio/tracks/${track.id}/record/enable`, { device_id: `client:${this.deviceName}`, enabled });
      for (const other of this.tracks) if (other !== track && enabled && other.record_enabled) await api.post(`/api/audio/tracks/${other.id}/record/enable`, { enabled: false });
      this.armed = enabled ? track : null;
      this.reloadSoon();
    } catch (error) {
      toast(error.message);
    }
  }

  async activateTake(takeId) {
    try {
      await api.post(`/api/takes/${takeId}/activate`);
    } catch (error) {
      toast(error.message);
    }
  }

  // ---- import and jobs ----------------------------------------------------------------

  async importFile(track, file, start) {
    const row = this.jobRow(`Importing ${file.name}`);
    try {
      const accepted = await api.upload(`/api/tracks/${track.id}/clips?start=${start.toFixed(3)}`, file, (f) => row.progress(f * 0.5, 'uploading'));
      this.jobs.set(accepted.job.id, row);
      row.progress(0.5, 'decoding');
    } catch (error) {
      row.fail(error.message);
    }
  }

  jobRow(label) {
    const bar = h('progress', { max: 1, value: 0 });
    const text = h('span', {}, label);
    const row = h('div', { class: 'job' }, [text, bar]);
    this.jobsArea.append(row);
    return {
      progress: (value, what) => {
        bar.value = value;
        text.textContent = `${label} — ${what}`;
      },
      done: (what) => {
        bar.value = 1;
        text.textContent = `${label} — ${what}`;
        setTimeout(() => row.remove(), 4000);
      },
      fail: (reason) => {
        row.classList.add('failed');
        text.textContent = `${label} — failed: ${reason}`;
        toast(`${label} failed: ${reason}`);
      },
      element: row,
    };
  }

  jobProgress(job) {
    const row = this.jobs.get(job.job_id);
    if (job.kind === 'finalize_capture' && job.status === 'succeeded') toast('The take is ready.', 'info');
    if (!row) return;
    if (job.status === 'succeeded') row.done('done');
    else if (job.status === 'failed' || job.status === 'cancelled') row.fail(job.error ?? job.status);
    else row.progress(job.kind === 'import' ? 0.5 + job.progress / 2 : job.progress, job.status);
    if (job.status === 'succeeded' || job.status === 'failed' || job.status === 'cancelled') {
      this.jobs.delete(job.job_id);
      row.finished?.(job);
    }
  }

  // ---- transport settings -------------------------------------------------------------

  async setMetronome() {
    try {
      await api.put(`/api/audio/projects/${this.projectId}/metronome`, { enabled: this.metronome.checked, level: 0.5, accent: true });
    } catch (error) {
      toast(error.message);
    }
  }

  async toggleLoop() {
    if (!this.loop?.id) {
      toast('Drag along the ruler to make a loop region.', 'info');
      this.loopToggle.checked = false;
      return;
    }
    await (this.loopToggle.checked ? this.command('loop_enable', { loop_region_id: this.loop.id }) : this.command('loop_disable')).catch(() => {});
    this.loop.enabled = this.loopToggle.checked;
    this.draw();
  }

  // ---- audio: calibration, the device, recording --------------------------------------

  async enableAudio() {
    this.audioButton.disabled = true;
    try {
      this.context = new AudioContext({ sampleRate: this.rate, latencyHint: 'interactive' });
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
      this.latency.textContent = 'Calibrating: a few clicks play; keep the room quiet…';
      this.measured = await calibrate(this.context, this.stream);
      this.nudge.disabled = false;
      this.nudge.value = 0;
      await this.storeLatency();
      this.device = await ClientDevice.start(this.context, this.stream, { url: api.socketUrl(this.projectId), name: this.deviceName });
      this.device.on((m) => {
        if (m.type === 'state' && m.state === 'reconnecting') this.latency.textContent = 'Audio connection lost — reconnecting (your take is kept)…';
        if (m.type === 'state' && m.state === 'attached') this.showLatency();
        if (m.type === 'state' && m.state === 'detached') this.latency.textContent = `Audio detached${m.reason ? `: ${m.reason}` : ''}.`;
        if (m.type === 'message' && m.message.type === 'error') toast(m.message.data.message);
        if (m.type === 'restored' && m.frames > 0) toast('Sending the rest of your take…', 'info');
        if (m.type === 'lost') toast('The audio device was away too long: the end of the take could not be sent.');
      });
      this.audioButton.textContent = 'Recalibrate';
      this.audioButton.onclick = () => this.recalibrate();
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
    this.measured = await calibrate(this.context, this.stream);
    this.nudge.value = 0;
    await this.storeLatency();
    this.showLatency();
    toast('Calibrated: the new round trip applies to the next connection of the audio device.', 'info');
  }

  totalLatencyMs() {
    return Math.max(0, (this.measured.frames / this.context.sampleRate) * 1000 + Number(this.nudge.value || 0));
  }

  async storeLatency() {
    if (!this.measured) return;
    const source = Number(this.nudge.value) !== 0 ? 'manual' : this.measured.measured ? 'measured' : 'estimated';
    try {
      await api.put(`/api/audio/devices/client:${this.deviceName}/latency`, { latency_ms: Number(this.totalLatencyMs().toFixed(3)), source });
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

  async toggleRecord() {
    if (this.recording) {
      const session = this.recording;
      this.recording = null;
      this.recordButton.classList.remove('on');
      this.recordButton.textContent = '● Record';
      try {
        const stopped = await this.device.control('record_stop', { session_id: session });
        if (stopped.missing_frames > 0) {
          const seconds = (stopped.missing_frames / this.rate).toFixed(3);
          toast(`The take is missing ${seconds} s of audio: it was on its way when the connection or the page went away.`, 'info');
        }
        if (stopped.finalize_job_id) {
          const row = this.jobRow('Saving the take');
          this.jobs.set(stopped.finalize_job_id, row);
        }
      } catch (error) {
        toast(error.message);
      }
      return;
    }
    if (!this.device) return toast('Enable audio first: the browser is your microphone.');
    if (!this.armed) return toast('Arm a track first (its ● button).');
    const request = { track_id: this.armed.id, count_in_bars: Number(this.countIn.value) };
    if (this.punch.checked) Object.assign(request, { punch_in: Number(this.punchIn.value), punch_out: Number(this.punchOut.value) });
    if (!this.transport.playing) request.start_time = Math.max(0, this.playheadFrame() / this.rate);
    try {
      const started = await this.device.control('record_start', request);
      this.recording = started.session_id;
      this.recordButton.classList.add('on');
      this.recordButton.textContent = '■ Stop recording';
    } catch (error) {
      toast(error.message);
    }
  }

  // ---- dialogs ------------------------------------------------------------------------

  dialog(title, body, actions) {
    return dialog(title, body, actions);
  }

  mixdownDialog() {
    const format = h('select', { name: 'format' }, ['wav24', 'wav16', 'wav_f32', 'flac24', 'flac16'].map((f) => h('option', { value: f }, f)));
    const normalize = h('input', { type: 'checkbox', name: 'normalize' });
    const stems = h('input', { type: 'checkbox', name: 'stems' });
    const links = h('div', { class: 'links' });
    const render = async () => {
      const body = { format: format.value, stems: stems.checked };
      if (normalize.checked) body.normalize = { target_lufs: -14, ceiling_dbtp: -1 };
      try {
        const submitted = await api.post(`/api/projects/${this.projectId}/mixdown`, body);
        const job = submitted.job;
        const row = this.jobRow(`Mixdown (${format.value})`);
        links.replaceChildren(row.element);
        const finished = (done) => {
          if (done.status !== 'succeeded') return;
          const ext = format.value.startsWith('flac') ? 'flac' : 'wav';
          const files = [h('button', { name: 'download', onclick: () => this.download(`/api/mixdowns/${job.id}/file`, `${this.project.name}.${ext}`) }, `Download ${ext.toUpperCase()}`)];
          if (stems.checked) {
            for (const track of this.tracks) files.push(h('button', { onclick: () => this.download(`/api/mixdowns/${job.id}/stems/${track.id}`, `${track.name}.${ext}`) }, `Stem: ${track.name}`));
          }
          links.append(...files);
        };
        if (job.status === 'succeeded') {
          row.done('done');
          finished(job);
        } else {
          row.finished = finished;
          this.jobs.set(job.id, row);
          // Its end may have been announced before this answer came: ask once.
          const now = await api.get(`/api/jobs/${job.id}`);
          if (['succeeded', 'failed', 'cancelled'].includes(now.status) && this.jobs.has(job.id)) {
            this.jobProgress({ ...now, job_id: now.id });
          }
        }
      } catch (error) {
        toast(error.message);
      }
    };
    this.dialog('Mixdown', [
      h('label', {}, ['Format', format]),
      h('label', {}, [normalize, 'Normalise to −14 LUFS (true peak −1 dBTP)']),
      h('label', {}, [stems, 'Stems (one file per track)']),
      links,
    ], [h('button', { class: 'primary', name: 'render', onclick: render }, 'Render')]);
  }

  /** Downloads with the bearer token (a plain link cannot carry it). */
  async download(path, filename) {
    try {
      const data = await api.bytes(path);
      const url = URL.createObjectURL(new Blob([data]));
      const link = h('a', { href: url, download: filename });
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
    } catch (error) {
      toast(error.message);
    }
  }

  async membersDialog() {
    const list = h('ul', { class: 'members' });
    const refresh = async () => {
      const members = await api.get(`/api/projects/${this.projectId}/members`).catch((e) => (toast(e.message), []));
      list.replaceChildren(
        ...members.map((m) =>
          h('li', {}, [
            h('span', {}, `${m.username} — ${m.role}`),
            this.role === 'owner' && m.role !== 'owner'
              ? h('button', { onclick: async () => { await api.delete(`/api/projects/${this.projectId}/members/${m.user_id}`).catch((e) => toast(e.message)); refresh(); } }, 'Remove')
              : null,
          ]),
        ),
      );
    };
    const username = h('input', { name: 'member', placeholder: 'username' });
    const role = h('select', { name: 'role' }, [h('option', { value: 'editor' }, 'editor'), h('option', { value: 'viewer' }, 'viewer')]);
    const add = async () => {
      try {
        await api.post(`/api/projects/${this.projectId}/members`, { username: username.value, role: role.value });
        username.value = '';
        refresh();
      } catch (error) {
        toast(error.message);
      }
    };
    this.dialog('Members', [list, this.role === 'owner' ? h('div', { class: 'row' }, [username, role, h('button', { onclick: add }, 'Add')]) : null], []);
    await refresh();
  }
}

/** Follows the pointer with `move` until it is released, then calls `up` once. */
function drag(move, up) {
  const release = () => {
    window.removeEventListener('pointermove', move);
    window.removeEventListener('pointerup', release);
    up();
  };
  window.addEventListener('pointermove', move);
  window.addEventListener('pointerup', release);
}

function db(gain) {
  return gain <= 0 ? '−∞ dB' : `${(20 * Math.log10(gain)).toFixed(1)} dB`;
}
