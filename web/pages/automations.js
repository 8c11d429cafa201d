// Automations: the list; an editor with a form for send and delay steps and the JSON of
// the whole definition (for every step type); the automation's recent runs with their
// step-by-step status.
import { get, put, qs } from '../api.js';
import { badge, busy, field, fmtTime, h, nid, pageHead, pretty, reload, say, table } from '../dom.js';

export async function render(args) {
  if (args[0]) return editor(args[0]);
  const list = await get('/automations');
  const rows = (list.templates || []).map((a) =>
    h(
      'tr',
      {},
      h('th', { scope: 'row' }, h('a', { href: `#/automations/${encodeURIComponent(a.id)}` }, a.name || a.id)),
      h('td', {}, h('code', {}, a.id)),
      h('td', { class: 'num' }, String(a.revision ?? '')),
      h('td', {}, fmtTime(a.updatedAt)),
    ),
  );
  return h(
    'section',
    { 'aria-labelledby': 'page-title' },
    pageHead('Automations'),
    h('p', { class: 'lead' }, 'Create one from an event on the Events page, then edit its steps here.'),
    table('Automations', ['Name', 'Id', 'Version', 'Updated'], rows),
  );
}

const STRIP = ['id', 'version', 'created', 'updated'];

async function editor(id) {
  const [auto, tpls, runs, links] = await Promise.all([
    get(`/automations/${encodeURIComponent(id)}`),
    get('/notifications?limit=100').catch(() => ({ results: [] })),
    get(`/automations/runs${qs({ automation_id: id, limit: 10 })}`).catch(() => ({ runs: [] })),
    get(`/links${qs({ automation_id: id })}`).catch(() => ({ results: [] })),
  ]);
  const def = {};
  for (const [k, v] of Object.entries(auto)) if (!STRIP.includes(k)) def[k] = v;
  if (!Array.isArray(def.steps)) def.steps = [];
  const templates = tpls.results || [];

  const json = h('textarea', { class: 'code', rows: '18', spellcheck: 'false', name: 'json' });
  const jsonErr = h('p', { class: 'error', id: nid('jsonerr'), 'aria-live': 'polite' });
  json.setAttribute('aria-describedby', jsonErr.id);
  const stepsBox = h('div', { class: 'steps' });
  const name = h('input', { type: 'text', name: 'name', value: def.name || '' });

  const syncJson = () => {
    json.value = pretty(def);
    jsonErr.textContent = '';
  };
  const renderSteps = () => stepsBox.replaceChildren(...def.steps.map((s, i) => stepForm(s, i)));

  function stepForm(step, i) {
    const legend = h('legend', {}, `Step ${i + 1}: ${step.action || '?'}`);
    const body = [];
    const set = (k, v) => {
      if (v === '' || v === undefined) delete step[k];
      else step[k] = v;
      syncJson();
    };
    if (step.action === 'send') {
      const sel = h(
        'select',
        { name: `step${i}-template`, onchange: (e) => set('template', e.target.value) },
        h('option', { value: '' }, '(none)'),
        templates.map((t) => h('option', { value: t.id, selected: t.id === step.template }, `${t.name || t.id}${t.published_version ? '' : ' (not published)'}`)),
      );
      if (step.template && !templates.some((t) => t.id === step.template)) sel.append(h('option', { value: step.template, selected: true }, step.template));
      sel.value = step.template || '';
      body.push(field('Template', sel));
      body.push(field('Recipient', h('input', { type: 'text', name: `step${i}-recipient`, value: typeof step.recipient === 'string' ? step.recipient : '', oninput: (e) => set('recipient', e.target.value) }), 'A user id, or an accessor such as refs.data.userId.'));
    } else if (step.action === 'delay') {
      body.push(field('Duration', h('input', { type: 'text', name: `step${i}-duration`, value: step.duration || '', oninput: (e) => set('duration', e.target.value) }), 'e.g. "5 minutes", "1 day", "PT1H".'));
    } else {
      body.push(h('p', { class: 'muted' }, 'Edit this step in the JSON below.'));
    }
    body.push(field('Condition (if)', h('input', { type: 'text', name: `step${i}-if`, value: step.if || '', oninput: (e) => set('if', e.target.value) }), 'Optional, e.g. data.plan === \'pro\'.'));
    const remove = h('button', { type: 'button', class: 'secondary', onclick: () => { def.steps.splice(i, 1); syncJson(); renderSteps(); say(`Step ${i + 1} removed.`); } }, `Remove step ${i + 1}`);
    return h('fieldset', { class: 'step' }, legend, body, h('div', { class: 'actions' }, remove));
  }

  name.addEventListener('input', () => {
    def.name = name.value;
    syncJson();
  });
  json.addEventListener('input', () => {
    try {
      const v = JSON.parse(json.value);
      if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error('the definition must be an object');
      for (const k of Object.keys(def)) delete def[k];
      Object.assign(def, v);
      if (!Array.isArray(def.steps)) def.steps = [];
      name.value = def.name || '';
      renderSteps();
      jsonErr.textContent = '';
    } catch (e) {
      jsonErr.textContent = `The JSON is not valid: ${e.message}`;
    }
  });
  syncJson();
  renderSteps();

  const addSend = h('button', { type: 'button', class: 'secondary', onclick: () => { def.steps.push({ action: 'send', template: templates[0]?.id, recipient: 'refs.data.userId' }); syncJson(); renderSteps(); say('Send step added.'); } }, 'Add send step');
  const addDelay = h('button', { type: 'button', class: 'secondary', onclick: () => { def.steps.push({ action: 'delay', duration: '5 minutes' }); syncJson(); renderSteps(); say('Delay step added.'); } }, 'Add delay step');
  const save = h('button', { type: 'submit' }, 'Save automation');
  const form = h(
    'form',
    { class: 'editor' },
    h('div', { class: 'card' }, field('Name', name), h('h2', {}, 'Steps'), stepsBox, h('div', { class: 'actions' }, addSend, addDelay)),
    h(
      'div',
      { class: 'card' },
      h('h2', {}, 'Definition (JSON)'),
      field('Automation JSON', json, 'Every step type: send, send-list, delay, cancel, fetch-data, update-profile, get-profile, invoke.'),
      jsonErr,
      h('div', { class: 'actions' }, save),
    ),
  );
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    if (jsonErr.textContent) {
      json.focus();
      return;
    }
    busy(save, async () => {
      const r = await put(`/automations/${encodeURIComponent(id)}`, def);
      say(`Saved: version ${r.version}.`);
      reload();
    });
  });

  const runRows = (runs.runs || []).map((r) =>
    h(
      'tr',
      {},
      h('th', { scope: 'row' }, h('code', {}, r.id)),
      h('td', {}, badge(r.status)),
      h('td', {}, fmtTime(r.created)),
      h('td', {}, r.source?.event || ''),
      h(
        'td',
        {},
        h(
          'ol',
          { class: 'run-steps' },
          (r.steps || []).map((s) =>
            h(
              'li',
              {},
              h('span', {}, `${s.index + 1}. ${s.action}`), ' ', badge(s.status),
              s.outcome?.messageId ? [' ', h('a', { href: `#/messages/${encodeURIComponent(s.outcome.messageId)}` }, 'message')] : null,
              s.error ? h('span', { class: 'error' }, ` ${s.error}`) : null,
            ),
          ),
        ),
      ),
    ),
  );
  const refreshRuns = h('button', { type: 'button', class: 'secondary', onclick: () => reload() }, 'Refresh runs');

  return h(
    'section',
    { 'aria-labelledby': 'page-title' },
    h('p', { class: 'crumbs' }, h('a', { href: '#/automations' }, 'Automations'), ' / ', id),
    pageHead(`Automation ${auto.name || id}`),
    h('p', {}, 'Version ', String(auto.version), ' · updated ', fmtTime(auto.updated), ' · triggered by ',
      (links.results || []).length ? (links.results || []).map((l, i) => [i ? ', ' : '', h('code', {}, l.event)]) : h('span', { class: 'muted' }, 'no event')),
    form,
    h('div', { class: 'page-head' }, h('h2', { id: 'runs-h' }, 'Recent runs'), refreshRuns),
    table('Recent runs', ['Run', 'Status', 'Started', 'Event', 'Steps'], runRows),
  );
}
