// foundation.test.mjs: the server's base behaviour, black-box: CLI and configuration,
// first-start keys, logs and request ids, health, metrics, the admin queue routes,
// JSON errors, the keys CLI, graceful shutdown and job durability across kill -9.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { freePort, herald, isPostgres, makeTempDir, metricValue, rawRequest, sanitized, sleep, startServer, stopAll, waitFor, scaled } from './lib/server.mjs';

after(stopAll);

const T = { timeout: scaled(60000) };

const SERVE_FLAGS = ['--listen', '--store', '--workers', '--log-level'];
const SERVE_ENV = ['HERALD_LISTEN', 'HERALD_STORE', 'HERALD_WORKERS', 'HERALD_LOG_LEVEL'];

function escapeRe(s) {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** A log line's value for key (key=value or key="quoted"), or undefined. */
function logField(line, key) {
  const m = new RegExp(`(?:^| )${escapeRe(key)}=("(?:[^"\\\\]|\\\\.)*"|\\S*)`).exec(line);
  if (!m) return undefined;
  return m[1].startsWith('"') ? m[1].slice(1, -1) : m[1];
}

function assertJsonError(r, status, type) {
  assert.equal(r.status, status, `expected ${status}, got ${r.status}: ${r.body}`);
  assert.match(r.headers.get('content-type') ?? '', /^application\/json/, 'error bodies are JSON');
  assert.ok(r.json && typeof r.json === 'object', `error body is a JSON object: ${r.body}`);
  assert.equal(typeof r.json.message, 'string', `error has a message: ${r.body}`);
  assert.ok(r.json.message.length > 0, 'error message is not empty');
  assert.equal(typeof r.json.type, 'string', `error has a type: ${r.body}`);
  if (type) assert.equal(r.json.type, type, `error type for ${status}: ${r.body}`);
}

/** A JSON body of exactly n bytes: {"delay_ms":0,"pad":"xxx..."}. */
function jsonOfSize(n) {
  const head = '{"delay_ms":0,"pad":"';
  const tail = '"}';
  return head + 'x'.repeat(n - head.length - tail.length) + tail;
}

function basic(key) {
  return `Basic ${Buffer.from(`${key}:`).toString('base64')}`;
}

/* ---- CLI ------------------------------------------------------------------------ */

/** threadSwitches: herald's named threads (h-*, MHD-*) of process pid: tid -> {name, n,
 * cpu}, n its context switches so far (voluntary + not, /proc/<pid>/task/<tid>/status),
 * cpu its user + system clock ticks (/proc/<pid>/task/<tid>/stat). */
function threadSwitches(pid) {
  const out = new Map();
  for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
    try {
      const name = fs.readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim();
      if (!/^(h-|MHD)/.test(name)) continue;
      const st = fs.readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8');
      const n = Number(/^voluntary_ctxt_switches:\s+(\d+)/m.exec(st)[1]) +
        Number(/^nonvoluntary_ctxt_switches:\s+(\d+)/m.exec(st)[1]);
      const stat = fs.readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // from field 3, state
      out.set(tid, { name, n, cpu: Number(f[11]) + Number(f[12]) }); // utime, stime
    } catch {
      // the thread ended between the listing and the read
    }
  }
  return out;
}

describe('CLI', () => {
  for (const args of [['--help'], ['serve', '--help']]) {
    test(`herald ${args.join(' ')} prints usage and exits 0`, T, () => {
      const r = herald(args);
      assert.equal(r.status, 0, `exit status; stderr: ${r.stderr}`);
      for (const w of [...SERVE_FLAGS, ...SERVE_ENV]) {
        assert.ok(r.stdout.includes(w), `usage on stdout mentions ${w}:\n${r.stdout}`);
      }
    });
  }

  for (const args of [['--no-such-flag'], ['serve', '--no-such-flag']]) {
    test(`herald ${args.join(' ')} exits 2 with a message on stderr`, T, () => {
      const r = herald(args, { timeout: 10000 });
      assert.ok(!r.timedOut, 'exits instead of serving');
      assert.equal(r.status, 2, `exit status; stdout: ${r.stdout} stderr: ${r.stderr}`);
      assert.ok(r.stderr.trim().length > 0, 'a message on stderr');
    });
  }

  test('invalid flag values are refused at start', T, () => {
    const dir = makeTempDir();
    for (const args of [
      ['serve', '--listen', '127.0.0.1:0', '--workers', 'abc'],
      ['serve', '--listen', '127.0.0.1:0', '--log-level', 'loud'],
      ['serve', '--listen', '127.0.0.1:0', '--max-body', '-1'],
      ['serve', '--listen', '127.0.0.1:0', '--http-threads', 'x'],
      ['serve', '--listen', 'not-an-address'],
    ]) {
      const r = herald(args, { dir, timeout: 10000 });
      assert.ok(!r.timedOut, `herald ${args.join(' ')} exits instead of serving`);
      assert.notEqual(r.status, 0, `herald ${args.join(' ')} fails`);
      assert.ok(r.stderr.trim().length > 0, `herald ${args.join(' ')}: a message on stderr`);
    }
  });
});

