// Bulk: Courier's bulk jobs and herald's sends to a list (GET /bulk, GET /bulk?kind=list),
// newest first and paged, each with its progress. While one shown is PROCESSING the page
// refreshes its tables in place every 2 s; it stops when none is, and when the page is
// left. A job's detail: its counts, its definition, its users (paged, each with its status
// and message) and "Run job" while it is CREATED.
import { get, post, qs } from '../api.js';
import { badge, busy, cursorPages, fail, fmtTime, h, pageHead, pretty, say, table } from '../dom.js';

const REFRESH_MS = 2000;
const enc = encodeURIComponent;
const jobPages = cursorPages('bulk jobs');
const sendPages = cursorPages('list sends');
const userPages = new Map(); // job id -> its users' cursorPages

// One refresh timer for the page shown: each render takes a new generation, so a refresh
// of a page that was left (still in flight when it went) cannot touch the new page's timer.
let timer = 0;
let generation = 0;
window.addEventListener('hashchange', () => {
  clearTimeout(timer);
  timer = 0;
});

/** Refresh `section` with `refresh` in REFRESH_MS while `running` (its data-refreshing
 *  attribute says which), unless a newer render (gen) or leaving the page came first. */
function schedule(gen, section, refresh, running) {
  if (gen !== generation) return;
  clearTimeout(timer);
  timer = 0;
  section.dataset.refreshing = running ? 'true' : 'false';
  if (!running) return;
  timer = setTimeout(async () => {
    timer = 0;
    if (gen !== generation || !section.isConnected) return;
    try {
      await refresh();
    } catch (e) {
      if (gen !== generation || !section.isConnected) return;
      section.dataset.refreshing = 'false';
      fail(e); // the API's message; "Refresh" starts again
    }
  }, REFRESH_MS);
}

/** Replace `old` by `next`, keeping keyboard focus on the control with the same
 *  data-focus-key (a refresh must not throw the user's focus away). Returns next. */
function swap(old, next) {
  const a = document.activeElement;
  const key = a && old.contains(a) ? a.dataset.focusKey || (a === old ? 'self' : null) : null;
  old.replaceWith(next);
  if (key === 'self') next.focus();
  else if (key) next.querySelector(`[data-focus-key="${CSS.escape(key)}"]`)?.focus();
  return next;
}

/** el with a data-focus-key (a focusable table region keeps focus across refreshes). */
function keyed(el, key) {
  el.dataset.focusKey = key;
  return el;
}

const n = (v) => (typeof v === 'number' ? v : 0);

/** A labelled progress bar with "done of total (pct%)"; total null: no total known
 *  (indeterminate while running, full when done). */
function progress(label, done, total, finished) {
  if (total === null) {
    const bar = finished ? h('progress', { max: 1, value: 1, 'aria-label': label }) : h('progress', { 'aria-label': label });
    return h('div', { class: 'progress' }, bar, h('span', { class: 'progress-text' }, `${done} enqueued${finished ? '' : ' so far'}`));
  }
  const pct = total > 0 ? Math.floor((Math.min(done, total) * 100) / total) : finished ? 100 : 0;
  return h(
    'div',
    { class: 'progress' },
    h('progress', { max: total > 0 ? total : 1, value: total > 0 ? Math.min(done, total) : finished ? 1 : 0, 'aria-label': label }),
    h('span', { class: 'progress-text' }, `${done} of ${total} (${pct}%)`),
  );
}

const jobProgress = (j) => progress(`Progress of job ${j.id}`, n(j.enqueued) + n(j.failures), n(j.received), j.status === 'COMPLETED');

function jobsTable(page) {
  const rows = (page.items || []).map((j) =>
    h(
      'tr',
      { dataset: { job: j.id, status: j.status } },
      h('th', { scope: 'row' }, h('a', { href: `#/bulk/${enc(j.id)}`, dataset: { focusKey: `job:${j.id}` } }, h('code', {}, j.id))),
      h('td', {}, badge(j.status)),
      h('td', {}, jobProgress(j)),
      h('td', { class: 'num' }, String(n(j.received))),
      h('td', { class: 'num' }, String(n(j.enqueued))),
      h('td', { class: 'num' }, String(n(j.failures))),
      h('td', {}, j.event || '', j.template && j.template !== j.event ? h('span', { class: 'muted' }, ` (template ${j.template})`) : null),
      h('td', {}, fmtTime(j.created)),
    ),
  );
  return h('div', {}, keyed(table('Bulk jobs', ['Job', 'Status', 'Progress', 'Users', 'Enqueued', 'Failures', 'Event', 'Created'], rows), 'jobs'), jobPages.pager(page.paging));
}

function sendsTable(page) {
  const rows = (page.items || []).map((s) => {
    const list = s.list_id
      ? h('a', { href: `#/lists/${enc(s.list_id)}`, dataset: { focusKey: `send:${s.requestId}` } }, s.list_id)
      : h('code', {}, s.list_pattern || '');
    return h(
      'tr',
      { dataset: { request: s.requestId, status: s.status } },
      h('th', { scope: 'row' }, h('code', {}, s.requestId)),
      h('td', {}, list),
      h('td', {}, badge(s.status)),
      h('td', {}, progress(`Progress of list send ${s.requestId}`, n(s.enqueued), null, Boolean(s.done))),
      h('td', {}, s.template || h('span', { class: 'muted' }, 'inline content')),
      h('td', {}, fmtTime(s.created)),
    );
  });
  return h('div', {}, keyed(table('List sends', ['Request', 'List', 'Status', 'Progress', 'Template', 'Created'], rows), 'sends'), sendPages.pager(page.paging));
}

