// runaway.test.mjs: automations and events written to hurt the node (issue 12): an
// automation invoking itself (refused at save; an indirect cycle through a $ref stopped
// at run time by the depth limit, the queue draining to 0 while a normal /send is
// delivered), an invoke whose template resolves to nothing (it used to crash the worker
// on every restart), a fetch-data method resolved to CRLF (it used to inject a request
// line and a Host header), one oversized identify in a /v1/batch (it used to fail the
// whole batch's job for hours), a job whose lease dies with the process again and again
// (dead-lettered, not run forever), and /render of inputs that cost far more than their
// step count (budget errors, not 20 s of CPU).

import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { after, describe, test } from 'node:test';

import { isPostgres, metricValue, sleep, startServer, stopAll, waitFor, scaled } from './lib/server.mjs';
import { startHttpSink } from './lib/sink.mjs';

const T = { timeout: scaled(60000) };
const FINAL = new Set(['COMPLETED', 'CANCELED', 'FAILED']);

const closers = [];
after(async () => {
  for (const c of closers.reverse()) await c();
  await stopAll();
});

const api = (srv, method, path, json) => srv.request(method, path, { auth: 'admin', json });

function ok(r, status = 200) {
  assert.equal(r.status, status, `expected ${status}, got ${r.status}: ${r.body}`);
  return r.json;
}

async function httpSink(opts) {
  const s = await startHttpSink(opts);
  closers.push(() => s.close());
  return s;
}

async function finalRun(srv, runId) {
  let run;
  await waitFor(async () => {
    run = ok(await api(srv, 'GET', `/automations/runs/${runId}`));
    return FINAL.has(run.status);
  }, { timeout: scaled(15000), what: `run ${runId} final` });
  return run;
}

/** Jobs queued or leased, over every kind (the /metrics gauge). */
async function liveJobs(srv) {
  const { samples } = await srv.metrics();
  let n = 0;
  for (const s of samples) {
    if (s.name === 'herald_queue_depth' && (s.labels.state === 'queued' || s.labels.state === 'leased')) n += s.value;
  }
  return n;
}

async function expectSent(srv, requestId) {
  let m;
  await waitFor(async () => {
    m = (await api(srv, 'GET', `/messages/${requestId}`)).json;
    return m && m.status === 'SENT';
  }, { timeout: scaled(15000), what: `message ${requestId} SENT` });
  return m;
}

