// concurrency.test.mjs: many clients at once. Parallel lanes, each request on a
// connection of its own half of the time (so every thread of the HTTP pool serves),
// mix ingest, sends (inline content and one shared template) to a webhook and an SMTP
// sink, ad hoc automation runs, profile writes, settings and provider edits, renders,
// reads and scrapes while the queue workers deliver; then a graceful stop
// while sends still arrive, and a restart that finishes what was accepted. The
// assertions are counts: every accepted message is delivered exactly once, nothing
// accepted is lost, the server exits 0. Under ThreadSanitizer (make VARIANT=tsan e2e)
// a race on any of these paths fails the test at stop() (tests/e2e/lib/server.mjs).

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { expectCatalog } from './lib/ingest.mjs';
import { rawRequest, startServer, waitFor, scaled } from './lib/server.mjs';
import { closeAfterAll } from './lib/cleanup.mjs';
import { startHttpSink } from './lib/sink.mjs';
import { startSmtpSink } from './lib/smtp.mjs';

const T = { timeout: scaled(60000) };
const LANES = 8;
const ROUNDS = 4;
const FINAL = new Set(['SENT', 'DELIVERED']);

const closers = closeAfterAll();

/** One request: through fetch's pool (keep-alive) or, when fresh, on a new connection
 *  closed after it (rawRequest). Resolves {status, json, body}. */
async function call(srv, method, path, { auth = 'admin', json, fresh = false, headers: extra = {} } = {}) {
  if (!fresh) {
    const r = await srv.request(method, path, { auth, json, headers: extra });
    return { status: r.status, json: r.json, body: r.body };
  }
  const headers = { ...extra };
  const a = srv.authHeader(auth);
  if (a) headers.Authorization = a;
  let body;
  if (json !== undefined) {
    body = JSON.stringify(json);
    headers['Content-Type'] = 'application/json';
  }
  const r = await rawRequest(srv.port, { method, path, headers, body, earlyMs: 0 });
  let parsed;
  try {
    parsed = r.body ? JSON.parse(r.body) : undefined;
  } catch {
    parsed = undefined;
  }
  return { status: r.status, json: parsed, body: r.body };
}

function expect(r, status, what) {
  assert.equal(r.status, status, `${what}: expected ${status}, got ${r.status}: ${r.body}`);
  return r.json;
}

async function sinks() {
  const hook = await startHttpSink();
  const smtp = await startSmtpSink();
  closers.push(() => hook.close(), () => smtp.close());
  return { hook, smtp };
}

async function providers(srv, hook, smtp) {
  const webhook = { provider: 'webhook', settings: { url: hook.url } };
  const email = {
    provider: 'smtp',
    settings: { host: '127.0.0.1', port: smtp.port, secure: 'none', from: 'noreply@herald.test' },
  };
  const wid = expect(await call(srv, 'POST', '/providers', { json: webhook }), 200, 'webhook provider').id;
  expect(await call(srv, 'POST', '/providers', { json: email }), 200, 'smtp provider');
  return { wid, webhook };
}

const webhookSend = (tag) => ({
  message: {
    to: { user_id: `cu-${tag}` },
    content: { title: `T ${tag}`, body: `mark=${tag}` },
    routing: { method: 'single', channels: ['webhook'] },
  },
});

const emailSend = (tag) => ({
  message: {
    to: { email: `c-${tag}@x.test` },
    content: { title: `S ${tag}`, body: `mark=${tag}` },
    routing: { method: 'single', channels: ['email'] },
  },
});

/** Wait until every message id is final; returns the messages. */
async function allFinal(srv, ids, what) {
  const pending = new Set(ids);
  const done = new Map();
  await waitFor(
    async () => {
      for (const id of [...pending]) {
        const r = await srv.request('GET', `/messages/${id}`, { auth: 'admin' });
        if (r.status === 200 && FINAL.has(r.json.status)) {
          done.set(id, r.json);
          pending.delete(id);
        } else if (r.status === 200 && ['UNDELIVERABLE', 'UNROUTABLE', 'CANCELED', 'FAILED'].includes(r.json.status)) {
          throw new Error(`message ${id} ended ${r.json.status}: ${JSON.stringify(r.json)}`);
        }
      }
      return pending.size === 0;
    },
    { timeout: 30000, interval: 200, what: `${what}: ${pending.size} of ${ids.length} message(s) still pending` },
  );
  return done;
}

