// diskfull.test.mjs: the embedded SQLite store on a disk that fills up. The store lives on
// a 64 MiB tmpfs of its own; while events (Segment /v1/batch -> an automation -> webhook
// sink) and /send requests keep coming, a ballast file fills the tmpfs until ENOSPC.
// Writes must then be answered 503 {"code": "store_full"} with Retry-After (no other 5xx),
// reads keep working, /readyz says not ready, the server stays up; once the ballast is
// removed, writes succeed again without a restart, and everything acknowledged before,
// during and after is delivered exactly once. After a clean stop, `sqlite3 DB 'PRAGMA
// integrity_check'` says ok and the rows match what was acknowledged.
//
// Needs root for `mount -t tmpfs` (the e2e suites run as root); without it, or on
// PostgreSQL (whose disk is the database server's), the test is skipped with the reason.
import test from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

import { startServer, makeTempDir, isPostgres, waitFor, sleep, assertNoSanitizerReports, scaled } from './lib/server.mjs';
import { startHttpSink } from './lib/sink.mjs';
import { basic } from './lib/ingest.mjs';

const EVENT = 'Disk Event';
const PER_BATCH = 5;

function tryMount(dir) {
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64m,mode=0700', 'tmpfs', dir], { stdio: 'pipe' });
    return null;
  } catch (e) {
    return String(e.stderr || e.message).trim();
  }
}

function umount(dir) {
  for (const args of [[dir], ['-l', dir]]) {
    try {
      execFileSync('umount', args, { stdio: 'pipe' });
      return;
    } catch {
      /* busy: lazy unmount next */
    }
  }
}

function sqlite3(db, sql) {
  return execFileSync('sqlite3', [db, sql], { encoding: 'utf8' }).trim();
}

/* fill: write the ballast until the filesystem refuses (ENOSPC); returns bytes written */
function fill(file) {
  const fd = fs.openSync(file, 'a');
  let n = 0;
  try {
    for (const size of [1 << 20, 4096, 512]) {
      const buf = Buffer.alloc(size, 0x5a);
      for (;;) {
        try {
          n += fs.writeSync(fd, buf);
        } catch (e) {
          if (e.code !== 'ENOSPC') throw e;
          break;
        }
      }
    }
  } finally {
    fs.closeSync(fd);
  }
  return n;
}

const skip = isPostgres
  ? 'PostgreSQL store: its disk is the database server\'s, not herald\'s (a full disk there maps to 503 store_full through the same path)'
  : !fs.existsSync('/usr/bin/sqlite3') && !fs.existsSync('/bin/sqlite3')
    ? 'the sqlite3 CLI is missing (scripts/deps.sh test installs it)'
    : false;
if (skip) console.log(`# diskfull: skipped: ${skip}`);

/* setup: a tmpfs, herald on it with a webhook sink, a template and an automation, and a
 * load generator that notes every answer. Returns null (after t.skip) without a tmpfs. */
