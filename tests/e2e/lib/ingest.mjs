// ingest.mjs: helpers for the events-in suite (ingest.test.mjs): write-key auth headers,
// the event catalog and profiles read back through the admin API, polling for
// asynchronous processing, raw chunked requests and Segment's X-Signature.

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import net from 'node:net';

import { sleep, waitFor } from './server.mjs';

/** Authorization: Basic base64(key + ":"), or without the colon. */
export function basic(key, { colon = true } = {}) {
  return `Basic ${Buffer.from(colon ? `${key}:` : key).toString('base64')}`;
}

/** Lowercase hex HMAC-SHA1(secret, data): Segment's X-Signature. */
export function segmentSignature(secret, data) {
  return crypto.createHmac('sha1', secret).update(data, 'utf8').digest('hex');
}

/** Asserts r is a JSON error {message, type} with this status (and type if given). */
export function assertJsonError(r, status, type) {
  assert.equal(r.status, status, `expected ${status}, got ${r.status}: ${r.body}`);
  let json = r.json;
  if (json === undefined && typeof r.body === 'string') {
    try {
      json = JSON.parse(r.body);
    } catch {
      /* checked below */
    }
  }
  const ctype = typeof r.headers?.get === 'function' ? r.headers.get('content-type') : r.headers?.['content-type'];
  assert.match(ctype ?? '', /^application\/json/, `error bodies are JSON (status ${status}): ${r.body}`);
  assert.ok(json && typeof json === 'object', `error body is a JSON object: ${r.body}`);
  assert.equal(typeof json.message, 'string', `error has a message: ${r.body}`);
  assert.ok(json.message.length > 0, 'error message is not empty');
  assert.equal(typeof json.type, 'string', `error has a type: ${r.body}`);
  if (type) assert.equal(json.type, type, `error type for ${status}: ${r.body}`);
  return json;
}

/** Asserts a tracking-API success body: exactly {success, accepted, duplicates, rejected}. */
export function assertAccepted(r, { accepted, duplicates = 0, rejected = [] } = {}) {
  assert.equal(r.status, 200, `expected 200, got ${r.status}: ${r.body}`);
  assert.ok(r.json && typeof r.json === 'object', `JSON body: ${r.body}`);
  assert.equal(r.json.success, true, `success: ${r.body}`);
  assert.equal(r.json.accepted, accepted, `accepted: ${r.body}`);
  assert.equal(r.json.duplicates, duplicates, `duplicates: ${r.body}`);
  assert.ok(Array.isArray(r.json.rejected), `rejected is an array: ${r.body}`);
  assert.deepEqual(
    r.json.rejected.map((x) => x.index),
    rejected,
    `rejected indexes: ${r.body}`,
  );
  for (const x of r.json.rejected) {
    assert.equal(typeof x.message, 'string', `each rejection has a message: ${r.body}`);
    assert.ok(x.message.length > 0, `each rejection message is non-empty: ${r.body}`);
  }
}

/* ---- event catalog ----------------------------------------------------------------- */

/** Every catalog item, following the cursor: [{name, count, first_seen, last_seen}]. */
export async function catalogItems(srv, { search, limit = 200 } = {}) {
  const out = [];
  let cursor;
  for (let page = 0; page < 1000; page++) {
    const q = new URLSearchParams();
    if (search !== undefined) q.set('search', search);
    q.set('limit', String(limit));
    if (cursor !== undefined && cursor !== null) q.set('cursor', cursor);
    const r = await srv.request('GET', `/catalog/events?${q}`, { auth: 'admin' });
    assert.equal(r.status, 200, `GET /catalog/events: ${r.status} ${r.body}`);
    assert.ok(Array.isArray(r.json?.items), `items array: ${r.body}`);
    assert.ok(r.json.paging && typeof r.json.paging.more === 'boolean', `paging.more: ${r.body}`);
    out.push(...r.json.items);
    if (!r.json.paging.more) return out;
    cursor = r.json.paging.cursor;
    assert.ok(cursor !== undefined && cursor !== null, `paging.cursor when more is true: ${r.body}`);
  }
  throw new Error('catalog paging did not end');
}

/** The catalog as {name: count}. */
export async function catalogCounts(srv) {
  const m = {};
  for (const it of await catalogItems(srv)) {
    assert.ok(!(it.name in m), `catalog name listed twice: ${it.name}`);
    m[it.name] = it.count;
  }
  return m;
}

/** GET /catalog/events/<name> (percent-encoded). */
export async function catalogEntry(srv, name) {
  return srv.request('GET', `/catalog/events/${encodeURIComponent(name)}`, { auth: 'admin' });
}

