// crash.test.mjs: kill -9 at random moments under sustained load, again and again
// (HERALD_CRASH_KILLS, default 20), restarting on the same store each time (SQLite
// file, or the same PostgreSQL database). Several clients keep the server busy the
// whole time: Segment /v1/batch and /v1/track (tracks of a linked event start an
// automation whose send step goes to a webhook sink), /v1/identify setting traits, and
// POST /send to the webhook sink (some to the SMTP sink as well). A client whose
// request dies with the server retries the same request (same messageIds, same
// Idempotency-Key) until it is acknowledged, as a real client does.
//
// At the end (load stopped, a clean restart, the queue drained):
//   - every acknowledged event was processed exactly once: catalog counts equal what
//     was sent, every identify's trait is on its profile, every linked track ran its
//     automation once (one message per event, delivered, run COMPLETED);
//   - every accepted message is SENT (nothing pending, nothing failed);
//   - a sink saw each message (per channel) at least once; a repeat is counted as a
//     duplicate, and each is accounted for by an attempt in flight at a kill: the
//     committed DELIVERING event in the message's history is `retaken` with a lease
//     count of at least one plus its repeats; duplicates <= kills x IN_FLIGHT: calls no
//     longer hold a worker; a provider's limit slot is held from the call's start until
//     its outcome is committed, so at a kill at most the cap per provider is lost.
// The counts are printed (kills, events acked, messages, deliveries, duplicates,
// attempts retaken after a kill) so the CI log carries them.

import assert from 'node:assert/strict';
import http from 'node:http';
import { test } from 'node:test';

import { catalogCounts } from './lib/ingest.mjs';
import { STORE, sleep, startServer, waitFor, scaled } from './lib/server.mjs';
import { closeAfterAll } from './lib/cleanup.mjs';
import { startSmtpSink } from './lib/smtp.mjs';

const KILLS = Number(process.env.HERALD_CRASH_KILLS ?? 20);
const WORKERS = 4; // --workers
const PROVIDER_CONCURRENCY = 4; // --provider-concurrency: calls not yet durable per provider
const IN_FLIGHT = 2 * PROVIDER_CONCURRENCY; // attempts one kill can lose: webhook + smtp
const KILL_DELAY_MS = [300, 3000]; // uniform random wait after the server is ready again
const SINK_DELAY_MS = 15; // the webhook sink answers after this, so attempts are in flight
const REQUEST_TIMEOUT_MS = 5000;
const PACE_MS = 35; // each client's pause between requests: load, not saturation
const ORDER_EVENT = 'Crash Order'; // linked to the automation
const TICK_EVENT = 'Crash Tick'; // linked to nothing
const ID_USERS = 16; // identify events spread over this many profiles

const closers = closeAfterAll();

const rand = (lo, hi) => lo + Math.random() * (hi - lo);