/* ---- configuration -------------------------------------------------------------- */

describe('configuration', () => {
  test('HERALD_LISTEN, HERALD_STORE and HERALD_LOG_LEVEL configure serve', T, async (t) => {
    const srv = await startServer({ t, via: 'env', logLevel: 'info' });
    if (isPostgres) assert.ok(!fs.existsSync(path.join(srv.dir, 'herald.db')), 'no SQLite file: HERALD_STORE names the database');
    else assert.ok(fs.existsSync(path.join(srv.dir, 'herald.db')), 'the store is where HERALD_STORE says');
    const r = await srv.request('GET', '/healthz');
    assert.equal(r.status, 200);
    await srv.waitForLog((l) => l.includes('event=http.request'));
  });

  test('flags win over environment variables', T, async (t) => {
    const envPort = await freePort();
    const srv = await startServer({
      t,
      env: { HERALD_LISTEN: `127.0.0.1:${envPort}`, HERALD_LOG_LEVEL: 'error', HERALD_MAX_BODY: '1024' },
      args: ['--max-body', '8192'],
    });
    // listening on the --listen port (startServer checked /healthz there), not on the env one
    await assert.rejects(fetch(`http://127.0.0.1:${envPort}/healthz`, { signal: AbortSignal.timeout(2000) }));
    // --log-level info wins over HERALD_LOG_LEVEL=error
    const h = await srv.request('GET', '/healthz');
    await srv.waitForLog((l) => l.includes('event=http.request') && l.includes(`rid=${h.headers.get('x-request-id')}`));
    // --max-body 8192 wins over HERALD_MAX_BODY=1024
    const r = await srv.request('POST', '/admin/jobs/ping', {
      auth: 'admin',
      headers: { 'Content-Type': 'application/json' },
      body: jsonOfSize(4096),
    });
    assert.notEqual(r.status, 413, `a 4 KB body is under --max-body 8192: ${r.body}`);
  });

  test('--log-level warn drops info lines; HERALD_LOG_LEVEL=warn too', T, async (t) => {
    for (const o of [{ logLevel: 'warn' }, { via: 'env', logLevel: 'warn' }]) {
      const srv = await startServer({ t, ...o });
      for (let i = 0; i < 3; i++) assert.equal((await srv.request('GET', '/healthz')).status, 200);
      assert.equal((await srv.request('GET', '/nope')).status, 404);
      await sleep(300);
      const stop = await srv.stop();
      assert.equal(stop.code, 0);
      const chatty = srv.logs().filter((l) => /(?:^| )level=(info|debug)(?: |$)/.test(l));
      assert.deepEqual(chatty, [], `no info/debug lines at warn (${JSON.stringify(o)})`);
    }
  });

  test('HERALD_MAX_BODY sets the body cap', T, async (t) => {
    const srv = await startServer({ t, env: { HERALD_MAX_BODY: '1024' } });
    const r = await srv.request('POST', '/admin/jobs/ping', {
      auth: 'admin',
      headers: { 'Content-Type': 'application/json' },
      body: jsonOfSize(4096),
    });
    assertJsonError(r, 413);
  });

  test('the default body cap is 6291456 bytes', T, async (t) => {
    const srv = await startServer({ t });
    const auth = `Bearer ${srv.adminKey}`;
    const make = jsonOfSize;
    const over = await rawRequest(srv.port, {
      method: 'POST',
      path: '/admin/jobs/ping',
      headers: { Authorization: auth, 'Content-Type': 'application/json' },
      body: make(6291457),
    });
    assert.equal(over.status, 413, `6291457 bytes are over the default cap: ${over.body}`);
    const at = await srv.request('POST', '/admin/jobs/ping', {
      auth: 'admin',
      headers: { 'Content-Type': 'application/json' },
      body: make(6291456),
    });
    assert.notEqual(at.status, 413, `6291456 bytes are within the default cap: ${at.body}`);
  });

  test('--workers, --http-threads and their env vars are accepted', T, async (t) => {
    for (const o of [
      { args: ['--workers', '2', '--http-threads', '3'] },
      { env: { HERALD_WORKERS: '2', HERALD_HTTP_THREADS: '3' } },
    ]) {
      const srv = await startServer({ t, ...o });
      const p = await srv.request('POST', '/admin/jobs/ping', { auth: 'admin', json: {} });
      assert.equal(p.status, 202, p.body);
      await waitFor(
        async () => metricValue((await srv.metrics()).samples, 'herald_jobs_total', { kind: 'ping', outcome: 'done' }) >= 1,
        { timeout: 10000, what: 'the ping job to run' },
      );
      assert.equal((await srv.stop()).code, 0);
    }
  });

  test('invalid environment values are refused at start', T, () => {
    const dir = makeTempDir();
    for (const env of [{ HERALD_WORKERS: 'abc' }, { HERALD_HTTP_THREADS: 'abc' }, { HERALD_LOG_LEVEL: 'loud' }, { HERALD_MAX_BODY: 'big' }]) {
      const r = herald(['serve', '--listen', '127.0.0.1:0'], { dir, env, timeout: 10000 });
      assert.ok(!r.timedOut, `${JSON.stringify(env)}: exits instead of serving`);
      assert.notEqual(r.status, 0, `${JSON.stringify(env)}: refused`);
    }
  });
});

