// One project's studio: the state the page shows (project, tracks, clips, takes, comps, loop,
// transport) and the timeline drawn from it — ruler, lanes with clips and waveforms, take
// lanes, the playhead — with editing on the canvas, the transport and the keys' actions. The
// server is the truth: every edit goes through the API, and the project's socket brings
// everyone's changes (this page's own too) back as events that patch the state.
//
// Around it, a file per concept: socket.js (the project's socket and its messages), sync.js
// (following changes), layout.js (rows of the timeline), mixer.js, recorder.js (audio,
// recording, listening), keyboard.js, mixdown.js and members.js (dialogs), ui.js, api.js.

import { accountDialog } from './account.js';
import { api } from './api.js';
import { bindKeys } from './keyboard.js';
import { mixdownDialog } from './mixdown.js';
import { membersDialog } from './members.js';
import { Mixer } from './mixer.js';
import { dialog, h, toast, clock, barBeat, unavailable } from './ui.js';
import { parseDat, zoomFor, drawPeaks } from './waveform.js';
import { LANE, RULER, TAKE_LANE, layout, rowAt, takeName } from './layout.js';
import { Follower } from './sync.js';
import { ProjectSocket } from './socket.js';
import { Recorder } from './recorder.js';

const EDGE = 6; // pixels at a clip's edge that trim instead of move
const ZOOM = { min: 10, max: 640 }; // pixels per second
const VIEWER = 'You are a viewer of this project: you can listen and download mixdowns. Its owner can make you an editor.';

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
    this.armed = null;
    this.jobs = new Map();
    this.revision = 0; // the project revision this page shows (§13)
    this.selected = null; // the selected clip's id
    this.openLanes = new Set(); // tracks whose take lanes show
    this.rows = { rows: [], height: RULER + LANE }; // the timeline's rows, from the last draw
    this.comps = new Map(); // track id → its comp (§14)
    this.follower = new Follower(this);
    this.snap = true;
    this.jobWatchers = new Map(); // job id → callbacks for its progress
    this.closed = false;
    this.deviceName = localStorage.getItem('audiolab.device') ?? `studio-${Math.random().toString(36).slice(2, 8)}`;
    localStorage.setItem('audiolab.device', this.deviceName);
  }

  get rate() {
    return this.project.sample_rate;
  }

  /** Whether this user may change the project (owners and editors). */
  get canEdit() {
    return this.role !== 'viewer';
  }

  get viewerReason() {
    return VIEWER;
  }

  /** Calls `callback` with every progress report of job `id`; returns a function that stops. */
  onJob(id, callback) {
    this.jobWatchers.set(id, callback);
    return () => this.jobWatchers.delete(id);
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
    // Closed while loading (the page went elsewhere): it never takes the page or the keys.
    if (this.closed) return;
    this.role = this.members.find((m) => m.user_id === this.me.id)?.role ?? 'owner';
    this.build();
    this.connect();
    await this.reload().catch((error) => toast(error.message));
    const status = await api.get(`/api/audio/projects/${this.projectId}/playback/status`).catch(() => null);
    if (status) this.applyStatus(status);
    // A take this browser was recording when the page went away goes on once audio is back.
    const active = await api.get('/api/audio/recording/active').catch(() => []);
    const mine = active.find((r) => r.project_id === this.projectId && r.device_id === `client:${this.deviceName}`);
    if (mine) this.recorder.resume(mine);
    const frame = () => {
      if (this.closed) return;
      this.drawPlayhead();
      requestAnimationFrame(frame);
    };
    requestAnimationFrame(frame);
  }

  close() {
    this.closed = true;
    this.unbindKeys?.();
    this.socket?.close();
    this.recorder?.close();
  }

  // ---- layout -------------------------------------------------------------------------

  build() {
    const control = (name, label, onclick, attrs = {}) => h('button', { name, title: label, onclick, ...attrs }, label);
    this.position = h('output', { class: 'position', name: 'position' }, '0:00.000');
    this.bars = h('output', { class: 'bars muted' }, '1.1');
    const recorder = (this.recorder = new Recorder(this));
    this.metronome = h('input', { type: 'checkbox', name: 'metronome', onchange: () => this.setMetronome() });
    this.loopToggle = h('input', { type: 'checkbox', name: 'loop', onchange: () => this.toggleLoop() });
    this.undoButton = control('undo', '↶', () => this.undo(), { 'aria-label': 'Undo (Ctrl+Z)', title: 'Undo (Ctrl+Z)' });
    this.redoButton = control('redo', '↷', () => this.redo(), { 'aria-label': 'Redo (Shift+Ctrl+Z)', title: 'Redo (Shift+Ctrl+Z)' });
    this.snapToggle = h('input', { type: 'checkbox', name: 'snap', checked: true, onchange: () => (this.snap = this.snapToggle.checked) });
    this.recordingRegion = h('div', { class: 'recording-region', hidden: true });
    this.connection = h('span', { class: 'connection', name: 'connection' }, 'connecting…');
    this.canvas = h('canvas', { class: 'lanes' });
    this.headers = h('div', { class: 'headers', onfocusout: () => setTimeout(() => this.headersStale && this.renderHeaders()) });
    this.playhead = h('div', { class: 'playhead' });
    this.scroller = h('div', { class: 'scroller' }, [this.canvas, this.recordingRegion, this.playhead]);
    this.scroller.addEventListener('wheel', (e) => {
      if (!e.ctrlKey && !e.metaKey) return;
      e.preventDefault();
      this.zoomBy(e.deltaY < 0 ? 1.25 : 0.8, e.clientX);
    }, { passive: false });
    this.mixer = new Mixer(this, h('section', { class: 'mixer' }));
    this.jobsArea = h('div', { class: 'jobs' });
    const editor = this.role !== 'viewer';
    this.root.replaceChildren(
      h('header', { class: 'bar' }, [
        h('a', { href: '#', title: 'Projects' }, '← Projects'),
        this.title = h('strong', { class: 'title' }, this.project.name),
        this.meter = h('button', { class: 'link', name: 'meter', title: 'Tempo and time signature', onclick: () => this.tempoDialog() }, `${this.project.tempo} bpm · ${this.project.time_signature}`),
        this.undoButton,
        this.redoButton,
        h('span', { class: 'grow' }),
        this.connection,
        h('button', { name: 'members', onclick: () => membersDialog(this) }, 'Members'),
        this.me.auth_enabled ? h('button', { name: 'account', onclick: () => accountDialog(() => location.reload()) }, 'Account') : null,
        h('button', { name: 'mixdown', onclick: () => this.mixdownDialog() }, 'Mixdown'),
      ]),
      h('section', { class: 'transport' }, [
        this.stopButton = control('stop', '■', () => this.stop(), { 'aria-label': 'Stop', title: 'Stop (Space)' }),
        this.playButton = control('play', '▶', () => this.play(), { 'aria-label': 'Play', title: 'Play (Space)' }),
        this.pauseButton = control('pause', '❚❚', () => this.transportCommand('pause'), { 'aria-label': 'Pause' }),
        recorder.recordButton,
        recorder.inputLevel,
        this.position,
        this.bars,
        h('label', {}, [this.metronome, 'Metronome']),
        h('label', {}, ['Count-in', recorder.countIn]),
        h('label', { title: 'Loop the region dragged on the ruler (L)' }, [this.loopToggle, 'Loop']),
        h('label', { title: 'Moves snap to the beat grid' }, [this.snapToggle, 'Snap']),
        h('span', { class: 'row zoom' }, [
          control('zoom-out', '−', () => this.zoomOut(), { 'aria-label': 'Zoom out (−)', title: 'Zoom out (−)' }),
          control('zoom-in', '+', () => this.zoomIn(), { 'aria-label': 'Zoom in (+)', title: 'Zoom in (+)' }),
        ]),
        h('label', {}, [recorder.punch, 'Punch', recorder.punchIn, '–', recorder.punchOut, 's']),
        h('span', { class: 'grow' }),
        recorder.audioButton,
        recorder.latency,
        h('label', { title: 'Move every take by this much (ms) if it sounds early or late' }, ['Nudge', recorder.nudge, 'ms']),
      ]),
      h('section', { class: 'timeline' }, [this.headers, this.scroller]),
      h('div', { class: 'row add' }, [
        editor ? h('button', { name: 'add-track', onclick: () => this.addTrack() }, '+ Track') : h('span', { class: 'muted' }, 'Viewing: you hear and see every change as it is made.'),
        this.jobsArea,
      ]),
      this.mixer.element,
    );
    if (!this.canEdit) {
      for (const element of [...recorder.changing, this.metronome, this.loopToggle, this.undoButton, this.redoButton, this.stopButton, this.playButton, this.pauseButton, this.meter]) {
        unavailable(element, VIEWER);
      }
    }
    this.unbindKeys = bindKeys(this);
    this.canvas.addEventListener('pointerdown', (e) => this.pointerDown(e));
    this.canvas.addEventListener('pointermove', (e) => this.hover(e));
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
    this.applyProject(project);
    this.tracks = tracks.items.sort((a, b) => a.track_index - b.track_index);
    this.applyLoops(loops);
    const clips = await Promise.all(this.tracks.map((t) => api.get(`/api/tracks/${t.id}/clips?limit=500`)));
    this.clips = new Map(this.tracks.map((t, i) => [t.id, clips[i].items]));
    if (this.selected && !this.selectedClip()) this.selected = null; // deleted meanwhile
    const takes = await Promise.all(this.tracks.map((t) => api.get(`/api/tracks/${t.id}/takes?limit=50`).catch(() => [])));
    this.takes = new Map(this.tracks.map((t, i) => [t.id, takes[i]]));
    const comps = await Promise.all(this.tracks.map((t) => (takes[this.tracks.indexOf(t)].length ? api.get(`/api/tracks/${t.id}/comp`).catch(() => null) : null)));
    this.comps = new Map(this.tracks.map((t, i) => [t.id, comps[i]]));
    this.rows = layout(this.tracks, this.takes, this.openLanes);
    this.renderHeaders();
    this.mixer.render();
    await this.loadPeaks();
    this.draw();
  }

  applyProject(project) {
    this.project = project;
    this.revision = Math.max(this.revision, project.revision ?? 0);
    this.title.textContent = project.name;
    this.meter.textContent = `${project.tempo} bpm · ${project.time_signature}`;
  }

  applyLoops(loops) {
    this.loop = loops.find((l) => l.enabled) ?? loops[0] ?? null;
    this.loopToggle.checked = Boolean(this.loop?.enabled);
  }

  trackOfClip(id) {
    for (const [track, clips] of this.clips) if (clips.some((c) => c.id === id)) return track;
    return null;
  }

  /** A clip as the server has it now, on its track (moved there if it changed track). */
  putClip(clip) {
    this.dropClip(clip.id);
    const clips = this.clips.get(clip.track_id);
    if (clips) clips.push(clip);
  }

  /** A clip deleted: gone from its lane, and from the selection. */
  removeClip(id) {
    this.dropClip(id);
    if (this.selected === id) this.selected = null;
  }

  dropClip(id) {
    for (const clips of this.clips.values()) {
      const at = clips.findIndex((c) => c.id === id);
      if (at >= 0) clips.splice(at, 1);
    }
  }

  /** One track read again (its row, takes and comp); gone if it was deleted. */
  async refreshTrack(id) {
    const track = await api.get(`/api/tracks/${id}`).catch((e) => (e.status === 404 ? null : Promise.reject(e)));
    if (!track) {
      this.tracks = this.tracks.filter((t) => t.id !== id);
      this.clips.delete(id);
      this.takes?.delete(id);
      this.comps.delete(id);
    } else {
      const known = this.tracks.find((t) => t.id === id);
      if (known) Object.assign(known, track);
      else this.tracks.push(track);
      this.tracks.sort((a, b) => a.track_index - b.track_index);
      // Its clips too: a comp or take change turns clips on and off (`active`).
      const [clips, takes] = await Promise.all([
        api.get(`/api/tracks/${id}/clips?limit=500`),
        api.get(`/api/tracks/${id}/takes?limit=50`).catch(() => []),
      ]);
      this.clips.set(id, clips.items);
      this.takes.set(id, takes);
      this.comps.set(id, takes.length ? await api.get(`/api/tracks/${id}/comp`).catch(() => null) : null);
    }
    this.renderHeaders();
    // A strip being dragged stays in the hand: strips are rebuilt only when tracks come or go
    // or are renamed, otherwise patched.
    const shown = [...this.mixer.strips.keys()].join();
    if (shown !== this.tracks.map((t) => t.id).join() || !track || this.mixer.renamed(track)) this.mixer.render();
    else this.mixer.update(track);
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

  /** The project's socket, its messages handled here (one handler per server message). */
  connect() {
    const moved = (data) => {
      this.transport = { frame: data.frame, playing: data.status === 'playing', serverTime: 0, receivedAt: Date.now() / 1000 };
      if (data.status !== 'playing') this.mixer.levels([]);
    };
    const deviceOnly = () => {}; // a device's own messages: the reference client's worker handles them
    this.socket = new ProjectSocket(this.projectId, {
      revision: () => this.revision,
      state: (text, kind) => {
        if (kind === 'restored') return toast('Connection restored.', 'info');
        if (kind === 'closed') toast(text);
        this.connection.textContent = kind === 'closed' ? 'closed' : text;
        this.connection.className = `connection ${kind}`;
      },
      handlers: {
        pong: () => {},
        error: (data) => toast(data.message),
        control_response: (data) => {
          if (data.success && data.result && 'frame' in data.result) this.applyStatus(data.result);
        },
        attached: deviceOnly,
        device_changed: deviceOnly,
        mic_ack: deviceOnly,
        detached: deviceOnly,
        position_update: (data) => {
          this.transport = { frame: data.frame, playing: data.playing, serverTime: data.server_time, receivedAt: Date.now() / 1000 };
          this.mixer.levels(data.levels ?? []);
        },
        playback_started: moved,
        playback_paused: moved,
        playback_stopped: moved,
        playback_seeked: moved,
        // Started and turned off change what the ruler shows; a wrap or the last pass do not.
        loop_event: (data) => {
          if (data.event === 'started' || data.event === 'disabled') this.follower.changed({ item: 'loop_region', id: data.loop_region_id ?? null, action: 'updated' });
        },
        recording_status: (data) => this.recorder.event(data),
        track_update: (data) => {
          if (data.revision) this.revision = Math.max(this.revision, data.revision);
          const track = this.tracks.find((t) => t.id === data.id);
          if (track) {
            Object.assign(track, data);
            this.mixer.update(track);
          }
        },
        model_changed: (data) => {
          this.revision = Math.max(this.revision, data.revision);
          this.follower.changed(data);
        },
        missed: (data) => {
          this.revision = Math.max(this.revision, data.revision);
          for (const change of data.changes) this.follower.changed(change);
        },
        resync: (data) => {
          this.revision = data.revision;
          this.reloadSoon();
        },
        job_progress: (data) => {
          this.jobProgress(data);
          this.jobWatchers.get(data.job_id)?.(data);
        },
        clip_ready: (data) => this.follower.changed({ item: 'clip', id: data.clip_id, action: 'updated' }),
      },
    });
    this.socket.connect();
  }

  /** R: a take starts or ends (the recorder's). */
  toggleRecord() {
    return this.recorder.toggle();
  }

  /** A transport command from a button or a key: failures are told, never thrown. */
  transportCommand(command, data = {}) {
    if (!this.canEdit) return toast(VIEWER, 'info');
    return this.command(command, data).catch(() => null);
  }

  play() {
    return this.transportCommand('play');
  }

  /** ■: stops the transport, and with it any take (the server ends takes on stop). */
  stop() {
    return this.transportCommand('stop');
  }

  togglePlay() {
    return this.transport.playing ? this.stop() : this.play();
  }

  toStart() {
    return this.transportCommand('seek', { position: 0 });
  }

  toggleLoopKey() {
    if (!this.canEdit) return toast(VIEWER, 'info');
    this.loopToggle.checked = !this.loopToggle.checked;
    return this.toggleLoop();
  }

  /** Sends a control command on the project's socket; resolves with its result. A failure
   * is told (once per gesture) and rethrown. */
  command(command, data = {}) {
    return this.socket.command(command, data).catch((error) => {
      toast(error.message);
      throw error;
    });
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
    const since = t.serverTime ? now + this.socket.clockOffset - t.serverTime : now - t.receivedAt;
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
    this.rows = layout(this.tracks, this.takes ?? new Map(), this.openLanes);
    const height = this.rows.height;
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
      ctx.fillStyle = this.loop.enabled ? 'rgba(255, 196, 0, 0.45)' : 'rgba(255, 196, 0, 0.15)';
      ctx.fillRect(x0, 14, x1 - x0, RULER - 14);
      // Handles: the region's edges, dragged to move them.
      ctx.fillStyle = this.loop.enabled ? '#ffc400' : '#8a7a3a';
      ctx.fillRect(x0 - 2, 10, 4, RULER - 10);
      ctx.fillRect(x1 - 2, 10, 4, RULER - 10);
    }
    // Lanes and clips.
    const zoom = zoomFor(this.rate / this.pps);
    for (const row of this.rows.rows) {
      if (row.kind === 'take') {
        this.drawTakeLane(ctx, row, width, zoom);
        continue;
      }
      const { track, y } = row;
      const i = this.tracks.indexOf(track);
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
        if (clip.id === this.selected) {
          ctx.strokeStyle = '#ffd166';
          ctx.lineWidth = 2;
          ctx.strokeRect(x + 1, y + 5, w - 2, LANE - 10);
          ctx.lineWidth = 1;
          ctx.fillStyle = '#e8eef8';
        }
        const label = clip.status === 'ready' ? clip.name : `${clip.name} (${clip.status}${clip.error ? `: ${clip.error}` : ''})`;
        ctx.fillText(label, x + 8, y + 16, Math.max(0, w - 16));
      }
    }
    this.playhead.style.height = `${height}px`;
  }

  /** A take's lane: its audio, bright where the comp plays it, dim where another take does. */
  drawTakeLane(ctx, { track, take, number, y, height }, width, zoom) {
    ctx.fillStyle = '#12161e';
    ctx.fillRect(0, y, width, height);
    ctx.fillStyle = '#232a38';
    ctx.fillRect(0, y, width, 1);
    const clips = (this.clips.get(track.id) ?? []).filter((c) => c.take_id === take.id);
    const segments = (this.comps.get(track.id)?.segments ?? []).filter((seg) => seg.take_id === take.id);
    for (const clip of clips) {
      const x = this.x(clip.start_frame);
      const w = Math.max(2, this.x(clip.length_frames));
      ctx.fillStyle = '#1f2736';
      ctx.fillRect(x, y + 3, w, height - 6);
      const peaks = this.peaks.get(`${clip.id}@${zoom}`);
      if (peaks) {
        drawPeaks(ctx, peaks, { x, y: y + 6, width: Math.floor(w), height: height - 12, offset: clip.offset_frames, length: clip.length_frames, color: '#4b5670' });
      }
    }
    for (const segment of segments) {
      const x = this.x(segment.start_frame);
      const w = Math.max(1, this.x(segment.end_frame - segment.start_frame));
      ctx.fillStyle = 'rgba(79, 143, 247, 0.35)';
      ctx.fillRect(x, y + 3, w, height - 6);
      ctx.fillStyle = '#4f8ff7';
      ctx.fillRect(x, y + height - 5, w, 2);
    }
    if (this.swipe?.take === take.id) {
      ctx.fillStyle = 'rgba(255, 209, 102, 0.35)';
      ctx.fillRect(this.x(this.swipe.from), y + 2, this.x(this.swipe.to - this.swipe.from), height - 4);
    }
    ctx.fillStyle = '#8a94a8';
    ctx.fillText(takeName(take, number), 6 + Math.max(0, this.x(clips[0]?.start_frame ?? 0)), y + 14);
  }

  drawPlayhead() {
    if (!this.project) return;
    const frame = this.playheadFrame();
    const text = clock(frame / this.rate);
    if (this.position.textContent !== text) this.position.textContent = text;
    this.bars.textContent = barBeat(frame / this.rate, this.project.tempo, Number(this.project.time_signature.split('/')[0]));
    this.playhead.style.transform = `translateX(${this.x(frame)}px)`;
    const { recording, recordingFrom } = this.recorder;
    this.playhead.classList.toggle('recording', Boolean(recording));
    this.recordingRegion.hidden = !(recording && this.armed);
    if (recording && this.armed) {
      // The take grows under the playhead while it records; its waveform comes when it is saved.
      const row = this.rows?.rows.find((r) => r.kind === 'track' && r.track.id === this.armed.id);
      const from = recordingFrom ?? frame;
      Object.assign(this.recordingRegion.style, {
        left: `${this.x(Math.min(from, frame))}px`,
        width: `${Math.max(2, this.x(Math.abs(frame - from)))}px`,
        top: `${(row?.y ?? RULER) + 4}px`,
        height: `${LANE - 8}px`,
      });
    }
    this.recorder.meter(Boolean(this.armed));
  }

  // ---- editing on the canvas ----------------------------------------------------------

  hit(x, y) {
    if (y < RULER) return { kind: 'ruler' };
    const row = rowAt(this.rows, y);
    if (!row) return null;
    const track = row.track;
    if (row.kind === 'take') return { kind: 'take', track, take: row.take };
    for (const clip of [...(this.clips.get(track.id) ?? [])].reverse()) {
      const x0 = this.x(clip.start_frame);
      const x1 = x0 + Math.max(2, this.x(clip.length_frames));
      if (x >= x0 && x <= x1) {
        // The top corners (and the fade lines' tops) are fade handles; the sides trim.
        const top = y - row.y < 14;
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
    if (!target || !this.canEdit) return;
    if (target.kind === 'ruler') return this.rulerDrag(event, x0, rect);
    if (target.kind === 'take') return this.swipeDrag(target, x0, rect);
    if (target.kind !== 'clip') {
      this.select(null);
      return;
    }
    const { clip, edge } = target;
    this.select(clip.id);
    if (edge === 'fade_in' || edge === 'fade_out') return this.fadeDrag(clip, edge, rect);
    const original = { start: clip.start_frame, length: clip.length_frames, offset: clip.offset_frames };
    const move = (e) => {
      const delta = this.frameAt(Math.abs(e.clientX - rect.left - x0)) * Math.sign(e.clientX - rect.left - x0);
      if (edge === 'body') clip.start_frame = this.snapped(Math.max(0, original.start + delta));
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

  /**
   * A drag along a take's lane comps that range from it (§14: it plays there, crossfaded);
   * a click without a drag makes the whole take play.
   */
  swipeDrag({ track, take }, x0, rect) {
    const at = (x) => this.snapped(this.frameAt(x));
    this.swipe = { take: take.id, from: at(x0), to: at(x0) };
    const move = (e) => {
      const [a, b] = [x0, e.clientX - rect.left].sort((p, q) => p - q);
      this.swipe = { take: take.id, from: at(a), to: at(b) };
      this.draw();
    };
    const up = async () => {
      const { from, to } = this.swipe;
      this.swipe = null;
      try {
        if (to - from < this.rate / 100) await api.post(`/api/takes/${take.id}/activate`);
        else await api.post(`/api/tracks/${track.id}/comp/select`, { take_id: take.id, start: from / this.rate, end: to / this.rate });
      } catch (error) {
        toast(error.message);
      }
      this.draw();
    };
    drag(move, up);
  }

  toggleLanes(track) {
    if (this.openLanes.has(track.id)) this.openLanes.delete(track.id);
    else this.openLanes.add(track.id);
    this.renderHeaders();
    this.draw();
  }

  async flatten(track) {
    if (!this.canEdit) return toast(VIEWER, 'info');
    try {
      const job = await api.post(`/api/tracks/${track.id}/comp/flatten`);
      this.jobs.set(job.id, this.jobRow(`Flattening ${track.name}`));
    } catch (error) {
      toast(error.message);
    }
  }

  async deleteTake(take) {
    if (!this.canEdit) return toast(VIEWER, 'info');
    try {
      await api.delete(`/api/takes/${take.id}`);
      toast('Take deleted — Ctrl+Z brings it back.', 'info');
    } catch (error) {
      toast(error.message);
    }
  }

  /** With snap on, `frame` moved to the nearest beat. */
  snapped(frame) {
    if (!this.snap) return frame;
    const beat = (60 / this.project.tempo) * this.rate;
    return Math.max(0, Math.round(Math.round(frame / beat) * beat));
  }

  select(id) {
    if (this.selected === id) return;
    this.selected = id;
    this.draw();
  }

  selectedClip() {
    for (const clips of this.clips.values()) {
      const clip = clips.find((c) => c.id === this.selected);
      if (clip) return clip;
    }
    return null;
  }

  /** An edit of the selected clip: told when there is none, or when this user cannot edit. */
  async editSelected(what, edit) {
    if (!this.canEdit) return toast(VIEWER, 'info');
    const clip = this.selectedClip();
    if (!clip) return toast(`Select a clip first (click it), then ${what}.`, 'info');
    try {
      await edit(clip);
    } catch (error) {
      toast(error.message);
    }
  }

  deleteSelected() {
    return this.editSelected('delete it', async (clip) => {
      await api.delete(`/api/clips/${clip.id}`);
      this.selected = null;
      toast(`Deleted “${clip.name}” — Ctrl+Z brings it back.`, 'info');
    });
  }

  /** Splits the selected clip at the playhead. */
  split() {
    return this.editSelected('split it at the playhead', async (clip) => {
      const at = Math.round(this.playheadFrame());
      if (at <= clip.start_frame || at >= clip.start_frame + clip.length_frames) {
        toast('Put the playhead inside the selected clip to split it there.', 'info');
        return;
      }
      await api.post(`/api/clips/${clip.id}/split`, { at: at / this.rate });
    });
  }

  /** A copy of the selected clip right after it. */
  duplicate() {
    return this.editSelected('duplicate it', async (clip) => {
      const copy = await api.post(`/api/clips/${clip.id}/duplicate`, { start: (clip.start_frame + clip.length_frames) / this.rate });
      this.selected = copy.id;
    });
  }

  async undo() {
    if (!this.canEdit) return toast(VIEWER, 'info');
    try {
      await api.post(`/api/projects/${this.projectId}/undo`);
    } catch (error) {
      toast(error.status === 409 ? `Nothing to undo: ${error.message}` : error.message, error.status === 409 ? 'info' : 'error');
    }
  }

  async redo() {
    if (!this.canEdit) return toast(VIEWER, 'info');
    try {
      await api.post(`/api/projects/${this.projectId}/redo`);
    } catch (error) {
      toast(error.status === 409 ? `Nothing to redo: ${error.message}` : error.message, error.status === 409 ? 'info' : 'error');
    }
  }

  zoomIn() {
    this.zoomBy(1.5);
  }

  zoomOut() {
    this.zoomBy(1 / 1.5);
  }

  /** Zooms by `factor`, keeping the time under `clientX` (or the view's middle) in place. */
  zoomBy(factor, clientX = null) {
    const pps = Math.min(ZOOM.max, Math.max(ZOOM.min, this.pps * factor));
    if (pps === this.pps) return;
    const rect = this.scroller.getBoundingClientRect();
    const anchor = (clientX ?? rect.left + rect.width / 2) - rect.left;
    const seconds = (this.scroller.scrollLeft + anchor) / this.pps;
    this.pps = pps;
    this.draw();
    this.scroller.scrollLeft = seconds * pps - anchor;
    this.loadPeaks().then(() => this.draw());
  }

  tempoDialog() {
    if (!this.canEdit) return toast(VIEWER, 'info');
    const tempo = h('input', { type: 'number', name: 'tempo', min: 20, max: 300, step: 'any', value: this.project.tempo, required: true });
    const signatures = ['2/4', '3/4', '4/4', '5/4', '6/8', '7/8', '12/8'];
    if (!signatures.includes(this.project.time_signature)) signatures.push(this.project.time_signature);
    const signature = h('select', { name: 'time-signature' }, signatures.map((t) => h('option', { value: t, selected: t === this.project.time_signature }, t)));
    const save = async () => {
      if (!tempo.reportValidity()) return;
      try {
        await api.patch(`/api/projects/${this.projectId}`, { tempo: Number(tempo.value), time_signature: signature.value });
        box.close();
      } catch (error) {
        toast(error.message);
      }
    };
    const box = dialog('Tempo and time signature', [h('label', {}, ['Tempo (bpm)', tempo]), h('label', {}, ['Time signature', signature])], [
      h('button', { class: 'primary', name: 'save-tempo', onclick: save }, 'Save'),
    ]);
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

  /**
   * A click on the ruler seeks; a drag along it makes the loop region; a drag of the region's
   * handles (its edges) moves that edge. Edges snap to the beat with snap on.
   */
  rulerDrag(event, x0, rect) {
    const handle = this.loopHandleAt(x0);
    const fixed = handle === 'start' ? this.x(this.loop.end_frame) : handle === 'end' ? this.x(this.loop.start_frame) : x0;
    let x1 = x0;
    let dragged = false;
    const region = () => {
      const [a, b] = [fixed, x1].sort((p, q) => p - q);
      return { start: this.snapped(this.frameAt(a)), end: this.snapped(this.frameAt(b)) };
    };
    const move = (e) => {
      x1 = e.clientX - rect.left;
      dragged ||= Math.abs(x1 - x0) > 4;
      if (!dragged) return;
      const { start, end } = region();
      this.loop = { ...(this.loop ?? {}), start_frame: start, end_frame: end, enabled: handle ? this.loop.enabled : true };
      this.draw();
    };
    const up = async () => {
      if (!dragged) {
        await this.command('seek', { position: this.frameAt(x0) / this.rate }).catch(() => {});
        return;
      }
      const { start, end } = region();
      if (end - start < this.rate / 20) return this.reloadSoon(); // too short to loop: as it was
      const body = { start: start / this.rate, end: end / this.rate };
      try {
        const saved = this.loop?.id
          ? await api.patch(`/api/loops/${this.loop.id}`, body)
          : await api.post(`/api/projects/${this.projectId}/loops`, body);
        // A new region loops at once; a handle moved keeps looping as it was.
        if (!handle) await this.command('loop_enable', { loop_region_id: saved.id });
        this.loop = { ...saved, enabled: handle ? this.loop.enabled : true };
        this.loopToggle.checked = this.loop.enabled;
        this.draw();
      } catch (error) {
        toast(error.message);
        this.reloadSoon();
      }
    };
    drag(move, up);
  }

  /** The pointer's shape says what a drag would do: move an edge, or a clip. */
  hover(event) {
    if (!this.canEdit || event.buttons) return;
    const rect = this.canvas.getBoundingClientRect();
    const x = event.clientX - rect.left;
    const target = this.hit(x, event.clientY - rect.top);
    const edge = target?.kind === 'ruler' ? this.loopHandleAt(x) && 'edge' : target?.kind === 'clip' ? target.edge : null;
    this.canvas.style.cursor = edge === 'start' || edge === 'end' || edge === 'edge' ? 'ew-resize' : edge === 'body' ? 'grab' : target?.kind === 'take' ? 'crosshair' : 'default';
  }

  /** 'start' or 'end' when `x` is on a handle of the loop region, else null. */
  loopHandleAt(x) {
    if (!this.loop?.id) return null;
    if (Math.abs(x - this.x(this.loop.start_frame)) <= EDGE) return 'start';
    if (Math.abs(x - this.x(this.loop.end_frame)) <= EDGE) return 'end';
    return null;
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
    // A header being typed in keeps its text: the headers are drawn again when it is left.
    if (this.headers.contains(document.activeElement) && document.activeElement.matches('input[name=track-name]')) {
      this.headersStale = true;
      return;
    }
    this.headersStale = false;
    this.armed = null; // set again below if a track is still armed for this browser
    this.headers.replaceChildren(
      h('div', { class: 'ruler-head', style: `height:${RULER}px` }),
      ...this.tracks.flatMap((track) => {
        const file = h('input', {
          type: 'file',
          name: 'import',
          accept: 'audio/*,.wav,.flac,.mp3,.ogg,.aiff,.m4a',
          hidden: true,
          onchange: () => file.files[0] && this.importFile(track, file.files[0], 0),
        });
        const takes = this.takes?.get(track.id) ?? [];
        // The take that plays now: the newest with audio in the comp (one, never every one).
        const playing = takes.find((take) => take.active) ?? null;
        const takeSelect = takes.length
          ? h(
              'select',
              { name: 'take', title: 'Choose the take that plays', onchange: (e) => this.activateTake(e.target, playing?.id) },
              takes.map((take, i) =>
                h('option', { value: take.id, selected: take.id === playing?.id }, takeName(take, takes.length - i)),
              ),
            )
          : h('span', { class: 'take-slot' });
        const armed = track.record_enabled && track.input_device_id === `client:${this.deviceName}`;
        if (armed) this.armed = track;
        const name = h('input', {
          class: 'name',
          name: 'track-name',
          value: track.name,
          'aria-label': 'Track name',
          onchange: (e) =>
            api.patch(`/api/tracks/${track.id}`, { name: e.target.value }).catch((err) => {
              toast(err.message);
              e.target.value = track.name; // refused: back to what the server has
            }),
        });
        const arm = h('button', { name: 'arm', class: armed ? 'armed' : '', title: 'Arm for recording from this browser', 'aria-label': `Arm ${track.name}`, onclick: () => this.arm(track, !armed) }, '●');
        const importButton = h('button', { name: 'import-file', title: 'Import audio (or drop a file on the lane)', onclick: () => file.click() }, 'Import…');
        if (!this.canEdit) for (const element of [name, arm, importButton, takeSelect]) unavailable(element, VIEWER);
        const open = this.openLanes.has(track.id);
        const lanes = takes.length
          ? h('button', { name: 'lanes', class: 'link', 'aria-expanded': String(open), title: 'Show each take in a lane of its own to comp from', onclick: () => this.toggleLanes(track) }, open ? '▾ Takes' : '▸ Takes')
          : null;
        const head = h('div', { class: 'track-head', style: `height:${LANE}px`, 'data-track': track.name }, [
          h('div', { class: 'row' }, [name, lanes]),
          h('div', { class: 'row' }, [arm, importButton, file, takeSelect]),
        ]);
        if (!open) return [head];
        const flatten = h('button', { name: 'flatten', class: 'link', title: 'Render what the comp plays into one clip (undoable)', onclick: () => this.flatten(track) }, 'Flatten');
        const takeHeads = takes.map((take, i) => {
          const remove = h('button', { name: 'delete-take', class: 'link', 'aria-label': `Delete ${takeName(take, takes.length - i)}`, title: 'Delete this take (undoable)', onclick: () => this.deleteTake(take) }, '×');
          if (!this.canEdit) unavailable(remove, VIEWER);
          return h('div', { class: 'take-head', style: `height:${TAKE_LANE}px`, 'data-take': take.id }, [
            h('span', {}, takeName(take, takes.length - i)),
            h('span', { class: 'grow' }),
            i === 0 ? flatten : null,
            remove,
          ]);
        });
        if (!this.canEdit) unavailable(flatten, VIEWER);
        return [head, ...takeHeads];
      }),
    );
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

  async activateTake(select, playing) {
    try {
      await api.post(`/api/takes/${select.value}/activate`);
    } catch (error) {
      toast(error.message);
      if (playing) select.value = playing; // refused: the take that plays stays shown
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
        row.title = 'Click to dismiss';
        row.addEventListener('click', () => row.remove());
        setTimeout(() => row.remove(), 15_000);
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

  // ---- dialogs ------------------------------------------------------------------------

  dialog(title, body, actions) {
    return dialog(title, body, actions);
  }

  mixdownDialog() {
    mixdownDialog(this);
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

