// statushooks.test.mjs: status webhooks out and open/click tracking (issue 16 points 5
// and 4). Local receivers verify herald's signature (courier-signature: t=<ms>,
// signature=<hex HMAC-SHA256(secret, "<t>.<body>")>) and see Courier-shaped
// message:updated events for ENQUEUED, ROUTED and SENT (and only SENT when filtered); a
// failing receiver gets retries carrying the same event id; a logged delivery replays.
// Tracking: a tracked template's email has its links rewritten and an open pixel; the
// pixel and a click move the status forward only, the click 302s to the signed link
// only, and forged or edited tokens are 404.

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { describe, test } from 'node:test';

import { closeAfterAll } from './lib/cleanup.mjs';
import { assertJsonError } from './lib/ingest.mjs';
import { scaled, startServer, waitFor } from './lib/server.mjs';
import { startHttpSink } from './lib/sink.mjs';
import { startSmtpSink } from './lib/smtp.mjs';

const T = { timeout: scaled(60000) };
const SECRET = 'whsec_statushooks_0123456789';
const closers = closeAfterAll();

async function httpSink(opts) {
  const s = await startHttpSink(opts);
  closers.push(() => s.close());
  return s;
}

const api = (srv, method, path, json) => srv.request(method, path, { auth: 'admin', json });

function ok(r, status = 200) {
  assert.equal(r.status, status, `expected ${status}, got ${r.status}: ${r.body}`);
  return r.json;
}

/** A JSON error {message, type} with this status, its message matching re. */
function assertError(r, status, re) {
  const j = assertJsonError(r, status);
  if (re) assert.match(j.message, re, `message: ${r.body}`);
}

/** verify: the receiver's check of herald's signature; returns the event. */
function verify(req, secret = SECRET) {
  const m = /^t=(\d+),signature=([0-9a-f]{64})$/.exec(req.headers['courier-signature'] ?? '');
  assert.ok(m, `signed: ${JSON.stringify(req.headers)}`);
  const want = crypto.createHmac('sha256', secret).update(`${m[1]}.${req.body}`).digest('hex');
  assert.ok(crypto.timingSafeEqual(Buffer.from(want), Buffer.from(m[2])), 'the signature verifies');
  assert.equal(req.headers['x-herald-signature'], req.headers['courier-signature']);
  const ev = JSON.parse(req.body);
  assert.equal(ev.type, 'message:updated');
  assert.match(ev.id, /^evt_[0-9a-f]{24}$/);
  assert.equal(req.headers['idempotency-key'], ev.id);
  assert.equal(req.headers['x-herald-event-id'], ev.id);
  return ev;
}

