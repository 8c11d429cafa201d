// Lists: Courier's lists (id, name, member count), filtered by an id or pattern
// (team.*, team.**), paged; create one; a list's members (paged) with add and remove;
// delete a list (its members are kept) and restore it by id.
import { del, get, put, qs } from '../api.js';
import { busy, confirmAction, cursorPages, field, fmtTime, h, pageHead, reload, say, table } from '../dom.js';

const ID_PATTERN = '[A-Za-z0-9_:@+\\-]+(\\.[A-Za-z0-9_:@+\\-]+){0,3}';
const enc = encodeURIComponent;

let pattern = '';
const listPages = cursorPages('lists');
const memberPages = new Map(); // list id -> its members' cursorPages
let deleted = []; // ids deleted from this tab, offered for restore

const count = (n) => (typeof n === 'number' ? String(n) : '—');

export async function render(parts) {
  if (parts[0]) return listView(parts[0]);
  const page = await get(`/lists${qs({ pattern, cursor: listPages.cursor() })}`);
  const items = page.items || [];

  const search = h('input', { type: 'search', name: 'pattern', value: pattern, autocomplete: 'off', spellcheck: 'false', placeholder: 'team.*' });
  const filter = h('form', { class: 'inline-form', role: 'search', 'aria-label': 'List filter' }, field('Filter by id or pattern', search), h('button', { type: 'submit' }, 'Filter'));
  filter.addEventListener('submit', (ev) => {
    ev.preventDefault();
    pattern = search.value.trim();
    listPages.reset();
    reload();
  });

  const rows = items.map((l) =>
    h(
      'tr',
      { dataset: { list: l.id } },
      h('th', { scope: 'row' }, h('a', { href: `#/lists/${enc(l.id)}` }, l.name || l.id)),
      h('td', {}, h('code', {}, l.id)),
      h('td', { class: 'num' }, count(l.subscriber_count)),
      h('td', {}, fmtTime(l.updated)),
    ),
  );

  const id = h('input', { type: 'text', name: 'list_id', required: true, pattern: ID_PATTERN, maxlength: 256, autocomplete: 'off', spellcheck: 'false', placeholder: 'team.eng' });
  const name = h('input', { type: 'text', name: 'name', autocomplete: 'off' });
  const create = h('button', { type: 'submit' }, 'Create list');
  const form = h('form', { class: 'card', 'aria-labelledby': 'new-list-title' }, h('h2', { id: 'new-list-title' }, 'Create a list'), field('List id', id, 'Up to four dot-separated parts of letters, digits and _ : @ + -.'), field('Name', name, 'Optional; the id when empty.'), h('div', { class: 'actions' }, create));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    busy(create, async () => {
      const lid = id.value.trim();
      await put(`/lists/${enc(lid)}`, { name: name.value.trim() || lid });
      say(`List ${lid} created.`);
      location.hash = `#/lists/${enc(lid)}`;
    });
  });

  return h(
    'section',
    { 'aria-labelledby': 'page-title' },
    pageHead('Lists'),
    h('p', { class: 'lead' }, 'Lists of users under dotted ids, kept by the Lists API and Segment audiences.'),
    filter,
    pattern ? h('p', { class: 'muted' }, `Showing lists matching “${pattern}”. `, h('button', { type: 'button', class: 'link', onclick: () => { pattern = ''; listPages.reset(); reload(); } }, 'Clear filter')) : null,
    table('Lists', ['Name', 'Id', 'Members', 'Updated'], rows),
    listPages.pager(page.paging),
    form,
    restoreForm(),
  );
}

function restoreForm() {
  const id = h('input', { type: 'text', name: 'restore_id', required: true, pattern: ID_PATTERN, maxlength: 256, autocomplete: 'off', spellcheck: 'false' });
  const btn = h('button', { type: 'submit' }, 'Restore list');
  const form = h(
    'form',
    { class: 'card', 'aria-labelledby': 'restore-title' },
    h('h2', { id: 'restore-title' }, 'Restore a deleted list'),
    deleted.length ? h('p', {}, 'Deleted from this tab: ', deleted.map((d, i) => [i ? ', ' : '', h('code', {}, d)])) : null,
    field('Deleted list id', id, 'A deleted list comes back with its members.'),
    h('div', { class: 'actions' }, btn),
  );
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    busy(btn, async () => {
      const lid = id.value.trim();
      await put(`/lists/${enc(lid)}/restore`);
      deleted = deleted.filter((d) => d !== lid);
      say(`List ${lid} restored.`);
      location.hash = `#/lists/${enc(lid)}`;
    });
  });
  return form;
}

async function listView(id) {
  if (!memberPages.has(id)) memberPages.set(id, cursorPages(`the members of ${id}`));
  const pages = memberPages.get(id);
  const [l, subs] = await Promise.all([get(`/lists/${enc(id)}`), get(`/lists/${enc(id)}/subscriptions${qs({ cursor: pages.cursor() })}`)]);
  const rows = (subs.items || []).map((s) =>
    h(
      'tr',
      { dataset: { user: s.recipientId } },
      h('th', { scope: 'row' }, h('a', { href: `#/profiles/${enc(s.recipientId)}` }, s.recipientId)),
      h('td', {}, fmtTime(s.created)),
      h(
        'td',
        { class: 'row-actions' },
        h('button', { type: 'button', class: 'secondary', onclick: (ev) => busy(ev.currentTarget, async () => { await del(`/lists/${enc(id)}/subscriptions/${enc(s.recipientId)}`); say(`${s.recipientId} removed from ${id}.`); reload(); }) }, 'Remove', h('span', { class: 'sr-only' }, ` ${s.recipientId}`)),
      ),
    ),
  );

  const user = h('input', { type: 'text', name: 'user_id', required: true, maxlength: 256, autocomplete: 'off', spellcheck: 'false' });
  const add = h('button', { type: 'submit' }, 'Add member');
  const form = h('form', { class: 'inline-form', 'aria-label': `Add a member to ${id}` }, field('User id', user), add);
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    busy(add, async () => {
      const u = user.value.trim();
      await put(`/lists/${enc(id)}/subscriptions/${enc(u)}`);
      say(`${u} added to ${id}.`);
      reload();
    });
  });

  const remove = h('button', { type: 'button', class: 'secondary' }, 'Delete list');
  remove.addEventListener('click', () =>
    confirmAction(`Delete list ${id}?`, 'The list is hidden and no longer sent to; its members are kept, and restoring it brings them back.', 'Delete list', async () => {
      await del(`/lists/${enc(id)}`);
      deleted = [id, ...deleted.filter((d) => d !== id)].slice(0, 10);
      memberPages.delete(id);
      say(`List ${id} deleted.`);
      location.hash = '#/lists';
    }),
  );

  return h(
    'section',
    { 'aria-labelledby': 'page-title' },
    pageHead(`List ${l.name || id}`, remove),
    h('p', {}, h('a', { href: '#/lists' }, 'All lists')),
    h('dl', { class: 'facts' }, h('dt', {}, 'Id'), h('dd', {}, h('code', {}, l.id)), h('dt', {}, 'Members'), h('dd', { class: 'member-count' }, count(l.subscriber_count)), h('dt', {}, 'Created'), h('dd', {}, fmtTime(l.created))),
    table(`Members of ${id}`, ['User id', 'Subscribed', 'Actions'], rows),
    pages.pager(subs.paging),
    h('h2', {}, 'Add a member'),
    form,
  );
}
