// Profiles: look a user up; their profile and recent messages.
import { ApiError, get, put, qs } from '../api.js';
import { busy, field, h, pageHead, pretty, say, table } from '../dom.js';
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
    const [p, msgs, prefs] = await Promise.all([
      get(`/profiles/${enc}`).catch((e) => (e instanceof ApiError && e.status === 404 ? null : Promise.reject(e))),
      get(`/messages${qs({ recipient: id, limit: 20 })}`),
      get(`/users/${enc}/preferences`),
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
    parts.push(h('h2', {}, 'Preferences'), table(`Preferences of ${id}`, ['Topic', 'Default', 'Status', 'Channels'], (prefs.items || []).map((t) => prefRow(enc, t))));
    parts.push(h('h2', {}, 'Recent messages'), table(`Recent messages to ${id}`, MESSAGE_HEADERS, messageRows(msgs.results || [])));
  }
  return h('section', { 'aria-labelledby': 'page-title' }, parts);
}

/** One topic of a user's preferences: a status select (none for REQUIRED topics). */
function prefRow(enc, t) {
  let status;
  if (t.default_status === 'REQUIRED') {
    status = h('span', {}, 'REQUIRED');
  } else {
    status = h('select', { 'aria-label': `Status of ${t.topic_id}` }, ['OPTED_IN', 'OPTED_OUT'].map((s) => h('option', { value: s, selected: t.status === s }, s)));
    status.addEventListener('change', () =>
      busy(status, async () => {
        const topic = { status: status.value, has_custom_routing: Boolean(t.has_custom_routing), custom_routing: t.custom_routing || [] };
        await put(`/users/${enc}/preferences/${encodeURIComponent(t.topic_id)}`, { topic });
        say(`${t.topic_id}: ${status.value}.`);
      }),
    );
  }
  const chans = t.has_custom_routing ? (t.custom_routing || []).join(', ') : 'all';
  return h('tr', { 'data-topic': t.topic_id }, h('td', {}, t.topic_name), h('td', {}, t.default_status), h('td', {}, status), h('td', {}, chans));
}
