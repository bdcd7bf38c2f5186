// Small DOM helpers: element building, toasts for failures, time formatting.

/** `h('button', {onclick, class}, children)`: an element; null children are skipped. */
export function h(tag, attributes = {}, children = []) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on')) element.addEventListener(key.slice(2), value);
    // Through the CSSOM: the page's Content-Security-Policy refuses inline style attributes.
    else if (key === 'style') element.style.cssText = value;
    else if (key in element && key !== 'list' && typeof value !== 'string') element[key] = value;
    else element.setAttribute(key, value === true ? '' : value);
  }
  for (const child of [children].flat()) {
    if (child === null || child === undefined) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

/** A modal dialog titled `title` with `body` elements and `actions` buttons beside Close. */
export function dialog(title, body, actions = []) {
  const element = h('dialog', { class: 'dialog' }, [
    h('h2', {}, title),
    ...body,
    h('div', { class: 'row actions' }, [...actions, h('button', { name: 'close', onclick: () => element.close() }, 'Close')]),
  ]);
  element.addEventListener('close', () => element.remove());
  document.body.append(element);
  element.showModal();
  return element;
}

/** Shows `message` for a few seconds (errors stay until clicked). */
export function toast(message, kind = 'error') {
  let area = document.getElementById('toasts');
  if (!area) {
    area = h('div', { id: 'toasts', role: 'status', 'aria-live': 'polite' });
    document.body.append(area);
  }
  const note = h('div', { class: `toast ${kind}`, onclick: () => note.remove() }, message);
  area.append(note);
  if (kind !== 'error') setTimeout(() => note.remove(), 4000);
  return note;
}

/** `m:ss.mmm` of `seconds` (negative during a count-in). */
export function clock(seconds) {
  const sign = seconds < 0 ? '−' : '';
  const s = Math.abs(seconds);
  const minutes = Math.floor(s / 60);
  return `${sign}${minutes}:${(s - minutes * 60).toFixed(3).padStart(6, '0')}`;
}

/** `bar.beat` (1-based) of `seconds` at `tempo` bpm with `beats` per bar. */
export function barBeat(seconds, tempo, beats) {
  const beat = Math.floor((seconds * tempo) / 60);
  const bar = Math.floor(beat / beats);
  return `${bar + (bar >= 0 ? 1 : 0)}.${(((beat % beats) + beats) % beats) + 1}`;
}
