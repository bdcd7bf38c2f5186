// The mixer strips: volume, pan, mute and solo per track. A move is sent at once over the
// socket and everyone's strips follow `track_update`; a refused move goes back to what the
// server has; a viewer's strips are disabled with the reason.

import { api } from './api.js';
import { h, unavailable } from './ui.js';

export class Mixer {
  /** Strips in `element` for `studio` (its tracks, role and command channel). */
  constructor(studio, element) {
    this.studio = studio;
    this.element = element;
    this.strips = new Map();
  }

  render() {
    const { studio } = this;
    this.strips = new Map();
    this.element.replaceChildren(
      ...studio.tracks.map((track) => {
        const volume = h('input', {
          type: 'range', name: 'volume', min: 0, max: 2, step: 0.01, value: track.volume, orient: 'vertical',
          'aria-label': `${track.name} volume`,
          oninput: (e) => this.move(track, 'volume', Number(e.target.value)),
        });
        const pan = h('input', {
          type: 'range', name: 'pan', min: -1, max: 1, step: 0.01, value: track.pan, 'aria-label': `${track.name} pan`,
          oninput: (e) => this.move(track, 'pan', Number(e.target.value)),
          ondblclick: () => {
            this.move(track, 'pan', 0);
            this.update(track, true); // the slider has the focus: shown centred all the same
          },
        });
        const mute = h('button', { name: 'mute', 'aria-label': `Mute ${track.name}`, onclick: () => this.move(track, 'muted', !track.muted) }, 'M');
        const solo = h('button', { name: 'solo', 'aria-label': `Solo ${track.name}`, onclick: () => this.move(track, 'soloed', !track.soloed) }, 'S');
        const level = h('output', { class: 'muted' });
        const bars = [h('span', { class: 'meter-bar' }), h('span', { class: 'meter-bar' })];
        const meter = h('div', { class: 'meter', role: 'meter', 'aria-label': `${track.name} output level`, 'aria-valuemin': -60, 'aria-valuemax': 0, name: 'output-level' }, bars);
        if (!studio.canEdit) for (const control of [volume, pan, mute, solo]) unavailable(control, studio.viewerReason);
        this.strips.set(track.id, { volume, pan, mute, solo, level, meter, bars, index: track.track_index, name: track.name });
        this.update(track, true);
        return h('div', { class: 'strip', 'data-track': track.name }, [h('span', { class: 'strip-name' }, track.name), h('div', { class: 'row fader' }, [volume, meter]), level, pan, h('div', { class: 'row' }, [mute, solo])]);
      }),
    );
  }

  /** Whether `track`'s strip shows another name than it has. */
  renamed(track) {
    const strip = this.strips.get(track.id);
    return !strip || strip.name !== track.name;
  }

  /** A strip moved by this page. */
  move(track, field, value) {
    track[field] = value;
    this.update(track);
    this.studio.command('set_track', { track_id: track.id, [field]: value }).catch(async () => {
      // Refused: the strip goes back to what the server has.
      const stored = await api.get(`/api/tracks/${track.id}`).catch(() => null);
      if (stored) Object.assign(track, stored);
      this.update(track, true);
    });
  }

  /**
   * The engine's output meters (`position_update.levels`, 20 a second while playing): each
   * strip shows its track's peaks on a −60…0 dB scale; a track not listed was silent.
   */
  levels(levels) {
    const byIndex = new Map(levels.map((l) => [l.track_index, l]));
    for (const strip of this.strips.values()) {
      const level = byIndex.get(strip.index);
      const peaks = level ? [level.left, level.right] : [0, 0];
      peaks.forEach((peak, i) => {
        const height = Math.max(0, Math.min(1, (20 * Math.log10(Math.max(peak, 1e-6)) + 60) / 60));
        strip.bars[i].style.transform = `scaleY(${height})`;
        strip.bars[i].classList.toggle('warm', peak >= 0.25 && peak < 1); // above −12 dBFS
        strip.bars[i].classList.toggle('hot', peak >= 1); // at or over full scale
      });
      strip.meter.setAttribute('aria-valuenow', level ? (20 * Math.log10(Math.max(level.left, level.right, 1e-6))).toFixed(1) : -60);
    }
  }

  /** Shows `track` as it is now; a control being dragged is left to the hand unless `force`. */
  update(track, force = false) {
    const strip = this.strips.get(track.id);
    if (!strip) return;
    if (force || document.activeElement !== strip.volume) strip.volume.value = track.volume;
    if (force || document.activeElement !== strip.pan) strip.pan.value = track.pan;
    strip.level.textContent = db(track.volume);
    strip.mute.className = track.muted ? 'on' : '';
    strip.solo.className = track.soloed ? 'on' : '';
  }
}

/** A gain in decibels, as a strip shows it. */
export function db(gain) {
  return gain <= 0 ? '−∞ dB' : `${(20 * Math.log10(gain)).toFixed(1)} dB`;
}
