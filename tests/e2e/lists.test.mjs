// lists.test.mjs: Courier's Lists API (lists.*, lists.subscriptions.*, profiles.lists.*)
// driven through the official Node SDK (@trycourier/courier), the list calls Segment's
// Courier (Actions) destination makes for Engage audiences (audienceToList: PUT/DELETE
// /lists/{key}-{id}/subscriptions/{user}, no body, Bearer API key), and bad input that
// must be refused with Courier's error shape and leave nothing stored. Runs on the store
// HERALD_TEST_STORE names.

import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';

import Courier from '@trycourier/courier';

import { closeAfterAll } from './lib/cleanup.mjs';
import { scaled, startServer } from './lib/server.mjs';

const T = { timeout: scaled(30000) };
closeAfterAll();

let srv;
let sdk;

before(async () => {
  srv = await startServer({ name: 'lists' });
  sdk = new Courier({ apiKey: srv.adminKey, baseURL: srv.url, maxRetries: 0, timeout: scaled(15000) });
});
after(async () => {
  await srv?.stop();
});

/** raw: a request with the admin key (or `key`), answering {status, body (parsed or text)}. */
async function raw(method, path, { body, key, headers = {} } = {}) {
  const h = { Authorization: `Bearer ${key ?? srv.adminKey}`, ...headers };
  if (body !== undefined && !h['Content-Type']) h['Content-Type'] = 'application/json';
  const res = await fetch(srv.url + path, { method, headers: h, body: typeof body === 'string' || body === undefined ? body : JSON.stringify(body) });
  const text = await res.text();
  let parsed = text;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    /* keep the text */
  }
  return { status: res.status, body: parsed };
}

/** every page of an SDK list call, following paging.cursor */
async function allPages(call, field) {
  const out = [];
  let cursor;
  for (let i = 0; i < 100; i++) {
    const page = await call(cursor);
    assert.equal(typeof page.paging.more, 'boolean');
    out.push(...page[field]);
    if (!page.paging.more) return out;
    assert.equal(typeof page.paging.cursor, 'string');
    cursor = page.paging.cursor;
  }
  throw new Error('paging did not end');
}

async function expectStatus(promise, status) {
  await assert.rejects(promise, (e) => {
    assert.equal(e.status, status, `${e.status} ${JSON.stringify(e.error)}`);
    assert.equal(typeof e.error?.message, 'string');
    assert.equal(e.error?.type, 'invalid_request_error');
    return true;
  });
}

const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;

