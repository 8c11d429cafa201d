// multinode.test.mjs: three herald nodes on one PostgreSQL database (PostgreSQL mode
// only: HERALD_TEST_STORE=postgres). Events (/v1/batch) and sends (/send to a webhook
// sink) are spread over the three; one node is killed with kill -9 under load. Every
// event is processed exactly once (catalog counts), every message is delivered, and the
// sink sees a repeated Idempotency-Key only for attempts that were in flight on the
// killed node (at most the provider cap of it: a call's limit slot is held until its
// outcome is committed; the nodes run with --provider-concurrency WORKERS). Clients retry a request whose node died
// under them on another node, with the same messageIds / Idempotency-Key, as a real
// client would (a send whose key the dead node left pending gets 409 until the pending
// record is stale, 60 s; the client waits that out, so the test can take over a minute).

import assert from 'node:assert/strict';
import http from 'node:http';
import { test } from 'node:test';

import { catalogCounts, expectCatalog, getProfile } from './lib/ingest.mjs';
import { isPostgres, sleep, startServer, waitFor, scaled } from './lib/server.mjs';
import { closeAfterAll } from './lib/cleanup.mjs';

const WORKERS = 4; // per node (--workers)
const SENDS = 450;
const BATCHES = 45;
const BATCH_SIZE = 40;
const CONCURRENCY = 24;
const SINK_DELAY_MS = 15; // so that attempts are in flight when the node dies

const closers = closeAfterAll();

/** A webhook sink answering 200 after SINK_DELAY_MS; records each Idempotency-Key. */
async function startSink() {
  const keys = [];
  const sockets = new Set();
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      keys.push(req.headers['idempotency-key']);
      setTimeout(() => {
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.end('{"ok":true}');
      }, SINK_DELAY_MS);
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const close = () =>
    new Promise((r) => {
      for (const s of sockets) s.destroy();
      server.close(() => r());
    });
  closers.push(close);
  return { url: `http://127.0.0.1:${server.address().port}/hook`, keys };
}

/** Run the async thunks with at most n at once. */
async function pool(thunks, n) {
  let i = 0;
  const worker = async () => {
    while (i < thunks.length) {
      const k = i++;
      await thunks[k]();
    }
  };
  await Promise.all(Array.from({ length: n }, worker));
}

const skip = isPostgres ? false : 'PostgreSQL mode only (HERALD_TEST_STORE=postgres): several nodes need a shared store';
if (skip) console.log(`multinode: skipped: ${skip}`);

