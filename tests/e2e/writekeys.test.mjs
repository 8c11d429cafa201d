// writekeys.test.mjs: a Segment write key is public (browsers ship it), so what it can do
// depends on its scope (issue 12, point 8).
//
// A client-scope key (the bootstrap write key of a new workspace, and `herald keys create
// --kind write` by default) may not set `traits.webhook`, may not change an address trait
// (email, phone_number, ...) a profile already holds, and may not alias a profile that
// exists onto another id. What it may not do is dropped; the rest of the event applies
// and the request is still a 200 (Segment's clients cannot handle partial failures).
// A server-scope key (`--scope server`, and every write key made before scopes existed)
// can do all of it. A recipient's own webhook URL never gets the operator's signature,
// headers or credentials. The real @segment/analytics-node client sends the events.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, test } from 'node:test';

import { Analytics as SegmentAnalytics } from '@segment/analytics-node';

import { closeAfterAll } from './lib/cleanup.mjs';
import { expectProfile, getProfile } from './lib/ingest.mjs';
import { startHttpSink } from './lib/sink.mjs';
import { dsnFor, herald, isPostgres, metricValue, psql, scaled, startServer, waitFor } from './lib/server.mjs';

const T = { timeout: scaled(60000) };
const PENDING = new Set(['ENQUEUED', 'DELAYED', 'ROUTED']);
const OP_SECRET = 'op-signing-secret-5521';
const OP_HEADER = 'op-header-value-7781';

const closers = closeAfterAll();

async function sink() {
  const s = await startHttpSink();
  closers.push(() => s.close());
  return s;
}

const api = (srv, method, p, json) => srv.request(method, p, { auth: 'admin', json });

function ok(r, status = 200) {
  assert.equal(r.status, status, `expected ${status}, got ${r.status}: ${r.body}`);
  return r.json;
}

/** Send events with the real Segment client and wait until all are answered 200. */
async function segment(srv, writeKey, calls) {
  const responses = [];
  const a = new SegmentAnalytics({ writeKey, host: srv.url, maxRetries: 0 });
  a.on('http_response', (r) => responses.push(r.status));
  const done = calls.map(([method, params]) => new Promise((resolve) => a[method](params, (err) => resolve(err ? `${method}: ${err.message ?? err}` : null))));
  await a.closeAndFlush({ timeout: scaled(10000) });
  assert.deepEqual((await Promise.all(done)).filter(Boolean), [], 'every event delivered');
  assert.ok(responses.length >= 1 && responses.every((s) => s === 200), `200 answers: ${responses}`);
}

/** A new write key made with the keys CLI. */
function newWriteKey(srv, scope) {
  const r = herald(['keys', 'create', '--kind', 'write', '--name', `e2e-${scope ?? 'default'}`, ...(scope ? ['--scope', scope] : [])], { dir: srv.dir });
  assert.equal(r.status, 0, `keys create: ${r.stderr}`);
  return r.stdout.trim();
}

/** /send to a user over the webhook channel; returns the final message and history. */
async function sendWebhook(srv, userId) {
  const id = ok(await api(srv, 'POST', '/send', { message: { to: { user_id: userId }, content: { title: 'T', body: 'B' }, routing: { method: 'single', channels: ['webhook'] } } }), 202).requestId;
  const m = await waitFor(
    async () => {
      const r = await api(srv, 'GET', `/messages/${id}`);
      return r.status === 200 && !PENDING.has(r.json.status) && r.json;
    },
    { timeout: 20000, what: `message ${id} to end` },
  );
  return m;
}

/** The operator's webhook provider: its URL, a signing secret and a custom header. */
async function operatorWebhook(srv) {
  const op = await sink();
  ok(await api(srv, 'POST', '/providers', { provider: 'webhook', settings: { url: op.url, secret: OP_SECRET, headers: { 'X-Op-Token': OP_HEADER } } }));
  return op;
}