describe('lists through the Courier SDK', () => {
  test('update creates, retrieve answers the SubscriptionList shape, delete hides, restore brings back', T, async () => {
    await sdk.lists.update('crud.one', { name: 'First name' });
    await sdk.lists.update('crud.one', { name: 'Second name', preferences: { notifications: {} } });
    const l = await sdk.lists.retrieve('crud.one');
    assert.equal(l.id, 'crud.one');
    assert.equal(l.name, 'Second name');
    assert.match(l.created, ISO);
    assert.match(l.updated, ISO);
    await sdk.lists.subscriptions.subscribeUser('u1', { list_id: 'crud.one' });
    await sdk.lists.delete('crud.one');
    await expectStatus(sdk.lists.retrieve('crud.one'), 404);
    await expectStatus(sdk.lists.subscriptions.list('crud.one'), 404);
    const listed = await sdk.lists.list({ pattern: 'crud.*' });
    assert.deepEqual(listed.items, []);
    await sdk.lists.restore('crud.one', {});
    assert.equal((await sdk.lists.retrieve('crud.one')).name, 'Second name');
    const subs = await sdk.lists.subscriptions.list('crud.one');
    assert.deepEqual(subs.items.map((s) => s.recipientId), ['u1'], 'a restored list keeps its subscribers');
    await expectStatus(sdk.lists.restore('crud.never', {}), 404);
    await expectStatus(sdk.lists.delete('crud.never'), 404);
  });

  test('list pages with a cursor and filters by a dotted wildcard pattern', T, async () => {
    const ids = [];
    for (let i = 0; i < 45; i++) ids.push(`page.g${i % 3}.l${String(i).padStart(2, '0')}`);
    for (const id of ids) await sdk.lists.update(id, { name: `List ${id}` });
    const all = await allPages((cursor) => sdk.lists.list({ cursor, pattern: 'page.**' }), 'items');
    assert.deepEqual(all.map((l) => l.id), [...ids].sort());
    for (const l of all) {
      assert.equal(typeof l.name, 'string');
      assert.match(l.created, ISO);
    }
    const g1 = await allPages((cursor) => sdk.lists.list({ cursor, pattern: 'page.g1.*' }), 'items');
    assert.deepEqual(g1.map((l) => l.id), ids.filter((id) => id.startsWith('page.g1.')).sort());
    const star = await allPages((cursor) => sdk.lists.list({ cursor, pattern: 'page.*.l07' }), 'items');
    assert.deepEqual(star.map((l) => l.id), ['page.g1.l07']);
    const exact = await sdk.lists.list({ pattern: 'page.g0.l00' });
    assert.deepEqual(exact.items.map((l) => l.id), ['page.g0.l00']);
    await expectStatus(sdk.lists.list({ pattern: 'page..x' }), 400);
    await expectStatus(sdk.lists.list({ pattern: '**.page' }), 400);
  });

  test('subscriptions: add creates the list, subscribe replaces, subscribeUser and unsubscribeUser', T, async () => {
    await sdk.lists.subscriptions.add('subs.auto', {
      recipients: [{ recipientId: 'alice' }, { recipientId: 'bob', preferences: { notifications: { welcome: { status: 'OPTED_OUT' } } } }],
    });
    const l = await sdk.lists.retrieve('subs.auto');
    assert.equal(l.id, 'subs.auto');
    let subs = await sdk.lists.subscriptions.list('subs.auto');
    assert.deepEqual(subs.items.map((s) => s.recipientId), ['alice', 'bob']);
    assert.match(subs.items[0].created, ISO);
    assert.deepEqual(subs.items[1].preferences, { notifications: { welcome: { status: 'OPTED_OUT' } } });
    assert.equal(subs.paging.more, false);

    await sdk.lists.subscriptions.subscribe('subs.auto', { recipients: [{ recipientId: 'carol' }, { recipientId: 'alice' }] });
    subs = await sdk.lists.subscriptions.list('subs.auto');
    assert.deepEqual(subs.items.map((s) => s.recipientId), ['alice', 'carol'], 'subscribe (PUT) replaces');

    await sdk.lists.subscriptions.subscribeUser('dave@example.com', { list_id: 'subs.auto', preferences: { categories: {} } });
    await sdk.lists.subscriptions.unsubscribeUser('alice', { list_id: 'subs.auto' });
    await sdk.lists.subscriptions.unsubscribeUser('alice', { list_id: 'subs.auto' }); // already gone: still fine
    subs = await sdk.lists.subscriptions.list('subs.auto');
    assert.deepEqual(subs.items.map((s) => s.recipientId), ['carol', 'dave@example.com']);
    assert.deepEqual(subs.items[1].preferences, { categories: {} });
    await expectStatus(sdk.lists.subscriptions.unsubscribeUser('alice', { list_id: 'subs.never' }), 404);

    // subscribeUser on a list that does not exist creates it, as Courier does
    await sdk.lists.subscriptions.subscribeUser('erin', { list_id: 'subs.implicit' });
    assert.equal((await sdk.lists.retrieve('subs.implicit')).id, 'subs.implicit');
  });

  test('subscriptions page with a cursor', T, async () => {
    const users = Array.from({ length: 57 }, (_, i) => `pager-${String(i).padStart(3, '0')}`);
    await sdk.lists.subscriptions.add('subs.paged', { recipients: users.map((recipientId) => ({ recipientId })) });
    const got = await allPages((cursor) => sdk.lists.subscriptions.list('subs.paged', { cursor }), 'items');
    assert.deepEqual(got.map((s) => s.recipientId), users);
  });

  test('profiles.lists: subscribe to several lists (missing ones created), retrieve, delete', T, async () => {
    await sdk.lists.update('prof.a', { name: 'Profile A' });
    const r = await sdk.profiles.lists.subscribe('pat', {
      lists: [{ listId: 'prof.a' }, { listId: 'prof.b', preferences: { notifications: {} } }],
    });
    assert.deepEqual(r, { status: 'SUCCESS' });
    const got = await sdk.profiles.lists.retrieve('pat');
    assert.equal(got.paging.more, false);
    assert.deepEqual(got.results.map((l) => [l.id, l.name]), [['prof.a', 'Profile A'], ['prof.b', 'prof.b']]);
    for (const l of got.results) {
      assert.match(l.created, ISO);
      assert.match(l.updated, ISO);
    }
    assert.deepEqual(got.results[1].preferences, { notifications: {} });
    const subs = await sdk.lists.subscriptions.list('prof.b');
    assert.deepEqual(subs.items.map((s) => s.recipientId), ['pat']);
    assert.deepEqual(await sdk.profiles.lists.delete('pat'), { status: 'SUCCESS' });
    assert.deepEqual((await sdk.profiles.lists.retrieve('pat')).results, []);
    assert.deepEqual((await sdk.lists.subscriptions.list('prof.a')).items, []);
  });
});