test('three nodes on one database, one killed with kill -9 under load: nothing lost, duplicates only from the dead node', { timeout: scaled(150000), skip }, async (t) => {
  const args = ['--workers', String(WORKERS), '--provider-concurrency', String(WORKERS), '--retry-base-ms', '200'];
  const a = await startServer({ t, name: 'node-a', args });
  const b = await startServer({ t, name: 'node-b', args, dir: a.dir, expectKeys: false });
  const c = await startServer({ t, name: 'node-c', args, dir: a.dir, expectKeys: false });
  for (const n of [b, c]) {
    n.adminKey = a.adminKey;
    n.writeKey = a.writeKey;
  }
  const nodes = [a, b, c];
  const sink = await startSink();
  const pr = await a.request('POST', '/providers', { auth: 'admin', json: { provider: 'webhook', settings: { url: sink.url } } });
  assert.equal(pr.status, 200, `POST /providers: ${pr.body}`);

  let cDead = false;
  const stats = { retried: 0, waited409: 0, byNode: [0, 0, 0] };
  // one request on node i, or (connection error, or node c gone) on the next live node
  async function onSomeNode(i, fn) {
    for (let tries = 0; tries < 6; tries++) {
      const k = (i + tries) % 3;
      if (k === 2 && cDead) continue;
      try {
        const r = await fn(nodes[k]);
        stats.byNode[k] += 1;
        return r;
      } catch (e) {
        if (k !== 2) throw e; // only the killed node may fail under us
        stats.retried += 1;
      }
    }
    throw new Error('no live node answered');
  }

  const requestIds = new Set();
  const thunks = [];
  for (let s = 0; s < SENDS; s++) {
    thunks.push(async () => {
      const post = () =>
        onSomeNode(s % 3, (n) =>
          n.request('POST', '/send', {
            auth: 'admin',
            headers: { 'Idempotency-Key': `mn-send-${s}` },
            json: { message: { to: { user_id: `mn-u${s}` }, content: { title: 'T', body: `B${s}` }, routing: { method: 'single', channels: ['webhook'] } } },
            timeout: 5000,
          }),
        );
      let r = await post();
      // a retry of a request that died with node c: its key stays pending ("still being
      // processed", 409) until the pending record is stale (60 s), then the retry takes
      // it over and finds the message the first attempt may have created
      if (r.status === 409) stats.waited409 += 1;
      for (const until = Date.now() + 75000; r.status === 409 && Date.now() < until; ) {
        await sleep(1000);
        r = await post();
      }
      assert.equal(r.status, 202, `POST /send: ${r.status} ${r.body}`);
      requestIds.add(r.json.requestId);
    });
  }
  for (let bt = 0; bt < BATCHES; bt++) {
    const batch = [];
    for (let e = 0; e < BATCH_SIZE; e++) batch.push({ type: 'track', userId: `mn-u${e}`, event: 'Multi', messageId: `mn-${bt}-${e}`, properties: { bt, e } });
    thunks.push(async () => {
      const r = await onSomeNode(bt % 3, (n) => n.request('POST', '/v1/batch', { auth: 'write', json: { batch }, timeout: 5000 }));
      assert.equal(r.status, 200, `POST /v1/batch: ${r.status} ${r.body}`);
    });
  }
  // interleave sends and batches
  const mixed = [];
  for (let i = 0, j = SENDS; i < SENDS || j < thunks.length; ) {
    for (let k = 0; k < 10 && i < SENDS; k++) mixed.push(thunks[i++]);
    if (j < thunks.length) mixed.push(thunks[j++]);
  }

  let done = 0;
  const load = pool(
    mixed.map((f) => async () => {
      await f();
      done += 1;
    }),
    CONCURRENCY,
  );
  // kill node c with most requests still to come and deliveries under way
  await waitFor(() => done >= mixed.length / 3 && sink.keys.length > 0, { timeout: 30000, what: 'a third of the requests answered' });
  cDead = true;
  const killed = await c.kill9();
  assert.equal(killed.signal, 'SIGKILL');
  const atKill = sink.keys.length;
  const doneAtKill = done;
  await load;

  assert.equal(requestIds.size, SENDS, 'one message per Idempotency-Key');
  // every event processed exactly once (clients' retries were deduplicated by messageId)
  await waitFor(async () => (await catalogCounts(a))['track/Multi'] === BATCHES * BATCH_SIZE, {
    timeout: 30000,
    what: `the catalog to count ${BATCHES * BATCH_SIZE} track/Multi`,
  });
  await sleep(500);
  assert.deepEqual(await catalogCounts(b), { 'track/Multi': BATCHES * BATCH_SIZE }, 'nothing counted twice');

  // every message delivered
  const status = new Map();
  await waitFor(
    async () => {
      for (const id of requestIds) {
        if (status.get(id) === 'SENT') continue;
        const r = await a.request('GET', `/messages/${id}`, { auth: 'admin' });
        assert.equal(r.status, 200, `GET /messages/${id}: ${r.body}`);
        assert.ok(!['UNDELIVERABLE', 'UNROUTABLE', 'CANCELED'].includes(r.json.status), `message ${id}: ${r.body}`);
        status.set(id, r.json.status);
      }
      return [...status.values()].every((s) => s === 'SENT');
    },
    { timeout: 30000, interval: 250, what: 'every message SENT' },
  );

  await sleep(500);
  const perKey = new Map();
  for (const k of sink.keys) {
    assert.ok(k, 'an Idempotency-Key on every delivery');
    perKey.set(k, (perKey.get(k) ?? 0) + 1);
  }
  assert.equal(perKey.size, SENDS, `one distinct Idempotency-Key per message (${perKey.size} for ${SENDS})`);
  const repeated = [...perKey.values()].filter((n) => n > 1);
  const extra = sink.keys.length - perKey.size;
  console.log(
    `multinode: ${SENDS} messages, ${BATCHES * BATCH_SIZE} events over 3 nodes (requests per node ${stats.byNode.join('/')}, ` +
      `${stats.retried} retried after the kill, ${stats.waited409} of them waited out a pending Idempotency-Key); killed after ${doneAtKill} of ${mixed.length} requests and ${atKill} deliveries; ` +
      `${sink.keys.length} deliveries at the sink, ${repeated.length} key(s) repeated (${extra} extra request(s))`,
  );
  assert.ok(repeated.every((n) => n === 2), `a key is repeated at most once: ${JSON.stringify(repeated)}`);
  // each repeat is visible in its message's history: the delivery was retaken after the
  // killed node's lease ran out
  for (const [k, n] of perKey) {
    if (n < 2) continue;
    const id = k.split(':')[0];
    const h = await b.request('GET', `/messages/${encodeURIComponent(id)}/history`, { auth: 'admin' });
    assert.equal(h.status, 200);
    const retaken = h.json.results.filter((e) => e.type === 'DELIVERING' && e.retaken === true && e.lease_attempt >= 2);
    assert.ok(retaken.length >= 1, `message ${id} delivered twice shows the retaken attempt in its history: ${h.body}`);
  }
  assert.ok(repeated.length <= WORKERS, `at most one repeat per call slot of the killed node (${repeated.length} > ${WORKERS})`);
});

