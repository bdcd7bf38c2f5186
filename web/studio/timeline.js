// The timeline on a canvas: the ruler (bars and beats, the loop region and its handles), a
// lane per track with its clips, waveforms and fades, take lanes (§14) with the comp, the
// playhead and the take growing while it records; and what the pointer does there — seek,
// make or move the loop, select, move (with snap), trim, fade, swipe a comp, drop a file —
// each edit sent to the API, the state it draws being the studio's.

import { api } from './api.js';
import { clock, barBeat, h, toast } from './ui.js';
import { zoomFor, drawPeaks } from './waveform.js';
import { LANE, RULER, layout, rowAt, takeName } from './layout.js';

const EDGE = 6; // pixels at a clip's edge that trim instead of move
const ZOOM = { min: 10, max: 640 }; // pixels per second

export class Timeline {
  constructor(studio) {
    this.studio = studio;
    this.pps = 80; // pixels per second
    this.rows = { rows: [], height: RULER + LANE }; // from the last draw
    this.swipe = null; // a comp swipe being dragged
    this.canvas = h('canvas', { class: 'lanes' });
    this.recordingRegion = h('div', { class: 'recording-region', hidden: true });
    this.playhead = h('div', { class: 'playhead' });
    this.scroller = h('div', { class: 'scroller' }, [this.canvas, this.recordingRegion, this.playhead]);
    this.scroller.addEventListener('wheel', (e) => {
      if (!e.ctrlKey && !e.metaKey) return;
      e.preventDefault();
      this.zoomBy(e.deltaY < 0 ? 1.25 : 0.8, e.clientX);
    }, { passive: false });
    this.canvas.addEventListener('pointerdown', (e) => this.pointerDown(e));
    this.canvas.addEventListener('pointermove', (e) => this.hover(e));
    this.canvas.addEventListener('dragover', (e) => e.preventDefault());
    this.canvas.addEventListener('drop', (e) => this.drop(e));
  }

  x(frame) {
    return (frame / this.studio.rate) * this.pps;
  }

  frameAt(x) {
    return Math.max(0, Math.round((x / this.pps) * this.studio.rate));
  }

