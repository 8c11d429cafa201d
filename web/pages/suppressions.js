// Suppressions: the addresses herald no longer sends to (hard bounces and complaints
// from delivery receipts, or added by hand), paged; add one with a reason; remove one
// after a confirmation.
import { del, get, post, qs } from '../api.js';
import { busy, confirmAction, cursorPages, field, fmtTime, h, pageHead, reload, say, table } from '../dom.js';

const pages = cursorPages('suppressions');

export async function render() {
  const page = await get(`/suppressions${qs({ limit: 50, cursor: pages.cursor() })}`);
  const rows = (page.results || []).map((s) => {
    const rm = h('button', { type: 'button', class: 'secondary' }, 'Remove', h('span', { class: 'sr-only' }, ` ${s.address}`));
    rm.addEventListener('click', () =>
      confirmAction(`Remove ${s.address}?`, `Messages to ${s.address} will be sent again.`, 'Remove', async () => {
        await del(`/suppressions/${encodeURIComponent(s.address)}`);
        say(`${s.address} removed from the suppression list.`);
        reload();
      }),
    );
    return h(
      'tr',
      { dataset: { address: s.address } },
      h('th', { scope: 'row' }, h('code', {}, s.address)),
      h('td', {}, s.reason || ''),
      h('td', {}, s.provider || h('span', { class: 'muted' }, 'by hand')),
      h('td', {}, s.event || ''),
      h('td', {}, fmtTime(s.created)),
      h('td', { class: 'row-actions' }, rm),
    );
  });

  const address = h('input', { type: 'text', name: 'address', required: true, maxlength: 320, autocomplete: 'off', spellcheck: 'false', placeholder: 'ann@example.com or +15550100' });
  const reason = h('input', { type: 'text', name: 'reason', maxlength: 64, autocomplete: 'off', placeholder: 'MANUAL' });
  const add = h('button', { type: 'submit' }, 'Add address');
  const form = h(
    'form',
    { class: 'card', 'aria-labelledby': 'add-supp-title' },
    h('h2', { id: 'add-supp-title' }, 'Suppress an address'),
    field('Address', address, 'An email address (stored in lower case) or a phone number.'),
    field('Reason', reason, 'Optional; MANUAL when empty.'),
    h('div', { class: 'actions' }, add),
  );
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    busy(add, async () => {
      const body = { address: address.value.trim() };
      if (reason.value.trim()) body.reason = reason.value.trim();
      const s = await post('/suppressions', body);
      say(`${s.address} added to the suppression list.`);
      pages.reset();
      reload();
    });
  });

  return h(
    'section',
    { 'aria-labelledby': 'page-title' },
    pageHead('Suppressions'),
    h('p', { class: 'lead' }, 'A send to a suppressed address ends UNDELIVERABLE (reason SUPPRESSED) without calling any provider.'),
    table('Suppressed addresses', ['Address', 'Reason', 'Provider', 'Event', 'Added', 'Actions'], rows),
    pages.pager(page.paging),
    form,
  );
}
