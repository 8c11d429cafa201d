// storeguard.test.mjs: the SQLite store refuses what would damage a live or a broken
// installation (issue 12, points 6 and 12):
//  - a second `herald serve` on the store of a live one exits non-zero naming the live
//    one's pid, and the live one keeps serving and delivers each message exactly once
//    (before, the second started, ended the first one's leases and delivered again);
//    `herald seed` is refused beside it too, `herald keys` runs beside it;
//  - an existing 0-byte store file is refused (before, it became a new workspace with
//    new keys); only a missing file makes a new store;
//  - a store with garbage pages in its middle is refused at start by its integrity check.
// PostgreSQL is shared by many nodes by design (no process lock) and has no store file:
// those tests are skipped there.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';

import { closeAfterAll } from './lib/cleanup.mjs';
import { dsnFor, freePort, herald, isPostgres, makeTempDir, scaled, sleep, startServer, waitFor } from './lib/server.mjs';
import { startHttpSink } from './lib/sink.mjs';

const T = { timeout: scaled(60000) };
const SKIP = isPostgres && 'PostgreSQL is shared by many herald nodes by design and has no store file';
const IN_USE = /store \S+herald\.db is in use by another herald \(pid (\d+)\)/;

const closers = closeAfterAll();

const api = (srv, method, p, json) => srv.request(method, p, { auth: 'admin', json });

/** `herald serve` on dir's store and a free port, run to its exit (bounded). */
async function serveOnce(dir, extra = []) {
  const port = await freePort();
  return herald(['serve', '--listen', `127.0.0.1:${port}`, '--store', dsnFor(dir), ...extra], { timeout: 10000 });
}

describe('one herald per SQLite store', { skip: SKIP }, () => {
  test('a second serve on a live store exits non-zero naming the live pid; the first delivers exactly once', T, async (t) => {
    const sink = await startHttpSink();
    closers.push(() => sink.close());
    const srv = await startServer({ t, args: ['--retry-base-ms', '200'] });
    assert.equal((await api(srv, 'POST', '/providers', { provider: 'webhook', settings: { url: sink.url } })).status, 200);

    const ids = [];
    for (let i = 0; i < 8; i++) {
      const r = await api(srv, 'POST', '/send', { message: { to: { user_id: `guard-${i}` }, content: { title: 'T', body: `n${i}` }, routing: { method: 'single', channels: ['webhook'] } } });
      assert.equal(r.status, 202, r.body);
      ids.push(r.json.requestId);
    }
    // while those are leased and in flight (the sink cannot answer during this
    // synchronous run), a second server on the same store must not start
    const second = await serveOnce(srv.dir);
    assert.ok(!second.timedOut, `the second serve exits at once instead of serving:\n${second.stderr}`);
    assert.notEqual(second.status, 0, 'the second serve exits non-zero');
    const m = IN_USE.exec(second.stderr);
    assert.ok(m, `the refusal names the store and the live pid:\n${second.stderr}`);
    assert.equal(Number(m[1]), srv.proc.pid);
    assert.doesNotMatch(second.stdout, /HERALD_ADMIN_KEY/);

    // admin commands: seed (bulk transactions) refused, keys (ordinary ones) allowed
    const seed = herald(['seed', '--profiles', '10'], { dir: srv.dir });
    assert.notEqual(seed.status, 0);
    assert.match(seed.stderr, IN_USE);
    const keys = herald(['keys', 'list'], { dir: srv.dir });
    assert.equal(keys.status, 0, keys.stderr);

    // the first one is unharmed: every message delivered, each once
    await sink.waitForRequests(8, { timeout: scaled(15000) });
    for (const id of ids)
      await waitFor(async () => ['SENT', 'DELIVERED'].includes((await api(srv, 'GET', `/messages/${id}`)).json?.status), { timeout: scaled(15000), what: `message ${id} sent` });
    await sleep(1500); // room for a duplicate to show (none may)
    assert.equal(sink.requests.length, 8, `8 messages, 8 webhook calls (got ${sink.requests.length})`);
    const keysSeen = new Set(sink.requests.map((r) => r.headers['idempotency-key']));
    assert.equal(keysSeen.size, 8, 'one call per message');
    assert.equal((await srv.request('GET', '/readyz')).status, 200);

    // the lock ends with the process, even a killed one
    await srv.kill9();
    await srv.restart();
    assert.equal((await srv.request('GET', '/readyz')).status, 200);
  });
});

