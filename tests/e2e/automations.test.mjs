// automations.test.mjs: automations end to end with real parts. @segment/analytics-node
// sends identify and track; automations linked to the event (PUT + POST /links, and
// POST /automations/from-event) send published templates through a real SMTP server
// (smtp-server + mailparser); delay and cancel by token; delays and runs surviving
// kill -9; fetch-data against a local node:http server (each merge strategy); `if`
// and step refs; invoke of another automation; validation, links, versions.

import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { after, before, describe, test } from 'node:test';

import { sleep, startServer, stopAll, waitFor, scaled } from './lib/server.mjs';
import { startHttpSink } from './lib/sink.mjs';
import { startSmtpSink } from './lib/smtp.mjs';

const require = createRequire(import.meta.url);
const { Analytics: SegmentAnalytics } = require('@segment/analytics-node');

const T = { timeout: scaled(30000) };
const ARGS = ['--retry-base-ms', '200'];
const SETTLE_MS = 800; // how long "nothing more arrives" is watched
const FINAL = new Set(['COMPLETED', 'CANCELED', 'FAILED']);

/* ---- plumbing ------------------------------------------------------------------------ */

const closers = [];
after(async () => {
  for (const c of closers.reverse()) await c();
  await stopAll();
});

async function smtpSink() {
  const s = await startSmtpSink();
  closers.push(() => s.close());
  return s;
}

async function httpSink(opts) {
  const s = await startHttpSink(opts);
  closers.push(() => s.close());
  return s;
}

const api = (srv, method, path, json) => srv.request(method, path, { auth: 'admin', json });

function ok(r, status = 200) {
  assert.equal(r.status, status, `expected ${status}, got ${r.status}: ${r.body}`);
  return r.json;
}

function assertError(r, status, re) {
  assert.equal(r.status, status, `expected ${status}, got ${r.status}: ${r.body}`);
  assert.equal(typeof r.json?.message, 'string', `error has a message: ${r.body}`);
  assert.equal(r.json?.type, 'invalid_request_error', `error type: ${r.body}`);
  if (re) assert.match(r.json.message, re, `message: ${r.body}`);
  return r.json;
}

/** A server with an SMTP provider pointed at smtp. */
async function heraldWithSmtp(name, smtp) {
  const srv = await startServer({ name, args: ARGS });
  ok(await api(srv, 'POST', '/providers', {
    provider: 'smtp',
    settings: { host: '127.0.0.1', port: smtp.port, secure: 'none', from: 'auto@herald.test' },
  }));
  return srv;
}

/** A published template {title, body}; returns its id. */
async function template(srv, name, title, body) {
  const t = ok(await api(srv, 'POST', '/notifications', { notification: { name, content: { title, body } }, state: 'PUBLISHED' }));
  assert.match(t.id, /^nt_/);
  return t.id;
}

/** A stored profile with an email address. */
async function profile(srv, userId, email) {
  ok(await api(srv, 'POST', `/profiles/${encodeURIComponent(userId)}`, { profile: { email } }));
}

async function putAutomation(srv, id, def) {
  return ok(await api(srv, 'PUT', `/automations/${id}`, def));
}

async function invokeAdhoc(srv, body) {
  const r = ok(await api(srv, 'POST', '/automations/invoke', body));
  assert.match(r.runId, /^\S+$/, `a runId: ${JSON.stringify(r)}`);
  return r.runId;
}

async function invokeById(srv, id, body = {}) {
  const r = ok(await api(srv, 'POST', `/automations/${id}/invoke`, body));
  assert.match(r.runId, /^\S+$/, `a runId: ${JSON.stringify(r)}`);
  return r.runId;
}

async function getRun(srv, runId) {
  return ok(await api(srv, 'GET', `/automations/runs/${runId}`));
}

/** Wait until the run has `status` (default: any final one); returns it. */
async function waitRun(srv, runId, status, { timeout = 10000 } = {}) {
  let last;
  try {
    return await waitFor(
      async () => {
        last = await getRun(srv, runId);
        return (status ? last.status === status : FINAL.has(last.status)) && last;
      },
      { timeout, what: `run ${runId} to be ${status ?? 'final'}` },
    );
  } catch (e) {
    e.message += `\n  last run: ${JSON.stringify(last)}`;
    throw e;
  }
}

const statuses = (run) => run.steps.map((s) => s.status);

