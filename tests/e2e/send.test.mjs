// send.test.mjs: the sending capability end to end with real parts: Courier's official
// SDK against herald, a real SMTP server (smtp-server + mailparser) receiving the email,
// local HTTP servers as webhook providers that fail in scripted ways (connection
// refused, 500, 400, 429 + Retry-After), routing and its UNROUTABLE reasons, user_id
// recipients with stored profiles, templates, idempotency, cancel, the message log and
// the legacy v1 send. Every server runs with --retry-base-ms 200 so retries are quick.

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, before, describe, test } from 'node:test';

import Courier from '@trycourier/courier';

import { freePort, sleep, startServer, stopAll, waitFor, scaled } from './lib/server.mjs';
import { startHttpSink } from './lib/sink.mjs';
import { startSmtpSink } from './lib/smtp.mjs';

const T = { timeout: scaled(30000) };
const RETRY_ARGS = ['--retry-base-ms', '200'];
const PENDING = new Set(['ENQUEUED', 'DELAYED', 'ROUTED']);

/* ---- plumbing ------------------------------------------------------------------------ */

const closers = [];
after(async () => {
  // herald first: its open SMTP sessions would otherwise hold the sinks' close()
  try {
    await stopAll();
  } finally {
    for (const c of closers.reverse()) await c();
  }
});

async function herald(name) {
  return startServer({ name, args: RETRY_ARGS });
}

async function smtpSink() {
  const s = await startSmtpSink();
  closers.push(() => s.close());
  return s;
}

async function httpSink(opts) {
  const s = await startHttpSink(opts);
  closers.push(() => s.close());
  return s;
}

const api = (srv, method, path, json, headers = {}) => srv.request(method, path, { auth: 'admin', json, headers });

function ok(r, status = 200) {
  assert.equal(r.status, status, `expected ${status}, got ${r.status}: ${r.body}`);
  return r.json;
}

function assertError(r, status, re) {
  assert.equal(r.status, status, `expected ${status}, got ${r.status}: ${r.body}`);
  assert.match(r.headers.get('content-type') ?? '', /^application\/json/);
  assert.equal(typeof r.json?.message, 'string', `error has a message: ${r.body}`);
  assert.equal(typeof r.json?.type, 'string', `error has a type: ${r.body}`);
  if (re) assert.match(r.json.message, re, `message: ${r.body}`);
}

async function addProvider(srv, body) {
  return ok(await api(srv, 'POST', '/providers', body)).id;
}

const smtpProvider = (smtp, extra = {}) => ({
  provider: 'smtp',
  settings: { host: '127.0.0.1', port: smtp.port, secure: 'none', from: 'noreply@herald.test', from_name: 'Hérald Tést' },
  ...extra,
});

async function send(srv, message, headers) {
  return ok(await api(srv, 'POST', '/send', { message }, headers), 202).requestId;
}

async function getMessage(srv, id) {
  return ok(await api(srv, 'GET', `/messages/${id}`));
}

async function history(srv, id) {
  return ok(await api(srv, 'GET', `/messages/${id}/history`)).results;
}

/** Wait until message id leaves the pending statuses; return it (with its history in
 *  assertion messages). */
async function waitFinal(srv, id, { timeout = 15000 } = {}) {
  return waitFor(
    async () => {
      const r = await api(srv, 'GET', `/messages/${id}`);
      return r.status === 200 && !PENDING.has(r.json.status) && r.json;
    },
    { timeout, what: `message ${id} to reach a final status` },
  );
}

/** Wait for a final status and assert it is `status` (and `reason` when given). */
async function expectFinal(srv, id, status, reason) {
  const m = await waitFinal(srv, id);
  const h = await history(srv, id);
  const why = `message ${id}: ${JSON.stringify(m)}\nhistory: ${JSON.stringify(h.map((e) => ({ type: e.type, reason: e.reason, error_message: e.error_message })))}`;
  assert.equal(m.status, status, why);
  if (reason !== undefined) assert.equal(m.reason, reason, why);
  return { m, h };
}

const types = (h) => h.map((e) => e.type);

const CONTENT = {
  version: '2022-01-01',
  elements: [
    { type: 'meta', title: 'Grüße, {{data.name}} — ✓' },
    { type: 'text', content: 'Hello {{data.name}}, your code is {{data.code}}.' },
  ],
};

