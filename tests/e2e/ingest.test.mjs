// ingest.test.mjs: events in, black-box. Segment's tracking API (/v1/...) driven by the
// real @segment/analytics-node and @rudderstack/rudder-sdk-node clients and by raw
// requests; Courier's Segment destination (/inbound/segment, with X-Signature) and track
// API (/inbound/courier); what the events do (profiles, the event catalog); limits and
// bad input; messageId dedup; durability across kill -9; the Profiles API.

import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import zlib from 'node:zlib';
import { after, describe, test } from 'node:test';

import {
  assertAccepted,
  assertJsonError,
  basic,
  catalogCounts,
  catalogEntry,
  catalogItems,
  chunkedRequest,
  expectCatalog,
  expectNoProfile,
  expectProfile,
  getProfile,
  pieces,
  segmentSignature,
} from './lib/ingest.mjs';
import { SAMPLES } from './lib/segment-samples.mjs';
import { herald, isPostgres, metricValue, rawRequest, sleep, startServer, stopAll, scaled } from './lib/server.mjs';

const require = createRequire(import.meta.url);
const { Analytics: SegmentAnalytics } = require('@segment/analytics-node');
const RudderAnalytics = require('@rudderstack/rudder-sdk-node');

after(stopAll);

const T = { timeout: scaled(30000) };
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

/* ---- helpers ------------------------------------------------------------------------ */

/** POST a JSON body (object or raw text/Buffer) to a tracking route. */
function post(srv, path, body, { auth = 'write', headers = {} } = {}) {
  const h = { 'Content-Type': 'application/json', ...headers };
  const b = typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body);
  return srv.request('POST', path, { auth, headers: h, body: b });
}

/** A new write (or admin) key for the server's store, made with the keys CLI; a write
 * key is client-scoped unless scope is 'server'. */
function newKey(srv, kind, name, scope) {
  const r = herald(['keys', 'create', '--kind', kind, '--name', name, ...(scope ? ['--scope', scope] : [])], { dir: srv.dir });
  assert.equal(r.status, 0, `keys create: ${r.stderr}`);
  return r.stdout.trim();
}

/** Asserts an ISO time string within [from - slackMs, now + slackMs]. */
function assertRecentIso(v, from, what, slackMs = 2000) {
  assert.equal(typeof v, 'string', `${what} is a string: ${v}`);
  assert.match(v, ISO, `${what} is an ISO time: ${v}`);
  const ms = Date.parse(v);
  assert.ok(ms >= from - slackMs && ms <= Date.now() + slackMs, `${what} ${v} is the time of receipt`);
}

/** GET /catalog/events/<name> -> the entry (asserting 200, name and count). */
async function entry(srv, name, count) {
  const r = await catalogEntry(srv, name);
  assert.equal(r.status, 200, `GET /catalog/events/${encodeURIComponent(name)}: ${r.status} ${r.body}`);
  assert.equal(r.json.name, name, `entry name: ${r.body}`);
  if (count !== undefined) assert.equal(r.json.count, count, `entry count: ${r.body}`);
  assert.match(r.json.first_seen, ISO, `first_seen: ${r.body}`);
  assert.match(r.json.last_seen, ISO, `last_seen: ${r.body}`);
  assert.ok(Date.parse(r.json.first_seen) <= Date.parse(r.json.last_seen), `first_seen <= last_seen: ${r.body}`);
  assert.ok(r.json.sample && typeof r.json.sample === 'object', `a sample payload: ${r.body}`);
  return r.json;
}

/* ---- 1 and 2: the real client libraries ------------------------------------------------------ */

const TRAITS = { email: 'ada@example.com', name: 'Ada Lovelace' };
const ORDER = { order_id: 'o-1001', total: 42.5, currency: 'EUR', items: [{ sku: 'sku-1', qty: 2 }], gift: false };
const PAGE_PROPS = { path: '/', title: 'Welcome', url: 'https://example.com/' };
const SCREEN_PROPS = { variation: 'blue signup button' };
const GROUP_TRAITS = { name: 'Initech', plan: 'enterprise', employees: 329 };

/** The checks shared by the two client tests, before the alias. */
async function checkFirstFive(srv, U, libraryName, messageIdRe, t0) {
  await expectCatalog(srv, { identify: 1, 'track/Order Shipped': 1, 'page/Home': 1, 'screen/Dashboard': 1, group: 1 });
  await expectProfile(srv, U, TRAITS);

  const tr = await entry(srv, 'track/Order Shipped', 1);
  assert.equal(tr.sample.type, 'track');
  assert.equal(tr.sample.event, 'Order Shipped');
  assert.equal(tr.sample.userId, U);
  assert.deepEqual(tr.sample.properties, ORDER);
  assert.match(tr.sample.messageId, messageIdRe, 'the client\'s messageId is kept');
  assert.equal(tr.sample.context?.library?.name, libraryName, `context.library: ${JSON.stringify(tr.sample.context)}`);
  assertRecentIso(tr.sample.receivedAt, t0, 'sample.receivedAt');
  assertRecentIso(tr.sample.timestamp, t0, 'sample.timestamp');

  const id = await entry(srv, 'identify', 1);
  assert.equal(id.sample.type, 'identify');
  assert.equal(id.sample.userId, U);
  assert.deepEqual(id.sample.traits, TRAITS);

  const pg = await entry(srv, 'page/Home', 1);
  assert.equal(pg.sample.type, 'page');
  assert.equal(pg.sample.name, 'Home');
  assert.deepEqual(pg.sample.properties, PAGE_PROPS);

  const sc = await entry(srv, 'screen/Dashboard', 1);
  assert.equal(sc.sample.type, 'screen');
  assert.equal(sc.sample.name, 'Dashboard');
  assert.deepEqual(sc.sample.properties, SCREEN_PROPS);

  const gr = await entry(srv, 'group', 1);
  assert.equal(gr.sample.type, 'group');
  assert.equal(gr.sample.groupId, 'org-1');
  assert.deepEqual(gr.sample.traits, GROUP_TRAITS);
}

async function checkAlias(srv, U, U2) {
  await expectCatalog(srv, { identify: 1, 'track/Order Shipped': 1, 'page/Home': 1, 'screen/Dashboard': 1, group: 1, alias: 1 });
  await expectNoProfile(srv, U);
  await expectProfile(srv, U2, TRAITS);
  const al = await entry(srv, 'alias', 1);
  assert.equal(al.sample.type, 'alias');
  assert.equal(al.sample.previousId, U);
  assert.equal(al.sample.userId, U2);
}

