// ui.test.mjs: the admin web UI (/ui/) in a real browser: playwright-core driving
// Debian's chromium (/usr/bin/chromium, installed by scripts/deps.sh test). The seed
// story by clicks (an event arrives, an automation is created from it, a template is
// chosen, the next event produces an email at a real SMTP server), then one test per
// page, keyboard-only navigation, a phone-width pass, and the serving headers.
// Screenshots go to tests/e2e/artifacts/ui-*.png.
//
// The tests share one herald, one SMTP sink and one browser, and run in order: later
// tests use what earlier ones made (the provider, the template, the automation).

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { chromium } from 'playwright-core';

import { ARTIFACTS, makeTempDir, startServer, waitFor } from './lib/server.mjs';
import { startHttpSink } from './lib/sink.mjs';
import { startSmtpSink } from './lib/smtp.mjs';

const CHROMIUM = process.env.HERALD_CHROMIUM || '/usr/bin/chromium';
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };
const EMAIL = 'ada@example.com';

let srv;
let smtp;
let browser; // a persistent context: the fresh --user-data-dir is Playwright's userDataDir
let templateId;
let seedAutomation;
const pageErrors = [];

before(async () => {
  if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: run scripts/deps.sh test (it installs Debian's chromium)`);
  srv = await startServer({ name: 'ui' });
  smtp = await startSmtpSink();
  browser = await chromium.launchPersistentContext(makeTempDir('herald-ui-chromium-'), {
    executablePath: CHROMIUM,
    headless: true,
    viewport: DESKTOP,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
});

after(async () => {
  await browser?.close();
  await smtp?.close();
  await srv?.stop();
});

/* ---- helpers ----------------------------------------------------------------------- */

/** A fresh page (tab: its own sessionStorage, so signed out) at viewport; page errors and console errors are collected
 *  (a CSP violation shows as a console error) and fail the test at its end. */
async function openPage(t, viewport = DESKTOP) {
  const page = await browser.newPage();
  await page.setViewportSize(viewport);
  page.setDefaultTimeout(10000);
  const errors = [];
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    // an API answering 4xx is logged by chromium as "Failed to load resource"; the UI
    // shows those errors itself (tests provoke some). Anything else is a failure.
    if (m.type() === 'error' && !/^Failed to load resource: the server responded with a status of 4\d\d/.test(m.text())) errors.push(`console: ${m.text()}`);
  });
  // the UI's own files must all load
  page.on('response', (r) => {
    if (new URL(r.url()).pathname.startsWith('/ui') && r.status() >= 400) errors.push(`ui file ${r.url()}: ${r.status()}`);
  });
  page.on('requestfailed', (r) => errors.push(`request failed: ${r.url()} ${r.failure()?.errorText}`));
  t.after(async () => {
    await page.close();
    pageErrors.push(...errors);
    assert.deepEqual(errors, [], 'no page errors, console errors or CSP violations');
  });
  return page;
}

async function signIn(page) {
  await page.goto(`${srv.url}/ui/`);
  await page.getByLabel('Admin API key').fill(srv.adminKey);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { level: 1, name: 'Events' }).waitFor();
}

async function go(page, hash, heading) {
  await page.goto(`${srv.url}/ui/#/${hash}`);
  await page.getByRole('heading', { level: 1, name: heading }).waitFor();
}

/** The page fits a phone's width (no sideways scrolling). */
async function fitsPhone(page, what) {
  const { sw, cw } = await page.evaluate(() => ({ sw: document.documentElement.scrollWidth, cw: document.documentElement.clientWidth }));
  assert.ok(sw <= cw, `${what}: page is ${sw}px wide in a ${cw}px viewport`);
}

async function shot(page, name) {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: path.join(ARTIFACTS, `ui-${name}.png`), fullPage: false });
}

async function status(page, re) {
  await waitFor(async () => re.test(await page.locator('#status').innerText()), { timeout: 10000, what: `status ${re}` });
}