describe('Segment Courier (Actions) audienceToList', () => {
  test('PUT and DELETE /lists/{key}-{id}/subscriptions/{user} with no body and the Bearer API key', T, async () => {
    const list = 'high_value_users-aud_2Jk8Qx3vR9';
    const enter = await raw('PUT', `/lists/${list}/subscriptions/user-7`, { headers: { 'User-Agent': 'SegmentCourier' } });
    assert.equal(enter.status, 204, JSON.stringify(enter.body));
    const anon = await raw('PUT', `/lists/${list}/subscriptions/anon-5f1c`);
    assert.equal(anon.status, 204);
    let subs = await sdk.lists.subscriptions.list(list);
    assert.deepEqual(subs.items.map((s) => s.recipientId), ['anon-5f1c', 'user-7']);
    const again = await raw('PUT', `/lists/${list}/subscriptions/user-7`); // a replayed event
    assert.equal(again.status, 204);
    const leave = await raw('DELETE', `/lists/${list}/subscriptions/user-7`);
    assert.equal(leave.status, 204);
    subs = await sdk.lists.subscriptions.list(list);
    assert.deepEqual(subs.items.map((s) => s.recipientId), ['anon-5f1c']);
    // a write key is not the Courier API key: refused, nothing stored
    const wk = await raw('PUT', `/lists/${list}/subscriptions/intruder`, { key: srv.writeKey });
    assert.equal(wk.status, 403);
    const none = await raw('PUT', `/lists/${list}/subscriptions/intruder`, { key: 'nope' });
    assert.equal(none.status, 401);
    subs = await sdk.lists.subscriptions.list(list);
    assert.deepEqual(subs.items.map((s) => s.recipientId), ['anon-5f1c']);
  });
});

