// secrets.test.mjs: provider credentials and API keys never come back out. Providers are
// configured with distinctive secrets (SMTP password, Twilio auth token, SendGrid API
// key, SES secret key and session token, Vonage API secret, MessageBird access key, webhook signing secret, bearer token, custom header value, a password inside a
// URL); then deliveries succeed and fail against local stand-ins that are as unhelpful as
// possible: they answer 401/400 quoting the request's Authorization and other headers
// back, and the SMTP server rejects the login. Bad requests and wrong keys are thrown in.
// Afterwards every secret (whole, a distinctive middle part, and the base64 forms Basic
// and SMTP AUTH put on the wire) is looked for in all of herald's stdout and stderr (at
// debug level), in GET /metrics, and in every API response body the test saw. The admin
// and write keys may appear only in the two bootstrap lines on stdout.

import assert from 'node:assert/strict';
import http from 'node:http';
import { describe, test } from 'node:test';

import { sleep, startServer, waitFor, scaled } from './lib/server.mjs';
import { closeAfterAll } from './lib/cleanup.mjs';
import { makeSelfSignedCert, startTlsSmtpServer } from './lib/tls.mjs';

const T = { timeout: scaled(60000) };
const PENDING = new Set(['ENQUEUED', 'DELAYED', 'ROUTED']);

const S = {
  smtp: 'smtp-pw-Zq81xKc3Vb',
  twilio: 'tw-tok-Hy72pLm4Qe',
  sendgrid: 'SG.sg-key-Rt55nBv6Wd',
  whSecret: 'wh-sec-Lk09jQa2Ur',
  whBearer: 'wh-bearer-Pf33sWd8Io',
  whHeader: 'wh-hdr-Xc27uIo9Pa',
  whBasic: 'wh-basic-Mn46tYe1Sd',
  urlPass: 'url-pw-Gh64kLz0Tf',
  postmark: 'pm-tok-Wq58rTy2Nb',
  resend: 're_rs-key-Df19gHj4Kl',
  mailgun: 'key-mg-Vb83nMq7Zx',
  ses: 'ses-sak-Qw12eRt5Yu',
  sesToken: 'ses-tok-Op98iUy7Tr',
  vonage: 'vg-sec-As34dFg6Hj',
  messagebird: 'mb-key-Kl56zXc8Vb',
};
const SMTP_USER = 'mailer-e2e';
const SMTP_RIGHT = 'the-right-smtp-password';
const TWILIO_SID = 'AC00secrets0test';
const b64 = (s) => Buffer.from(s).toString('base64');

/** Every string that must not show up, with a label. */
function needles() {
  const out = [];
  for (const [k, v] of Object.entries(S)) {
    out.push([k, v]);
    out.push([`${k} (middle)`, v.slice(3, -4)]); // the mask shows the last 4 characters
  }
  out.push(['twilio basic', b64(`${TWILIO_SID}:${S.twilio}`)]);
  out.push(['webhook basic', b64(`hookuser:${S.whBasic}`)]);
  out.push(['mailgun basic', b64(`api:${S.mailgun}`)]);
  out.push(['url basic', b64(`urluser:${S.urlPass}`)]);
  out.push(['smtp plain', b64(`\0${SMTP_USER}\0${S.smtp}`)]);
  out.push(['smtp login', b64(S.smtp)]);
  return out;
}

const closers = closeAfterAll();

/** A local stand-in for an HTTP API that answers with `answer(req, n)` and always quotes
 *  the request's headers back in its body when it fails. */
async function echoServer(answer) {
  const reqs = [];
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      reqs.push({ method: req.method, url: req.url, headers: req.headers, body: Buffer.concat(chunks).toString() });
      const a = answer(req, reqs.length);
      res.writeHead(a.status, { 'Content-Type': 'application/json', ...(a.headers ?? {}) });
      res.end(JSON.stringify(a.json));
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  closers.push(() => new Promise((r) => server.close(r)));
  return { url: `http://127.0.0.1:${server.address().port}`, port: server.address().port, reqs };
}

const echoed = (req) => `auth=${req.headers.authorization ?? ''} key=${req.headers['x-api-key'] ?? ''} all=${JSON.stringify(req.headers)}`;