/* ---- first-start keys ------------------------------------------------------------------------ */

describe('first-start keys', () => {
  test('printed once on a fresh store, not on restart, and kept', T, async (t) => {
    const srv = await startServer({ t });
    assert.match(srv.adminKey, /^hk_\S{8,}$/, 'admin key');
    assert.match(srv.writeKey, /^wk_\S{8,}$/, 'write key');
    assert.equal(srv.run.stdout.filter((l) => l.startsWith('HERALD_ADMIN_KEY=')).length, 1, 'one admin key line');
    assert.equal(srv.run.stdout.filter((l) => l.startsWith('HERALD_WRITE_KEY=')).length, 1, 'one write key line');
    assert.equal((await srv.request('GET', '/admin/queue', { auth: 'admin' })).status, 200);

    assert.equal((await srv.stop()).code, 0);
    await srv.restart();
    await sleep(300);
    const keyLines = srv.run.stdout.filter((l) => /HERALD_(ADMIN|WRITE)_KEY|hk_|wk_/.test(l));
    assert.deepEqual(keyLines, [], 'a restart prints no keys');
    assert.equal((await srv.request('GET', '/admin/queue', { auth: 'admin' })).status, 200, 'the first admin key still works');
    assertJsonError(await srv.request('GET', '/admin/queue', { auth: 'write' }), 403, 'authorization_error');
  });
});

/* ---- logs and request ids ------------------------------------------------------------ */

