// The studio's entry: who is signed in decides the view — the sign-in form, the project list,
// or a project's studio (`#/projects/<id>`).

import { api } from './api.js';
import { accountDialog } from './account.js';
import { Studio } from './studio.js';
import { h, toast } from './ui.js';

const root = document.getElementById('app');
let studio = null;

async function start() {
  studio?.close();
  studio = null;
  let me;
  try {
    // Without a token, ask whether one is needed rather than meet a 401 first.
    if (!api.token && (await api.get('/api/info')).auth_enabled) return signIn();
    me = await api.get('/api/me');
  } catch (error) {
    if (error.status === 401) {
      api.token = null;
      return signIn();
    }
    root.replaceChildren(h('p', { class: 'empty' }, error.message));
    return;
  }
  const project = location.hash.match(/^#\/projects\/([0-9a-f-]+)$/)?.[1];
  if (project) {
    studio = new Studio(root, project, me);
    await studio.open();
  } else {
    await projects(me);
  }
}

function signIn() {
  const username = h('input', { name: 'username', autocomplete: 'username', required: true, minlength: 3 });
  const password = h('input', { name: 'password', type: 'password', autocomplete: 'current-password', required: true, minlength: 8 });
  const submit = async (path) => {
    if (!username.reportValidity() || !password.reportValidity()) return;
    try {
      const session = await api.post(path, { username: username.value, password: password.value });
      api.token = session.token;
      await start();
    } catch (error) {
      toast(error.message);
    }
  };
  root.replaceChildren(
    h('main', { class: 'auth' }, [
      h('h1', {}, 'AudioLab'),
      h('p', {}, 'Record, overdub and mix together, in the browser.'),
      h('form', { onsubmit: (e) => (e.preventDefault(), submit('/api/auth/login')) }, [
        h('label', {}, ['Username', username]),
        h('label', {}, ['Password', password, h('span', { class: 'hint' }, 'At least 8 characters.')]),
        h('div', { class: 'row' }, [
          h('button', { type: 'submit', class: 'primary', name: 'sign-in' }, 'Sign in'),
          h('button', { type: 'button', name: 'sign-up', onclick: () => submit('/api/auth/register') }, 'Create account'),
        ]),
      ]),
    ]),
  );
}

let projectsTimer = null;

async function projects(me) {
  clearTimeout(projectsTimer);
  const list = await api.get('/api/projects?limit=200');
  // A project shared with this user appears without a reload.
  const shown = list.items.map((p) => p.id).join();
  const refresh = async () => {
    if (location.hash.startsWith('#/projects/') || !document.querySelector('.project-list, .projects')) return;
    const now = await api.get('/api/projects?limit=200').catch(() => null);
    if (now && now.items.map((p) => p.id).join() !== shown) return projects(me);
    projectsTimer = setTimeout(refresh, 5000);
  };
  projectsTimer = setTimeout(refresh, 5000);
  const name = h('input', { name: 'project-name', placeholder: 'New project name', required: true, maxlength: 200 });
  const tempo = h('input', { name: 'tempo', type: 'number', min: 20, max: 300, value: 120, step: 'any', title: 'Tempo (bpm)', 'aria-label': 'Tempo (bpm)', class: 'short' });
  const create = async (event) => {
    event.preventDefault();
    if (!name.reportValidity()) return;
    try {
      const project = await api.post('/api/projects', { name: name.value, tempo: Number(tempo.value) });
      location.hash = `#/projects/${project.id}`;
    } catch (error) {
      toast(error.message);
    }
  };
  const signOut = async () => {
    await api.post('/api/auth/logout').catch(() => {});
    api.token = null;
    await start();
  };
  root.replaceChildren(
    h('header', { class: 'bar' }, [
      h('strong', {}, 'AudioLab'),
      h('span', { class: 'grow' }),
      h('span', { class: 'muted' }, me.username),
      me.auth_enabled ? h('button', { name: 'account', onclick: () => accountDialog(start) }, 'Account') : null,
      me.auth_enabled ? h('button', { onclick: signOut }, 'Sign out') : null,
    ]),
    h('main', { class: 'projects' }, [
      h('form', { class: 'row', onsubmit: create }, [name, h('label', { class: 'muted inline' }, ['Tempo', tempo, 'bpm']), h('button', { class: 'primary', name: 'create-project' }, 'Create project')]),
      list.items.length
        ? h(
            'ul',
            { class: 'project-list' },
            list.items.map((p) =>
              h('li', {}, [
                h('a', { href: `#/projects/${p.id}` }, p.name),
                h('span', { class: 'muted' }, `${p.tempo} bpm · ${p.time_signature} · ${p.sample_rate / 1000} kHz`),
              ]),
            ),
          )
        : h('p', { class: 'empty' }, 'No projects yet: create one above.'),
    ]),
  );
}

window.addEventListener('hashchange', start);
start();