describe('client libraries', () => {
  test('@segment/analytics-node configured with only host and writeKey', T, async (t) => {
    const srv = await startServer({ t });
    // a server key: the alias below moves an identified profile (writekeys.test.mjs has
    // what a client key may do)
    const writeKey = newKey(srv, 'write', 'backend', 'server');
    const U = 'seg-user-1';
    const U2 = 'seg-user-2';
    const t0 = Date.now();
    const responses = [];
    const errors = [];
    const client = () => {
      const a = new SegmentAnalytics({ writeKey, host: srv.url });
      a.on('http_response', (r) => responses.push(r));
      a.on('error', (e) => errors.push(e));
      return a;
    };
    const delivered = [];
    const call = (a, method, params) =>
      delivered.push(new Promise((resolve) => a[method](params, (err) => resolve(err ? `${method}: ${err.message ?? err}` : null))));

    const a = client();
    call(a, 'identify', { userId: U, traits: TRAITS });
    call(a, 'track', { userId: U, event: 'Order Shipped', properties: ORDER });
    call(a, 'page', { userId: U, name: 'Home', properties: PAGE_PROPS });
    call(a, 'screen', { userId: U, name: 'Dashboard', properties: SCREEN_PROPS });
    call(a, 'group', { userId: U, groupId: 'org-1', traits: GROUP_TRAITS });
    await a.closeAndFlush({ timeout: 10000 });
    assert.deepEqual((await Promise.all(delivered)).filter(Boolean), [], 'every event delivered');
    assert.deepEqual(errors.map((e) => String(e.reason?.message ?? e.code)), [], 'no delivery errors');
    assert.ok(responses.length >= 1, 'the client made a request');
    for (const r of responses) {
      assert.equal(r.status, 200, `the server answered 200: ${JSON.stringify(r)}`);
      assert.equal(String(r.url), `${srv.url}/v1/batch`, 'the client posts to host + /v1/batch');
    }
    await checkFirstFive(srv, U, '@segment/analytics-node', /^node-next-/, t0);

    // alias in a second client, once the first five are processed
    const b = client();
    delivered.length = 0;
    call(b, 'alias', { previousId: U, userId: U2 });
    await b.closeAndFlush({ timeout: 10000 });
    assert.deepEqual((await Promise.all(delivered)).filter(Boolean), [], 'the alias delivered');
    assert.deepEqual(errors, [], 'no delivery errors');
    assert.ok(responses.every((r) => r.status === 200), `every response 200: ${responses.map((r) => r.status)}`);
    await checkAlias(srv, U, U2);
  });

  test('@rudderstack/rudder-sdk-node with gzip, pointed at the server', T, async (t) => {
    const srv = await startServer({ t });
    const U = 'rs-user-1';
    const U2 = 'rs-user-2';
    const t0 = Date.now();
    const errors = [];
    const requests = [];
    const responses = [];
    const client = new RudderAnalytics(newKey(srv, 'write', 'backend', 'server'), {
      dataPlaneUrl: srv.url, // path defaults to /v1/batch
      gzip: true,
      flushAt: 20,
      flushInterval: 60000, // flushed explicitly below
      retryCount: 0,
      logLevel: 'error',
      errorHandler: (err) => errors.push(`${err.message} ${err.response?.status ?? ''} ${JSON.stringify(err.response?.data ?? '')}`),
    });
    client.axiosInstance.interceptors.request.use((cfg) => {
      requests.push({ url: cfg.url, encoding: cfg.headers?.['Content-Encoding'], data: cfg.data });
      return cfg;
    });
    client.axiosInstance.interceptors.response.use((res) => {
      responses.push({ status: res.status, data: res.data });
      return res;
    });

    client.identify({ userId: U, traits: TRAITS }); // the first event is flushed at once, alone
    client.track({ userId: U, event: 'Order Shipped', properties: ORDER });
    client.page({ userId: U, name: 'Home', properties: PAGE_PROPS });
    client.screen({ userId: U, name: 'Dashboard', properties: SCREEN_PROPS });
    client.group({ userId: U, groupId: 'org-1', traits: GROUP_TRAITS });
    await client.flush();
    assert.deepEqual(errors, [], 'no delivery errors');
    assert.equal(requests.length, 2, 'two requests: the first event alone, then the other four');
    for (const r of requests) {
      assert.equal(r.url, `${srv.url}/v1/batch`);
      assert.equal(r.encoding, 'gzip', 'the body is gzipped');
      const body = JSON.parse(zlib.gunzipSync(r.data).toString('utf8'));
      assert.ok(Array.isArray(body.batch), 'a batch');
      assert.equal(body.writeKey, undefined, 'the write key only in the Basic header');
    }
    assert.deepEqual(
      responses.map((r) => [r.status, r.data?.success, r.data?.accepted, r.data?.duplicates]),
      [
        [200, true, 1, 0],
        [200, true, 4, 0],
      ],
      `responses: ${JSON.stringify(responses)}`,
    );
    await checkFirstFive(srv, U, 'analytics-node', /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/, t0);
    const id = await entry(srv, 'identify', 1);
    assert.deepEqual(id.sample.context?.traits, TRAITS, 'the client copies traits into context.traits; kept');
    assert.equal(id.sample.channel, 'server');

    client.alias({ previousId: U, userId: U2 });
    await client.flush();
    assert.deepEqual(errors, [], 'no delivery errors');
    assert.equal(requests.length, 3);
    assert.equal(requests[2].encoding, 'gzip');
    assert.deepEqual([responses[2]?.status, responses[2]?.data?.accepted], [200, 1], `alias response: ${JSON.stringify(responses[2])}`);
    await checkAlias(srv, U, U2);
  });
});

/* ---- 3: Segment's documented samples ------------------------------------------------------ */

const SINGLE = ['track', 'identify', 'page', 'screen', 'group', 'alias'];
const SAMPLE_CATALOG = {
  track: 'track/Course Clicked',
  identify: 'identify',
  page: 'page/Home',
  screen: 'screen/Home',
  group: 'group',
  alias: 'alias',
};

