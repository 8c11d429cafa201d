// Providers: configured providers, a form to create or edit one (fields from the
// catalog), and "Send test" (POST /send with inline content routed to the provider's
// channel and pinned to that provider).
import { get, post, put } from '../api.js';
import { badge, busy, dialog, field, fmtTime, h, pageHead, reload, say, table } from '../dom.js';

const ADDRESS = {
  email: { key: 'email', label: 'Email address', type: 'email' },
  sms: { key: 'phone_number', label: 'Phone number', type: 'tel' },
};

export async function render(args) {
  const [list, cat] = await Promise.all([get('/providers'), get('/providers/catalog')]);
  const catalog = cat.results || [];
  const providers = list.results || [];
  const editing = args[0] ? providers.find((p) => p.id === args[0]) : null;
  const rows = providers.map((p) =>
    h(
      'tr',
      {},
      h('th', { scope: 'row' }, p.title || p.provider),
      h('td', {}, h('code', {}, p.provider)),
      h('td', {}, p.channel || ''),
      h('td', { class: 'num' }, String(p.priority ?? '')),
      h('td', {}, badge(p.enabled ? 'enabled' : 'disabled')),
      h('td', {}, fmtTime(p.updated)),
      h(
        'td',
        { class: 'row-actions' },
        h('a', { class: 'button secondary', href: `#/providers/${encodeURIComponent(p.id)}` }, 'Edit', h('span', { class: 'sr-only' }, ` ${p.title || p.provider}`)),
        h('button', { type: 'button', onclick: () => testDialog(p) }, 'Send test', h('span', { class: 'sr-only' }, ` through ${p.title || p.provider}`)),
      ),
    ),
  );
  return h(
    'section',
    { 'aria-labelledby': 'page-title' },
    pageHead('Providers'),
    h('p', { class: 'lead' }, 'Where messages go out, per channel. Lower priority is tried first.'),
    table('Configured providers', ['Title', 'Provider', 'Channel', 'Priority', 'State', 'Updated', 'Actions'], rows),
    providerForm(catalog, editing),
  );
}

