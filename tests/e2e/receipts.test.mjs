// receipts.test.mjs: delivery receipts in and the suppression list (issue 16, points 2 and 3).
//
// One herald per test, six providers configured against one local stand-in (it answers each
// provider's send API with a message id, serves an SNS-style signing certificate and records
// the SNS subscription confirmation). Messages are sent for real through POST /send; the
// test then posts receipts to POST /receipts/{provider_id} signed exactly as each provider
// signs them (node:crypto): SendGrid ECDSA P-256, Twilio HMAC-SHA1 over URL + sorted params,
// SES through SNS (an RSA certificate made with openssl at test time), Postmark Basic,
// Resend svix HMAC-SHA256, Mailgun HMAC-SHA256 over timestamp + token. Forged, stale,
// replayed and reordered receipts are posted too: refused ones answer 401 and store
// nothing; reordered and duplicate ones never move a status backwards.
//
// The exhaustive ordering rules and each verifier's published test vectors are C unit
// tests (tests/unit/engine/test_receipt.c, tests/unit/api/test_receipt_sig.c).

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { test } from 'node:test';

import { closeAfterAll } from './lib/cleanup.mjs';
import { finalMessage } from './lib/messages.mjs';
import { makeTempDir, scaled, startServer } from './lib/server.mjs';

const T = { timeout: scaled(60000) };
const closers = closeAfterAll();
const now = () => Math.floor(Date.now() / 1000);

/** The stand-in: every provider's send API, the SNS certificate and subscribe URL. */
async function standIn(certPem) {
  const calls = [];
  let n = 0;
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      calls.push({ method: req.method, path: req.url, body });
      const id = `${Date.now().toString(16)}${(++n).toString(16).padStart(6, '0')}`;
      const json = (status, v, headers = {}) => {
        res.writeHead(status, { 'Content-Type': 'application/json', ...headers });
        res.end(JSON.stringify(v));
      };
      if (req.method === 'GET' && req.url === '/sns/cert.pem') {
        res.writeHead(200, { 'Content-Type': 'application/x-pem-file' });
        return res.end(certPem);
      }
      if (req.method === 'GET' && req.url.startsWith('/sns/confirm')) return json(200, { ConfirmSubscriptionResponse: {} });
      if (req.url === '/v3/mail/send') {
        res.writeHead(202, { 'X-Message-Id': `sg${id}` });
        return res.end();
      }
      if (req.url === '/email') return json(200, { MessageID: `pm-${id}`, ErrorCode: 0, Message: 'OK' });
      if (req.url === '/emails') return json(200, { id: `re-${id}` });
      if (/^\/v3\/[^/]+\/messages$/.test(req.url)) return json(200, { id: `<${id}@mg.herald.test>`, message: 'Queued. Thank you.' });
      if (req.url === '/v2/email/outbound-emails') return json(200, { MessageId: `ses-${id}` });
      if (/\/Messages\.json$/.test(req.url)) return json(201, { sid: `SM${id}`, status: 'queued' });
      json(404, { message: 'no such stand-in path' });
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  closers.push(() => new Promise((r) => server.close(r)));
  return { url: `http://127.0.0.1:${server.address().port}`, calls };
}

function ok(r, status = 200) {
  assert.equal(r.status, status, `expected ${status}, got ${r.status}: ${r.body}`);
  return r.json;
}

const api = (srv, method, p, json) => srv.request(method, p, { auth: 'admin', json });

/** Send one message through provider pid and wait for SENT; -> {id, ref, to}. */
async function sendVia(srv, pid, to, channel = 'email') {
  const message = {
    to,
    content: { title: 'Hello', body: 'A receipt will follow.' },
    routing: { method: 'single', channels: [channel] },
    channels: { [channel]: { providers: [pid] } },
  };
  const id = ok(await api(srv, 'POST', '/send', { message }), 202).requestId;
  const r = await finalMessage(srv, id, { timeout: scaled(15000) });
  return { id, m: r.m, h: r.h, why: r.why, ref: r.h.find((e) => e.type === 'SENT')?.reference?.id };
}

async function state(srv, id) {
  const m = ok(await api(srv, 'GET', `/messages/${id}`));
  const h = ok(await api(srv, 'GET', `/messages/${id}/history`)).results;
  return { m, h, why: `message: ${JSON.stringify(m)}\nhistory: ${JSON.stringify(h)}` };
}

