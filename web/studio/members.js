// The members dialog: who is in the project and with which role; its owner adds (editor or
// viewer) and removes members.

import { api } from './api.js';
import { dialog, h, toast } from './ui.js';

export async function membersDialog(studio) {
  const owner = studio.role === 'owner';
  const list = h('ul', { class: 'members' });
  const refresh = async () => {
    const members = await api.get(`/api/projects/${studio.projectId}/members`).catch((e) => (toast(e.message), []));
    list.replaceChildren(
      ...members.map((m) =>
        h('li', {}, [
          h('span', {}, `${m.username} — ${m.role}`),
          owner && m.role !== 'owner' ? h('button', { name: 'remove-member', onclick: () => remove(m) }, 'Remove') : null,
        ]),
      ),
    );
  };
  const remove = async (member) => {
    await api.delete(`/api/projects/${studio.projectId}/members/${member.user_id}`).catch((e) => toast(e.message));
    refresh();
  };
  const username = h('input', { name: 'member', placeholder: 'username', 'aria-label': 'Username to add' });
  const role = h('select', { name: 'role', 'aria-label': 'Their role' }, [h('option', { value: 'editor' }, 'editor'), h('option', { value: 'viewer' }, 'viewer')]);
  const add = async () => {
    try {
      await api.post(`/api/projects/${studio.projectId}/members`, { username: username.value, role: role.value });
      username.value = '';
      refresh();
    } catch (error) {
      toast(error.message);
    }
  };
  dialog('Members', [list, owner ? h('div', { class: 'row' }, [username, role, h('button', { name: 'add-member', onclick: add }, 'Add')]) : null], []);
  await refresh();
}
