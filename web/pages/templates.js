// Templates: the list, a new template, and an editor for the draft's Elemental content
// with a live preview per channel rendered by the server (POST /render) with sample
// data, then publish.
import { get, post, put } from '../api.js';
import { badge, busy, debounce, field, fmtTime, h, nid, pageHead, pretty, reload, say, table } from '../dom.js';

const SAMPLE_CONTENT = {
  version: '2022-01-01',
  elements: [
    { type: 'meta', title: 'Hello {{profile.name}}' },
    { type: 'text', content: 'Your order **{{order_id}}** has shipped.', format: 'markdown' },
  ],
};

export async function render(args) {
  if (args[0]) return editor(args[0]);
  const list = await get('/notifications?limit=100');
  const rows = (list.results || []).map((t) =>
    h(
      'tr',
      {},
      h('th', { scope: 'row' }, h('a', { href: `#/templates/${encodeURIComponent(t.id)}` }, t.name || t.id)),
      h('td', {}, badge(t.state)),
      h('td', {}, t.published_version || '—'),
      h('td', {}, fmtTime(t.updated)),
    ),
  );
  const name = h('input', { type: 'text', name: 'name', required: true, autocomplete: 'off' });
  const create = h('button', { type: 'submit' }, 'Create template');
  const form = h('form', { class: 'inline-form', 'aria-label': 'New template' }, field('New template name', name), create);
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    busy(create, async () => {
      const t = await post('/notifications', { notification: { name: name.value.trim(), content: SAMPLE_CONTENT } });
      say(`Template ${t.name} created.`);
      location.hash = `#/templates/${encodeURIComponent(t.id)}`;
    });
  });
  return h(
    'section',
    { 'aria-labelledby': 'page-title' },
    pageHead('Templates'),
    h('p', { class: 'lead' }, 'Only published templates are sent. Edit the draft, preview it, then publish.'),
    form,
    table('Templates', ['Name', 'State', 'Published', 'Updated'], rows),
  );
}

const CHANNELS = [
  { id: 'email', label: 'Email (HTML)', channel: 'email' },
  { id: 'text', label: 'Email (text)', channel: 'email' },
  { id: 'sms', label: 'SMS', channel: 'sms' },
  { id: 'push', label: 'Push', channel: 'push' },
];

async function editor(id) {
  const t = await get(`/notifications/${encodeURIComponent(id)}?version=draft`);
  const name = h('input', { type: 'text', name: 'name', value: t.name || '' });
  const content = h('textarea', { class: 'code', rows: '16', spellcheck: 'false', name: 'content' });
  content.value = pretty(t.content ?? {});
  const data = h('textarea', { class: 'code', rows: '5', spellcheck: 'false', name: 'data' });
  data.value = pretty({ order_id: 'A-1001', email: 'ada@example.com' });
  const profile = h('textarea', { class: 'code', rows: '4', spellcheck: 'false', name: 'profile' });
  profile.value = pretty({ name: 'Ada', email: 'ada@example.com' });
  const err = h('p', { class: 'error', id: nid('err'), 'aria-live': 'polite' });
  content.setAttribute('aria-describedby', err.id);

  let which = 'email';
  const radios = CHANNELS.map((c) =>
    h('label', { class: 'radio' }, h('input', { type: 'radio', name: 'preview-channel', value: c.id, checked: c.id === which, onchange: () => { which = c.id; preview(); } }), ` ${c.label}`),
  );
  const out = h('div', { class: 'preview', 'aria-live': 'polite', 'aria-label': 'Preview' });

  const parse = (ta, what) => {
    try {
      return ta.value.trim() ? JSON.parse(ta.value) : {};
    } catch (e) {
      throw new Error(`${what} is not valid JSON: ${e.message}`);
    }
  };

  let seq = 0;
  async function preview() {
    const mine = ++seq;
    const ch = CHANNELS.find((c) => c.id === which);
    try {
      const body = { content: parse(content, 'Content'), channel: ch.channel, data: parse(data, 'Sample data'), profile: parse(profile, 'Sample profile') };
      const r = await post('/render', body);
      if (mine !== seq) return;
      err.textContent = '';
      const c = r.content || {};
      const parts = [];
      if (which === 'email') {
        parts.push(h('p', {}, h('strong', {}, 'Subject: '), h('span', { class: 'subject' }, c.subject || '')));
        const frame = h('iframe', { title: 'Email HTML preview', sandbox: '', class: 'email-frame' });
        frame.srcdoc = c.html || '';
        parts.push(frame);
      } else if (which === 'text') {
        parts.push(h('p', {}, h('strong', {}, 'Subject: '), h('span', { class: 'subject' }, c.subject || '')));
        parts.push(h('pre', { class: 'out-text' }, c.text || ''));
      } else if (which === 'sms') {
        parts.push(h('pre', { class: 'out-text sms' }, c.text || ''));
      } else {
        parts.push(h('p', {}, h('strong', {}, 'Title: '), c.title || ''));
        parts.push(h('pre', { class: 'out-text' }, c.body || ''));
      }
      out.replaceChildren(...parts);
      out.dataset.channel = which;
    } catch (e) {
      if (mine !== seq) return;
      err.textContent = e.message;
    }
  }
  const later = debounce(preview, 300);
  for (const ta of [content, data, profile]) ta.addEventListener('input', later);

  const notification = () => ({
    name: name.value.trim(),
    tags: t.tags || [],
    brand: t.brand ?? null,
    subscription: t.subscription ?? null,
    routing: t.routing ?? null,
    content: parse(content, 'Content'),
  });
  const save = h('button', { type: 'submit' }, 'Save draft');
  const publish = h('button', { type: 'button' }, 'Publish');
  const form = h(
    'form',
    { class: 'editor' },
    h(
      'div',
      { class: 'card' },
      field('Name', name),
      field('Content (Elemental JSON)', content, 'Sugar {"title","body"} or {"version":"2022-01-01","elements":[...]}; strings are Handlebars over data, profile and brand.'),
      err,
      field('Sample data (JSON)', data),
      field('Sample profile (JSON)', profile),
      h('div', { class: 'actions' }, save, publish),
    ),
    h(
      'div',
      { class: 'card' },
      h('h2', {}, 'Preview'),
      h('fieldset', { class: 'radios' }, h('legend', {}, 'Channel'), radios),
      out,
    ),
  );
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    busy(save, async () => {
      await put(`/notifications/${encodeURIComponent(id)}`, { notification: notification() });
      say('Draft saved.');
    });
  });
  publish.addEventListener('click', () =>
    busy(publish, async () => {
      await put(`/notifications/${encodeURIComponent(id)}`, { notification: notification() });
      const r = await post(`/notifications/${encodeURIComponent(id)}/publish`);
      say(`Published ${r.published_version}.`);
      reload();
    }),
  );
  preview();
  return h(
    'section',
    { 'aria-labelledby': 'page-title' },
    h('p', { class: 'crumbs' }, h('a', { href: '#/templates' }, 'Templates'), ' / ', id),
    pageHead(`Template ${t.name || id}`),
    h('p', {}, badge(t.state), ' ', t.published_version ? `published ${t.published_version}` : 'never published', ' · updated ', fmtTime(t.updated)),
    form,
  );
}