describe('runaway automations', () => {
  test('an automation invoking itself is refused at save, directly and through one other', T, async () => {
    const srv = await startServer({ name: 'self-invoke-save' });
    const r = await api(srv, 'PUT', '/automations/loop-a', { steps: [{ action: 'invoke', template: 'loop-a' }] });
    assert.equal(r.status, 400, r.body);
    assert.equal(r.json.type, 'invalid_request_error');
    assert.match(r.json.message, /steps\[0\].*loop-a itself/);
    assert.equal((await api(srv, 'GET', '/automations/loop-a')).status, 404, 'nothing was stored');

    // A -> B stored first, then B -> A is the cycle
    ok(await api(srv, 'PUT', '/automations/loop-b', { steps: [{ action: 'invoke', template: 'loop-c' }] }));
    const c = await api(srv, 'PUT', '/automations/loop-c', { steps: [{ action: 'delay', duration: '1s' }, { action: 'invoke', template: 'loop-b' }] });
    assert.equal(c.status, 400, c.body);
    assert.match(c.json.message, /steps\[1\].*loop-b.*loop-c/);
  });

  test('a cycle through a $ref stops at the depth limit: the run fails with the reason, the queue drains, a /send meanwhile is delivered', T, async () => {
    const hook = await httpSink();
    const srv = await startServer({ name: 'ref-cycle' });
    ok(await api(srv, 'POST', '/providers', { provider: 'webhook', settings: { url: hook.url } }));
    // x invokes whatever data.next names, y invokes x: x -> y -> x -> ... unknown at save
    ok(await api(srv, 'PUT', '/automations/ref-x', { steps: [{ action: 'invoke', template: { $ref: 'data.next' }, ref: 'inv' }] }));
    ok(await api(srv, 'PUT', '/automations/ref-y', { steps: [{ action: 'invoke', template: 'ref-x', ref: 'inv' }] }));
    const first = ok(await api(srv, 'POST', '/automations/ref-x/invoke', { data: { next: 'ref-y' } })).runId;
    const sent = ok(await api(srv, 'POST', '/send', { message: { to: { user_id: 'meanwhile-u' }, content: { title: 't', body: 'meanwhile' }, routing: { method: 'single', channels: ['webhook'] } } }), 202).requestId;

    // follow the chain of runs to the one that failed
    let runId = first;
    let run;
    const seen = [];
    for (let i = 0; i < 40; i += 1) {
      run = await finalRun(srv, runId);
      seen.push(`${run.automation_id}:${run.status}`);
      if (run.status !== 'COMPLETED') break;
      runId = run.steps[0].outcome?.runId;
      assert.ok(runId, `a completed invoke names the run it started: ${JSON.stringify(run.steps[0])}`);
    }
    assert.equal(run.status, 'FAILED', `the chain ends in a failed run: ${seen.join(' ')}`);
    assert.match(run.error, /depth limit/, JSON.stringify(run));
    assert.ok(seen.length <= 9, `at most 8 nested invokes below the first run: ${seen.join(' ')}`);
    await waitFor(async () => (await liveJobs(srv)) === 0, { timeout: scaled(15000), what: 'the queue drained to 0 jobs' });
    await expectSent(srv, sent);
  });

  test('fan-out: runs that each invoke the next twice stop at the tree budget', T, async () => {
    const srv = await startServer({ name: 'fan-out' });
    // fan-k invokes fan-(k+1) twice: 2 + 4 + ... runs, past 64 below depth 8
    for (let k = 7; k >= 0; k -= 1) {
      const steps = k === 7
        ? [{ action: 'delay', duration: '1' }]
        : [{ action: 'invoke', template: `fan-${k + 1}` }, { action: 'invoke', template: `fan-${k + 1}` }];
      ok(await api(srv, 'PUT', `/automations/fan-${k}`, { steps }));
    }
    const root = ok(await api(srv, 'POST', '/automations/fan-0/invoke', {})).runId;
    await waitFor(async () => (await liveJobs(srv)) === 0, { timeout: scaled(30000), what: 'the queue drained to 0 jobs' });
    // walk the tree: count runs started, find a failure naming the fan-out limit
    let started = 0;
    let failed;
    const walk = async (id) => {
      const run = await finalRun(srv, id);
      if (run.status === 'FAILED' && !failed) failed = run;
      for (const s of run.steps) {
        if (s.status === 'done' && s.outcome?.runId) {
          started += 1;
          await walk(s.outcome.runId);
        }
      }
    };
    await walk(root);
    assert.ok(failed, 'a run of the tree failed');
    assert.match(failed.error, /fan-out limit/, JSON.stringify(failed));
    assert.equal(started, 64, 'the tree started exactly its budget of runs');
  });
});