function providerForm(catalog, editing) {
  const kind = h('select', { name: 'provider', disabled: Boolean(editing) }, catalog.map((c) => h('option', { value: c.provider, selected: editing?.provider === c.provider }, `${c.name} (${c.channel || 'any channel'})`)));
  if (editing) kind.value = editing.provider;
  const title = h('input', { type: 'text', name: 'title', value: editing?.title || '' });
  const priority = h('input', { type: 'number', name: 'priority', min: '0', max: '1000000', value: String(editing?.priority ?? 100) });
  const enabled = h('input', { type: 'checkbox', name: 'enabled', checked: editing ? editing.enabled : true });
  const settingsBox = h('fieldset', { class: 'settings' });
  let inputs = {};

  function renderSettings() {
    const c = catalog.find((x) => x.provider === kind.value);
    inputs = {};
    const cur = (editing && editing.provider === kind.value ? editing.settings : null) || {};
    const fields = Object.entries(c?.settings || {}).map(([k, spec]) => {
      let ctl;
      const label = `${k}${spec.required ? ' (required)' : ''}`;
      if (spec.values) {
        ctl = h('select', { name: k }, spec.required ? null : h('option', { value: '' }, '(default)'), spec.values.map((v) => h('option', { value: v }, v)));
        ctl.value = cur[k] ?? (spec.required ? spec.values[0] : '');
      } else if (spec.type === 'boolean') {
        ctl = h('input', { type: 'checkbox', name: k, checked: cur[k] ?? false });
      } else if (spec.type === 'number') {
        ctl = h('input', { type: 'number', name: k, value: cur[k] ?? '' });
      } else if (spec.type === 'object') {
        ctl = h('textarea', { class: 'code', rows: '3', name: k });
        ctl.value = cur[k] ? JSON.stringify(cur[k]) : '';
      } else {
        ctl = h('input', { type: /password|secret|token|api_key/.test(k) ? 'password' : 'text', name: k, value: cur[k] ?? '', autocomplete: 'off', required: spec.required || undefined });
      }
      inputs[k] = { ctl, spec };
      return field(label, ctl);
    });
    settingsBox.replaceChildren(h('legend', {}, `${c?.name || kind.value} settings`), c?.description ? h('p', { class: 'hint' }, c.description) : null, ...fields);
  }
  kind.addEventListener('change', renderSettings);
  renderSettings();

  const submit = h('button', { type: 'submit' }, editing ? 'Save provider' : 'Create provider');
  const form = h(
    'form',
    { class: 'card', 'aria-labelledby': 'prov-form-h' },
    h('h2', { id: 'prov-form-h' }, editing ? `Edit ${editing.title || editing.provider}` : 'Add a provider'),
    field('Provider', kind),
    field('Title', title),
    field('Priority', priority),
    h('div', { class: 'field check' }, enabled, h('label', { for: enabled.id || (enabled.id = 'prov-enabled') }, 'Enabled')),
    settingsBox,
    h('div', { class: 'actions' }, submit, editing ? h('a', { class: 'button secondary', href: '#/providers' }, 'Cancel') : null),
  );
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    busy(submit, async () => {
      const settings = {};
      for (const [k, { ctl, spec }] of Object.entries(inputs)) {
        if (spec.type === 'boolean') {
          if (ctl.checked || k in (editing?.settings || {})) settings[k] = ctl.checked;
        } else if (ctl.value === '') {
          continue;
        } else if (spec.type === 'number') settings[k] = Number(ctl.value);
        else if (spec.type === 'object') settings[k] = JSON.parse(ctl.value);
        else settings[k] = ctl.value;
      }
      const body = { provider: kind.value, title: title.value.trim() || null, priority: Number(priority.value || 100), enabled: enabled.checked, settings };
      if (kind.value === 'console' && settings.channel) body.channel = settings.channel;
      if (editing) {
        await put(`/providers/${encodeURIComponent(editing.id)}`, body);
        say(`Provider ${body.title || body.provider} saved.`);
        location.hash = '#/providers';
      } else {
        const p = await post('/providers', body);
        say(`Provider ${p.title || p.provider} created.`);
        reload();
      }
    });
  });
  return form;
}

function testDialog(p) {
  const addr = ADDRESS[p.channel] || { key: 'user_id', label: 'Recipient user id', type: 'text' };
  const to = h('input', { type: addr.type, name: 'to', required: true, autocomplete: 'off' });
  const subject = h('input', { type: 'text', name: 'title', value: 'herald test message' });
  const body = h('textarea', { name: 'body', rows: '3' });
  body.value = `A test message through ${p.title || p.provider}.`;
  const result = h('div', { class: 'result', 'aria-live': 'polite' });
  const submit = h('button', { type: 'submit' }, 'Send test');
  const form = h('form', { method: 'dialog' }, field(addr.label, to), field('Title', subject), field('Body', body), h('div', { class: 'actions' }, submit), result);
  dialog(`Send a test through ${p.title || p.provider}`, form);
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    busy(submit, async () => {
      const r = await post('/send', {
        message: {
          to: { [addr.key]: to.value.trim() },
          content: { title: subject.value, body: body.value },
          routing: { method: 'single', channels: [p.channel] },
          // pin the provider under test: channels.<ch>.providers (Courier's field; herald
          // also takes a configuration id there), else the channel's first provider answers
          channels: { [p.channel]: { providers: [p.id] } },
          metadata: { tags: ['test'] },
        },
      });
      const id = r.requestId;
      result.replaceChildren(h('p', {}, 'Queued as ', h('a', { href: `#/messages/${encodeURIComponent(id)}` }, id), '. ', h('span', { class: 'test-status' }, 'Waiting…')));
      say('Test message queued.');
      for (let i = 0; i < 20; i++) {
        await new Promise((res) => setTimeout(res, 250));
        const m = await get(`/messages/${encodeURIComponent(id)}`).catch(() => null);
        if (m && !['ENQUEUED', 'ROUTED'].includes(m.status)) {
          result.querySelector('.test-status').replaceChildren('Status: ', badge(m.status), m.error ? ` ${m.error}` : '');
          say(`Test message ${m.status}.`);
          break;
        }
      }
    });
  });
}