async function setup(t, name) {
  const mnt = makeTempDir('herald-diskfull-');
  const why = tryMount(mnt);
  if (why) {
    // RLIMIT_FSIZE (prlimit) would be the other way to fill a "disk", but it kills the
    // process with SIGXFSZ instead of failing the write: not an honest stand-in
    console.log(`# diskfull: skipped: cannot mount a tmpfs (${why})`);
    t.skip(`cannot mount a tmpfs: ${why}`);
    return null;
  }
  console.log(`# diskfull: store on a 64 MiB tmpfs at ${mnt}`);
  const ballast = path.join(mnt, 'ballast');
  const ctx = { mnt, ballast };
  t.after(async () => {
    if (ctx.srv) await ctx.srv.stop();
    umount(mnt);
  });

  const sink = await startHttpSink();
  t.after(() => sink.close());
  const srv = await startServer({ t, dir: mnt, expectKeys: true, name });
  const admin = (method, p, json) => srv.request(method, p, { auth: 'admin', json });
  const ok = (r, what) => {
    assert.ok(r.status >= 200 && r.status < 300, `${what}: ${r.status} ${r.body}`);
    return r.json;
  };
  ok(await admin('POST', '/providers', { provider: 'webhook', settings: { url: sink.url } }), 'provider');
  const tpl = ok(await admin('POST', '/notifications', { notification: { name: 'Disk', content: { title: 'Disk', body: 'tag:{{data.tag}}' } } }), 'template').id;
  ok(await admin('POST', `/notifications/${tpl}/publish`, {}), 'publish');
  ok(await admin('PUT', '/automations/disk', { name: 'disk', steps: [{ action: 'send', template: tpl, recipient: 'refs.data.userId' }] }), 'automation');
  ok(await admin('POST', '/links', { event: `track/${EVENT}`, automation_id: 'disk' }), 'link');

  // every write answer, and the tags acknowledged (each must reach the sink once)
  const statuses = new Map();
  const acked = new Set();
  const bad = [];
  let fullSeen = 0;
  const note = (r, what) => {
    statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
    if (r.status === 503) {
      if (r.json?.code === 'store_full') fullSeen++;
      if (r.json?.code !== 'store_full' || !(Number(r.headers.get('retry-after')) >= 1) ||
          !/disk is full/.test(r.json?.message ?? ''))
        bad.push(`${what}: 503 without the store_full error: ${r.headers.get('retry-after')} ${r.body}`);
    } else if (r.status >= 500) {
      bad.push(`${what}: ${r.status} ${r.body}`);
    }
  };
  let seq = 0;
  const batch = async () => {
    const tags = Array.from({ length: PER_BATCH }, () => `e-${seq++}`);
    const r = await srv.request('POST', '/v1/batch', {
      auth: basic(srv.writeKey),
      json: { batch: tags.map((tag) => ({ type: 'track', event: EVENT, userId: 'u1', messageId: tag, properties: { tag } })) },
    });
    note(r, 'batch');
    if (r.status === 200) {
      assert.equal(r.json.accepted, PER_BATCH, r.body);
      for (const tag of tags) acked.add(tag);
    } else {
      assert.ok(r.status === 503 || r.status === 429, `batch: ${r.status} ${r.body}`);
    }
    return r.status;
  };
  const send = async () => {
    const tag = `s-${seq++}`;
    const r = await srv.request('POST', '/send', {
      auth: 'admin',
      json: { message: { template: tpl, to: { user_id: 'u1' }, data: { tag }, routing: { method: 'single', channels: ['webhook'] } } },
    });
    note(r, 'send');
    if (r.status === 202 || r.status === 200) acked.add(tag);
    else assert.ok(r.status === 503 || r.status === 429, `send: ${r.status} ${r.body}`);
    return r;
  };
  const load = async (rounds) => {
    for (let i = 0; i < rounds; i++) await Promise.all([batch(), batch(), send(), send()]);
  };

  const tagOf = (req) => /tag:([es]-\d+)/.exec(req.body)?.[1];
  /* delivered: every acknowledged tag reached the sink exactly once, nothing else did */
  const delivered = async () => {
    await waitFor(() => [...acked].every((tag) => sink.requests.some((q) => tagOf(q) === tag)),
      { timeout: 90000, what: `all ${acked.size} acknowledged tags delivered (got ${new Set(sink.requests.map(tagOf)).size})` });
    await sleep(500);
    const seen = new Map();
    for (const q of sink.requests) seen.set(tagOf(q), (seen.get(tagOf(q)) ?? 0) + 1);
    for (const [tag, n] of seen) {
      assert.ok(acked.has(tag), `delivered ${tag} was never acknowledged`);
      assert.equal(n, 1, `${tag} delivered ${n} times`);
    }
  };
  Object.assign(ctx, { srv, sink, tpl, statuses, acked, bad, load, delivered, fullSeen: () => fullSeen });
  return ctx;
}

/* fillUntilRefused: ballast until ENOSPC, then load until store_full was answered n times
 * and at least ms have passed */
async function fillUntilRefused(c, n = 8, ms = 3000) {
  const filled = fill(c.ballast);
  console.log(`# diskfull: ballast ${Math.round(filled / 1048576)} MiB; df: ${execFileSync('df', ['-k', c.mnt], { encoding: 'utf8' }).split('\n')[1]}`);
  const t0 = Date.now();
  while ((c.fullSeen() < n || Date.now() - t0 < ms) && Date.now() - t0 < 60000) await c.load(1);
  assert.ok(c.fullSeen() >= n, `503 store_full seen ${c.fullSeen()} times within 60 s; statuses ${JSON.stringify([...c.statuses])}\n${c.srv.output().slice(-3000)}`);
}

/* checkDb: integrity and row counts of the stopped server's database */
function checkDb(c) {
  const db = path.join(c.mnt, 'herald.db');
  assert.equal(sqlite3(db, 'PRAGMA integrity_check'), 'ok');
  const events = Number(sqlite3(db, `SELECT count(*) FROM events WHERE type = 'track'`));
  const eventTags = [...c.acked].filter((x) => x.startsWith('e-')).length;
  assert.equal(events, eventTags, 'one stored event per acknowledged event');
  const msgs = Number(sqlite3(db, `SELECT count(*) FROM messages WHERE status = 'SENT'`));
  assert.equal(msgs, c.acked.size, 'one SENT message per acknowledged event and send');
  assert.equal(Number(sqlite3(db, 'SELECT count(*) FROM jobs')), 0, 'no job left');
}