async function runMessages(srv, runId) {
  return ok(await api(srv, 'GET', `/messages?runId=${encodeURIComponent(runId)}`)).results;
}

/** Asserts nothing more arrives for addr over SETTLE_MS; returns the mails to addr. */
async function settledMails(smtp, addr, count, what) {
  await waitFor(() => smtp.to(addr).length >= count, { timeout: 10000, what: `${count} mail(s) to ${addr} (${what})` });
  await sleep(SETTLE_MS);
  const got = smtp.to(addr);
  assert.equal(got.length, count, `${what}: exactly ${count} mail(s) to ${addr}, got: ${JSON.stringify(got.map((m) => m.parsed.subject))}`);
  return got;
}

const subjects = (mails) => mails.map((m) => m.parsed.subject).sort();

/* ---- 1: the whole story with real parts ------------------------------------------------ */

describe('events to emails', () => {
  let srv;
  let smtp;

  before(async () => {
    smtp = await smtpSink();
    srv = await heraldWithSmtp('auto-story', smtp);
  });

  test('1. Segment identify + track -> two linked automations -> two emails; unlinked, unknown user, redelivery', T, async () => {
    const U = 'story-user-1';
    const EMAIL = 'ada.story@example.com';
    const EVENT = 'track/Order Shipped';
    const tplA = await template(srv, 'Shipped', 'Order {{data.order_id}} shipped', 'Your order {{data.order_id}} is on its way.');
    const tplB = await template(srv, 'Receipt', 'Receipt for {{data.properties.order_id}}', 'Total {{data.properties.total}} {{data.properties.currency}}.');

    // automation A: PUT with a send step, linked by POST /links
    const a = await putAutomation(srv, 'ship-a', {
      name: 'Order shipped (A)',
      steps: [{ action: 'send', template: tplA, recipient: 'refs.data.userId' }],
    });
    assert.equal(a.id, 'ship-a');
    assert.equal(a.version, 1);
    const link = ok(await api(srv, 'POST', '/links', { event: EVENT, automation_id: 'ship-a' }));
    assert.equal(link.event, EVENT);
    assert.equal(link.automation_id, 'ship-a');
    // from-event needs the event in the catalog: not received yet
    assertError(await api(srv, 'POST', '/automations/from-event', { event: EVENT, template: tplB }), 404);

    const responses = [];
    const errors = [];
    const client = () => {
      const c = new SegmentAnalytics({ writeKey: srv.writeKey, host: srv.url });
      c.on('http_response', (r) => responses.push(r.status));
      c.on('error', (e) => errors.push(e));
      return c;
    };
    const deliver = async (calls) => {
      const c = client();
      const done = calls.map(
        ([method, params]) => new Promise((resolve) => c[method](params, (err) => resolve(err ? `${method}: ${err.message ?? err}` : null))),
      );
      await c.closeAndFlush({ timeout: 10000 });
      assert.deepEqual((await Promise.all(done)).filter(Boolean), [], 'every event delivered');
      assert.deepEqual(errors, [], 'no delivery errors');
      assert.ok(responses.every((s) => s === 200), `every response 200: ${responses}`);
    };

    await deliver([
      ['identify', { userId: U, traits: { email: EMAIL, name: 'Ada' } }],
      ['track', { userId: U, event: 'Order Shipped', properties: { order_id: 'o-1001', total: 42.5, currency: 'EUR' } }],
      ['track', { userId: U, event: 'Coupon Applied', properties: { order_id: 'o-nolink' } }], // linked to nothing
      ['track', { userId: 'story-ghost', event: 'Wishlist Viewed', properties: { item: 'x' } }], // unknown user
    ]);
    const first = await settledMails(smtp, EMAIL, 1, 'the first track, one linked automation');
    assert.equal(first[0].parsed.subject, 'Order o-1001 shipped');
    assert.match(first[0].parsed.text, /Your order o-1001 is on its way\./);
    assert.deepEqual(first[0].rcpt, [EMAIL], 'sent to the identified address');

    // the unknown user's track created the profile
    const ghost = await waitFor(async () => {
      const r = await api(srv, 'GET', '/profiles/story-ghost');
      return r.status === 200 && r;
    }, { what: 'the profile of story-ghost' });
    assert.ok(ghost.json.profile && typeof ghost.json.profile === 'object', ghost.body);

    // the message of the run: runId, and the ENQUEUED history event's origin
    const msgs = ok(await api(srv, 'GET', `/messages?recipient=${encodeURIComponent(U)}`)).results;
    assert.equal(msgs.length, 1, JSON.stringify(msgs));
    assert.ok(msgs[0].runId, `the message carries its run: ${JSON.stringify(msgs[0])}`);
    const h = ok(await api(srv, 'GET', `/messages/${msgs[0].id}/history`)).results;
    const enq = h.find((e) => e.type === 'ENQUEUED');
    assert.deepEqual(enq?.origin, { automation: 'ship-a', step: 0, run: msgs[0].runId }, JSON.stringify(h));
    // the row holds no copy of the data: the API adds it from the message
    assert.equal(enq?.data?.properties?.order_id, 'o-1001', JSON.stringify(enq));
    assert.equal(enq?.recipient, U, JSON.stringify(enq));
    const run1 = await waitRun(srv, msgs[0].runId, 'COMPLETED');
    assert.equal(run1.automation_id, 'ship-a');
    assert.equal(run1.version, 1);
    assert.equal(run1.context.recipient, U);
    assert.equal(run1.context.data.userId, U);
    assert.equal(run1.context.data.properties.order_id, 'o-1001');
    assert.deepEqual((await runMessages(srv, msgs[0].runId)).map((m) => m.id), [msgs[0].id]);

    // automation B from the event, now in the catalog: linked at once
    const b = ok(await api(srv, 'POST', '/automations/from-event', { event: EVENT, template: tplB, id: 'ship-b' }));
    assert.equal(b.id, 'ship-b');
    assert.equal(b.steps?.[0]?.action, 'send');
    const links = ok(await api(srv, 'GET', `/links?event=${encodeURIComponent(EVENT)}`)).results;
    assert.deepEqual(links.map((l) => l.automation_id).sort(), ['ship-a', 'ship-b'], JSON.stringify(links));

    // the second order: both automations send, each its own template
    const MID = `story-order-1002-${Date.now()}`;
    const order2 = { userId: U, event: 'Order Shipped', messageId: MID, properties: { order_id: 'o-1002', total: 7, currency: 'USD' } };
    await deliver([['track', order2]]);
    const three = await settledMails(smtp, EMAIL, 3, 'the second track, two linked automations');
    assert.deepEqual(subjects(three.slice(1)), ['Order o-1002 shipped', 'Receipt for o-1002']);
    const receipt = three.find((m) => m.parsed.subject === 'Receipt for o-1002');
    assert.match(receipt.parsed.text, /Total 7 USD\./);

    // redelivery of the same event (same messageId): acknowledged, not run again
    await deliver([['track', order2]]);
    const raw = await srv.request('POST', '/v1/track', {
      auth: 'write',
      json: { ...order2, type: 'track', timestamp: new Date().toISOString() },
    });
    assert.equal(raw.status, 200, raw.body);
    assert.equal(raw.json?.duplicates, 1, `the server saw a duplicate: ${raw.body}`);
    await sleep(SETTLE_MS);
    assert.equal(smtp.to(EMAIL).length, 3, `no automation ran again for the redelivered event: ${JSON.stringify(subjects(smtp.to(EMAIL)))}`);
    const all = ok(await api(srv, 'GET', `/messages?recipient=${encodeURIComponent(U)}`)).results;
    assert.equal(all.length, 3, `three messages in all: ${JSON.stringify(all.map((m) => m.notification))}`);
    assert.equal(smtp.mails.filter((m) => /o-nolink/.test(m.raw)).length, 0, 'the unlinked event sent nothing');
  });
});

