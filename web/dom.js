// dom.js: a tiny element builder and shared UI helpers (status messages, dialogs,
// tables, dates). Text always goes in as text nodes: nothing from the API is parsed
// as HTML.

/** h('button', {class: 'x', onclick: fn}, 'Save') -> Element. Attributes starting with
 *  "on" become listeners; false/null/undefined attributes are left out; children may
 *  be strings, nodes, arrays or null. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === false || v === null || v === undefined) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'value') el.value = v;
    else if (k === 'checked') el.checked = Boolean(v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

let uid = 0;
/** A unique element id with a readable prefix. */
export const nid = (p = 'f') => `${p}-${++uid}`;

/** A labelled field: <div class=field><label for>...</label><control></div>. */
export function field(label, control, hint) {
  if (!control.id) control.id = nid('f');
  let hintEl = null;
  if (hint) {
    hintEl = h('p', { class: 'hint', id: nid('hint') }, hint);
    control.setAttribute('aria-describedby', hintEl.id);
  }
  return h('div', { class: 'field' }, h('label', { for: control.id }, label), control, hintEl);
}

let saidAt = 0;

/** Status messages: announced politely; errors assertively. A message said just before
 *  a navigation (e.g. "saved", then back to the list) survives it. */
export function say(msg) {
  saidAt = Date.now();
  const s = document.getElementById('status');
  s.textContent = '';
  // a fresh text node so screen readers announce a repeated message
  setTimeout(() => (s.textContent = msg), 10);
  document.getElementById('alert').textContent = '';
}
export function fail(err) {
  const msg = err instanceof Error ? err.message : String(err);
  document.getElementById('alert').textContent = `Error: ${msg}`;
}
export function clearMessages() {
  if (Date.now() - saidAt > 2000) document.getElementById('status').textContent = '';
  document.getElementById('alert').textContent = '';
}

/** Run an async action from a button: disables it meanwhile, reports errors. */
export async function busy(btn, fn) {
  if (btn) btn.disabled = true;
  try {
    return await fn();
  } catch (e) {
    fail(e);
    return undefined;
  } finally {
    if (btn) btn.disabled = false;
  }
}

/** A table in a scrollable, focusable region (narrow screens scroll it sideways). */
export function table(caption, headers, rows) {
  return h(
    'div',
    { class: 'table-wrap', role: 'region', 'aria-label': caption, tabindex: '0' },
    h(
      'table',
      {},
      h('caption', {}, caption),
      h('thead', {}, h('tr', {}, headers.map((x) => h('th', { scope: 'col' }, x)))),
      h('tbody', {}, rows.length ? rows : h('tr', {}, h('td', { colspan: headers.length, class: 'empty' }, 'Nothing yet.'))),
    ),
  );
}

/** A modal dialog (native <dialog>: focus stays inside, Escape closes). Returns
 *  {dlg, close}. body: nodes; the dialog is removed when closed. */
export function dialog(title, body) {
  const tid = nid('dlg');
  const dlg = h('dialog', { 'aria-labelledby': tid, class: 'dlg' });
  const close = () => dlg.close();
  dlg.append(
    h('div', { class: 'dlg-head' }, h('h2', { id: tid }, title), h('button', { type: 'button', class: 'secondary', onclick: close, 'aria-label': 'Close dialog' }, '×')),
    ...[body].flat(),
  );
  const opener = document.activeElement;
  dlg.addEventListener('close', () => {
    dlg.remove();
    // back to the button that opened it; if the page was re-rendered meanwhile, to the
    // page itself
    if (opener && opener.isConnected) opener.focus();
    else document.getElementById('main')?.focus();
  });
  document.body.append(dlg);
  dlg.showModal();
  return { dlg, close };
}

export function fmtTime(v) {
  if (v === undefined || v === null || v === '') return '';
  const d = typeof v === 'number' ? new Date(v) : new Date(String(v));
  if (Number.isNaN(d.getTime())) return String(v);
  return d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
}

export const pretty = (v) => JSON.stringify(v, null, 2);

/** A status badge. */
export function badge(s) {
  const v = String(s ?? '');
  const kind = /SENT|DELIVERED|COMPLETED|PUBLISHED|done|^ok$|^enabled$/i.test(v)
    ? 'ok'
    : /FAIL|UNDELIVERABLE|UNROUTABLE|UNMAPPED|CANCEL|error|not run|disabled/i.test(v)
      ? 'bad'
      : 'wait';
  return h('span', { class: `badge ${kind}` }, v || '—');
}

/** Debounce fn by ms. */
export function debounce(fn, ms) {
  let t;
  return (...a) => {
    clearTimeout(t);
    t = setTimeout(() => fn(...a), ms);
  };
}

/** The page header: an h1 and optional actions. */
export function pageHead(title, ...actions) {
  return h('div', { class: 'page-head' }, h('h1', { id: 'page-title' }, title), actions.length ? h('div', { class: 'actions' }, actions) : null);
}

/** Ask the app to render the current page again (after a change). */
export function reload() {
  window.dispatchEvent(new Event('herald:reload'));
}

/** A confirmation dialog: text, Cancel and a button `label` that runs the async action
 *  (the dialog closes either way; an error is shown as the API's message). */
export function confirmAction(title, text, label, action) {
  const ok = h('button', { type: 'submit' }, label);
  const form = h('form', { method: 'dialog' }, h('p', {}, text), h('div', { class: 'actions' }, h('button', { type: 'button', class: 'secondary', onclick: () => close() }, 'Cancel'), ok));
  const { close } = dialog(title, form);
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    busy(ok, async () => {
      try {
        await action();
      } finally {
        close();
      }
    });
  });
}

/** Cursor paging state for one view: cursor() is the page to show; pager(paging) the
 *  "Previous page" / "Next page" buttons for the answer's {cursor, more} (null when all
 *  fits on one page); reset() goes back to the first page. */
export function cursorPages(label) {
  let stack = []; // cursors of the pages shown before this one; the last is this page's
  return {
    cursor: () => (stack.length ? stack[stack.length - 1] : ''),
    reset: () => (stack = []),
    pager(paging) {
      const more = Boolean(paging && paging.more && paging.cursor);
      if (!more && !stack.length) return null; // one page: nothing to move to
      const prev = h('button', { type: 'button', class: 'secondary', disabled: !stack.length, onclick: () => { stack.pop(); reload(); } }, 'Previous page', h('span', { class: 'sr-only' }, ` of ${label}`));
      const next = h('button', { type: 'button', class: 'secondary', disabled: !more, onclick: () => { stack.push(paging.cursor); reload(); } }, 'Next page', h('span', { class: 'sr-only' }, ` of ${label}`));
      return h('div', { class: 'actions pager' }, prev, next);
    },
  };
}
