// provider_destinations.test.mjs: a stored provider secret goes only where it went
// before (issue 12, points 3 and 4).
//
// 3. GET shows secrets masked, and a PUT may send the mask back to keep the stored value.
//    That must not let an API user move the destination (SMTP host/port/secure/tls_verify,
//    SendGrid and Twilio base_url, webhook url and authentication mode) and so receive the
//    stored SMTP password, SendGrid key, Twilio token or webhook headers/credentials/secret:
//    such a PUT is a 400 naming the masked field and the changed setting, and a sink at the
//    new destination receives nothing. With the destination unchanged the masks keep the
//    secrets (the real stand-ins still receive them); with the secret sent again the
//    destination may change.
//    The same for SES (base_url and region), Vonage and MessageBird (base_url).
// 4. A SendGrid or Twilio (SES, Vonage, MessageBird) base_url is chosen through the API, so it passes the egress
//    guard: pointed at a refused address the delivery fails at once, permanently, with the
//    guard's reason, and nothing reaches a sink there.

import assert from 'node:assert/strict';
import http from 'node:http';
import { describe, test } from 'node:test';

import { closeAfterAll } from './lib/cleanup.mjs';
import { startHttpSink } from './lib/sink.mjs';
import { makeSelfSignedCert, startTlsSmtpServer } from './lib/tls.mjs';
import { startServer, waitFor, scaled } from './lib/server.mjs';

const T = { timeout: scaled(60000) };
const PENDING = new Set(['ENQUEUED', 'DELAYED', 'ROUTED']);
const HINT = 'refused (allow it with --egress-allow)';

const SMTP_USER = 'dest-user';
const SMTP_PASS = 'smtp-dest-pw-4417Qx';
const SG_KEY = 'SG.dest-key-8812Lm';
const TW_SID = 'AC00dest0test';
const TW_TOKEN = 'tw-dest-tok-5521Pz';
const WH_SECRET = 'wh-dest-sec-7731Ab';
const WH_HEADER = 'wh-dest-hdr-9921Cd';
const WH_TOKEN = 'wh-dest-bearer-1187Ef';
const PM_TOKEN = 'pm-dest-tok-3318Gh';
const RS_KEY = 're_dest-key-6621Jk';
const MG_KEY = 'key-dest-mg-4490Lm';
const SES_SECRET = 'ses-dest-sak-3317Kj';
const SES_TOKEN = 'ses-dest-tok-6612Hn';
const VG_SECRET = 'vg-dest-sec-2208Wq';
const MB_KEY = 'mb-dest-key-4490Ty';
const ALL = [SMTP_PASS, SG_KEY, TW_TOKEN, WH_SECRET, WH_HEADER, WH_TOKEN, PM_TOKEN, RS_KEY, MG_KEY, SES_SECRET, SES_TOKEN, VG_SECRET, MB_KEY];

const closers = closeAfterAll();

async function sink(opts) {
  const s = await startHttpSink(opts);
  closers.push(() => s.close());
  return s;
}

/** A TCP listener that records whether anything connected (for the SMTP thief). */
async function tcpTrap() {
  const hits = [];
  const server = http.createServer((req, res) => {
    hits.push(req.headers);
    res.end();
  });
  server.on('connection', () => hits.push('connection'));
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  closers.push(() => new Promise((r) => server.close(r)));
  return { port: server.address().port, hits };
}

const api = (srv, method, path, json) => srv.request(method, path, { auth: 'admin', json });

function ok(r, status = 200) {
  assert.equal(r.status, status, `expected ${status}, got ${r.status}: ${r.body}`);
  return r.json;
}

async function final(srv, id) {
  const m = await waitFor(
    async () => {
      const r = await api(srv, 'GET', `/messages/${id}`);
      return r.status === 200 && !PENDING.has(r.json.status) && r.json;
    },
    { timeout: 20000, what: `message ${id} to reach a final status` },
  );
  const h = ok(await api(srv, 'GET', `/messages/${id}/history`)).results;
  return { m, h, why: `message: ${JSON.stringify(m)}\nhistory: ${JSON.stringify(h)}` };
}

async function deliver(srv, to, channel) {
  const id = ok(await api(srv, 'POST', '/send', { message: { to, content: { title: 'T', body: 'B' }, routing: { method: 'single', channels: [channel] } } }), 202).requestId;
  return final(srv, id);
}