describe("Segment's documented sample payloads", () => {
  test('each sample through its tracking route, and the batch sample through /v1/batch', T, async (t) => {
    const srv = await startServer({ t });
    const t0 = Date.now();
    // the samples share messageId 022bb90c-...: one write key each keeps them apart
    // (dedup is per write key)
    for (const type of SINGLE) {
      const key = newKey(srv, 'write', `sample-${type}`);
      const r = await post(srv, `/v1/${type}`, SAMPLES[type], { auth: basic(key) });
      assert.deepEqual(r.json, { success: true, accepted: 1, duplicates: 0, rejected: [] }, `/v1/${type} sample: ${r.status} ${r.body}`);
      assert.equal(r.status, 200);
    }
    // the batch sample carries "writeKey": "YOUR_WRITE_KEY"; the Basic header's key decides
    const r = await post(srv, '/v1/batch', SAMPLES.batch, { auth: basic(newKey(srv, 'write', 'sample-batch')) });
    assert.deepEqual(r.json, { success: true, accepted: 4, duplicates: 0, rejected: [] }, `/v1/batch sample: ${r.status} ${r.body}`);

    await expectCatalog(srv, {
      'track/Course Clicked': 1,
      identify: 3,
      'page/Home': 1,
      'screen/Home': 1,
      group: 1,
      alias: 1,
      'track/Song Played': 2,
    });
    const identify = JSON.parse(SAMPLES.identify);
    await expectProfile(srv, '97980cfea0067', identify.traits);
    const batch = JSON.parse(SAMPLES.batch);
    await expectProfile(srv, '019mr8mf4r', batch.batch[0].traits);
    await expectProfile(srv, '971mj8mk7p', batch.batch[2].traits);
    await expectProfile(srv, 'AiUGstSDIg', {}); // a track creates an empty profile

    // the track sample: kept as sent, receivedAt set on arrival, timestamp corrected for skew
    const track = JSON.parse(SAMPLES.track);
    const e = await entry(srv, 'track/Course Clicked', 1);
    for (const k of ['anonymousId', 'userId', 'event', 'messageId', 'properties', 'context', 'type']) {
      assert.deepEqual(e.sample[k], track[k], `sample.${k}`);
    }
    assertRecentIso(e.sample.receivedAt, t0, 'receivedAt (set on arrival, not the sample\'s)');
    const skew = Date.parse(track.sentAt) - Date.parse(track.originalTimestamp); // 17 ms
    assert.equal(
      Date.parse(e.sample.timestamp),
      Date.parse(e.sample.receivedAt) - skew,
      `timestamp = receivedAt - (sentAt - originalTimestamp): ${e.sample.timestamp} vs ${e.sample.receivedAt}`,
    );

    // the batch sample: a messageId assigned, batch-level context merged into each item
    const song = await entry(srv, 'track/Song Played', 2);
    assert.equal(typeof song.sample.messageId, 'string');
    assert.ok(song.sample.messageId.length > 0 && song.sample.messageId.length < 100, `assigned messageId: ${song.sample.messageId}`);
    assert.ok(
      [batch.batch[1].properties, batch.batch[3].properties].some((p) => JSON.stringify(p) === JSON.stringify(song.sample.properties)),
      `the sample is one of the two Song Played events: ${JSON.stringify(song.sample.properties)}`,
    );
    assert.deepEqual(song.sample.context?.device, batch.context.device, 'batch-level context merged into each item');
  });

  test('malformed timestamps: parsed leniently or as epoch numbers, else the time of receipt; originalTimestamp kept', T, async (t) => {
    const srv = await startServer({ t });
    const t0 = Date.now();
    const cases = {
      'TS Loose': '2015-2-02T00:30:12.984Z', // the batch sample's own malformed date
      'TS Garbage': 'not-a-date',
      'TS Epoch Ms': 1420000000000,
      'TS Epoch S': 1420000000,
    };
    const batch = Object.entries(cases).map(([event, timestamp]) => ({ type: 'track', userId: 'ts-user', event, timestamp }));
    assertAccepted(await post(srv, '/v1/batch', { batch }), { accepted: 4 });
    await expectCatalog(srv, Object.fromEntries(Object.keys(cases).map((n) => [`track/${n}`, 1])));
    const got = {};
    for (const name of Object.keys(cases)) {
      const e = await entry(srv, `track/${name}`, 1);
      assert.deepEqual(e.sample.originalTimestamp, cases[name], `${name}: originalTimestamp keeps what was sent`);
      assert.match(e.sample.timestamp, ISO, `${name}: timestamp is an ISO string: ${e.sample.timestamp}`);
      got[name] = e.sample.timestamp;
    }
    assert.equal(got['TS Loose'], '2015-02-02T00:30:12.984Z');
    assertRecentIso(got['TS Garbage'], t0, 'an unparseable timestamp becomes the time of receipt');
    assert.equal(got['TS Epoch Ms'], '2014-12-31T04:26:40.000Z');
    assert.equal(got['TS Epoch S'], '2014-12-31T04:26:40.000Z');
  });

  test('each sample through /inbound/segment; X-Signature checked when a secret is set', T, async (t) => {
    const srv = await startServer({ t });
    for (const type of SINGLE) {
      const key = newKey(srv, 'admin', `dest-${type}`);
      const r = await post(srv, '/inbound/segment', SAMPLES[type], { auth: `Bearer ${key}` });
      assert.equal(r.status, 200, `/inbound/segment ${type} sample: ${r.body}`);
      assert.equal(r.json?.success, true, `success: ${r.body}`);
      assert.equal(r.json?.accepted, 1, `accepted: ${r.body}`);
    }
    await expectCatalog(srv, Object.fromEntries(Object.values(SAMPLE_CATALOG).map((n) => [n, 1])));
    await expectProfile(srv, '97980cfea0067', JSON.parse(SAMPLES.identify).traits);

    // the write key is not accepted on the destination route
    assertJsonError(await post(srv, '/inbound/segment', SAMPLES.track, { auth: `Bearer ${srv.writeKey}` }), 403, 'authorization_error');
    assertJsonError(await post(srv, '/inbound/segment', SAMPLES.track, { auth: 'none' }), 401, 'authentication_error');

    // a shared secret: signatures required from now on
    const put = await srv.request('PUT', '/settings', { auth: 'admin', json: { segment_shared_secret: 's3cret' } });
    assert.equal(put.status, 200, put.body);
    const g = await srv.request('GET', '/settings', { auth: 'admin' });
    assert.equal(g.status, 200, g.body);
    assert.equal(g.json?.segment_shared_secret, 'set', `GET /settings shows "set": ${g.body}`);
    assert.ok(!g.body.includes('s3cret'), `GET /settings never returns the secret: ${g.body}`);

    const ev = (event, messageId, extra = {}) => ({
      type: 'track',
      userId: 'sig-user',
      event,
      messageId,
      properties: { amount: 1.5, note: 'é – ok' },
      ...extra,
    });
    const signed = JSON.stringify(ev('Signed Event', 'sig-1'));
    const ok = await post(srv, '/inbound/segment', signed, { auth: 'admin', headers: { 'X-Signature': segmentSignature('s3cret', signed) } });
    assert.equal(ok.status, 200, `a correctly signed event: ${ok.body}`);
    assert.equal(ok.json?.accepted, 1, ok.body);

    // tampered: the signature of another body
    const orig = JSON.stringify(ev('Tampered Event', 'sig-2'));
    const tampered = orig.replace('"amount":1.5', '"amount":1500');
    assert.notEqual(tampered, orig);
    assertJsonError(
      await post(srv, '/inbound/segment', tampered, { auth: 'admin', headers: { 'X-Signature': segmentSignature('s3cret', orig) } }),
      401,
      'authentication_error',
    );
    // wrong secret, missing signature, garbage signature
    const other = JSON.stringify(ev('Tampered Event', 'sig-3'));
    const wrongSig = { 'X-Signature': segmentSignature('wrong', other) };
    assertJsonError(await post(srv, '/inbound/segment', other, { auth: 'admin', headers: wrongSig }), 401, 'authentication_error');
    assertJsonError(await post(srv, '/inbound/segment', other, { auth: 'admin' }), 401, 'authentication_error');
    assertJsonError(await post(srv, '/inbound/segment', other, { auth: 'admin', headers: { 'X-Signature': 'zz' } }), 401, 'authentication_error');

    // an Actions batch: the signature covers the first element only
    const arr = [ev('Signed Batch', 'sig-4'), ev('Signed Batch', 'sig-5')];
    const arrBody = JSON.stringify(arr);
    const batchOk = await post(srv, '/inbound/segment', arrBody, {
      auth: 'admin',
      headers: { 'X-Signature': segmentSignature('s3cret', JSON.stringify(arr[0])) },
    });
    assert.equal(batchOk.status, 200, `a signed array: ${batchOk.body}`);
    assert.equal(batchOk.json?.accepted, 2, batchOk.body);
    // ... so a signature over the whole array body is wrong
    const arr2 = [ev('Tampered Event', 'sig-6'), ev('Tampered Event', 'sig-7')];
    const arr2Body = JSON.stringify(arr2);
    assertJsonError(
      await post(srv, '/inbound/segment', arr2Body, { auth: 'admin', headers: { 'X-Signature': segmentSignature('s3cret', arr2Body) } }),
      401,
      'authentication_error',
    );
    // ... and a tampered first element fails
    const arr3Body = JSON.stringify([ev('Tampered Event', 'sig-8', { properties: { amount: 9 } }), ev('Tampered Event', 'sig-9')]);
    const arr3Sig = segmentSignature('s3cret', JSON.stringify(ev('Tampered Event', 'sig-8')));
    assertJsonError(await post(srv, '/inbound/segment', arr3Body, { auth: 'admin', headers: { 'X-Signature': arr3Sig } }), 401, 'authentication_error');

    // secret off: unsigned requests accepted again
    const off = await srv.request('PUT', '/settings', { auth: 'admin', json: { segment_shared_secret: null } });
    assert.equal(off.status, 200, off.body);
    const g2 = await srv.request('GET', '/settings', { auth: 'admin' });
    assert.equal(g2.json?.segment_shared_secret, null, `secret off: ${g2.body}`);
    const unsigned = await post(srv, '/inbound/segment', ev('Unsigned Event', 'sig-10'), { auth: 'admin' });
    assert.equal(unsigned.status, 200, unsigned.body);

    await expectCatalog(srv, {
      ...Object.fromEntries(Object.values(SAMPLE_CATALOG).map((n) => [n, 1])),
      'track/Signed Event': 1,
      'track/Signed Batch': 2,
      'track/Unsigned Event': 1,
    });
  });
});

/* ---- the tracking API's transport ------------------------------------------------------ */