test('a full disk answers 503 store_full, loses nothing acknowledged, and recovers when space returns', { skip, timeout: scaled(240000) }, async (t) => {
  const c = await setup(t, 'diskfull');
  if (!c) return;
  const { srv, statuses, acked, bad, load } = c;

  // 1. before: all accepted
  await load(10);
  const before = acked.size;
  assert.equal(before, 10 * (2 * PER_BATCH + 2), `all accepted before the disk fills: ${JSON.stringify([...statuses])}`);
  const someMsg = (await srv.request('GET', '/messages?limit=1', { auth: 'admin' })).json?.results?.[0]?.id;
  assert.ok(someMsg, 'a message to read back later');

  // 2. fill the disk, keep writing until the full disk has been answered a few times
  await fillUntilRefused(c);
  await load(5); // more while full: anything answered 2xx still counts
  // some writes still fit on the full disk (WAL pages SQLite reuses); /readyz holds
  // "full" for 5 s after the last write that did not fit: ask right after one
  for (let i = 0, n = c.fullSeen(); i < 50 && c.fullSeen() === n; i++) await load(1);
  const ready = await srv.request('GET', '/readyz');
  assert.equal(ready.status, 503, `readyz while the disk is full: ${ready.status} ${ready.body}`);
  assert.equal(ready.json?.code, 'store_full', ready.body);
  const rd = await srv.request('GET', `/messages/${someMsg}`, { auth: 'admin' });
  assert.equal(rd.status, 200, `a read while full: ${rd.status} ${rd.body}`);
  assert.match((await srv.metrics()).text, /^herald_store_full 1$/m, 'herald_store_full gauge is 1');
  assert.equal(srv.run.result, undefined, 'herald still running');

  // 3. space returns: no restart, writes succeed again
  fs.unlinkSync(c.ballast);
  await waitFor(async () => (await srv.request('GET', '/readyz')).status === 200, { timeout: 15000, what: '/readyz 200 after space returned' });
  const n0 = statuses.get(503) ?? 0;
  await load(10);
  assert.equal(statuses.get(503) ?? 0, n0, `no 503 after space returned: ${JSON.stringify([...statuses])}`);
  assert.match((await srv.metrics()).text, /^herald_store_full 0$/m, 'herald_store_full gauge back to 0');
  assert.deepEqual(bad, [], 'only 2xx, 429 and 503 store_full answers');
  console.log(`# diskfull: answers ${JSON.stringify(Object.fromEntries(statuses))}; acknowledged ${acked.size} (${before} before the disk filled)`);

  // 4. everything acknowledged is delivered, exactly once; nothing dead-lettered
  await c.delivered();
  const q = await srv.request('GET', '/admin/queue', { auth: 'admin' });
  assert.deepEqual(q.json.dead, [], `no dead letters: ${q.body}`);

  // 5. stop cleanly, then the database file itself, then it opens again
  const res = await srv.stop();
  assert.equal(res.code, 0, `clean exit: ${JSON.stringify(res)}`);
  assertNoSanitizerReports(srv);
  checkDb(c);
  await srv.restart();
  assert.equal((await srv.request('GET', '/readyz')).status, 200, 'ready after a restart');
  assert.equal((await srv.request('GET', `/messages/${someMsg}`, { auth: 'admin' })).status, 200);
});

test('killed (SIGKILL) while the disk is full: the database is intact and everything acknowledged is delivered after restart', { skip, timeout: scaled(240000) }, async (t) => {
  const c = await setup(t, 'diskfull-kill');
  if (!c) return;
  const { srv, acked, bad, load } = c;
  await load(5);
  await fillUntilRefused(c, 8, 1000);
  // die in the middle of it: requests in flight, some commits failing
  const inflight = load(3).catch(() => {});
  await sleep(30);
  await srv.kill9();
  await inflight;
  fs.unlinkSync(c.ballast);
  const db = path.join(c.mnt, 'herald.db');
  assert.equal(sqlite3(db, 'PRAGMA integrity_check'), 'ok', 'intact after SIGKILL on a full disk');
  await srv.restart();
  await load(3);
  assert.deepEqual(bad, [], 'only 2xx, 429 and 503 store_full answers');
  // at least once after a kill: a provider call in flight may be repeated, but every
  // acknowledged unit arrives
  const tagOf = (req) => /tag:([es]-\d+)/.exec(req.body)?.[1];
  await waitFor(() => [...acked].every((tag) => c.sink.requests.some((q) => tagOf(q) === tag)),
    { timeout: 120000, what: `all ${acked.size} acknowledged tags delivered after the restart` });
  const res = await srv.stop();
  assert.equal(res.code, 0, `clean exit: ${JSON.stringify(res)}`);
  assertNoSanitizerReports(srv);
  assert.equal(sqlite3(db, 'PRAGMA integrity_check'), 'ok');
  console.log(`# diskfull-kill: acknowledged ${acked.size}, sink requests ${c.sink.requests.length}`);
});