describe('an empty or damaged store file is refused at start', { skip: SKIP }, () => {
  test('an existing 0-byte store file: start fails with a message, no new workspace', T, async () => {
    const dir = makeTempDir();
    const file = path.join(dir, 'herald.db');
    fs.writeFileSync(file, '');
    const r = await serveOnce(dir);
    assert.ok(!r.timedOut, `serve exits instead of serving:\n${r.stderr}`);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /store \S+herald\.db exists but is empty \(0 bytes\)/);
    assert.doesNotMatch(r.stdout, /HERALD_ADMIN_KEY/, 'no new keys printed');
    assert.equal(fs.statSync(file).size, 0, 'the file is left as it was');
    // a missing file is still a new store
    fs.unlinkSync(file);
    const srv = await startServer({ dir, expectKeys: true });
    assert.ok(srv.adminKey, 'a new workspace where no file existed');
    await srv.stop();
  });

  test('garbage pages in the middle of a stopped store: start refuses with a clear error', T, async () => {
    const dir = makeTempDir();
    const seed = herald(['seed', '--profiles', '5000', '--messages', '2000'], { dir, timeout: 60000 });
    assert.equal(seed.status, 0, seed.stderr);
    const file = path.join(dir, 'herald.db');
    const size = fs.statSync(file).size;
    assert.ok(size > 64 * 4096, `a store of some size (${size} bytes)`);
    const fd = fs.openSync(file, 'r+');
    const garbage = Buffer.alloc(4096, 0xa5);
    const mid = Math.floor(size / 2 / 4096);
    for (let k = 0; k < 6; k++) fs.writeSync(fd, garbage, 0, garbage.length, (mid + k * 5) * 4096);
    fs.closeSync(fd);
    const r = await serveOnce(dir);
    assert.ok(!r.timedOut, `serve exits instead of serving a damaged store:\n${r.stderr}`);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /store \S+herald\.db (failed its integrity check|is corrupt).*restore it from a backup/);
  });

  test('pages damaged under a running server: once a statement hits them /readyz answers 503 store_corrupt', T, async (t) => {
    const dir = makeTempDir();
    const seed = herald(['seed', '--profiles', '5000'], { dir, timeout: 60000 });
    assert.equal(seed.status, 0, seed.stderr);
    // a key for the API: seed writes none, serve prints a new workspace's keys
    const srv = await startServer({ t, dir, expectKeys: true });
    assert.equal((await srv.request('GET', '/readyz')).status, 200);
    const file = path.join(dir, 'herald.db');
    const pages = Math.floor(fs.statSync(file).size / 4096);
    const fd = fs.openSync(file, 'r+');
    const garbage = Buffer.alloc(4096, 0xa5);
    for (let p = Math.floor(pages * 0.3); p < Math.floor(pages * 0.7); p += 3) fs.writeSync(fd, garbage, 0, garbage.length, p * 4096);
    fs.closeSync(fd);
    let failed;
    for (let i = 0; i < 5000 && !failed; i += 7) {
      const r = await api(srv, 'GET', `/profiles/u${i}`);
      if (r.status >= 500) failed = r;
    }
    assert.ok(failed, 'some read hits a damaged page');
    const ready = await srv.request('GET', '/readyz');
    assert.equal(ready.status, 503, ready.body);
    assert.equal(ready.json?.code, 'store_corrupt');
    assert.equal(typeof ready.json?.message, 'string');
    assert.equal(ready.json?.type, 'api_error');
    const m = await srv.metrics();
    assert.match(m.text, /^herald_store_corrupt 1$/m);
    await srv.waitForLog(/event=store\.sqlite\.corrupt/);
  });
});