describe('tracking API transport', () => {
  test('auth forms, any Content-Type, gzip, chunked bodies, all routes and short forms', T, async (t) => {
    const srv = await startServer({ t });
    const ok = async (r, accepted = 1) => assertAccepted(await r, { accepted });
    const tr = (event, extra = {}) => ({ userId: 'tx-user', event, properties: { n: 1 }, ...extra });

    // write key: Basic with and without the colon, or writeKey in the body
    await ok(post(srv, '/v1/track', tr('Auth Colon'), { auth: basic(srv.writeKey) }));
    await ok(post(srv, '/v1/track', tr('Auth No Colon'), { auth: basic(srv.writeKey, { colon: false }) }));
    await ok(post(srv, '/v1/track', tr('Auth Body Key', { writeKey: srv.writeKey }), { auth: 'none' }));
    await ok(post(srv, '/v1/batch', { batch: [{ type: 'track', ...tr('Auth Body Batch') }], writeKey: srv.writeKey }, { auth: 'none' }));

    // Content-Type is ignored
    await ok(post(srv, '/v1/track', tr('Text Plain'), { headers: { 'Content-Type': 'text/plain' } }));
    await ok(post(srv, '/v1/track', tr('Form Type'), { headers: { 'Content-Type': 'application/x-www-form-urlencoded' } }));

    // gzip
    await ok(post(srv, '/v1/track', zlib.gzipSync(JSON.stringify(tr('Gzip Track'))), { headers: { 'Content-Encoding': 'gzip' } }));
    const gzBatch = { batch: [{ type: 'track', ...tr('Gzip Batch') }, { type: 'track', ...tr('Gzip Batch') }] };
    const gzHeaders = { 'Content-Encoding': 'gzip', 'Content-Type': 'application/x-www-form-urlencoded' };
    await ok(post(srv, '/v1/batch', zlib.gzipSync(JSON.stringify(gzBatch)), { headers: gzHeaders }), 2);

    // chunked request bodies (no Content-Length), plain and gzipped
    const chunked = async (path, buf, headers = {}) => {
      const r = await chunkedRequest(srv.port, {
        path,
        headers: { Authorization: basic(srv.writeKey), 'Content-Type': 'application/json', ...headers },
        chunks: pieces(buf, 3),
      });
      let json;
      try {
        json = JSON.parse(r.body);
      } catch {
        /* asserted below */
      }
      return { ...r, json };
    };
    await ok(chunked('/v1/track', Buffer.from(JSON.stringify(tr('Chunked')))));
    await ok(chunked('/v1/batch', zlib.gzipSync(JSON.stringify({ batch: [{ type: 'track', ...tr('Chunked Gzip') }] })), { 'Content-Encoding': 'gzip' }));

    // every route, long and short form (single routes need no "type")
    await ok(post(srv, '/v1/t', tr('Short T')));
    await ok(post(srv, '/v1/b', { batch: [{ type: 'track', ...tr('Short B') }] }));
    await ok(post(srv, '/v1/import', { batch: [{ type: 'track', ...tr('Import') }, { type: 'page', userId: 'tx-user', name: 'Imported' }] }), 2);
    await ok(post(srv, '/v1/i', { userId: 'tx-short', traits: { plan: 'pro' } }));
    await ok(post(srv, '/v1/p', { userId: 'tx-user', name: 'Short P' }));
    await ok(post(srv, '/v1/s', { userId: 'tx-user', name: 'Short S' }));
    await ok(post(srv, '/v1/g', { userId: 'tx-user', groupId: 'g-short', traits: { name: 'G' } }));
    await ok(post(srv, '/v1/a', { previousId: 'tx-prev', userId: 'tx-short' }));
    await ok(post(srv, '/v1/page', { anonymousId: 'anon-1', properties: { path: '/x' } })); // no name: "page"
    await ok(post(srv, '/v1/screen', { anonymousId: 'anon-1', name: 'Long S' }));

    // /v1/m (analytics.js metrics): 200, nothing stored
    const metrics = { series: [{ type: 'Counter', metric: 'analytics_js.invoke', value: 1, tags: {} }] };
    const m = await post(srv, '/v1/m', metrics, { headers: { 'Content-Type': 'text/plain' } });
    assert.equal(m.status, 200, `/v1/m: ${m.body}`);
    // analytics.js posts its metrics without a write key
    const m2 = await post(srv, '/v1/m', metrics, { auth: 'none', headers: { 'Content-Type': 'text/plain' } });
    assert.equal(m2.status, 200, `/v1/m without a key: ${m2.body}`);
    // unknown tracking route
    assertJsonError(await post(srv, '/v1/nope', tr('Nope')), 404);

    await expectCatalog(srv, {
      'track/Auth Colon': 1,
      'track/Auth No Colon': 1,
      'track/Auth Body Key': 1,
      'track/Auth Body Batch': 1,
      'track/Text Plain': 1,
      'track/Form Type': 1,
      'track/Gzip Track': 1,
      'track/Gzip Batch': 2,
      'track/Chunked': 1,
      'track/Chunked Gzip': 1,
      'track/Short T': 1,
      'track/Short B': 1,
      'track/Import': 1,
      'page/Imported': 1,
      identify: 1,
      'page/Short P': 1,
      'screen/Short S': 1,
      group: 1,
      alias: 1,
      page: 1,
      'screen/Long S': 1,
    });
    const body = (await entry(srv, 'track/Auth Body Key', 1)).sample;
    assert.equal(body.writeKey, undefined, 'the write key is not kept in the stored payload');
    const short = await entry(srv, 'track/Short T', 1);
    assert.equal(short.sample.type, 'track', 'the route sets the type');
  });
});

/* ---- 4: bad input --------------------------------------------------------------------------- */

