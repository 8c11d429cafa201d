// bootstrap.test.mjs: three `herald serve` started at the same moment on one empty
// store: exactly one of them creates the workspace and prints a key pair, so the store
// holds exactly one admin and one write key, and those keys work on every node. On
// PostgreSQL (the shared store of a multi-node install) and on SQLite, where only one
// process may serve a store file: there the others must exit naming the live one
// (storeguard.test.mjs) and the one that starts bootstraps. A few rounds, each on a
// fresh store, so a check-then-insert race shows.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { herald, makeTempDir, scaled, startServer, STORE } from './lib/server.mjs';

const ROUNDS = 8;
const NODES = 3;

/** The key lines `herald keys list` prints (header dropped). */
function keyRows(dir) {
  const l = herald(['keys', 'list'], { dir });
  assert.equal(l.status, 0, `keys list: ${l.stderr}`);
  return l.stdout.split('\n').slice(1).filter((s) => s.trim() !== '');
}

test(`${NODES} nodes started at once on one empty ${STORE} store: exactly one bootstraps`, { timeout: scaled(120000) }, async (t) => {
  for (let round = 1; round <= ROUNDS; round++) {
    const dir = makeTempDir();
    const settled = await Promise.allSettled(
      Array.from({ length: NODES }, (_, i) => startServer({ t, name: `round${round}-node${i}`, dir, expectKeys: false })),
    );
    for (const s of settled.filter((x) => x.status === 'rejected')) {
      assert.equal(STORE, 'sqlite', `round ${round}: every node starts on a shared PostgreSQL store:\n${s.reason}`);
      assert.match(String(s.reason), /is in use by another herald \(pid \d+\)/, `round ${round}: a refused node names the live one`);
    }
    const nodes = settled.filter((x) => x.status === 'fulfilled').map((x) => x.value);
    if (STORE === 'sqlite') assert.equal(nodes.length, 1, `round ${round}: exactly one node serves a SQLite store`);
    else assert.equal(nodes.length, NODES, `round ${round}: every node serves`);
    const results = await Promise.all(nodes.map((n) => n.stop()));
    for (const [i, r] of results.entries()) assert.equal(r.code, 0, `round ${round} node ${i} exit:\n${nodes[i].output()}`);

    const printers = nodes.filter((n) => n.stdout.some((l) => l.startsWith('HERALD_ADMIN_KEY=')));
    assert.equal(printers.length, 1, `round ${round}: exactly one node printed keys:\n${nodes.map((n) => n.output()).join('\n')}`);
    const p = printers[0];
    assert.equal(p.stdout.filter((l) => /^HERALD_(ADMIN|WRITE)_KEY=/.test(l)).length, 2, `the winner printed one pair:\n${p.output()}`);

    const rows = keyRows(dir);
    assert.equal(rows.length, 2, `round ${round}: two keys stored:\n${rows.join('\n')}`);
    assert.deepEqual(rows.map((r) => r.split(/\s+/)[1]).sort(), ['admin', 'write'], rows.join('\n'));

    // the printed admin key is the stored one: it works on a node started afterwards
    const after = await startServer({ t, name: `round${round}-after`, dir, expectKeys: false });
    const r = await fetch(`${after.url}/admin/queue`, { headers: { Authorization: `Bearer ${p.adminKey}` } });
    await r.arrayBuffer();
    assert.equal(r.status, 200, 'the printed admin key is accepted');
    assert.ok(!after.stdout.some((l) => l.startsWith('HERALD_')), 'a later start prints nothing');
    await after.stop();
  }
});
