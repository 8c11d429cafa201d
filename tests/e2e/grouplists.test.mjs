// grouplists.test.mjs: Segment groups kept in step with Courier lists (issue 15 point 1).
//
// The operator links them with PUT /settings {"group_lists": {"prefix": "groups."}}; then a
// Segment `group` call (sent here by the real @segment/analytics-node client) subscribes its
// userId to the list groups.<groupId>, created when missing and named from traits.name, so a
// send to {"list_pattern": "groups.*"} reaches every group's members. A groupId that makes no
// valid list id is skipped (logged, counted); a deleted list gets nobody; a client-scope
// (public) write key's group call records the group but subscribes nobody unless the link
// says allow_client; unlinking (null) stops it. Bad settings are a 400 JSON error with
// nothing stored. Runs on the store HERALD_TEST_STORE names.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { Analytics as SegmentAnalytics } from '@segment/analytics-node';

import { closeAfterAll } from './lib/cleanup.mjs';
import { assertJsonError, expectProfile } from './lib/ingest.mjs';
import { herald, metricValue, scaled, startServer, waitFor } from './lib/server.mjs';
import { startHttpSink } from './lib/sink.mjs';

const T = { timeout: scaled(60000) };
const closers = closeAfterAll();

let srv;
let sink;
let serverKey;

const api = (method, p, json) => srv.request(method, p, { auth: 'admin', json });

function ok(r, status = 200) {
  assert.equal(r.status, status, `expected ${status}, got ${r.status}: ${r.body}`);
  return r.json;
}

/** Send calls ([method, params]) with the real Segment client; every one answered 200. */
async function segment(writeKey, calls) {
  const a = new SegmentAnalytics({ writeKey, host: srv.url, maxRetries: 0 });
  const statuses = [];
  a.on('http_response', (r) => statuses.push(r.status));
  const done = calls.map(([method, params]) => new Promise((resolve) => a[method](params, (err) => resolve(err ? `${method}: ${err.message ?? err}` : null))));
  await a.closeAndFlush({ timeout: scaled(10000) });
  assert.deepEqual((await Promise.all(done)).filter(Boolean), [], 'every event delivered');
  assert.ok(statuses.length >= 1 && statuses.every((s) => s === 200), `200 answers: ${statuses}`);
}

/** The user ids subscribed to list id (all pages; [] for a missing list). */
async function members(id) {
  const r = await api('GET', `/lists/${id}/subscriptions`);
  if (r.status === 404) return [];
  return ok(r).items.map((x) => x.recipientId).sort();
}

const settings = async () => ok(await api('GET', '/settings'));

before(async () => {
  sink = await startHttpSink();
  closers.push(() => sink.close());
  srv = await startServer({ name: 'grouplists', args: ['--workers', '4'] });
  const k = herald(['keys', 'create', '--kind', 'write', '--scope', 'server', '--name', 'backend'], { dir: srv.dir });
  assert.equal(k.status, 0, `keys create: ${k.stderr}`);
  serverKey = k.stdout.trim();
  ok(await api('POST', '/providers', { provider: 'webhook', settings: { url: sink.url } }));
});
after(async () => {
  await srv?.stop();
});