describe('bad input', () => {
  test('each rejected with its status and nothing stored', T, async (t) => {
    const srv = await startServer({ t });
    const json = (b) => post(srv, '/v1/track', b);

    // malformed JSON
    let e = assertJsonError(await json('{"userId":"bad-json","event":"Bad JSON",'), 400, 'invalid_request_error');
    assert.match(e.message, /json/i, `the message names JSON: ${e.message}`);
    e = assertJsonError(await post(srv, '/v1/batch', '{"batch":[{"type":"track","userId":"bad-json"'), 400, 'invalid_request_error');
    assert.match(e.message, /json/i, `the message names JSON: ${e.message}`);
    assertJsonError(await json(''), 400, 'invalid_request_error');

    // an event over 32 KB
    assertJsonError(await json({ userId: 'bad-big', event: 'Too Big', properties: { pad: 'x'.repeat(33 * 1024) } }), 400, 'invalid_request_error');

    // a body over 500 KB (600 KB of small events, fewer than 2,500)
    const pad = 'y'.repeat(260);
    const big = JSON.stringify({
      batch: Array.from({ length: 2000 }, (_, i) => ({ type: 'track', userId: 'bad-batch', event: 'Big Batch', messageId: `bb-${i}`, properties: { pad } })),
    });
    assert.ok(big.length > 600 * 1024, `${big.length} bytes`);
    const raw = (path, body, headers) =>
      rawRequest(srv.port, { method: 'POST', path, headers: { Authorization: basic(srv.writeKey), ...headers }, body, earlyMs: 200 });
    assertJsonError(await raw('/v1/batch', big, { 'Content-Type': 'application/json' }), 413);
    // ... gzipped: small on the wire, over the cap once inflated
    const bigGz = zlib.gzipSync(big);
    assert.ok(bigGz.length < 100 * 1024, `${bigGz.length} bytes gzipped`);
    assertJsonError(await raw('/v1/batch', bigGz, { 'Content-Encoding': 'gzip' }), 413);
    // ... and a gzip bomb: 50 MB of zeros
    const bomb = zlib.gzipSync(
      Buffer.concat([Buffer.from('{"userId":"bad-bomb","event":"Bomb","properties":{"pad":"'), Buffer.alloc(50 * 1024 * 1024, 0x30), Buffer.from('"}}')]),
      { level: 9 },
    );
    assert.ok(bomb.length < 500 * 1024, `${bomb.length} bytes on the wire`);
    const t0 = Date.now();
    assertJsonError(await raw('/v1/track', bomb, { 'Content-Encoding': 'gzip' }), 413);
    assert.ok(Date.now() - t0 < 5000, 'the bomb is refused quickly');
    // ... and a chunked body over the cap (no Content-Length to refuse it early)
    assertJsonError(
      await chunkedRequest(srv.port, { path: '/v1/batch', headers: { Authorization: basic(srv.writeKey) }, chunks: pieces(Buffer.from(big), 10) }),
      413,
    );

    // more than 2,500 events
    const many = { batch: Array.from({ length: 2501 }, () => ({ type: 'track', userId: 'bad-many', event: 'Too Many' })) };
    assertJsonError(await post(srv, '/v1/batch', many), 400, 'invalid_request_error');

    // invalid events on single routes
    assertJsonError(await json({ event: 'No User', properties: {} }), 400, 'invalid_request_error');
    assertJsonError(await json({ userId: '', anonymousId: '', event: 'Empty Ids' }), 400, 'invalid_request_error');
    assertJsonError(await json({ userId: 'bad-noevent', properties: {} }), 400, 'invalid_request_error');
    assertJsonError(await post(srv, '/v1/identify', { traits: { email: 'nobody@example.com' } }), 400, 'invalid_request_error');
    assertJsonError(await post(srv, '/v1/group', { userId: 'bad-group', traits: {} }), 400, 'invalid_request_error');
    assertJsonError(await post(srv, '/v1/alias', { userId: 'bad-alias' }), 400, 'invalid_request_error');
    assertJsonError(await json({ userId: 'bad-mid', event: 'Long Id', messageId: 'm'.repeat(200) }), 400, 'invalid_request_error');
    assertJsonError(await json({ userId: 'bad-mid', event: 'Long Id', messageId: 'm'.repeat(100) }), 400, 'invalid_request_error');

    // a batch of only invalid items: 200, nothing accepted
    assertAccepted(await post(srv, '/v1/batch', { batch: [{ type: 'track', event: 'No User Batch' }] }), { accepted: 0, rejected: [0] });

    // keys
    const body = { userId: 'bad-key', event: 'Bad Key' };
    assertJsonError(await post(srv, '/v1/track', body, { auth: 'none' }), 401, 'authentication_error');
    assertJsonError(await post(srv, '/v1/track', body, { auth: basic('wk_wrongwrongwrong') }), 401, 'authentication_error');
    assertJsonError(await post(srv, '/v1/track', body, { auth: basic(`${srv.writeKey}x`) }), 401, 'authentication_error');
    assertJsonError(await post(srv, '/v1/track', { ...body, writeKey: 'wk_wrongwrongwrong' }, { auth: 'none' }), 401, 'authentication_error');
    assertJsonError(await post(srv, '/v1/track', body, { auth: basic(srv.adminKey) }), 403, 'authorization_error');
    assertJsonError(await post(srv, '/v1/track', { ...body, writeKey: srv.adminKey }, { auth: 'none' }), 403, 'authorization_error');
    const adminBatch = { batch: [{ type: 'track', ...body }], writeKey: srv.adminKey };
    assertJsonError(await post(srv, '/v1/batch', adminBatch, { auth: 'none' }), 403, 'authorization_error');
    e = assertJsonError(await post(srv, '/v1/batch', { batch: adminBatch.batch }, { auth: basic(srv.adminKey) }), 403, 'authorization_error');
    assert.equal(e.message, 'this key is an admin key; the route needs a write key');
    e = assertJsonError(await post(srv, '/inbound/segment', SAMPLES.track, { auth: `Bearer ${srv.writeKey}` }), 403, 'authorization_error');
    assert.equal(e.message, 'this key is a write key; the route needs an admin key');

    // invalid UTF-8
    const bad8 = Buffer.concat([Buffer.from('{"userId":"bad-utf8-'), Buffer.from([0xff, 0xfe, 0xc3]), Buffer.from('","event":"Bad UTF8"}')]);
    e = assertJsonError(await json(bad8), 400, 'invalid_request_error');
    assert.match(e.message, /utf-?8/i, `the message names UTF-8: ${e.message}`);

    // nesting 10,000 levels deep
    const deep = `{"userId":"bad-deep","event":"Deep","properties":{"a":${'['.repeat(10000)}${']'.repeat(10000)}}}`;
    e = assertJsonError(await json(deep), 400, 'invalid_request_error');
    assert.match(e.message, /nest|deep|depth/i, `the message names the nesting: ${e.message}`);
    const deepObj = `${'{"a":'.repeat(10000)}1${'}'.repeat(10000)}`;
    const deepBatch = `{"batch":[{"type":"track","userId":"bad-deep","event":"Deep","properties":${deepObj}}]}`;
    e = assertJsonError(await post(srv, '/v1/batch', deepBatch), 400, 'invalid_request_error');
    assert.match(e.message, /nest|deep|depth/i, `the message names the nesting: ${e.message}`);

    // the server survived; a sentinel shows processing caught up; nothing else stored
    assert.equal((await srv.request('GET', '/healthz')).status, 200);
    assertAccepted(await json({ userId: 'sentinel', event: 'Sentinel' }), { accepted: 1 });
    await expectCatalog(srv, { 'track/Sentinel': 1 }, { settleMs: 300 });
    for (const id of ['bad-json', 'bad-big', 'bad-batch', 'bad-bomb', 'bad-many', 'bad-noevent', 'bad-group', 'bad-alias', 'bad-mid', 'bad-key', 'bad-deep']) {
      assert.equal((await getProfile(srv, id)).status, 404, `no profile for ${id}`);
    }
  });

  test('in a batch, invalid items are rejected by index and the others accepted', T, async (t) => {
    const srv = await startServer({ t });
    const r = await post(srv, '/v1/batch', {
      batch: [
        { type: 'track', userId: 'mix-1', event: 'Batch Valid', properties: { i: 0 } },
        { type: 'track', event: 'No User' },
        { type: 'track', userId: 'mix-2', event: 'Too Big', properties: { pad: 'x'.repeat(33 * 1024) } },
        { type: 'track', userId: 'mix-3' },
        { type: 'group', userId: 'mix-4' },
        { type: 'alias', userId: 'mix-5' },
        { type: 'track', userId: 'mix-6', event: 'Long Id', messageId: 'm'.repeat(100) },
        { type: 'nonsense', userId: 'mix-7', event: 'Bad Type' },
        { type: 'track', userId: 'mix-8', event: 'Batch Valid', messageId: 'k'.repeat(99), properties: { i: 8 } },
      ],
    });
    assertAccepted(r, { accepted: 2, rejected: [1, 2, 3, 4, 5, 6, 7] });
    await expectCatalog(srv, { 'track/Batch Valid': 2 });
    await expectProfile(srv, 'mix-1', {});
    await expectProfile(srv, 'mix-8', {});
    for (const id of ['mix-2', 'mix-3', 'mix-4', 'mix-6', 'mix-7']) assert.equal((await getProfile(srv, id)).status, 404, `no profile for ${id}`);
  });
});

/* ---- 5: dedup --------------------------------------------------------------------------- */

