// soak.test.mjs: the short soak inside `make test`: capacity measured for 6 s, then
// 40 s at half of it, 20 s under a sanitizer (tests/e2e/lib/soak.mjs drives it; `make soak`
// is the 30-minute run). Asserts that nothing acknowledged was lost or delivered twice and that memory
// stayed flat (not under ASan or TSan: their quarantine and shadow memory dominate); latency is only reported
// (no timing asserts in `make test`).
import test from 'node:test';
import assert from 'node:assert/strict';

import { runSoak } from './lib/soak.mjs';
import { scaled } from './lib/server.mjs';

test('short soak at half capacity: nothing lost, memory flat (latency reported)', { timeout: scaled(300000) }, async (t) => {
  const r = await runSoak({ t, seconds: 40, sanitizerSeconds: 20, windowSeconds: 4, warmupSeconds: 10, capSeconds: 6, name: 'soak-short', log: (s) => console.log(`# ${s}`) });
  assert.deepEqual(r.lost, [], 'every acknowledged unit delivered');
  // a call retried after its answer was lost repeats its Idempotency-Key (redelivered,
  // reported below); a unit delivered under a second key was sent twice
  assert.deepEqual(r.duplicates, [], 'no unit delivered twice');
  assert.ok(r.redelivered <= r.timeouts, `every redelivery follows a timed-out call (${r.redelivered} redelivered, ${r.timeouts} timeouts, ${r.lostLeases} leases lost)`);
  assert.deepEqual(r.unexpected, [], 'nothing refused was delivered');
  assert.equal(r.errors, 0, `no 5xx or transport errors (statuses ${JSON.stringify(r.statuses)})`);
  assert.ok(r.acked > 0, 'load was acknowledged');
  if (r.memory.checked) assert.ok(r.memory.ok, `memory flat: ${JSON.stringify(r.memory)}`);
  else t.diagnostic(`memory not judged: ${r.memory.why}`);
  t.diagnostic(`redelivered with the same Idempotency-Key (calls retried after a lost answer): ${r.redelivered}`);
  t.diagnostic(`latency (reported only): ${JSON.stringify({ ack: r.latency.ack, delivery: r.latency.delivery })}`);
});
