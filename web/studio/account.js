// The account dialog: the signed-in sessions (where and with what each was last used), ending
// one or all of them, and changing the password — which signs out every other session and key.

import { api } from './api.js';
import { dialog, h, toast } from './ui.js';

/** When a session was last used, in words a person reads at a glance. */
function when(iso) {
  if (!iso) return 'never used';
  const seconds = (Date.now() - Date.parse(iso)) / 1000;
  if (seconds < 120) return 'just now';
  if (seconds < 7200) return `${Math.round(seconds / 60)} minutes ago`;
  if (seconds < 172800) return `${Math.round(seconds / 3600)} hours ago`;
  return new Date(iso).toLocaleDateString();
}

/** Opens the account dialog; `signedOut` runs when this page's own session ends. */
export function accountDialog(signedOut) {
  const list = h('ul', { class: 'sessions', 'aria-label': 'Signed-in sessions' });
  const refresh = async () => {
    let sessions;
    try {
      sessions = await api.get('/api/auth/sessions');
    } catch (error) {
      toast(error.message);
      return;
    }
    list.replaceChildren(
      ...sessions.map((s) =>
        h('li', {}, [
          h('span', { class: 'grow' }, [
            h('strong', {}, s.current ? 'This browser' : s.user_agent ?? 'Unknown client'),
            h('span', { class: 'muted' }, ` · ${s.address ?? 'unknown address'} · ${when(s.last_used_at)}`),
          ]),
          s.current
            ? null
            : h('button', { name: 'end-session', onclick: async () => {
                await api.delete(`/api/auth/sessions/${s.id}`).then(() => toast('Session ended', 'info'), (e) => toast(e.message));
                refresh();
              } }, 'Sign out'),
        ]),
      ),
    );
  };
  const current = h('input', { name: 'current-password', type: 'password', autocomplete: 'current-password', required: true });
  const fresh = h('input', { name: 'new-password', type: 'password', autocomplete: 'new-password', required: true, minlength: 8 });
  const change = async (event) => {
    event.preventDefault();
    if (!current.reportValidity() || !fresh.reportValidity()) return;
    try {
      await api.post('/api/auth/password', { current: current.value, new: fresh.value });
      current.value = fresh.value = '';
      toast('Password changed: every other session and API key is signed out', 'info');
      refresh();
    } catch (error) {
      toast(error.message);
    }
  };
  const everywhere = async () => {
    await api.post('/api/auth/logout-all').catch((e) => toast(e.message));
    api.token = null;
    element.close();
    signedOut();
  };
  const element = dialog('Account', [
    h('h3', {}, 'Where you are signed in'),
    list,
    h('h3', {}, 'Change password'),
    h('form', { class: 'password', onsubmit: change }, [
      h('label', {}, ['Current password', current]),
      h('label', {}, ['New password', fresh]),
      h('button', { type: 'submit', name: 'change-password' }, 'Change password'),
    ]),
  ], [h('button', { name: 'logout-all', onclick: everywhere }, 'Sign out everywhere')]);
  refresh();
  return element;
}