describe('steps whose accessors resolve to junk', () => {
  test('invoke with template refs.data.nope fails the run with a reason; the server stays up', T, async () => {
    const srv = await startServer({ name: 'invoke-nothing' });
    ok(await api(srv, 'PUT', '/automations/nope', { steps: [{ action: 'invoke', template: 'refs.data.nope' }] }));
    const id = ok(await api(srv, 'POST', '/automations/nope/invoke', { data: {} })).runId;
    const run = await finalRun(srv, id);
    assert.equal(run.status, 'FAILED', JSON.stringify(run));
    assert.match(run.error, /invoke: template must resolve to an automation id, got nothing/);
    // a number, and an id with a newline, fail the same way
    const num = ok(await api(srv, 'POST', '/automations/invoke', { automation: { steps: [{ action: 'invoke', template: { $ref: 'data.n' } }] }, data: { n: 7 } })).runId;
    assert.match((await finalRun(srv, num)).error, /got a number/);
    const nl = ok(await api(srv, 'POST', '/automations/invoke', { automation: { steps: [{ action: 'invoke', template: { $ref: 'data.n' } }] }, data: { n: 'a\nb' } })).runId;
    assert.match((await finalRun(srv, nl)).error, /got "a\?b"/);
    assert.equal((await srv.request('GET', '/healthz')).status, 200);
    assert.equal(srv.run.result, undefined, 'the server is still running');
  });

  test('fetch-data: a method resolved to CRLF is refused before any request; a bad resolved URL too', T, async () => {
    // a raw TCP sink: records every byte any client sends
    const seen = [];
    const sockets = new Set();
    const server = net.createServer((s) => {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('data', (d) => seen.push(d.toString('latin1')));
      s.on('error', () => {});
      s.end('HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}');
    });
    await new Promise((r) => server.listen(0, '127.0.0.1', r));
    closers.push(() => new Promise((r) => {
      for (const s of sockets) s.destroy();
      server.close(() => r());
    }));
    const url = `http://127.0.0.1:${server.address().port}/f`;
    const srv = await startServer({ name: 'fetch-method' });
    const evil = 'GET /x HTTP/1.1\r\nHost: injected.example\r\nX-Injected: 1\r\n\r\nGET';
    const run1 = ok(await api(srv, 'POST', '/automations/invoke', {
      automation: { steps: [{ action: 'fetch-data', webhook: { url, method: { $ref: 'data.m' } } }] },
      data: { m: evil },
    })).runId;
    const r1 = await finalRun(srv, run1);
    assert.equal(r1.status, 'FAILED', JSON.stringify(r1));
    assert.match(r1.error, /fetch-data: webhook.method must be GET, POST, PUT, PATCH or DELETE/);
    const run2 = ok(await api(srv, 'POST', '/automations/invoke', {
      automation: { steps: [{ action: 'fetch-data', webhook: { url: { $ref: 'data.u' } } }] },
      data: { u: `${url}?a=1 HTTP/1.1\r\nHost: injected.example\r\n\r\n` },
    })).runId;
    const r2 = await finalRun(srv, run2);
    assert.equal(r2.status, 'FAILED', JSON.stringify(r2));
    assert.match(r2.error, /webhook.url holds a space or control character/);
    // a good method through the same accessor still works
    const run3 = ok(await api(srv, 'POST', '/automations/invoke', {
      automation: { steps: [{ action: 'fetch-data', webhook: { url, method: { $ref: 'data.m' } } }] },
      data: { m: 'POST' },
    })).runId;
    assert.equal((await finalRun(srv, run3)).status, 'COMPLETED');
    await sleep(100);
    const all = seen.join('');
    assert.doesNotMatch(all, /injected/i, `the sink saw no injected header: ${JSON.stringify(all)}`);
    assert.match(all, /^POST \/f HTTP\/1\.1/m, 'the good request arrived');
    // refused at save too, when the method is a literal
    const bad = await api(srv, 'PUT', '/automations/bad-method', { steps: [{ action: 'fetch-data', webhook: { url, method: 'GET\r\nX: 1' } }] });
    assert.equal(bad.status, 400, bad.body);
  });
});