describe('client-scope write keys', () => {
  test('the bootstrap key is a client key: traits.webhook ignored, addresses set once, no alias over a profile', T, async (t) => {
    const srv = await startServer({ t });
    const op = await operatorWebhook(srv);
    const attacker = await sink();
    ok(await api(srv, 'POST', '/profiles/victim', { profile: { email: 'victim@x.test', phone_number: '+15550001111' } }));

    await segment(srv, srv.writeKey, [
      ['identify', { userId: 'victim', traits: { webhook: { url: attacker.url }, email: 'attacker@evil.test', phone_number: '+15559999999', name: 'Vic' } }],
      ['identify', { userId: 'newbie', traits: { email: 'newbie@x.test', plan: 'free' } }],
      ['identify', { userId: 'victim', traits: { email: 'victim@x.test', city: 'Oslo' } }],
    ]);
    await expectProfile(srv, 'newbie', { email: 'newbie@x.test', plan: 'free' });
    // the rest of each event applies; webhook and the changed addresses do not
    await expectProfile(srv, 'victim', { email: 'victim@x.test', phone_number: '+15550001111', name: 'Vic', city: 'Oslo' });
    await srv.waitForLog(/ingest\.client_refused .*type=identify refused="email,phone_number,webhook"/);

    // alias of the existing profile onto the attacker's id: refused, the profile stays
    await segment(srv, srv.writeKey, [['alias', { previousId: 'victim', userId: 'attacker' }]]);
    await srv.waitForLog(/ingest\.client_refused .*type=alias/);
    await expectProfile(srv, 'victim', { email: 'victim@x.test', phone_number: '+15550001111', name: 'Vic', city: 'Oslo' });
    assert.equal((await getProfile(srv, 'attacker')).status, 404, 'no profile moved to the attacker');
    // an anonymous visitor (no profile) may still be aliased to a user
    await segment(srv, srv.writeKey, [['alias', { previousId: 'anon-123', userId: 'newbie' }]]);

    // repeated member names: a check that reads one copy and a merge that applies
    // another would let the attacker's copy through (raw body: SDKs never send these)
    const dup = `{"userId":"victim","traits":{"webhook":0,"webhook":{"url":"${attacker.url}"},` +
      `"email":"victim@x.test","email":"attacker@evil.test","phone_number":"+15550001111","phone_number":"+15559999999"}}`;
    const dr = await fetch(`${srv.url}/v1/identify`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: `Basic ${Buffer.from(`${srv.writeKey}:`).toString('base64')}` },
      body: dup,
    });
    await dr.arrayBuffer();
    assert.equal(dr.status, 200);
    await srv.waitForLog(/ingest\.client_refused .*type=identify refused="webhook"/);
    await expectProfile(srv, 'victim', { email: 'victim@x.test', phone_number: '+15550001111', name: 'Vic', city: 'Oslo' });
    assert.equal((await getProfile(srv, 'victim')).profile.webhook, undefined, 'no webhook set through a repeated name');

    // the victim's webhook message goes where the operator said, signed
    const m = await sendWebhook(srv, 'victim');
    assert.equal(m.status, 'SENT', JSON.stringify(m));
    assert.equal(attacker.requests.length, 0, 'nothing went to the URL the client key sent');
    assert.equal(op.requests.length, 1);
    assert.match(op.requests[0].headers['courier-signature'] ?? '', /^t=\d+,signature=[0-9a-f]{64}$/);
    const metrics = await srv.metrics();
    const refused = (type) => metrics.samples.find((s) => s.name === 'herald_ingest_client_refused_total' && s.labels.type === type)?.value;
    assert.equal(refused('identify'), 2, `the refusals are counted: ${metrics.text}`);
    assert.equal(refused('alias'), 1);
  });

  test('a server key (--scope server) may set a webhook and alias; a recipient URL is not signed', T, async (t) => {
    const srv = await startServer({ t });
    const op = await operatorWebhook(srv);
    const own = await sink();
    const key = newWriteKey(srv, 'server');
    ok(await api(srv, 'POST', '/profiles/old-id', { profile: { email: 'old@x.test', tier: 'gold' } }));

    await segment(srv, key, [['identify', { userId: 'hooked', traits: { webhook: { url: own.url } } }]]);
    await expectProfile(srv, 'hooked', { webhook: { url: own.url } });
    await segment(srv, key, [['alias', { previousId: 'old-id', userId: 'new-id' }]]);
    await expectProfile(srv, 'new-id', { email: 'old@x.test', tier: 'gold' });
    assert.equal((await getProfile(srv, 'old-id')).status, 404, 'the old profile moved');

    const m = await sendWebhook(srv, 'hooked');
    assert.equal(m.status, 'SENT', JSON.stringify(m));
    assert.equal(op.requests.length, 0);
    assert.equal(own.requests.length, 1, 'the recipient URL got the message');
    const h = own.requests[0].headers;
    assert.equal(h['courier-signature'], undefined, 'no operator signature on a recipient URL');
    assert.equal(h['x-herald-signature'], undefined);
    assert.equal(h['x-op-token'], undefined, 'no operator header on a recipient URL');
    assert.ok(!JSON.stringify(h).includes(OP_SECRET));
  });

  test('a refusal and a rejected event of one batch are counted and logged once, though the batch is applied twice (together, then one event at a time)', T, async (t) => {
    const srv = await startServer({ t });
    ok(await api(srv, 'POST', '/profiles/held', { profile: { email: 'held@x.test' } }));
    const write = async (batch) => {
      const r = await srv.request('POST', '/v1/batch', { auth: 'write', json: { batch } });
      assert.equal(r.status, 200, r.body);
    };
    // big-u's profile grows to ~900 KB in 30 identifies (each under the 32 KB event cap)
    const VALUE = 'x'.repeat(30000);
    let n = 0;
    const big = () => ({ type: 'identify', userId: 'big-u', messageId: `big-${(n += 1)}`, traits: { [`t${n}`]: VALUE } });
    for (let b = 0; b < 2; b += 1) await write(Array.from({ length: 15 }, big));
    const traits = async () => Object.keys((await getProfile(srv, 'big-u')).profile ?? {}).length;
    await waitFor(async () => (await traits()) >= 30, { timeout: scaled(15000), what: 'big-u has 30 traits' });
    const metric = (name, labels) => srv.metrics().then(({ samples }) => metricValue(samples, name, labels) ?? 0);
    const refusedBefore = await metric('herald_ingest_client_refused_total', { type: 'identify' });
    const rejectedBefore = await metric('herald_events_rejected_total', { reason: 'too_large' });
    // one batch: first a refused address change (applied, its refusal noted), then
    // identifies that push big-u past the 1 MiB document cap. The batch's events are
    // applied together, rolled back at the first that cannot fit, and applied again one
    // at a time: the refusal is met twice, but its transaction commits once
    await write([{ type: 'identify', userId: 'held', messageId: 'held-1', traits: { email: 'other@x.test', plan: 'pro' } }, ...Array.from({ length: 6 }, big)]);
    await srv.waitForLog(/ingest\.client_refused .*type=identify refused="email"/);
    await waitFor(async () => (await metric('herald_events_rejected_total', { reason: 'too_large' })) > rejectedBefore, { timeout: scaled(15000), what: 'the rejections counted' });
    await expectProfile(srv, 'held', { email: 'held@x.test', plan: 'pro' });
    const applied = (await traits()) - 30;
    assert.ok(applied >= 0 && applied < 6, `some of the 6 identifies did not fit: ${applied} applied`);
    assert.equal(await metric('herald_ingest_client_refused_total', { type: 'identify' }), refusedBefore + 1, 'the refusal is counted once');
    assert.equal(srv.logs().filter((l) => /ingest\.client_refused .*refused="email"/.test(l)).length, 1, 'and logged once');
    assert.equal(await metric('herald_events_rejected_total', { reason: 'too_large' }), rejectedBefore + (6 - applied), 'each rejected event is counted once');
    assert.equal(srv.logs().filter((l) => /ingest\.event_rejected .*reason=too_large/.test(l)).length, 6 - applied, 'and logged once');
  });

  test('keys: create --scope, list shows it, a new write key is client-scoped by default', T, async (t) => {
    const srv = await startServer({ t });
    const client = newWriteKey(srv);
    const server = newWriteKey(srv, 'server');
    const l = herald(['keys', 'list'], { dir: srv.dir });
    assert.equal(l.status, 0, l.stderr);
    const row = (k) => l.stdout.split('\n').find((r) => r.includes(k.slice(0, 12))) ?? '';
    assert.match(row(srv.writeKey), /\bwrite\s+client\b/, l.stdout);
    assert.match(row(client), /\bwrite\s+client\b/, l.stdout);
    assert.match(row(server), /\bwrite\s+server\b/, l.stdout);
    assert.match(row(srv.adminKey), /\badmin\s+-\s/, l.stdout);
    const bad = herald(['keys', 'create', '--kind', 'admin', '--scope', 'client'], { dir: srv.dir });
    assert.equal(bad.status, 2, `--scope goes with --kind write only: ${bad.stdout} ${bad.stderr}`);
    const bad2 = herald(['keys', 'create', '--kind', 'write', '--scope', 'browser'], { dir: srv.dir });
    assert.equal(bad2.status, 2);

    // the default key still does what a client may: a new profile with its email
    await segment(srv, client, [['identify', { userId: 'c1', traits: { email: 'c1@x.test' } }]]);
    await expectProfile(srv, 'c1', { email: 'c1@x.test' });
  });

  test('write keys made before scopes existed become server keys on upgrade', T, async (t) => {
    const srv = await startServer({ t });
    await srv.stop();
    // make the store look like one from before migration 4 (no scope column)
    const undo = ['DELETE FROM schema_migrations WHERE version = 4', 'ALTER TABLE api_keys DROP COLUMN scope'];
    if (isPostgres) {
      psql(undo, { dsn: dsnFor(srv.dir) });
    } else {
      const r = spawnSync('sqlite3', [path.join(srv.dir, 'herald.db'), `${undo.join('; ')};`], { encoding: 'utf8' });
      assert.equal(r.status, 0, `sqlite3: ${r.stderr}`);
    }
    await srv.restart();
    ok(await api(srv, 'POST', '/profiles/legacy-old', { profile: { email: 'legacy@x.test' } }));
    // the old bootstrap key now has scope server: it may move a profile
    await segment(srv, srv.writeKey, [['alias', { previousId: 'legacy-old', userId: 'legacy-new' }]]);
    await expectProfile(srv, 'legacy-new', { email: 'legacy@x.test' });
    const l = herald(['keys', 'list'], { dir: srv.dir });
    assert.match(l.stdout.split('\n').find((r) => r.includes(srv.writeKey.slice(0, 12))) ?? '', /\bwrite\s+server\b/, l.stdout);
  });
});
