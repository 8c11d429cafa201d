// backpressure.test.mjs: overload is answered, never dropped. With a write queue of one
// (--max-write-queue 1) and many concurrent batches, some requests get 429 with
// Retry-After; every batch answered 200 is stored and processed in full, and nothing of
// a refused batch is stored.
import test from 'node:test';
import assert from 'node:assert/strict';
import { startServer, waitFor } from './lib/server.mjs';
import { basic, catalogCounts } from './lib/ingest.mjs';

test('a full write queue answers 429 with Retry-After and loses nothing it accepted', async (t) => {
  // on PostgreSQL, one pooled connection: writers wait for it, so the queue of one fills
  // (with 8, a slow build such as TSan could drain the waves without ever queueing two)
  const srv = await startServer({ t, args: ['--max-write-queue', '1'], env: { HERALD_PG_POOL: '1' } });
  const auth = basic(srv.writeKey);
  const N = 96, PER = 10;
  let seq = 0;
  const send = async (i) => {
    const batch = [];
    for (let k = 0; k < PER; k++) {
      batch.push({ type: 'track', userId: `u${i}`, event: `Load ${i}`, messageId: `m-${i}-${k}-${seq++}`,
                   properties: { k } });
    }
    const res = await fetch(`${srv.url}/v1/batch`, {
      method: 'POST', headers: { Authorization: auth, 'Content-Type': 'application/json' },
      body: JSON.stringify({ batch }),
    });
    const body = await res.json();
    return { i, status: res.status, retryAfter: res.headers.get('retry-after'), body };
  };
  // several waves, all at once, until the queue has been seen full
  let results = [];
  for (let wave = 0; wave < 10 && !results.some((r) => r.status === 429); wave++) {
    results = results.concat(await Promise.all(Array.from({ length: N }, (_, j) => send(wave * N + j))));
  }
  const refused = results.filter((r) => r.status === 429);
  const accepted = results.filter((r) => r.status === 200);
  assert.equal(accepted.length + refused.length, results.length,
               `only 200 and 429 expected, got ${[...new Set(results.map((r) => r.status))]}`);
  assert.ok(refused.length > 0, 'at least one request met the full queue');
  for (const r of refused) {
    assert.ok(Number(r.retryAfter) >= 1, 'a 429 carries Retry-After');
    assert.equal(typeof r.body.message, 'string');
    assert.equal(r.body.type, 'rate_limit_error');
  }
  for (const r of accepted) assert.equal(r.body.accepted, PER);
  // each batch has its own event name: accepted ones are counted in full, refused ones not at all
  await waitFor(async () => {
    const counts = await catalogCounts(srv);
    return accepted.every((r) => counts[`track/Load ${r.i}`] === PER);
  }, { timeout: 30000, what: 'every accepted batch processed' });
  const counts = await catalogCounts(srv);
  for (const r of refused) assert.equal(counts[`track/Load ${r.i}`], undefined, `refused batch ${r.i} stored nothing`);
  t.diagnostic(`accepted ${accepted.length}, refused ${refused.length} with 429`);
});
