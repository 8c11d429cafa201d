// listsend.test.mjs: sends to many recipients through the Courier SDK: /send to a list
// (to.list_id, paged: more members than one fan-out page) and to a list pattern, the
// send-list automation step, Courier's bulk jobs (createJob, addUsers, runJob,
// retrieveJob, listUsers) and herald's GET /bulk listing of jobs and list sends, bad input
// refused with nothing stored, and kill -9 in the middle of a fan-out: after a restart
// every member got exactly one message. Deliveries go to a local webhook sink. Runs on the
// store HERALD_TEST_STORE names.

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, before, describe, test } from 'node:test';

import Courier from '@trycourier/courier';

import { closeAfterAll } from './lib/cleanup.mjs';
import { scaled, startServer, waitFor } from './lib/server.mjs';
import { startHttpSink } from './lib/sink.mjs';

const T = { timeout: scaled(60000) };
const N = 2500; // members of the big list: three fan-out pages of 1000
const IN_FLIGHT = 1000; // provider calls one kill can repeat (ENGINE_PROVIDER_CONCURRENCY_DEFAULT)
const ROUTING = { method: 'single', channels: ['webhook'] };
const closers = closeAfterAll();

let srv;
let sdk;
let sink;
let tpl;

/** admin: a request with the admin key, answering {status, body}. */
async function admin(method, path, body) {
  const res = await fetch(srv.url + path, {
    method,
    headers: { Authorization: `Bearer ${srv.adminKey}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

/** the message id herald derives for member `user` of fan-out `rid` (src/engine/fanout.c,
 * id_derive in src/util/id.c): rid's second and millisecond (000-3e7, else 000), then 21
 * hex digits of SHA-256 */
function memberMessageId(rid, user) {
  const h = crypto.createHash('sha256').update(`${rid}:to:${user}`).digest('hex');
  const m = /^1-([0-9a-f]{8})-([0-9a-f]{3})?/.exec(rid);
  const secs = m?.[1] ?? '00000000';
  const ms = m?.[2] && parseInt(m[2], 16) <= 999 ? m[2] : '000';
  return `1-${secs}-${ms}${h.slice(0, 21)}`;
}

/** the message a sink request delivers (its Idempotency-Key is message:channel:provider) */
const msgId = (r) => String(r.headers['idempotency-key'] ?? '').split(':')[0];
const bodyOf = (id) => {
  const q = sink.requests.find((r) => msgId(r) === id);
  return q?.json?.content?.body ?? q?.json?.body;
};

/** deliveries at the sink per message id, for the ids in `ids` */
function delivered(ids) {
  const want = new Set(ids);
  const per = new Map();
  for (const r of sink.requests) {
    const id = msgId(r);
    if (want.has(id)) per.set(id, (per.get(id) ?? 0) + 1);
  }
  return per;
}

/** what the server says about the first of ids the sink has not seen: for a timeout's
 *  message (its status and history, the jobs, the log's end) */
async function diagnose(ids) {
  const seen = delivered(ids);
  const missing = ids.find((id) => !seen.has(id));
  const out = [`delivered now: ${seen.size} of ${ids.length}; the server exited: ${JSON.stringify(srv.run.result ?? null)}`];
  try {
    out.push(`${missing}: ${JSON.stringify((await admin('GET', `/messages/${missing}`)).body)}`);
    out.push(`history: ${JSON.stringify((await admin('GET', `/messages/${missing}/history`)).body)}`);
    const m = await srv.metrics();
    out.push(m.text.split('\n').filter((l) => /^herald_(jobs|queue|provider)/.test(l)).join('\n'));
  } catch (e) {
    out.push(`(server unreachable: ${e.message})`);
  }
  out.push(`log ends:\n${srv.logs().slice(-25).join('\n')}`);
  return out.join('\n');
}

async function expectAllDelivered(ids, what, { maxDuplicates = 0 } = {}) {
  try {
    await waitFor(() => delivered(ids).size === ids.length, { timeout: 20000, what: `${what}: ${ids.length} deliveries (e.g. ${ids[0]})` });
  } catch (e) {
    e.message += `\n${await diagnose(ids)}`;
    throw e;
  }
  const per = delivered(ids);
  const dups = [...per.values()].reduce((s, n) => s + n - 1, 0);
  assert.ok(dups <= maxDuplicates, `${what}: ${dups} repeated deliveries (at most ${maxDuplicates})`);
  return dups;
}

async function expectError(promise, status, re) {
  await assert.rejects(promise, (e) => {
    assert.equal(e.status, status, `${e.status} ${JSON.stringify(e.error)}`);
    assert.equal(typeof e.error?.message, 'string');
    assert.equal(typeof e.error?.type, 'string');
    if (re) assert.match(e.error.message, re);
    return true;
  });
}

async function subscribeMany(list, users) {
  for (let i = 0; i < users.length; i += 1000) {
    await sdk.lists.subscriptions.add(list, { recipients: users.slice(i, i + 1000).map((recipientId) => ({ recipientId })) });
  }
}

const bigUsers = Array.from({ length: N }, (_, i) => `big-${String(i).padStart(5, '0')}`);

before(async () => {
  sink = await startHttpSink();
  closers.push(() => sink.close());
  srv = await startServer({ name: 'listsend' });
  sdk = new Courier({ apiKey: srv.adminKey, baseURL: srv.url, maxRetries: 0, timeout: scaled(15000) });
  assert.ok((await admin('POST', '/providers', { provider: 'webhook', settings: { url: sink.url } })).status < 300);
  const t = await admin('POST', '/notifications', { notification: { name: 'List news', content: { title: 'News', body: 'news {{data.edition}}' } }, state: 'PUBLISHED' });
  assert.ok(t.status < 300, JSON.stringify(t));
  tpl = t.body.id;
  await subscribeMany('news.all', bigUsers);
});
after(async () => {
  await srv?.stop();
});

describe('sends to lists', () => {
  test(`to.list_id: ${N} members (three pages) each get exactly one message, with progress in the log`, T, async () => {
    const r = await sdk.send.message({ message: { to: { list_id: 'news.all', data: { edition: 7 } }, template: tpl, routing: ROUTING } });
    assert.match(r.requestId, /^1-/);
    const ids = bigUsers.map((u) => memberMessageId(r.requestId, u));
    await expectAllDelivered(ids, 'list send');
    assert.equal(bodyOf(ids[0]), 'news 7', 'to.data reaches the template');
    const m = await sdk.messages.retrieve(ids[N - 1]);
    assert.equal(m.recipient, bigUsers[N - 1]);
    // GET /messages?list=: the messages sent through the list, every page
    const seen = new Set();
    let cursor;
    for (let i = 0; i < 30; i++) {
      const page = await sdk.messages.list({ list: 'news.all', limit: 100, ...(cursor ? { cursor } : {}) });
      for (const x of page.results) seen.add(x.id);
      if (!page.paging.more) break;
      cursor = page.paging.cursor;
    }
    assert.deepEqual([...seen].sort(), [...ids].sort(), 'GET /messages?list= lists each message once');
    const progress = srv.logs().filter((l) => l.includes('event=send.fanout') && l.includes(`request=${r.requestId}`));
    assert.equal(progress.length, 3, progress.join('\n'));
    assert.match(progress[2], /enqueued=2500 .*done=yes/);
  });

  test('to.list_pattern: every member of the matching lists, once each', T, async () => {
    await sdk.lists.subscriptions.add('pat.a', { recipients: [{ recipientId: 'p1' }, { recipientId: 'p2' }] });
    await sdk.lists.subscriptions.add('pat.b', { recipients: [{ recipientId: 'p2' }, { recipientId: 'p3' }] });
    await sdk.lists.subscriptions.add('other.c', { recipients: [{ recipientId: 'p4' }] });
    const r = await sdk.send.message({ message: { to: { list_pattern: 'pat.*' }, template: tpl, routing: ROUTING } });
    const ids = ['p1', 'p2', 'p3'].map((u) => memberMessageId(r.requestId, u));
    await expectAllDelivered(ids, 'pattern send');
    assert.equal(sink.requests.filter((q) => msgId(q) === memberMessageId(r.requestId, 'p4')).length, 0);
    const listed = await sdk.messages.list({ list: 'pat.*' });
    assert.deepEqual(listed.results.map((x) => x.id).sort(), [...ids].sort());
    await expectError(sdk.messages.list({ list: 'pat.*', status: 'SENT' }), 400, /combined/);
  });

  test('the send-list automation step sends to every member', T, async () => {
    await sdk.lists.subscriptions.add('step.list', { recipients: [{ recipientId: 's1' }, { recipientId: 's2' }] });
    const run = await sdk.automations.invoke.invokeAdHoc({
      automation: { steps: [{ action: 'send-list', list: 'step.list', template: tpl, data: { edition: 'step' } }] },
    });
    let rid;
    await waitFor(async () => {
      const got = await admin('GET', `/automations/runs/${run.runId}`);
      rid = JSON.stringify(got.body).match(/"requestId":"(1-[^"]+)"/)?.[1];
      return rid;
    }, { timeout: 10000, what: 'the send-list step ran' });
    const ids = ['s1', 's2'].map((u) => memberMessageId(rid, u));
    await expectAllDelivered(ids, 'send-list step');
    assert.equal(bodyOf(ids[0]), 'news step');
  });
});

describe('bulk jobs', () => {
  test('createJob, addUsers, retrieveJob, runJob, listUsers: counts and statuses', T, async () => {
    const { jobId } = await sdk.bulk.createJob({ message: { event: 'bulk-news', template: tpl, data: { edition: 'bulk' } } });
    assert.match(jobId, /^1-/);
    await sdk.bulk.addUsers(jobId, { users: [{ recipient: 'b1', data: { edition: 'b1' } }, { to: { user_id: 'b2' } }] });
    await sdk.bulk.addUsers(jobId, { users: [{ profile: { nickname: 'no address' } }] });
    let job = (await sdk.bulk.retrieveJob(jobId)).job;
    assert.deepEqual({ status: job.status, received: job.received, enqueued: job.enqueued, failures: job.failures }, { status: 'CREATED', received: 3, enqueued: 0, failures: 0 });
    assert.equal(job.definition.event, 'bulk-news');
    let users = await sdk.bulk.listUsers(jobId);
    assert.deepEqual(users.items.map((u) => u.status), ['PENDING', 'PENDING', 'PENDING']);
    assert.equal(users.paging.more, false);
    await sdk.bulk.runJob(jobId);
    await waitFor(async () => (job = (await sdk.bulk.retrieveJob(jobId)).job).status === 'COMPLETED', { timeout: 10000, what: 'the job completes' });
    assert.deepEqual({ received: job.received, enqueued: job.enqueued, failures: job.failures }, { received: 3, enqueued: 2, failures: 1 });
    users = await sdk.bulk.listUsers(jobId);
    assert.deepEqual(users.items.map((u) => u.status), ['ENQUEUED', 'ENQUEUED', 'ERROR']);
    assert.equal(users.items[0].recipient, 'b1');
    const ids = users.items.slice(0, 2).map((u) => u.messageId);
    await expectAllDelivered(ids, 'bulk job');
    assert.equal(bodyOf(ids[0]), 'news b1', "a user's data over the job's");
    await expectError(sdk.bulk.addUsers(jobId, { users: [{ recipient: 'late' }] }), 409, /runs already/);
    await sdk.bulk.runJob(jobId); // running again changes nothing
    assert.equal((await sdk.bulk.retrieveJob(jobId)).job.enqueued, 2);
  });
});

describe('bad input is refused and stores nothing', () => {
  test('unknown or deleted list, malformed pattern, list among recipients, oversized addUsers, unknown job', T, async () => {
    await expectError(sdk.send.message({ message: { to: { list_id: 'no.such.list' }, template: tpl } }), 404, /not found/);
    await sdk.lists.subscriptions.add('gone.list', { recipients: [{ recipientId: 'g1' }] });
    await sdk.lists.delete('gone.list');
    await expectError(sdk.send.message({ message: { to: { list_id: 'gone.list' }, template: tpl } }), 404);
    await expectError(sdk.send.message({ message: { to: { list_pattern: 'nomatch.*' }, template: tpl } }), 404);
    await expectError(sdk.send.message({ message: { to: { list_pattern: '*.*' }, template: tpl } }), 400, /list_pattern/);
    await expectError(sdk.send.message({ message: { to: { list_pattern: 'a..b' }, template: tpl } }), 400, /list_pattern/);
    await expectError(sdk.send.message({ message: { to: [{ user_id: 'x' }, { list_id: 'news.all' }], template: tpl } }), 400, /only/);
    const { jobId } = await sdk.bulk.createJob({ message: { event: 'bulk-bad', template: tpl } });
    const many = Array.from({ length: 1001 }, (_, i) => ({ recipient: `m${i}` }));
    await expectError(sdk.bulk.addUsers(jobId, { users: many }), 400, /at most 1000/);
    await expectError(sdk.bulk.addUsers(jobId, { users: [{ recipient: 'ok' }, 'not an object'] }), 400, /users\[1\]/);
    await expectError(sdk.bulk.addUsers('1-00000000-000000000000000000000000', { users: [{ recipient: 'x' }] }), 404);
    await expectError(sdk.bulk.createJob({ message: { template: tpl } }), 400, /event/);
    const job = (await sdk.bulk.retrieveJob(jobId)).job;
    assert.equal(job.received, 0, 'a refused addUsers stored no user');
    for (const who of ['g1', 'x', 'm0', 'ok']) {
      assert.deepEqual((await admin('GET', `/messages?recipient=${who}`)).body.results, [], `no message stored for ${who}`);
    }
  });
});

describe("GET /bulk (herald's own): bulk jobs and list sends, newest first", () => {
  test('every job once over pages of two, newest first, with its counts; list sends apart with their progress; bad input 400; admin key only', T, async () => {
    const made = [];
    for (const event of ['page-a', 'page-b', 'page-c']) made.push((await sdk.bulk.createJob({ message: { event, template: tpl } })).jobId);
    const walk = async (kind) => {
      const seen = [];
      let cursor = null;
      for (let i = 0; i < 50; i++) {
        const q = new URLSearchParams({ limit: '2', ...(kind ? { kind } : {}), ...(cursor ? { cursor } : {}) });
        const r = await admin('GET', `/bulk?${q}`);
        assert.equal(r.status, 200, JSON.stringify(r.body));
        assert.ok(r.body.items.length <= 2, JSON.stringify(r.body));
        seen.push(...r.body.items);
        if (!r.body.paging.more) {
          assert.equal(r.body.paging.cursor, null);
          return seen;
        }
        cursor = r.body.paging.cursor;
      }
      throw new Error('GET /bulk did not end');
    };
    const jobs = await walk();
    const ids = jobs.map((j) => j.id);
    assert.equal(new Set(ids).size, ids.length, `each job once: ${ids}`);
    assert.ok(ids.length >= 5, `the jobs of the earlier tests too: ${ids}`);
    assert.deepEqual(new Set(ids.slice(0, 3)), new Set(made), 'the newest first');
    const created = jobs.map((j) => Date.parse(j.created));
    assert.deepEqual(created, [...created].sort((x, y) => y - x), 'newest first');
    const fresh = jobs.find((j) => j.id === made[2]);
    assert.deepEqual({ status: fresh.status, received: fresh.received, enqueued: fresh.enqueued, failures: fresh.failures, event: fresh.event, template: fresh.template }, { status: 'CREATED', received: 0, enqueued: 0, failures: 0, event: 'page-c', template: tpl });
    const ran = jobs.find((j) => j.event === 'bulk-news');
    assert.deepEqual({ status: ran.status, received: ran.received, enqueued: ran.enqueued, failures: ran.failures }, { status: 'COMPLETED', received: 3, enqueued: 2, failures: 1 });
    assert.ok(Date.parse(ran.completed) >= Date.parse(ran.created), JSON.stringify(ran));
    assert.equal((await admin('GET', '/bulk?kind=bulk&limit=100')).body.items.length, jobs.length, 'kind=bulk is the default');

    // list sends: the list, the pattern and the send-list step of the tests above, done
    const sends = await walk('list');
    assert.ok(sends.every((x) => !ids.includes(x.requestId)), 'no bulk job among the list sends');
    const big = sends.find((x) => x.list_id === 'news.all');
    assert.deepEqual({ status: big.status, enqueued: big.enqueued, done: big.done, template: big.template }, { status: 'COMPLETED', enqueued: N, done: true, template: tpl });
    assert.match(big.requestId, /^1-/);
    const pat = sends.find((x) => x.list_pattern === 'pat.*');
    assert.deepEqual({ enqueued: pat.enqueued, done: pat.done }, { enqueued: 3, done: true });
    assert.ok(sends.some((x) => x.list_id === 'step.list'), 'the send-list step');

    // bad input: the API's message; admin key only
    const first = await admin('GET', '/bulk?limit=1');
    for (const q of ['kind=nope', 'limit=0', 'limit=101', 'limit=x', `kind=list&cursor=${encodeURIComponent(first.body.paging.cursor)}`]) {
      const r = await admin('GET', `/bulk?${q}`);
      assert.equal(r.status, 400, `${q}: ${JSON.stringify(r.body)}`);
      assert.equal(r.body.type, 'invalid_request_error', q);
      assert.equal(typeof r.body.message, 'string', q);
    }
    assert.equal((await srv.request('GET', '/bulk', { auth: 'none' })).status, 401);
    assert.equal((await srv.request('GET', '/bulk', { auth: 'write' })).status, 403);
  });
});

describe('kill -9 during a fan-out', () => {
  test('after a restart every member has exactly one message; repeats only from calls in flight', T, async () => {
    const r = await sdk.send.message({ message: { to: { list_id: 'news.all', data: { edition: 'crash' } }, template: tpl, routing: ROUTING } });
    await waitFor(() => srv.logs().some((l) => l.includes('event=send.fanout') && l.includes(`request=${r.requestId}`)), { timeout: 10000, interval: 2, what: 'the first page committed' });
    const k = await srv.kill9();
    assert.equal(k.signal, 'SIGKILL');
    const pagesBefore = srv.logs().filter((l) => l.includes('event=send.fanout') && l.includes(`request=${r.requestId}`)).length;
    await srv.restart();
    const ids = bigUsers.map((u) => memberMessageId(r.requestId, u));
    const dups = await expectAllDelivered(ids, 'fan-out across a kill', { maxDuplicates: IN_FLIGHT });
    const pages = srv.logs().filter((l) => l.includes('event=send.fanout') && l.includes(`request=${r.requestId}`));
    // a page logged just before the kill may not have committed: it runs (and logs) again
    assert.equal(pages.filter((l) => l.includes('done=yes')).length, 1, pages.join('\n'));
    assert.deepEqual([...new Set(pages.map((l) => l.match(/enqueued=(\d+)/)[1]))], ['1000', '2000', '2500'], pages.join('\n'));
    console.log(`listsend: kill after ${pagesBefore} of 3 pages, ${dups} repeated deliveries`);
  });
});
