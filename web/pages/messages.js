// Messages: the message log with filters (recipient, status, tag), and one message's
// timeline (its history events) and rendered output.
import { get, qs } from '../api.js';
import { badge, field, fmtTime, h, pageHead, pretty, reload, table } from '../dom.js';

const STATUSES = ['ENQUEUED', 'ROUTED', 'SENT', 'UNDELIVERABLE', 'UNROUTABLE', 'UNMAPPED', 'CANCELED'];
const filters = { recipient: '', status: '', tag: '' };

export function messageRows(results) {
  return results.map((m) =>
    h(
      'tr',
      {},
      h('th', { scope: 'row' }, h('a', { href: `#/messages/${encodeURIComponent(m.id)}` }, h('code', {}, m.id))),
      h('td', {}, badge(m.status)),
      h('td', {}, m.recipient || ''),
      h('td', {}, m.notification || m.event || ''),
      h('td', {}, (m.tags || []).join(', ')),
      h('td', {}, fmtTime(m.enqueued)),
    ),
  );
}
export const MESSAGE_HEADERS = ['Message', 'Status', 'Recipient', 'Template', 'Tags', 'Enqueued'];

export async function render(args) {
  if (args[0]) return detail(args[0]);
  const list = await get(`/messages${qs({ ...filters, limit: 50 })}`);
  const recipient = h('input', { type: 'text', name: 'recipient', value: filters.recipient, autocomplete: 'off' });
  const status = h('select', { name: 'status' }, h('option', { value: '' }, 'Any'), STATUSES.map((s) => h('option', { value: s }, s)));
  status.value = filters.status;
  const tag = h('input', { type: 'text', name: 'tag', value: filters.tag, autocomplete: 'off' });
  const form = h(
    'form',
    { class: 'inline-form', 'aria-label': 'Filter messages' },
    field('Recipient', recipient),
    field('Status', status),
    field('Tag', tag),
    h('button', { type: 'submit' }, 'Apply filters'),
    h('button', { type: 'button', class: 'secondary', onclick: () => { Object.assign(filters, { recipient: '', status: '', tag: '' }); reload(); } }, 'Clear'),
  );
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    Object.assign(filters, { recipient: recipient.value.trim(), status: status.value, tag: tag.value.trim() });
    reload();
  });
  const results = list.results || [];
  return h(
    'section',
    { 'aria-labelledby': 'page-title' },
    pageHead('Messages'),
    form,
    h('p', { class: 'muted count' }, `${results.length} message${results.length === 1 ? '' : 's'}${list.paging?.more ? ' (more exist; narrow the filters)' : ''}.`),
    table('Message log', MESSAGE_HEADERS, messageRows(results)),
  );
}

/** A short line about a history event's details. */
function summary(ev) {
  switch (ev.type) {
    case 'ENQUEUED':
      return ev.origin?.automation ? `from automation ${ev.origin.automation}, step ${ev.origin.step + 1}` : `recipient ${ev.recipient || ''}`;
    case 'MAPPED':
      return `template ${ev.notification_id || ''} ${ev.version || ''}`;
    case 'RENDERED':
      return `channel ${ev.channel?.id || ''}`;
    default: {
      const bits = [];
      // receipts and tracking name the provider's own event, a bounce's kind, the link
      for (const k of ['channel', 'provider', 'integration', 'event', 'reason', 'reasonCode', 'link', 'error', 'reference']) {
        const v = ev[k];
        if (v === undefined || v === null) continue;
        bits.push(`${k}: ${typeof v === 'object' ? v.provider || v.id || v.key || JSON.stringify(v) : v}`);
      }
      return bits.join(' · ');
    }
  }
}

async function detail(id) {
  const enc = encodeURIComponent(id);
  const [m, hist, out] = await Promise.all([
    get(`/messages/${enc}`),
    get(`/messages/${enc}/history`).catch((e) => ({ results: [], error: e.message || String(e) })),
    get(`/messages/${enc}/output`).catch(() => ({ results: [] })),
  ]);
  const timeline = h(
    'ol',
    { class: 'timeline', 'aria-label': 'Timeline' },
    (hist.results || []).map((ev) =>
      h(
        'li',
        { dataset: { type: ev.type } },
        h('div', { class: 'tl-head' }, badge(ev.type), ' ', h('time', { datetime: new Date(ev.ts).toISOString() }, fmtTime(ev.ts)), ' ', h('span', { class: 'muted' }, summary(ev))),
        h('details', {}, h('summary', {}, `Details of ${ev.type}`), h('pre', { class: 'json' }, pretty(ev))),
      ),
    ),
  );
  const outputs = (out.results || []).map((r) => {
    const c = r.content || {};
    const parts = [h('h3', {}, `Channel: ${r.channel}`)];
    if (c.subject) parts.push(h('p', {}, h('strong', {}, 'Subject: '), h('span', { class: 'subject' }, c.subject)));
    if (c.title && !c.subject) parts.push(h('p', {}, h('strong', {}, 'Title: '), c.title));
    if (c.html) {
      const f = h('iframe', { title: `Rendered ${r.channel} HTML`, sandbox: '', class: 'email-frame' });
      f.srcdoc = c.html;
      parts.push(f);
    }
    if (c.text) parts.push(h('h4', {}, 'Text'), h('pre', { class: 'out-text' }, c.text));
    if (c.body && !c.text) parts.push(h('pre', { class: 'out-text' }, c.body));
    if (c.json) parts.push(h('pre', { class: 'json' }, pretty(c.json)));
    return h('div', { class: 'card output' }, parts);
  });
  return h(
    'section',
    { 'aria-labelledby': 'page-title' },
    h('p', { class: 'crumbs' }, h('a', { href: '#/messages' }, 'Messages'), ' / ', id),
    pageHead('Message'),
    h(
      'dl',
      { class: 'facts' },
      h('dt', {}, 'Id'), h('dd', {}, h('code', {}, m.id)),
      h('dt', {}, 'Status'), h('dd', {}, badge(m.status), m.reason ? ` ${m.reason}` : '', m.error ? ` — ${m.error}` : ''),
      h('dt', {}, 'Recipient'), h('dd', {}, m.recipient ? h('a', { href: `#/profiles/${encodeURIComponent(m.recipient)}` }, m.recipient) : '—'),
      h('dt', {}, 'Template'), h('dd', {}, m.notification || '—'),
      h('dt', {}, 'Enqueued'), h('dd', {}, fmtTime(m.enqueued)),
      h('dt', {}, 'Sent'), h('dd', {}, fmtTime(m.sent) || '—'),
      h('dt', {}, 'Providers'), h('dd', {}, (m.providers || []).map((p) => `${p.provider} (${p.channel?.key || ''}): ${p.status}`).join('; ') || '—'),
    ),
    h('div', { class: 'two-col' }, h('div', {}, h('h2', {}, 'Timeline'), hist.error ? h('p', { class: 'error', role: 'alert' }, `The timeline could not be loaded: ${hist.error}`) : timeline), h('div', {}, h('h2', {}, 'Rendered output'), outputs.length ? outputs : h('p', { class: 'muted' }, 'Not rendered (yet).'))),
  );
}
