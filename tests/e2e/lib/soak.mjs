// soak.mjs: steady load at a fraction of measured capacity, watched window by window.
// Used by tests/soak/soak.mjs (`make soak`, 30 minutes) and tests/e2e/soak.test.mjs (the
// short run inside `make test`).
//
// The server: the real binary through the e2e harness (fresh store; SQLite, or
// PostgreSQL with HERALD_TEST_STORE=postgres), a webhook provider pointed at a counting
// sink of our own (it keeps per-tag counts, not bodies, so a long run stays small), a
// published template "tag:{{data.tag}}" and one automation (a send step to
// refs.data.userId) linked to track/Soak Event.
//
// The load, one "unit" = one delivery expected at the sink:
//   events  POST /v1/batch with BATCH track events (write key): each event runs the
//           automation, which sends one message
//   sends   POST /send (admin key) of that template to one user
// Half of the units are events, half sends.
//
// 1. capacity: unless given, a saturating phase of capSeconds measures the end-to-end
//    rate: CAP_CONC clients issue requests as fast as answered, but only while fewer
//    than CAP_BACKLOG acknowledged units wait for delivery (otherwise ingest alone would
//    run far ahead of the pipeline); capacity = deliveries per second over the second
//    half of the phase. Then the backlog drains.
// 2. soak: units at fraction x capacity per second, open loop (requests are issued on
//    schedule whether or not earlier ones have been answered, up to MAX_IN_FLIGHT).
//    Every windowSeconds one line: RSS (VmRSS of the server), its anonymous part, the
//    own heap (see memory below), p50/p99 of the
//    acknowledgements and of send-to-delivery in that window, queue depth, counts.
// 3. drain (waiting as long as deliveries keep arriving: at most a minute without one,
//    30 minutes in all) and verdicts:
//    lost      every acknowledged unit (2xx) reached the sink exactly once; none arrived
//              that was refused; a request that failed in transport is reported (and
//              counts as an error), its unit may or may not arrive. "Once" is per
//              Idempotency-Key: a call herald made again after losing its answer (the
//              sink answered after --provider-timeout-ms, as it does when the machine is
//              overloaded) carries the first call's key and is reported as redelivered,
//              not as a duplicate (at-least-once; DESIGN.md's delivery semantics)
//    memory    windows after the warm-up (the first max(warmupSeconds, 20 %) of the
//              run) are split in thirds. Own heap: what the allocator has handed out and
//              not had back (herald_heap_allocated_bytes) less what the store engine holds
//              (herald_store_engine_bytes: SQLite's page caches fill up to their 64 MiB
//              cache size as the store grows, bounded, so they rose through a short soak
//              on a fresh store). Judged once the load has stopped and every unit is
//              delivered: the lowest own heap of IDLE_SAMPLES samples a second apart (the
//              client's keep-alive connections close meanwhile) <= the first third's
//              lowest x 1.10 + 8 MiB (a window scrape that failed is left out). Under
//              load the heap holds the backlog, which grows for as long as a slow spell
//              of a shared machine lasts (three CPU hogs on two cores: 22 -> 98 MiB with
//              6,300 jobs queued) and is freed when it drains; a leak stays. When the
//              allocator cannot say (no sample), anonymous RSS (RssAnon) less the engine's
//              stands in, and the rule is the max of the last third <= the max of the
//              first x 1.10 + 8 MiB (RSS keeps a burst's pages after they are freed, so
//              it cannot be judged once drained). RSS is printed, not judged. Skipped
//              under ASan and TSan (quarantine, shadow memory and race history grow with
//              allocations, not with live data)
//    latency   the median of the windows' p99 in the last third <= LAT_FACTOR x the
//              same median in the first third + LAT_SLACK_MS, for acknowledgements and
//              for deliveries (a median of windows, so that a few windows disturbed by a
//              neighbour on a shared machine do not decide; a real trend moves them all).
//              The p99 over all samples of each third is printed beside it
import http from 'node:http';
import fs from 'node:fs';