describe('logs', () => {
  test('key=value lines on stderr, one http.request per request with its rid', T, async (t) => {
    const srv = await startServer({ t });
    const r = await srv.request('GET', '/healthz');
    const rid = r.headers.get('x-request-id');
    assert.ok(rid && rid.length > 0, 'X-Request-Id header on the response');
    const line = await srv.waitForLog((l) => l.includes('event=http.request') && logField(l, 'rid') === rid);
    assert.equal(logField(line, 'status'), '200', `status= in ${line}`);
    assert.equal(logField(line, 'event'), 'http.request');

    const r2 = await srv.request('GET', '/healthz');
    const rid2 = r2.headers.get('x-request-id');
    assert.notEqual(rid2, rid, 'each request gets its own id');
    await srv.waitForLog((l) => l.includes('event=http.request') && logField(l, 'rid') === rid2);

    const r3 = await srv.request('GET', '/definitely/not/here');
    const rid3 = r3.headers.get('x-request-id');
    assert.ok(rid3, 'X-Request-Id on errors too');
    const l3 = await srv.waitForLog((l) => l.includes('event=http.request') && logField(l, 'rid') === rid3);
    assert.equal(logField(l3, 'status'), '404');

    assert.equal((await srv.stop()).code, 0);
    const lines = srv.logs().filter((l) => l.length > 0);
    assert.ok(lines.length >= 3, 'some log lines');
    for (const l of lines) {
      assert.match(l, /^ts=\S+ /, `starts with ts=: ${l}`);
      assert.match(l, / level=(debug|info|warn|error)(?: |$)/, `has level=: ${l}`);
      assert.match(l, / event=[a-z0-9_.]+(?: |$)/, `has event=: ${l}`);
    }
    assert.equal(srv.logs().filter((l) => l.includes('event=http.request') && logField(l, 'rid') === rid).length, 1, 'one line per request');
  });

  test('a client X-Request-Id is echoed and logged', T, async (t) => {
    const srv = await startServer({ t });
    const r = await srv.request('GET', '/healthz', { headers: { 'X-Request-Id': 'abc-123' } });
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('x-request-id'), 'abc-123');
    const line = await srv.waitForLog((l) => l.includes('event=http.request') && logField(l, 'rid') === 'abc-123');
    assert.equal(logField(line, 'status'), '200');
  });

  test('no log line contains a key', T, async (t) => {
    const srv = await startServer({ t });
    await srv.request('GET', '/admin/queue', { auth: 'admin' });
    await srv.request('POST', '/admin/jobs/ping', { auth: 'admin', json: {} });
    await srv.request('GET', '/admin/queue', { auth: 'write' });
    await srv.request('GET', '/admin/queue', { auth: `Bearer ${srv.writeKey}` });
    await srv.request('GET', '/admin/queue', { auth: `Bearer ${srv.adminKey}x` });
    await srv.request('GET', '/nope', { auth: 'admin' });
    assert.equal((await srv.stop()).code, 0);
    for (const l of srv.logs()) {
      assert.ok(!l.includes(srv.adminKey), `the admin key leaked into the log: ${l}`);
      assert.ok(!l.includes(srv.writeKey), `the write key leaked into the log: ${l}`);
    }
  });
});

/* ---- health and metrics ------------------------------------------------------------- */