/** PUT the provider back as GET shows it, with `change` applied to its settings. */
async function putMasked(srv, id, change) {
  const got = ok(await api(srv, 'GET', `/providers/${id}`));
  const settings = structuredClone(got.settings);
  change(settings);
  return api(srv, 'PUT', `/providers/${id}`, { provider: got.provider, priority: got.priority, settings });
}

function expectRefusedPut(r, secretField, movedField) {
  assert.equal(r.status, 400, `a masked secret with a new destination is refused: ${r.status} ${r.body}`);
  assert.equal(r.json?.type, 'invalid_request_error', r.body);
  assert.ok(r.json.message.includes(`settings.${secretField}`), `names the masked field ${secretField}: ${r.json.message}`);
  assert.ok(r.json.message.includes(`settings.${movedField}`), `names the changed setting ${movedField}: ${r.json.message}`);
  for (const s of ALL) assert.ok(!r.body.includes(s), 'no secret in the answer');
}

describe('a masked secret keeps its destination', () => {
  test('SMTP, SendGrid, Twilio and webhook: a new destination needs the secret again', T, async (t) => {
    const srv = await startServer({ t, args: ['--retry-base-ms', '100'] });

    // the real stand-ins, and a thief for each destination
    const cert = makeSelfSignedCert();
    const smtp = await startTlsSmtpServer({ mode: 'starttls', ...cert, auth: { user: SMTP_USER, pass: SMTP_PASS } });
    closers.push(() => smtp.close());
    const smtpThief = await tcpTrap();
    const sg = await sink({ fallback: { status: 202, json: {} } });
    const tw = await sink({ fallback: { status: 201, json: { sid: 'SM1' } } });
    const hook = await sink();
    const thief = await sink();

    const add = async (body) => ok(await api(srv, 'POST', '/providers', body)).id;
    const smtpId = await add({
      provider: 'smtp',
      settings: { host: '127.0.0.1', port: smtp.port, secure: 'starttls', tls_verify: false, username: SMTP_USER, password: SMTP_PASS, from: 'noreply@herald.test', timeout_ms: 5000 },
    });
    const sgId = await add({ provider: 'sendgrid', priority: 200, settings: { api_key: SG_KEY, from: 'noreply@herald.test', base_url: sg.url.replace(/\/hook$/, '') } });
    const twId = await add({ provider: 'twilio', settings: { account_sid: TW_SID, auth_token: TW_TOKEN, from: '+15550001111', base_url: tw.url.replace(/\/hook$/, '') } });
    const whId = await add({
      provider: 'webhook',
      settings: { url: hook.url, secret: WH_SECRET, headers: { 'X-Api-Key': WH_HEADER }, authentication: { mode: 'bearer', token: WH_TOKEN } },
    });
    const thiefBase = thief.url.replace(/\/hook$/, '');

    // --- masks sent back with a moved destination: 400, naming both fields
    expectRefusedPut(await putMasked(srv, smtpId, (s) => { s.port = smtpThief.port; }), 'password', 'port');
    expectRefusedPut(await putMasked(srv, smtpId, (s) => { s.host = 'localhost'; }), 'password', 'host');
    expectRefusedPut(await putMasked(srv, smtpId, (s) => { s.secure = 'none'; }), 'password', 'secure');
    expectRefusedPut(await putMasked(srv, sgId, (s) => { s.base_url = thiefBase; }), 'api_key', 'base_url');
    expectRefusedPut(await putMasked(srv, twId, (s) => { s.base_url = thiefBase; }), 'auth_token', 'base_url');
    // the email APIs (after SendGrid in priority: they are never called here)
    const pmId = await add({ provider: 'postmark', priority: 300, settings: { server_token: PM_TOKEN, from: 'noreply@herald.test', base_url: sg.url.replace(/\/hook$/, '') } });
    const rsId = await add({ provider: 'resend', priority: 301, settings: { api_key: RS_KEY, from: 'noreply@herald.test', base_url: sg.url.replace(/\/hook$/, '') } });
    const mgId = await add({ provider: 'mailgun', priority: 302, settings: { api_key: MG_KEY, domain: 'mg.herald.test', from: 'noreply@herald.test' } });
    expectRefusedPut(await putMasked(srv, pmId, (s) => { s.base_url = thiefBase; }), 'server_token', 'base_url');
    expectRefusedPut(await putMasked(srv, rsId, (s) => { s.base_url = thiefBase; }), 'api_key', 'base_url');
    expectRefusedPut(await putMasked(srv, mgId, (s) => { s.base_url = thiefBase; }), 'api_key', 'base_url');
    expectRefusedPut(await putMasked(srv, mgId, (s) => { s.region = 'eu'; }), 'api_key', 'region');
    ok(await putMasked(srv, pmId, (s) => { s.from_name = 'Herald'; }));
    ok(await putMasked(srv, mgId, (s) => { s.from_name = 'Herald'; }));
    expectRefusedPut(await putMasked(srv, whId, (s) => { s.url = thief.url; }), 'secret', 'url');
    // only the header kept masked (the other secrets given anew): still refused, naming the header
    expectRefusedPut(
      await putMasked(srv, whId, (s) => {
        s.url = thief.url;
        s.secret = 'a-new-signing-secret';
        s.authentication = { mode: 'bearer', token: 'a-new-token-value' };
      }),
      'headers.X-Api-Key',
      'url',
    );
    // the same URL with another authentication mode: the credentials would be used otherwise
    expectRefusedPut(await putMasked(srv, whId, (s) => { s.authentication = { mode: 'basic', username: 'u', token: s.authentication.token }; }), 'secret', 'authentication.mode');

    // --- masks sent back with the destination unchanged (another label or sender): kept
    ok(await putMasked(srv, smtpId, (s) => { s.from = 'other@herald.test'; }));
    ok(await putMasked(srv, sgId, (s) => { s.from_name = 'Herald'; }));
    ok(await putMasked(srv, twId, (s) => { s.from = '+15550003333'; }));
    ok(await putMasked(srv, whId, (s) => { s.method = 'PUT'; }));

    // deliveries: the real stand-ins get the stored secrets, the thieves nothing
    let r = await deliver(srv, { email: 'a@x.test' }, 'email');
    assert.equal(r.m.status, 'SENT', r.why);
    assert.ok(smtp.auths.some((a) => a.user === SMTP_USER && a.ok), `the SMTP login used the stored password: ${JSON.stringify(smtp.auths)}`);
    // SMTP out of the way: SendGrid next
    ok(await api(srv, 'PUT', `/providers/${smtpId}`, { provider: 'smtp', enabled: false, settings: { host: '127.0.0.1', port: smtp.port, from: 'x@herald.test' } }));
    r = await deliver(srv, { email: 'b@x.test' }, 'email');
    assert.equal(r.m.status, 'SENT', r.why);
    assert.equal(sg.requests.at(-1).headers.authorization, `Bearer ${SG_KEY}`, 'SendGrid got the stored key');
    r = await deliver(srv, { phone_number: '+15550002222' }, 'sms');
    assert.equal(r.m.status, 'SENT', r.why);
    assert.equal(tw.requests.at(-1).headers.authorization, `Basic ${Buffer.from(`${TW_SID}:${TW_TOKEN}`).toString('base64')}`, 'Twilio got the stored token');
    r = await deliver(srv, { user_id: 'u1' }, 'webhook');
    assert.equal(r.m.status, 'SENT', r.why);
    const hr = hook.requests.at(-1);
    assert.equal(hr.method, 'PUT');
    assert.equal(hr.headers['x-api-key'], WH_HEADER);
    assert.equal(hr.headers.authorization, `Bearer ${WH_TOKEN}`);
    assert.match(hr.headers['courier-signature'] ?? '', /^t=\d+,signature=[0-9a-f]{64}$/);
    assert.equal(thief.requests.length, 0, `the thief sink got nothing: ${JSON.stringify(thief.requests.map((q) => q.headers))}`);
    assert.equal(smtpThief.hits.length, 0, 'nothing connected to the SMTP thief');

    // --- the secret sent again: the destination may move (an operator's real change)
    ok(await putMasked(srv, sgId, (s) => {
      s.base_url = thiefBase;
      s.api_key = 'SG.a-fresh-key-for-the-new-place';
    }));
    r = await deliver(srv, { email: 'c@x.test' }, 'email');
    assert.equal(r.m.status, 'SENT', r.why);
    assert.equal(thief.requests.length, 1);
    assert.equal(thief.requests[0].headers.authorization, 'Bearer SG.a-fresh-key-for-the-new-place');
    for (const s of ALL) assert.ok(!JSON.stringify(thief.requests).includes(s), 'the new destination never saw an old secret');
  });
});