describe('dedup', () => {
  test('a repeated messageId is acknowledged once per write key and processed once', T, async (t) => {
    const srv = await startServer({ t });
    const ev = (messageId, n) => ({ type: 'track', userId: 'dd-user', event: 'Dup', messageId, properties: { n } });
    assertAccepted(await post(srv, '/v1/track', ev('m-1', 1)), { accepted: 1 });
    assertAccepted(await post(srv, '/v1/track', ev('m-1', 2)), { accepted: 0, duplicates: 1 }); // same id, other content
    assertAccepted(await post(srv, '/v1/batch', { batch: [ev('m-1', 2), ev('m-2', 3), ev('m-2', 2)] }), { accepted: 1, duplicates: 2 });
    // another write key: its own messageId space
    const key2 = newKey(srv, 'write', 'second');
    assertAccepted(await post(srv, '/v1/track', ev('m-1', 4), { auth: basic(key2) }), { accepted: 1 });
    assertAccepted(await post(srv, '/v1/track', ev('m-1', 2), { auth: basic(key2) }), { accepted: 0, duplicates: 1 });

    // a duplicate identify does not touch the profile
    assertAccepted(await post(srv, '/v1/identify', { userId: 'dd-2', messageId: 'm-id', traits: { plan: 'a' } }), { accepted: 1 });
    await expectProfile(srv, 'dd-2', { plan: 'a' });
    assertAccepted(await post(srv, '/v1/identify', { userId: 'dd-2', messageId: 'm-id', traits: { plan: 'b' } }), { accepted: 0, duplicates: 1 });

    // the destination route dedups too
    const dest = { type: 'track', userId: 'dd-3', event: 'Dest Dup', messageId: 'm-dest', properties: {} };
    const d1 = await post(srv, '/inbound/segment', dest, { auth: 'admin' });
    assert.deepEqual([d1.status, d1.json?.accepted, d1.json?.duplicates], [200, 1, 0], d1.body);
    const d2 = await post(srv, '/inbound/segment', dest, { auth: 'admin' });
    assert.deepEqual([d2.status, d2.json?.accepted, d2.json?.duplicates], [200, 0, 1], d2.body);

    await expectCatalog(srv, { 'track/Dup': 3, identify: 1, 'track/Dest Dup': 1 }, { settleMs: 400 });
    await expectProfile(srv, 'dd-2', { plan: 'a' });
    const s = await entry(srv, 'track/Dup', 3);
    assert.notEqual(s.sample.properties?.n, 2, `a duplicate never becomes the sample: ${JSON.stringify(s.sample)}`);
  });

  test('--dedup-window 1: a messageId is a duplicate within 1 s, new after it', T, async (t) => {
    const srv = await startServer({ t, args: ['--dedup-window', '1'] });
    const ev = { userId: 'dw-user', event: 'Window', messageId: 'w-1', properties: {} };
    assertAccepted(await post(srv, '/v1/track', ev), { accepted: 1 });
    assertAccepted(await post(srv, '/v1/track', ev), { accepted: 0, duplicates: 1 });
    await sleep(2100);
    assertAccepted(await post(srv, '/v1/track', ev), { accepted: 1 });
    await expectCatalog(srv, { 'track/Window': 2 });
  });
});

/* ---- 6: durability ------------------------------------------------------------------- */

describe('durability', () => {
  test('kill -9 right after a 200 on a 100-event batch: all 100 after restart', T, async (t) => {
    const srv = await startServer({ t });
    const batch = [];
    for (let i = 0; i < 90; i++) batch.push({ type: 'track', userId: `dur-${i % 10}`, event: 'Durable', messageId: `dur-t-${i}`, properties: { i } });
    for (let i = 0; i < 10; i++) batch.push({ type: 'identify', userId: `dur-id-${i}`, messageId: `dur-i-${i}`, traits: { i, email: `u${i}@example.com` } });
    const r = await post(srv, '/v1/batch', { batch });
    assertAccepted(r, { accepted: 100 });
    const killed = await srv.kill9();
    assert.equal(killed.signal, 'SIGKILL');

    await srv.restart();
    await expectCatalog(srv, { 'track/Durable': 90, identify: 10 }, { timeout: 10000, settleMs: 500 });
    for (let i = 0; i < 10; i++) await expectProfile(srv, `dur-id-${i}`, { i, email: `u${i}@example.com` });
    // and the dedup record survived too
    assertAccepted(await post(srv, '/v1/batch', { batch: batch.slice(0, 5) }), { accepted: 0, duplicates: 5 });
  });
});

/* ---- what events do to profiles ---------------------------------------------------------- */

describe('profiles from events', () => {
  test('identify merges traits (null removes); track creates an empty profile; alias merges, userId wins', T, async (t) => {
    const srv = await startServer({ t });
    assertAccepted(await post(srv, '/v1/identify', { userId: 'pe-1', traits: { plan: 'free', age: 30, city: 'Paris' } }), { accepted: 1 });
    await expectProfile(srv, 'pe-1', { plan: 'free', age: 30, city: 'Paris' });
    assertAccepted(await post(srv, '/v1/identify', { userId: 'pe-1', traits: { plan: 'pro', city: null, tags: ['a', 'b'] } }), { accepted: 1 });
    await expectProfile(srv, 'pe-1', { plan: 'pro', age: 30, tags: ['a', 'b'] });

    assertAccepted(await post(srv, '/v1/track', { userId: 'pe-2', event: 'Signed Up' }), { accepted: 1 });
    const p2 = await expectProfile(srv, 'pe-2', {});
    assert.ok(p2.preferences && typeof p2.preferences === 'object', `preferences object: ${p2.r.body}`);
    // a track does not touch an existing profile
    assertAccepted(await post(srv, '/v1/track', { userId: 'pe-1', event: 'Signed Up', properties: { plan: 'x' } }), { accepted: 1 });
    // an anonymous track creates no profile
    assertAccepted(await post(srv, '/v1/track', { anonymousId: 'pe-anon', event: 'Signed Up' }), { accepted: 1 });

    // alias: previousId's profile merged into userId's (userId's values win), then deleted
    // (moving a profile takes a server-scope write key)
    const server = { auth: basic(newKey(srv, 'write', 'backend', 'server')) };
    assertAccepted(await post(srv, '/v1/identify', { userId: 'pe-old', traits: { a: 1, b: 'old', email: 'old@example.com' } }), { accepted: 1 });
    assertAccepted(await post(srv, '/v1/identify', { userId: 'pe-new', traits: { b: 'new', c: 3 } }), { accepted: 1 });
    await expectProfile(srv, 'pe-old', { a: 1, b: 'old', email: 'old@example.com' });
    await expectProfile(srv, 'pe-new', { b: 'new', c: 3 });
    assertAccepted(await post(srv, '/v1/alias', { previousId: 'pe-old', userId: 'pe-new' }, server), { accepted: 1 });
    await expectNoProfile(srv, 'pe-old');
    await expectProfile(srv, 'pe-new', { a: 1, b: 'new', c: 3, email: 'old@example.com' });

    // a userId with @ # % reads back URL-encoded
    const odd = 'ada@example.com#team%42 x';
    assertAccepted(await post(srv, '/v1/identify', { userId: odd, traits: { name: 'Odd' } }), { accepted: 1 });
    await expectProfile(srv, odd, { name: 'Odd' });
    assert.equal((await getProfile(srv, 'ada@example.com')).status, 404, 'no truncation at #');

    await expectCatalog(srv, { identify: 5, 'track/Signed Up': 3, alias: 1 });
    assert.equal((await getProfile(srv, 'pe-anon')).status, 404, 'no profile for an anonymousId');
    await expectProfile(srv, 'pe-1', { plan: 'pro', age: 30, tags: ['a', 'b'] });
  });

  // On PostgreSQL an events job creates its tracks' new profiles in one statement of its
  // own before its transaction (so jobs on other nodes never wait for that transaction to
  // learn whether a profile exists); a user the job also identifies is left to the job.
  // On SQLite the accept applies the events and nothing is created apart.
  test('a batch of tracks for new users: every profile created, the identified one with its traits', T, async (t) => {
    const srv = await startServer({ t });
    const batch = [];
    for (let i = 0; i < 40; i++) batch.push({ type: 'track', userId: `nb-${i}`, event: 'New Batch', messageId: `nb-t-${i}` });
    batch.push({ type: 'identify', userId: 'nb-7', traits: { plan: 'pro' }, messageId: 'nb-i-7' });
    batch.push({ type: 'track', userId: 'nb-3', event: 'New Batch', messageId: 'nb-t-3b' });
    assertAccepted(await post(srv, '/v1/batch', { batch }), { accepted: 42 });
    await expectCatalog(srv, { 'track/New Batch': 41, identify: 1 });
    for (let i = 0; i < 40; i++) await expectProfile(srv, `nb-${i}`, i === 7 ? { plan: 'pro' } : {});
    const apart = metricValue((await srv.metrics()).samples, 'herald_ingest_profiles_created_apart_total') || 0;
    assert.equal(apart, isPostgres ? 39 : 0, 'profiles created before the events job\'s transaction');
  });
});

/* ---- events jobs side by side --------------------------------------------------------------- */

