// Topics: subscription topics (id, name, default status) and a form to add or change one.
// A template joins a topic through its subscription.topic_id; users choose per topic on
// the Profiles page (and through the unsubscribe links in their emails).
import { del, get, put } from '../api.js';
import { busy, field, h, pageHead, reload, say, table } from '../dom.js';

const STATUSES = ['OPTED_IN', 'OPTED_OUT', 'REQUIRED'];

function topicForm(t) {
  const id = h('input', { type: 'text', name: 'topic_id', required: true, pattern: '[A-Za-z0-9_.:\\-]{1,128}', value: t?.topic_id || '', readonly: Boolean(t) });
  const name = h('input', { type: 'text', name: 'topic_name', value: t?.topic_name || '' });
  const status = h('select', { name: 'default_status' }, STATUSES.map((s) => h('option', { value: s, selected: t?.default_status === s }, s)));
  const btn = h('button', { type: 'submit' }, t ? 'Save topic' : 'Add topic');
  const form = h('form', { class: 'inline-form', 'aria-label': t ? `Topic ${t.topic_id}` : 'New topic' }, field('Topic id', id), field('Name', name), field('Default status', status), btn);
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    busy(btn, async () => {
      const body = { default_status: status.value };
      if (name.value.trim()) body.topic_name = name.value.trim();
      await put(`/preferences/topics/${encodeURIComponent(id.value.trim())}`, body);
      say(`Topic ${id.value.trim()} saved.`);
      reload();
    });
  });
  return form;
}

export async function render() {
  const page = await get('/preferences/topics');
  const rows = (page.items || []).map((t) => {
    const rm = h('button', { type: 'button', class: 'secondary' }, 'Delete');
    rm.addEventListener('click', () =>
      busy(rm, async () => {
        await del(`/preferences/topics/${encodeURIComponent(t.topic_id)}`);
        say(`Topic ${t.topic_id} deleted.`);
        reload();
      }),
    );
    const status = h('select', { 'aria-label': `Default status of ${t.topic_id}` }, STATUSES.map((s) => h('option', { value: s, selected: t.default_status === s }, s)));
    status.addEventListener('change', () =>
      busy(status, async () => {
        await put(`/preferences/topics/${encodeURIComponent(t.topic_id)}`, { topic_name: t.topic_name, default_status: status.value });
        say(`Topic ${t.topic_id} is now ${status.value}.`);
      }),
    );
    return h('tr', { 'data-topic': t.topic_id }, h('td', {}, h('code', {}, t.topic_id)), h('td', {}, t.topic_name), h('td', {}, status), h('td', {}, rm));
  });
  return h(
    'section',
    { 'aria-labelledby': 'page-title' },
    pageHead('Topics'),
    h('p', { class: 'muted' }, 'A template belongs to a topic through its subscription topic id. REQUIRED topics always send and carry no unsubscribe link.'),
    table('Subscription topics', ['Id', 'Name', 'Default status', ''], rows),
    h('h2', {}, 'Add a topic'),
    topicForm(null),
  );
}