const WEBHOOK_MSG = {
  to: { user_id: 'u1' },
  content: { title: 'T', body: 'B' },
  routing: { method: 'single', channels: ['webhook'] },
};

/* ---- the main server: SDK, SMTP, profiles, templates, idempotency, log ------------- */

describe('with an SMTP provider', () => {
  let srv;
  let smtp;
  let sdk;
  let tplId;

  before(async () => {
    srv = await herald('send-main');
    smtp = await smtpSink();
    sdk = new Courier({ apiKey: srv.adminKey, baseURL: srv.url, maxRetries: 0, timeout: 15000 });
  });

  test('1. Courier SDK: template, publish, provider, send, message and history', T, async () => {
    const tpl = await sdk.notifications.create({ notification: { name: 'Welcome', tags: ['e2e'], brand: null, subscription: null, routing: null, content: CONTENT } });
    assert.match(tpl.id, /^nt_/);
    assert.equal(tpl.state, 'DRAFT');
    tplId = tpl.id;
    await sdk.notifications.publish(tplId);
    const pub = await sdk.notifications.retrieve(tplId, { version: 'published' });
    assert.deepEqual(pub.content, CONTENT);

    const prov = await sdk.providers.create(smtpProvider(smtp));
    assert.match(prov.id, /^pr_/);
    assert.equal(prov.provider, 'smtp');
    assert.equal(prov.settings.port, smtp.port);

    const res = await sdk.send.message({ message: { to: { email: 'sdk@x.test' }, template: tplId, data: { name: 'Zoë', code: '42' } } });
    assert.match(res.requestId, /^1-[0-9a-f]{8}-[0-9a-f]{24}$/);
    const mail = await smtp.waitForMail((m) => m.rcpt.includes('sdk@x.test'));
    assert.equal(mail.parsed.subject, 'Grüße, Zoë — ✓');

    const msg = await waitFor(
      async () => {
        const m = await sdk.messages.retrieve(res.requestId);
        return !PENDING.has(m.status) && m;
      },
      { what: 'the SDK to see a final status' },
    );
    assert.equal(msg.status, 'SENT', JSON.stringify(msg));
    assert.equal(msg.id, res.requestId);
    assert.equal(msg.recipient, 'sdk@x.test');
    assert.equal(msg.notification, tplId);
    assert.equal(typeof msg.enqueued, 'number');
    assert.equal(typeof msg.sent, 'number');
    assert.ok(msg.sent >= msg.enqueued);

    const h = await sdk.messages.history(res.requestId);
    assert.deepEqual(types(h.results), ['ENQUEUED', 'MAPPED', 'PROFILE_LOADED', 'RENDERED', 'DELIVERING', 'SENT']);
    const ts = h.results.map((e) => e.ts);
    assert.deepEqual(ts, [...ts].sort((a, b) => a - b), 'history is in time order');
    const sent = h.results.at(-1);
    assert.equal(sent.channel.id, 'email');
    assert.equal(sent.integration.id, prov.id);
    assert.equal(sent.integration.provider, 'smtp');
    const mapped = h.results[1];
    assert.equal(mapped.notification_id, tplId);
  });

  test('2. real SMTP: headers, encodings, parts, escaping, no header injection', T, async () => {
    assert.ok(tplId, 'needs the template of test 1');
    const id = await send(srv, { to: { email: 'mime@x.test' }, template: tplId, data: { name: 'Zoë', code: '<b>&' } });
    const mail = await smtp.waitForMail((m) => m.rcpt.includes('mime@x.test'));
    const p = mail.parsed;
    assert.deepEqual(mail.rcpt, ['mime@x.test'], 'the envelope names only the recipient');
    assert.equal(mail.from, 'noreply@herald.test');
    assert.deepEqual(p.to.value.map((a) => a.address), ['mime@x.test']);
    assert.deepEqual(p.from.value, [{ address: 'noreply@herald.test', name: 'Hérald Tést' }]);
    assert.equal(p.subject, 'Grüße, Zoë — ✓');
    assert.equal(p.headers.get('content-type')?.value, 'multipart/alternative');
    assert.match(p.messageId ?? '', /^<[^<>\s@]+@[^<>\s@]+>$/, 'a Message-ID header');
    assert.ok(p.date instanceof Date && Math.abs(p.date.getTime() - Date.now()) < 60000, 'a Date header');
    // the raw header section is 7-bit: the subject and the display name are encoded words
    const head = mail.raw.slice(0, mail.raw.indexOf('\r\n\r\n'));
    assert.ok(!/[^\x00-\x7f]/.test(head), `headers are ASCII:\n${head}`);
    assert.match(head, /^Subject: =\?UTF-8\?/im);

    assert.equal(typeof p.html, 'string');
    assert.equal(typeof p.text, 'string');
    assert.ok(p.html.includes('Hello Zoë, your code is &lt;b&gt;&amp;.'), `HTML part escapes data: ${p.html}`);
    assert.ok(!p.html.includes('<b>&'), 'no raw markup from data in the HTML part');
    assert.ok(p.text.includes('Hello Zoë, your code is <b>&.'), `text part has the raw data: ${p.text}`);
    assert.equal((await expectFinal(srv, id, 'SENT')).m.providers[0].reference.id, p.messageId, 'the reference is the Message-ID');

    // CR LF in data must not make new headers
    const id2 = await send(srv, { to: { email: 'inject@x.test' }, template: tplId, data: { name: 'Ann\r\nBcc: evil@x', code: '1' } });
    const m2 = await smtp.waitForMail((m) => m.rcpt.includes('inject@x.test'));
    await expectFinal(srv, id2, 'SENT');
    assert.deepEqual(m2.rcpt, ['inject@x.test'], 'no extra envelope recipient');
    assert.equal(m2.parsed.bcc, undefined);
    assert.equal(m2.parsed.headers.get('bcc'), undefined);
    const head2 = m2.raw.slice(0, m2.raw.indexOf('\r\n\r\n'));
    assert.ok(!/^bcc:/im.test(head2), `no Bcc header line:\n${head2}`);
    assert.ok(!/[\r\n]/.test(m2.parsed.subject), 'the subject is one line');
    assert.match(m2.parsed.subject, /^Grüße, Ann\s+Bcc: evil@x — ✓$/);
    assert.equal(smtp.to('evil@x').length, 0);
  });

  test('5. user_id recipients: stored profile; recipient fields override for one send', T, async () => {
    assert.ok(tplId, 'needs the template of test 1');
    ok(await api(srv, 'POST', '/profiles/u7', { profile: { email: 'u7@x.test', name: 'Seven' } }));
    const id = await send(srv, { to: { user_id: 'u7' }, template: tplId, data: { name: 'U7', code: 'a' } });
    const mail = await smtp.waitForMail((m) => m.rcpt.includes('u7@x.test'));
    assert.equal(mail.parsed.subject, 'Grüße, U7 — ✓');
    const { m } = await expectFinal(srv, id, 'SENT');
    assert.equal(m.recipient, 'u7');

    const id2 = await send(srv, { to: { user_id: 'u7', email: 'override@x.test' }, template: tplId, data: { name: 'O', code: 'b' } });
    await smtp.waitForMail((x) => x.rcpt.includes('override@x.test'));
    await expectFinal(srv, id2, 'SENT');
    assert.equal(smtp.to('u7@x.test').length, 1, 'the override did not go to the stored address');
    const prof = ok(await api(srv, 'GET', '/profiles/u7'));
    assert.deepEqual(prof.profile, { email: 'u7@x.test', name: 'Seven' }, 'the stored profile is unchanged');
    const pl = (await history(srv, id2)).find((e) => e.type === 'PROFILE_LOADED');
    assert.equal(pl?.merged_profile?.email, 'override@x.test');
    assert.equal(pl?.stored_profile?.email, 'u7@x.test');
  });

  test('6. templates: unpublished -> UNDELIVERABLE/UNPUBLISHED; unknown -> UNMAPPED', T, async () => {
    const draft = ok(await api(srv, 'POST', '/notifications', { notification: { name: 'Draft only', content: CONTENT } }));
    assert.equal(draft.state, 'DRAFT');
    const id = await send(srv, { to: { email: 'draft@x.test' }, template: draft.id, data: { name: 'D' } });
    const { h } = await expectFinal(srv, id, 'UNDELIVERABLE', 'UNPUBLISHED');
    assert.equal(h.at(-1).type, 'UNDELIVERABLE');
    assert.equal(h.at(-1).reason, 'UNPUBLISHED');

    const id2 = await send(srv, { to: { email: 'unknown@x.test' }, template: 'nt_doesnotexist', data: {} });
    const r2 = await expectFinal(srv, id2, 'UNMAPPED');
    assert.equal(r2.h.at(-1).type, 'UNMAPPED');
    assert.ok(!types(r2.h).includes('RENDERED'));
    assert.equal(smtp.to('draft@x.test').length + smtp.to('unknown@x.test').length, 0, 'nothing was mailed');
  });

  test('7. idempotency: one request per key; validation errors are not stored', T, async () => {
    assert.ok(tplId, 'needs the template of test 1');
    const body = { message: { to: { email: 'idem@x.test' }, template: tplId, data: { name: 'I', code: 'k1' } } };
    const r1 = await api(srv, 'POST', '/send', body, { 'Idempotency-Key': 'k1' });
    const a = ok(r1, 202);
    assert.equal(r1.headers.get('idempotent-replayed'), null, 'the first answer is not a replay');
    const r2 = await api(srv, 'POST', '/send', body, { 'Idempotency-Key': 'k1' });
    const b = ok(r2, 202);
    assert.equal(b.requestId, a.requestId);
    assert.equal(r2.headers.get('idempotent-replayed'), 'true');
    await expectFinal(srv, a.requestId, 'SENT');
    await smtp.waitForMail((m) => m.rcpt.includes('idem@x.test'));
    await sleep(500); // a second delivery would come right after the first
    assert.equal(smtp.to('idem@x.test').length, 1, 'exactly one email');
    const list = ok(await api(srv, 'GET', '/messages?recipient=idem%40x.test'));
    assert.equal(list.results.length, 1, 'one message');

    const bad = await api(srv, 'POST', '/send', { message: { template: tplId } }, { 'Idempotency-Key': 'k2' });
    assertError(bad, 400);
    const fixed = await api(srv, 'POST', '/send', { message: { to: { email: 'idem2@x.test' }, template: tplId, data: { name: 'I2' } } }, { 'Idempotency-Key': 'k2' });
    const f = ok(fixed, 202);
    assert.equal(fixed.headers.get('idempotent-replayed'), null, 'the 400 was not stored');
    assert.match(f.requestId, /^1-/);
    await expectFinal(srv, f.requestId, 'SENT');
    await smtp.waitForMail((m) => m.rcpt.includes('idem2@x.test'));
  });

  test('8. cancel: a delayed message is canceled and never sent; after SENT: 409', T, async () => {
    assert.ok(tplId, 'needs the template of test 1');
    const id = await send(srv, { to: { email: 'cancel@x.test' }, template: tplId, data: { name: 'C' }, delay: { duration: 60000 } });
    const before = await getMessage(srv, id);
    assert.ok(PENDING.has(before.status), `still pending: ${before.status}`);
    const c = await api(srv, 'POST', `/messages/${id}/cancel`);
    const cm = ok(c);
    assert.equal(cm.status, 'CANCELED');
    assert.equal(cm.id, id);
    assert.equal(typeof cm.canceledAt, 'number');
    assert.equal((await getMessage(srv, id)).status, 'CANCELED');
    await sleep(1000);
    assert.equal(smtp.to('cancel@x.test').length, 0, 'nothing delivered');
    assert.equal((await getMessage(srv, id)).status, 'CANCELED');
    assert.ok(types(await history(srv, id)).includes('CANCELED'));
    // canceling twice is fine
    assert.equal(ok(await api(srv, 'POST', `/messages/${id}/cancel`)).status, 'CANCELED');

    const id2 = await send(srv, { to: { email: 'late@x.test' }, template: tplId, data: { name: 'L' } });
    await expectFinal(srv, id2, 'SENT');
    const late = await api(srv, 'POST', `/messages/${id2}/cancel`);
    assert.equal(late.status, 409, late.body);
    assert.equal(late.headers.get('x-should-retry'), 'false');
    assert.equal(late.json?.status, 'SENT');
    assertError(await api(srv, 'POST', '/messages/1-00000000-000000000000000000000000/cancel'), 404);
  });

  test('9. message log: filters, cursor paging, output', T, async () => {
    assert.ok(tplId, 'needs the template of test 1');
    const md = (trace) => ({ tags: ['t9', 'log'], ...(trace ? { trace_id: trace } : {}) });
    const ids = [];
    ids.push(await send(srv, { to: { email: 'log1@x.test' }, template: tplId, data: { name: 'L1', code: '<i>' }, metadata: md('trace-9a') }));
    ids.push(await send(srv, { to: { email: 'log2@x.test' }, template: tplId, data: { name: 'L2' }, metadata: md() }));
    ids.push(await send(srv, { to: { email: 'log2@x.test' }, template: tplId, data: { name: 'L3' }, metadata: md('trace-9b') }));
    for (const id of ids) await expectFinal(srv, id, 'SENT');

    const get = async (qs) => ok(await api(srv, 'GET', `/messages?${qs}`));
    let r = await get('recipient=log2%40x.test');
    assert.deepEqual(r.results.map((m) => m.id), [ids[2], ids[1]], 'newest first, only that recipient');
    r = await get('status=SENT&limit=100');
    assert.ok(r.results.every((m) => m.status === 'SENT'));
    for (const id of ids) assert.ok(r.results.some((m) => m.id === id), `${id} is listed as SENT`);
    r = await get('status=UNMAPPED');
    assert.ok(r.results.every((m) => m.status === 'UNMAPPED'));
    assert.ok(!r.results.some((m) => ids.includes(m.id)));
    r = await get('tag=t9');
    assert.deepEqual(r.results.map((m) => m.id).sort(), [...ids].sort());
    assert.ok(r.results.every((m) => m.tags.includes('t9')));
    r = await get('traceId=trace-9a');
    assert.deepEqual(r.results.map((m) => m.id), [ids[0]]);
    r = await get('traceId=trace-nope');
    assert.deepEqual(r.results, []);
    assert.deepEqual(r.paging, { cursor: null, more: false });

    // cursor paging with limit=1 walks all, in the order of the full list
    for (const qs of ['tag=t9', '']) {
      const full = await get(`${qs}&limit=100`);
      assert.equal(full.paging.more, false);
      const seen = [];
      let cursor = null;
      for (let i = 0; i < 200; i++) {
        const page = await get(`${qs}&limit=1${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
        assert.ok(page.results.length <= 1);
        seen.push(...page.results.map((m) => m.id));
        if (!page.paging.more) {
          assert.equal(page.paging.cursor, null);
          break;
        }
        assert.equal(typeof page.paging.cursor, 'string');
        cursor = page.paging.cursor;
      }
      assert.deepEqual(seen, full.results.map((m) => m.id), `paging ${qs || 'everything'}`);
    }
    assertError(await api(srv, 'GET', '/messages?limit=0'), 400);

    const out = ok(await api(srv, 'GET', `/messages/${ids[0]}/output`));
    assert.equal(out.results.length, 1);
    const o = out.results[0];
    assert.equal(o.channel, 'email');
    assert.equal(o.content.subject, 'Grüße, L1 — ✓');
    assert.ok(o.content.html.includes('Hello L1, your code is &lt;i&gt;.'), o.content.html);
    assert.ok(o.content.text.includes('Hello L1, your code is <i>.'), o.content.text);
    assertError(await api(srv, 'GET', '/messages/1-00000000-000000000000000000000000/output'), 404);
  });

  test('9b. brands: a saved brand and a new default brand show in the very next message', T, async () => {
    assert.ok(tplId, 'needs the template of test 1');
    // routes cache brands for up to a second; saving one here must not wait for that
    const html = async (extra) => {
      const id = await send(srv, { to: { email: 'brand@x.test' }, template: tplId, data: { name: 'B' }, ...extra });
      await expectFinal(srv, id, 'SENT');
      return ok(await api(srv, 'GET', `/messages/${id}/output`)).results[0].content.html;
    };
    const colors = (primary) => ({ colors: { primary } });
    ok(await api(srv, 'POST', '/brands', { id: 'b9', name: 'B9', settings: colors('#123456') }));
    ok(await api(srv, 'POST', '/brands', { id: 'b9x', name: 'B9x', settings: colors('#abcdef') }));
    assert.ok((await html({ brand_id: 'b9' })).includes('#123456'));
    ok(await api(srv, 'PUT', '/brands/b9', { name: 'B9', settings: colors('#654321') }));
    let h = await html({ brand_id: 'b9' });
    assert.ok(h.includes('#654321') && !h.includes('#123456'), 'the saved brand, not the cached one');

    ok(await api(srv, 'PUT', '/settings', { default_brand_id: 'b9' }));
    assert.ok((await html({})).includes('#654321'), 'the default brand');
    ok(await api(srv, 'PUT', '/settings', { default_brand_id: 'b9x' }));
    h = await html({});
    assert.ok(h.includes('#abcdef') && !h.includes('#654321'), 'the new default, not the cached one');
    assert.equal((await api(srv, 'DELETE', '/brands/b9x')).status, 204);
    assert.ok(!(await html({})).includes('#abcdef'), 'a deleted default brand is gone');
    ok(await api(srv, 'PUT', '/settings', { default_brand_id: null }));
  });

  test('10. legacy v1: {event, recipient, data} -> 202 {messageId}, the email arrives', T, async () => {
    assert.ok(tplId, 'needs the template of test 1');
    const before = smtp.to('u7@x.test').length;
    const r = await api(srv, 'POST', '/send', { event: tplId, recipient: 'u7', data: { name: 'Legacy', code: 'v1' } });
    const b = ok(r, 202);
    assert.match(b.messageId ?? '', /^1-[0-9a-f]{8}-[0-9a-f]{24}$/, r.body);
    assert.equal(b.requestId, undefined);
    const mail = await waitFor(() => smtp.to('u7@x.test').length > before && smtp.to('u7@x.test').at(-1), { what: 'the v1 email' });
    assert.equal(mail.parsed.subject, 'Grüße, Legacy — ✓');
    assert.ok(mail.parsed.text.includes('your code is v1.'));
    const { m } = await expectFinal(srv, b.messageId, 'SENT');
    assert.equal(m.recipient, 'u7');
    assert.equal(m.event, tplId);
  });

  test('11. bad input: 400 with {message, type}', T, async () => {
    const tpl = tplId ?? 'nt_x';
    assertError(await api(srv, 'POST', '/send', { message: { template: tpl } }), 400, /to/);
    assertError(await api(srv, 'POST', '/send', { message: { to: { email: 'a@x.test' }, template: tpl, content: { title: 'T', body: 'B' } } }), 400, /template|content/);
    const tags = Array.from({ length: 10 }, (_, i) => `t${i}`);
    assertError(await api(srv, 'POST', '/send', { message: { to: { email: 'a@x.test' }, template: tpl, metadata: { tags } } }), 400, /tags/);
    assertError(await srv.request('POST', '/send', { auth: 'admin', headers: { 'Content-Type': 'application/json' }, body: '{"message": {"to": ' }), 400);
    assertError(await api(srv, 'POST', '/send', { message: { to: { email: 'a@x.test' } } }), 400, /template|content/);
    assertError(await api(srv, 'POST', '/send', {}), 400);
    assertError(await srv.request('POST', '/send', { json: { message: { to: { email: 'a@x.test' }, template: tpl } } }), 401);
    assert.equal(smtp.to('a@x.test').length, 0);
  });
});

/* ---- provider faults with local HTTP servers as webhook providers ----------------- */

describe('webhook provider faults', () => {
  test('3a. connection refused, then the listener appears: delivered once, RETRYING then SENT', T, async (t) => {
    const srv = await herald(t.name);
    const port = await freePort();
    await addProvider(srv, { provider: 'webhook', settings: { url: `http://127.0.0.1:${port}/hook` } });
    const id = await send(srv, WEBHOOK_MSG);
    await waitFor(async () => types(await history(srv, id)).includes('RETRYING'), { what: 'a RETRYING event' });
    await sleep(1000);
    assert.ok(PENDING.has((await getMessage(srv, id)).status), 'still retrying');
    const sink = await httpSink({ port });
    const { h } = await expectFinal(srv, id, 'SENT');
    await sleep(300);
    assert.equal(sink.requests.length, 1, 'delivered exactly once');
    const ty = types(h);
    assert.ok(ty.indexOf('RETRYING') >= 0 && ty.indexOf('RETRYING') < ty.lastIndexOf('SENT'), `RETRYING then SENT: ${ty}`);
    assert.equal(ty.at(-1), 'SENT');
    assert.equal(ty.filter((x) => x === 'SENT').length, 1);
    const retry = h.find((e) => e.type === 'RETRYING');
    assert.equal(typeof retry.error_message, 'string');
    assert.equal(sink.requests[0].json?.title, 'T');
  });

  test('3b. 500 once, then 200: SENT after one retry, the same Idempotency-Key twice', T, async (t) => {
    const srv = await herald(t.name);
    const sink = await httpSink({ responses: [{ status: 500, body: 'boom' }] });
    await addProvider(srv, { provider: 'webhook', settings: { url: sink.url } });
    const id = await send(srv, WEBHOOK_MSG);
    const { h } = await expectFinal(srv, id, 'SENT');
    await sleep(300);
    assert.equal(sink.requests.length, 2, 'exactly two requests');
    const [k1, k2] = sink.requests.map((r) => r.headers['idempotency-key']);
    assert.ok(k1, 'an Idempotency-Key header');
    assert.equal(k2, k1);
    assert.equal(sink.requests[1].body, sink.requests[0].body, 'the same payload');
    assert.deepEqual(types(h).filter((x) => ['DELIVERING', 'RETRYING', 'SENT', 'UNDELIVERABLE'].includes(x)), ['DELIVERING', 'RETRYING', 'DELIVERING', 'SENT']);
  });

  test('3c. failover: priority 1 answers 400, priority 2 delivers', T, async (t) => {
    const srv = await herald(t.name);
    const bad = await httpSink({ fallback: { status: 400, json: { error: 'bad request' } } });
    const good = await httpSink();
    // created in the "wrong" order: priority decides, not creation
    const p2 = await addProvider(srv, { provider: 'webhook', priority: 2, settings: { url: good.url } });
    const p1 = await addProvider(srv, { provider: 'webhook', priority: 1, settings: { url: bad.url } });
    const id = await send(srv, WEBHOOK_MSG);
    const { m, h } = await expectFinal(srv, id, 'SENT');
    await sleep(300);
    assert.equal(bad.requests.length, 1, 'a 400 is not retried');
    assert.equal(good.requests.length, 1);
    const und = h.findIndex((e) => e.type === 'UNDELIVERABLE');
    const sent = h.findIndex((e) => e.type === 'SENT');
    assert.ok(und >= 0 && sent > und, `UNDELIVERABLE then SENT: ${types(h)}`);
    assert.equal(h[und].integration?.id, p1);
    assert.equal(h[sent].integration?.id, p2);
    assert.ok(!types(h).includes('RETRYING'));
    assert.equal(m.providers.length, 1);
    assert.equal(m.providers[0].status, 'SENT');
  });

  test('3d. 429 with Retry-After: 1 is retried after >= 1 s', T, async (t) => {
    const srv = await herald(t.name);
    const sink = await httpSink({ responses: [{ status: 429, headers: { 'Retry-After': '1' }, body: 'slow down' }] });
    await addProvider(srv, { provider: 'webhook', settings: { url: sink.url } });
    const id = await send(srv, WEBHOOK_MSG);
    const { h } = await expectFinal(srv, id, 'SENT');
    assert.equal(sink.requests.length, 2);
    const gap = sink.requests[1].at - sink.requests[0].at;
    assert.ok(gap >= 900, `the retry waited ${gap} ms, Retry-After asked for 1000`);
    const retry = h.find((e) => e.type === 'RETRYING');
    assert.ok(retry, `a RETRYING event: ${types(h)}`);
  });

  test('3e. signature: courier-signature is HMAC-SHA256(secret, t.body)', T, async (t) => {
    const srv = await herald(t.name);
    const sink = await httpSink();
    const secret = 'whsec-e2e-0123456789';
    await addProvider(srv, { provider: 'webhook', settings: { url: sink.url, secret } });
    const t0 = Date.now();
    const id = await send(srv, WEBHOOK_MSG);
    await expectFinal(srv, id, 'SENT');
    const [req] = await sink.waitForRequests(1);
    const sig = req.headers['courier-signature'];
    const m = /^t=(\d+),signature=([0-9a-f]{64})$/.exec(sig ?? '');
    assert.ok(m, `courier-signature: ${sig}`);
    const ts = Number(m[1]);
    assert.ok(ts >= t0 - 1000 && ts <= Date.now() + 1000, `t is ms now: ${ts}`);
    const want = crypto.createHmac('sha256', secret).update(`${m[1]}.${req.body}`).digest('hex');
    assert.equal(m[2], want, 'the signature verifies against the raw body');
    const wrong = crypto.createHmac('sha256', 'other').update(`${m[1]}.${req.body}`).digest('hex');
    assert.notEqual(m[2], wrong);
    assert.ok(!JSON.stringify(req.headers).includes(secret), 'the secret is not sent');
    assert.equal(req.headers['content-type'], 'application/json');
  });
});

/* ---- routing ---------------------------------------------------------------------- */

describe('routing', () => {
  test('4a. no email in the profile, only an email provider: UNROUTABLE NO_CHANNELS (explicit routing)', T, async (t) => {
    const srv = await herald(t.name);
    const smtp = await smtpSink();
    await addProvider(srv, smtpProvider(smtp));
    ok(await api(srv, 'POST', '/profiles/p1', { profile: { name: 'No Email' } }));
    const id = await send(srv, { to: { user_id: 'p1' }, content: { title: 'T', body: 'B' }, routing: { method: 'single', channels: ['email'] } });
    const { h } = await expectFinal(srv, id, 'UNROUTABLE', 'NO_CHANNELS');
    assert.equal(h.at(-1).type, 'UNROUTABLE');
    assert.equal(h.at(-1).reason, 'NO_CHANNELS');
    assert.equal(smtp.mails.length, 0);
  });

  test('4b. no email in the profile, only an email provider: UNROUTABLE NO_CHANNELS (default routing)', T, async (t) => {
    const srv = await herald(t.name);
    const smtp = await smtpSink();
    await addProvider(srv, smtpProvider(smtp));
    ok(await api(srv, 'POST', '/profiles/p1', { profile: { name: 'No Email' } }));
    const id = await send(srv, { to: { user_id: 'p1' }, content: { title: 'T', body: 'B' } });
    await expectFinal(srv, id, 'UNROUTABLE', 'NO_CHANNELS');
    assert.equal(smtp.mails.length, 0);
  });

  test('4c. an email recipient and no providers at all: UNROUTABLE NO_PROVIDERS', T, async (t) => {
    const srv = await herald(t.name);
    const id = await send(srv, { to: { email: 'np@x.test' }, content: { title: 'T', body: 'B' } });
    const { h } = await expectFinal(srv, id, 'UNROUTABLE', 'NO_PROVIDERS');
    assert.equal(h.at(-1).reason, 'NO_PROVIDERS');
  });

  describe('with email, sms and webhook providers', () => {
    let srv;
    let smtp;
    let twilio;
    let hook;
    before(async () => {
      srv = await herald('send-routing');
      smtp = await smtpSink();
      twilio = await httpSink({ fallback: { status: 201, json: { sid: 'SM0001' } } });
      hook = await httpSink();
      await addProvider(srv, smtpProvider(smtp));
      await addProvider(srv, { provider: 'twilio', settings: { account_sid: 'AC0123456789', auth_token: 'twilio-token', from: '+15550001111', base_url: `http://127.0.0.1:${twilio.port}` } });
      await addProvider(srv, { provider: 'webhook', settings: { url: hook.url } });
    });

    test('4d. single ["sms","email"] with an email-only recipient sends on email', T, async () => {
      const id = await send(srv, { to: { email: 'single@x.test' }, content: { title: 'Single', body: 'B' }, routing: { method: 'single', channels: ['sms', 'email'] } });
      const { m } = await expectFinal(srv, id, 'SENT');
      const mail = await smtp.waitForMail((x) => x.rcpt.includes('single@x.test'));
      assert.equal(mail.parsed.subject, 'Single');
      assert.deepEqual(m.providers.map((p) => [p.channel.key, p.status]), [['email', 'SENT']]);
      await sleep(300);
      assert.equal(twilio.requests.length, 0, 'nothing on sms');
      assert.equal(hook.requests.length, 0, 'nothing on webhook');
    });

    test('4e. all ["email","webhook"] sends on both', T, async () => {
      const id = await send(srv, { to: { email: 'all@x.test' }, content: { title: 'Both', body: 'B' }, routing: { method: 'all', channels: ['email', 'webhook'] } });
      await smtp.waitForMail((x) => x.rcpt.includes('all@x.test'));
      await hook.waitForRequests(1);
      const m = await waitFor(
        async () => {
          const x = await getMessage(srv, id);
          return x.providers?.length === 2 && x.providers.every((p) => p.status !== 'PENDING') && x;
        },
        { what: 'both channels to finish' },
      );
      assert.equal(m.status, 'SENT');
      assert.deepEqual(m.providers.map((p) => [p.channel.key, p.status]).sort(), [['email', 'SENT'], ['webhook', 'SENT']]);
      const out = ok(await api(srv, 'GET', `/messages/${id}/output`));
      assert.deepEqual(out.results.map((r) => r.channel).sort(), ['email', 'webhook']);
      const sent = (await history(srv, id)).filter((e) => e.type === 'SENT').map((e) => e.channel.id).sort();
      assert.deepEqual(sent, ['email', 'webhook']);
      assert.equal(hook.requests.length, 1);
      assert.equal(twilio.requests.length, 0);
    });
  });
});