describe('events jobs side by side', () => {
  // On PostgreSQL several workers commit events jobs at once, each locking the profiles,
  // catalog rows and automations its events touch. Batches whose events come in opposite
  // orders used to deadlock (the database breaks the cycle after 1 s and a transaction
  // is run again); each job now takes its locks in one global order. On SQLite the one
  // writer serializes them, so the count is 0 there by construction.
  test('batches crossing the same profiles, names and linked automations: all applied, no transaction retried', T, async (t) => {
    const srv = await startServer({ t, args: ['--workers', '4'] });
    for (const [id, event] of [['cross-a', 'Cross A'], ['cross-b', 'Cross B']]) {
      const a = await srv.request('PUT', `/automations/${id}`, { auth: 'admin', json: { name: id, steps: [{ action: 'delay', duration: '1 hour' }] } });
      assert.equal(a.status, 200, a.body);
      const l = await srv.request('POST', '/links', { auth: 'admin', json: { event: `track/${event}`, automation_id: id } });
      assert.equal(l.status, 200, l.body);
    }
    const BATCHES = 48;
    const USERS = 4;
    const batches = [];
    for (let b = 0; b < BATCHES; b++) {
      const batch = [];
      for (let u = 0; u < USERS; u++) {
        batch.push({ type: 'identify', userId: `cross-${u}`, messageId: `cross-i-${b}-${u}`, traits: { [`b${b}`]: u } });
        batch.push({ type: 'track', userId: `cross-${u}`, event: u % 2 ? 'Cross A' : 'Cross B', messageId: `cross-t-${b}-${u}` });
      }
      batches.push(b % 2 ? batch.reverse() : batch);
    }
    const rs = await Promise.all(batches.map((batch) => post(srv, '/v1/batch', { batch })));
    for (const r of rs) assertAccepted(r, { accepted: USERS * 2 });
    const half = (BATCHES * USERS) / 2;
    await expectCatalog(srv, { identify: BATCHES * USERS, 'track/Cross A': half, 'track/Cross B': half }, { timeout: 20000 });
    for (let u = 0; u < USERS; u++) {
      const want = {};
      for (let b = 0; b < BATCHES; b++) want[`b${b}`] = u;
      await expectProfile(srv, `cross-${u}`, want);
    }
    for (const id of ['cross-a', 'cross-b']) {
      const runs = await srv.request('GET', `/automations/runs?automation_id=${id}&limit=100`, { auth: 'admin' });
      assert.equal(runs.status, 200, runs.body);
      assert.equal(runs.json.runs.length, half, `one run of ${id} per linked event`);
    }
    const m = await srv.metrics();
    const retries = metricValue(m.samples, 'herald_store_retries_total');
    t.diagnostic(`store transactions retried: ${retries}`);
    assert.equal(retries, 0, 'no transaction had to be run again (deadlock or serialization failure)');
  });
});

/* ---- 7: the Profiles API ---------------------------------------------------------------- */

describe('Profiles API', () => {
  test('merge, replace, patch, delete; ids with @ # %', T, async (t) => {
    const srv = await startServer({ t });
    const path = (id) => `/profiles/${encodeURIComponent(id)}`;
    const req = (method, id, json) => srv.request(method, path(id), { auth: 'admin', json });
    const SUCCESS = { status: 'SUCCESS' };

    for (const id of ['pa-1', 'user@example.com#1%2']) {
      assertJsonError(await req('GET', id), 404);

      // POST merges (creating); null deletes a key
      let r = await req('POST', id, { profile: { email: 'a@example.com', name: 'A', custom: { tier: 1 } } });
      assert.deepEqual([r.status, r.json], [200, SUCCESS], r.body);
      const g = await getProfile(srv, id);
      assert.equal(g.status, 200, g.r.body);
      assert.deepEqual(g.profile, { email: 'a@example.com', name: 'A', custom: { tier: 1 } });
      assert.ok(g.preferences && typeof g.preferences === 'object', `preferences: ${g.r.body}`);
      r = await req('POST', id, { profile: { name: null, phone_number: '+15550100' } });
      assert.deepEqual([r.status, r.json], [200, SUCCESS], r.body);
      assert.deepEqual((await getProfile(srv, id)).profile, { email: 'a@example.com', custom: { tier: 1 }, phone_number: '+15550100' });

      // PUT replaces
      r = await req('PUT', id, { profile: { email: 'b@example.com', locale: 'fr' } });
      assert.deepEqual([r.status, r.json], [200, SUCCESS], r.body);
      assert.deepEqual((await getProfile(srv, id)).profile, { email: 'b@example.com', locale: 'fr' });

      // PATCH: RFC 6902, all ops
      r = await req('PATCH', id, {
        patch: [
          { op: 'add', path: '/name', value: 'B' },
          { op: 'replace', path: '/email', value: 'c@example.com' },
          { op: 'add', path: '/tags', value: ['x'] },
          { op: 'add', path: '/tags/-', value: 'y' },
          { op: 'copy', from: '/email', path: '/backup_email' },
          { op: 'move', from: '/locale', path: '/lang' },
          { op: 'test', path: '/name', value: 'B' },
          { op: 'remove', path: '/backup_email' },
          { op: 'add', path: '/a~1b', value: 1 },
        ],
      });
      assert.equal(r.status, 200, r.body);
      const patched = { email: 'c@example.com', name: 'B', tags: ['x', 'y'], lang: 'fr', 'a/b': 1 };
      assert.deepEqual((await getProfile(srv, id)).profile, patched);

      // a failing op: 409, nothing applied (the patch is atomic)
      const failing = [
        { op: 'replace', path: '/email', value: 'd@example.com' },
        { op: 'test', path: '/name', value: 'not B' },
      ];
      assertJsonError(await req('PATCH', id, { patch: failing }), 409);
      assertJsonError(await req('PATCH', id, { patch: [{ op: 'remove', path: '/nope' }] }), 409);
      assertJsonError(await req('PATCH', id, { patch: [{ op: 'replace', path: '/nope/deeper', value: 1 }] }), 409);
      assert.deepEqual((await getProfile(srv, id)).profile, patched, 'unchanged after failing patches');
      // malformed patches: 400
      assertJsonError(await req('PATCH', id, { patch: 'nope' }), 400);
      assertJsonError(await req('PATCH', id, {}), 400);
      assertJsonError(await req('PATCH', id, { patch: [{ op: 'frobnicate', path: '/email' }] }), 400);
      assertJsonError(await req('PATCH', id, { patch: [{ op: 'add', value: 1 }] }), 400);
      assert.deepEqual((await getProfile(srv, id)).profile, patched, 'unchanged after malformed patches');
      // an empty patch is a no-op
      r = await req('PATCH', id, { patch: [] });
      assert.equal(r.status, 200, r.body);
      assert.deepEqual((await getProfile(srv, id)).profile, patched);

      // PUT {profile:{}} clears
      r = await req('PUT', id, { profile: {} });
      assert.deepEqual([r.status, r.json], [200, SUCCESS], r.body);
      assert.deepEqual((await getProfile(srv, id)).profile, {});

      // DELETE: 204, then 404
      r = await srv.request('DELETE', path(id), { auth: 'admin' });
      assert.equal(r.status, 204, r.body);
      assert.equal(r.body, '', 'no body with 204');
      assertJsonError(await req('GET', id), 404);
    }

    // distinct ids stay distinct: '#' and '%' are part of the id
    assert.equal((await req('POST', 'x@y#1', { profile: { k: 1 } })).status, 200);
    assert.equal((await req('POST', 'x@y#2', { profile: { k: 2 } })).status, 200);
    assert.equal((await req('POST', 'x@y%231', { profile: { k: 3 } })).status, 200);
    assert.deepEqual((await getProfile(srv, 'x@y#1')).profile, { k: 1 });
    assert.deepEqual((await getProfile(srv, 'x@y#2')).profile, { k: 2 });
    assert.deepEqual((await getProfile(srv, 'x@y%231')).profile, { k: 3 });
    assert.equal((await getProfile(srv, 'x@y')).status, 404);

    // auth
    assertJsonError(await srv.request('GET', path('x@y#1')), 401, 'authentication_error');
    assertJsonError(await srv.request('GET', path('x@y#1'), { auth: 'write' }), 403, 'authorization_error');
    assertJsonError(await srv.request('POST', path('x@y#1'), { auth: 'write', json: { profile: {} } }), 403, 'authorization_error');
  });
});

