// egress.test.mjs: the egress guard. Webhook targets (the provider's URL and a
// recipient's own webhook) and automation fetch-data steps refuse loopback, private,
// link-local and other non-public addresses unless --egress-allow (HERALD_EGRESS_ALLOW)
// lists them: the delivery or step fails permanently at once, with the address and the
// flag named, and the target receives nothing. With the allowlist the same sends are
// delivered. Redirects are not followed, so an allowed host cannot bounce a request to a
// refused address. Every server but the ones marked runs with the harness's default
// allowlist off (egressAllow: null).

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { herald as heraldCli, LOOPBACK_ALLOW, makeTempDir, sleep, startServer, waitFor, scaled } from './lib/server.mjs';
import { closeAfterAll } from './lib/cleanup.mjs';
import { startHttpSink } from './lib/sink.mjs';

const T = { timeout: scaled(60000) };
const RETRY_ARGS = ['--retry-base-ms', '200'];
const PENDING = new Set(['ENQUEUED', 'DELAYED', 'ROUTED']);
const FINAL_RUN = new Set(['COMPLETED', 'CANCELED', 'FAILED']);
const HINT = 'refused (allow it with --egress-allow)';

const closers = closeAfterAll();

async function sink(opts) {
  const s = await startHttpSink(opts);
  closers.push(() => s.close());
  return s;
}

const api = (srv, method, path, json) => srv.request(method, path, { auth: 'admin', json });

function ok(r, status = 200) {
  assert.equal(r.status, status, `expected ${status}, got ${r.status}: ${r.body}`);
  return r.json;
}

async function send(srv, message) {
  return ok(await api(srv, 'POST', '/send', { message }), 202).requestId;
}

async function final(srv, id) {
  const m = await waitFor(
    async () => {
      const r = await api(srv, 'GET', `/messages/${id}`);
      return r.status === 200 && !PENDING.has(r.json.status) && r.json;
    },
    { timeout: 15000, what: `message ${id} to reach a final status` },
  );
  const h = ok(await api(srv, 'GET', `/messages/${id}/history`)).results;
  return { m, h, why: `message: ${JSON.stringify(m)}\nhistory: ${JSON.stringify(h)}` };
}

/** Sends to a recipient webhook (or the provider's URL when url is undefined) and
 *  asserts the message fails at once, permanently, with `re` in its error. */
async function expectRefused(srv, url, re) {
  const to = url === undefined ? { user_id: 'u1' } : { webhook: { url } };
  const id = await send(srv, { to, content: { title: 'T', body: 'B' }, routing: { method: 'single', channels: ['webhook'] } });
  const { m, h, why } = await final(srv, id);
  assert.equal(m.status, 'UNDELIVERABLE', why);
  assert.ok(!h.some((e) => e.type === 'RETRYING'), `no retry: ${why}`);
  const errs = h.map((e) => e.error_message).filter(Boolean);
  assert.ok(errs.some((e) => re.test(e) && e.includes(HINT)), `an error matching ${re} and naming the flag: ${why}`);
  return { m, h };
}

async function expectSent(srv, url) {
  const to = url === undefined ? { user_id: 'u1' } : { webhook: { url } };
  const id = await send(srv, { to, content: { title: 'T', body: 'B' }, routing: { method: 'single', channels: ['webhook'] } });
  const { m, why } = await final(srv, id);
  assert.equal(m.status, 'SENT', why);
}

async function fetchRun(srv, url) {
  const r = ok(await api(srv, 'POST', '/automations/invoke', { automation: { steps: [{ action: 'fetch-data', webhook: { url } }] } }));
  return waitFor(
    async () => {
      const run = ok(await api(srv, 'GET', `/automations/runs/${r.runId}`));
      return FINAL_RUN.has(run.status) && run;
    },
    { timeout: 15000, what: `run ${r.runId} to end` },
  );
}

describe('without an allowlist', () => {
  let srv;
  let v4;
  let v6;

  test('start a server without --egress-allow; the log says so', T, async (t) => {
    srv = await startServer({ name: 'egress-none', egressAllow: null, args: RETRY_ARGS });
    v4 = await sink();
    v6 = await sink({ host: '::1' });
    await srv.waitForLog(/server\.egress .*blocks=0/);
    ok(await api(srv, 'POST', '/providers', { provider: 'webhook', settings: { url: v4.url } }));
  });

  test('the provider URL on 127.0.0.1 is refused permanently, nothing reaches the sink', T, async () => {
    await expectRefused(srv, undefined, /^webhook target 127\.0\.0\.1 is a loopback address; refused/);
  });

  test('recipient webhooks: localhost, [::1], 169.254.169.254, 10.0.0.1, 100.64.0.1 and an IPv4-mapped loopback are refused', T, async () => {
    await expectRefused(srv, `http://localhost:${v4.port}/hook`, /webhook target (127\.0\.0\.1|::1) is a loopback address/);
    await expectRefused(srv, v6.url, /webhook target ::1 is a loopback address/);
    await expectRefused(srv, 'http://169.254.169.254/latest/meta-data/', /webhook target 169\.254\.169\.254 is a link-local address/);
    await expectRefused(srv, 'http://10.0.0.1/hook', /webhook target 10\.0\.0\.1 is a private address/);
    await expectRefused(srv, 'http://100.64.0.1/hook', /webhook target 100\.64\.0\.1 is a shared \(CGNAT\) address/);
    await expectRefused(srv, `http://[::ffff:127.0.0.1]:${v4.port}/hook`, /webhook target 127\.0\.0\.1 is a loopback address/);
    await expectRefused(srv, `http://2130706433:${v4.port}/hook`, /webhook target 127\.0\.0\.1 is a loopback address/);
    await sleep(300);
    assert.equal(v4.requests.length, 0, 'nothing reached the IPv4 sink');
    assert.equal(v6.requests.length, 0, 'nothing reached the IPv6 sink');
  });

  test('fetch-data to loopback fails the run with a clear error, no retry', T, async () => {
    const run = await fetchRun(srv, `${v4.url}?token=query-secret-1`);
    assert.equal(run.status, 'FAILED', JSON.stringify(run));
    assert.match(run.error, /^fetch-data target 127\.0\.0\.1 is a loopback address; refused \(allow it with --egress-allow\)$/, JSON.stringify(run));
    assert.equal(run.steps[0].status, 'failed');
    const run6 = await fetchRun(srv, v6.url);
    assert.equal(run6.status, 'FAILED', JSON.stringify(run6));
    assert.match(run6.error, /fetch-data target ::1 is a loopback address/);
    await sleep(300);
    assert.equal(v4.requests.length + v6.requests.length, 0, 'nothing reached the sinks');
  });
});

