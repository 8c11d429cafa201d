// Webhooks: status webhook endpoints (POST /webhooks): add one (URL, signing secret,
// statuses to send), list them, and per endpoint its recent deliveries (each attempt:
// status code, time, attempt, event id) with "Replay" to send a delivery's event again.
import { del, get, post } from '../api.js';
import { badge, busy, field, fmtTime, h, pageHead, reload, say, table } from '../dom.js';

export async function render(parts) {
  if (parts[0]) return endpointView(parts[0]);
  const list = await get('/webhooks');
  const eps = list.results || [];
  const url = h('input', { type: 'url', name: 'url', required: true, placeholder: 'https://example.com/herald-events', autocomplete: 'off' });
  const secret = h('input', { type: 'password', name: 'secret', autocomplete: 'off' });
  const statuses = h('input', { type: 'text', name: 'statuses', autocomplete: 'off', placeholder: 'SENT, DELIVERED, UNDELIVERABLE' });
  const submit = h('button', { type: 'submit' }, 'Add endpoint');
  const form = h(
    'form',
    { class: 'card', 'aria-labelledby': 'add-title' },
    h('h2', { id: 'add-title' }, 'Add an endpoint'),
    field('Endpoint URL', url),
    field('Signing secret', secret, 'Optional. Requests carry courier-signature: t=<ms>,signature=<hex HMAC-SHA256(secret, "<t>.<body>")>.'),
    field('Statuses', statuses, 'Optional, comma-separated. Empty: every status change.'),
    h('div', { class: 'actions' }, submit),
  );
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    busy(submit, async () => {
      const body = { url: url.value.trim() };
      if (secret.value) body.secret = secret.value;
      const st = statuses.value.split(',').map((s) => s.trim().toUpperCase()).filter(Boolean);
      if (st.length) body.statuses = st;
      const ep = await post('/webhooks', body);
      say(`Endpoint ${ep.url} added.`);
      reload();
    });
  });
  const rows = eps.map((e) =>
    h(
      'tr',
      { dataset: { id: e.id } },
      h('th', { scope: 'row' }, h('a', { href: `#/webhooks/${encodeURIComponent(e.id)}` }, e.url)),
      h('td', {}, e.statuses ? e.statuses.join(', ') : h('span', { class: 'muted' }, 'all')),
      h('td', {}, badge(e.enabled ? 'enabled' : 'disabled')),
      h('td', {}, e.secret ? h('code', {}, e.secret) : h('span', { class: 'muted' }, 'none')),
      h(
        'td',
        { class: 'row-actions' },
        h('a', { href: `#/webhooks/${encodeURIComponent(e.id)}`, 'aria-label': `Deliveries of ${e.url}` }, 'Deliveries'),
        h('button', { type: 'button', class: 'secondary', onclick: (ev) => busy(ev.currentTarget, async () => { await del(`/webhooks/${encodeURIComponent(e.id)}`); say(`Endpoint ${e.url} removed.`); reload(); }) }, 'Remove', h('span', { class: 'sr-only' }, ` ${e.url}`)),
      ),
    ),
  );
  return h(
    'section',
    { 'aria-labelledby': 'page-title' },
    pageHead('Webhooks'),
    h('p', { class: 'lead' }, 'Endpoints that receive a signed message:updated event whenever a message changes status.'),
    table('Webhook endpoints', ['URL', 'Statuses', 'State', 'Secret', 'Actions'], rows),
    form,
  );
}

async function endpointView(id) {
  const ep = await get(`/webhooks/${encodeURIComponent(id)}`);
  const log = (await get(`/webhooks/${encodeURIComponent(id)}/deliveries`)).results || [];
  const rows = log.map((d) =>
    h(
      'tr',
      { dataset: { delivery: d.id } },
      h('td', {}, fmtTime(d.ts)),
      h('td', {}, h('code', {}, d.event_id)),
      h('td', {}, d.message_status || ''),
      h('td', { class: 'num' }, String(d.attempt)),
      h('td', { class: 'num' }, d.status_code === null ? '—' : String(d.status_code)),
      h('td', {}, badge(d.outcome === 'succeeded' ? 'ok' : d.outcome === 'failed' ? 'error' : d.outcome), d.replay ? ' (replay)' : '', d.error ? h('span', { class: 'muted' }, ` ${d.error}`) : null),
      h(
        'td',
        { class: 'row-actions' },
        h('button', { type: 'button', class: 'secondary', onclick: (ev) => busy(ev.currentTarget, async () => { await post(`/webhooks/${encodeURIComponent(id)}/deliveries/${encodeURIComponent(d.id)}/replay`); say(`Delivery ${d.id} queued again.`); }) }, 'Replay', h('span', { class: 'sr-only' }, ` delivery ${d.id} attempt ${d.attempt}`)),
      ),
    ),
  );
  return h(
    'section',
    { 'aria-labelledby': 'page-title' },
    pageHead(`Webhook ${ep.url}`, h('button', { type: 'button', class: 'secondary', onclick: () => reload() }, 'Refresh')),
    h('p', {}, h('a', { href: '#/webhooks' }, 'All endpoints')),
    h('dl', { class: 'facts' }, h('dt', {}, 'Statuses'), h('dd', {}, ep.statuses ? ep.statuses.join(', ') : 'all'), h('dt', {}, 'Secret'), h('dd', {}, ep.secret || 'none')),
    table('Recent deliveries', ['Time', 'Event', 'Message status', 'Attempt', 'HTTP status', 'Outcome', 'Actions'], rows),
  );
}