describe('status webhooks out', () => {
  test('signed message:updated events, status filter, retries with one event id, replay, the log', T, async (t) => {
    const srv = await startServer({ t, name: 'hooks' });
    const all = await httpSink({ path: '/all' });
    const sentOnly = await httpSink({ path: '/sent' });
    const flaky = await httpSink({ path: '/flaky', responses: [{ status: 503 }, { status: 502 }] });
    const target = await httpSink({ path: '/provider' });

    // bad input: clear JSON errors
    assertError(await api(srv, 'POST', '/webhooks', { url: 'ftp://x.test/' }), 400, /url/);
    assertError(await api(srv, 'POST', '/webhooks', { url: all.url, statuses: ['NOPE'] }), 400, /NOPE/);
    assertError(await api(srv, 'POST', '/webhooks', { url: all.url, secret: 7 }), 400, /secret/);
    assertError(await api(srv, 'POST', '/webhooks', { url: all.url, colour: 'red' }), 400, /colour/);
    assertError(await api(srv, 'GET', '/webhooks/whk_nope'), 404);

    // a message before any endpoint exists: no events, and the endpoints added next
    // see the very next status change (the server's "no endpoints" shortcut is cleared)
    ok(await api(srv, 'POST', '/providers', { provider: 'webhook', settings: { url: target.url } }));
    const send = async (user) =>
      ok(await api(srv, 'POST', '/send', { message: { to: { user_id: user }, content: { title: 'Hi', body: 'there' }, routing: { method: 'single', channels: ['webhook'] } } }), 202).requestId;
    const early = await send('u0');
    await waitFor(async () => ok(await api(srv, 'GET', `/messages/${early}`)).status === 'SENT', { timeout: scaled(10000), what: 'u0 SENT' });

    const a = ok(await api(srv, 'POST', '/webhooks', { url: all.url, secret: SECRET, statuses: ['ENQUEUED', 'ROUTED', 'SENT'] }), 201);
    assert.equal(a.secret, '****6789', 'the secret is masked');
    assert.equal(a.enabled, true);
    const b = ok(await api(srv, 'POST', '/webhooks', { url: sentOnly.url, secret: SECRET, statuses: ['SENT'] }), 201);
    // a PUT sending the mask back keeps the secret (the signatures below still verify)
    const b2 = ok(await api(srv, 'PUT', `/webhooks/${b.id}`, { url: sentOnly.url, secret: b.secret, statuses: ['SENT'] }));
    assert.equal(b2.secret, '****6789');
    const listed = ok(await api(srv, 'GET', '/webhooks')).results;
    assert.deepEqual(listed.map((e) => e.id).sort(), [a.id, b.id].sort());
    assert.ok(listed.every((e) => !JSON.stringify(e).includes(SECRET)), 'no secret in the listing');

    const id = await send('u1');

    const got = await all.waitForRequests(3, { timeout: scaled(15000) });
    // deliveries run in parallel: events of one message may arrive in any order
    const ORDER = ['ENQUEUED', 'ROUTED', 'SENT'];
    const evs = got.map((r) => verify(r)).sort((x, y) => ORDER.indexOf(x.data.status) - ORDER.indexOf(y.data.status));
    assert.deepEqual(evs.map((e) => e.data.status), ORDER);
    assert.ok(evs.every((e) => e.data.id === id), 'each event carries the message record');
    assert.ok(!got.some((r) => JSON.parse(r.body).data.id === early), 'nothing for the message before the endpoint');
    assert.equal(new Set(evs.map((e) => e.id)).size, 3, 'one event id per change');
    const rec = ok(await api(srv, 'GET', `/messages/${id}`));
    assert.deepEqual(evs[2].data, rec, 'data is the GET /messages/{id} record');

    const s = await sentOnly.waitForRequests(1, { timeout: scaled(10000) });
    assert.equal(verify(s[0]).data.status, 'SENT');

    // the log is written when each attempt's outcome commits, just after the receiver answered
    const log = await waitFor(async () => {
      const l = ok(await api(srv, 'GET', `/webhooks/${a.id}/deliveries`)).results;
      return l.length === 3 && l;
    }, { timeout: scaled(10000), what: 'three logged deliveries' });
    assert.ok(log.every((e) => e.status_code === 200 && e.outcome === 'succeeded' && e.attempt === 1), JSON.stringify(log));
    assert.deepEqual(log.map((e) => e.event_id).sort(), evs.map((e) => e.id).sort());

    // a failing receiver: retried with backoff, the same event id every time
    const c = ok(await api(srv, 'POST', '/webhooks', { url: flaky.url, secret: SECRET, statuses: ['SENT'] }), 201);
    await send('u2');
    const fr = await flaky.waitForRequests(3, { timeout: scaled(20000) });
    const fe = fr.map((r) => verify(r));
    assert.equal(new Set(fe.map((e) => e.id)).size, 1, 'retries carry one event id');
    assert.equal(new Set(fr.map((r) => r.body)).size, 1, 'and the same body');
    const clog = await waitFor(async () => {
      const l = ok(await api(srv, 'GET', `/webhooks/${c.id}/deliveries`)).results;
      return l.length === 3 && l;
    }, { timeout: scaled(10000), what: 'three logged attempts' });
    assert.deepEqual(clog.map((e) => [e.attempt, e.status_code, e.outcome]), [[3, 200, 'succeeded'], [2, 502, 'retrying'], [1, 503, 'retrying']]);

    // replay: the same event again, logged as a replay
    const r = ok(await api(srv, 'POST', `/webhooks/${c.id}/deliveries/${clog[0].id}/replay`), 202);
    assert.equal(r.delivery_id, clog[0].id);
    const again = await flaky.waitForRequests(4, { timeout: scaled(10000) });
    assert.equal(verify(again[3]).id, fe[0].id);
    await waitFor(async () => ok(await api(srv, 'GET', `/webhooks/${c.id}/deliveries`)).results[0]?.replay === true, { timeout: scaled(10000), what: 'the replay logged' });
    assertError(await api(srv, 'POST', `/webhooks/${c.id}/deliveries/dlv_nope/replay`), 404);
    assertError(await api(srv, 'POST', `/webhooks/${a.id}/deliveries/${clog[0].id}/replay`), 404, /delivery/);

    // removed: no more events, no log
    assert.equal((await api(srv, 'DELETE', `/webhooks/${c.id}`)).status, 204);
    assertError(await api(srv, 'GET', `/webhooks/${c.id}`), 404);
    assertError(await api(srv, 'GET', `/webhooks/${c.id}/deliveries`), 404);
  });
});

