// seed.test.mjs: `herald seed`, the bulk filler the growth benchmark (bench/growth.sh)
// uses. A fresh store is seeded with profiles and SENT messages in several batches; the
// real server then serves it: the profiles and messages read back through the API as
// herald's own would (five history events per message, in order), the server creates
// its workspace on it, and a new send on the seeded store is accepted and listed. A
// second seed of messages into a store holding messages is refused; profiles alone may
// be seeded again (ids already present are kept). Runs on SQLite and on PostgreSQL.

import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';

import { herald, makeTempDir, startServer, stopAll, waitFor, scaled } from './lib/server.mjs';

const T = { timeout: scaled(60000) };
after(stopAll);

const api = (srv, method, path, json) => srv.request(method, path, { auth: 'admin', json });

function ok(r, status = 200) {
  assert.equal(r.status, status, `expected ${status}, got ${r.status}: ${r.body}`);
  return r.json;
}

describe('herald seed', () => {
  test('seeded profiles and messages read back through the API', T, async (t) => {
    const dir = makeTempDir();
    const r = herald(['seed', '--profiles', '30', '--messages', '12', '--batch', '5'], { dir });
    assert.equal(r.status, 0, `seed exits 0\n${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /^profiles=30 profiles_s=[\d.]+ messages=12 history=60 messages_s=[\d.]+$/m);
    assert.match(r.stderr, /seed: messages 12\/12 done/);

    const srv = await startServer({ t, dir, expectKeys: true });

    const p = ok(await api(srv, 'GET', '/profiles/u7'));
    assert.equal(p.profile.email, 'user7@example.com');
    assert.equal(p.profile.name, 'User 7');
    ok(await api(srv, 'GET', '/profiles/u29'));
    assert.equal((await api(srv, 'GET', '/profiles/u30')).status, 404, 'exactly u0..u29');

    const list = ok(await api(srv, 'GET', '/messages?limit=50'));
    assert.equal(list.results.length, 12);
    const ids = new Set(list.results.map((m) => m.id));
    assert.equal(ids.size, 12, 'unique message ids');
    for (const m of list.results) {
      assert.equal(m.status, 'SENT');
      assert.match(m.recipient, /^u([0-9]|[12][0-9])$/, 'recipients are seeded profiles');
      assert.match(m.id, /^1-[0-9a-f]{8}-[0-9a-f]{24}$/, 'ids in herald\'s form');
    }
    const one = list.results[3];
    const m = ok(await api(srv, 'GET', `/messages/${one.id}`));
    assert.equal(m.status, 'SENT');
    assert.ok(m.sent >= m.enqueued && m.enqueued > 0);
    const h = ok(await api(srv, 'GET', `/messages/${one.id}/history`)).results;
    assert.deepEqual(h.map((e) => e.type), ['ENQUEUED', 'PROFILE_LOADED', 'RENDERED', 'DELIVERING', 'SENT']);
    assert.equal(h[1].stored_profile.email, `user${one.recipient.slice(1)}@example.com`);

    // by recipient, through the recipient index
    const byR = ok(await api(srv, 'GET', `/messages?recipient=${one.recipient}`));
    assert.ok(byR.results.some((x) => x.id === one.id));

    // the server goes on writing on top of the seeded rows
    const sent = ok(await api(srv, 'POST', '/send', {
      message: { to: { email: 'new@example.com' }, content: { title: 'T', body: 'B' }, routing: { method: 'single', channels: ['email'] } },
    }), 202);
    await waitFor(async () => (await api(srv, 'GET', `/messages/${sent.requestId}`)).status === 200, { what: 'new message listed' });
    assert.equal(ok(await api(srv, 'GET', '/messages?limit=50')).results.length, 13);
    await srv.stop();

    const again = herald(['seed', '--messages', '1'], { dir });
    assert.equal(again.status, 1);
    assert.match(again.stderr, /already holds 13 messages and \d+ history rows/);
    const more = herald(['seed', '--profiles', '40'], { dir });
    assert.equal(more.status, 0, more.stderr);
    assert.match(more.stdout, /^profiles=40 .*messages=0 history=0/m);

    await srv.restart();
    assert.equal(ok(await api(srv, 'GET', '/profiles/u35')).profile.email, 'user35@example.com');
    assert.equal(ok(await api(srv, 'GET', '/profiles/u7')).profile.name, 'User 7');
  });

  test('bad arguments are refused with usage', T, () => {
    for (const args of [['--profiles', '-1'], ['--batch', '0'], ['--messages', 'x'], ['--what']]) {
      const r = herald(['seed', ...args], { dir: makeTempDir() });
      assert.equal(r.status, 2, `${args.join(' ')}: exit 2\n${r.stderr}`);
    }
  });
});