function segment(kind, body) {
  return fetch(`${srv.url}/v1/${kind}`, {
    method: 'POST',
    headers: { Authorization: srv.authHeader('write'), 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  }).then(async (r) => {
    assert.equal(r.status, 200, await r.text());
  });
}

async function api(method, p, json) {
  const r = await srv.request(method, p, { auth: 'admin', json });
  assert.ok(r.status < 300, `${method} ${p}: ${r.status} ${r.body}`);
  return r.json;
}

/* ---- serving ---------------------------------------------------------------------- */

test('serving: /ui/ from the binary with no-cache, CSP and nosniff; unknown paths 404', async () => {
  for (const p of ['/ui', '/ui/']) {
    const r = await srv.request('GET', p);
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type'), /^text\/html/);
    assert.match(r.body, /<script type="module" src="\/ui\/app.js">/);
    assert.equal(r.headers.get('cache-control'), 'no-cache');
    assert.equal(r.headers.get('x-content-type-options'), 'nosniff');
    const csp = r.headers.get('content-security-policy');
    assert.match(csp, /default-src 'self'/);
    assert.match(csp, /script-src 'self'(;|$)/);
    assert.match(csp, /frame-ancestors 'none'/);
  }
  const js = await srv.request('GET', '/ui/app.js');
  assert.equal(js.status, 200);
  assert.match(js.headers.get('content-type'), /^text\/javascript/);
  const css = await srv.request('GET', '/ui/style.css');
  assert.match(css.headers.get('content-type'), /^text\/css/);
  for (const p of ['/ui/nope.js', '/ui/..%2Fdocs%2Fopenapi.yaml', '/ui/%2e%2e/docs/openapi.yaml', '/ui/web/index.html']) {
    const r = await srv.request('GET', p);
    assert.equal(r.status, 404, p);
    assert.equal(r.json.type, 'invalid_request_error');
  }
});

/* ---- keyboard ------------------------------------------------------------------------ */

test('keyboard only: sign in and move through the nav with visible focus', async (t) => {
  const page = await openPage(t);
  await page.goto(`${srv.url}/ui/`);
  await page.getByLabel('Admin API key').waitFor();
  const focusInfo = () =>
    page.evaluate(() => {
      const el = document.activeElement;
      const cs = getComputedStyle(el);
      return { tag: el.tagName, name: el.getAttribute('name'), text: el.textContent.trim(), href: el.getAttribute('href'), outline: cs.outlineStyle, width: parseFloat(cs.outlineWidth) };
    });
  // the key field has focus on load; Tab from the top reaches it after the skip link
  await page.keyboard.press('Shift+Tab');
  assert.equal((await focusInfo()).text, 'Skip to content');
  await page.keyboard.press('Tab');
  let f = await focusInfo();
  assert.equal(f.name, 'key');
  assert.notEqual(f.outline, 'none', 'the focused field shows an outline');
  assert.ok(f.width >= 2);
  await page.keyboard.type(srv.adminKey);
  await page.keyboard.press('Enter');
  await page.getByRole('heading', { level: 1, name: 'Events' }).waitFor();
  // Tab from the start of the page to the nav's Templates link
  await page.evaluate(() => document.activeElement && document.activeElement.blur());
  let found = false;
  for (let i = 0; i < 12 && !found; i++) {
    await page.keyboard.press('Tab');
    f = await focusInfo();
    found = f.href === '#/templates';
  }
  assert.ok(found, 'Tab reaches the Templates link');
  assert.notEqual(f.outline, 'none', 'the focused link shows an outline');
  assert.ok(f.width >= 2, `outline width ${f.width}`);
  await shot(page, 'keyboard-focus');
  await page.keyboard.press('Enter');
  await page.getByRole('heading', { level: 1, name: 'Templates' }).waitFor();
  assert.equal(await page.locator('#nav a[aria-current="page"]').innerText(), 'Templates');
  // focus moved to the page content
  assert.equal(await page.evaluate(() => document.activeElement.id), 'main');
  // a wrong key is refused with a message, by keyboard too
  await page.getByRole('button', { name: 'Sign out' }).focus();
  await page.keyboard.press('Enter');
  await page.getByLabel('Admin API key').waitFor();
  await page.keyboard.type('hk_wrong');
  await page.keyboard.press('Enter');
  await page.getByText('That key was not accepted.').waitFor();
});

/* ---- the seed story ---------------------------------------------------------------- */

test('seed story by clicks: provider, template, event, automation from the event, email at the SMTP server', async (t) => {
  const page = await openPage(t);
  await signIn(page);

  // an SMTP provider, configured through the UI
  await page.getByRole('link', { name: 'Providers' }).click();
  await page.getByRole('heading', { level: 1, name: 'Providers' }).waitFor();
  await page.getByLabel('Provider', { exact: true }).selectOption('smtp');
  await page.getByLabel('Title').fill('Test SMTP');
  await page.getByLabel('host (required)').fill('127.0.0.1');
  await page.getByLabel('port', { exact: true }).fill(String(smtp.port));
  await page.getByLabel('secure', { exact: true }).selectOption('none');
  await page.getByLabel('from (required)').fill('noreply@herald.test');
  await page.getByRole('button', { name: 'Create provider' }).click();
  await status(page, /Provider Test SMTP created/);
  await page.getByRole('row', { name: /Test SMTP/ }).waitFor();

  // a template, created and published through the UI
  await page.getByRole('link', { name: 'Templates' }).click();
  await page.getByLabel('New template name').fill('Order shipped');
  await page.getByRole('button', { name: 'Create template' }).click();
  await page.getByRole('heading', { level: 1, name: 'Template Order shipped' }).waitFor();
  templateId = decodeURIComponent(new URL(page.url()).hash.split('/')[2]);
  await page.getByLabel('Content (Elemental JSON)').fill(
    JSON.stringify({ title: 'Order {{order_id}} has shipped', body: 'Hi {{profile.name}}, order **{{order_id}}** is on its way.' }, null, 2),
  );
  await page.getByRole('button', { name: 'Publish' }).click();
  await status(page, /Published v001/);

  // an event arrives (identify + track over the Segment tracking API)
  await segment('identify', { userId: 'user-42', traits: { name: 'Ada', email: EMAIL } });
  await segment('track', { userId: 'user-42', event: 'Order Shipped', properties: { order_id: 'A-1001', email: EMAIL } });

  // Events -> Create new automation -> choose the template
  await page.getByRole('link', { name: 'Events' }).click();
  const row = page.getByRole('row', { name: /track\/Order Shipped/ });
  await row.waitFor();
  assert.match(await row.innerText(), /none/);
  await shot(page, 'events');
  await row.getByRole('button', { name: 'Create new automation for track/Order Shipped' }).click();
  const dlg = page.getByRole('dialog', { name: 'Create new automation for track/Order Shipped' });
  await dlg.waitFor();
  assert.match(await dlg.innerText(), /refs\.data\.userId/);
  assert.match(await dlg.innerText(), /\{"\$ref":"data\.email"\}/);
  await dlg.getByLabel('Template').selectOption(templateId);
  await shot(page, 'events-create-automation');
  await dlg.getByRole('button', { name: 'Create automation' }).click();
  await status(page, /created and linked to track\/Order Shipped/);
  await waitFor(async () => !/none/.test(await page.getByRole('row', { name: /track\/Order Shipped/ }).innerText()), { what: 'the link in the row' });
  const links = await api('GET', `/links?event=${encodeURIComponent('track/Order Shipped')}`);
  assert.equal(links.results.length, 1);
  seedAutomation = links.results[0].automation_id;

  // the next event produces an email at the SMTP server, properties rendered
  await segment('track', { userId: 'user-42', event: 'Order Shipped', properties: { order_id: 'A-1002', email: EMAIL } });
  const mail = await smtp.waitForMail((m) => m.rcpt.includes(EMAIL) && /A-1002/.test(m.parsed.subject || ''), { timeout: 15000 });
  assert.equal(mail.parsed.subject, 'Order A-1002 has shipped');
  assert.match(mail.parsed.html, /<strong>A-1002<\/strong>/);
  assert.match(mail.parsed.text, /Hi Ada, order A-1002 is on its way\./);
  assert.equal(smtp.mails.filter((m) => /A-1001/.test(m.parsed.subject || '')).length, 0, 'the event before the link ran nothing');
});

/* ---- one test per page ------------------------------------------------------------- */

test('events: search and link an existing automation with "+"', async (t) => {
  await api('PUT', '/automations/welcome', { name: 'Welcome', steps: [{ action: 'send', template: templateId, recipient: 'refs.data.userId' }] });
  await segment('track', { userId: 'user-7', event: 'Signed Up', properties: { plan: 'pro' } });
  const page = await openPage(t);
  await signIn(page);
  await page.getByLabel('Search events').fill('signed');
  await page.getByRole('button', { name: 'Search', exact: true }).click();
  await page.getByText('Showing events matching “signed”').waitFor();
  const rows = page.locator('tbody tr');
  assert.equal(await rows.count(), 1);
  assert.match(await rows.first().innerText(), /track\/Signed Up/);
  await page.getByRole('button', { name: 'Link an automation to track/Signed Up' }).click();
  const dlg = page.getByRole('dialog', { name: 'Link an automation to track/Signed Up' });
  await dlg.getByLabel('Automation').selectOption('welcome');
  await dlg.getByRole('button', { name: 'Link' }).click();
  await status(page, /Linked welcome to track\/Signed Up/);
  await page.getByRole('row', { name: /track\/Signed Up/ }).getByRole('link', { name: 'Welcome' }).waitFor();
  const links = await api('GET', '/links?automation_id=welcome');
  assert.deepEqual(links.results.map((l) => l.event), ['track/Signed Up']);
  await shot(page, 'events-search');
  await page.getByRole('button', { name: 'Clear search' }).click();
  await page.getByRole('row', { name: /track\/Order Shipped/ }).waitFor();
});

test('automations: the editor saves form and JSON edits; recent runs with their steps', async (t) => {
  const page = await openPage(t);
  await signIn(page);
  await page.getByRole('link', { name: 'Automations' }).click();
  await page.getByRole('heading', { level: 1, name: 'Automations' }).waitFor();
  await shot(page, 'automations');
  await page.getByRole('link', { name: 'track/Order Shipped' }).click();
  await page.getByRole('heading', { level: 1, name: 'Automation track/Order Shipped' }).waitFor();

  // recent runs: the run of the seed story, completed, its send step done
  const runs = page.getByRole('region', { name: 'Recent runs' });
  const runRow = runs.locator('tbody tr').first();
  assert.match(await runRow.innerText(), /COMPLETED/);
  assert.match(await runRow.innerText(), /1\. send\s+done/);
  assert.match(await runRow.innerText(), /track\/Order Shipped/);

  // the form: add a delay step, set its duration; the JSON follows
  await page.getByRole('button', { name: 'Add delay step' }).click();
  await page.getByLabel('Duration').fill('2 minutes');
  const json = page.getByLabel('Automation JSON');
  const def = JSON.parse(await json.inputValue());
  assert.deepEqual(def.steps[1], { action: 'delay', duration: '2 minutes' });
  assert.equal(await page.getByLabel('Template').inputValue(), templateId);
  await shot(page, 'automation-editor');
  await page.getByRole('button', { name: 'Save automation' }).click();
  await status(page, /Saved: version 2/);
  let stored = await api('GET', `/automations/${seedAutomation}`);
  assert.equal(stored.version, 2);
  assert.equal(stored.steps[1].duration, '2 minutes');
  assert.deepEqual(stored.trigger, { event: 'track/Order Shipped' }, 'other members are kept');

  // the JSON: invalid JSON is reported; valid JSON updates the form and saves
  await json.fill('{"steps": [');
  await page.getByText(/The JSON is not valid/).waitFor();
  def.steps = def.steps.slice(0, 1);
  def.name = 'Order shipped mail';
  await json.fill(JSON.stringify(def, null, 2));
  assert.equal(await page.getByLabel('Name', { exact: true }).inputValue(), 'Order shipped mail');
  assert.equal(await page.getByLabel('Duration').count(), 0);
  await page.getByRole('button', { name: 'Save automation' }).click();
  await status(page, /Saved: version 3/);
  stored = await api('GET', `/automations/${seedAutomation}`);
  assert.equal(stored.steps.length, 1);
  assert.equal(stored.name, 'Order shipped mail');
});

test('runs list API: newest first, bounded, per automation', async () => {
  await segment('track', { userId: 'user-42', event: 'Order Shipped', properties: { order_id: 'A-1003', email: EMAIL } });
  await smtp.waitForMail((m) => /A-1003/.test(m.parsed.subject || ''), { timeout: 15000 });
  const r = await api('GET', `/automations/runs?automation_id=${seedAutomation}`);
  assert.equal(r.runs.length, 2);
  assert.ok(r.runs[0].created >= r.runs[1].created, 'newest first');
  assert.equal(r.runs[0].context.data.order_id, 'A-1003');
  assert.equal(r.runs[0].version, 3);
  const one = await api('GET', `/automations/runs?automation_id=${seedAutomation}&limit=1`);
  assert.equal(one.runs.length, 1);
  assert.equal(one.runs[0].id, r.runs[0].id);
  assert.deepEqual((await api('GET', '/automations/runs?automation_id=nobody')).runs, []);
  for (const q of ['', '?automation_id=', `?automation_id=${seedAutomation}&limit=0`, `?automation_id=${seedAutomation}&limit=101`, '?automation_id=a%20b']) {
    const bad = await srv.request('GET', `/automations/runs${q}`, { auth: 'admin' });
    assert.equal(bad.status, 400, q);
  }
  // a run of ad hoc steps is not listed under any automation
  const adhoc = await srv.request('POST', '/automations/invoke', { auth: 'admin', json: { automation: { steps: [{ action: 'delay', duration: '1 day' }] } } });
  assert.equal(adhoc.status, 200, adhoc.body);
  assert.equal((await api('GET', `/automations/runs?automation_id=${seedAutomation}`)).runs.length, 2);
});

test('templates: live preview per channel (email HTML, text, SMS) rendered by the server, then publish', async (t) => {
  const page = await openPage(t);
  await signIn(page);
  await page.getByRole('link', { name: 'Templates' }).click();
  await page.getByRole('heading', { level: 1, name: 'Templates' }).waitFor();
  assert.match(await page.getByRole('row', { name: /Order shipped/ }).innerText(), /PUBLISHED\s+v001/);
  await shot(page, 'templates');
  await page.getByRole('link', { name: 'Order shipped' }).click();
  await page.getByRole('heading', { level: 1, name: 'Template Order shipped' }).waitFor();

  await page.getByLabel('Content (Elemental JSON)').fill(
    JSON.stringify({
      version: '2022-01-01',
      elements: [
        { type: 'meta', title: 'Order {{order_id}} is on its way' },
        { type: 'text', content: 'Hello **{{profile.name}}**, order {{order_id}} ships today.', format: 'markdown' },
        { type: 'action', content: 'Track it', href: 'https://example.com/t/{{order_id}}' },
      ],
    }),
  );
  await page.getByLabel('Sample data (JSON)').fill(JSON.stringify({ order_id: 'P-77' }));
  // email HTML: in a sandboxed iframe
  const frame = page.frameLocator('iframe[title="Email HTML preview"]');
  await frame.getByText('Hello Ada, order P-77 ships today.').waitFor();
  await frame.getByRole('link', { name: 'Track it' }).waitFor();
  assert.equal(await page.locator('.preview .subject').innerText(), 'Order P-77 is on its way');
  assert.equal(await page.locator('iframe[title="Email HTML preview"]').getAttribute('sandbox'), '');
  await shot(page, 'template-editor');
  // email text
  await page.getByLabel('Email (text)').check();
  await waitFor(async () => /Track it: https:\/\/example\.com\/t\/P-77/.test(await page.locator('.preview').innerText()), { what: 'the text preview' });
  // SMS
  await page.getByLabel('SMS').check();
  await waitFor(async () => (await page.locator('.preview pre.sms').count()) === 1, { what: 'the sms preview' });
  assert.match(await page.locator('.preview pre.sms').innerText(), /Hello Ada, order P-77 ships today\./);
  // a live change of the sample profile
  await page.getByLabel('Sample profile (JSON)').fill(JSON.stringify({ name: 'Grace' }));
  await waitFor(async () => /Hello Grace/.test(await page.locator('.preview').innerText()), { what: 'the live preview' });
  // a template error is shown, not thrown
  await page.getByLabel('Content (Elemental JSON)').fill(JSON.stringify({ title: 'x', body: '{{#if}}' }));
  await page.locator('.error', { hasText: /body|if|line/i }).waitFor();
  await page.getByLabel('Content (Elemental JSON)').fill(JSON.stringify({ title: 'Order {{order_id}} v2', body: 'Second version for {{profile.name}}.' }));
  await page.getByRole('button', { name: 'Publish' }).click();
  await status(page, /Published v002/);
  const tpl = await api('GET', `/notifications/${templateId}`);
  assert.equal(tpl.published_version, 'v002');

  // the route itself
  const r = await api('POST', '/render', { template: templateId, channel: 'sms', data: { order_id: 'Z' }, profile: { name: 'Lin' } });
  assert.deepEqual(r, { channel: 'sms', content: { subject: null, html: null, text: 'Second version for Lin.', title: null, body: null } });
  const bad = await srv.request('POST', '/render', { auth: 'admin', json: { content: { title: 'x' }, channel: 'fax' } });
  assert.equal(bad.status, 400);
  const none = await srv.request('POST', '/render', { auth: 'admin', json: { template: 'nt_missing', channel: 'email' } });
  assert.equal(none.status, 404);
  const noauth = await srv.request('POST', '/render', { json: { content: { title: 'x' }, channel: 'email' } });
  assert.equal(noauth.status, 401);
});

test('providers: create one, edit it, and send a test message', async (t) => {
  const page = await openPage(t);
  await signIn(page);
  await page.getByRole('link', { name: 'Providers' }).click();
  await page.getByRole('heading', { level: 1, name: 'Providers' }).waitFor();
  // a console provider for SMS
  await page.getByLabel('Provider', { exact: true }).selectOption('console');
  await page.getByLabel('Title').fill('Console SMS');
  await page.getByLabel('channel', { exact: true }).selectOption('sms'); // optional: console defaults to email
  await page.getByRole('button', { name: 'Create provider' }).click();
  await status(page, /Provider Console SMS created/);
  const list = await api('GET', '/providers');
  const cons = list.results.find((p) => p.title === 'Console SMS');
  assert.equal(cons.channel, 'sms');
  // edit: priority
  await page.getByRole('link', { name: 'Edit Console SMS' }).click();
  await page.getByRole('heading', { name: 'Edit Console SMS' }).waitFor();
  await page.getByLabel('Priority').fill('5');
  await page.getByRole('button', { name: 'Save provider' }).click();
  await status(page, /Provider Console SMS saved/);
  assert.equal((await api('GET', `/providers/${cons.id}`)).priority, 5);
  await page.getByRole('row', { name: /Console SMS/ }).waitFor();
  await shot(page, 'providers');

  // send test through the SMTP provider: the mail arrives
  await page.getByRole('button', { name: 'Send test through Test SMTP' }).click();
  const dlg = page.getByRole('dialog', { name: 'Send a test through Test SMTP' });
  await dlg.getByLabel('Email address').fill('ops@example.com');
  await dlg.getByLabel('Title').fill('Provider check');
  await dlg.getByRole('button', { name: 'Send test' }).click();
  await dlg.getByText(/Status:\s*SENT/).waitFor();
  const mail = await smtp.waitForMail((m) => m.rcpt.includes('ops@example.com'));
  assert.equal(mail.parsed.subject, 'Provider check');
  assert.match(mail.parsed.text, /A test message through Test SMTP\./);
  await shot(page, 'providers-test-send');
  await page.keyboard.press('Escape');
  await dlg.waitFor({ state: 'detached' });
});

test('messages: filters, a message timeline and its rendered output', async (t) => {
  const page = await openPage(t);
  await signIn(page);
  await page.getByRole('link', { name: 'Messages' }).click();
  await page.getByRole('heading', { level: 1, name: 'Messages' }).waitFor();
  const rows = page.locator('tbody tr');
  assert.ok((await rows.count()) >= 3);
  // by recipient
  await page.getByLabel('Recipient').fill('user-42');
  await page.getByRole('button', { name: 'Apply filters' }).click();
  await waitFor(async () => (await page.locator('.count').innerText()).startsWith('2 messages'), { what: 'two messages to user-42' });
  // by tag: the provider test
  await page.getByLabel('Recipient').fill('');
  await page.getByLabel('Tag').fill('test');
  await page.getByRole('button', { name: 'Apply filters' }).click();
  await waitFor(async () => (await page.locator('.count').innerText()).startsWith('1 message.'), { what: 'one test message' });
  // by status: none is UNROUTABLE
  await page.getByLabel('Tag').fill('');
  await page.getByLabel('Status').selectOption('UNROUTABLE');
  await page.getByRole('button', { name: 'Apply filters' }).click();
  await waitFor(async () => (await page.locator('.count').innerText()).startsWith('0 messages'), { what: 'no unroutable messages' });
  await page.getByLabel('Status').selectOption('SENT');
  await page.getByLabel('Recipient').fill('user-42');
  await page.getByRole('button', { name: 'Apply filters' }).click();
  await waitFor(async () => (await page.locator('.count').innerText()).startsWith('2 messages'), { what: 'two sent to user-42' });
  await shot(page, 'messages');

  // one message: timeline and output
  await rows.first().getByRole('link').click();
  await page.getByRole('heading', { level: 1, name: 'Message' }).waitFor();
  const timeline = page.getByRole('list', { name: 'Timeline' });
  const alert = (await page.getByRole('alert').allInnerTexts()).filter((x) => x.trim());
  assert.deepEqual(alert, [], 'the timeline loaded');
  const types = await timeline.locator('li').evaluateAll((lis) => lis.map((li) => li.dataset.type));
  for (const ty of ['ENQUEUED', 'MAPPED', 'PROFILE_LOADED', 'RENDERED', 'SENT']) assert.ok(types.includes(ty), `${ty} in ${types} (page: ${page.url()})`);
  assert.match(await timeline.innerText(), /from automation/);
  await timeline.getByText('Details of RENDERED').click();
  assert.match(await page.locator('.subject').first().innerText(), /^Order A-100[23] has shipped$/);
  await page.frameLocator('iframe[title="Rendered email HTML"]').getByText(/order A-100[23] is on its way/).waitFor();
  await shot(page, 'message-detail');
});

test('profiles: look up a user, their profile and recent messages', async (t) => {
  const page = await openPage(t);
  await signIn(page);
  await page.getByRole('link', { name: 'Profiles' }).click();
  await page.getByRole('heading', { level: 1, name: 'Profiles' }).waitFor();
  await page.getByLabel('User id').fill('user-42');
  await page.getByRole('button', { name: 'Look up' }).click();
  await page.getByRole('heading', { name: 'Profile of user-42' }).waitFor();
  const facts = await page.locator('dl.profile').innerText();
  assert.match(facts, /name\s+Ada/);
  assert.match(facts, new RegExp(`email\\s+${EMAIL.replace('.', '\\.')}`));
  const msgs = page.getByRole('region', { name: 'Recent messages to user-42' });
  assert.equal(await msgs.locator('tbody tr').count(), 2);
  await shot(page, 'profiles');
  // a user with no profile
  await page.getByLabel('User id').fill('nobody here');
  await page.getByRole('button', { name: 'Look up' }).click();
  await page.getByText('No stored profile for this user.').waitFor();
  assert.match(page.url(), /#\/profiles\/nobody%20here$/);
});

test("topics: add one; a profile's preferences: opt the user out of it", async (t) => {
  const page = await openPage(t);
  await signIn(page);
  await go(page, 'topics', 'Topics');
  const form = page.getByRole('form', { name: 'New topic' });
  await form.getByLabel('Topic id').fill('ui-news');
  await form.getByLabel('Name').fill('UI news');
  await form.getByLabel('Default status').selectOption('OPTED_IN');
  await form.getByRole('button', { name: 'Add topic' }).click();
  await status(page, /Topic ui-news saved/);
  await page.locator('tr[data-topic="ui-news"]').waitFor();
  await go(page, 'profiles/user-42', 'Profiles');
  await page.getByLabel('Status of ui-news').selectOption('OPTED_OUT');
  await status(page, /ui-news: OPTED_OUT/);
  assert.equal((await api('GET', '/users/user-42/preferences/ui-news')).topic.status, 'OPTED_OUT');
  await shot(page, 'profile-preferences');
});

test('phone width (390x844): every page fits without sideways scrolling', async (t) => {
  const page = await openPage(t, PHONE);
  await signIn(page);
  for (const [hash, heading] of [
    ['events', 'Events'],
    ['automations', 'Automations'],
    [`automations/${seedAutomation}`, 'Automation Order shipped mail'],
    ['templates', 'Templates'],
    [`templates/${templateId}`, 'Template Order shipped'],
    ['providers', 'Providers'],
    ['messages', 'Messages'],
    ['profiles/user-42', 'Profiles'],
    ['lists', 'Lists'],
    ['bulk', 'Bulk'],
    ['topics', 'Topics'],
    ['suppressions', 'Suppressions'],
    ['webhooks', 'Webhooks'],
  ]) {
    await go(page, hash, heading);
    await fitsPhone(page, hash);
    if (hash === 'events') await shot(page, 'phone-events');
  }
  await go(page, 'messages', 'Messages');
  await shot(page, 'phone-messages');
});

test('providers: "Send test" goes through the provider tested, not the channel\'s first', async (t) => {
  // two console providers serve sms: a new one ahead in priority (1) and "Console SMS" (5)
  const first = await api('POST', '/providers', { provider: 'console', channel: 'sms', title: 'Console SMS First', priority: 1, settings: { channel: 'sms' } });
  t.after(() => api('DELETE', `/providers/${first.id}`));
  const tested = (await api('GET', '/providers')).results.find((p) => p.title === 'Console SMS');
  const page = await openPage(t);
  await signIn(page);
  await go(page, 'providers', 'Providers');
  await page.getByRole('button', { name: 'Send test through Console SMS', exact: true }).click();
  const dlg = page.getByRole('dialog', { name: 'Send a test through Console SMS' });
  await dlg.getByLabel('Phone number').fill('+15550100');
  await dlg.getByRole('button', { name: 'Send test' }).click();
  await dlg.getByText(/Status:\s*SENT/).waitFor();
  const id = await dlg.getByRole('link').innerText();
  const hist = await api('GET', `/messages/${encodeURIComponent(id)}/history`);
  const sent = hist.results.find((e) => e.type === 'SENT');
  assert.ok(sent, `a SENT event: ${JSON.stringify(hist.results)}`);
  assert.equal(sent.integration?.id, tested.id, `sent through the tested provider (${tested.id}), not ${first.id}: ${JSON.stringify(sent)}`);
  await page.keyboard.press('Escape');
  await dlg.waitFor({ state: 'detached' });
});

test('webhooks: add an endpoint, see its recent deliveries, replay one', async (t) => {
  const sink = await startHttpSink({ path: '/ui-hook' });
  t.after(() => sink.close());
  const page = await openPage(t);
  await signIn(page);
  await page.getByRole('link', { name: 'Webhooks' }).click();
  await page.getByRole('heading', { level: 1, name: 'Webhooks' }).waitFor();
  await page.getByLabel('Endpoint URL').fill(sink.url);
  await page.getByLabel('Signing secret').fill('ui-secret-0123456789');
  await page.getByLabel('Statuses').fill('sent');
  await page.getByRole('button', { name: 'Add endpoint' }).click();
  await status(page, /Endpoint .* added/);
  await page.getByRole('row', { name: /ui-hook/ }).getByText('****6789').waitFor();
  await api('POST', '/send', { message: { to: { email: 'hooks@example.com' }, content: { title: 'Hook', body: 'status webhooks' } } });
  const [req] = await sink.waitForRequests(1);
  assert.equal(JSON.parse(req.body).data.status, 'SENT');
  await page.getByRole('link', { name: `Deliveries of ${sink.url}` }).click();
  await page.getByRole('heading', { level: 1, name: `Webhook ${sink.url}` }).waitFor();
  const row = page.getByRole('row', { name: /SENT/ });
  await row.getByRole('cell', { name: '200', exact: true }).waitFor();
  await shot(page, 'webhooks-deliveries');
  await row.getByRole('button', { name: /^Replay/ }).click();
  await status(page, /queued again/);
  const again = await sink.waitForRequests(2);
  assert.equal(again[1].headers['x-herald-event-id'], req.headers['x-herald-event-id'], 'the replay carries the same event id');
});

test('lists: members and their count; add and remove a member, create, delete and restore through the page', async (t) => {
  await api('PUT', '/lists/ui.team', { name: 'UI Team' });
  await api('POST', '/lists/ui.team/subscriptions', { recipients: ['u-a', 'u-b', 'u-c'].map((recipientId) => ({ recipientId })) });
  await api('PUT', '/lists/other.team', { name: 'Other' });
  const members = async () => (await api('GET', '/lists/ui.team/subscriptions')).items.map((m) => m.recipientId);
  const page = await openPage(t);
  await signIn(page);
  await page.getByRole('link', { name: 'Lists', exact: true }).click();
  await page.getByRole('heading', { level: 1, name: 'Lists' }).waitFor();
  assert.match(await page.locator('tr[data-list="ui.team"]').innerText(), /UI Team\s+ui\.team\s+3\b/);
  await page.getByLabel('Filter by id or pattern').fill('ui.*');
  await page.getByRole('button', { name: 'Filter', exact: true }).click();
  await page.getByText('Showing lists matching “ui.*”').waitFor();
  assert.deepEqual(await page.locator('tbody tr').evaluateAll((trs) => trs.map((tr) => tr.dataset.list)), ['ui.team']);
  await shot(page, 'lists');

  // the members, added and removed through the page, checked through the API
  await page.getByRole('link', { name: 'UI Team' }).click();
  await page.getByRole('heading', { level: 1, name: 'List UI Team' }).waitFor();
  assert.equal(await page.locator('.member-count').innerText(), '3');
  assert.deepEqual(await page.locator('tbody tr').evaluateAll((trs) => trs.map((tr) => tr.dataset.user)), ['u-a', 'u-b', 'u-c']);
  await page.getByLabel('User id').fill('u-d');
  await page.getByRole('button', { name: 'Add member' }).click();
  await status(page, /u-d added to ui\.team/);
  await page.locator('tr[data-user="u-d"]').waitFor();
  assert.equal(await page.locator('.member-count').innerText(), '4');
  assert.deepEqual(await members(), ['u-a', 'u-b', 'u-c', 'u-d']);
  await page.getByRole('button', { name: 'Remove u-a' }).click();
  await status(page, /u-a removed from ui\.team/);
  await page.locator('tr[data-user="u-a"]').waitFor({ state: 'detached' });
  assert.deepEqual(await members(), ['u-b', 'u-c', 'u-d']);
  await page.setViewportSize(PHONE);
  await fitsPhone(page, 'lists/ui.team');
  await page.setViewportSize(DESKTOP);

  // delete (confirmed), then restore by id: the members come back
  await page.getByRole('button', { name: 'Delete list' }).click();
  const dlg = page.getByRole('dialog', { name: 'Delete list ui.team?' });
  await dlg.getByRole('button', { name: 'Delete list' }).click();
  await page.getByRole('heading', { level: 1, name: 'Lists' }).waitFor();
  await status(page, /List ui\.team deleted/);
  assert.equal((await srv.request('GET', '/lists/ui.team', { auth: 'admin' })).status, 404);
  await page.getByLabel('Deleted list id').fill('ui.team');
  await page.getByRole('button', { name: 'Restore list' }).click();
  await page.getByRole('heading', { level: 1, name: 'List UI Team' }).waitFor();
  assert.equal((await api('GET', '/lists/ui.team')).subscriber_count, 3);
  assert.equal(await page.locator('.member-count').innerText(), '3');

  // more than a page (20) under the filter (ui.*, kept): Next and Previous walk the cursor
  for (let i = 0; i < 20; i++) await api('PUT', `/lists/ui.p${String(i).padStart(2, '0')}`, { name: `P${i}` });
  await go(page, 'lists', 'Lists');
  const ids = () => page.locator('tbody tr').evaluateAll((trs) => trs.map((tr) => tr.dataset.list).join());
  assert.equal(await ids(), Array.from({ length: 20 }, (_, i) => `ui.p${String(i).padStart(2, '0')}`).join());
  await page.getByRole('button', { name: 'Next page of lists' }).click();
  await waitFor(async () => (await ids()) === 'ui.team', { what: 'the second page' });
  await page.getByRole('button', { name: 'Previous page of lists' }).click();
  await waitFor(async () => (await ids()).startsWith('ui.p00,'), { what: 'the first page' });

  // create one; an error is the API's message
  await page.getByLabel('List id', { exact: true }).fill('ui.new');
  await page.getByLabel('Name', { exact: true }).fill('UI New');
  await page.getByRole('button', { name: 'Create list' }).click();
  await page.getByRole('heading', { level: 1, name: 'List UI New' }).waitFor();
  assert.equal((await api('GET', '/lists/ui.new')).name, 'UI New');
  await go(page, 'lists', 'Lists');
  await page.getByLabel('Deleted list id').fill('no.such');
  await page.getByRole('button', { name: 'Restore list' }).click();
  await waitFor(async () => (await page.locator('#alert').innerText()) === 'Error: list no.such not found', { what: 'the API message' });
});

test('suppressions: add an address by hand with a reason, remove it after confirming', async (t) => {
  const listed = async () => (await api('GET', '/suppressions?limit=100')).results;
  const page = await openPage(t);
  await signIn(page);
  await page.getByRole('link', { name: 'Suppressions' }).click();
  await page.getByRole('heading', { level: 1, name: 'Suppressions' }).waitFor();
  await page.getByLabel('Address', { exact: true }).fill('UI.Block@Example.com');
  await page.getByLabel('Reason', { exact: true }).fill('SUPPORT_TICKET');
  await page.getByRole('button', { name: 'Add address' }).click();
  await status(page, /ui\.block@example\.com added/);
  const row = page.locator('tr[data-address="ui.block@example.com"]');
  assert.match(await row.innerText(), /SUPPORT_TICKET\s+by hand/);
  assert.deepEqual((await listed()).filter((s) => s.address === 'ui.block@example.com').map((s) => s.reason), ['SUPPORT_TICKET']);
  await shot(page, 'suppressions');
  // listed already: the API's 409 message
  await page.getByLabel('Address', { exact: true }).fill('ui.block@example.com');
  await page.getByRole('button', { name: 'Add address' }).click();
  await waitFor(async () => (await page.locator('#alert').innerText()) === 'Error: ui.block@example.com is on the suppression list already', { what: 'the API message' });
  await page.setViewportSize(PHONE);
  await fitsPhone(page, 'suppressions');
  await page.setViewportSize(DESKTOP);

  // Cancel keeps it; confirming removes it
  await row.getByRole('button', { name: 'Remove ui.block@example.com' }).click();
  const dlg = page.getByRole('dialog', { name: 'Remove ui.block@example.com?' });
  await dlg.getByRole('button', { name: 'Cancel' }).click();
  await dlg.waitFor({ state: 'detached' });
  assert.equal((await listed()).filter((s) => s.address === 'ui.block@example.com').length, 1);
  await row.getByRole('button', { name: 'Remove ui.block@example.com' }).click();
  await dlg.getByRole('button', { name: 'Remove', exact: true }).click();
  await status(page, /ui\.block@example\.com removed/);
  await row.waitFor({ state: 'detached' });
  assert.equal((await listed()).filter((s) => s.address === 'ui.block@example.com').length, 0);
});

test('messages: a provider receipt shows in the timeline (DELIVERED, with the provider event)', async (t) => {
  const stub = await startHttpSink({ path: '/emails', fallback: { status: 200, json: { id: 're_ui_receipt_1' } } });
  t.after(() => stub.close());
  const secret = `whsec_${crypto.randomBytes(24).toString('base64')}`;
  const prov = await api('POST', '/providers', {
    provider: 'resend',
    settings: { api_key: 're_ui_key_0001', from: 'ui@herald.test', base_url: stub.url.replace(/\/emails$/, ''), webhook_secret: secret },
  });
  const { requestId: id } = await api('POST', '/send', {
    message: {
      to: { email: 'receipt@example.com' },
      content: { title: 'Receipt', body: 'A receipt follows.' },
      routing: { method: 'single', channels: ['email'] },
      channels: { email: { providers: [prov.id] } },
    },
  });
  await waitFor(async () => (await api('GET', `/messages/${id}`)).status === 'SENT', { what: 'sent through the Resend stand-in' });
  // the receipt, signed as Resend signs it (svix: HMAC-SHA256 of id.timestamp.body)
  const body = JSON.stringify({ type: 'email.delivered', created_at: new Date().toISOString(), data: { email_id: 're_ui_receipt_1', to: ['receipt@example.com'] } });
  const sid = `msg_${crypto.randomUUID()}`;
  const ts = String(Math.floor(Date.now() / 1000));
  const sig = crypto.createHmac('sha256', Buffer.from(secret.slice(6), 'base64')).update(`${sid}.${ts}.${body}`).digest('base64');
  const r = await fetch(`${srv.url}/receipts/${prov.id}`, { method: 'POST', headers: { 'Content-Type': 'application/json', 'svix-id': sid, 'svix-timestamp': ts, 'svix-signature': `v1,${sig}` }, body });
  assert.equal(r.status, 200, await r.text());
  assert.equal((await api('GET', `/messages/${id}`)).status, 'DELIVERED');

  const page = await openPage(t);
  await signIn(page);
  await go(page, `messages/${encodeURIComponent(id)}`, 'Message');
  const delivered = page.getByRole('list', { name: 'Timeline' }).locator('li[data-type="DELIVERED"]');
  await delivered.waitFor();
  assert.match(await delivered.innerText(), /event: email\.delivered/);
  assert.match(await delivered.innerText(), /resend/);
  await shot(page, 'message-receipt');
});

/** An HTTP endpoint that answers 200 only once released (then at once): a webhook
 *  message to it stays in flight until the test says so. */
async function startHeldHook() {
  const held = [];
  let released = false;
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => (released ? res.end('{}') : held.push(res)));
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}/held`,
    held,
    release() {
      released = true;
      for (const res of held.splice(0)) res.end('{}');
    },
    close() {
      this.release();
      server.closeAllConnections();
      return new Promise((resolve) => server.close(resolve));
    },
  };
}

test('bulk: jobs and list sends with their progress, refreshed in place while one runs; a job run from its page, its users linking their messages', async (t) => {
  // a webhook provider at a hook that answers only once released, and a template routed
  // to it alone
  const hook = await startHeldHook();
  const prov = await api('POST', '/providers', { provider: 'webhook', title: 'Held hook', settings: { url: hook.url } });
  const heldTpl = (await api('POST', '/notifications', { notification: { name: 'Held bulk', routing: { method: 'single', channels: ['webhook'] }, content: { title: 'Bulk', body: 'held' } }, state: 'PUBLISHED' })).id;
  t.after(async () => {
    await api('DELETE', `/providers/${prov.id}`);
    await hook.close();
  });
  // job A streams in two pages of 1000 (src/engine/fanout.h): its first user's message goes
  // to the held hook, the next 999 have no address (failures); the second page waits
  // while that message is in flight (up to 10 s), so A shows PROCESSING meanwhile
  const a = (await api('POST', '/bulk', { message: { event: 'ui-bulk-held', template: heldTpl } })).jobId;
  await api('POST', `/bulk/${a}`, { users: [{ recipient: 'ui-held' }, ...Array.from({ length: 999 }, (_, i) => ({ profile: { nickname: `n${i}` } }))] });
  await api('POST', `/bulk/${a}`, { users: [{ recipient: 'ui-last' }] });
  const b = (await api('POST', '/bulk', { message: { event: 'ui-bulk-small', template: templateId } })).jobId;
  await api('POST', `/bulk/${b}`, { users: [{ recipient: 'ub-1' }, { to: { email: 'ub-2@example.com' } }, { profile: { nickname: 'nobody' } }] });

  const page = await openPage(t);
  const bulkCalls = [];
  page.on('request', (r) => {
    if (new URL(r.url()).pathname === '/bulk') bulkCalls.push(r.url());
  });
  await signIn(page);
  await page.getByRole('link', { name: 'Bulk', exact: true }).click();
  await page.getByRole('heading', { level: 1, name: 'Bulk' }).waitFor();
  const section = page.locator('section.bulk');
  const rowA = page.locator(`tr[data-job="${a}"]`);
  // newest first; nothing runs, so nothing refreshes
  assert.deepEqual(await page.locator('tr[data-job]').evaluateAll((trs) => trs.slice(0, 2).map((tr) => tr.dataset.job)), [b, a]);
  assert.match(await rowA.innerText(), /CREATED\s+0 of 1001 \(0%\)\s+1001\s+0\s+0\s+ui-bulk-held/);
  assert.equal(await section.getAttribute('data-refreshing'), 'false');

  // run A: PROCESSING, and its progress moves on the page by itself
  await api('POST', `/bulk/${a}/run`);
  await page.getByRole('button', { name: 'Refresh' }).click();
  await waitFor(async () => (await rowA.getAttribute('data-status')) === 'PROCESSING', { what: 'job A processing' });
  assert.equal(await section.getAttribute('data-refreshing'), 'true');
  await waitFor(() => hook.held.length > 0, { what: "the first page's message in flight" });
  await waitFor(async () => /1000 of 1001 \(99%\)/.test(await rowA.innerText()), { what: 'the first page counted, without a reload' });
  await shot(page, 'bulk-processing');
  // left, the page asks nothing more; back, it refreshes again
  await go(page, 'events', 'Events');
  const calls = bulkCalls.length;
  await new Promise((resolve) => setTimeout(resolve, 2500));
  assert.equal(bulkCalls.length, calls, 'no refresh once the page is left');
  await go(page, 'bulk', 'Bulk');
  hook.release();
  await waitFor(async () => (await rowA.getAttribute('data-status')) === 'COMPLETED', { what: 'job A completed, without a reload' });
  assert.match(await rowA.innerText(), /COMPLETED\s+1001 of 1001 \(100%\)\s+1001\s+2\s+999\b/);
  assert.equal(await section.getAttribute('data-refreshing'), 'false');

  // job B from its page: Run job, then its users with their messages
  await page.locator(`tr[data-job="${b}"] a`).click();
  await page.getByRole('heading', { level: 1, name: 'Bulk job' }).waitFor();
  assert.deepEqual(await page.locator('tbody tr').evaluateAll((trs) => trs.map((tr) => tr.dataset.status)), ['PENDING', 'PENDING', 'PENDING']);
  assert.match(await page.locator('pre.json').innerText(), /"event": "ui-bulk-small"/);
  await page.getByRole('button', { name: 'Run job' }).click();
  await status(page, /started/);
  await waitFor(async () => (await page.locator('.job-status').innerText()) === 'COMPLETED', { what: 'job B completed' });
  assert.match(await page.locator('dl.facts').innerText(), /3 of 3 \(100%\)/);
  assert.deepEqual(await page.locator('tbody tr').evaluateAll((trs) => trs.map((tr) => tr.dataset.status)), ['ENQUEUED', 'ENQUEUED', 'ERROR']);
  assert.equal(await page.getByRole('button', { name: 'Run job' }).count(), 0, 'no Run job once it ran');
  await shot(page, 'bulk-job');
  await page.setViewportSize(PHONE);
  await fitsPhone(page, 'bulk job');
  await page.setViewportSize(DESKTOP);
  await page.locator('tbody tr').first().getByRole('link').click();
  await page.getByRole('heading', { level: 1, name: 'Message' }).waitFor();
  assert.match(await page.locator('dl.facts').innerText(), /ub-1/);

  // job A's users, 100 a page
  await go(page, `bulk/${encodeURIComponent(a)}`, 'Bulk job');
  const first = page.locator('tbody tr').first();
  assert.match(await first.innerText(), /ui-held\s+ENQUEUED\s+1-/);
  assert.equal(await page.locator('tbody tr').count(), 100);
  await page.getByRole('button', { name: `Next page of the users of job ${a}` }).click();
  await waitFor(async () => (await first.getAttribute('data-status')) === 'ERROR', { what: 'the second page of users' });

  // a list send, with its progress
  await api('POST', '/lists/ui.bulk/subscriptions', { recipients: [{ recipientId: 'ul-1' }, { recipientId: 'ul-2' }] });
  const { requestId } = await api('POST', '/send', { message: { to: { list_id: 'ui.bulk' }, content: { title: 'To a list', body: 'hello' } } });
  await go(page, 'bulk', 'Bulk');
  const rowL = page.locator(`tr[data-request="${requestId}"]`);
  await waitFor(async () => (await rowL.getAttribute('data-status')) === 'COMPLETED', { what: 'the list send completed (the page refreshes while it runs)' });
  assert.match(await rowL.innerText(), /ui\.bulk\s+COMPLETED\s+2 enqueued/);
  await shot(page, 'bulk');
  await page.setViewportSize(PHONE);
  await fitsPhone(page, 'bulk');
  await page.setViewportSize(DESKTOP);

  // an unknown job: the API's message
  await go(page, 'bulk/1-00000000-000000000000000000000000', 'Something went wrong');
  await waitFor(async () => (await page.locator('#alert').innerText()) === 'Error: bulk job 1-00000000-000000000000000000000000 not found', { what: 'the API message' });
});