export async function render(parts) {
  if (parts[0]) return jobView(parts[0]);
  const gen = ++generation;
  let jobsEl = h('div');
  let sendsEl = h('div');
  const refreshBtn = h('button', { type: 'button', class: 'secondary' }, 'Refresh');
  const section = h(
    'section',
    { 'aria-labelledby': 'page-title', class: 'bulk' },
    pageHead('Bulk', refreshBtn),
    h('p', { class: 'lead' }, 'Bulk jobs (the Bulk API) and sends to a list or list pattern, newest first. The page refreshes itself while one is processing.'),
    jobsEl,
    sendsEl,
  );
  const refresh = async () => {
    const [jobs, sends] = await Promise.all([get(`/bulk${qs({ cursor: jobPages.cursor() })}`), get(`/bulk${qs({ kind: 'list', cursor: sendPages.cursor() })}`)]);
    if (gen !== generation) return;
    jobsEl = swap(jobsEl, jobsTable(jobs));
    sendsEl = swap(sendsEl, sendsTable(sends));
    schedule(gen, section, refresh, [...(jobs.items || []), ...(sends.items || [])].some((x) => x.status === 'PROCESSING'));
  };
  refreshBtn.addEventListener('click', () => busy(refreshBtn, refresh));
  await refresh();
  return section;
}

/** A bulk user's recipient, for people: its user id, else its address. */
function who(u) {
  const to = u.to || {};
  const p = u.profile || {};
  return u.recipient || to.user_id || to.email || to.phone_number || p.email || p.phone_number || '';
}

function usersTable(id, page, pages) {
  const rows = (page.items || []).map((u, i) =>
    h(
      'tr',
      { dataset: { status: u.status } },
      h('th', { scope: 'row' }, who(u) || h('span', { class: 'muted' }, 'no address')),
      h('td', {}, badge(u.status)),
      h('td', {}, u.messageId ? h('a', { href: `#/messages/${enc(u.messageId)}`, dataset: { focusKey: `msg:${i}` } }, h('code', {}, u.messageId)) : h('span', { class: 'muted' }, '—')),
    ),
  );
  return h('div', {}, keyed(table(`Users of job ${id}`, ['Recipient', 'Status', 'Message'], rows), 'users'), pages.pager(page.paging));
}

function jobFacts(id, job) {
  return h(
    'dl',
    { class: 'facts' },
    h('dt', {}, 'Id'), h('dd', {}, h('code', {}, id)),
    h('dt', {}, 'Status'), h('dd', { class: 'job-status' }, badge(job.status)),
    h('dt', {}, 'Progress'), h('dd', {}, jobProgress({ ...job, id })),
    h('dt', {}, 'Users'), h('dd', {}, String(n(job.received))),
    h('dt', {}, 'Enqueued'), h('dd', {}, String(n(job.enqueued))),
    h('dt', {}, 'Failures'), h('dd', {}, String(n(job.failures)), h('span', { class: 'muted' }, ' (users with no user id, email or phone)')),
  );
}

async function jobView(id) {
  if (!userPages.has(id)) userPages.set(id, cursorPages(`the users of job ${id}`));
  const pages = userPages.get(id);
  const gen = ++generation;
  let factsEl = h('div');
  let usersEl = h('div');
  let defEl = h('div');
  const runBtn = h('button', { type: 'button', hidden: true }, 'Run job');
  const refreshBtn = h('button', { type: 'button', class: 'secondary' }, 'Refresh');
  const section = h(
    'section',
    { 'aria-labelledby': 'page-title', class: 'bulk' },
    h('p', { class: 'crumbs' }, h('a', { href: '#/bulk' }, 'Bulk'), ' / ', id),
    pageHead('Bulk job', runBtn, refreshBtn),
    factsEl,
    h('h2', {}, 'Users'),
    usersEl,
    h('h2', {}, 'Definition'),
    defEl,
  );
  const refresh = async () => {
    const [{ job }, users] = await Promise.all([get(`/bulk/${enc(id)}`), get(`/bulk/${enc(id)}/users${qs({ cursor: pages.cursor() })}`)]);
    if (gen !== generation) return;
    factsEl = swap(factsEl, jobFacts(id, job));
    usersEl = swap(usersEl, usersTable(id, users, pages));
    defEl = swap(defEl, h('pre', { class: 'json' }, pretty(job.definition)));
    runBtn.hidden = job.status !== 'CREATED';
    schedule(gen, section, refresh, job.status === 'PROCESSING');
  };
  runBtn.addEventListener('click', () =>
    busy(runBtn, async () => {
      await post(`/bulk/${enc(id)}/run`);
      say(`Job ${id} started.`);
      await refresh();
      refreshBtn.focus(); // the Run button is hidden now
    }),
  );
  refreshBtn.addEventListener('click', () => busy(refreshBtn, refresh));
  await refresh();
  return section;
}
