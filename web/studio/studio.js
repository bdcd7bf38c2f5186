// One project's studio: the state the page shows (project, tracks, clips, takes, comps, loop,
// transport, selection) and what changes it — loading and following the server, the
// transport and the keys' actions, clip and take edits, track headers, imports and jobs. The
// server is the truth: every edit goes through the API, and the project's socket brings
// everyone's changes (this page's own too) back as events that patch the state.
//
// Around it, a file per concept: timeline.js (the canvas: drawing and the pointer), socket.js
// (the project's socket and its messages), sync.js (following changes), layout.js (rows of
// the timeline), mixer.js, recorder.js (audio, recording, listening), keyboard.js,
// mixdown.js and members.js (dialogs), ui.js, api.js.

import { accountDialog } from './account.js';
import { api } from './api.js';
import { bindKeys } from './keyboard.js';
import { mixdownDialog } from './mixdown.js';
import { membersDialog } from './members.js';
import { Mixer } from './mixer.js';
import { dialog, dismissToasts, h, toast, unavailable } from './ui.js';
import { parseDat, zoomFor } from './waveform.js';
import { LANE, RULER, TAKE_LANE, takeName } from './layout.js';
import { Timeline } from './timeline.js';
import { Follower } from './sync.js';
import { ProjectSocket } from './socket.js';
import { Recorder } from './recorder.js';

const VIEWER = 'You are a viewer of this project: you can listen and download mixdowns. Its owner can make you an editor.';

export class Studio {
  constructor(root, projectId, me) {
    this.root = root;
    this.projectId = projectId;
    this.me = me;
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
      this.timeline.drawPlayhead();
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
    this.connection = h('span', { class: 'connection', name: 'connection' }, 'connecting…');
    this.headers = h('div', { class: 'headers', onfocusout: () => setTimeout(() => this.headersStale && this.renderHeaders()) });
    this.timeline = new Timeline(this);
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
      h('section', { class: 'timeline' }, [this.headers, this.timeline.scroller]),
      h('div', { class: 'row add' }, [
        editor ? h('button', { name: 'add-track', onclick: () => this.addTrack() }, '+ Track') : h('span', { class: 'muted', name: 'viewing' }, 'Viewing only: you see every change as it is made and hear the mix when an editor plays; editing is for the owner and editors.'),
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
    const zoom = zoomFor(this.rate / this.timeline.pps);
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

  // ---- editing on the canvas ----------------------------------------------------------

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

  /** The timeline drawn again from the state. */
  draw() {
    this.timeline.draw();
  }

  zoomIn() {
    this.timeline.zoomIn();
  }

  zoomOut() {
    this.timeline.zoomOut();
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

  undo() {
    return this.revert('undo', 'Undone', 'Nothing to undo');
  }

  redo() {
    return this.revert('redo', 'Redone', 'Nothing to redo');
  }

  /** Undo or redo this user's latest change (§13), saying what it did. */
  async revert(path, done, nothing) {
    if (!this.canEdit) return toast(VIEWER, 'info');
    try {
      const entry = await api.post(`/api/projects/${this.projectId}/${path}`);
      dismissToasts(); // a "Deleted — Ctrl+Z…" note is stale now
      toast(`${done}: ${entry.summary}`, 'info');
    } catch (error) {
      if (error.status === 409) toast(`${nothing}: ${error.message}`, 'info');
      else toast(error.message);
    }
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
