// The studio's keyboard (§11): Space play / stop, Enter back to the start, R record, L loop,
// S split the selected clip at the playhead, Delete (or Backspace) deletes it, Ctrl/Cmd+D
// duplicates it, Ctrl/Cmd+Z undoes, Shift+Ctrl/Cmd+Z (or Ctrl+Y) redoes, + and − zoom.
// Keys typed into a text field, or while a dialog is open, stay theirs; Enter on a focused
// button is that button's. A focused button never takes Space as a click: Space is always
// play / stop.

const TYPING = 'input:not([type=checkbox]):not([type=range]):not([type=button]), select, textarea, [contenteditable]';

/** What `event` asks of the studio, as the name of one of its actions (or null). */
export function actionFor(event) {
  const mod = event.ctrlKey || event.metaKey;
  const key = event.key.length === 1 ? event.key.toLowerCase() : event.key;
  if (mod && key === 'z') return event.shiftKey ? 'redo' : 'undo';
  if (mod && key === 'y') return 'redo';
  if (mod && key === 'd') return 'duplicate';
  if (mod || event.altKey) return null;
  switch (key) {
    case ' ': return 'togglePlay';
    case 'Enter': return 'toStart';
    case 'r': return 'toggleRecord';
    case 'l': return 'toggleLoopKey';
    case 's': return 'split';
    case 'Delete':
    case 'Backspace': return 'deleteSelected';
    case '+':
    case '=': return 'zoomIn';
    case '-': return 'zoomOut';
    default: return null;
  }
}

/** Sends the keys to `studio`'s actions until the returned function is called. */
export function bindKeys(studio) {
  const handler = (event) => {
    if (event.defaultPrevented) return;
    if (document.querySelector('dialog[open]')) return;
    const target = event.target instanceof Element ? event.target : null;
    if (target?.closest(TYPING)) return;
    // Enter on a focused button or link is that control's (keyboard users activate with it);
    // Delete on a focused control is not meant for the selected clip.
    if (event.key === 'Enter' && target?.closest('button, a, [role=button]')) return;
    const action = actionFor(event);
    if (!action || (action === 'deleteSelected' && target?.closest('input, button, select'))) return;
    event.preventDefault(); // held down too: Space never scrolls the page
    if (!event.repeat) studio[action]();
  };
  // A button clicks on Space's release: that release is ours too.
  const release = (event) => {
    if (event.key !== ' ' || document.querySelector('dialog[open]')) return;
    if (event.target instanceof Element && event.target.closest(TYPING)) return;
    event.preventDefault();
  };
  window.addEventListener('keydown', handler, true);
  window.addEventListener('keyup', release, true);
  return () => {
    window.removeEventListener('keydown', handler, true);
    window.removeEventListener('keyup', release, true);
  };
}
