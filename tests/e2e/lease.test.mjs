// lease.test.mjs: a live node keeps the leases of the jobs it holds (src/queue/queue.h,
// renewal). A provider that answers after three times the lease (--lease-ms 2000, the
// sink answers after 6 s; both scaled for sanitizer builds) gets each call once: without renewal the lease ran out while
// the call was in flight and another worker made the call again. /metrics counts the
// renewals. Both stores.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';

import { startServer, stopAll, waitFor, scaled } from './lib/server.mjs';
import { startHttpSink } from './lib/sink.mjs';

const LEASE_MS = scaled(2000); // a sanitizer build's stalls must not reach it
const ANSWER_MS = 3 * LEASE_MS;
const MESSAGES = 3;

let sink;
after(async () => {
  await stopAll();
  await sink?.close();
});

test('a provider call slower than the lease is made once: the lease is renewed', { timeout: scaled(60000) + 4 * ANSWER_MS }, async (t) => {
  sink = await startHttpSink({ fallback: { status: 200, json: { id: 'slow' }, delayMs: ANSWER_MS } });
  const srv = await startServer({
    t, name: 'lease-renewed',
    // after the harness's own --lease-ms (PostgreSQL): the last one counts
    args: ['--lease-ms', String(LEASE_MS), '--provider-timeout-ms', String(2 * ANSWER_MS)],
  });
  const admin = (method, path, json) => srv.request(method, path, { auth: 'admin', json });
  const p = await admin('POST', '/providers', { provider: 'webhook', settings: { url: sink.url } });
  assert.equal(p.status, 200, p.body);
  const ids = [];
  for (let i = 0; i < MESSAGES; i++) {
    const r = await admin('POST', '/send', { message: { to: { user_id: `u${i}` }, content: { title: 'T', body: `B${i}` }, routing: { method: 'single', channels: ['webhook'] } } });
    assert.equal(r.status, 202, r.body);
    ids.push(r.json.requestId);
  }
  for (const id of ids) {
    await waitFor(async () => (await admin('GET', `/messages/${id}`)).json?.status === 'SENT',
      { timeout: scaled(20000) + 2 * ANSWER_MS, what: `message ${id} SENT` });
  }
  await new Promise((r) => setTimeout(r, LEASE_MS)); // a takeover's call would show by now
  const keys = sink.requests.map((r) => r.headers['idempotency-key']);
  assert.equal(new Set(keys).size, MESSAGES, `one key per message: ${keys}`);
  assert.equal(sink.requests.length, MESSAGES, `each call made once, not again after a takeover: ${keys}`);
  const metrics = (await srv.request('GET', '/metrics', { auth: 'admin' })).body;
  const renewed = Number(/^herald_queue_lease_renewals_total\{result="renewed"\} (\d+)/m.exec(metrics)?.[1] ?? 0);
  assert.ok(renewed >= MESSAGES, `every slow call's lease renewed at least once (${renewed})`);
  assert.doesNotMatch(metrics, /herald_queue_lease_renewals_total\{result="lost"\}/);
  for (const id of ids) {
    const h = (await admin('GET', `/messages/${id}/history`)).json;
    const delivering = (h?.results ?? []).filter((e) => e.type === 'DELIVERING');
    assert.equal(delivering.length, 1, `one DELIVERING for ${id}: ${JSON.stringify(h)}`);
  }
});