describe('secrets never leak', () => {
  let srv;
  const seen = []; // every response body the test saw
  const call = async (method, path, opts = {}) => {
    const r = await srv.request(method, path, { auth: 'admin', ...opts });
    seen.push(`${method} ${path} -> ${r.status} ${r.body}`);
    return r;
  };
  const ok = (r, status = 200) => {
    assert.equal(r.status, status, `expected ${status}, got ${r.status}: ${r.body}`);
    return r.json;
  };
  const send = async (message) => ok(await call('POST', '/send', { json: { message } }), 202).requestId;
  const final = async (id) => {
    const m = await waitFor(
      async () => {
        const r = await call('GET', `/messages/${id}`);
        return r.status === 200 && !PENDING.has(r.json.status) && r.json;
      },
      { timeout: 20000, what: `message ${id} to end` },
    );
    await call('GET', `/messages/${id}/history`);
    await call('GET', `/messages/${id}/output`);
    return m;
  };

  test('configure every provider with secrets, deliver, fail, and look for the secrets everywhere', T, async () => {
    srv = await startServer({ name: 'secrets', logLevel: 'debug', args: ['--retry-base-ms', '100'] });
    assert.ok(srv.adminKey && srv.writeKey);

    // --- stand-ins
    const cert = makeSelfSignedCert();
    const smtp = await startTlsSmtpServer({ mode: 'starttls', ...cert, auth: { user: SMTP_USER, pass: SMTP_RIGHT } });
    closers.push(() => smtp.close());
    const twilio = await echoServer((req, n) =>
      n === 1 ? { status: 401, json: { code: 20003, message: `Authenticate failed: ${echoed(req)}` } } : { status: 201, json: { sid: 'SM0001', status: 'queued' } },
    );
    const sendgrid = await echoServer((req, n) =>
      n === 1 ? { status: 401, json: { errors: [{ message: `bad key: ${echoed(req)}`, field: 'authorization' }] } } : { status: 202, json: {}, headers: { 'X-Message-Id': 'sg-1' } },
    );
    // the email APIs come after SendGrid: they are tried (and refuse) only for the first email
    const postmark = await echoServer((req) => ({ status: 401, json: { ErrorCode: 10, Message: `bad token: ${echoed(req)} ${req.headers['x-postmark-server-token']}` } }));
    const resend = await echoServer((req) => ({ status: 401, json: { statusCode: 401, name: 'validation_error', message: `API key is invalid: ${echoed(req)}` } }));
    const mailgun = await echoServer((req) => ({ status: 401, json: { message: `Forbidden: ${echoed(req)}` } }));
    const hook = await echoServer((req, n) => (n === 1 ? { status: 400, json: { error: `rejected: ${echoed(req)}` } } : { status: 200, json: { id: 'hook-2' } }));
    const basicHook = await echoServer((req) => ({ status: 401, json: { error: `no: ${echoed(req)}` } }));
    const urlHook = await echoServer((req, n) => (n === 1 ? { status: 403, json: { error: `who are you: ${echoed(req)}` } } : { status: 200, json: { id: 'u-2' } }));
    const ses = await echoServer((req, n) =>
      n === 1 ? { status: 403, headers: { 'X-Amzn-ErrorType': 'InvalidSignatureException' }, json: { message: `bad signature: ${echoed(req)}` } } : { status: 200, json: { MessageId: 'ses-2' } },
    );
    const vonage = await echoServer((req, n) =>
      n === 1 ? { status: 200, json: { messages: [{ status: '4', 'error-text': `Bad Credentials: ${vonage.reqs[0].body} ${echoed(req)}` }] } } : { status: 200, json: { messages: [{ status: '0', 'message-id': 'vg-2' }] } },
    );
    const messagebird = await echoServer((req, n) =>
      n === 1 ? { status: 401, json: { errors: [{ code: 2, description: `incorrect access_key: ${echoed(req)}` }] } } : { status: 201, json: { id: 'mb-2' } },
    );

    // --- providers (POST, GET, list, PUT with masks kept)
    const prov = {};
    const add = async (name, body) => {
      const r = ok(await call('POST', '/providers', { json: body }));
      prov[name] = r.id;
    };
    await add('smtp', {
      provider: 'smtp',
      settings: { host: '127.0.0.1', port: smtp.port, secure: 'starttls', tls_verify: false, username: SMTP_USER, password: S.smtp, from: 'noreply@herald.test', timeout_ms: 5000 },
    });
    await add('twilio', { provider: 'twilio', settings: { account_sid: TWILIO_SID, auth_token: S.twilio, from: '+15550001111', base_url: twilio.url } });
    await add('sendgrid', { provider: 'sendgrid', priority: 200, settings: { api_key: S.sendgrid, from: 'noreply@herald.test', base_url: sendgrid.url } });
    await add('postmark', { provider: 'postmark', priority: 300, settings: { server_token: S.postmark, from: 'noreply@herald.test', base_url: postmark.url } });
    await add('resend', { provider: 'resend', priority: 301, settings: { api_key: S.resend, from: 'noreply@herald.test', base_url: resend.url } });
    await add('mailgun', { provider: 'mailgun', priority: 302, settings: { api_key: S.mailgun, domain: 'mg.herald.test', from: 'noreply@herald.test', base_url: mailgun.url } });
    await add('ses', { provider: 'ses', priority: 300, settings: { access_key_id: 'AKIDSECRETS', secret_access_key: S.ses, session_token: S.sesToken, region: 'us-east-1', from: 'noreply@herald.test', base_url: ses.url } });
    await add('vonage', { provider: 'vonage', priority: 200, settings: { api_key: 'vgkey001', api_secret: S.vonage, from: 'Herald', base_url: vonage.url } });
    await add('messagebird', { provider: 'messagebird', priority: 300, settings: { access_key: S.messagebird, originator: 'Herald', base_url: messagebird.url } });
    await add('webhook', {
      provider: 'webhook',
      settings: { url: `${hook.url}/in`, secret: S.whSecret, headers: { 'X-Api-Key': S.whHeader }, authentication: { mode: 'bearer', token: S.whBearer } },
    });
    await add('webhook2', {
      provider: 'webhook',
      priority: 200,
      settings: { url: `http://urluser:${S.urlPass}@127.0.0.1:${urlHook.port}/in` },
    });
    for (const id of Object.values(prov)) {
      const got = ok(await call('GET', `/providers/${id}`));
      // PUT back what GET gave (masks): the stored secrets are kept
      ok(await call('PUT', `/providers/${id}`, { json: { provider: got.provider, priority: got.priority, settings: got.settings } }));
    }
    ok(await call('GET', '/providers'));
    ok(await call('GET', '/providers/catalog'));
    // a bad provider body quoting a secret in a wrong place
    await call('POST', '/providers', { json: { provider: 'twilio', settings: { account_sid: TWILIO_SID, auth_token: S.twilio, from: '+1555', base_url: 'not a url' } } });

    // --- deliveries: the first attempt fails on each, then (where it can) succeeds
    // email: SMTP refuses the login (535), SendGrid answers 401; the second time SendGrid takes it
    const emailMsg = { to: { email: 'a@x.test' }, content: { title: 'T', body: 'B' }, routing: { method: 'single', channels: ['email'] } };
    const me = await final(await send(emailMsg));
    assert.equal(me.status, 'UNDELIVERABLE', JSON.stringify(me));
    assert.equal((await final(await send(emailMsg))).status, 'SENT');
    const sms = await send({ to: { phone_number: '+15550002222' }, content: { title: 'T', body: 'B' }, routing: { method: 'single', channels: ['sms'] } });
    const ms = await final(sms);
    assert.equal(ms.status, 'UNDELIVERABLE', JSON.stringify(ms));
    const sms2 = await send({ to: { phone_number: '+15550002222' }, content: { title: 'T', body: 'B' }, routing: { method: 'single', channels: ['sms'] } });
    assert.equal((await final(sms2)).status, 'SENT');
    const wh = await send({ to: { user_id: 'u1' }, content: { title: 'T', body: 'B' }, routing: { method: 'single', channels: ['webhook'] } });
    const mw = await final(wh);
    assert.equal(mw.status, 'UNDELIVERABLE', `webhook 400 then webhook2 403: ${JSON.stringify(mw)}`);
    const wh2 = await send({ to: { user_id: 'u2' }, content: { title: 'T', body: 'B' }, routing: { method: 'single', channels: ['webhook'] } });
    assert.equal((await final(wh2)).status, 'SENT');
    // a recipient's own webhook with Basic credentials: both providers try it, both 401
    const wh3 = await send({
      to: { webhook: { url: `${basicHook.url}/in`, authentication: { mode: 'basic', username: 'hookuser', password: S.whBasic } } },
      content: { title: 'T', body: 'B' },
      routing: { method: 'single', channels: ['webhook'] },
    });
    assert.equal((await final(wh3)).status, 'UNDELIVERABLE');
    // the stand-ins did get the credentials: they were in use
    assert.equal(twilio.reqs[0].headers.authorization, `Basic ${b64(`${TWILIO_SID}:${S.twilio}`)}`);
    assert.equal(sendgrid.reqs[0].headers.authorization, `Bearer ${S.sendgrid}`);
    assert.equal(postmark.reqs[0].headers['x-postmark-server-token'], S.postmark);
    assert.equal(resend.reqs[0].headers.authorization, `Bearer ${S.resend}`);
    assert.equal(mailgun.reqs[0].headers.authorization, `Basic ${b64(`api:${S.mailgun}`)}`);
    assert.match(ses.reqs[0].headers.authorization, /^AWS4-HMAC-SHA256 Credential=AKIDSECRETS\//);
    assert.equal(ses.reqs[0].headers['x-amz-security-token'], S.sesToken);
    assert.ok(vonage.reqs[0].body.includes(`api_secret=${S.vonage}`), vonage.reqs[0].body);
    assert.equal(messagebird.reqs[0].headers.authorization, `AccessKey ${S.messagebird}`);
    assert.equal(hook.reqs[0].headers['x-api-key'], S.whHeader);
    assert.equal(basicHook.reqs[0].headers.authorization, `Basic ${b64(`hookuser:${S.whBasic}`)}`);
    // (after the PUT with masks: the password in the URL was kept)
    assert.equal(urlHook.reqs[0].headers.authorization, `Basic ${b64(`urluser:${S.urlPass}`)}`);
    assert.ok(smtp.auths.length >= 1 && !smtp.auths[0].ok, 'the SMTP login was tried and refused');
    ok(await call('GET', '/messages'));

    // --- a fetch-data step whose URL carries credentials and fails
    const dead = `http://fetchuser:${S.urlPass}@127.0.0.1:1/x?api_key=${S.whHeader}`;
    const inv = ok(await call('POST', '/automations/invoke', { json: { automation: { steps: [{ action: 'fetch-data', webhook: { url: dead } }] } } }));
    // it is retried (connection refused is transient): look at the run and the queue
    // once the first attempt has failed
    await srv.waitForLog(/fetch-data|job\.retry|retry/i, { timeout: 10000 }).catch(() => sleep(1500));
    await call('GET', `/automations/runs/${inv.runId}`);
    await call('GET', '/automations/runs');
    await call('GET', '/admin/queue');

    // --- wrong keys and bad requests: the key offered never comes back
    await call('GET', '/providers', { auth: `Bearer hk_${S.whHeader}` });
    await call('GET', '/providers', { auth: `Bearer ${srv.writeKey}` });
    await call('POST', '/v1/track', { auth: 'none', json: { writeKey: `wk_${S.whBasic}`, event: 'e', userId: 'u' } });
    await call('POST', '/v1/track', { auth: 'write', json: { event: 'e', userId: 'u' } });
    await call('POST', '/send', { json: { message: { to: { email: 'x' }, content: S.whSecret } } });

    // --- metrics, then stop (so every log line is in)
    const metrics = await srv.request('GET', '/metrics');
    seen.push(metrics.body);
    await srv.stop();

    const stdout = srv.stdout.join('\n');
    const stderr = srv.stderr.join('\n');
    const where = { stdout, stderr, metrics: metrics.body, responses: seen.join('\n') };
    const leaks = [];
    for (const [label, needle] of needles()) {
      for (const [w, text] of Object.entries(where)) {
        const i = text.indexOf(needle);
        if (i >= 0) leaks.push(`${label} in ${w}: …${text.slice(Math.max(0, i - 150), i + needle.length + 50)}…`);
      }
    }
    // API keys: only the two bootstrap lines on stdout
    for (const [label, key] of [['admin key', srv.adminKey], ['write key', srv.writeKey]]) {
      for (const [w, text] of Object.entries(where)) {
        const lines = text.split('\n').filter((l) => l.includes(key) || l.includes(key.slice(12)));
        const allowed = w === 'stdout' ? lines.filter((l) => /^HERALD_(ADMIN|WRITE)_KEY=/.test(l)) : [];
        if (lines.length !== allowed.length) leaks.push(`${label} in ${w}: ${lines.filter((l) => !allowed.includes(l)).join(' | ').slice(0, 400)}`);
        if (w === 'stdout') assert.equal(allowed.length, 1, `${label} announced once on stdout`);
      }
    }
    assert.deepEqual(leaks, [], `secrets leaked:\n${leaks.join('\n')}`);
    // the errors still say what went wrong, without the secrets
    const all = where.responses;
    assert.match(all, /535/, 'the SMTP rejection is reported');
    assert.match(all, /twilio 401/);
    assert.match(all, /sendgrid 401/);
    assert.match(all, /postmark 401: bad token/);
    assert.match(all, /resend 401: API key is invalid/);
    assert.match(all, /mailgun 401: Forbidden/);
    assert.match(all, /ses 403: InvalidSignatureException/);
    assert.match(all, /vonage status 4: Bad Credentials/);
    assert.match(all, /messagebird 401/);
    assert.match(all, /webhook 400/);
    assert.match(all, /webhook 403/);
    assert.match(all, /webhook 401/);
  });
});