/* ---- 2 to 9 on one server (the restart tests have their own) ---------------------------- */

describe('automation steps', () => {
  let srv;
  let smtp;
  let tplOrder; // "Order {{data.order_id}}"

  before(async () => {
    smtp = await smtpSink();
    srv = await heraldWithSmtp('auto-steps', smtp);
    tplOrder = await template(srv, 'Order', 'Order {{data.order_id}}', 'Order {{data.order_id}} for {{data.name}}.');
  });

  test('2. delay then cancel by token: CANCELED, no email; other tokens unaffected', T, async () => {
    await profile(srv, 'cancel-u1', 'cancel-u1@x.test');
    await profile(srv, 'cancel-u2', 'cancel-u2@x.test');
    await putAutomation(srv, 'delayed-order', {
      name: 'Delayed order',
      cancelation_token: 'refs.data.order_id',
      steps: [{ action: 'delay', duration: '3 seconds' }, { action: 'send', template: tplOrder }],
    });
    const doomed = await invokeById(srv, 'delayed-order', { recipient: 'cancel-u1', data: { order_id: 'ord-77' } });
    const control = await invokeById(srv, 'delayed-order', { recipient: 'cancel-u2', data: { order_id: 'ord-78' } });
    const w = await waitRun(srv, doomed, 'WAITING');
    assert.equal(w.cancelation_token, 'ord-77', `the token resolved against the run context: ${JSON.stringify(w)}`);
    assert.equal(w.steps[1].status, 'waiting');

    const canceler = await invokeAdhoc(srv, { automation: { steps: [{ action: 'cancel', cancelation_token: 'ord-77' }] } });
    const c = await waitRun(srv, canceler, 'COMPLETED');
    assert.equal(c.steps[0].status, 'done', JSON.stringify(c));
    const r = await waitRun(srv, doomed, 'CANCELED');
    assert.deepEqual(statuses(r), ['done', 'not run'], JSON.stringify(r));

    // the control run (same due time) sends; the canceled one never does
    const mail = await smtp.waitForMail((m) => m.rcpt.includes('cancel-u2@x.test'), { timeout: 10000 });
    assert.equal(mail.parsed.subject, 'Order ord-78');
    await sleep(SETTLE_MS);
    assert.equal(smtp.to('cancel-u1@x.test').length, 0, 'no email for the canceled run');
    assert.deepEqual(await runMessages(srv, doomed), [], 'no message for the canceled run');
    assert.equal((await getRun(srv, doomed)).status, 'CANCELED');
    assert.equal((await waitRun(srv, control, 'COMPLETED')).status, 'COMPLETED');

    // a literal token given at invoke
    await profile(srv, 'cancel-u3', 'cancel-u3@x.test');
    const lit = await invokeAdhoc(srv, {
      automation: { cancelation_token: 'literal-tok-1', steps: [{ action: 'delay', duration: '1 minute' }, { action: 'send', template: tplOrder }] },
      recipient: 'cancel-u3',
      data: { order_id: 'lit' },
    });
    await waitRun(srv, lit, 'WAITING');
    await invokeAdhoc(srv, { automation: { steps: [{ action: 'cancel', cancelation_token: 'literal-tok-1' }] } });
    const lr = await waitRun(srv, lit, 'CANCELED');
    assert.deepEqual(statuses(lr), ['done', 'not run']);
  });

  test('4. fetch-data: request, each merge strategy, and the fetched value in a template', T, async () => {
    const FETCHED = { shared: 'fetched', extra: 'x-42', nested: { a: 1 } };
    const sink = await httpSink({ fallback: { status: 200, json: FETCHED } });
    const DATA = { keep: 'orig', shared: 'orig', token: 'tok-1' };
    const fetchStep = (strategy) => ({
      action: 'fetch-data',
      webhook: {
        url: sink.url,
        method: 'POST',
        headers: { Authorization: 'Bearer ${refs.data.token}', 'X-Static': 'yes' },
        params: { q: 'one two' },
        body: { order: { $ref: 'data.keep' } },
      },
      ...(strategy ? { merge_strategy: strategy } : {}),
    });
    const dataAfter = async (strategy, data = DATA) => {
      const id = await invokeAdhoc(srv, { automation: { steps: [fetchStep(strategy)] }, ...(data ? { data } : {}) });
      const run = await waitRun(srv, id);
      assert.equal(run.status, 'COMPLETED', `${strategy}: ${JSON.stringify(run)}`);
      return run.context.data;
    };

    assert.deepEqual(await dataAfter('replace'), FETCHED, 'replace: the response replaces data');
    const req = sink.requests[0];
    assert.equal(req.method, 'POST');
    assert.match(req.path, /^\/hook\?q=one(%20|\+)two$/, req.path);
    assert.equal(req.headers.authorization, 'Bearer tok-1', 'headers interpolate the run context');
    assert.equal(req.headers['x-static'], 'yes');
    assert.deepEqual(req.json, { order: 'orig' }, 'the body resolves accessors');

    assert.deepEqual(await dataAfter('soft-merge'), { keep: 'orig', shared: 'orig', token: 'tok-1', extra: 'x-42', nested: { a: 1 } }, 'soft-merge: only new keys');
    assert.deepEqual(await dataAfter('overwrite'), { keep: 'orig', shared: 'fetched', token: 'tok-1', extra: 'x-42', nested: { a: 1 } }, 'overwrite: fetched keys win, others stay');
    assert.deepEqual(await dataAfter('none'), DATA, 'none: existing data is left alone');
    assert.deepEqual(await dataAfter('none', null), FETCHED, 'none: empty data is initialised');
    assert.deepEqual(await dataAfter(undefined), FETCHED, 'the default is replace');

    // the merged data (and the step's ref) reach a later send
    await profile(srv, 'fetch-u1', 'fetch-u1@x.test');
    const tpl = await template(srv, 'Fetched', 'Fetched {{data.extra}} for {{data.keep}}', 'Via ref: {{data.via_ref}}.');
    const id = await invokeAdhoc(srv, {
      automation: {
        steps: [
          { ...fetchStep('overwrite'), ref: 'fetch1' },
          { action: 'send', template: tpl, data: { via_ref: 'refs.fetch1.body.nested.a' } },
        ],
      },
      recipient: 'fetch-u1',
      data: DATA,
    });
    const mail = await smtp.waitForMail((m) => m.rcpt.includes('fetch-u1@x.test'));
    assert.equal(mail.parsed.subject, 'Fetched x-42 for orig');
    assert.match(mail.parsed.text, /Via ref: 1\./);
    const run = await waitRun(srv, id, 'COMPLETED');
    assert.equal(run.steps[0].outcome?.status, 200, JSON.stringify(run.steps[0]));
    assert.deepEqual(run.context.refs.fetch1.body, FETCHED);
  });

  test('5a. if: a false condition skips its step, a true one runs it', T, async () => {
    await profile(srv, 'if-u1', 'if-u1@x.test');
    const tpl = await template(srv, 'If', 'If {{data.which}}', 'Step {{data.which}}.');
    const id = await invokeAdhoc(srv, {
      automation: {
        steps: [
          { action: 'send', template: tpl, data: { which: 'first' } },
          { action: 'send', template: tpl, data: { which: 'vip' }, if: 'data.vip === true' },
          { action: 'send', template: tpl, data: { which: 'regular' }, if: "data.vip === false && data.plan == 'basic'" },
        ],
      },
      recipient: 'if-u1',
      data: { vip: false, plan: 'basic' },
    });
    const run = await waitRun(srv, id, 'COMPLETED');
    assert.deepEqual(statuses(run), ['done', 'skipped', 'done'], JSON.stringify(run));
    const mails = await settledMails(smtp, 'if-u1@x.test', 2, 'the steps whose if held');
    assert.deepEqual(subjects(mails), ['If first', 'If regular']);
    assert.equal((await runMessages(srv, id)).length, 2);
  });

  test('5b. if: a ref\'d send step\'s outcome gates later steps (refs.step1.status)', T, async () => {
    await profile(srv, 'if-u2', 'if-u2@x.test');
    const tpl = await template(srv, 'IfRef', 'Ref {{data.which}}', 'Step {{data.which}}.');
    const id = await invokeAdhoc(srv, {
      automation: {
        steps: [
          { action: 'send', template: tpl, data: { which: 'a' }, ref: 'step1' },
          { action: 'send', template: tpl, data: { which: 'b' }, if: 'refs.step1.status === "ENQUEUED"' },
          { action: 'send', template: tpl, data: { which: 'c' }, if: 'refs.step1.status === "UNDELIVERABLE"' },
        ],
      },
      recipient: 'if-u2',
    });
    const run = await waitRun(srv, id, 'COMPLETED');
    assert.deepEqual(statuses(run), ['done', 'done', 'skipped'], JSON.stringify(run));
    assert.equal(run.context.refs.step1.status, 'ENQUEUED');
    assert.equal(typeof run.context.refs.step1.messageId, 'string');
    const mails = await settledMails(smtp, 'if-u2@x.test', 2, 'a and b');
    assert.deepEqual(subjects(mails), ['Ref a', 'Ref b']);
  });

  test('5c. the invoke body\'s profile is the recipient\'s profile for send steps', T, async () => {
    // Courier: run context {data, profile, recipient, ...} is set by the invoke body; the
    // send goes to the run's recipient with the run's profile (no stored profile here)
    const id = await invokeAdhoc(srv, {
      automation: { steps: [{ action: 'send', template: tplOrder }] },
      recipient: 'ctx-profile-u1',
      profile: { email: 'ctx-profile-u1@x.test' },
      data: { order_id: 'ctx-1', name: 'Ctx' },
    });
    await waitRun(srv, id, 'COMPLETED');
    const msgs = await runMessages(srv, id);
    const mail = await smtp.waitForMail((m) => m.rcpt.includes('ctx-profile-u1@x.test'), { timeout: 5000 }).catch((e) => {
      e.message += `\n  messages of the run: ${JSON.stringify(msgs)}`;
      throw e;
    });
    assert.equal(mail.parsed.subject, 'Order ctx-1');
  });

  test('6. an automation invoking another: both complete, the invoked one sends', T, async () => {
    await profile(srv, 'inv-u1', 'inv-u1@x.test');
    await putAutomation(srv, 'child-send', { name: 'Child', steps: [{ action: 'send', template: tplOrder }] });
    await putAutomation(srv, 'parent-invoke', { name: 'Parent', steps: [{ action: 'invoke', template: 'child-send', ref: 'inv' }] });
    const parentId = await invokeById(srv, 'parent-invoke', { recipient: 'inv-u1', data: { order_id: 'inv-9', name: 'Child' } });
    const parent = await waitRun(srv, parentId, 'COMPLETED');
    assert.equal(parent.automation_id, 'parent-invoke');
    const childId = parent.steps[0].outcome?.runId;
    assert.ok(childId, `the invoke step names the child run: ${JSON.stringify(parent.steps[0])}`);
    assert.notEqual(childId, parentId);
    const child = await waitRun(srv, childId, 'COMPLETED');
    assert.equal(child.automation_id, 'child-send');
    assert.equal(child.version, 1);
    assert.equal(child.context.recipient, 'inv-u1');
    assert.equal(child.context.data.order_id, 'inv-9');
    const mail = await smtp.waitForMail((m) => m.rcpt.includes('inv-u1@x.test'));
    assert.equal(mail.parsed.subject, 'Order inv-9');
    const msgs = await runMessages(srv, childId);
    assert.equal(msgs.length, 1, JSON.stringify(msgs));
    const h = ok(await api(srv, 'GET', `/messages/${msgs[0].id}/history`)).results;
    assert.deepEqual(h.find((e) => e.type === 'ENQUEUED')?.origin, { automation: 'child-send', step: 0, run: childId });
    assert.deepEqual(await runMessages(srv, parentId), [], 'the parent itself sent nothing');
  });

  test('8. validation, unknown automations, links both ways, unlink, delete', T, async () => {
    const send = { action: 'send', template: tplOrder, recipient: 'u' };
    assertError(await api(srv, 'PUT', '/automations/bad-1', { name: 'x', steps: [send, { action: 'explode' }] }), 400, /steps\[1\]/);
    assertError(await api(srv, 'PUT', '/automations/bad-2', { name: 'x', steps: [send, { ...send, if: 'data.a === (' }] }), 400, /steps\[1\]/);
    assertError(await api(srv, 'PUT', '/automations/bad-3', { name: 'x', steps: [{ action: 'delay', duration: 'soon' }, send] }), 400, /steps\[0\]/);
    assertError(await api(srv, 'PUT', '/automations/bad-4', { name: 'x', steps: [send, { action: 'delay', duration: '-5 minutes' }] }), 400, /steps\[1\]/);
    assertError(await api(srv, 'PUT', '/automations/bad-5', { name: 'x', steps: [] }), 400);
    assertError(await api(srv, 'PUT', '/automations/bad-6', { name: 'x', steps: [send, send, { action: 'fetch-data' }] }), 400, /steps\[2\]/);
    assertError(await api(srv, 'PUT', '/automations/bad-7', { name: 'x', steps: [{ action: 'cancel' }] }), 400, /steps\[0\]/);
    assertError(await api(srv, 'POST', '/automations/invoke', { automation: { steps: [send, { action: 'nope' }] } }), 400, /steps\[1\]/);
    for (const id of ['bad-1', 'bad-2', 'bad-3', 'bad-4', 'bad-5', 'bad-6', 'bad-7']) {
      assertError(await api(srv, 'GET', `/automations/${id}`), 404);
    }

    assertError(await api(srv, 'POST', '/automations/no-such-automation/invoke', { recipient: 'u' }), 404);
    assertError(await api(srv, 'POST', '/links', { event: 'track/Anything', automation_id: 'no-such-automation' }), 404);

    await putAutomation(srv, 'linked-1', { name: 'Linked 1', steps: [send] });
    await putAutomation(srv, 'linked-2', { name: 'Linked 2', steps: [send] });
    ok(await api(srv, 'POST', '/links', { event: 'track/Signed Up', automation_id: 'linked-1' }));
    ok(await api(srv, 'POST', '/links', { event: 'track/Signed Up', automation_id: 'linked-2' }));
    ok(await api(srv, 'POST', '/links', { event: 'identify', automation_id: 'linked-1' }));
    const byEvent = async (ev) => ok(await api(srv, 'GET', `/links?event=${encodeURIComponent(ev)}`)).results.map((l) => l.automation_id).sort();
    const byAuto = async (id) => ok(await api(srv, 'GET', `/links?automation_id=${id}`)).results.map((l) => l.event).sort();
    assert.deepEqual(await byEvent('track/Signed Up'), ['linked-1', 'linked-2']);
    assert.deepEqual(await byEvent('identify'), ['linked-1']);
    assert.deepEqual(await byAuto('linked-1'), ['identify', 'track/Signed Up']);
    assert.deepEqual(await byAuto('linked-2'), ['track/Signed Up']);
    assertError(await api(srv, 'GET', '/links'), 400);

    const del = await api(srv, 'DELETE', `/links?event=${encodeURIComponent('track/Signed Up')}&automation_id=linked-1`);
    assert.equal(del.status, 204, del.body);
    assert.deepEqual(await byEvent('track/Signed Up'), ['linked-2']);
    assert.deepEqual(await byAuto('linked-1'), ['identify']);
    assertError(await api(srv, 'DELETE', `/links?event=${encodeURIComponent('track/Signed Up')}&automation_id=linked-1`), 404);

    const list = ok(await api(srv, 'GET', '/automations')).templates;
    assert.ok(list.some((t) => t.id === 'linked-1' && t.name === 'Linked 1' && t.version === 'published' && t.revision === 1), JSON.stringify(list));

    // deleting an automation removes its links
    assert.equal((await api(srv, 'DELETE', '/automations/linked-1')).status, 204);
    assertError(await api(srv, 'GET', '/automations/linked-1'), 404);
    assert.deepEqual(await byAuto('linked-1'), []);
    assert.deepEqual(await byEvent('identify'), []);
    assertError(await api(srv, 'POST', '/automations/linked-1/invoke', {}), 404);
  });

  test('9. versions: a waiting run keeps its version; ?version=1 returns the old steps', T, async () => {
    await profile(srv, 'ver-u1', 'ver-u1@x.test');
    await profile(srv, 'ver-u2', 'ver-u2@x.test');
    const tplOld = await template(srv, 'Old', 'Old {{data.order_id}}', 'old content');
    const tplNew = await template(srv, 'New', 'New {{data.order_id}}', 'new content');
    const v1Steps = [{ action: 'delay', duration: '2 seconds' }, { action: 'send', template: tplOld }];
    const v2Steps = [{ action: 'delay', duration: '2 seconds' }, { action: 'send', template: tplNew }];
    assert.equal((await putAutomation(srv, 'versioned', { name: 'V', steps: v1Steps })).version, 1);
    const oldRun = await invokeById(srv, 'versioned', { recipient: 'ver-u1', data: { order_id: 'v-old' } });
    await waitRun(srv, oldRun, 'WAITING');
    const v2 = await putAutomation(srv, 'versioned', { name: 'V', steps: v2Steps });
    assert.equal(v2.version, 2);
    assert.equal((await getRun(srv, oldRun)).status, 'WAITING', 'version 2 was saved while the run waited');
    const newRun = await invokeById(srv, 'versioned', { recipient: 'ver-u2', data: { order_id: 'v-new' } });

    const m1 = await smtp.waitForMail((m) => m.rcpt.includes('ver-u1@x.test'));
    assert.equal(m1.parsed.subject, 'Old v-old', 'the waiting run sent its own version\'s template');
    assert.match(m1.parsed.text, /old content/);
    const m2 = await smtp.waitForMail((m) => m.rcpt.includes('ver-u2@x.test'));
    assert.equal(m2.parsed.subject, 'New v-new');
    assert.equal((await waitRun(srv, oldRun, 'COMPLETED')).version, 1);
    assert.equal((await waitRun(srv, newRun, 'COMPLETED')).version, 2);

    const g1 = ok(await api(srv, 'GET', '/automations/versioned?version=1'));
    assert.equal(g1.version, 1);
    assert.deepEqual(g1.steps, v1Steps);
    const g2 = ok(await api(srv, 'GET', '/automations/versioned'));
    assert.equal(g2.version, 2);
    assert.deepEqual(g2.steps, v2Steps);
    assertError(await api(srv, 'GET', '/automations/versioned?version=3'), 404);
  });
});