import { startServer, waitFor, sleep, sanitized, assertNoSanitizerReports } from './server.mjs';
import { basic } from './ingest.mjs';

export const EVENT = 'Soak Event';
const BATCH = 5;               // events per /v1/batch
const CAP_CONC = 16;           // clients while measuring capacity
const CAP_BACKLOG = 400;       // ... each waits while this many units are undelivered
const MAX_IN_FLIGHT = 512;     // the open-loop generator never has more than this
const TICK_MS = 20;
const DRAIN_STALL_MS = 60000;  // the final drain gives up after this long without a delivery
const DRAIN_MAX_MS = 30 * 60000;
export const MEM_FACTOR = 1.1;
export const MEM_SLACK_KB = 8 * 1024;
const IDLE_SAMPLES = 8;        // heap samples once drained, a second apart (undici keeps idle sockets 4 s)
export const LAT_FACTOR = 3;
export const LAT_SLACK_MS = 50;

/* ---- small statistics -------------------------------------------------------------- */

export function pct(sorted, p) {
  if (!sorted.length) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}
const sortNum = (a) => Float64Array.from(a).sort();
const fmt = (v) => (Number.isFinite(v) ? v.toFixed(1) : '-');

/* ---- the counting sink ----------------------------------------------------------- */

/* keyHash: a 32-bit FNV-1a of an Idempotency-Key (a small integer per tag keeps a
 * 30-minute run's maps small). */
function keyHash(k) {
  let h = 0x811c9dc5;
  for (let i = 0; i < k.length; i++) h = Math.imul(h ^ k.charCodeAt(i), 0x01000193);
  return h | 0;
}

/** A webhook sink that counts deliveries per tag and notes each one's latency
 *  (arrival - the send time carried in the tag "<kind>-<n>-<ms>"). A delivery that
 *  repeats the Idempotency-Key of the tag's first one is a call herald made again after
 *  it lost the answer (a timeout, a lease taken over): at-least-once, which a real
 *  provider deduplicates by that key. It is counted in `redelivered`, not in `counts`.
 *  Any other second delivery (another key, or none) is a duplicate: `counts` > 1. */