describe('one bad event in a batch', () => {
  test('an identify pushing its profile past the cap is rejected alone; the other users\' tracks run their automation', T, async () => {
    const hook = await httpSink();
    const srv = await startServer({ name: 'batch-isolation' });
    ok(await api(srv, 'POST', '/providers', { provider: 'webhook', settings: { url: hook.url } }));
    const tpl = ok(await api(srv, 'POST', '/notifications', { notification: { name: 'Iso', content: { title: 'Iso', body: 'order {{order}}' } }, state: 'PUBLISHED' })).id;
    ok(await api(srv, 'PUT', '/automations/iso-order', { steps: [{ action: 'send', template: tpl, recipient: 'refs.data.userId' }] }));
    ok(await api(srv, 'POST', '/links', { event: 'track/Iso Order', automation_id: 'iso-order' }));
    const write = (body) => srv.request('POST', '/v1/batch', { auth: 'write', json: body });
    const VALUE = 'x'.repeat(30000); // one identify stays under the 32 KB event limit
    let n = 0;
    const identify = () => ({ type: 'identify', userId: 'big-u', messageId: `big-${(n += 1)}`, traits: { [`t${n}`]: VALUE } });
    // 30 identifies (900 KB of traits) in two batches: all apply
    for (let b = 0; b < 2; b += 1) {
      const r = await write({ batch: Array.from({ length: 15 }, identify) });
      assert.equal(r.status, 200, r.body);
    }
    await waitFor(async () => {
      const p = (await api(srv, 'GET', '/profiles/big-u')).json;
      return p?.profile && Object.keys(p.profile).length >= 30;
    }, { timeout: scaled(15000), what: 'the profile grew to 30 traits' });
    // the poisoned batch: identifies that go past 1 MiB, and other users' tracks
    const batch = Array.from({ length: 6 }, identify);
    for (let i = 0; i < 3; i += 1) batch.push({ type: 'track', event: 'Iso Order', userId: `iso-u${i}`, messageId: `iso-${i}`, properties: { order: `o-${i}` } });
    const r = await write({ batch });
    assert.equal(r.status, 200, r.body);
    await hook.waitForRequests(3, { timeout: scaled(15000) });
    const bodies = hook.requests.map((q) => q.body).join('\n');
    for (let i = 0; i < 3; i += 1) assert.match(bodies, new RegExp(`order o-${i}`), `user iso-u${i}'s automation delivered`);
    // the identifies that fit applied, the ones past the cap did not, and were counted
    const p = (await api(srv, 'GET', '/profiles/big-u')).json.profile;
    assert.ok(Object.keys(p).length >= 31 && Object.keys(p).length < 36, `some of the last identifies applied: ${Object.keys(p).length} traits`);
    const { samples } = await srv.metrics();
    assert.ok(metricValue(samples, 'herald_events_rejected_total', { reason: 'too_large' }) >= 1, 'the rejected event is counted');
    assert.ok(srv.logs().some((l) => /event=ingest\.event_rejected .*reason=too_large/.test(l)), 'and logged');
    await waitFor(async () => (await liveJobs(srv)) === 0, { timeout: scaled(15000), what: 'no job left retrying' });
  });
});

describe('render cost', () => {
  test('/render answers 400 for a helper over a long string in a loop, and for cmark\'s quadratic pattern', T, async () => {
    const srv = await startServer({ name: 'render-cost' });
    const big = 'a'.repeat(800 * 1024);
    const xs = Array.from({ length: 200 }, (_, i) => i);
    const r1 = await api(srv, 'POST', '/render', {
      channel: 'email',
      content: { title: 'x', body: '{{#each xs}}{{#if (uppercase ../big)}}.{{/if}}{{/each}}' },
      data: { big, xs },
    });
    assert.equal(r1.status, 400, r1.body.slice(0, 300));
    assert.equal(r1.json.type, 'invalid_request_error');
    assert.match(r1.json.message, /render budget of \d+ steps exceeded/);
    const r2 = await api(srv, 'POST', '/render', { channel: 'email', content: { title: 'x', body: '![[]()'.repeat(40000) } });
    assert.equal(r2.status, 400, r2.body.slice(0, 300));
    assert.match(r2.json.message, /markdown block is \d+ bytes, over the limit of 65536/);
    const r3 = await api(srv, 'POST', '/render', { channel: 'email', content: { title: 'x', body: '![[]()'.repeat(5000) } });
    assert.equal(r3.status, 400, r3.body.slice(0, 300));
    assert.match(r3.json.message, /over the limit of 2048/);
    // ordinary content still renders
    const r4 = await api(srv, 'POST', '/render', { channel: 'email', content: { title: 'x', body: 'Hi **{{uppercase name}}** [link](https://example.com)' }, data: { name: 'lin' } });
    assert.equal(r4.status, 200, r4.body);
    assert.match(r4.json.content.html, /<strong>LIN<\/strong>/);
  });
});