/* ---- 3 and 7: kill -9 ------------------------------------------------------------------- */

describe('durability across kill -9', () => {
  test('3. a delay survives a restart: the email arrives near the due time', T, async (t) => {
    const smtp = await smtpSink();
    const srv = await heraldWithSmtp('auto-restart-delay', smtp);
    await profile(srv, 'rs-u1', 'rs-u1@x.test');
    const tpl = await template(srv, 'Restart', 'After restart {{data.order_id}}', 'r');
    const runId = await invokeAdhoc(srv, {
      automation: { steps: [{ action: 'delay', duration: '2 seconds' }, { action: 'send', template: tpl }] },
      recipient: 'rs-u1',
      data: { order_id: 'rs-1' },
    });
    const invokedAt = Date.now();
    await srv.kill9();
    await srv.restart();
    const restartedAt = Date.now();
    const mail = await smtp.waitForMail((m) => m.rcpt.includes('rs-u1@x.test'), { timeout: 12000 });
    assert.equal(mail.parsed.subject, 'After restart rs-1');
    const run = await waitRun(srv, runId, 'COMPLETED');
    const due = run.steps[0].outcome?.until;
    assert.equal(typeof due, 'number', JSON.stringify(run.steps[0]));
    const lateness = mail.at - due;
    t.diagnostic(`restart took ${restartedAt - invokedAt} ms; due ${due - invokedAt} ms after invoke; mail ${mail.at - invokedAt} ms after invoke; lateness ${lateness} ms`);
    assert.ok(mail.at >= due - 50, `not sent before the due time (lateness ${lateness} ms)`);
    assert.ok(lateness < 10000, `sent within 10 s of the due time (lateness ${lateness} ms)`);
    await sleep(SETTLE_MS);
    assert.equal(smtp.to('rs-u1@x.test').length, 1, 'exactly one email');
  });

  test('7. kill -9 between steps (during the delay): exactly one email after restart', T, async (t) => {
    const smtp = await smtpSink();
    const srv = await heraldWithSmtp('auto-restart-steps', smtp);
    await profile(srv, 'rs-u2', 'rs-u2@x.test');
    const tpl = await template(srv, 'Between', 'Between steps {{data.order_id}}', 'b');
    const runId = await invokeAdhoc(srv, {
      automation: { steps: [{ action: 'delay', duration: '1 second' }, { action: 'send', template: tpl }] },
      recipient: 'rs-u2',
      data: { order_id: 'rs-2' },
    });
    const w = await waitRun(srv, runId, 'WAITING', { timeout: 900 });
    assert.deepEqual(statuses(w), ['done', 'waiting']);
    await srv.kill9();
    assert.equal(smtp.to('rs-u2@x.test').length, 0, 'nothing sent before the kill');
    await srv.restart();
    const mail = await smtp.waitForMail((m) => m.rcpt.includes('rs-u2@x.test'), { timeout: 10000 });
    assert.equal(mail.parsed.subject, 'Between steps rs-2');
    const run = await waitRun(srv, runId, 'COMPLETED');
    assert.deepEqual(statuses(run), ['done', 'done']);
    t.diagnostic(`lateness after restart: ${mail.at - run.steps[0].outcome.until} ms`);
    await settledMails(smtp, 'rs-u2@x.test', 1, 'after the restart');
    assert.equal((await runMessages(srv, runId)).length, 1, 'one message for the run');
  });
});