describe('bad input is refused with Courier\'s error shape and stores nothing', () => {
  test('unknown list: 404 {message, type}', T, async () => {
    await expectStatus(sdk.lists.retrieve('no.such.list'), 404);
    await expectStatus(sdk.lists.subscriptions.list('no.such.list'), 404);
    const r = await raw('GET', '/lists/no.such.list');
    assert.equal(r.status, 404);
    assert.deepEqual(Object.keys(r.body).sort(), ['message', 'type']);
  });

  test('malformed list ids: 400, no list created', T, async () => {
    const bad = ['bad id', 'a..b', '.a', 'a.', 'a.b.c.d.e', 'x'.repeat(300), 'a*b', 'a.*'];
    for (const id of bad) {
      const enc = encodeURIComponent(id);
      for (const [method, path, body] of [
        ['PUT', `/lists/${enc}`, { name: 'x' }],
        ['PUT', `/lists/${enc}/subscriptions/u1`, undefined],
        ['POST', `/lists/${enc}/subscriptions`, { recipients: [{ recipientId: 'u1' }] }],
        ['GET', `/lists/${enc}`, undefined],
      ]) {
        const r = await raw(method, path, { body });
        assert.equal(r.status, 400, `${method} ${path}: ${JSON.stringify(r.body)}`);
        assert.equal(r.body.type, 'invalid_request_error');
        assert.match(r.body.message, /list id/);
      }
    }
    const p = await raw('POST', '/profiles/nobody-1/lists', { body: { lists: [{ listId: 'ok.list' }, { listId: 'bad id' }] } });
    assert.equal(p.status, 400);
    await expectStatus(sdk.lists.retrieve('ok.list'), 404);
    assert.deepEqual((await sdk.profiles.lists.retrieve('nobody-1')).results, []);
  });

  test('bad recipients: the whole call is refused, nothing stored', T, async () => {
    for (const body of [
      {},
      { recipients: 'u1' },
      { recipients: [{ recipientId: 'good' }, { recipientId: '' }] },
      { recipients: [{ recipientId: 'good' }, { recipientId: 'u'.repeat(257) }] },
      { recipients: [{ recipientId: 'good' }, { recipientId: 7 }] },
      { recipients: [{ recipientId: 'good' }, { recipientId: 'x', preferences: 'OPTED_OUT' }] },
    ]) {
      const r = await raw('POST', '/lists/bad.recips/subscriptions', { body });
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.equal(r.body.type, 'invalid_request_error');
    }
    await expectStatus(sdk.lists.retrieve('bad.recips'), 404);
    const put = await raw('PUT', '/lists/bad.recips', { body: { preferences: {} } });
    assert.equal(put.status, 400, 'name is required');
    await expectStatus(sdk.lists.retrieve('bad.recips'), 404);
  });

  test('too many recipients in one call: 413, nothing stored; a replace keeps the old members', T, async () => {
    await sdk.lists.subscriptions.add('big.one', { recipients: [{ recipientId: 'keep' }] });
    const recipients = Array.from({ length: 1001 }, (_, i) => ({ recipientId: `r${i}` }));
    for (const method of ['POST', 'PUT']) {
      const r = await raw(method, '/lists/big.one/subscriptions', { body: { recipients } });
      assert.equal(r.status, 413, JSON.stringify(r.body));
      assert.equal(r.body.type, 'invalid_request_error');
      assert.match(r.body.message, /at most 1000/);
    }
    const lists = Array.from({ length: 1001 }, (_, i) => ({ listId: `many.l${i}` }));
    const p = await raw('POST', '/profiles/u2/lists', { body: { lists } });
    assert.equal(p.status, 413);
    assert.deepEqual((await sdk.lists.list({ pattern: 'many.*' })).items, []);
    const subs = await sdk.lists.subscriptions.list('big.one');
    assert.deepEqual(subs.items.map((s) => s.recipientId), ['keep']);
    // exactly the cap is fine
    const ok = await raw('POST', '/lists/big.cap/subscriptions', { body: { recipients: recipients.slice(0, 1000) } });
    assert.equal(ok.status, 204);
  });

  test('a body announcing 10M recipients is refused before it is read (413)', T, async () => {
    const chunk = Buffer.from(`{"recipients":[${'{"recipientId":"user-0000000"},'.repeat(2000)}`);
    const total = 10_000_000 * 30; // what 10M such ids weigh
    const status = await new Promise((resolve, reject) => {
      const req = http.request(`${srv.url}/lists/huge.one/subscriptions`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${srv.adminKey}`, 'Content-Type': 'application/json', 'Content-Length': String(total) },
      });
      req.on('response', (res) => {
        res.resume();
        resolve(res.statusCode);
        req.destroy();
      });
      req.on('error', (e) => (e.code === 'ECONNRESET' || e.code === 'EPIPE' ? undefined : reject(e)));
      req.write(chunk); // one chunk, then wait: the answer comes from the Content-Length alone
      setTimeout(() => reject(new Error('no answer')), scaled(10000)).unref();
    });
    assert.equal(status, 413);
    await expectStatus(sdk.lists.retrieve('huge.one'), 404);
  });
});