describe('open and click tracking', () => {
  test('rewritten links, pixel and click move the status forward only, forged tokens 404', T, async (t) => {
    const smtp = await startSmtpSink();
    closers.push(() => smtp.close());
    const srv = await startServer({ t, name: 'tracking' });
    ok(await api(srv, 'POST', '/providers', { provider: 'smtp', settings: { host: '127.0.0.1', port: smtp.port, secure: 'none', from: 'noreply@herald.test' } }));
    const LINK = 'https://example.com/welcome?a=1&b=2';
    const content = {
      version: '2022-01-01',
      elements: [
        { type: 'meta', title: 'Welcome' },
        { type: 'text', content: 'Hello' },
        { type: 'action', content: 'Start', href: LINK },
      ],
    };
    assertError(await api(srv, 'POST', '/notifications', { notification: { name: 'bad', content, tracking: { opens: 'yes' } } }), 400, /tracking/);
    const tracked = ok(await api(srv, 'POST', '/notifications', { notification: { name: 'Tracked', content, tracking: { opens: true, clicks: true } } }));
    assert.deepEqual(tracked.tracking, { opens: true, clicks: true });
    ok(await api(srv, 'POST', `/notifications/${tracked.id}/publish`, {}));
    const plain = ok(await api(srv, 'POST', '/notifications', { notification: { name: 'Plain', content } }));
    ok(await api(srv, 'POST', `/notifications/${plain.id}/publish`, {}));

    const send = async (tpl, email) => ok(await api(srv, 'POST', '/send', { message: { to: { email }, template: tpl } }), 202).requestId;
    const id = await send(tracked.id, 'tracked@x.test');
    const pid = await send(plain.id, 'plain@x.test');
    const mail = await smtp.waitForMail((m) => m.rcpt.includes('tracked@x.test'));
    const pmail = await smtp.waitForMail((m) => m.rcpt.includes('plain@x.test'));
    assert.ok(pmail.parsed.html.includes('https://example.com/welcome?a=1&amp;b=2') && !pmail.parsed.html.includes('/t/'), 'untracked by default');
    const html = mail.parsed.html;
    assert.ok(!html.includes('example.com'), `the link is rewritten: ${html}`);
    const click = new RegExp(`href="(${srv.url.replace(/[.]/g, '\\.')}/t/c/[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+)"`).exec(html)?.[1];
    const pixel = new RegExp(`src="(${srv.url.replace(/[.]/g, '\\.')}/t/o/[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+)"`).exec(html)?.[1];
    assert.ok(click && pixel, `a click link and a pixel: ${html}`);
    await waitFor(async () => ok(await api(srv, 'GET', `/messages/${id}`)).status === 'SENT', { timeout: scaled(10000), what: 'SENT' });
    await waitFor(async () => ok(await api(srv, 'GET', `/messages/${pid}`)).status === 'SENT', { timeout: scaled(10000), what: 'SENT' });

    const get = (u, extra = {}) => fetch(u, { redirect: 'manual', ...extra });
    // forged and edited tokens: 404, nothing recorded
    const tok = click.split('/t/c/')[1];
    const [p64, mac] = tok.split('.');
    const flip = (s, i) => s.slice(0, i) + (s[i] === 'A' ? 'B' : 'A') + s.slice(i + 1);
    const evil = Buffer.from(`c${id}\nhttps://evil.test/`).toString('base64url');
    for (const bad of [
      `${flip(p64, 3)}.${mac}`,
      `${p64}.${flip(mac, 5)}`,
      `${evil}.${mac}`,
      `${p64}`,
      'x'.repeat(5000),
    ]) {
      const r = await get(`${srv.url}/t/c/${bad}`);
      assert.equal(r.status, 404, `forged ${bad.slice(0, 40)}: ${r.status}`);
      const j = await r.json();
      assert.deepEqual(Object.keys(j).sort(), ['message', 'type']);
      assert.equal(j.message, 'not found');
    }
    assert.equal((await get(pixel.replace('/t/o/', '/t/c/'))).status, 404, 'an open token is no click link');
    assert.equal((await get(click.replace('/t/c/', '/t/o/'))).status, 404, 'a click token is no pixel');
    assert.equal(ok(await api(srv, 'GET', `/messages/${id}`)).status, 'SENT', 'nothing recorded for forged tokens');

    const o = await get(pixel);
    assert.equal(o.status, 200);
    assert.equal(o.headers.get('content-type'), 'image/gif');
    assert.equal(Buffer.from(await o.arrayBuffer()).subarray(0, 6).toString(), 'GIF89a');
    let m = ok(await api(srv, 'GET', `/messages/${id}`));
    assert.equal(m.status, 'OPENED');
    assert.equal(typeof m.opened, 'number');

    const c = await get(`${click}?url=https://evil.test/&next=https://evil.test/`);
    assert.equal(c.status, 302);
    assert.equal(c.headers.get('location'), LINK, 'the redirect goes to the signed link only');
    m = ok(await api(srv, 'GET', `/messages/${id}`));
    assert.equal(m.status, 'CLICKED');
    assert.equal(typeof m.clicked, 'number');

    assert.equal((await get(pixel)).status, 200);
    assert.equal(ok(await api(srv, 'GET', `/messages/${id}`)).status, 'CLICKED', 'a later open does not move it back');
    const h = ok(await api(srv, 'GET', `/messages/${id}/history`)).results;
    const clicked = h.filter((e) => e.type === 'CLICKED');
    assert.equal(clicked.length, 1);
    assert.equal(clicked[0].link, LINK);
    assert.equal(h.filter((e) => e.type === 'OPENED').length, 1, 'the first open is logged');
  });
});
