// Profiles: look a user up; their profile and recent messages.
import { ApiError, get, qs } from '../api.js';
import { field, h, pageHead, pretty, table } from '../dom.js';
import { MESSAGE_HEADERS, messageRows } from './messages.js';

export async function render(args) {
  const id = args[0] || '';
  const input = h('input', { type: 'text', name: 'user', value: id, required: true, autocomplete: 'off' });
  const form = h('form', { class: 'inline-form', role: 'search', 'aria-label': 'Profile lookup' }, field('User id', input), h('button', { type: 'submit' }, 'Look up'));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const v = input.value.trim();
    if (v) location.hash = `#/profiles/${encodeURIComponent(v)}`;
  });
  const parts = [pageHead('Profiles'), form];
  if (id) {
    const enc = encodeURIComponent(id);
    const [p, msgs] = await Promise.all([
      get(`/profiles/${enc}`).catch((e) => (e instanceof ApiError && e.status === 404 ? null : Promise.reject(e))),
      get(`/messages${qs({ recipient: id, limit: 20 })}`),
    ]);
    parts.push(h('h2', {}, `Profile of ${id}`));
    if (p) {
      const prof = p.profile || {};
      parts.push(
        h('dl', { class: 'facts profile' }, Object.entries(prof).map(([k, v]) => [h('dt', {}, k), h('dd', {}, typeof v === 'object' ? h('code', {}, JSON.stringify(v)) : String(v))])),
        h('details', {}, h('summary', {}, 'Full profile JSON'), h('pre', { class: 'json' }, pretty(p))),
      );
    } else {
      parts.push(h('p', { class: 'muted' }, 'No stored profile for this user.'));
    }
    parts.push(h('h2', {}, 'Recent messages'), table(`Recent messages to ${id}`, MESSAGE_HEADERS, messageRows(msgs.results || [])));
  }
  return h('section', { 'aria-labelledby': 'page-title' }, parts);
}
