// Where each row of the timeline sits: a track's lane, and under it, when the track's take
// lanes are open, one lane per take (newest first, §14). The canvas, the headers, the pointer
// and the growing take all read the same rows.

export const RULER = 28;
export const LANE = 84;
export const TAKE_LANE = 44;

/**
 * The rows of `tracks` (in order): `{kind: 'track', track, y, height}` and, for a track in
 * `open`, `{kind: 'take', track, take, number, y, height}` per take of `takes` (track id →
 * takes, newest first). Returns the rows and the height they fill (with the ruler).
 */
export function layout(tracks, takes, open) {
  const rows = [];
  let y = RULER;
  for (const track of tracks) {
    rows.push({ kind: 'track', track, y, height: LANE });
    y += LANE;
    if (!open.has(track.id)) continue;
    const list = takes.get(track.id) ?? [];
    list.forEach((take, i) => {
      rows.push({ kind: 'take', track, take, number: list.length - i, y, height: TAKE_LANE });
      y += TAKE_LANE;
    });
  }
  return { rows, height: Math.max(y, RULER + LANE) };
}

/** The row under `y`, or null (the ruler, or below the last row). */
export function rowAt({ rows }, y) {
  return rows.find((row) => y >= row.y && y < row.y + row.height) ?? null;
}

/** A take's name as the page shows it: `Take 4 · pass 3` for a loop recording's passes. */
export function takeName(take, number) {
  return `Take ${number}${take.pass_index ? ` · pass ${take.pass_index + 1}` : ''}`;
}