describe('SES, Vonage and MessageBird: a masked secret keeps its destination', () => {
  test('base_url (and SES region) changed with the mask: 400; unchanged: kept and used', T, async (t) => {
    const srv = await startServer({ t, args: ['--retry-base-ms', '100'] });
    const ses = await sink({ fallback: { status: 200, json: { MessageId: 'ses-1' } } });
    const vg = await sink({ fallback: { status: 200, json: { 'message-count': '1', messages: [{ status: '0', 'message-id': 'vg-1' }] } } });
    const mb = await sink({ fallback: { status: 201, json: { id: 'mb-1' } } });
    const thief = await sink();
    const thiefBase = thief.url.replace(/\/hook$/, '');
    const add = async (body) => ok(await api(srv, 'POST', '/providers', body)).id;
    const sesId = await add({ provider: 'ses', settings: { access_key_id: 'AKIDDEST', secret_access_key: SES_SECRET, session_token: SES_TOKEN, region: 'us-east-1', from: 'noreply@herald.test', base_url: ses.url.replace(/\/hook$/, '') } });
    const vgId = await add({ provider: 'vonage', settings: { api_key: 'vgkey001', api_secret: VG_SECRET, from: 'Herald', base_url: vg.url.replace(/\/hook$/, '') } });
    const mbId = await add({ provider: 'messagebird', priority: 200, settings: { access_key: MB_KEY, originator: 'Herald', base_url: mb.url.replace(/\/hook$/, '') } });

    expectRefusedPut(await putMasked(srv, sesId, (s) => { s.base_url = thiefBase; }), 'secret_access_key', 'base_url');
    expectRefusedPut(await putMasked(srv, sesId, (s) => { s.region = 'eu-west-1'; }), 'secret_access_key', 'region');
    expectRefusedPut(await putMasked(srv, vgId, (s) => { s.base_url = thiefBase; }), 'api_secret', 'base_url');
    expectRefusedPut(await putMasked(srv, mbId, (s) => { s.base_url = thiefBase; }), 'access_key', 'base_url');

    ok(await putMasked(srv, sesId, (s) => { s.from_name = 'Herald'; }));
    ok(await putMasked(srv, vgId, (s) => { s.from = 'Herald2'; }));
    ok(await putMasked(srv, mbId, (s) => { s.originator = 'Herald2'; }));

    let r = await deliver(srv, { email: 'a@x.test' }, 'email');
    assert.equal(r.m.status, 'SENT', r.why);
    assert.equal(ses.requests.at(-1).headers['x-amz-security-token'], SES_TOKEN, 'SES got the stored token');
    r = await deliver(srv, { phone_number: '+15550002222' }, 'sms');
    assert.equal(r.m.status, 'SENT', r.why);
    assert.equal(new URLSearchParams(vg.requests.at(-1).body).get('api_secret'), VG_SECRET, 'Vonage got the stored secret');
    ok(await api(srv, 'PUT', `/providers/${vgId}`, { provider: 'vonage', enabled: false, settings: { api_key: 'vgkey001', api_secret: VG_SECRET, from: 'Herald' } }));
    r = await deliver(srv, { phone_number: '+15550002223' }, 'sms');
    assert.equal(r.m.status, 'SENT', r.why);
    assert.equal(mb.requests.at(-1).headers.authorization, `AccessKey ${MB_KEY}`, 'MessageBird got the stored key');
    assert.equal(thief.requests.length, 0, 'the thief sink got nothing');
  });
});