/** A webhook sink answering 200 after SINK_DELAY_MS; records each delivery. */
async function startSink() {
  const got = []; // {key, messageId, body}
  const sockets = new Set();
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      let json;
      try {
        json = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        json = undefined;
      }
      got.push({ key: req.headers['idempotency-key'], messageId: json?.message_id, body: json?.content?.body ?? json?.body });
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
  closers.push(
    () =>
      new Promise((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  );
  return { url: `http://127.0.0.1:${server.address().port}/hook`, got };
}

test(`kill -9 at random moments under load (${KILLS} kills): nothing acknowledged is lost, nothing stuck, duplicates only from attempts in flight`, { timeout: scaled(420000) }, async (t) => {
  const srv = await startServer({ t, name: 'crash', args: ['--workers', String(WORKERS), '--provider-concurrency', String(PROVIDER_CONCURRENCY), '--retry-base-ms', '200'] });
  const admin = (method, p, json) => srv.request(method, p, { auth: 'admin', json });
  const ok = (r, status = 200) => {
    assert.equal(r.status, status, `expected ${status}, got ${r.status}: ${r.body}`);
    return r.json;
  };

  const sink = await startSink();
  const smtp = await startSmtpSink();
  closers.push(() => smtp.close());
  ok(await admin('POST', '/providers', { provider: 'webhook', settings: { url: sink.url } }));
  ok(await admin('POST', '/providers', { provider: 'smtp', settings: { host: '127.0.0.1', port: smtp.port, secure: 'none', from: 'crash@herald.test' } }));
  const tpl = ok(await admin('POST', '/notifications', { notification: { name: 'Crash order', content: { title: 'Order', body: 'order:{{data.order}}' } }, state: 'PUBLISHED' })).id;
  ok(await admin('PUT', '/automations/crash-order', {
    name: 'Crash order',
    steps: [{ action: 'send', message: { template: tpl, routing: { method: 'single', channels: ['webhook'] } } }],
  }));
  ok(await admin('POST', '/links', { event: `track/${ORDER_EVENT}`, automation_id: 'crash-order' }));

  /* ---- the clients ------------------------------------------------------------------ */

  const stats = { requests: 0, connErrors: 0, busy: 0, waited409: 0, replayed: 0, dupEvents: 0 };
  const acked = {
    orders: new Set(), // messageIds of acknowledged Crash Order tracks
    ticks: new Set(),
    identifies: new Map(), // messageId -> {userId, trait, value}
    sends: new Map(), // request id (= message id) -> {smtp: email or null}
  };
  const failures = [];
  let stopping = false;

  /** Send until acknowledged (2xx). Connection errors and timeouts (the server was
   *  killed under the request), 429/503 (busy) and 409 (an Idempotency-Key left pending
   *  by a killed process: on SQLite the restarted server takes it over at once, on
   *  PostgreSQL only once it is 60 s old) are retried with the same request; anything
   *  else fails. */
  async function untilAcked(what, fn, accept, { on409 } = {}) {
    let saw409 = false;
    for (;;) {
      let r;
      try {
        stats.requests += 1;
        r = await fn();
      } catch {
        stats.connErrors += 1;
        await sleep(50);
        continue;
      }
      if (r.status === 429 || r.status === 503) {
        stats.busy += 1;
        await sleep(200);
        continue;
      }
      if (r.status === 409) {
        if (on409) return on409();
        if (!saw409) stats.waited409 += 1;
        saw409 = true;
        await sleep(500);
        continue;
      }
      if (r.status !== accept) throw new Error(`${what}: expected ${accept}, got ${r.status}: ${r.body}`);
      return r;
    }
  }

  let seq = 0;
  const track = (event, userId) => {
    const messageId = `crash-${event === ORDER_EVENT ? 'o' : 't'}-${seq++}`;
    return { type: 'track', event, userId, messageId, properties: { order: messageId } };
  };
  const identify = () => {
    const n = seq++;
    const messageId = `crash-i-${n}`;
    return { type: 'identify', userId: `crash-id-${n % ID_USERS}`, messageId, traits: { [`k${n}`]: n } };
  };
  function record(events) {
    for (const e of events) {
      if (e.type === 'identify') acked.identifies.set(e.messageId, { userId: e.userId, trait: Object.keys(e.traits)[0], value: Object.values(e.traits)[0] });
      else if (e.event === ORDER_EVENT) acked.orders.add(e.messageId);
      else acked.ticks.add(e.messageId);
    }
  }

  async function batchClient(c) {
    while (!stopping) {
      const batch = [];
      for (let k = 0; k < 8; k++) {
        const x = Math.random();
        batch.push(x < 0.25 ? track(ORDER_EVENT, `crash-b${c}-${k}`) : x < 0.6 ? track(TICK_EVENT, `crash-b${c}-${k}`) : identify());
      }
      const r = await untilAcked('POST /v1/batch', () => srv.request('POST', '/v1/batch', { auth: 'write', json: { batch }, timeout: REQUEST_TIMEOUT_MS }), 200);
      if (r.json?.accepted + r.json?.duplicates !== batch.length || r.json?.rejected?.length) failures.push(`batch answer: ${r.body}`);
      stats.dupEvents += r.json?.duplicates ?? 0;
      record(batch);
      await sleep(PACE_MS);
    }
  }

  async function singleClient(kind) {
    while (!stopping) {
      const ev = kind === 'track' ? track(ORDER_EVENT, `crash-t${seq % 7}`) : identify();
      const r = await untilAcked(`POST /v1/${kind}`, () => srv.request('POST', `/v1/${kind}`, { auth: 'write', json: ev, timeout: REQUEST_TIMEOUT_MS }), 200);
      stats.dupEvents += r.json?.duplicates ?? 0;
      record([ev]);
      await sleep(PACE_MS);
    }
  }

  let sendSeq = 0;
  async function sendClient() {
    while (!stopping) {
      const n = sendSeq++;
      const email = n % 4 === 0 ? `crash-s${n}@x.test` : null;
      const message = email
        ? { to: { user_id: `crash-s${n}`, email }, content: { title: 'S', body: `send:${n}` }, routing: { method: 'all', channels: ['webhook', 'email'] } }
        : { to: { user_id: `crash-s${n}` }, content: { title: 'S', body: `send:${n}` }, routing: { method: 'single', channels: ['webhook'] } };
      const post = () => srv.request('POST', '/send', { auth: 'admin', headers: { 'Idempotency-Key': `crash-send-${n}` }, json: { message }, timeout: REQUEST_TIMEOUT_MS });
      const done = (r) => {
        if (r.headers.get('idempotent-replayed') === 'true') stats.replayed += 1;
        assert.match(r.json?.requestId ?? '', /^\S+$/, `a requestId: ${r.body}`);
        if (acked.sends.has(r.json.requestId)) failures.push(`request id ${r.json.requestId} answered for two keys`);
        acked.sends.set(r.json.requestId, { n, email });
      };
      // a key left pending by a killed process (409) is waited out aside, as a client
      // with several requests in flight would, so the send load goes on meanwhile
      const r = await untilAcked('POST /send', post, 202, { on409: () => null });
      if (r) done(r);
      else
        aside.push(
          untilAcked('POST /send', post, 202)
            .then(done)
            .catch((e) => failures.push(e.message)),
        );
      await sleep(PACE_MS);
    }
  }
  const aside = []; // sends waiting out a pending Idempotency-Key

  const clients = [
    batchClient(0),
    batchClient(1),
    singleClient('track'),
    singleClient('identify'),
    sendClient(),
    sendClient(),
    sendClient(),
  ].map((p) =>
    p.catch((e) => {
      failures.push(e.message);
      stopping = true;
    }),
  );

  /* ---- the killer ------------------------------------------------------------------- */

  const t0 = Date.now();
  let kills = 0;
  const killAt = []; // deliveries seen at the sink at each kill
  while (kills < KILLS && !stopping) {
    await sleep(rand(...KILL_DELAY_MS));
    const k = await srv.kill9();
    assert.equal(k.signal, 'SIGKILL', `kill ${kills + 1}: ${JSON.stringify(k)}`);
    kills += 1;
    killAt.push(sink.got.length);
    await srv.restart(); // same store; throws if it does not come up healthy
  }
  await sleep(1500); // load on the last process too
  const killMs = Date.now() - t0;
  stopping = true;
  await Promise.all(clients);
  await Promise.all(aside);
  const loadMs = Date.now() - t0;
  assert.deepEqual(failures, [], 'no client saw an unexpected answer');

  // a clean restart, then the queue drains
  const tDrain = Date.now();
  const stopped = await srv.stop();
  assert.equal(stopped.code, 0, `a clean stop exits 0: ${JSON.stringify(stopped)}`);
  await srv.restart();
  let queue;
  await waitFor(
    async () => {
      queue = ok(await srv.request('GET', '/admin/queue', { auth: 'admin' }));
      return queue.jobs.every((j) => j.count === 0 || j.state === 'dead');
    },
    { timeout: 60000, interval: 250, what: 'the queue to drain' },
  );
  assert.deepEqual(queue.dead, [], `no dead jobs: ${JSON.stringify(queue)}`);
  assert.deepEqual(queue.jobs.filter((j) => j.count > 0), [], `no job left: ${JSON.stringify(queue)}`);
  const drainMs = Date.now() - tDrain;
  const tCheck = Date.now();

  /* ---- events: each acknowledged one processed exactly once ------------------------- */

  const nEvents = acked.orders.size + acked.ticks.size + acked.identifies.size;
  const catalog = await catalogCounts(srv);
  assert.deepEqual(
    { orders: catalog[`track/${ORDER_EVENT}`], ticks: catalog[`track/${TICK_EVENT}`], identify: catalog.identify },
    { orders: acked.orders.size, ticks: acked.ticks.size, identify: acked.identifies.size },
    'the catalog counts each acknowledged event once',
  );
  const want = new Map(); // userId -> {trait: value}
  for (const { userId, trait, value } of acked.identifies.values()) {
    if (!want.has(userId)) want.set(userId, {});
    want.get(userId)[trait] = value;
  }
  for (const [userId, traits] of want) {
    const r = ok(await srv.request('GET', `/profiles/${encodeURIComponent(userId)}`, { auth: 'admin' }));
    const missing = Object.keys(traits).filter((k) => r.profile?.[k] !== traits[k]);
    assert.deepEqual(missing, [], `profile ${userId} has every identified trait`);
  }

  /* ---- messages: all of them final, SENT --------------------------------------------- */

  const messages = new Map(); // id -> list item
  for (let cursor = null, page = 0; page < 10000; page++) {
    const r = ok(await srv.request('GET', `/messages?limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`, { auth: 'admin' }));
    for (const m of r.results) {
      assert.ok(!messages.has(m.id), `message ${m.id} listed twice`);
      messages.set(m.id, m);
    }
    if (!r.paging.more) break;
    cursor = r.paging.cursor;
  }
  for (const id of acked.sends.keys()) assert.ok(messages.has(id), `the accepted send ${id} has its message`);
  const runMessages = [...messages.values()].filter((m) => m.runId);
  assert.equal(runMessages.length, acked.orders.size, 'one automation message per acknowledged order event');
  assert.equal(messages.size, acked.sends.size + acked.orders.size, 'no message beyond the accepted sends and the automation runs');
  const notSent = [...messages.values()].filter((m) => m.status !== 'SENT');
  assert.deepEqual(notSent.map((m) => `${m.id}: ${m.status}`), [], 'every message SENT');
  const runIds = new Set(runMessages.map((m) => m.runId));
  assert.equal(runIds.size, acked.orders.size, 'one run per order event');
  const runList = [...runIds];
  await Promise.all(
    Array.from({ length: 8 }, async (_, w) => {
      for (let i = w; i < runList.length; i += 8) {
        const r = ok(await srv.request('GET', `/automations/runs/${encodeURIComponent(runList[i])}`, { auth: 'admin' }));
        assert.equal(r.status, 'COMPLETED', `run ${runList[i]}: ${JSON.stringify(r)}`);
      }
    }),
  );

  /* ---- deliveries: each message at least once, repeats only from in-flight attempts --- */

  await sleep(500); // nothing more arrives
  const perKey = new Map(); // idempotency key -> deliveries
  for (const d of sink.got) {
    assert.ok(d.key, 'an Idempotency-Key on every webhook delivery');
    perKey.set(d.key, (perKey.get(d.key) ?? 0) + 1);
  }
  const webhookIds = new Map(); // message id -> key
  for (const k of perKey.keys()) {
    const id = k.split(':')[0];
    assert.ok(messages.has(id), `a webhook delivery for a known message: ${k}`);
    assert.ok(!webhookIds.has(id), `one webhook key per message: ${k}`);
    webhookIds.set(id, k);
  }
  assert.equal(webhookIds.size, messages.size, 'every message reached the webhook sink');
  // each order event's own delivery: the body names the event
  const orderBodies = new Set(sink.got.filter((d) => d.body?.startsWith('order:')).map((d) => d.body.slice(6)));
  assert.deepEqual([...acked.orders].filter((o) => !orderBodies.has(o)), [], 'every order event delivered its automation message');
  assert.equal(orderBodies.size, acked.orders.size, 'no delivery for an order nobody sent');

  const mailsPerId = new Map(); // Message-ID -> count
  for (const m of smtp.mails) mailsPerId.set(m.parsed.messageId, (mailsPerId.get(m.parsed.messageId) ?? 0) + 1);
  const wantMail = [...acked.sends.values()].filter((s) => s.email);
  const gotRcpt = new Set(smtp.mails.flatMap((m) => m.rcpt));
  assert.deepEqual(wantMail.filter((s) => !gotRcpt.has(s.email)).map((s) => s.email), [], 'every email send reached the SMTP sink');
  assert.equal(mailsPerId.size, wantMail.length, 'one Message-ID per email message');

  // every delivered message's history; a repeated delivery must be a retaken attempt
  let retakenMsgs = 0;
  let retakenExtra = 0; // lease attempts beyond the first, over committed DELIVERING events
  const repeats = []; // {id, channel, n}
  const histories = new Map();
  const ids = [...webhookIds.keys()];
  await Promise.all(
    Array.from({ length: 8 }, async (_, w) => {
      for (let i = w; i < ids.length; i += 8) histories.set(ids[i], ok(await srv.request('GET', `/messages/${encodeURIComponent(ids[i])}/history`, { auth: 'admin' })).results);
    }),
  );
  for (const [id, key] of webhookIds) {
    const h = histories.get(id);
    const delivering = h.filter((e) => e.type === 'DELIVERING');
    const byChannel = new Map(delivering.map((e) => [e.channel?.id, e]));
    const mailKey = acked.sends.get(id)?.email ? 'email' : null;
    for (const e of delivering) {
      if (e.retaken) {
        retakenMsgs += 1;
        retakenExtra += e.lease_attempt - 1;
      }
    }
    const counts = [['webhook', perKey.get(key)]];
    if (mailKey) {
      const mails = smtp.mails.filter((m) => m.rcpt.includes(acked.sends.get(id).email));
      counts.push(['email', mails.length]);
    }
    for (const [channel, n] of counts) {
      const e = byChannel.get(channel);
      assert.ok(e, `message ${id} has a DELIVERING event for ${channel}: ${JSON.stringify(h)}`);
      if (n > 1) {
        repeats.push({ id, channel, n });
        assert.equal(e.retaken, true, `message ${id} delivered ${n} times on ${channel}: its attempt is marked retaken: ${JSON.stringify(h)}`);
        assert.ok(e.lease_attempt >= n, `message ${id} delivered ${n} times on ${channel}: lease count ${e.lease_attempt} covers them`);
      }
    }
  }
  const deliveries = sink.got.length + smtp.mails.length;
  const duplicates = repeats.reduce((s, r) => s + r.n - 1, 0);
  const summary =
    `crash (${STORE}): ${kills} kills in ${(killMs / 1000).toFixed(1)} s, load until every request was acknowledged ${(loadMs / 1000).toFixed(1)} s (then drained in ${(drainMs / 1000).toFixed(1)} s, checked in ${((Date.now() - tCheck) / 1000).toFixed(1)} s); ` +
    `events acked ${nEvents} (orders ${acked.orders.size}, ticks ${acked.ticks.size}, identify ${acked.identifies.size}; ${stats.dupEvents} re-sent events answered as duplicates); ` +
    `messages accepted ${messages.size} (sends ${acked.sends.size}, of them ${wantMail.length} also by email; automation ${acked.orders.size}); ` +
    `requests ${stats.requests} (${stats.connErrors} connection errors, ${stats.busy} busy answers, ${stats.waited409} sends waited out a pending Idempotency-Key, ${stats.replayed} replayed); ` +
    `deliveries ${deliveries} (webhook ${sink.got.length}, smtp ${smtp.mails.length}); duplicates ${duplicates} on ${repeats.length} message channel(s); ` +
    `in flight at a kill (retaken attempts) ${retakenMsgs}, extra leases ${retakenExtra}`;
  console.log(summary);
  t.diagnostic(summary);
  assert.ok(kills >= KILLS, `killed ${kills} times (wanted ${KILLS})`);
  assert.ok(duplicates <= kills * IN_FLIGHT, `duplicates ${duplicates} <= kills x in flight ${kills * IN_FLIGHT}`);
  assert.ok(duplicates <= retakenExtra, `each duplicate is an attempt retaken after a kill (${duplicates} > ${retakenExtra})`);
});