async function startCountingSink(onDelivery) {
  const counts = new Map();
  const firstKey = new Map(); // tag -> keyHash of its first delivery's Idempotency-Key
  const sockets = new Set();
  let total = 0, redelivered = 0;
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const m = /tag:([es]-\d+-(\d+))/.exec(body);
      total++;
      if (m) {
        const key = req.headers['idempotency-key'];
        const h = key ? keyHash(key) : null;
        if (h !== null && counts.has(m[1]) && firstKey.get(m[1]) === h) {
          redelivered++;
        } else {
          if (!counts.has(m[1])) firstKey.set(m[1], h);
          counts.set(m[1], (counts.get(m[1]) ?? 0) + 1);
          onDelivery(Date.now() - Number(m[2]));
        }
      }
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(`{"id":"sink-${total}"}`);
    });
  });
  server.keepAliveTimeout = 30000;
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}/hook`,
    counts,
    get total() { return total; },
    get redelivered() { return redelivered; },
    close() {
      for (const s of sockets) s.destroy();
      return new Promise((r) => server.close(() => r()));
    },
  };
}

/* ---- the server and its setup -------------------------------------------------------- */

/* rss: the server's resident memory in kB (/proc/PID/status): all (VmRSS), anonymous
 * (RssAnon: heap and stacks, where a leak shows) and file-backed (RssFile: the binary,
 * libraries and the memory-mapped SQLite store, whose pages grow with the store file and
 * are the kernel's to drop). */
function rss(pid) {
  try {
    const st = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (k) => {
      const m = new RegExp(`${k}:\\s+(\\d+) kB`).exec(st);
      return m ? Number(m[1]) : NaN;
    };
    return { all: kb('VmRSS'), anon: kb('RssAnon'), file: kb('RssFile') };
  } catch {
    return { all: NaN, anon: NaN, file: NaN };
  }
}

/* gauges: from /metrics, the queue depth summed over kinds and states, and the heap the
 * embedded store engine holds in kB (herald_store_engine_bytes: SQLite's page caches,
 * which fill up to their cache size as the store grows: bounded, not a leak) and the heap
 * the allocator counts as in use in kB (herald_heap_allocated_bytes; NaN when absent);
 * ok false (and every figure NaN) when the scrape failed. */
async function gauges(srv) {
  try {
    const r = await srv.request('GET', '/metrics', { timeout: 10000 });
    if (r.status !== 200) throw new Error(`/metrics answered ${r.status}`);
    let n = 0;
    for (const m of r.body.matchAll(/^herald_queue_depth\{[^}]*\} (\d+)$/gm)) n += Number(m[1]);
    const e = /^herald_store_engine_bytes (\d+)$/m.exec(r.body);
    const h = /^herald_heap_allocated_bytes (\d+)$/m.exec(r.body);
    return { ok: true, queue: n, engineKb: e ? Number(e[1]) / 1024 : NaN, heapKb: h ? Number(h[1]) / 1024 : NaN };
  } catch {
    return { ok: false, queue: NaN, engineKb: NaN, heapKb: NaN };
  }
}

/**
 * runSoak(opts) -> Promise<report>
 *   seconds        soak duration (after the capacity phase)
 *   sanitizerSeconds  the duration instead, for a sanitizer build (ASan/TSan: memory is
 *                  not judged there, so the run only has to show nothing lost under load)
 *   windowSeconds  one sample line per window (default 10)
 *   warmupSeconds  not judged for memory and latency (default 30; at least 20 % of the run)
 *   capacity       units/s; when absent, measured for capSeconds (default 10)
 *   fraction       of capacity to run at (default 0.5)
 *   t              node:test context (server stop registered there), optional
 *   log            line printer (default console.log)
 *   serverArgs     extra `herald serve` flags
 * report: {capacity, rate, windows, lost, duplicates, redelivered, timeouts (herald's
 *          timed-out transfers), lostLeases, unexpected, errors, statuses,
 *          acked, memory: {checked, ok, source, firstKb (the first third's lowest), lastKb
 *          (the last third's median), firstMaxKb, lastMaxKb, drainedKb, limitKb, why},
 *          latency: {ok, ack: {first, last}, delivery: {first, last}}, asan}
 */
export async function runSoak(opts = {}) {
  const log = opts.log ?? ((s) => console.log(s));
  let seconds = opts.seconds ?? 60;
  const windowS = opts.windowSeconds ?? 10;
  const fraction = opts.fraction ?? 0.5;
  const capSeconds = opts.capSeconds ?? 10;

  let windowDeliv = [];
  const sink = await startCountingSink((ms) => windowDeliv.push(ms));
  // up to MAX_IN_FLIGHT connections from 127.0.0.1, over the default per-address cap
  const srv = await startServer({ t: opts.t, name: opts.name ?? 'soak', logLevel: 'warn', args: ['--max-conns-per-ip', '0', ...(opts.serverArgs ?? [])] });
  const pid = srv.run.proc.pid;
  const asan = sanitized(pid);
  if (asan && opts.sanitizerSeconds) seconds = opts.sanitizerSeconds;
  const admin = async (method, p, json) => {
    const r = await srv.request(method, p, { auth: 'admin', json });
    if (r.status >= 300) throw new Error(`${method} ${p}: ${r.status} ${r.body}`);
    return r.json;
  };
  try {
    await admin('POST', '/providers', { provider: 'webhook', settings: { url: sink.url } });
    const tpl = (await admin('POST', '/notifications', { notification: { name: 'Soak', content: { title: 'Soak', body: 'tag:{{data.tag}}' } } })).id;
    await admin('POST', `/notifications/${tpl}/publish`, {});
    await admin('PUT', '/automations/soak', { name: 'soak', steps: [{ action: 'send', template: tpl, recipient: 'refs.data.userId' }] });
    await admin('POST', '/links', { event: `track/${EVENT}`, automation_id: 'soak' });

    const writeAuth = basic(srv.writeKey);
    const adminAuth = srv.authHeader('admin');
    const acked = new Set();
    const refused = new Set();
    const statuses = new Map();
    let errors = 0;
    let seq = 0;
    let inFlight = 0;
    let windowAck = [];
    const errorSamples = [];

    // one request: a batch of BATCH events (kind 'e') or one send (kind 's')
    const issue = async (kind) => {
      const now = Date.now();
      const tags = kind === 'e' ? Array.from({ length: BATCH }, () => `e-${seq++}-${now}`) : [`s-${seq++}-${now}`];
      const req = kind === 'e'
        ? { path: '/v1/batch', auth: writeAuth,
            body: { batch: tags.map((tag) => ({ type: 'track', event: EVENT, userId: 'u1', messageId: tag, properties: { tag } })) } }
        : { path: '/send', auth: adminAuth,
            body: { message: { template: tpl, to: { user_id: 'u1' }, data: { tag: tags[0] }, routing: { method: 'single', channels: ['webhook'] } } } };
      inFlight++;
      const t0 = performance.now();
      try {
        const res = await fetch(srv.url + req.path, {
          method: 'POST', headers: { Authorization: req.auth, 'Content-Type': 'application/json' },
          body: JSON.stringify(req.body), signal: AbortSignal.timeout(30000),
        });
        await res.arrayBuffer();
        windowAck.push(performance.now() - t0);
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        if (res.status >= 200 && res.status < 300) for (const x of tags) acked.add(x);
        else {
          for (const x of tags) refused.add(x);
          if (res.status >= 500) errors++;
        }
      } catch (e) {
        errors++;
        if (errorSamples.length < 5) errorSamples.push(String(e.message ?? e) + (e.cause ? ` (${e.cause.code ?? e.cause.message ?? e.cause})` : ""));
      } finally {
        inFlight--;
      }
      return tags.length;
    };

    // ---- 1. capacity ---------------------------------------------------------------
    // closed loop, end to end: CAP_CONC clients, each issuing only while fewer than
    // CAP_BACKLOG acknowledged units wait for delivery, so ingest cannot run ahead of the
    // pipeline; capacity is the delivery rate over the second half of the phase
    let capacity = opts.capacity;
    if (!capacity) {
      log(`soak: measuring capacity for ${capSeconds} s: ${CAP_CONC} clients, at most ${CAP_BACKLOG} units acknowledged and not yet delivered`);
      const tStart = Date.now(), tEnd = tStart + capSeconds * 1000;
      let d0 = 0, t0 = 0, a0 = 0;
      const worker = async (k) => {
        while (Date.now() < tEnd) {
          if (acked.size - sink.total >= CAP_BACKLOG) await sleep(2);
          else await issue(k % 2 ? 's' : 'e');
        }
      };
      const sampler = (async () => {
        await sleep(capSeconds * 500);
        d0 = sink.total;
        a0 = acked.size;
        t0 = Date.now();
      })();
      await Promise.all([...Array.from({ length: CAP_CONC }, (_, k) => worker(k)), sampler]);
      const span = (Date.now() - t0) / 1000;
      const dps = (sink.total - d0) / span, aps = (acked.size - a0) / span;
      capacity = Math.max(1, dps);
      const drain0 = Date.now();
      await waitFor(async () => sink.total >= acked.size && (await gauges(srv)).queue === 0,
        { timeout: 300000, interval: 200, what: 'the capacity backlog drained' });
      log(`soak: capacity ${capacity.toFixed(0)} units/s end to end (acknowledged ${aps.toFixed(0)}/s over the same span); ` +
          `drained in ${((Date.now() - drain0) / 1000).toFixed(1)} s`);
    }
    const rate = capacity * fraction;
    windowAck = [];
    windowDeliv = [];

    // ---- 2. the soak -------------------------------------------------------------------
    log(`soak: ${seconds} s at ${rate.toFixed(1)} units/s (${(fraction * 100).toFixed(0)} % of ${capacity.toFixed(0)}), ` +
        `half as events in batches of ${BATCH}, half as /send; a line every ${windowS} s`);
    log('soak:   t_s   rss_mb  anon_mb  own_mb  ack_p50  ack_p99  dlv_p50  dlv_p99  queue  acked  deliv  in_flight');
    const windows = [];
    const start = Date.now();
    let units = 0, behind = 0, nextWindow = start + windowS * 1000, eventTurn = 0;
    const pending = new Set();
    while (Date.now() - start < seconds * 1000) {
      const due = Math.floor(((Date.now() - start) / 1000) * rate);
      while (units < due) {
        if (inFlight >= MAX_IN_FLIGHT) {
          behind += due - units;
          units = due;
          break;
        }
        // alternate so that half of the units are events: a batch carries BATCH units
        const kind = eventTurn <= 0 ? 'e' : 's';
        eventTurn += kind === 'e' ? BATCH : -1;
        const p = issue(kind);
        pending.add(p);
        p.finally(() => pending.delete(p));
        units += kind === 'e' ? BATCH : 1;
      }
      if (Date.now() >= nextWindow) {
        const a = sortNum(windowAck), d = sortNum(windowDeliv);
        windowAck = [];
        windowDeliv = [];
        const g = await gauges(srv);
        const w = {
          t: (Date.now() - start) / 1000, rss: rss(pid), queue: g.queue,
          /* herald's own: where a leak shows (NaN, source null, when the scrape failed) */
          heapKb: (Number.isFinite(g.heapKb) ? g.heapKb : rss(pid).anon) - g.engineKb,
          heapSrc: !g.ok ? null : Number.isFinite(g.heapKb) ? 'allocator' : 'rss',
          ack: { n: a.length, p50: pct(a, 50), p99: pct(a, 99), samples: a },
          dlv: { n: d.length, p50: pct(d, 50), p99: pct(d, 99), samples: d },
          acked: acked.size, delivered: sink.total, inFlight,
        };
        windows.push(w);
        log(`soak: ${w.t.toFixed(0).padStart(5)} ${(w.rss.all / 1024).toFixed(1).padStart(8)} ${(w.rss.anon / 1024).toFixed(1).padStart(8)} ${(w.heapKb / 1024).toFixed(1).padStart(8)} ${fmt(w.ack.p50).padStart(8)} ${fmt(w.ack.p99).padStart(8)} ` +
            `${fmt(w.dlv.p50).padStart(8)} ${fmt(w.dlv.p99).padStart(8)} ${String(w.queue).padStart(6)} ${String(w.acked).padStart(6)} ${String(w.delivered).padStart(6)} ${String(inFlight).padStart(10)}`);
        nextWindow += windowS * 1000;
        if (srv.run.result) throw new Error(`herald exited during the soak: ${JSON.stringify(srv.run.result)}\n${srv.output().slice(-4000)}`);
      }
      await sleep(TICK_MS);
    }

    // ---- 3. drain and verdicts -----------------------------------------------------------
    await Promise.allSettled([...pending]);
    // drain: wait while deliveries keep coming (a backlog left by a slow spell can take
    // minutes); give up after DRAIN_STALL_MS without progress, or DRAIN_MAX_MS in all
    const drainT0 = Date.now();
    for (let last = -1, lastAt = Date.now(); Date.now() - drainT0 < DRAIN_MAX_MS; await sleep(500)) {
      if (sink.counts.size >= acked.size && [...acked].every((x) => sink.counts.has(x))) break;
      if (sink.total !== last) {
        last = sink.total;
        lastAt = Date.now();
      } else if (Date.now() - lastAt > DRAIN_STALL_MS) break;
    }
    await sleep(1000); // a late duplicate would show now
    // the heap once the work is done, for the memory verdict: the lowest of a few
    // samples, as the client's idle keep-alive connections (each with its buffers in
    // herald) close over the next seconds; a leak stays in every sample
    let idleKb = NaN;
    for (let i = 0; !asan && i < IDLE_SAMPLES; i++) {
      const g = await gauges(srv);
      const kb = g.heapKb - g.engineKb;
      if (Number.isFinite(kb) && !(kb >= idleKb)) idleKb = kb;
      if (i + 1 < IDLE_SAMPLES) await sleep(1000);
    }
    // a redelivery is explained only by a call whose answer herald lost: a timed-out
    // transfer (no node dies here, and a live node renews its leases)
    const samples = (await srv.metrics()).samples;
    const timeouts = samples.filter((x) => x.name === 'herald_transport_completed_total' && x.labels.result === 'timeout')
      .reduce((a, x) => a + x.value, 0);
    const lostLeases = samples.filter((x) => x.name === 'herald_jobs_total' && x.labels.outcome === 'lost_lease')
      .reduce((a, x) => a + x.value, 0);
    const lost = [...acked].filter((x) => !sink.counts.has(x));
    const duplicates = [...sink.counts].filter(([, n]) => n > 1).map(([x, n]) => `${x} x${n}`);
    const unexpected = [...sink.counts.keys()].filter((x) => refused.has(x));
    log(`soak: drained in ${((Date.now() - drainT0) / 1000).toFixed(1)} s; acknowledged ${acked.size} units, ` +
        `delivered ${sink.counts.size} distinct (and ${sink.redelivered} again with the same Idempotency-Key, ` +
        `after ${timeouts} timed-out calls; ${lostLeases} leases lost), statuses ${JSON.stringify(Object.fromEntries(statuses))}, transport errors ${errors}` +
        `${errorSamples.length ? ` (${errorSamples.join('; ')})` : ''}, behind schedule ${behind} units`);

    // memory and latency: windows after the warm-up, in thirds
    const warm = Math.max(opts.warmupSeconds ?? 30, seconds * 0.2);
    const judged = windows.filter((w) => w.t > warm);
    const third = Math.max(1, Math.floor(judged.length / 3));
    const first = judged.slice(0, third), last = judged.slice(-third);
    const memory = { checked: false, ok: true, why: '' };
    if (asan) memory.why = 'sanitizer build (ASan/TSan): quarantine, shadow memory and race history dominate RSS';
    else if (judged.length < 3) memory.why = `only ${judged.length} windows after the ${warm.toFixed(0)} s warm-up`;
    else {
      memory.checked = true;
      // windows whose scrape failed say nothing either way
      const seen = (ws) => ws.filter((w) => w.heapSrc !== null && Number.isFinite(w.heapKb)).map((w) => w.heapKb);
      const scraped = judged.filter((w) => w.heapSrc !== null);
      memory.source = scraped.length && scraped.every((w) => w.heapSrc === 'allocator') ? 'allocator' : 'rss';
      memory.firstKb = Math.min(...seen(first));
      memory.lastKb = pct(sortNum(seen(last)), 50);
      memory.firstMaxKb = Math.max(...seen(first));
      memory.lastMaxKb = Math.max(...seen(last));
      if (memory.source === 'allocator') {
        memory.drainedKb = idleKb;
        memory.limitKb = Math.round(memory.firstKb * MEM_FACTOR + MEM_SLACK_KB);
        memory.ok = memory.drainedKb <= memory.limitKb;
        if (!Number.isFinite(idleKb)) memory.why = 'no /metrics scrape answered once the load was drained';
        else if (!Number.isFinite(memory.firstKb)) {
          memory.ok = false;
          memory.why = 'no /metrics scrape answered in the first third';
        }
      } else {
        memory.limitKb = Math.round(memory.firstMaxKb * MEM_FACTOR + MEM_SLACK_KB);
        memory.ok = memory.lastMaxKb <= memory.limitKb;
      }
    }
    const merged = (ws, k) => sortNum(ws.flatMap((w) => Array.from(w[k].samples)));
    const medianP99 = (ws, k) => pct(sortNum(ws.map((w) => w[k].p99).filter(Number.isFinite)), 50);
    const latOf = (k) => {
      const f = medianP99(first, k), l = medianP99(last, k);
      return { first: f, last: l, limit: f * LAT_FACTOR + LAT_SLACK_MS, ok: !(l > f * LAT_FACTOR + LAT_SLACK_MS),
               firstAll: pct(merged(first, k), 99), lastAll: pct(merged(last, k), 99) };
    };
    const latency = judged.length >= 3 ? { ack: latOf('ack'), delivery: latOf('dlv') } : { ack: {}, delivery: {} };
    latency.ok = judged.length < 3 || (latency.ack.ok && latency.delivery.ok);
    if (memory.checked)
      log(memory.source === 'allocator'
        ? `soak: memory: own heap (allocated less the store engine's) once drained ${(memory.drainedKb / 1024).toFixed(1)} MiB, ` +
          `limit ${(memory.limitKb / 1024).toFixed(1)} MiB (the first third's lowest ${(memory.firstKb / 1024).toFixed(1)} x${MEM_FACTOR} + ${MEM_SLACK_KB / 1024} MiB): ` +
          `${memory.ok ? 'flat' : `GREW${memory.why ? ` (${memory.why})` : ''}`}; under load: the last third's median ${(memory.lastKb / 1024).toFixed(1)} MiB, ` +
          `max ${(memory.firstMaxKb / 1024).toFixed(1)} -> ${(memory.lastMaxKb / 1024).toFixed(1)} MiB`
        : `soak: memory: max own heap (anonymous RSS less the store engine's) first third ${(memory.firstMaxKb / 1024).toFixed(1)} MiB, ` +
          `last third ${(memory.lastMaxKb / 1024).toFixed(1)} MiB, limit ${(memory.limitKb / 1024).toFixed(1)} MiB (x${MEM_FACTOR} + ${MEM_SLACK_KB / 1024} MiB): ${memory.ok ? 'flat' : 'GREW'}`);
    else log(`soak: memory: not judged (${memory.why})`);
    if (judged.length >= 3)
      for (const k of ['ack', 'delivery'])
        log(`soak: latency ${k}: median window p99 first third ${fmt(latency[k].first)} ms, last third ${fmt(latency[k].last)} ms, ` +
            `limit ${fmt(latency[k].limit)} ms (x${LAT_FACTOR} + ${LAT_SLACK_MS} ms): ${latency[k].ok ? 'flat' : 'GREW'}; ` +
            `p99 of all samples ${fmt(latency[k].firstAll)} -> ${fmt(latency[k].lastAll)} ms`);

    const res = await srv.stop();
    assertNoSanitizerReports(srv);
    return {
      capacity, rate, windows: windows.map(({ ack, dlv, ...w }) => ({ ...w, ack: { n: ack.n, p50: ack.p50, p99: ack.p99 }, dlv: { n: dlv.n, p50: dlv.p50, p99: dlv.p99 } })),
      lost, duplicates, redelivered: sink.redelivered, timeouts, lostLeases, unexpected, errors, statuses: Object.fromEntries(statuses), acked: acked.size, behind,
      memory, latency, asan, exit: res,
    };
  } finally {
    await srv.stop();
    await sink.close();
  }
}