/** POST a receipt: raw body string, headers. */
const receipt = (srv, pid, body, headers = {}) =>
  srv.request('POST', `/receipts/${pid}`, { body, headers: { 'Content-Type': 'application/json', ...headers } });

function refused(r, what) {
  assert.equal(r.status, 401, `${what}: expected 401, got ${r.status} ${r.body}`);
  assert.equal(r.json?.type, 'authentication_error', `${what}: a JSON error: ${r.body}`);
}

// ---- how each provider signs ---------------------------------------------------------------

function sendgridSign(key, body, ts = String(now())) {
  const s = crypto.createSign('sha256');
  s.update(ts + body);
  return { 'X-Twilio-Email-Event-Webhook-Signature': s.sign(key).toString('base64'), 'X-Twilio-Email-Event-Webhook-Timestamp': ts };
}

function twilioSign(token, url, params) {
  const data = url + Object.keys(params).sort().map((k) => k + params[k]).join('');
  return crypto.createHmac('sha1', token).update(data).digest('base64');
}

function svixSign(secret, id, ts, body) {
  const key = Buffer.from(secret.slice('whsec_'.length), 'base64');
  return { 'svix-id': id, 'svix-timestamp': ts, 'svix-signature': `v1,${crypto.createHmac('sha256', key).update(`${id}.${ts}.${body}`).digest('base64')}` };
}

function mailgunBody(key, eventData, { ts = String(now()), token = crypto.randomBytes(25).toString('hex') } = {}) {
  const signature = crypto.createHmac('sha256', key).update(ts + token).digest('hex');
  return JSON.stringify({ signature: { timestamp: ts, token, signature }, 'event-data': eventData });
}

function snsSign(keyPem, msg) {
  const fields = msg.Type === 'Notification' ? ['Message', 'MessageId', 'Subject', 'Timestamp', 'TopicArn', 'Type'] : ['Message', 'MessageId', 'SubscribeURL', 'Timestamp', 'Token', 'TopicArn', 'Type'];
  const sts = fields.filter((f) => msg[f] !== undefined).map((f) => `${f}\n${msg[f]}\n`).join('');
  const s = crypto.createSign(msg.SignatureVersion === '1' ? 'RSA-SHA1' : 'RSA-SHA256');
  s.update(sts);
  return JSON.stringify({ ...msg, Signature: s.sign(keyPem).toString('base64') });
}

// ---- the test ------------------------------------------------------------------------------

