// migrate.test.mjs: `herald migrate-store` from SQLite to PostgreSQL. An installation is
// built through the real server on SQLite (keys, an SMTP provider, a published template,
// an automation linked to a track event, profiles from identify, messages SENT with
// their history, a delayed send and a delayed ping job), stopped, and copied: once in
// one go (the printed counts match), once with --batch 1 killed with SIGKILL midway and
// then rerun (it resumes and the counts match). herald then serves the resumed copy on
// PostgreSQL: the old admin key works, the data reads back, a new track event runs the
// linked automation and the pending ping job runs.
//
// Needs PostgreSQL (HERALD_TEST_PG_DSN; `make test` provides it): skipped without. The
// test uses both stores itself, so it runs in the SQLite pass of run-e2e.sh only.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { after, describe, test } from 'node:test';

import { heraldBin, herald, isPostgres, metricValue, pgDsnWithDb, psql, sleep, startServer, stopAll, waitFor, scaled } from './lib/server.mjs';
import { startSmtpSink } from './lib/smtp.mjs';

const require = createRequire(import.meta.url);
const { Analytics: SegmentAnalytics } = require('@segment/analytics-node');

const T = { timeout: scaled(120000) };
const PG = process.env.HERALD_TEST_PG_DSN;
const skip = !PG
  ? 'HERALD_TEST_PG_DSN is not set (start one with scripts/pg-test.sh start, or run make test)'
  : isPostgres
    ? 'runs in the SQLite pass only (it starts its own SQLite and PostgreSQL servers)'
    : false;
if (skip) console.log(`# migrate.test.mjs skipped: ${skip}`);

const closers = [];
const databases = [];
after(async () => {
  await stopAll();
  for (const c of closers.reverse()) await c();
  if (databases.length && !process.env.HERALD_E2E_KEEP) {
    try {
      psql(databases.map((db) => `DROP DATABASE IF EXISTS ${db} WITH (FORCE)`));
    } catch (e) {
      process.stderr.write(`migrate: dropping test databases failed: ${e.message}\n`);
    }
  }
});

const api = (srv, method, path, json) => srv.request(method, path, { auth: 'admin', json });

function ok(r, status = 200) {
  assert.equal(r.status, status, `expected ${status}, got ${r.status}: ${r.body}`);
  return r.json;
}

function newDatabase() {
  const db = `herald_mig_${process.pid}_${Math.random().toString(36).slice(2, 10)}`;
  psql(`CREATE DATABASE ${db}`);
  databases.push(db);
  return pgDsnWithDb(PG, db);
}

/** The count table migrate-store prints: {table: [source, target, 'ok'|'MISMATCH']}. */
function counts(stdout) {
  const out = {};
  for (const line of stdout.split('\n')) {
    const m = /^(\w+)\s+(\d+)\s+(\d+)\s+(ok|MISMATCH)$/.exec(line.trim());
    if (m) out[m[1]] = [Number(m[2]), Number(m[3]), m[4]];
  }
  return out;
}

const TABLES = ['meta', 'api_keys', 'docs', 'events', 'catalog', 'messages', 'message_history', 'jobs', 'lists', 'list_subs', 'msgrefs'];

function assertCounts(r, what) {
  assert.equal(r.status, 0, `${what}: exit 0\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`);
  const c = counts(r.stdout);
  assert.deepEqual(Object.keys(c).sort(), [...TABLES].sort(), `${what}: a row per table:\n${r.stdout}`);
  for (const t of TABLES) {
    assert.equal(c[t][0], c[t][1], `${what}: ${t} source == target:\n${r.stdout}`);
    assert.equal(c[t][2], 'ok');
  }
  return c;
}

async function deliver(srv, calls) {
  const c = new SegmentAnalytics({ writeKey: srv.writeKey, host: srv.url });
  const errors = [];
  c.on('error', (e) => errors.push(e));
  const done = calls.map(
    ([method, params]) => new Promise((resolve) => c[method](params, (err) => resolve(err ? `${method}: ${err.message ?? err}` : null))),
  );
  await c.closeAndFlush({ timeout: 10000 });
  assert.deepEqual((await Promise.all(done)).filter(Boolean), [], 'every event delivered');
  assert.deepEqual(errors, [], 'no delivery errors');
}