function sorted(o) {
  return Object.fromEntries(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/**
 * Wait until the catalog is exactly `expected` ({name: count}), then check that it stays
 * so for `settleMs` (nothing is counted twice). Fails naming the last catalog seen.
 */
export async function expectCatalog(srv, expected, { timeout = 5000, settleMs = 250, what = 'the catalog' } = {}) {
  const want = sorted(expected);
  let last;
  try {
    await waitFor(
      async () => {
        last = sorted(await catalogCounts(srv));
        return JSON.stringify(last) === JSON.stringify(want);
      },
      { timeout, what: `${what} to be ${JSON.stringify(want)}` },
    );
  } catch (e) {
    e.message += `\n  last catalog: ${JSON.stringify(last)}`;
    throw e;
  }
  if (settleMs > 0) {
    await sleep(settleMs);
    assert.deepEqual(sorted(await catalogCounts(srv)), want, `${what} stays ${JSON.stringify(want)}`);
  }
}

/* ---- profiles ------------------------------------------------------------------------ */

/** GET /profiles/<id> (encodeURIComponent): {status, profile, preferences, r}. */
export async function getProfile(srv, id) {
  const r = await srv.request('GET', `/profiles/${encodeURIComponent(id)}`, { auth: 'admin' });
  return { status: r.status, profile: r.json?.profile, preferences: r.json?.preferences, r };
}

/** Wait until the profile of id deep-equals `expected`; returns it. */
export async function expectProfile(srv, id, expected, { timeout = 5000 } = {}) {
  let last;
  try {
    await waitFor(
      async () => {
        last = await getProfile(srv, id);
        if (last.status !== 200) return false;
        try {
          assert.deepEqual(last.profile, expected);
          return true;
        } catch {
          return false;
        }
      },
      { timeout, what: `profile ${JSON.stringify(id)} to be ${JSON.stringify(expected)}` },
    );
  } catch (e) {
    e.message += `\n  last: ${last?.status} ${last?.r?.body}`;
    throw e;
  }
  return last;
}

/** Wait until GET /profiles/<id> is 404. */
export async function expectNoProfile(srv, id, { timeout = 5000 } = {}) {
  let last;
  try {
    await waitFor(
      async () => {
        last = await getProfile(srv, id);
        return last.status === 404;
      },
      { timeout, what: `profile ${JSON.stringify(id)} to be 404` },
    );
  } catch (e) {
    e.message += `\n  last: ${last?.status} ${last?.r?.body}`;
    throw e;
  }
}

/* ---- raw requests ------------------------------------------------------------------------ */

/**
 * chunkedRequest(port, {method, path, headers, chunks}) -> {status, headers, body}
 * One HTTP/1.1 request with Transfer-Encoding: chunked (no Content-Length), the body
 * sent as the given chunks. An early answer (e.g. 413 while we still send) is returned.
 */
export function chunkedRequest(port, { method = 'POST', path = '/', headers = {}, chunks = [], timeout = 15000 } = {}) {
  return new Promise((resolve, reject) => {
    const h = { Host: `127.0.0.1:${port}`, Connection: 'close', 'Transfer-Encoding': 'chunked', ...headers };
    const head = `${method} ${path} HTTP/1.1\r\n${Object.entries(h).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`;
    const got = [];
    let done = false;
    const sock = net.connect(port, '127.0.0.1');
    const timer = setTimeout(() => finish(new Error(`chunkedRequest: no complete response within ${timeout} ms`)), timeout);
    function parse(final) {
      let all = Buffer.concat(got).toString('latin1');
      while (/^HTTP\/1\.[01] 1\d\d/.test(all) && all.includes('\r\n\r\n')) all = all.slice(all.indexOf('\r\n\r\n') + 4);
      const end = all.indexOf('\r\n\r\n');
      if (end < 0) return null;
      const lines = all.slice(0, end).split('\r\n');
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0]);
      if (!m) return null;
      const hdrs = {};
      for (const l of lines.slice(1)) {
        const i = l.indexOf(':');
        if (i > 0) hdrs[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
      }
      let rest = all.slice(end + 4);
      if (hdrs['content-length'] !== undefined) {
        if (!final && rest.length < Number(hdrs['content-length'])) return null;
      } else if (/chunked/i.test(hdrs['transfer-encoding'] ?? '')) {
        // decode a chunked response
        let out = '';
        let p = 0;
        for (;;) {
          const e = rest.indexOf('\r\n', p);
          if (e < 0) return final ? { status: Number(m[1]), headers: hdrs, body: out } : null;
          const n = parseInt(rest.slice(p, e), 16);
          if (n === 0) break;
          if (rest.length < e + 2 + n) return final ? { status: Number(m[1]), headers: hdrs, body: out } : null;
          out += rest.slice(e + 2, e + 2 + n);
          p = e + 2 + n + 2;
        }
        rest = out;
      } else if (!final) {
        return null;
      }
      return { status: Number(m[1]), headers: hdrs, body: Buffer.from(rest, 'latin1').toString('utf8') };
    }
    function finish(err) {
      if (done) return;
      const r = parse(Boolean(err));
      if (r) {
        done = true;
        clearTimeout(timer);
        sock.destroy();
        resolve(r);
      } else if (err) {
        done = true;
        clearTimeout(timer);
        sock.destroy();
        reject(err);
      }
    }
    sock.on('data', (d) => {
      got.push(d);
      finish();
    });
    sock.on('end', () => finish(new Error('chunkedRequest: connection closed before a response')));
    sock.on('close', () => finish(new Error('chunkedRequest: connection closed before a response')));
    sock.on('error', (e) => setTimeout(() => finish(e), 200));
    sock.on('connect', async () => {
      sock.write(head);
      for (const c of chunks) {
        if (done || sock.destroyed) return;
        const b = Buffer.isBuffer(c) ? c : Buffer.from(c);
        if (b.length === 0) continue;
        const ok = sock.write(Buffer.concat([Buffer.from(`${b.length.toString(16)}\r\n`), b, Buffer.from('\r\n')]));
        if (!ok) await new Promise((r) => sock.once('drain', r));
        await sleep(5); // separate TCP segments: really chunked on the wire
      }
      if (!done && !sock.destroyed) sock.write('0\r\n\r\n');
    });
  });
}

/** Split a buffer into n roughly equal pieces. */
export function pieces(buf, n) {
  const out = [];
  const step = Math.ceil(buf.length / n);
  for (let i = 0; i < buf.length; i += step) out.push(buf.subarray(i, i + step));
  return out;
}