test('receipts from six providers: signed ones move the status forward, forged/stale/replayed ones are refused, bounces suppress', T, async (t) => {
  // an SNS-style signing certificate, made here
  const dir = makeTempDir('herald-sns-');
  const keyPath = path.join(dir, 'sns.key');
  const certPath = path.join(dir, 'sns.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyPath, '-out', certPath, '-days', '2', '-subj', '/CN=sns.amazonaws.com'], { stdio: 'ignore' });
  const snsKey = fs.readFileSync(keyPath, 'utf8');
  const stub = await standIn(fs.readFileSync(certPath, 'utf8'));
  const srv = await startServer({ t, env: { HERALD_SNS_URL_PREFIX: `${stub.url}/sns/` } });

  const sg = crypto.generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const sgPublic = sg.publicKey.export({ type: 'spki', format: 'der' }).toString('base64');
  const TW_TOKEN = 'twilio-auth-token-e2e-0001';
  const TW_URL = 'https://herald.example.com/receipts/twilio-main';
  const RS_SECRET = `whsec_${crypto.randomBytes(24).toString('base64')}`;
  const MG_KEY = 'mailgun-webhook-signing-key-e2e';
  const TOPIC = 'arn:aws:sns:us-east-1:123456789012:ses-events';
  const from = 'noreply@herald.test';
  const add = async (provider, settings) => ok(await api(srv, 'POST', '/providers', { provider, settings })).id;
  const P = {
    sendgrid: await add('sendgrid', { api_key: 'SG.e2e-key', from, base_url: stub.url, webhook_public_key: sgPublic }),
    postmark: await add('postmark', { server_token: 'pm-e2e-token', from, base_url: stub.url, webhook_username: 'pmhook', webhook_password: 'pm-hook-password' }),
    resend: await add('resend', { api_key: 're_e2e_key', from, base_url: stub.url, webhook_secret: RS_SECRET }),
    mailgun: await add('mailgun', { api_key: 'mg-e2e-key', domain: 'mg.herald.test', from, base_url: stub.url, webhook_signing_key: MG_KEY }),
    ses: await add('ses', { access_key_id: 'AKIDE2E', secret_access_key: 'ses-e2e-secret', region: 'us-east-1', from, base_url: stub.url, sns_topic_arn: TOPIC }),
    twilio: await add('twilio', { account_sid: 'ACe2e0000000000000000000000000000a', auth_token: TW_TOKEN, from: '+15550001111', base_url: stub.url, status_callback_url: TW_URL }),
  };

  // unusable verification settings are refused when the provider is configured
  for (const [provider, settings, field] of [
    ['sendgrid', { api_key: 'SG.x', from, webhook_public_key: 'bm90IGEga2V5' }, 'webhook_public_key'],
    ['resend', { api_key: 're_x', from, webhook_secret: 'not-a-whsec' }, 'webhook_secret'],
    ['twilio', { account_sid: 'ACe2e0000000000000000000000000000a', auth_token: 'x1234', from: '+15550001111', status_callback_url: 'ftp://x' }, 'status_callback_url'],
    ['postmark', { server_token: 'pm', from, webhook_username: 'only-a-user' }, 'webhook_username'],
  ]) {
    const r = await api(srv, 'POST', '/providers', { provider, settings });
    assert.equal(r.status, 400, `${provider} ${field}: ${r.body}`);
    assert.match(r.json?.message ?? '', new RegExp(`settings\\.${field}`), r.body);
  }

  // the verification secrets are masked like the others
  for (const [pid, k, v] of [[P.resend, 'webhook_secret', RS_SECRET], [P.mailgun, 'webhook_signing_key', MG_KEY], [P.postmark, 'webhook_password', 'pm-hook-password']]) {
    const got = ok(await api(srv, 'GET', `/providers/${pid}`));
    assert.notEqual(got.settings[k], v, `${k} is masked`);
  }

  // ---- SendGrid: a batch in reverse order, then forged, stale, replayed -------------------
  {
    const s = await sendVia(srv, P.sendgrid, { email: 'Ann@Example.com' });
    assert.equal(s.m.status, 'SENT', s.why);
    assert.ok(s.ref, `a reference: ${s.why}`);
    const sgid = `${s.ref}.filter0001.16648.5515E0B88.0`;
    const ev = (event, extra = {}) => ({ email: 'ann@example.com', timestamp: now(), event, sg_message_id: sgid, sg_event_id: crypto.randomUUID(), ...extra });
    const batch = JSON.stringify([ev('click', { url: 'https://shop.example/o/1' }), ev('open'), ev('delivered'), ev('processed')]);
    const r1 = ok(await receipt(srv, P.sendgrid, batch, sendgridSign(sg.privateKey, batch)));
    assert.equal(r1.applied, 4, JSON.stringify(r1));
    let st = await state(srv, s.id);
    assert.equal(st.m.status, 'CLICKED', `the latest of the batch wins, order regardless: ${st.why}`);
    for (const [type, event] of [['CLICKED', 'click'], ['OPENED', 'open'], ['DELIVERED', 'delivered'], ['RECEIPT', 'processed']])
      assert.ok(st.h.some((e) => e.type === type && e.event === event && e.integration?.provider === 'sendgrid'), `history ${type} with the provider's event "${event}": ${st.why}`);
    assert.equal(st.h.find((e) => e.type === 'CLICKED').link, 'https://shop.example/o/1');
    const rows = st.h.length;

    // forged (signed by another key), stale (10 minutes old), unsigned
    const late = JSON.stringify([ev('delivered')]);
    const other = crypto.generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    refused(await receipt(srv, P.sendgrid, late, sendgridSign(other.privateKey, late)), 'sendgrid forged');
    refused(await receipt(srv, P.sendgrid, late, sendgridSign(sg.privateKey, late, String(now() - 600))), 'sendgrid stale');
    refused(await receipt(srv, P.sendgrid, late), 'sendgrid unsigned');
    // a late (reordered) delivered, validly signed: history only; then its replay: 401
    const hdr = sendgridSign(sg.privateKey, late);
    ok(await receipt(srv, P.sendgrid, late, hdr));
    refused(await receipt(srv, P.sendgrid, late, hdr), 'sendgrid replayed');
    st = await state(srv, s.id);
    assert.equal(st.m.status, 'CLICKED', `never backwards: ${st.why}`);
    assert.equal(st.h.length, rows + 1, `one row for the late receipt, none for the refused ones: ${st.why}`);
    assert.equal(st.h[st.h.length - 1].status_changed, false);
  }

  // ---- Resend: delivered, then a hard bounce suppresses; the next send never reaches it --
  {
    const s = await sendVia(srv, P.resend, { email: 'bob@example.com' });
    const post = (type, data, id = `msg_${crypto.randomUUID()}`, ts = String(now())) => {
      const body = JSON.stringify({ type, created_at: new Date().toISOString(), data: { email_id: s.ref, to: ['bob@example.com'], ...data } });
      return { body, headers: svixSign(RS_SECRET, id, ts, body) };
    };
    let q = post('email.bounced', { bounce: { type: 'Permanent', subType: 'General', message: 'mailbox does not exist' } });
    const forged = { ...q.headers, 'svix-signature': svixSign(`whsec_${crypto.randomBytes(24).toString('base64')}`, q.headers['svix-id'], q.headers['svix-timestamp'], q.body)['svix-signature'] };
    refused(await receipt(srv, P.resend, q.body, forged), 'resend forged');
    const stale = post('email.delivered', {}, undefined, String(now() - 3600));
    refused(await receipt(srv, P.resend, stale.body, stale.headers), 'resend stale');
    ok(await receipt(srv, P.resend, q.body, q.headers));
    refused(await receipt(srv, P.resend, q.body, q.headers), 'resend replayed (same svix-id)');
    let st = await state(srv, s.id);
    assert.equal(st.m.status, 'UNDELIVERABLE', st.why);
    assert.equal(st.m.reason, 'BOUNCED', st.why);
    const b = st.h.find((e) => e.type === 'UNDELIVERABLE' && e.event === 'email.bounced');
    assert.equal(b?.reasonCode, 'hard', st.why);
    // a delivered after the bounce: history only
    q = post('email.delivered', {});
    ok(await receipt(srv, P.resend, q.body, q.headers));
    st = await state(srv, s.id);
    assert.equal(st.m.status, 'UNDELIVERABLE', `a bounce is final: ${st.why}`);

    const list = ok(await api(srv, 'GET', '/suppressions'));
    const entry = list.results.find((e) => e.address === 'bob@example.com');
    assert.ok(entry, `suppressed: ${JSON.stringify(list)}`);
    assert.equal(entry.reason, 'BOUNCED');
    assert.equal(entry.provider, 'resend');
    assert.equal(entry.event, 'email.bounced');
    assert.equal(entry.message_id, s.id);
    assert.match(entry.created, /^\d{4}-\d\d-\d\dT/);

    const calls = stub.calls.filter((c) => c.path === '/emails').length;
    const again = await sendVia(srv, P.resend, { email: 'BOB@example.com' });
    assert.equal(again.m.status, 'UNDELIVERABLE', again.why);
    assert.equal(again.m.reason, 'SUPPRESSED', again.why);
    assert.ok(again.h.some((e) => e.type === 'UNDELIVERABLE' && e.reason === 'SUPPRESSED'), `a history row says so: ${again.why}`);
    assert.equal(stub.calls.filter((c) => c.path === '/emails').length, calls, 'the provider was not called');

    // operators remove it; the address receives again
    assert.equal((await api(srv, 'DELETE', '/suppressions/bob@example.com')).status, 204);
    assert.equal((await api(srv, 'DELETE', '/suppressions/bob@example.com')).status, 404);
    const third = await sendVia(srv, P.resend, { email: 'bob@example.com' });
    assert.equal(third.m.status, 'SENT', third.why);
  }

  // ---- Mailgun: token replay and stale timestamps refused; delivered applies -------------
  {
    const s = await sendVia(srv, P.mailgun, { email: 'cat@example.com' });
    assert.ok(s.ref && !s.ref.startsWith('<'), s.why);
    const ed = (event, extra = {}) => ({ event, id: crypto.randomUUID(), timestamp: Date.now() / 1000, recipient: 'cat@example.com', message: { headers: { 'message-id': s.ref } }, ...extra });
    const body = mailgunBody(MG_KEY, ed('delivered'));
    refused(await receipt(srv, P.mailgun, mailgunBody('wrong-key', ed('delivered'))), 'mailgun forged');
    refused(await receipt(srv, P.mailgun, mailgunBody(MG_KEY, ed('delivered'), { ts: String(now() - 900) })), 'mailgun stale');
    ok(await receipt(srv, P.mailgun, body));
    refused(await receipt(srv, P.mailgun, body), 'mailgun token replayed');
    // the same token under a new event body: still a replay
    const tok = JSON.parse(body).signature;
    refused(await receipt(srv, P.mailgun, JSON.stringify({ signature: tok, 'event-data': ed('opened') })), 'mailgun token reused');
    const st = await state(srv, s.id);
    assert.equal(st.m.status, 'DELIVERED', st.why);
    assert.equal(st.h.filter((e) => e.integration?.provider === 'mailgun' && e.event).length, 1, st.why);
  }

  // ---- Postmark: Basic credentials; a soft bounce after DELIVERED stays in history -------
  {
    const s = await sendVia(srv, P.postmark, { email: 'dan@example.com' });
    const basic = (u, p) => ({ Authorization: `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}` });
    const delivery = JSON.stringify({ RecordType: 'Delivery', MessageID: s.ref, Recipient: 'dan@example.com', DeliveredAt: new Date().toISOString() });
    refused(await receipt(srv, P.postmark, delivery, basic('pmhook', 'wrong')), 'postmark bad password');
    refused(await receipt(srv, P.postmark, delivery), 'postmark no credentials');
    ok(await receipt(srv, P.postmark, delivery, basic('pmhook', 'pm-hook-password')));
    const bounce = JSON.stringify({ RecordType: 'Bounce', ID: 4323372036, Type: 'SoftBounce', TypeCode: 4096, MessageID: s.ref, Email: 'dan@example.com', Description: 'The server was unable to deliver your message (ex: unknown user, mailbox not found).' });
    ok(await receipt(srv, P.postmark, bounce, basic('pmhook', 'pm-hook-password')));
    const st = await state(srv, s.id);
    assert.equal(st.m.status, 'DELIVERED', `a bounce after DELIVERED never moves it back: ${st.why}`);
    const row = st.h.find((e) => e.type === 'UNDELIVERABLE' && e.event === 'Bounce');
    assert.equal(row?.reasonCode, 'soft', st.why);
    assert.equal(row?.status_changed, false, st.why);
  }

  // ---- SES through SNS: subscription confirmed, notifications verified by certificate ----
  {
    const certUrl = `${stub.url}/sns/cert.pem`;
    const base = { TopicArn: TOPIC, SignatureVersion: '2', SigningCertURL: certUrl };
    const confirm = snsSign(snsKey, { ...base, Type: 'SubscriptionConfirmation', MessageId: crypto.randomUUID(), Token: 'tok123', Message: 'You have chosen to subscribe.', SubscribeURL: `${stub.url}/sns/confirm?Action=ConfirmSubscription&Token=tok123`, Timestamp: new Date().toISOString() });
    ok(await receipt(srv, P.ses, confirm, { 'x-amz-sns-message-type': 'SubscriptionConfirmation' }));
    assert.ok(stub.calls.some((c) => c.method === 'GET' && c.path.startsWith('/sns/confirm?Action=ConfirmSubscription&Token=tok123')), 'SubscribeURL visited');

    const s = await sendVia(srv, P.ses, { email: 'eve@example.com' });
    const note = (m, extra = {}) => snsSign(snsKey, { ...base, Type: 'Notification', MessageId: crypto.randomUUID(), Message: JSON.stringify({ ...m, mail: { messageId: s.ref, destination: ['eve@example.com'] } }), Timestamp: new Date().toISOString(), ...extra });
    // a certificate URL outside the allow-list, a tampered message, a stale one: refused
    const outside = snsSign(snsKey, { ...base, SigningCertURL: 'https://evil.example/cert.pem', Type: 'Notification', MessageId: crypto.randomUUID(), Message: JSON.stringify({ eventType: 'Delivery', mail: { messageId: s.ref } }), Timestamp: new Date().toISOString() });
    refused(await receipt(srv, P.ses, outside), 'sns cert outside allow-list');
    const tampered = JSON.parse(note({ eventType: 'Delivery' }));
    tampered.Message = tampered.Message.replace('Delivery', 'Complaint');
    refused(await receipt(srv, P.ses, JSON.stringify(tampered)), 'sns tampered');
    refused(await receipt(srv, P.ses, note({ eventType: 'Delivery' }, { Timestamp: new Date(Date.now() - 2 * 3600e3).toISOString() })), 'sns stale');
    const v1 = note({ eventType: 'Delivery', delivery: {} }, { SignatureVersion: '1' }); // RSA-SHA1
    ok(await receipt(srv, P.ses, v1));
    refused(await receipt(srv, P.ses, v1), 'sns replayed MessageId');
    ok(await receipt(srv, P.ses, note({ eventType: 'Complaint', complaint: { complainedRecipients: [{ emailAddress: 'eve@example.com' }], complaintFeedbackType: 'abuse' } })));
    const st = await state(srv, s.id);
    assert.equal(st.m.status, 'DELIVERED', st.why);
    assert.ok(st.h.some((e) => e.type === 'COMPLAINED' && e.event === 'Complaint'), st.why);
    const sup = ok(await api(srv, 'GET', '/suppressions?limit=100')).results.find((e) => e.address === 'eve@example.com');
    assert.equal(sup?.reason, 'COMPLAINED');
  }

  // ---- Twilio: status callbacks signed over the public URL; an unknown number suppresses --
  {
    const s = await sendVia(srv, P.twilio, { phone_number: '+15557654321' }, 'sms');
    assert.equal(s.m.status, 'SENT', s.why);
    const sent = stub.calls.find((c) => c.path.endsWith('/Messages.json') && c.body.includes('StatusCallback='));
    assert.ok(sent && new URLSearchParams(sent.body).get('StatusCallback') === TW_URL, 'StatusCallback asked for');
    const form = (p) => new URLSearchParams(p).toString();
    const params = { MessageSid: s.ref, MessageStatus: 'delivered', To: '+15557654321', From: '+15550001111', AccountSid: 'ACe2e0000000000000000000000000000a', ApiVersion: '2010-04-01' };
    const post = (p, sig) => srv.request('POST', `/receipts/${P.twilio}`, { body: form(p), headers: { 'Content-Type': 'application/x-www-form-urlencoded', 'X-Twilio-Signature': sig } });
    refused(await post(params, twilioSign('wrong-token', TW_URL, params)), 'twilio forged');
    refused(await post(params, twilioSign(TW_TOKEN, 'https://other.example/receipts', params)), 'twilio other URL');
    ok(await post(params, twilioSign(TW_TOKEN, TW_URL, params)));
    let st = await state(srv, s.id);
    assert.equal(st.m.status, 'DELIVERED', st.why);

    const s2 = await sendVia(srv, P.twilio, { phone_number: '+1 555 000 9999' }, 'sms');
    const p2 = { ...params, MessageSid: s2.ref, MessageStatus: 'undelivered', ErrorCode: '30006', To: '+15550009999' };
    ok(await post(p2, twilioSign(TW_TOKEN, TW_URL, p2)));
    st = await state(srv, s2.id);
    assert.equal(st.m.status, 'UNDELIVERABLE', st.why);
    assert.equal(st.h.find((e) => e.event === 'undelivered')?.reasonCode, 'hard', st.why);
    const s3 = await sendVia(srv, P.twilio, { phone_number: '+15550009999' }, 'sms');
    assert.equal(s3.m.reason, 'SUPPRESSED', s3.why);
  }

  // ---- the list: paged, added by hand, bad input -----------------------------------------
  {
    ok(await api(srv, 'POST', '/suppressions', { address: 'Manual@Example.com', reason: 'MANUAL' }), 201);
    assert.equal((await api(srv, 'POST', '/suppressions', { address: 'manual@example.com' })).status, 409);
    const badAdd = await api(srv, 'POST', '/suppressions', { address: '' });
    assert.equal(badAdd.status, 400);
    assert.equal(badAdd.json?.type, 'invalid_request_error');
    const seen = [];
    let cursor;
    for (let pages = 0; pages < 10; pages++) {
      const q = cursor ? `/suppressions?limit=1&cursor=${encodeURIComponent(cursor)}` : '/suppressions?limit=1';
      const page = ok(await api(srv, 'GET', q));
      assert.ok(page.results.length <= 1, JSON.stringify(page));
      seen.push(...page.results.map((e) => e.address));
      cursor = page.paging.cursor;
      if (!page.paging.more) break;
    }
    // bob was removed; the SendGrid recipient never bounced
    assert.deepEqual(seen, ['+15550009999', 'eve@example.com', 'manual@example.com']);
    assert.equal((await api(srv, 'GET', '/suppressions?limit=0')).status, 400);
  }
});