describe('migrate-store: SQLite to PostgreSQL', { skip }, () => {
  test('copy, interrupt and resume, then serve from PostgreSQL', T, async () => {
    const smtp = await startSmtpSink();
    closers.push(() => smtp.close());
    const EVENT = 'track/Order Shipped';
    const users = [
      ['mig-u1', 'mig.one@example.com'],
      ['mig-u2', 'mig.two@example.com'],
    ];

    /* ---- build the SQLite installation ---- */
    const src = await startServer({ name: 'migrate-sqlite', args: ['--retry-base-ms', '200'] });
    const srcDsn = `sqlite:${src.dir}/herald.db`;
    ok(await api(src, 'POST', '/providers', {
      provider: 'smtp',
      settings: { host: '127.0.0.1', port: smtp.port, secure: 'none', from: 'mig@herald.test' },
    }));
    const tpl = ok(await api(src, 'POST', '/notifications', {
      notification: { name: 'Shipped', content: { title: 'Order {{data.properties.order_id}} shipped', body: 'On its way.' } },
      state: 'PUBLISHED',
    })).id;
    ok(await api(src, 'PUT', '/automations/mig-ship', {
      name: 'Order shipped',
      steps: [{ action: 'send', template: tpl, recipient: 'refs.data.userId' }],
    }));
    ok(await api(src, 'POST', '/links', { event: EVENT, automation_id: 'mig-ship' }));
    await deliver(src, users.flatMap(([u, email], i) => [
      ['identify', { userId: u, traits: { email, name: `User ${i}` } }],
      ['track', { userId: u, event: 'Order Shipped', properties: { order_id: `o-${i}` } }],
    ]));
    for (const [, email] of users)
      await waitFor(() => smtp.to(email).length >= 1, { timeout: 15000, what: `a mail to ${email}` });
    const sent = {};
    for (const [u] of users) {
      const msgs = await waitFor(async () => {
        const r = ok(await api(src, 'GET', `/messages?recipient=${u}`)).results;
        return r.length === 1 && r[0].status === 'SENT' && r;
      }, { timeout: 15000, what: `the message of ${u} SENT` });
      const h = ok(await api(src, 'GET', `/messages/${msgs[0].id}/history`)).results;
      assert.ok(h.some((e) => e.type === 'SENT'), JSON.stringify(h));
      sent[u] = { id: msgs[0].id, history: h.map((e) => e.type) };
    }
    // enough rows that a copy in batches of one takes a while
    const PROFILES = 1000;
    for (let i = 0; i < PROFILES; i += 25)
      await Promise.all(Array.from({ length: Math.min(25, PROFILES - i) }, (_, k) =>
        api(src, 'POST', `/profiles/bulk-${i + k}`, { profile: { email: `bulk${i + k}@example.com` } }).then((r) => ok(r))));
    // a list with members, and one deleted (kept for a restore)
    ok(await api(src, 'POST', '/lists/mig.team/subscriptions', { recipients: [{ recipientId: 'mig-u1' }, { recipientId: 'mig-u2', preferences: { notifications: {} } }] }), 204);
    ok(await api(src, 'PUT', '/lists/mig.gone/subscriptions/mig-u1'), 204);
    ok(await api(src, 'DELETE', '/lists/mig.gone'), 204);
    const delayed = ok(await api(src, 'POST', '/send', {
      message: { to: { email: 'later@example.com' }, template: tpl, data: {}, delay: { duration: 3600000 } },
    }), 202).requestId;
    const before = {
      notifications: ok(await api(src, 'GET', '/notifications')).results.map((n) => n.id).sort(),
      automations: ok(await api(src, 'GET', '/automations')).templates.map((a) => a.id).sort(),
      links: ok(await api(src, 'GET', `/links?event=${encodeURIComponent(EVENT)}`)).results.map((l) => l.automation_id),
      delayed: ok(await api(src, 'GET', `/messages/${delayed}`)).status,
    };
    // a ping due in 5 s, enqueued last: the SQLite server stops before it runs
    ok(await api(src, 'POST', '/admin/jobs/ping', { delay_ms: 5000 }), 202);
    assert.equal((await src.stop()).code, 0);

    /* ---- one go ---- */
    const dstA = newDatabase();
    const a = herald(['migrate-store', '--from', srcDsn, '--to', dstA], { timeout: 60000 });
    const c = assertCounts(a, 'migrate-store');
    assert.ok(c.api_keys[0] >= 2 && c.messages[0] >= 3 && c.message_history[0] >= 6, a.stdout);
    assert.ok(c.jobs[0] >= 2, `the ping and the delayed send are pending jobs: ${a.stdout}`);
    assert.ok(c.events[0] >= 4 && c.docs[0] >= 1005 && c.catalog[0] >= 2, a.stdout);
    assert.ok(c.lists[0] === 2 && c.list_subs[0] === 3, a.stdout);
    assert.match(a.stderr, /migrate: jobs \d+\/\d+ rows, done/, 'progress lines when not on a terminal');
    // a rerun finds everything there: still every count matching
    assertCounts(herald(['migrate-store', '--from', srcDsn, '--to', dstA], { timeout: 60000 }), 'rerun');

    /* ---- interrupted, then resumed ---- */
    const dstB = newDatabase();
    // batches of one row, killed as soon as the keys are copied: the many profiles
    // (docs) are still being copied then
    const child = spawn(heraldBin(), ['migrate-store', '--from', srcDsn, '--to', dstB, '--batch', '1'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let err = '';
    child.stderr.on('data', (d) => {
      err += d;
      if (/migrate: api_keys \d+\/\d+ rows, done/.test(err)) child.kill('SIGKILL');
    });
    const killed = await new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal })));
    assert.equal(killed.signal, 'SIGKILL', `killed midway, not finished: ${err}`);
    const partial = Number(psql('SELECT count(*) FROM docs', { dsn: dstB, tuples: true }).trim());
    assert.ok(partial < c.docs[0], `the docs were not all copied yet (${partial} of ${c.docs[0]})`);
    const keys = psql("SELECT key FROM meta WHERE key LIKE 'migrate.%' ORDER BY key", { dsn: dstB, tuples: true });
    assert.match(keys, /migrate\.api_keys\.last_seq/, `progress recorded in the target's meta: ${keys}`);
    const resumed = herald(['migrate-store', '--from', srcDsn, '--to', dstB], { timeout: 60000 });
    assert.deepEqual(assertCounts(resumed, 'resumed'), c, 'the resumed copy has what the one-go copy has');

    /* ---- a target holding another workspace is refused ---- */
    const other = await startServer({ name: 'migrate-other' });
    await other.stop();
    const refused = herald(['migrate-store', '--from', `sqlite:${other.dir}/herald.db`, '--to', dstB], { timeout: 60000 });
    assert.notEqual(refused.status, 0, refused.stdout + refused.stderr);
    assert.match(refused.stderr, /another workspace.*--force/);

    /* ---- serve the resumed copy from PostgreSQL ---- */
    const pg = await startServer({ name: 'migrate-pg', args: ['--store', dstB, '--retry-base-ms', '200'], expectKeys: false });
    pg.adminKey = src.adminKey;
    pg.writeKey = src.writeKey;
    assert.deepEqual(pg.stdout.filter((l) => l.startsWith('HERALD_')), [], 'no new keys: the workspace came along');
    // the write key's scope came along (the bootstrap write key is a client key)
    const scopeOf = (key) => psql(`SELECT scope FROM api_keys WHERE prefix = '${key.slice(0, 12)}'`, { dsn: dstB, tuples: true }).trim();
    assert.deepEqual([scopeOf(src.writeKey), scopeOf(src.adminKey)], ['1', '0'], 'api_keys.scope copied');
    // the pending ping runs there
    await waitFor(
      async () => metricValue((await pg.metrics()).samples, 'herald_jobs_total', { kind: 'ping', outcome: 'done' }) >= 1,
      { timeout: 20000, what: 'the copied ping job to run' },
    );
    for (const [u, email] of users) {
      const p = ok(await api(pg, 'GET', `/profiles/${u}`));
      assert.equal(p.profile.email, email, JSON.stringify(p));
      const msgs = ok(await api(pg, 'GET', `/messages?recipient=${u}`)).results;
      assert.deepEqual(msgs.map((m) => [m.id, m.status]), [[sent[u].id, 'SENT']]);
      const h = ok(await api(pg, 'GET', `/messages/${sent[u].id}/history`)).results;
      assert.deepEqual(h.map((e) => e.type), sent[u].history);
    }
    assert.deepEqual(ok(await api(pg, 'GET', '/notifications')).results.map((n) => n.id).sort(), before.notifications);
    assert.deepEqual(ok(await api(pg, 'GET', '/automations')).templates.map((x) => x.id).sort(), before.automations);
    assert.deepEqual(ok(await api(pg, 'GET', `/links?event=${encodeURIComponent(EVENT)}`)).results.map((l) => l.automation_id), before.links);
    assert.equal(ok(await api(pg, 'GET', `/messages/${delayed}`)).status, before.delayed);
    const members = ok(await api(pg, 'GET', '/lists/mig.team/subscriptions')).items;
    assert.deepEqual(members.map((m) => [m.recipientId, m.preferences ?? null]), [['mig-u1', null], ['mig-u2', { notifications: {} }]]);
    assert.equal((await api(pg, 'GET', '/lists/mig.gone')).status, 404, 'a deleted list stays deleted');
    ok(await api(pg, 'PUT', '/lists/mig.gone/restore'), 204);
    assert.deepEqual(ok(await api(pg, 'GET', '/lists/mig.gone/subscriptions')).items.map((m) => m.recipientId), ['mig-u1']);
    // a new event runs the linked automation; new rows get fresh ids after the copied ones
    await deliver(pg, [['track', { userId: 'mig-u1', event: 'Order Shipped', properties: { order_id: 'o-after' } }]]);
    await waitFor(() => smtp.to('mig.one@example.com').length >= 2, { timeout: 15000, what: 'a mail from the automation on PostgreSQL' });
    const last = smtp.to('mig.one@example.com').at(-1);
    assert.equal(last.parsed.subject, 'Order o-after shipped');
    await waitFor(async () => ok(await api(pg, 'GET', '/messages?recipient=mig-u1')).results.length === 2, { what: 'two messages for mig-u1' });
    await sleep(100);
    assert.equal((await pg.stop()).code, 0);
  });
});