describe('poison pill', () => {
  test('a job in hand each time the process is killed is dead-lettered after 5 takeovers, not run again; from the second on it runs alone, so an innocent job in flight beside it at the first kills is not', { timeout: scaled(180000) }, async () => {
    // a sink that accepts and never answers: the fetch-data step hangs while we kill
    let conns = 0;
    const sockets = new Set();
    const hang = net.createServer((s) => {
      conns += 1;
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {});
    });
    await new Promise((r) => hang.listen(0, '127.0.0.1', r));
    // an innocent job's sink: answers after SLOW_MS, so it is in flight at the first kills
    const SLOW_MS = 1500;
    let slowCalls = 0;
    const slow = http.createServer((req, res) => {
      slowCalls += 1;
      req.resume();
      const t = setTimeout(() => {
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.end('{"ok":true}');
      }, SLOW_MS);
      res.on('close', () => clearTimeout(t));
    });
    await new Promise((r) => slow.listen(0, '127.0.0.1', r));
    closers.push(() => new Promise((r) => {
      for (const s of sockets) s.destroy();
      hang.close(() => r());
    }));
    closers.push(() => new Promise((r) => {
      slow.closeAllConnections();
      slow.close(() => r());
    }));
    // PostgreSQL leases are not ended at start (other nodes may hold them): a lease
    // shorter than the 10 s fetch timeout lets the restarted node take the job over
    const srv = await startServer({ name: 'poison-pill', args: isPostgres ? ['--lease-ms', '6000'] : [] });
    const url = `http://127.0.0.1:${hang.address().port}/hang`;
    ok(await api(srv, 'POST', '/automations/invoke', { automation: { steps: [{ action: 'fetch-data', webhook: { url } }] } }));
    const innocent = ok(await api(srv, 'POST', '/automations/invoke', { automation: { steps: [{ action: 'fetch-data', webhook: { url: `http://127.0.0.1:${slow.address().port}/slow` } }] } }));
    for (let k = 1; k <= 5; k += 1) {
      // at the first two kills the innocent job's call is in flight too (on SQLite both
      // are taken over at start in one batch; on PostgreSQL when their leases end, which
      // may be a lease-timer tick apart, so its second call may be over by then)
      const innocentCalls = Math.min(k, 2);
      await waitFor(() => conns >= k && slowCalls >= innocentCalls, { timeout: scaled(30000), what: `attempt ${k} in flight at the sink` });
      const r = await srv.kill9();
      assert.equal(r.signal, 'SIGKILL');
      await srv.restart();
    }
    let q;
    await waitFor(async () => {
      q = ok(await api(srv, 'GET', '/admin/queue'));
      return q.dead.length > 0 && q.jobs.every((j) => j.count === 0 || j.state === 'dead');
    }, { timeout: scaled(30000), what: 'the step job in the dead letters, and nothing else left' });
    assert.equal(q.dead.length, 1, `only the pill is dead: ${JSON.stringify(q.dead)}`);
    assert.equal(q.dead[0].kind, 'automation.step');
    assert.match(q.dead[0].last_error, /poison pill: its lease was taken over 5 times/);
    await sleep(300);
    assert.equal(conns, 5, 'not run a sixth time');
    // the innocent job, in flight at the first kill beside the pill, still ran to the end
    const run = ok(await api(srv, 'GET', `/automations/runs/${encodeURIComponent(innocent.runId)}`));
    assert.equal(run.status, 'COMPLETED', JSON.stringify(run));
    // taken over again after its first takeover, each was a suspect: leased alone
    const suspects = srv.logs().filter((l) => l.includes('event=queue.suspect'));
    const retakenOf = (id) => suspects.filter((l) => l.includes(`id=${id} `)).map((l) => Number(/retaken=(\d+)/.exec(l)[1]));
    assert.deepEqual(retakenOf(q.dead[0].id), [2, 3, 4], `the pill's suspect leases: ${suspects.join('\n')}`);
    // on SQLite the innocent job was in hand at the second kill too: a suspect once, run
    // alone after (or before) the pill's turn, not counted with it
    if (!isPostgres) assert.equal(suspects.length, 4, `the pill 3 times, the innocent once: ${suspects.join('\n')}`);
    assert.equal((await srv.request('GET', '/healthz')).status, 200);
  });
});
