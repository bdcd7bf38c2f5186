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
  element.addEventListener('close', () => {
    // Messages shown while it was open live in it (see toast): they go back to the page.
    const area = element.querySelector('#toasts');
    if (area) showToasts(area, document.body);
    element.remove();
  });
  document.body.append(element);
  element.showModal();
  return element;
}

const shown = new Map(); // message → its toast, while it is on screen

/**
 * Shows `message` for a few seconds (errors a little longer; a click dismisses it). The same
 * message again while it shows restarts its time instead of stacking a second one, so one
 * gesture (a fader drag refused ten times) gives one message. Toasts sit in the top layer,
 * above an open dialog's backdrop.
 */
export function toast(message, kind = 'error') {
  const area = document.getElementById('toasts') ?? h('div', { id: 'toasts', role: 'status', 'aria-live': 'polite', popover: 'manual' });
  const existing = shown.get(message);
  if (existing?.element.isConnected) {
    existing.restart();
    return existing.element;
  }
  const note = h('div', { class: `toast ${kind}`, onclick: () => dismiss() }, message);
  let timer = null;
  const dismiss = () => {
    clearTimeout(timer);
    note.remove();
    shown.delete(message);
    if (!area.childElementCount && area.hidePopover && area.matches(':popover-open')) area.hidePopover();
  };
  const restart = () => {
    clearTimeout(timer);
    timer = setTimeout(dismiss, kind === 'error' ? 8000 : 4000);
  };
  shown.set(message, { element: note, restart });
  area.append(note);
  // Inside an open modal dialog (the rest of the page is inert under it, messages included),
  // and shown again so it is above whatever entered the top layer since.
  showToasts(area, document.querySelector('dialog[open]') ?? document.body);
  restart();
  return note;
}

/** Shows the message area in `host`, on top of the top layer. */
function showToasts(area, host) {
  if (area.parentElement !== host) host.append(area);
  if (typeof area.showPopover !== 'function') return; // no Popover API: a fixed box in the page
  if (area.matches(':popover-open')) area.hidePopover();
  if (area.childElementCount) area.showPopover();
}

/** Takes away the messages of `kind` on screen (an undo makes "Deleted — Ctrl+Z…" stale). */
export function dismissToasts(kind = 'info') {
  for (const note of document.querySelectorAll(`#toasts .toast.${kind}`)) note.click();
}

/** Marks `element` unavailable to this user, saying why on hover (and to assistive tools). */
export function unavailable(element, reason) {
  if (!element) return element;
  element.disabled = true;
  element.title = reason;
  element.setAttribute('aria-disabled', 'true');
  element.dataset.reason = reason;
  return element;
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