// Counting and creating without lock waits (issue 14): every node counts an event name
// in its own catalog rows and a track of a known user locks nothing, so this checks
// what those must keep: the catalog count is exact with all nodes counting one name at
// once (and after a node restarts, when its old rows are folded into the base row), and
// users seen for the first time on all nodes at once get one profile each, holding what
// every node merged into it.
test('three nodes counting one name and creating the same profiles at once: exact counts, one merged profile each', { timeout: scaled(60000), skip }, async (t) => {
  const a = await startServer({ t, name: 'cnt-a' });
  const b = await startServer({ t, name: 'cnt-b', dir: a.dir, expectKeys: false });
  const c = await startServer({ t, name: 'cnt-c', dir: a.dir, expectKeys: false });
  const nodes = [a, b, c];
  for (const n of [b, c]) [n.adminKey, n.writeKey] = [a.adminKey, a.writeKey];
  const USERS = 20;
  const ROUNDS = 4;
  const thunks = [];
  for (let r = 0; r < ROUNDS; r++) {
    for (let u = 0; u < USERS; u++) {
      nodes.forEach((n, k) => {
        // the same fresh users from every node at once, one event per request so that
        // their jobs run side by side: identifies with a trait per node and round, tracks
        // of other fresh users, one event name counted by all
        const batch = [
          { type: 'identify', userId: `cn-i${u}`, traits: { [`n${k}r${r}`]: true }, messageId: `cn-i-${r}-${k}-${u}` },
          { type: 'track', userId: `cn-t${u}`, event: 'Counted', messageId: `cn-${r}-${k}-${u}` },
        ];
        thunks.push(async () => {
          for (const ev of batch) {
            const res = await n.request('POST', '/v1/batch', { auth: 'write', json: { batch: [ev] } });
            assert.equal(res.status, 200, `POST /v1/batch: ${res.body}`);
          }
        });
      });
    }
  }
  await pool(thunks, CONCURRENCY);
  const total = ROUNDS * nodes.length * USERS;
  await expectCatalog(a, { identify: total, 'track/Counted': total }, { timeout: scaled(20000), what: 'the catalog on node a' });
  assert.equal((await catalogCounts(c))['track/Counted'], total, 'node c reads the same count');
  const want = {};
  for (let r = 0; r < ROUNDS; r++) for (let k = 0; k < nodes.length; k++) want[`n${k}r${r}`] = true;
  for (let u = 0; u < USERS; u++) {
    const p = await getProfile(b, `cn-i${u}`);
    assert.equal(p.status, 200, `profile cn-i${u}: ${p.r.body}`);
    assert.deepEqual(p.profile, want, `profile cn-i${u} holds every node's traits`);
    assert.equal((await getProfile(a, `cn-t${u}`)).status, 200, `profile cn-t${u} created by its tracks`);
  }
  // node b restarts: its old connections' counts are folded into the base row
  await b.restart();
  await expectCatalog(b, { identify: total, 'track/Counted': total }, { timeout: scaled(10000), what: 'the catalog after node b restarted' });
});