/** Wait until every automation run is COMPLETED (any other final status fails). */
async function allCompleted(srv, runIds) {
  const pending = new Set(runIds);
  await waitFor(
    async () => {
      for (const id of [...pending]) {
        const r = await srv.request('GET', `/automations/runs/${id}`, { auth: 'admin' });
        if (r.status !== 200) continue;
        if (r.json.status === 'COMPLETED') pending.delete(id);
        else if (['CANCELED', 'FAILED'].includes(r.json.status)) throw new Error(`run ${id} ended ${r.json.status}: ${r.body}`);
      }
      return pending.size === 0;
    },
    { timeout: 30000, interval: 200, what: `${pending.size} of ${runIds.length} automation run(s) to complete` },
  );
}

/** The marks (mark=<tag>) seen at the sinks, with how often each arrived. */
function marks(hook, smtp) {
  const seen = new Map();
  const add = (text) => {
    const m = /mark=([a-z0-9-]+)/.exec(text ?? '');
    if (m) seen.set(m[1], (seen.get(m[1]) ?? 0) + 1);
  };
  for (const r of hook.requests) add(r.body);
  for (const m of smtp.mails) add(m.parsed?.text);
  return seen;
}

describe('many clients at once', () => {
  test('mixed load on every HTTP thread while workers deliver: each accepted send delivered once', T, async (t) => {
    const { hook, smtp } = await sinks();
    const srv = await startServer({ t, name: 'concurrency-mixed', args: ['--retry-base-ms', '200'] });
    const { wid, webhook } = await providers(srv, hook, smtp);
    const tpl = { notification: { name: 'Shared', content: { title: 'Shared {{data.tag}}', body: 'mark={{data.tag}}' } }, state: 'PUBLISHED' };
    const tplId = expect(await call(srv, 'POST', '/notifications', { json: tpl }), 200, 'template').id;
    const sent = [];
    const tags = [];
    const runs = [];

    const lane = async (l) => {
      for (let i = 0; i < ROUNDS; i++) {
        const tag = `l${l}-r${i}`;
        const fresh = (l + i) % 2 === 0;
        const ops = [
          async () => {
            sent.push(expect(await call(srv, 'POST', '/send', { json: webhookSend(`w-${tag}`), fresh }), 202, 'send webhook').requestId);
            tags.push(`w-${tag}`);
          },
          async () => {
            sent.push(expect(await call(srv, 'POST', '/send', { json: emailSend(`e-${tag}`), fresh }), 202, 'send email').requestId);
            tags.push(`e-${tag}`);
          },
          async () => {
            const body = { message: { to: { user_id: `cu-t-${tag}` }, template: tplId, data: { tag: `t-${tag}` }, routing: { method: 'single', channels: ['webhook'] } } };
            sent.push(expect(await call(srv, 'POST', '/send', { json: body, fresh }), 202, 'send template').requestId);
            tags.push(`t-${tag}`);
          },
          async () => {
            const body = { automation: { steps: [{ action: 'send', template: tplId }] }, recipient: `cu-a-${tag}`, data: { tag: `a-${tag}` } };
            runs.push(expect(await call(srv, 'POST', '/automations/invoke', { json: body, fresh }), 200, 'automation invoke').runId);
            tags.push(`a-${tag}`);
          },
          async () => {
            // one new event per lane and round, and one messageId every lane sends at once
            const ev = { type: 'track', event: 'Concurrent', userId: `cu-${tag}`, messageId: `m-${tag}`, properties: { n: i } };
            const dup = { type: 'track', event: 'Concurrent', userId: 'cu-dup', messageId: `m-dup-r${i}`, properties: { n: i } };
            expect(await call(srv, 'POST', '/v1/batch', { auth: 'write', json: { batch: [ev, dup] }, fresh }), 200, 'batch');
          },
          async () => {
            expect(await call(srv, 'PUT', `/profiles/cu-${tag}`, { json: { profile: { email: `p-${tag}@x.test`, n: i } }, fresh }), 200, 'profile put');
            expect(await call(srv, 'GET', `/profiles/cu-${tag}`, { fresh }), 200, 'profile get');
          },
          async () => {
            expect(await call(srv, 'PUT', '/settings', { json: { segment_shared_secret: l % 2 ? null : `s-${tag}` }, fresh }), 200, 'settings');
          },
          async () => {
            expect(await call(srv, 'PUT', `/providers/${wid}`, { json: webhook, fresh }), 200, 'provider put');
          },
          async () => {
            const content = { version: '2022-01-01', elements: [{ type: 'text', content: 'Hi {{data.x}}' }] };
            const body = { channel: l % 2 ? 'email' : 'sms', content, data: { x: tag } };
            expect(await call(srv, 'POST', '/render', { json: body, fresh }), 200, 'render');
          },
          async () => {
            expect(await call(srv, 'POST', '/admin/jobs/ping', { json: {}, fresh }), 202, 'ping');
          },
          async () => {
            for (const p of ['/metrics', '/readyz', '/healthz'])
              expect(await call(srv, 'GET', p, { auth: 'none', fresh }), 200, p);
            for (const p of ['/admin/queue', '/messages?limit=5', '/catalog/events', '/providers'])
              expect(await call(srv, 'GET', p, { fresh }), 200, p);
          },
        ];
        await Promise.all(ops.map((op) => op()));
      }
    };
    await Promise.all(Array.from({ length: LANES }, (_, l) => lane(l)));

    assert.equal(sent.length, LANES * ROUNDS * 3);
    await allFinal(srv, sent, 'mixed load');
    await allCompleted(srv, runs);
    // a run completes once its send is accepted: wait for those messages at the sinks too
    await waitFor(
      () => {
        const m = marks(hook, smtp);
        return tags.every((x) => m.has(x));
      },
      { timeout: 15000, what: 'every tag at a sink' },
    );
    const seen = marks(hook, smtp);
    for (const tag of tags) assert.equal(seen.get(tag), 1, `${tag} delivered once (seen ${seen.get(tag) ?? 0} times)`);
    await expectCatalog(srv, { 'track/Concurrent': LANES * ROUNDS + ROUNDS }, { timeout: 15000, what: 'the catalog (duplicates counted once)' });
    const { code } = await srv.stop();
    assert.equal(code, 0, srv.output());
  });

  test('one Idempotency-Key from many clients at once: one message, one delivery', T, async (t) => {
    const { hook, smtp } = await sinks();
    const srv = await startServer({ t, name: 'concurrency-idem', args: ['--retry-base-ms', '200'] });
    await providers(srv, hook, smtp);
    const ids = new Set();
    for (let round = 0; round < 3; round++) {
      const tag = `idem-${round}`;
      const headers = { 'Idempotency-Key': `key-${tag}` };
      const rs = await Promise.all(
        Array.from({ length: LANES }, (_, l) => call(srv, 'POST', '/send', { json: webhookSend(tag), headers, fresh: l % 2 === 0 })),
      );
      // the first request creates the message; the others replay its answer, or get 409
      // while it is still being processed
      const got = rs.filter((r) => r.status === 202).map((r) => r.json.requestId);
      for (const r of rs) assert.ok(r.status === 202 || r.status === 409, `${tag}: ${r.status} ${r.body}`);
      assert.ok(got.length >= 1, `${tag}: at least one 202`);
      assert.equal(new Set(got).size, 1, `${tag}: one requestId for one key: ${JSON.stringify(got)}`);
      ids.add(got[0]);
    }
    await allFinal(srv, [...ids], 'idempotent sends');
    const seen = marks(hook, smtp);
    for (let round = 0; round < 3; round++) assert.equal(seen.get(`idem-${round}`), 1, `idem-${round} delivered once`);
    assert.equal(hook.requests.length, 3, 'three deliveries in all');
    const { code } = await srv.stop();
    assert.equal(code, 0, srv.output());
  });

  test('SIGTERM while sends arrive: exit 0, and after a restart every accepted send is delivered once', T, async (t) => {
    const { hook, smtp } = await sinks();
    const srv = await startServer({ t, name: 'concurrency-stop', args: ['--retry-base-ms', '200'] });
    await providers(srv, hook, smtp);
    const accepted = [];
    const tags = [];
    let stopping = false;

    const lane = async (l) => {
      for (let i = 0; !stopping && i < 200; i++) {
        const tag = `s${l}-${i}`;
        const body = l % 2 ? emailSend(tag) : webhookSend(tag);
        let r;
        try {
          r = await call(srv, 'POST', '/send', { json: body, fresh: true });
        } catch {
          return; // the server closed the connection or was gone: the lane ends
        }
        if (r.status === 202) {
          accepted.push(r.json.requestId);
          tags.push(tag);
        } else if (r.status !== 503) {
          assert.fail(`send during the stop: ${r.status} ${r.body}`);
        }
      }
    };
    const lanes = Array.from({ length: LANES }, (_, l) => lane(l));
    await waitFor(() => accepted.length >= LANES * 3, { timeout: 15000, what: 'some sends accepted' });
    const { code } = await srv.stop();
    stopping = true;
    await Promise.all(lanes);
    assert.equal(code, 0, srv.output());
    t.diagnostic(`${accepted.length} sends accepted before the stop`);

    await srv.restart();
    await allFinal(srv, accepted, 'after the restart');
    const seen = marks(hook, smtp);
    for (const tag of tags) assert.equal(seen.get(tag), 1, `${tag} delivered once (seen ${seen.get(tag) ?? 0} times)`);
    const after2 = await srv.stop();
    assert.equal(after2.code, 0, srv.output());
  });
});
