// Events: the event catalog (name, count, last seen, linked automations), search, a
// "+" per event to link an existing automation, and "Create new automation" (the event
// as trigger, refs.data.userId as recipient, data.email as the profile email; only the
// template is left to choose).
import { get, post, qs } from '../api.js';
import { busy, dialog, field, fmtTime, h, pageHead, reload, say, table } from '../dom.js';

let lastSearch = '';

export async function render() {
  const search = lastSearch;
  const [cat, autos] = await Promise.all([
    get(`/catalog/events${qs({ search, limit: 100 })}`),
    get('/automations').catch(() => ({ templates: [] })),
  ]);
  const names = new Map((autos.templates || []).map((a) => [a.id, a.name || a.id]));
  const items = cat.items || [];
  const links = await Promise.all(
    items.map((e) => get(`/links${qs({ event: e.name })}`).then((r) => r.results || []).catch(() => [])),
  );

  const input = h('input', { type: 'search', name: 'search', value: search, autocomplete: 'off' });
  const form = h(
    'form',
    { class: 'inline-form', role: 'search', 'aria-label': 'Event search' },
    field('Search events', input),
    h('button', { type: 'submit' }, 'Search'),
  );
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    lastSearch = input.value.trim();
    reload();
  });

  const rows = items.map((e, i) =>
    h(
      'tr',
      { dataset: { event: e.name } },
      h('th', { scope: 'row' }, h('code', {}, e.name)),
      h('td', { class: 'num' }, String(e.count ?? 0)),
      h('td', {}, fmtTime(e.last_seen)),
      h(
        'td',
        {},
        links[i].length
          ? h('ul', { class: 'plain' }, links[i].map((l) => h('li', {}, h('a', { href: `#/automations/${encodeURIComponent(l.automation_id)}` }, names.get(l.automation_id) || l.automation_id))))
          : h('span', { class: 'muted' }, 'none'),
      ),
      h(
        'td',
        { class: 'row-actions' },
        h('button', { type: 'button', class: 'icon', 'aria-label': `Link an automation to ${e.name}`, title: 'Link an automation', onclick: () => linkDialog(e.name, autos.templates || [], links[i]) }, '+'),
        h('button', { type: 'button', class: 'secondary', onclick: () => createDialog(e.name) }, 'Create new automation', h('span', { class: 'sr-only' }, ` for ${e.name}`)),
      ),
    ),
  );

  return h(
    'section',
    { 'aria-labelledby': 'page-title' },
    pageHead('Events'),
    h('p', { class: 'lead' }, 'Every event name herald has received. Link automations to run when one arrives.'),
    form,
    search ? h('p', { class: 'muted' }, `Showing events matching “${search}”. `, h('button', { type: 'button', class: 'link', onclick: () => { lastSearch = ''; reload(); } }, 'Clear search')) : null,
    table('Event catalog', ['Event', 'Count', 'Last seen', 'Automations', 'Actions'], rows),
  );
}

function linkDialog(event, automations, existing) {
  const have = new Set(existing.map((l) => l.automation_id));
  const choices = automations.filter((a) => !have.has(a.id));
  const sel = h('select', { name: 'automation_id', required: true }, choices.map((a) => h('option', { value: a.id }, `${a.name || a.id} (${a.id})`)));
  const submit = h('button', { type: 'submit', disabled: choices.length === 0 }, 'Link');
  const form = h(
    'form',
    { method: 'dialog' },
    h('p', {}, 'Run an existing automation whenever ', h('code', {}, event), ' arrives.'),
    choices.length ? field('Automation', sel) : h('p', { class: 'muted' }, 'Every automation is linked already, or there are none yet.'),
    h('div', { class: 'actions' }, submit),
  );
  const { close } = dialog(`Link an automation to ${event}`, form);
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    busy(submit, async () => {
      await post('/links', { event, automation_id: sel.value });
      close();
      say(`Linked ${sel.value} to ${event}.`);
      reload();
    });
  });
}

async function createDialog(event) {
  const list = await get('/notifications?limit=100').catch(() => ({ results: [] }));
  const published = (list.results || []).filter((t) => t.published_version);
  const sel = h('select', { name: 'template', required: true }, published.map((t) => h('option', { value: t.id }, `${t.name || t.id} (${t.published_version})`)));
  const submit = h('button', { type: 'submit', disabled: published.length === 0 }, 'Create automation');
  const form = h(
    'form',
    { method: 'dialog' },
    h(
      'dl',
      { class: 'facts' },
      h('dt', {}, 'Trigger'), h('dd', {}, h('code', {}, event)),
      h('dt', {}, 'Recipient'), h('dd', {}, h('code', {}, 'refs.data.userId')),
      h('dt', {}, 'Profile email'), h('dd', {}, h('code', {}, '{"$ref":"data.email"}')),
    ),
    published.length ? field('Template', sel, 'Only published templates can be sent.') : h('p', { class: 'muted' }, 'Publish a template first (Templates page).'),
    h('div', { class: 'actions' }, submit),
  );
  const { close } = dialog(`Create new automation for ${event}`, form);
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    busy(submit, async () => {
      const a = await post('/automations/from-event', { event, template: sel.value });
      close();
      say(`Automation ${a.name || a.id} created and linked to ${event}.`);
      reload();
    });
  });
}
