// hostile.test.mjs: herald under hostile clients (issue 12, points 1, 2, 13-16): a
// connection flood from one address, trickled headers and bodies, keyless uploads,
// Expect: 100-continue without a key, conflicting framing headers, oversized bodies
// through Node's fetch, cross-origin calls, and NUL or non-UTF-8 ids. The attack
// tools here are bounded in count and time and target loopback only (127.0.0.0/8:
// extra source addresses such as 127.0.0.2 are loopback on Linux).

import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { test } from 'node:test';

import { closeAfterAll } from './lib/cleanup.mjs';
import { spawnSync } from 'node:child_process';

import { heraldBin, metricValue, scaled, sleep, startServer, waitFor } from './lib/server.mjs';

closeAfterAll();

const MB = 1024 * 1024;

/** VmRSS of a process in bytes. */
function rssBytes(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m[1]) * 1024;
}

/** One GET on a fresh connection (no keep-alive reuse) from localAddress; resolves
 *  {status, ms} or rejects after limitMs. */
function probe(port, path, { localAddress = '127.0.0.1', limitMs }) {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const req = http.get({ host: '127.0.0.1', port, path, localAddress, agent: false, timeout: limitMs }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode, ms: Date.now() - t0 }));
    });
    req.on('timeout', () => req.destroy(new Error(`no answer to GET ${path} within ${limitMs} ms`)));
    req.on('error', reject);
  });
}

/** Write raw bytes on a new socket and collect what comes back until the server closes
 *  (or timeoutMs passes). Resolves {text, closed, statuses}. */
function rawExchange(port, data, { localAddress = '127.0.0.1', timeoutMs = 5000 } = {}) {
  return new Promise((resolve) => {
    const chunks = [];
    const s = net.connect({ port, host: '127.0.0.1', localAddress });
    const done = (closed) => {
      clearTimeout(timer);
      s.destroy();
      const text = Buffer.concat(chunks).toString('latin1');
      resolve({ text, closed, statuses: [...text.matchAll(/HTTP\/1\.[01] (\d{3})/g)].map((m) => Number(m[1])) });
    };
    const timer = setTimeout(() => done(false), scaled(timeoutMs));
    s.on('connect', () => s.write(data));
    s.on('data', (d) => chunks.push(d));
    s.on('error', () => {});
    s.on('close', () => done(true));
  });
}

/** Open n sockets from localAddress; each one that connects is handed to onOpen.
 *  Resolves the list of sockets once every attempt connected or failed. */
async function openSockets(port, n, localAddress, onOpen = () => {}) {
  const socks = [];
  const batch = 200;
  for (let i = 0; i < n; i += batch) {
    await Promise.all(
      Array.from({ length: Math.min(batch, n - i) }, () =>
        new Promise((resolve) => {
          const s = net.connect({ port, host: '127.0.0.1', localAddress });
          s.on('error', () => {});
          s.once('connect', () => {
            socks.push(s);
            onOpen(s);
            resolve();
          });
          s.once('close', resolve);
        }),
      ),
    );
  }
  return socks;
}

/* ---- 1: connection floods ---- */

test('a flood of idle and trickling sockets from one address leaves /healthz answering others within 1 s', { timeout: scaled(90000) }, async (t) => {
  const srv = await startServer({ t });
  const port = srv.port;
  const timers = [];
  const all = [];
  try {
    // 2,000 idle sockets, then 1,100 that trickle one header line every 5 s
    all.push(...(await openSockets(port, 2000, '127.0.0.2')));
    const trickle = await openSockets(port, 1100, '127.0.0.2', (s) => s.write('GET /healthz HTTP/1.1\r\nHost: x\r\n'));
    all.push(...trickle);
    timers.push(
      setInterval(() => {
        for (const s of trickle) if (!s.destroyed) s.write(`X-T: ${Date.now()}\r\n`);
      }, 5000),
    );
    // for 12 s (past two trickle rounds), a fresh connection from 127.0.0.1 each second
    const until = Date.now() + 12000;
    let probes = 0;
    while (Date.now() < until) {
      const r = await probe(port, '/healthz', { limitMs: scaled(1000) });
      assert.equal(r.status, 200);
      probes += 1;
      await sleep(1000);
    }
    assert.ok(probes >= 8, `only ${probes} probes ran`);
    // the total cap follows the open-file limit (raised to its hard limit at start),
    // far above MHD's default of about 1,020
    const limits = fs.readFileSync(`/proc/${srv.proc.pid}/limits`, 'utf8');
    const nofile = /Max open files\s+(\d+)\s+(\d+)/.exec(limits);
    assert.equal(nofile[1], nofile[2], 'the soft open-file limit is the hard one');
    const start = srv.logs().find((l) => l.includes('event=http.start'));
    const maxConns = Number(/max_conns=(\d+)/.exec(start)[1]);
    assert.ok(maxConns >= Math.min(16384, Number(nofile[1]) / 2) - 1, start);
    const m = await srv.metrics();
    assert.ok(metricValue(m.samples, 'herald_http_connections_refused_total', { reason: 'per_ip' }) > 0, 'refusals are counted');
    await srv.waitForLog(/http\.conn_limit.*reason=per_ip.*peer=127\.0\.0\.2/);
    // rate limited: a handful of lines, not one per refused socket
    const lines = srv.logs().filter((l) => l.includes('http.conn_limit')).length;
    assert.ok(lines <= 3, `${lines} http.conn_limit lines`);
  } finally {
    for (const x of timers) clearInterval(x);
    for (const s of all) s.destroy();
  }
});