/* ---- the event catalog ------------------------------------------------------------------ */

describe('event catalog', () => {
  test('names, counts, search, paging, one entry with its sample, 404', T, async (t) => {
    const srv = await startServer({ t });
    const t0 = Date.now();
    const names = ['Order Shipped', 'Order Placed', 'Cart Viewed', 'Ünïcode ✓/slash', '100% done?'];
    const batch = [];
    names.forEach((event, i) => {
      for (let k = 0; k <= i; k++) batch.push({ type: 'track', userId: 'cat-user', event, properties: { k } });
    });
    assertAccepted(await post(srv, '/v1/batch', { batch }), { accepted: batch.length });
    const expected = Object.fromEntries(names.map((n, i) => [`track/${n}`, i + 1]));
    await expectCatalog(srv, expected);

    // paging one at a time visits every name once
    const seen = [];
    let cursor = null;
    for (let i = 0; i < 10; i++) {
      const q = new URLSearchParams({ limit: '1' });
      if (cursor) q.set('cursor', cursor);
      const r = await srv.request('GET', `/catalog/events?${q}`, { auth: 'admin' });
      assert.equal(r.status, 200, r.body);
      assert.equal(r.json.items.length, 1, `limit=1: ${r.body}`);
      for (const it of r.json.items) {
        assert.deepEqual(Object.keys(it).sort(), ['count', 'first_seen', 'last_seen', 'name'], `list items: ${r.body}`);
        assertRecentIso(it.first_seen, t0, 'first_seen');
        assertRecentIso(it.last_seen, t0, 'last_seen');
      }
      seen.push(...r.json.items.map((x) => x.name));
      if (!r.json.paging.more) break;
      cursor = r.json.paging.cursor;
      assert.equal(typeof cursor, 'string', `cursor: ${r.body}`);
    }
    assert.deepEqual([...seen].sort(), Object.keys(expected).sort(), 'paging visits each name once');

    // search
    const s = await catalogItems(srv, { search: 'Order' });
    assert.deepEqual(s.map((x) => x.name).sort(), ['track/Order Placed', 'track/Order Shipped']);
    assert.deepEqual(await catalogItems(srv, { search: 'no-such-event-name' }), []);

    // one entry: percent-encoded name, with the latest sample
    const e = await entry(srv, 'track/Ünïcode ✓/slash', 4);
    assert.equal(e.sample.event, 'Ünïcode ✓/slash');
    assert.equal(e.sample.type, 'track');
    assert.equal(typeof e.sample.messageId, 'string');
    assertRecentIso(e.sample.receivedAt, t0, 'receivedAt');
    await entry(srv, 'track/100% done?', 5);
    assertJsonError(await catalogEntry(srv, 'track/Never Sent'), 404);
    assertJsonError(await catalogEntry(srv, 'track/Order'), 404);

    // last_seen moves on a later event; first_seen stays
    const before = await entry(srv, 'track/Order Shipped', 1);
    await sleep(20);
    assertAccepted(await post(srv, '/v1/track', { userId: 'cat-user', event: 'Order Shipped', properties: { later: true } }), { accepted: 1 });
    await expectCatalog(srv, { ...expected, 'track/Order Shipped': 2 }, { settleMs: 0 });
    const later = await entry(srv, 'track/Order Shipped', 2);
    assert.equal(later.first_seen, before.first_seen);
    assert.ok(Date.parse(later.last_seen) > Date.parse(before.last_seen), `${later.last_seen} > ${before.last_seen}`);
    assert.deepEqual(later.sample.properties, { later: true }, 'the sample is the latest payload');

    // admin only
    assertJsonError(await srv.request('GET', '/catalog/events'), 401, 'authentication_error');
    assertJsonError(await srv.request('GET', '/catalog/events', { auth: 'write' }), 403, 'authorization_error');
  });
});

/* ---- 8: Courier's track API --------------------------------------------------------------- */

describe('POST /inbound/courier', () => {
  test('202 with a Courier messageId; reused messageId 409 x-should-retry false; 400s', T, async (t) => {
    const srv = await startServer({ t });
    // Courier's documented example
    const ev = {
      event: 'New Order Placed',
      messageId: '4c62c457-b329-4bea-9bfc-17bba86c393f',
      type: 'track',
      userId: '1234',
      properties: { order_id: 123, total_orders: 5, last_order_id: 122 },
    };
    const post2 = (body) => srv.request('POST', '/inbound/courier', { auth: 'admin', json: body });

    const r = await post2(ev);
    assert.equal(r.status, 202, r.body);
    assert.deepEqual(Object.keys(r.json ?? {}), ['messageId'], r.body);
    assert.match(r.json.messageId, /^1-[0-9a-f]+-[0-9a-f]+$/, r.body);

    const again = await post2({ ...ev, properties: { other: true } });
    assertJsonError(again, 409, 'invalid_request_error');
    assert.equal(again.headers.get('x-should-retry'), 'false', 'x-should-retry: false on 409');

    const r2 = await post2({ ...ev, messageId: 'courier-2', userId: null });
    assert.equal(r2.status, 202, `userId may be null: ${r2.body}`);
    assert.notEqual(r2.json?.messageId, r.json.messageId, 'distinct ids');
    const r3 = await post2({ event: 'New Order Placed', messageId: 'courier-3', type: 'track', properties: {} });
    assert.equal(r3.status, 202, `userId may be omitted: ${r3.body}`);

    const { messageId: _omit, ...noId } = ev;
    assertJsonError(await post2(noId), 400, 'invalid_request_error');
    assertJsonError(await post2({ ...ev, messageId: 'c-4', type: 'identify' }), 400, 'invalid_request_error');
    assertJsonError(await post2({ ...ev, messageId: 'c-5', type: undefined }), 400, 'invalid_request_error');
    assertJsonError(await post2({ ...ev, messageId: 'c-6', properties: 'x' }), 400, 'invalid_request_error');
    assertJsonError(await post2({ ...ev, messageId: 'c-7', properties: [1, 2] }), 400, 'invalid_request_error');
    assertJsonError(await post2({ ...ev, messageId: 'c-8', properties: null }), 400, 'invalid_request_error');
    assertJsonError(await post2({ ...ev, messageId: 'c-9', event: undefined }), 400, 'invalid_request_error');
    assertJsonError(
      await srv.request('POST', '/inbound/courier', { auth: 'admin', headers: { 'Content-Type': 'application/json' }, body: '{"event":' }),
      400,
      'invalid_request_error',
    );
    // admin only
    assertJsonError(await srv.request('POST', '/inbound/courier', { json: { ...ev, messageId: 'c-10' } }), 401, 'authentication_error');
    assertJsonError(await srv.request('POST', '/inbound/courier', { auth: 'write', json: { ...ev, messageId: 'c-11' } }), 403, 'authorization_error');

    await expectCatalog(srv, { 'track/New Order Placed': 3 });
    const e = await entry(srv, 'track/New Order Placed', 3);
    assert.equal(e.sample.type, 'track');
    assert.equal(e.sample.event, 'New Order Placed');
    assert.ok(!JSON.stringify(e.sample).includes('"other":true'), 'the 409 request was not stored');
  });
});

/* ---- the catalog starts empty --------------------------------------------------------- */

test('a fresh server has an empty catalog', T, async (t) => {
  const srv = await startServer({ t });
  const r = await srv.request('GET', '/catalog/events', { auth: 'admin' });
  assert.equal(r.status, 200, r.body);
  assert.deepEqual(r.json, { items: [], paging: { cursor: null, more: false } });
  assert.deepEqual(await catalogCounts(srv), {});
});