describe('Segment groups keep lists in step', () => {
  test('PUT /settings refuses a bad group_lists with a JSON 400 and stores nothing', T, async () => {
    assert.equal((await settings()).group_lists, null, 'unlinked by default');
    const bad = [
      ['groups.', /must be an object/],
      [{}, /prefix is required/],
      [{ prefix: '' }, /prefix is required/],
      [{ prefix: 5 }, /prefix is required/],
      [{ prefix: 'x'.repeat(129) }, /prefix is required/],
      [{ prefix: 'my groups.' }, /valid list id/],
      [{ prefix: 'a..' }, /valid list id/],
      [{ prefix: 'a.b.c.d.' }, /valid list id/],
      [{ prefix: 'g.', allow_client: 'yes' }, /allow_client must be a boolean/],
      [{ prefix: 'g.', prefx: 'h.' }, /unknown member prefx/],
    ];
    for (const [v, re] of bad) {
      const r = await api('PUT', '/settings', { group_lists: v, segment_shared_secret: 'not-stored' });
      assertJsonError(r, 400, 'invalid_request_error');
      assert.match(r.json.message, re, JSON.stringify(v));
    }
    const s = await settings();
    assert.equal(s.group_lists, null, 'no link stored');
    assert.equal(s.segment_shared_secret, null, 'nor the other setting of a refused PUT');
    const set = ok(await api('PUT', '/settings', { group_lists: { prefix: 'groups.' } }));
    assert.deepEqual(set.group_lists, { prefix: 'groups.', allow_client: false });
    assert.deepEqual((await settings()).group_lists, { prefix: 'groups.', allow_client: false });
  });

  test("a server key's group call subscribes the user to groups.<groupId>; a list send to groups.* reaches them", T, async () => {
    ok(await api('PUT', '/settings', { group_lists: { prefix: 'groups.' } }));
    await segment(serverKey, [
      ['group', { userId: 'ann', groupId: 'acme', traits: { name: 'Acme Inc', plan: 'pro' } }],
      ['group', { userId: 'bob', groupId: 'acme' }],
      ['group', { userId: 'cy', groupId: 'beta' }],
      ['group', { userId: 'dee', groupId: 'not a list id' }],
      ['identify', { userId: 'dee', traits: { seen: true } }],
    ]);
    await waitFor(async () => (await members('groups.acme')).length === 2 && (await members('groups.beta')).length === 1, { timeout: scaled(10000), what: 'the group lists' });
    assert.deepEqual(await members('groups.acme'), ['ann', 'bob']);
    assert.deepEqual(await members('groups.beta'), ['cy']);
    assert.equal(ok(await api('GET', '/lists/groups.acme')).name, 'Acme Inc', 'named from traits.name');
    assert.equal(ok(await api('GET', '/lists/groups.beta')).name, 'groups.beta', 'no name: the id');
    // the groupId with a space makes no list id: skipped, logged and counted; the event applied
    await expectProfile(srv, 'dee', { seen: true });
    await srv.waitForLog(/ingest\.group_list_skipped .*reason=list_id/);
    const m = await srv.metrics();
    assert.equal(metricValue(m.samples, 'herald_ingest_group_list_skipped_total', { reason: 'list_id' }), 1);
    assert.equal((await api('GET', '/lists?pattern=groups.**')).json.items.length, 2, 'no list for the bad id');

    // a group call again keeps the member's own subscription preferences
    ok(await api('PUT', '/lists/groups.acme/subscriptions/bob', { preferences: { notifications: { x: { status: 'OPTED_IN' } } } }), 204);
    await segment(serverKey, [['group', { userId: 'bob', groupId: 'acme' }], ['identify', { userId: 'bob', traits: { again: 1 } }]]);
    await expectProfile(srv, 'bob', { again: 1 });
    const bob = ok(await api('GET', '/lists/groups.acme/subscriptions')).items.find((x) => x.recipientId === 'bob');
    assert.deepEqual(bob.preferences, { notifications: { x: { status: 'OPTED_IN' } } });

    const send = ok(await api('POST', '/send', { message: { to: { list_pattern: 'groups.*' }, content: { title: 'Hi', body: 'group news' }, routing: { method: 'single', channels: ['webhook'] } } }), 202);
    await waitFor(() => sink.requests.length >= 3, { timeout: scaled(20000), what: 'three deliveries' });
    const sent = ok(await api('GET', `/messages?list=${encodeURIComponent('groups.*')}`));
    assert.deepEqual(sent.results.map((x) => x.recipient).sort(), ['ann', 'bob', 'cy'], `messages of ${send.requestId}`);
  });

  test("a client key's group call records the group but subscribes nobody, unless allow_client", T, async () => {
    ok(await api('PUT', '/settings', { group_lists: { prefix: 'groups.' } }));
    const before = metricValue((await srv.metrics()).samples, 'herald_ingest_client_refused_total', { type: 'group' }) ?? 0;
    await segment(srv.writeKey, [['group', { userId: 'eve', groupId: 'acme' }], ['identify', { userId: 'eve', traits: { k: 1 } }]]);
    await expectProfile(srv, 'eve', { k: 1 });
    assert.ok(!(await members('groups.acme')).includes('eve'), 'a public key subscribes nobody');
    const after = metricValue((await srv.metrics()).samples, 'herald_ingest_client_refused_total', { type: 'group' });
    assert.equal(after, before + 1, 'the refusal is counted');

    ok(await api('PUT', '/settings', { group_lists: { prefix: 'groups.', allow_client: true } }));
    await segment(srv.writeKey, [['group', { userId: 'fay', groupId: 'acme' }]]);
    await waitFor(async () => (await members('groups.acme')).includes('fay'), { timeout: scaled(10000), what: 'fay subscribed' });
  });

  test('a deleted list gets nobody; unlinked, group calls leave lists alone', T, async () => {
    ok(await api('PUT', '/settings', { group_lists: { prefix: 'groups.' } }));
    ok(await api('DELETE', '/lists/groups.beta'), 204);
    await segment(serverKey, [['group', { userId: 'gus', groupId: 'beta' }], ['identify', { userId: 'gus', traits: { k: 1 } }]]);
    await expectProfile(srv, 'gus', { k: 1 });
    ok(await api('PUT', '/lists/groups.beta/restore'), 204);
    assert.deepEqual(await members('groups.beta'), ['cy']);

    assert.equal(ok(await api('PUT', '/settings', { group_lists: null })).group_lists, null);
    await segment(serverKey, [['group', { userId: 'hal', groupId: 'gamma' }], ['identify', { userId: 'hal', traits: { k: 1 } }]]);
    await expectProfile(srv, 'hal', { k: 1 });
    assert.equal((await api('GET', '/lists/groups.gamma')).status, 404);
  });

  // On PostgreSQL an events job takes list rows after its documents, sorted by (list id,
  // user id), and the list API takes them in that order too, so group calls and API calls
  // crossing on one list never deadlock (the database would break the cycle after 1 s and
  // run a transaction again). On SQLite the one writer serializes them: 0 by construction.
  test('group calls and list API calls crossing on one list: all applied, no transaction retried', T, async () => {
    ok(await api('PUT', '/settings', { group_lists: { prefix: 'groups.' } }));
    const ROUNDS = 12;
    const USERS = 8;
    const basic = `Basic ${Buffer.from(`${serverKey}:`).toString('base64')}`;
    const calls = [];
    for (let r = 0; r < ROUNDS; r++) {
      const users = Array.from({ length: USERS }, (_, i) => `hot-${r}-${i}`);
      const batch = users.map((userId, i) => ({ type: 'group', userId, groupId: 'hot', messageId: `hot-${r}-${i}` }));
      calls.push(srv.request('POST', '/v1/batch', { auth: basic, json: { batch: r % 2 ? batch.reverse() : batch } }));
      calls.push(api('POST', '/lists/groups.hot/subscriptions', { recipients: users.reverse().map((recipientId) => ({ recipientId })) }));
    }
    for (const r of await Promise.all(calls)) assert.ok(r.status === 200 || r.status === 204, `${r.status} ${r.body}`);
    await waitFor(async () => (await api('GET', '/lists/groups.hot')).json?.subscriber_count === ROUNDS * USERS, { timeout: scaled(20000), what: `${ROUNDS * USERS} members of groups.hot` });
    const retries = metricValue((await srv.metrics()).samples, 'herald_store_retries_total');
    assert.equal(retries, 0, 'no transaction had to be run again (deadlock or serialization failure)');
  });
});
