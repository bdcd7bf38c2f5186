// How the page follows the project (§13): every `model_changed` (and each change of a
// `missed`) names what changed — the project, a track, a clip or a loop region — and the page
// reads just that again, gathered over a few milliseconds so a burst (a take stopping makes
// takes, clips and a comp at once) is one round of reads. Too much at once, or a `resync`, and
// it reads the whole project again.

import { api } from './api.js';

/** Past this many changed items in one round, the whole project is read again. */
const MOST = 24;
const GATHER_MS = 60;

/** What one round must read, from the changes it gathered. Pure: `changes` are the server's. */
export function plan(changes, clipTrack) {
  const round = { project: false, loops: false, tracks: new Set(), clips: new Map(), everything: false };
  for (const { item, id, action } of changes) {
    if (item === 'project') round.project = true;
    else if (item === 'loop_region') round.loops = true;
    else if (item === 'track') round.tracks.add(id);
    else if (item === 'clip') {
      round.clips.set(id, action);
      // A clip's track: its takes and comp may have moved with it.
      const track = clipTrack(id);
      if (track) round.tracks.add(track);
    }
  }
  round.everything = round.tracks.size + round.clips.size > MOST;
  return round;
}

export class Follower {
  /** Follows for `studio` (its project, tracks, clips, takes, comps and loop). */
  constructor(studio) {
    this.studio = studio;
    this.pending = [];
    this.timer = null;
  }

  /** A change the server announced. */
  changed(change) {
    this.pending.push(change);
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.flush(), GATHER_MS);
  }

  /** One round at a time, so an older read never lands after a newer one. */
  async flush() {
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    try {
      await this.round(this.pending.splice(0));
    } finally {
      this.running = false;
      if (this.again || this.pending.length) {
        this.again = false;
        this.flush();
      }
    }
  }

  async round(changes) {
    if (!changes.length) return;
    const studio = this.studio;
    const round = plan(changes, (id) => studio.trackOfClip(id));
    try {
      if (round.everything) return await studio.reload();
      const reads = [];
      if (round.project) reads.push(api.get(`/api/projects/${studio.projectId}`).then((p) => studio.applyProject(p)));
      if (round.loops) reads.push(api.get(`/api/projects/${studio.projectId}/loops?limit=100`).then((loops) => studio.applyLoops(loops)));
      // Clips first: a new clip names the track it is on, whose takes and comp follow.
      await Promise.all(
        [...round.clips].map(async ([id, action]) => {
          if (action === 'deleted') return studio.removeClip(id);
          const clip = await api.get(`/api/clips/${id}`).catch((e) => (e.status === 404 ? null : Promise.reject(e)));
          if (clip) {
            studio.putClip(clip);
            round.tracks.add(clip.track_id);
          } else studio.removeClip(id);
        }),
      );
      for (const id of round.tracks) reads.push(studio.refreshTrack(id));
      await Promise.all(reads);
      studio.draw(); // now, so the rows match the headers; again once waveforms are read
      await studio.loadPeaks();
      studio.draw();
    } catch (error) {
      // Whatever failed to read, the whole project read again is right.
      await studio.reload().catch(() => {});
    }
  }
}