describe('health and metrics', () => {
  test('GET /healthz and /readyz are public', T, async (t) => {
    const srv = await startServer({ t });
    const h = await srv.request('GET', '/healthz');
    assert.equal(h.status, 200);
    assert.match(h.headers.get('content-type') ?? '', /^application\/json/);
    assert.deepEqual(h.json, { status: 'ok' });
    const r = await srv.request('GET', '/readyz');
    assert.equal(r.status, 200);
    assert.deepEqual(r.json, { status: 'ready' });
  });

  test('an idle server writes nothing and wakes no thread: no lease polling on a store only it uses', T, async (t) => {
    // --lease-ms 1000: a lease timer would look in the store every 250 ms.
    // --header-timeout / --body-timeout 3600: the reaper wakes at the deadline of this
    // test's own keep-alive connection (and at most the shorter limit after a pass), and
    // undici closes it 1 s before the server's Keep-Alive hint: both stay far from the
    // window, even at HERALD_E2E_TIME_SCALE 8
    const srv = await startServer({
      t, args: ['--lease-ms', '1000', '--header-timeout', '3600', '--body-timeout', '3600'],
    });
    const tx = async () => metricValue((await srv.metrics()).samples, 'herald_store_transactions_total') ?? 0;
    await sleep(scaled(500)); // start-up writes (keys, migrations) are done
    const before = await tx();
    await sleep(scaled(200)); // the thread that answered has gone back to waiting
    const woke0 = threadSwitches(srv.proc.pid);
    await sleep(scaled(1500));
    const woke1 = threadSwitches(srv.proc.pid);
    const after = await tx();
    if (isPostgres) {
      // a shared store keeps its lease timer (another node's expired lease, a missed NOTIFY)
      assert.ok(after - before >= 1, 'the lease timer looks in a shared store');
    } else {
      assert.equal(after - before, 0, `an idle SQLite server wrote ${after - before} transactions`);
      // herald's own threads (named h-*, and MHD's) sleep until there is work: none was
      // switched to or ran while idle (the delivery loop used to wake every second), and
      // none started or ended
      const woken = [...woke1].filter(([tid, w]) => woke0.has(tid) &&
          (w.n !== woke0.get(tid).n || w.cpu !== woke0.get(tid).cpu))
        .map(([tid, w]) => `${w.name} (${tid}): ${w.n - woke0.get(tid).n} switches, ` +
          `${w.cpu - woke0.get(tid).cpu} ticks`);
      assert.ok(woke1.size >= 5, `herald's threads found: ${woke1.size}`);
      assert.deepEqual([...woke1.keys()].sort(), [...woke0.keys()].sort(), 'the same threads');
      assert.deepEqual(woken, [], 'threads woken while idle');
    }
  });

  test('GET /metrics: Prometheus text with HTTP and queue metrics', T, async (t) => {
    const srv = await startServer({ t });
    const res = await srv.request('GET', '/metrics');
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain/);
    await sleep(200); // let the harness's own /healthz polls be counted
    const health = async () =>
      metricValue((await srv.metrics()).samples, 'herald_http_requests_total', { route: 'health', status: '200' }) ?? 0;
    const base = await health();
    assert.ok(base >= 1, 'the harness polled /healthz before this');
    await srv.request('GET', '/healthz');
    await srv.request('GET', '/healthz');
    await srv.request('GET', '/readyz');
    await srv.request('GET', '/admin/queue', { auth: 'admin' });

    const counted = (x) =>
      metricValue(x.samples, 'herald_http_requests_total', { route: 'health', status: '200' }) === base + 2 &&
      metricValue(x.samples, 'herald_http_requests_total', { route: 'ready', status: '200' }) >= 1 &&
      metricValue(x.samples, 'herald_http_requests_total', { route: 'metrics', status: '200' }) >= 1 &&
      metricValue(x.samples, 'herald_http_requests_total', { route: 'admin.queue', status: '200' }) >= 1;
    let last;
    const m = await waitFor(
      async () => {
        last = await srv.metrics();
        return counted(last) ? last : null;
      },
      { timeout: 3000, what: `herald_http_requests_total: health +2 from ${base}, ready, metrics, admin.queue` },
    ).catch((e) => {
      e.message += `\n${last?.text}`;
      throw e;
    });
    assert.match(m.text, /^herald_http_requests_total\{route="health",status="200"\} \d+/m, 'the documented sample form');
    const buckets = m.samples.filter((s) => s.name === 'herald_http_request_duration_seconds_bucket');
    assert.ok(buckets.length > 0, 'duration histogram buckets');
    assert.ok(buckets.some((b) => b.labels.le === '+Inf'), 'a +Inf bucket');
    assert.match(m.text, /^# TYPE herald_queue_depth gauge$/m, 'herald_queue_depth is a gauge');
    // the allocator's count of the heap in use (the soak judges memory by it); it holds
    // the store engine's caches (SQLite allocates through the same malloc). A sanitizer's
    // allocator cannot say (it answers mallinfo2 with zeros): no sample then.
    const heap = metricValue(m.samples, 'herald_heap_allocated_bytes');
    if (sanitized(srv.run.proc.pid)) assert.equal(heap, undefined, 'no heap count under a sanitizer');
    else {
      assert.match(m.text, /^# TYPE herald_heap_allocated_bytes gauge$/m, 'herald_heap_allocated_bytes is a gauge');
      assert.ok(heap > 0, `heap in use counted: ${heap}`);
      assert.ok(heap >= metricValue(m.samples, 'herald_store_engine_bytes'), 'the heap holds the engine\'s caches');
    }

    // a delayed ping is queued: the depth gauge shows it
    const p = await srv.request('POST', '/admin/jobs/ping', { auth: 'admin', json: { delay_ms: 60000 } });
    assert.equal(p.status, 202, p.body);
    // the request counter is added after the answer is sent (it records the duration): poll it too
    await waitFor(
      async () => {
        const s = (await srv.metrics()).samples;
        return (
          metricValue(s, 'herald_queue_depth', { kind: 'ping', state: 'queued' }) === 1 &&
          metricValue(s, 'herald_http_requests_total', { route: 'admin.jobs.ping', status: '202' }) >= 1
        );
      },
      { timeout: 10000, what: 'herald_queue_depth{kind="ping",state="queued"} 1 and the admin.jobs.ping route counted' },
    );
  });

  test('herald_jobs_total counts a ping job that ran', T, async (t) => {
    const srv = await startServer({ t });
    const before = metricValue((await srv.metrics()).samples, 'herald_jobs_total', { kind: 'ping', outcome: 'done' });
    assert.ok(before === undefined || before === 0, 'no ping ran yet');
    const p = await srv.request('POST', '/admin/jobs/ping', { auth: 'admin', json: { delay_ms: 0 } });
    assert.equal(p.status, 202, p.body);
    await waitFor(
      async () => metricValue((await srv.metrics()).samples, 'herald_jobs_total', { kind: 'ping', outcome: 'done' }) === 1,
      { timeout: 10000, what: 'herald_jobs_total{kind="ping",outcome="done"} 1' },
    );
    const { text } = await srv.metrics();
    assert.match(text, /^herald_jobs_total\{kind="ping",outcome="done"\} 1$/m);
  });
});

/* ---- admin queue routes ------------------------------------------------------------ */

describe('admin queue', () => {
  test('GET /admin/queue lists job counts by kind and state', T, async (t) => {
    const srv = await startServer({ t });
    const empty = await srv.request('GET', '/admin/queue', { auth: 'admin' });
    assert.equal(empty.status, 200, empty.body);
    assert.match(empty.headers.get('content-type') ?? '', /^application\/json/);
    assert.ok(Array.isArray(empty.json?.jobs), `jobs array: ${empty.body}`);
    assert.ok(Array.isArray(empty.json?.dead), `dead array: ${empty.body}`);

    const ids = [];
    for (let i = 0; i < 2; i++) {
      const p = await srv.request('POST', '/admin/jobs/ping', { auth: 'admin', json: { delay_ms: 600000 } });
      assert.equal(p.status, 202, p.body);
      assert.equal(typeof p.json?.id, 'number', `{"id": <number>}: ${p.body}`);
      assert.ok(Number.isInteger(p.json.id), 'integer id');
      ids.push(p.json.id);
    }
    assert.notEqual(ids[0], ids[1], 'distinct ids');

    const q = await srv.request('GET', '/admin/queue', { auth: 'admin' });
    assert.equal(q.status, 200);
    for (const j of q.json.jobs) {
      assert.equal(typeof j.kind, 'string');
      assert.ok(['queued', 'leased', 'dead'].includes(j.state), `state ${j.state}`);
      assert.equal(typeof j.count, 'number');
    }
    const ping = q.json.jobs.filter((j) => j.kind === 'ping' && j.state === 'queued');
    assert.equal(ping.length, 1, `one entry for queued pings: ${q.body}`);
    assert.equal(ping[0].count, 2, `two queued pings: ${q.body}`);
  });

  test('POST /admin/jobs/ping runs and leaves the queue', T, async (t) => {
    const srv = await startServer({ t });
    const p = await srv.request('POST', '/admin/jobs/ping', { auth: 'admin', json: {} });
    assert.equal(p.status, 202, p.body);
    assert.equal(typeof p.json?.id, 'number');
    await waitFor(
      async () => {
        const q = await srv.request('GET', '/admin/queue', { auth: 'admin' });
        return q.status === 200 && !q.json.jobs.some((j) => j.kind === 'ping' && j.count > 0);
      },
      { timeout: 10000, what: 'the ping job to leave the queue' },
    );
    const q = await srv.request('GET', '/admin/queue', { auth: 'admin' });
    assert.ok(!JSON.stringify(q.json.dead ?? []).includes('ping'), `no dead ping: ${q.body}`);
    assert.ok(!q.json.jobs.some((j) => j.kind === 'ping' && j.state === 'dead'), `no dead ping: ${q.body}`);
  });

  test('delay_ms bounds: 0..86400000', T, async (t) => {
    const srv = await startServer({ t });
    for (const d of [0, 86400000]) {
      const r = await srv.request('POST', '/admin/jobs/ping', { auth: 'admin', json: { delay_ms: d } });
      assert.equal(r.status, 202, `delay_ms ${d}: ${r.body}`);
    }
    for (const d of [-5, 86400001, 'soon']) {
      assertJsonError(await srv.request('POST', '/admin/jobs/ping', { auth: 'admin', json: { delay_ms: d } }), 400, 'invalid_request_error');
    }
  });
});

/* ---- errors --------------------------------------------------------------------------- */

describe('errors', () => {
  let srv;
  before(async () => {
    srv = await startServer({ name: 'errors' });
  });
  after(() => srv?.stop());

  test('no Authorization -> 401 authentication_error', T, async () => {
    assertJsonError(await srv.request('GET', '/admin/queue'), 401, 'authentication_error');
    assertJsonError(await srv.request('POST', '/admin/jobs/ping', { json: {} }), 401, 'authentication_error');
  });

  test('a wrong admin key -> 401', T, async () => {
    assertJsonError(await srv.request('GET', '/admin/queue', { auth: 'Bearer hk_wrong' }), 401, 'authentication_error');
    assertJsonError(await srv.request('GET', '/admin/queue', { auth: `Bearer ${srv.adminKey.slice(0, -1)}` }), 401, 'authentication_error');
    assertJsonError(await srv.request('GET', '/admin/queue', { auth: 'Bearer ' }), 401, 'authentication_error');
    assertJsonError(await srv.request('GET', '/admin/queue', { auth: 'Token abc' }), 401, 'authentication_error');
  });

  test('the write key on an admin route -> 403 authorization_error', T, async () => {
    assertJsonError(await srv.request('GET', '/admin/queue', { auth: basic(srv.writeKey) }), 403, 'authorization_error');
    assertJsonError(await srv.request('GET', '/admin/queue', { auth: `Bearer ${srv.writeKey}` }), 403, 'authorization_error');
    assertJsonError(await srv.request('POST', '/admin/jobs/ping', { auth: 'write', json: {} }), 403, 'authorization_error');
  });

  test('unknown path -> 404 invalid_request_error', T, async () => {
    assertJsonError(await srv.request('GET', '/no/such/thing'), 404, 'invalid_request_error');
    assertJsonError(await srv.request('GET', '/admin/nope', { auth: 'admin' }), 404, 'invalid_request_error');
  });

  test('POST /healthz -> 405 with Allow: GET', T, async () => {
    const r = await srv.request('POST', '/healthz', { json: {} });
    assertJsonError(r, 405);
    assert.match(r.headers.get('allow') ?? '', /\bGET\b/, `Allow header: ${r.headers.get('allow')}`);
  });

  test('a text/plain body -> 415', T, async () => {
    const r = await srv.request('POST', '/admin/jobs/ping', {
      auth: 'admin',
      headers: { 'Content-Type': 'text/plain' },
      body: 'delay_ms=5',
    });
    assertJsonError(r, 415);
  });

  test('malformed JSON -> 400 naming JSON', T, async () => {
    for (const body of ['{"delay_ms":', '{delay_ms: 5}', 'not json']) {
      const r = await srv.request('POST', '/admin/jobs/ping', {
        auth: 'admin',
        headers: { 'Content-Type': 'application/json' },
        body,
      });
      assertJsonError(r, 400, 'invalid_request_error');
      assert.match(r.json.message, /json/i, `message mentions JSON: ${r.json.message}`);
    }
  });

  test('{"delay_ms": -5} -> 400', T, async () => {
    assertJsonError(await srv.request('POST', '/admin/jobs/ping', { auth: 'admin', json: { delay_ms: -5 } }), 400, 'invalid_request_error');
  });

  test('the server survived the error cases', T, async () => {
    assert.equal((await srv.request('GET', '/healthz')).status, 200);
    const r = await srv.stop();
    assert.equal(r.code, 0, srv.output());
  });

  test('a body over --max-body -> 413', T, async (t) => {
    const small = await startServer({ t, args: ['--max-body', '1024'] });
    const r = await small.request('POST', '/admin/jobs/ping', {
      auth: 'admin',
      headers: { 'Content-Type': 'application/json' },
      body: jsonOfSize(4096),
    });
    assertJsonError(r, 413);
    const ok = await small.request('POST', '/admin/jobs/ping', { auth: 'admin', json: { delay_ms: 0 } });
    assert.equal(ok.status, 202, `a small body still works: ${ok.body}`);
  });
});

/* ---- keys CLI ------------------------------------------------------------------------ */

describe('keys CLI', () => {
  test('create, list, revoke while the server runs', T, async (t) => {
    const srv = await startServer({ t });

    const c = herald(['keys', 'create', '--kind', 'admin', '--name', 'ci'], { dir: srv.dir });
    assert.equal(c.status, 0, `keys create: ${c.stderr}`);
    const lines = c.stdout.split('\n').filter((l) => l.length > 0);
    assert.equal(lines.length, 1, `one line, the key only: ${JSON.stringify(c.stdout)}`);
    const key = lines[0];
    assert.match(key, /^hk_\S{8,}$/, 'an admin key');
    assert.notEqual(key, srv.adminKey);
    assert.equal((await srv.request('GET', '/admin/queue', { auth: `Bearer ${key}` })).status, 200, 'the new key works');

    const w = herald(['keys', 'create', '--kind', 'write', '--name', 'site'], { dir: srv.dir });
    assert.equal(w.status, 0, `keys create --kind write: ${w.stderr}`);
    const wkey = w.stdout.trim();
    assert.match(wkey, /^wk_\S{8,}$/, 'a write key');
    assertJsonError(await srv.request('GET', '/admin/queue', { auth: basic(wkey) }), 403, 'authorization_error');

    const l = herald(['keys', 'list'], { dir: srv.dir });
    assert.equal(l.status, 0, `keys list: ${l.stderr}`);
    for (const full of [srv.adminKey, srv.writeKey, key, wkey]) {
      assert.ok(!l.stdout.includes(full), `keys list shows no full key:\n${l.stdout}`);
      const rows = l.stdout.split('\n').filter((row) => row.includes(full.slice(0, 12)));
      assert.equal(rows.length, 1, `one line for ${full.slice(0, 12)}:\n${l.stdout}`);
    }
    const ciRow = l.stdout.split('\n').find((row) => row.includes(key.slice(0, 12)));
    assert.match(ciRow, /\badmin\b/, `kind on the line: ${ciRow}`);
    assert.match(ciRow, /\bci\b/, `name on the line: ${ciRow}`);
    const siteRow = l.stdout.split('\n').find((row) => row.includes(wkey.slice(0, 12)));
    assert.match(siteRow, /\bwrite\b/, `kind on the line: ${siteRow}`);
    assert.match(siteRow, /\bsite\b/, `name on the line: ${siteRow}`);

    const rv = herald(['keys', 'revoke', key.slice(0, 12)], { dir: srv.dir });
    assert.equal(rv.status, 0, `keys revoke: ${rv.stderr}`);
    assertJsonError(await srv.request('GET', '/admin/queue', { auth: `Bearer ${key}` }), 401, 'authentication_error');
    assert.equal((await srv.request('GET', '/admin/queue', { auth: 'admin' })).status, 200, 'other keys unaffected');

    const unknown = herald(['keys', 'revoke', 'hk_zzzzzzzzz'], { dir: srv.dir });
    assert.equal(unknown.status, 1, `revoking an unknown prefix exits 1: ${unknown.stdout} ${unknown.stderr}`);
    assert.ok(unknown.stderr.trim().length > 0, 'with a message on stderr');
  });

  test('the revocation survives a restart', T, async (t) => {
    const srv = await startServer({ t });
    const key = herald(['keys', 'create', '--kind', 'admin', '--name', 'tmp'], { dir: srv.dir }).stdout.trim();
    assert.match(key, /^hk_/);
    assert.equal(herald(['keys', 'revoke', key.slice(0, 12)], { dir: srv.dir }).status, 0);
    await srv.restart();
    assertJsonError(await srv.request('GET', '/admin/queue', { auth: `Bearer ${key}` }), 401, 'authentication_error');
    assert.equal((await srv.request('GET', '/admin/queue', { auth: 'admin' })).status, 200);
  });
});

/* ---- shutdown and durability ---------------------------------------------------------- */

describe('lifecycle', () => {
  for (const sig of ['SIGTERM', 'SIGINT']) {
    test(`${sig}: exits 0 within 10 s and logs server.stopped`, T, async (t) => {
      const srv = await startServer({ t });
      assert.equal((await srv.request('GET', '/healthz')).status, 200);
      const r = await srv.stop(sig);
      assert.equal(r.signal, null, `exited by itself, not killed by ${r.signal}:\n${srv.output()}`);
      assert.equal(r.code, 0, `exit code:\n${srv.output()}`);
      assert.ok(r.ms < 10000, `stopped in ${r.ms} ms`);
      assert.ok(srv.logs().some((l) => /(?:^| )event=server\.stopped(?: |$)/.test(l)), `event=server.stopped logged:\n${srv.output()}`);
    });
  }

  test('a delayed job survives kill -9 and runs once after restart', T, async (t) => {
    const srv = await startServer({ t });
    const p = await srv.request('POST', '/admin/jobs/ping', { auth: 'admin', json: { delay_ms: 1500 } });
    assert.equal(p.status, 202, p.body);
    const killed = await srv.kill9();
    assert.equal(killed.signal, 'SIGKILL');

    await srv.restart();
    await waitFor(
      async () => metricValue((await srv.metrics()).samples, 'herald_jobs_total', { kind: 'ping', outcome: 'done' }) === 1,
      { timeout: 10000, what: 'herald_jobs_total{kind="ping",outcome="done"} 1 after restart' },
    );
    const q = await srv.request('GET', '/admin/queue', { auth: 'admin' });
    assert.equal(q.status, 200);
    const left = q.json.jobs.filter((j) => j.kind === 'ping' && j.count > 0);
    assert.deepEqual(left, [], `no ping job left: ${q.body}`);
    await sleep(500);
    const { text } = await srv.metrics();
    assert.match(text, /^herald_jobs_total\{kind="ping",outcome="done"\} 1$/m, 'ran exactly once');
  });
});