  draw() {
    const clips = [...this.studio.clips.values()].flat();
    const end = Math.max(30 * this.studio.rate, ...clips.map((c) => c.start_frame + c.length_frames + 10 * this.studio.rate));
    const width = Math.ceil(this.x(end));
    this.rows = layout(this.studio.tracks, this.studio.takes ?? new Map(), this.studio.openLanes);
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
    const beat = 60 / this.studio.project.tempo;
    const beats = Number(this.studio.project.time_signature.split('/')[0]);
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
    if (this.studio.loop) {
      const x0 = this.x(this.studio.loop.start_frame);
      const x1 = this.x(this.studio.loop.end_frame);
      ctx.fillStyle = this.studio.loop.enabled ? 'rgba(255, 196, 0, 0.45)' : 'rgba(255, 196, 0, 0.15)';
      ctx.fillRect(x0, 14, x1 - x0, RULER - 14);
      // Handles: the region's edges, dragged to move them.
      ctx.fillStyle = this.studio.loop.enabled ? '#ffc400' : '#8a7a3a';
      ctx.fillRect(x0 - 2, 10, 4, RULER - 10);
      ctx.fillRect(x1 - 2, 10, 4, RULER - 10);
    }
    // Lanes and clips.
    const zoom = zoomFor(this.studio.rate / this.pps);
    for (const row of this.rows.rows) {
      if (row.kind === 'take') {
        this.drawTakeLane(ctx, row, width, zoom);
        continue;
      }
      const { track, y } = row;
      const i = this.studio.tracks.indexOf(track);
      ctx.fillStyle = i % 2 ? '#161b25' : '#181e29';
      ctx.fillRect(0, y, width, LANE);
      for (const clip of this.studio.clips.get(track.id) ?? []) {
        const x = this.x(clip.start_frame);
        const w = Math.max(2, this.x(clip.length_frames));
        const inactive = clip.active === false;
        ctx.fillStyle = clip.status === 'failed' ? '#5a2328' : inactive ? '#252b36' : '#2c4a6e';
        ctx.fillRect(x, y + 4, w, LANE - 8);
        const peaks = this.studio.peaks.get(`${clip.id}@${zoom}`);
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
        if (clip.id === this.studio.selected) {
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
    const clips = (this.studio.clips.get(track.id) ?? []).filter((c) => c.take_id === take.id);
    const segments = (this.studio.comps.get(track.id)?.segments ?? []).filter((seg) => seg.take_id === take.id);
    for (const clip of clips) {
      const x = this.x(clip.start_frame);
      const w = Math.max(2, this.x(clip.length_frames));
      ctx.fillStyle = '#1f2736';
      ctx.fillRect(x, y + 3, w, height - 6);
      const peaks = this.studio.peaks.get(`${clip.id}@${zoom}`);
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
    if (!this.studio.project) return;
    const frame = this.studio.playheadFrame();
    const text = clock(frame / this.studio.rate);
    if (this.studio.position.textContent !== text) this.studio.position.textContent = text;
    this.studio.bars.textContent = barBeat(frame / this.studio.rate, this.studio.project.tempo, Number(this.studio.project.time_signature.split('/')[0]));
    this.playhead.style.transform = `translateX(${this.x(frame)}px)`;
    const { recording, recordingFrom } = this.studio.recorder;
    this.playhead.classList.toggle('recording', Boolean(recording));
    this.recordingRegion.hidden = !(recording && this.studio.armed);
    if (recording && this.studio.armed) {
      // The take grows under the playhead while it records; its waveform comes when it is saved.
      const row = this.rows?.rows.find((r) => r.kind === 'track' && r.track.id === this.studio.armed.id);
      const from = recordingFrom ?? frame;
      Object.assign(this.recordingRegion.style, {
        left: `${this.x(Math.min(from, frame))}px`,
        width: `${Math.max(2, this.x(Math.abs(frame - from)))}px`,
        top: `${(row?.y ?? RULER) + 4}px`,
        height: `${LANE - 8}px`,
      });
    }
    this.studio.recorder.meter(Boolean(this.studio.armed));
  }

  hit(x, y) {
    if (y < RULER) return { kind: 'ruler' };
    const row = rowAt(this.rows, y);
    if (!row) return null;
    const track = row.track;
    if (row.kind === 'take') return { kind: 'take', track, take: row.take };
    for (const clip of [...(this.studio.clips.get(track.id) ?? [])].reverse()) {
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
    if (!target || !this.studio.canEdit) return;
    if (target.kind === 'ruler') return this.rulerDrag(event, x0, rect);
    if (target.kind === 'take') return this.swipeDrag(target, x0, rect);
    if (target.kind !== 'clip') {
      this.studio.select(null);
      return;
    }
    const { clip, edge } = target;
    this.studio.select(clip.id);
    if (edge === 'fade_in' || edge === 'fade_out') return this.fadeDrag(clip, edge, rect);
    const original = { start: clip.start_frame, length: clip.length_frames, offset: clip.offset_frames };
    const move = (e) => {
      const delta = this.frameAt(Math.abs(e.clientX - rect.left - x0)) * Math.sign(e.clientX - rect.left - x0);
      if (edge === 'body') clip.start_frame = this.snapped(Math.max(0, original.start + delta));
      if (edge === 'end') clip.length_frames = Math.max(this.studio.rate / 20, original.length + delta);
      if (edge === 'start') {
        const d = Math.max(-original.offset, Math.min(delta, original.length - this.studio.rate / 20));
        clip.start_frame = original.start + d;
        clip.offset_frames = original.offset + d;
        clip.length_frames = original.length - d;
      }
      this.draw();
    };
    const up = async () => {
      const changed = clip.start_frame !== original.start || clip.length_frames !== original.length;
      if (!changed) return;
      const body = { start: clip.start_frame / this.studio.rate };
      if (edge !== 'body') Object.assign(body, { offset: clip.offset_frames / this.studio.rate, length: clip.length_frames / this.studio.rate });
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
        if (to - from < this.studio.rate / 100) await api.post(`/api/takes/${take.id}/activate`);
        else await api.post(`/api/tracks/${track.id}/comp/select`, { take_id: take.id, start: from / this.studio.rate, end: to / this.studio.rate });
      } catch (error) {
        toast(error.message);
      }
      this.draw();
    };
    drag(move, up);
  }

  /** With snap on, `frame` moved to the nearest beat. */
  snapped(frame) {
    if (!this.studio.snap) return frame;
    const beat = (60 / this.studio.project.tempo) * this.studio.rate;
    return Math.max(0, Math.round(Math.round(frame / beat) * beat));
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
    this.studio.loadPeaks().then(() => this.draw());
  }

  /** Drags a clip's fade in or out (its length in seconds, within the clip). */
  fadeDrag(clip, edge, rect) {
    const before = clip[edge];
    const length = clip.length_frames / this.studio.rate;
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
    const fixed = handle === 'start' ? this.x(this.studio.loop.end_frame) : handle === 'end' ? this.x(this.studio.loop.start_frame) : x0;
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
      this.studio.loop = { ...(this.studio.loop ?? {}), start_frame: start, end_frame: end, enabled: handle ? this.studio.loop.enabled : true };
      this.draw();
    };
    const up = async () => {
      if (!dragged) {
        await this.studio.command('seek', { position: this.frameAt(x0) / this.studio.rate }).catch(() => {});
        return;
      }
      const { start, end } = region();
      if (end - start < this.studio.rate / 20) return this.studio.reloadSoon(); // too short to loop: as it was
      const body = { start: start / this.studio.rate, end: end / this.studio.rate };
      try {
        const saved = this.studio.loop?.id
          ? await api.patch(`/api/loops/${this.studio.loop.id}`, body)
          : await api.post(`/api/projects/${this.studio.projectId}/loops`, body);
        // A new region loops at once; a handle moved keeps looping as it was.
        if (!handle) await this.studio.command('loop_enable', { loop_region_id: saved.id });
        this.studio.loop = { ...saved, enabled: handle ? this.studio.loop.enabled : true };
        this.studio.loopToggle.checked = this.studio.loop.enabled;
        this.draw();
      } catch (error) {
        toast(error.message);
        this.studio.reloadSoon();
      }
    };
    drag(move, up);
  }

  /** The pointer's shape says what a drag would do: move an edge, or a clip. */
  hover(event) {
    if (!this.studio.canEdit || event.buttons) return;
    const rect = this.canvas.getBoundingClientRect();
    const x = event.clientX - rect.left;
    const target = this.hit(x, event.clientY - rect.top);
    const edge = target?.kind === 'ruler' ? this.loopHandleAt(x) && 'edge' : target?.kind === 'clip' ? target.edge : null;
    this.canvas.style.cursor = edge === 'start' || edge === 'end' || edge === 'edge' ? 'ew-resize' : edge === 'body' ? 'grab' : target?.kind === 'take' ? 'crosshair' : 'default';
  }

  /** 'start' or 'end' when `x` is on a handle of the loop region, else null. */
  loopHandleAt(x) {
    if (!this.studio.loop?.id) return null;
    if (Math.abs(x - this.x(this.studio.loop.start_frame)) <= EDGE) return 'start';
    if (Math.abs(x - this.x(this.studio.loop.end_frame)) <= EDGE) return 'end';
    return null;
  }

  async drop(event) {
    event.preventDefault();
    const file = event.dataTransfer?.files?.[0];
    const rect = this.canvas.getBoundingClientRect();
    const target = this.hit(event.clientX - rect.left, event.clientY - rect.top);
    if (!file || !target?.track) return;
    await this.studio.importFile(target.track, file, this.frameAt(event.clientX - rect.left) / this.studio.rate);
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