test('the total connection cap refuses, counts and logs; capacity returns when sockets close', async (t) => {
  const srv = await startServer({ t, args: ['--max-conns', '64', '--max-conns-per-ip', '0'] });
  const socks = await openSockets(srv.port, 100, '127.0.0.3');
  assert.ok(socks.length >= 64, `${socks.length} sockets connected`);
  await srv.waitForLog(/http\.conn_limit.*reason=total.*limit=64/);
  for (const s of socks) s.destroy();
  await waitFor(async () => (await probe(srv.port, '/healthz', { limitMs: scaled(1000) }).catch(() => ({}))).status === 200, { what: '/healthz after the sockets closed' });
  assert.ok(metricValue((await srv.metrics()).samples, 'herald_http_connections_refused_total', { reason: 'total' }) > 0);
});

test('trickled headers and slow bodies are cut at their deadlines, whatever the trickle', { timeout: scaled(60000) }, async (t) => {
  const srv = await startServer({ t, args: ['--header-timeout', '2', '--body-timeout', '2'] });
  const port = srv.port;
  const timers = [];
  const closedWithin = (s) =>
    new Promise((resolve) => {
      const t0 = Date.now();
      s.on('close', () => resolve(Date.now() - t0));
    });
  try {
    // headers: a line every 300 ms (MHD's idle timer alone would never fire)
    const [h] = await openSockets(port, 1, '127.0.0.1', (s) => s.write('GET /healthz HTTP/1.1\r\nHost: x\r\n'));
    const hClosed = closedWithin(h);
    timers.push(setInterval(() => !h.destroyed && h.write('X-A: b\r\n'), 300));
    // body: 10 bytes every 300 ms of a 100,000-byte /v1 body (no key: deferred to the body)
    const [b] = await openSockets(port, 1, '127.0.0.1', (s) =>
      s.write('POST /v1/track HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n'),
    );
    const bClosed = closedWithin(b);
    timers.push(setInterval(() => !b.destroyed && b.write('          '), 300));
    const limit = scaled(15000);
    const race = async (p, what) => {
      let timer;
      const late = new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} still open after ${limit} ms`)), limit);
      });
      try {
        return await Promise.race([p, late]);
      } finally {
        clearTimeout(timer);
      }
    };
    await race(hClosed, 'the trickling-headers socket');
    await race(bClosed, 'the slow-body socket');
    const m = await srv.metrics();
    assert.ok(metricValue(m.samples, 'herald_http_connections_timed_out_total', { phase: 'headers' }) >= 1);
    assert.ok(metricValue(m.samples, 'herald_http_connections_timed_out_total', { phase: 'body' }) >= 1);
    await srv.waitForLog(/http\.header_timeout/);
    await srv.waitForLog(/http\.body_timeout/);
    // a normal client is unaffected
    assert.equal((await srv.request('GET', '/healthz')).status, 200);
  } finally {
    for (const x of timers) clearInterval(x);
  }
});

/* ---- 2: nothing buffered before the key is checked ---- */

test('keyless 6 MB uploads are refused from the headers: 400 of them grow RSS by < 100 MB', { timeout: scaled(120000) }, async (t) => {
  const srv = await startServer({ t });
  const pid = srv.proc.pid;
  const body = Buffer.alloc(6 * MB, 0x20);
  const head = `POST /profiles/u1 HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`;
  const before = rssBytes(pid);
  let peak = before;
  const sampler = setInterval(() => {
    try {
      peak = Math.max(peak, rssBytes(pid));
    } catch {
      /* gone */
    }
  }, 20);
  try {
    const results = await Promise.all(
      Array.from({ length: 400 }, (_, i) =>
        new Promise((resolve) => {
          const chunks = [];
          // four source addresses, so the per-address cap (256) is not what answers
          const s = net.connect({ port: srv.port, host: '127.0.0.1', localAddress: `127.0.0.${10 + (i % 4)}` });
          const timer = setTimeout(() => s.destroy(), scaled(60000));
          s.on('connect', () => {
            s.write(head);
            s.write(body);
          });
          s.on('data', (d) => chunks.push(d));
          s.on('error', () => {});
          s.on('close', () => {
            clearTimeout(timer);
            const m = /^HTTP\/1\.1 (\d{3})/.exec(Buffer.concat(chunks).toString('latin1'));
            resolve(m ? Number(m[1]) : 0);
          });
        }),
      ),
    );
    peak = Math.max(peak, rssBytes(pid));
    const counts = {};
    for (const s of results) counts[s] = (counts[s] ?? 0) + 1;
    assert.deepEqual(counts, { 401: 400 }, `answers: ${JSON.stringify(counts)}`);
    // ThreadSanitizer's shadow memory multiplies every page the server touches, and each
    // of the 400 connections has a thread (its state, its stack's shadow: ~1 MB each
    // under TSan, 383-407 MB in all in CI): more room there; buffered bodies would be
    // 2.4 GB either way
    const tsan = /libtsan/.test(spawnSync('ldd', [heraldBin()], { encoding: 'utf8' }).stdout ?? '');
    const allowed = tsan ? 800 : 100;
    const grew = (peak - before) / MB;
    assert.ok(grew < allowed, `RSS grew by ${grew.toFixed(1)} MB (from ${(before / MB).toFixed(1)} MB)`);
  } finally {
    clearInterval(sampler);
  }
});

test('Expect: 100-continue without a key gets 401, not 100 Continue', async (t) => {
  const srv = await startServer({ t });
  for (const p of ['/profiles/u1', '/send', '/inbound/segment']) {
    const r = await rawExchange(
      srv.port,
      `POST ${p} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${3 * MB}\r\nExpect: 100-continue\r\n\r\n`,
    );
    assert.deepEqual(r.statuses, [401], `${p}: ${r.text.slice(0, 200)}`);
    assert.match(r.text, /"type":"authentication_error"/);
  }
  // a valid key still gets its 100 Continue
  const ok = await rawExchange(
    srv.port,
    `POST /profiles/u1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${srv.adminKey}\r\nContent-Type: application/json\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n`,
    { timeoutMs: 1000 },
  );
  assert.equal(ok.statuses[0], 100);
});

test('request bodies held in memory have a global cap: 503 with Retry-After past it', async (t) => {
  const srv = await startServer({ t, args: ['--max-buffered', String(MB)] });
  const big = JSON.stringify({ profile: { blob: 'x'.repeat(MB + 1000) } });
  const r = await srv.request('POST', '/profiles/u1', { auth: 'admin', body: big, headers: { 'Content-Type': 'application/json' } });
  assert.equal(r.status, 503);
  assert.equal(r.json.type, 'api_error');
  assert.equal(r.headers.get('retry-after'), '1');
  const small = await srv.request('POST', '/profiles/u1', { auth: 'admin', json: { profile: { a: 1 } } });
  assert.equal(small.status, 200);
  await srv.waitForLog(/http\.buffer_full/);
});

test('one address cannot take the whole --max-buffered: it holds at most 1/16 of it (at least one largest body)', async (t) => {
  const srv = await startServer({ t, args: ['--max-buffered', String(128 * MB)] }); // share: 8 MiB
  const head = (len) => `POST /profiles/u1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${srv.adminKey}\r\n` +
    `Content-Type: application/json\r\nContent-Length: ${len}\r\nExpect: 100-continue\r\n\r\n`;
  // two uploads from 127.0.0.1 that stop after their headers: 2 x 3.5 MiB held
  const hold = () => new Promise((resolve, reject) => {
    const s = net.connect({ port: srv.port, host: '127.0.0.1', localAddress: '127.0.0.1' });
    t.after(() => s.destroy());
    let seen = '';
    const timer = setTimeout(() => reject(new Error(`no 100 Continue: ${seen}`)), scaled(5000));
    s.on('data', (d) => {
      seen += d.toString('latin1');
      if (/^HTTP\/1\.1 100/.test(seen)) { clearTimeout(timer); resolve(s); }
    });
    s.on('error', reject);
    s.write(head(3.5 * MB)); // counted when its headers are taken: before the 100 Continue
  });
  const held = [await hold(), await hold()];
  const body = JSON.stringify({ profile: { blob: 'x'.repeat(3 * MB) } });
  const full = (from) => rawExchange(srv.port, head(Buffer.byteLength(body)).replace('Expect: 100-continue\r\n', 'Connection: close\r\n') + body,
    { localAddress: from, timeoutMs: scaled(10000) });
  let r = await full('127.0.0.1');
  assert.deepEqual(r.statuses, [503], `the third from the same address is refused: ${r.text.slice(0, 200)}`);
  assert.match(r.text, /Retry-After: 1/i);
  r = await full('127.0.0.2'); // another address still has room in the budget: its body is
  // read and handled (the profile store then refuses a 3 MiB document: 413, not 503)
  assert.deepEqual(r.statuses, [413], r.text.slice(0, 300));
  assert.match(r.text, /too large/);
  await srv.waitForLog(/http\.buffer_full.*reason=max_buffered_per_ip/);
  for (const s of held) s.destroy();
  // their bytes are given back: the address may send again
  await waitFor(async () => (await full('127.0.0.1')).statuses[0] === 413, { timeout: 5000, what: 'the share freed' });
});

/* ---- 13: framing ---- */

test('two different Content-Length headers, or Content-Length with Transfer-Encoding, get 400 and a closed connection', async (t) => {
  const srv = await startServer({ t });
  const smuggled = 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n';
  const cases = [
    `POST /v1/track HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: ${2 + smuggled.length}\r\n\r\n{}${smuggled}`,
    `POST /v1/track HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n{}${smuggled}`,
    `POST /v1/track HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n{}${smuggled}`,
  ];
  for (const c of cases) {
    const r = await rawExchange(srv.port, c);
    assert.deepEqual(r.statuses, [400], `one answer, a 400: ${r.text.slice(0, 300)}`);
    assert.match(r.text, /"type":"invalid_request_error"/);
    assert.ok(r.closed, 'the connection is closed');
  }
  // the same value twice is one length, and fine
  const same = await rawExchange(srv.port, `POST /v1/track HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}`);
  assert.notEqual(same.statuses[0], 400, same.text.slice(0, 300));
});

/* ---- 14: an answer before the whole body is read reaches fetch ---- */

test('an oversized body sent with fetch receives its 413 JSON (and a keyless one its 401)', async (t) => {
  const srv = await startServer({ t });
  const send = (path, headers, body) =>
    fetch(srv.url + path, { method: 'POST', headers, body, duplex: 'half', signal: AbortSignal.timeout(scaled(20000)) });
  const admin = { Authorization: `Bearer ${srv.adminKey}`, 'Content-Type': 'application/json' };
  const over = Buffer.alloc(7 * MB, 0x20); // the admin cap is 6 MiB
  let r = await send('/profiles/u1', admin, over);
  assert.equal(r.status, 413);
  let j = await r.json();
  assert.equal(j.type, 'invalid_request_error');
  assert.match(j.message, /exceeds/);
  // chunked (no Content-Length): found out while reading
  const chunks = (function* () {
    for (let i = 0; i < 7; i++) yield Buffer.alloc(MB, 0x20);
  })();
  r = await send('/profiles/u1', admin, new ReadableStream({
    pull(c) {
      const n = chunks.next();
      if (n.done) c.close();
      else c.enqueue(n.value);
    },
  }));
  assert.equal(r.status, 413);
  j = await r.json();
  assert.equal(j.type, 'invalid_request_error');
  // /v1 caps at 500 KB
  r = await send('/v1/batch', { Authorization: `Basic ${Buffer.from(`${srv.writeKey}:`).toString('base64')}` }, Buffer.alloc(600 * 1024, 0x20));
  assert.equal(r.status, 413);
  // no key: 401, readable
  r = await send('/profiles/u1', { 'Content-Type': 'application/json' }, Buffer.alloc(3 * MB, 0x20));
  assert.equal(r.status, 401);
  j = await r.json();
  assert.equal(j.type, 'authentication_error');
});

/* ---- 15: CORS ---- */

test('CORS: admin routes answer only their own origin and --cors-allow; /v1 answers any origin', async (t) => {
  const srv = await startServer({ t });
  const evil = 'https://evil.example';
  let r = await srv.request('GET', '/messages', { auth: 'admin', headers: { Origin: evil } });
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('access-control-allow-origin'), null);
  r = await srv.request('OPTIONS', '/messages', { headers: { Origin: evil, 'Access-Control-Request-Method': 'GET', 'Access-Control-Request-Headers': 'authorization' } });
  assert.equal(r.status, 403);
  assert.equal(r.headers.get('access-control-allow-origin'), null);
  // the page's own origin (the admin UI) is fine
  r = await srv.request('GET', '/messages', { auth: 'admin', headers: { Origin: srv.url } });
  assert.equal(r.headers.get('access-control-allow-origin'), srv.url);
  // analytics.js posts to /v1/* from any site with the public write key
  r = await srv.request('OPTIONS', '/v1/track', { headers: { Origin: evil, 'Access-Control-Request-Method': 'POST' } });
  assert.equal(r.status, 204);
  assert.equal(r.headers.get('access-control-allow-origin'), evil);
  r = await srv.request('POST', '/v1/track', { headers: { Origin: evil, 'Content-Type': 'text/plain' }, body: JSON.stringify({ writeKey: srv.writeKey, userId: 'u1', event: 'E' }) });
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('access-control-allow-origin'), evil);

  const open = await startServer({ t, args: ['--cors-allow', 'https://app.example'] });
  r = await open.request('GET', '/messages', { auth: 'admin', headers: { Origin: 'https://app.example' } });
  assert.equal(r.headers.get('access-control-allow-origin'), 'https://app.example');
  r = await open.request('GET', '/messages', { auth: 'admin', headers: { Origin: evil } });
  assert.equal(r.headers.get('access-control-allow-origin'), null);
  const env = await startServer({ t, env: { HERALD_CORS_ALLOW: 'https://a.example,https://b.example' } });
  r = await env.request('OPTIONS', '/messages', { headers: { Origin: 'https://b.example', 'Access-Control-Request-Method': 'GET' } });
  assert.equal(r.status, 204);
  assert.equal(r.headers.get('access-control-allow-origin'), 'https://b.example');
});

/* ---- 16: NUL and non-UTF-8 ids ---- */

test('\\u0000 in JSON strings and path ids that decode to NUL or non-UTF-8 get 400', async (t) => {
  const srv = await startServer({ t });
  const nul = [
    ['PUT', '/profiles/u1', 'admin', '{"profile":{"name":"a\\u0000b"}}'],
    ['POST', '/send', 'admin', '{"message":{"to":{"user_id":"u1\\u0000evil"},"content":{"title":"t","body":"b"}}}'],
    ['PUT', '/automations/a1', 'admin', '{"name":"x\\u0000y","steps":[]}'],
    ['POST', '/v1/track', 'write', '{"userId":"u\\u0000evil","event":"E"}'],
  ];
  for (const [m, p, auth, body] of nul) {
    const r = await srv.request(m, p, { auth, body, headers: { 'Content-Type': 'application/json' } });
    assert.equal(r.status, 400, `${m} ${p}: ${r.body}`);
    assert.equal(r.json.type, 'invalid_request_error');
    assert.match(r.json.message, /u0000|NUL/);
  }
  // nothing was stored under a cut-short id
  assert.equal((await srv.request('GET', '/profiles/u1', { auth: 'admin' })).status, 404);

  const decoder = new TextDecoder('utf-8', { fatal: true });
  for (const p of ['/profiles/%C3%28', '/profiles/%FF', '/profiles/a%00b', '/catalog/events/%E2%82', '/profiles/u1?x=%FF', '/profiles/u1?x=a%00b']) {
    const res = await fetch(srv.url + p, { headers: { Authorization: `Bearer ${srv.adminKey}` } });
    const bytes = new Uint8Array(await res.arrayBuffer());
    assert.equal(res.status, 400, p);
    const j = JSON.parse(decoder.decode(bytes)); // valid UTF-8, or this throws
    assert.equal(j.type, 'invalid_request_error');
  }
  // a valid non-ASCII id is fine
  const ok = await srv.request('PUT', `/profiles/${encodeURIComponent('jürgen')}`, { auth: 'admin', json: { profile: { a: 1 } } });
  assert.equal(ok.status, 200, ok.body);
  await waitFor(async () => (await srv.request('GET', `/profiles/${encodeURIComponent('jürgen')}`, { auth: 'admin' })).status === 200, { what: 'the profile' });
});