describe('SendGrid, Twilio, Postmark, Resend, Mailgun, SES, Vonage and MessageBird base_url pass the egress guard', () => {
  test('a base_url at a loopback address is refused without --egress-allow; nothing reaches it', T, async (t) => {
    const srv = await startServer({ t, egressAllow: null, args: ['--retry-base-ms', '100'] });
    const sg = await sink({ fallback: { status: 400, json: { errors: [{ message: 'internal data here' }] } } });
    const tw = await sink({ fallback: { status: 400, json: { code: 1, message: 'internal data here' } } });
    ok(await api(srv, 'POST', '/providers', { provider: 'sendgrid', settings: { api_key: SG_KEY, from: 'noreply@herald.test', base_url: sg.url.replace(/\/hook$/, '') } }));
    ok(await api(srv, 'POST', '/providers', { provider: 'twilio', settings: { account_sid: TW_SID, auth_token: TW_TOKEN, from: '+15550001111', base_url: tw.url.replace(/\/hook$/, '') } }));
    const pm = await sink({ fallback: { status: 422, json: { ErrorCode: 300, Message: 'internal data here' } } });
    const rs = await sink({ fallback: { status: 422, json: { statusCode: 422, name: 'validation_error', message: 'internal data here' } } });
    const mg = await sink({ fallback: { status: 400, json: { message: 'internal data here' } } });
    ok(await api(srv, 'POST', '/providers', { provider: 'postmark', priority: 101, settings: { server_token: PM_TOKEN, from: 'noreply@herald.test', base_url: pm.url.replace(/\/hook$/, '') } }));
    ok(await api(srv, 'POST', '/providers', { provider: 'resend', priority: 102, settings: { api_key: RS_KEY, from: 'noreply@herald.test', base_url: rs.url.replace(/\/hook$/, '') } }));
    ok(await api(srv, 'POST', '/providers', { provider: 'mailgun', priority: 103, settings: { api_key: MG_KEY, domain: 'mg.herald.test', from: 'noreply@herald.test', base_url: mg.url.replace(/\/hook$/, '') } }));
    for (const [to, channel, who] of [
      [{ email: 'a@x.test' }, 'email', 'sendgrid'],
      [{ phone_number: '+15550002222' }, 'sms', 'twilio'],
      [{ email: 'b@x.test' }, 'email', 'postmark'],
      [{ email: 'c@x.test' }, 'email', 'resend'],
      [{ email: 'd@x.test' }, 'email', 'mailgun'],
      [{ email: 'b@x.test' }, 'email', 'ses'],
      [{ phone_number: '+15550002223' }, 'sms', 'vonage'],
      [{ phone_number: '+15550002224' }, 'sms', 'messagebird'],
    ]) {
      if (who === 'ses') {
        ok(await api(srv, 'POST', '/providers', { provider: 'ses', priority: 300, settings: { access_key_id: 'AKIDDEST', secret_access_key: SES_SECRET, region: 'us-east-1', from: 'noreply@herald.test', base_url: sg.url.replace(/\/hook$/, '') } }));
      } else if (who === 'vonage') {
        ok(await api(srv, 'POST', '/providers', { provider: 'vonage', priority: 300, settings: { api_key: 'vgkey001', api_secret: VG_SECRET, from: 'Herald', base_url: tw.url.replace(/\/hook$/, '') } }));
      } else if (who === 'messagebird') {
        ok(await api(srv, 'POST', '/providers', { provider: 'messagebird', priority: 400, settings: { access_key: MB_KEY, originator: 'Herald', base_url: tw.url.replace(/\/hook$/, '') } }));
      }
      const { m, h, why } = await deliver(srv, to, channel);
      assert.equal(m.status, 'UNDELIVERABLE', why);
      assert.ok(!h.some((e) => e.type === 'RETRYING'), `refused permanently, no retry: ${why}`);
      const errs = h.map((e) => e.error_message).filter(Boolean);
      assert.ok(
        errs.some((e) => e.startsWith(`${who} target 127.0.0.1 is a loopback address`) && e.includes(HINT)),
        `the guard's reason: ${why}`,
      );
      assert.ok(!why.includes('internal data here'), 'nothing read back from the refused address');
    }
    assert.equal(sg.requests.length, 0, 'no request reached the SendGrid sink');
    assert.equal(tw.requests.length, 0, 'no request reached the Twilio sink');
    for (const [who, s] of [['postmark', pm], ['resend', rs], ['mailgun', mg]]) assert.equal(s.requests.length, 0, `no request reached the ${who} sink`);
  });
});