describe('with the loopback allowlist (the harness default)', () => {
  let srv;
  let v4;
  let v6;

  test('the same webhook sends and fetch-data are delivered', T, async () => {
    srv = await startServer({ name: 'egress-loopback', args: RETRY_ARGS });
    await srv.waitForLog(/server\.egress .*blocks=2/);
    v4 = await sink({ fallback: { status: 200, json: { fetched: true } } });
    v6 = await sink({ host: '::1' });
    ok(await api(srv, 'POST', '/providers', { provider: 'webhook', settings: { url: v4.url } }));
    await expectSent(srv, undefined);
    await expectSent(srv, `http://localhost:${v4.port}/hook`);
    await expectSent(srv, v6.url);
    assert.equal(v4.requests.length, 2);
    assert.equal(v6.requests.length, 1);
    const run = await fetchRun(srv, v4.url);
    assert.equal(run.status, 'COMPLETED', JSON.stringify(run));
    assert.deepEqual(run.context.data, { fetched: true });
  });

  test('addresses outside the allowlist stay refused', T, async () => {
    await expectRefused(srv, 'http://169.254.169.254/latest/meta-data/', /link-local/);
    await expectRefused(srv, 'http://10.0.0.1/hook', /private/);
  });

  test('HERALD_EGRESS_ALLOW works like the flag', T, async () => {
    const e = await startServer({ name: 'egress-env', via: 'env', args: RETRY_ARGS });
    await e.waitForLog(/server\.egress .*blocks=2/);
    ok(await api(e, 'POST', '/providers', { provider: 'webhook', settings: { url: v4.url } }));
    await expectSent(e, undefined);
  });
});

describe('redirects and narrow allowlists', () => {
  test('an allowed host redirecting to a refused address: not followed, the target gets nothing', T, async () => {
    // only 127.0.0.1 is allowed; 127.0.0.2 (also loopback) is not
    const srv = await startServer({ name: 'egress-redirect', egressAllow: '127.0.0.1/32', args: RETRY_ARGS });
    const target = await sink({ host: '127.0.0.2' });
    const bouncer = await sink({ fallback: { status: 302, headers: { Location: target.url }, body: '' } });
    ok(await api(srv, 'POST', '/providers', { provider: 'webhook', settings: { url: bouncer.url } }));
    const id = await send(srv, { to: { user_id: 'u1' }, content: { title: 'T', body: 'B' }, routing: { method: 'single', channels: ['webhook'] } });
    const { m, why } = await final(srv, id);
    assert.equal(m.status, 'UNDELIVERABLE', why);
    assert.equal(bouncer.requests.length, 1, 'the allowed host was asked once');
    const run = await fetchRun(srv, bouncer.url);
    assert.equal(run.status, 'FAILED', JSON.stringify(run));
    assert.match(run.error, /fetch-data: the server answered 302/);
    // and the target itself is refused directly
    await expectRefused(srv, target.url, /webhook target 127\.0\.0\.2 is a loopback address/);
    await sleep(300);
    assert.equal(target.requests.length, 0, 'the redirect target received nothing');
  });

  test('a bad --egress-allow or HERALD_EGRESS_ALLOW stops the start with exit 2', T, async () => {
    const dir = makeTempDir();
    const a = heraldCli(['serve', '--listen', '127.0.0.1:0', '--egress-allow', '127.0.0.0/8,localhost'], { dir });
    assert.equal(a.status, 2, a.stderr);
    assert.match(a.stderr, /"localhost" in the egress allowlist is not an address or CIDR block/);
    const b = heraldCli(['serve', '--listen', '127.0.0.1:0'], { dir, env: { HERALD_EGRESS_ALLOW: '10.0.0.0/33' } });
    assert.equal(b.status, 2, b.stderr);
    assert.match(b.stderr, /HERALD_EGRESS_ALLOW/);
    assert.ok(LOOPBACK_ALLOW.includes('::1/128'));
  });
});
