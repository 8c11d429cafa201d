// providers_ses_sms.test.mjs: the ses, vonage and messagebird providers (issue 16, point 1)
// driven through herald (POST /providers, POST /send, GET /messages/{id}) against local
// stand-ins that check each request the way the provider's API reference documents it
// and answer the way the real API does:
//   - SES v2 SendEmail: POST /v2/email/outbound-emails, JSON, AWS Signature Version 4.
//     The stand-in VERIFIES the signature by recomputing it here with node:crypto from
//     the documented algorithm (not with herald's code) and answers 403
//     InvalidSignatureException when it does not match, like AWS.
//   - Vonage SMS API: POST /sms/json, form api_key/api_secret/from/to/text; errors inside
//     a 200 (messages[].status), status 1 = throttled.
//   - MessageBird: POST /messages, Authorization: AccessKey, JSON originator/recipients/
//     body; 201 with id; errors[] with code/description.
// Each: a success (SENT, the provider's id as reference), a 429 (or throttled) answer
// retried after Retry-After, a 4xx (UNDELIVERABLE with the provider's own words), and
// wrong credentials refused by the stand-in.

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { describe, test } from 'node:test';

import { closeAfterAll } from './lib/cleanup.mjs';
import { startHttpSink } from './lib/sink.mjs';
import { startServer, waitFor, scaled } from './lib/server.mjs';

const T = { timeout: scaled(30000) };
const PENDING = new Set(['ENQUEUED', 'DELAYED', 'ROUTED']);
const closers = closeAfterAll();

const api = (srv, method, path, json) => srv.request(method, path, { auth: 'admin', json });

function ok(r, status = 200) {
  assert.equal(r.status, status, `expected ${status}, got ${r.status}: ${r.body}`);
  return r.json;
}

/** A stand-in: every request goes to handle(rec) -> response; problems are collected. */
async function standIn(handle) {
  const problems = [];
  const s = await startHttpSink({
    fallback: (rec) => {
      try {
        return handle(rec);
      } catch (e) {
        problems.push(e.message);
        return { status: 400, json: { message: `stand-in: ${e.message}` } };
      }
    },
  });
  closers.push(() => s.close());
  return { ...s, base: s.url.replace(/\/hook$/, ''), requests: s.requests, problems };
}

async function send(srv, to, channel) {
  const content = { title: 'Hello', body: 'Your code is 123' };
  return ok(await api(srv, 'POST', '/send', { message: { to, content, routing: { method: 'single', channels: [channel] } } }), 202).requestId;
}

async function final(srv, id) {
  const m = await waitFor(
    async () => {
      const r = await api(srv, 'GET', `/messages/${id}`);
      return r.status === 200 && !PENDING.has(r.json.status) && r.json;
    },
    { timeout: scaled(15000), what: `message ${id} to reach a final status` },
  );
  const h = ok(await api(srv, 'GET', `/messages/${id}/history`)).results;
  return { m, h, why: `message: ${JSON.stringify(m)}\nhistory: ${JSON.stringify(h.map((e) => [e.type, e.error_message]))}` };
}

/** Asserts the delivery was retried after `retryAfterS` seconds and ended SENT. */
function assertRetried({ m, h, why }, reqs, retryAfterS) {
  assert.equal(m.status, 'SENT', why);
  assert.ok(h.some((e) => e.type === 'RETRYING'), `a RETRYING event: ${why}`);
  const gap = reqs.at(-1).at - reqs.at(-2).at;
  assert.ok(gap >= retryAfterS * 1000 - 100, `the retry waited ${gap} ms, Retry-After asked for ${retryAfterS * 1000}`);
}

function assertFailed({ m, h, why }, reason) {
  assert.equal(m.status, 'UNDELIVERABLE', why);
  assert.ok(!h.some((e) => e.type === 'RETRYING'), `a permanent failure is not retried: ${why}`);
  assert.ok(h.some((e) => typeof e.error_message === 'string' && e.error_message.includes(reason)), `the provider's reason "${reason}": ${why}`);
}

// ---- SES: SigV4 recomputed from the documented algorithm -----------------------------
// https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html

const sha256hex = (s) => crypto.createHash('sha256').update(s, 'utf8').digest('hex');
const hmac = (key, s) => crypto.createHmac('sha256', key).update(s, 'utf8').digest();
const awsEncode = (s) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

/** null when rec carries a valid SigV4 signature for these credentials, else why not. */
function sigv4Problem(rec, { accessKeyId, secret, region, service }) {
  const m = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})$/.exec(rec.headers.authorization ?? '');
  if (!m) return `no SigV4 Authorization header: ${rec.headers.authorization}`;
  const [, akid, date, reg, svc, signedHeaders, signature] = m;
  if (akid !== accessKeyId) return `unknown access key ${akid}`;
  if (reg !== region || svc !== service) return `scope ${reg}/${svc}, expected ${region}/${service}`;
  const amzDate = rec.headers['x-amz-date'] ?? '';
  const dm = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(amzDate);
  if (!dm || !amzDate.startsWith(date)) return `x-amz-date ${amzDate} does not match the scope date ${date}`;
  const skew = Math.abs(Date.UTC(dm[1], dm[2] - 1, dm[3], dm[4], dm[5], dm[6]) - Date.now());
  if (skew > 5 * 60 * 1000) return `x-amz-date ${amzDate} is ${skew} ms away from now`;
  const names = signedHeaders.split(';');
  for (const need of ['host', 'x-amz-date', 'content-type']) if (!names.includes(need)) return `${need} is not signed`;
  if ([...names].sort().join(';') !== signedHeaders) return 'SignedHeaders not sorted';
  const [path, query = ''] = rec.path.split('?');
  const cq = query
    .split('&')
    .filter(Boolean)
    .map((kv) => kv.split('=').map((x) => awsEncode(decodeURIComponent(x ?? ''))))
    .sort((a, b) => (a[0] === b[0] ? (a[1] < b[1] ? -1 : 1) : a[0] < b[0] ? -1 : 1))
    .map(([k, v = '']) => `${k}=${v}`)
    .join('&');
  const ch = names.map((n) => `${n}:${String(rec.headers[n] ?? '').trim().replace(/\s+/g, ' ')}\n`).join('');
  const creq = [rec.method, path, cq, ch, signedHeaders, sha256hex(rec.body)].join('\n');
  const sts = ['AWS4-HMAC-SHA256', amzDate, `${date}/${reg}/${svc}/aws4_request`, sha256hex(creq)].join('\n');
  const key = hmac(hmac(hmac(hmac(`AWS4${secret}`, date), reg), svc), 'aws4_request');
  const want = hmac(key, sts).toString('hex');
  if (!crypto.timingSafeEqual(Buffer.from(want), Buffer.from(signature))) return 'signature mismatch';
  return null;
}

const SES = { accessKeyId: 'AKIDHERALDE2E0001', secret: 'ses/Secret+Key-e2e-9f8e7d', token: 'ses-session-token-e2e-42', region: 'eu-central-1', service: 'ses' };

describe('ses: SES v2 SendEmail with SigV4', () => {
  test('signed request, SENT with MessageId; 429 retried after Retry-After; MessageRejected and a bad signature fail', T, async (t) => {
    const srv = await startServer({ t, args: ['--retry-base-ms', '100'] });
    const script = [];
    const seen = [];
    const ses = await standIn((rec) => {
      assert.equal(rec.method, 'POST');
      assert.equal(rec.path, '/v2/email/outbound-emails');
      assert.match(rec.headers['content-type'] ?? '', /^application\/json/);
      const bad = sigv4Problem(rec, SES);
      seen.push(bad);
      if (bad) return { status: 403, headers: { 'X-Amzn-ErrorType': 'InvalidSignatureException:http://internal.amazon.com/coral/com.amazon.coral.service/' }, json: { message: `The request signature we calculated does not match the signature you provided (${bad})` } };
      assert.equal(rec.headers['x-amz-security-token'], SES.token);
      const b = rec.json;
      assert.equal(b.FromEmailAddress, '"Herald E2E" <noreply@herald.test>');
      assert.deepEqual(b.Destination, { ToAddresses: [b.Destination.ToAddresses[0]] });
      assert.deepEqual(b.ReplyToAddresses, ['help@herald.test']);
      assert.equal(b.ConfigurationSetName, 'herald-e2e');
      assert.equal(b.Content.Simple.Subject.Data, 'Hello');
      assert.ok(b.Content.Simple.Body.Text.Data.includes('Your code is 123'), JSON.stringify(b));
      assert.ok(b.Content.Simple.Body.Html.Data.includes('Your code is 123'), JSON.stringify(b));
      const next = script.shift() ?? 'ok';
      if (next === '429') return { status: 429, headers: { 'Retry-After': '1', 'X-Amzn-ErrorType': 'TooManyRequestsException:http://internal.amazon.com/coral/com.amazon.ses/' }, json: { message: 'Maximum sending rate exceeded.' } };
      if (next === 'rejected') return { status: 400, headers: { 'X-Amzn-ErrorType': 'MessageRejected:http://internal.amazon.com/coral/com.amazon.ses/' }, json: { message: 'Email address is not verified. The following identities failed the check: noreply@herald.test' } };
      return { status: 200, json: { MessageId: `0107019ab-e2e-${seen.length}` } };
    });
    const settings = {
      access_key_id: SES.accessKeyId, secret_access_key: SES.secret, session_token: SES.token, region: SES.region,
      from: 'noreply@herald.test', from_name: 'Herald E2E', reply_to: 'help@herald.test', configuration_set: 'herald-e2e', base_url: ses.base,
    };
    const pid = ok(await api(srv, 'POST', '/providers', { provider: 'ses', settings })).id;
    const got = ok(await api(srv, 'GET', `/providers/${pid}`));
    assert.notEqual(got.settings.secret_access_key, SES.secret, 'the secret is masked');
    assert.notEqual(got.settings.session_token, SES.token, 'the token is masked');

    // 1. sent, the reference is SES's MessageId
    let r = await final(srv, await send(srv, { email: 'ann@example.org' }, 'email'));
    assert.equal(r.m.status, 'SENT', r.why);
    assert.equal(ses.requests.length, 1);
    assert.equal(seen[0], null, 'the signature verified');
    assert.equal(r.m.providers[0].reference?.id, '0107019ab-e2e-1', r.why);
    assert.deepEqual(ses.requests[0].json.Destination.ToAddresses, ['ann@example.org']);

    // 2. throttled: 429 TooManyRequestsException with Retry-After: 1, then sent
    script.push('429');
    r = await final(srv, await send(srv, { email: 'bob@example.org' }, 'email'));
    assertRetried(r, ses.requests, 1);
    assert.equal(ses.requests.length, 3);

    // 3. MessageRejected: permanent, SES's words in the history
    script.push('rejected');
    r = await final(srv, await send(srv, { email: 'cy@example.org' }, 'email'));
    assertFailed(r, 'MessageRejected: Email address is not verified');
    assert.equal(ses.requests.length, 4);

    // 4. another secret: the stand-in's own SigV4 check refuses it (403), permanent
    ok(await api(srv, 'PUT', `/providers/${pid}`, { provider: 'ses', settings: { ...settings, secret_access_key: 'not-the-right-secret' } }));
    r = await final(srv, await send(srv, { email: 'dee@example.org' }, 'email'));
    assertFailed(r, 'InvalidSignatureException');
    assert.equal(seen.at(-1), 'signature mismatch');
    assert.ok(!r.why.includes('not-the-right-secret') && !r.why.includes(SES.secret), 'no secret in the history');
    assert.deepEqual(ses.problems, []);
    assert.deepEqual(seen.slice(0, 4), [null, null, null, null], 'every request with the right secret verified');
  });
});

// ---- Vonage ----------------------------------------------------------------------------

const VONAGE = { key: 'e2ekey01', secret: 'vonage-secret-e2e-77' };

describe('vonage: SMS API', () => {
  test('form request, SENT with message-id; status 1 and 429 retried; status 4 and a 400 fail', T, async (t) => {
    const srv = await startServer({ t, args: ['--retry-base-ms', '100'] });
    const script = [];
    let n = 0;
    const vonage = await standIn((rec) => {
      assert.equal(rec.method, 'POST');
      assert.equal(rec.path, '/sms/json');
      assert.match(rec.headers['content-type'] ?? '', /^application\/x-www-form-urlencoded/);
      const f = new URLSearchParams(rec.body);
      for (const k of ['api_key', 'api_secret', 'from', 'to', 'text']) if (!f.get(k)) return { status: 200, json: { 'message-count': '1', messages: [{ status: '2', 'error-text': `Missing ${k}` }] } };
      if (f.get('api_key') !== VONAGE.key || f.get('api_secret') !== VONAGE.secret) return { status: 200, json: { 'message-count': '1', messages: [{ status: '4', 'error-text': 'Bad Credentials' }] } };
      assert.equal(f.get('from'), 'HeraldE2E');
      assert.match(f.get('to'), /^\d{7,15}$/, 'E.164 without the +');
      assert.ok(f.get('text').includes('Your code is 123'), f.get('text'));
      n += 1;
      const next = script.shift() ?? 'ok';
      if (next === 'throttled') return { status: 200, json: { 'message-count': '1', messages: [{ status: '1', 'error-text': 'Throughput Rate Exceeded - please wait [ 30 ] and retry' }] } };
      if (next === '429') return { status: 429, headers: { 'Retry-After': '1' }, json: { type: 'https://developer.vonage.com/api-errors#throttled', title: 'Too Many Requests' } };
      if (next === 'invalid') return { status: 400, json: { type: 'https://developer.vonage.com/api-errors#bad-request', title: 'Bad Request', detail: 'The request failed due to validation errors' } };
      return { status: 200, json: { 'message-count': '1', messages: [{ to: f.get('to'), 'message-id': `0A00000012345${n}`, status: '0', 'remaining-balance': '3.14', 'message-price': '0.03', network: '12345' }] } };
    });
    const settings = { api_key: VONAGE.key, api_secret: VONAGE.secret, from: 'HeraldE2E', base_url: vonage.base };
    const pid = ok(await api(srv, 'POST', '/providers', { provider: 'vonage', settings })).id;
    assert.notEqual(ok(await api(srv, 'GET', `/providers/${pid}`)).settings.api_secret, VONAGE.secret, 'masked');

    let r = await final(srv, await send(srv, { phone_number: '+447700900000' }, 'sms'));
    assert.equal(r.m.status, 'SENT', r.why);
    assert.equal(r.m.providers[0].reference?.id, '0A000000123451', r.why);
    assert.equal(new URLSearchParams(vonage.requests[0].body).get('to'), '447700900000');

    // throttled inside a 200 (status 1): retried
    script.push('throttled');
    r = await final(srv, await send(srv, { phone_number: '+447700900001' }, 'sms'));
    assert.equal(r.m.status, 'SENT', r.why);
    assert.ok(r.h.some((e) => e.type === 'RETRYING' && (e.error_message ?? '').includes('vonage status 1: Throughput Rate Exceeded')), r.why);

    // 429 with Retry-After
    script.push('429');
    r = await final(srv, await send(srv, { phone_number: '+447700900002' }, 'sms'));
    assertRetried(r, vonage.requests, 1);

    // a 400: permanent with Vonage's words
    script.push('invalid');
    r = await final(srv, await send(srv, { phone_number: '+447700900003' }, 'sms'));
    assertFailed(r, 'vonage 400: The request failed due to validation errors');

    // wrong secret: status 4 in a 200, permanent
    ok(await api(srv, 'PUT', `/providers/${pid}`, { provider: 'vonage', settings: { ...settings, api_secret: 'wrong-secret-000' } }));
    r = await final(srv, await send(srv, { phone_number: '+447700900004' }, 'sms'));
    assertFailed(r, 'vonage status 4: Bad Credentials');
    assert.ok(!r.why.includes('wrong-secret-000') && !r.why.includes(VONAGE.secret), 'no secret in the history');
    assert.deepEqual(vonage.problems, []);
  });
});

// ---- MessageBird -----------------------------------------------------------------------

const MB_KEY = 'live_e2eMessageBirdKey0042';

describe('messagebird: SMS messaging', () => {
  test('AccessKey JSON request, SENT with id; 429 retried; 422 and a bad key fail', T, async (t) => {
    const srv = await startServer({ t, args: ['--retry-base-ms', '100'] });
    const script = [];
    let n = 0;
    const mb = await standIn((rec) => {
      assert.equal(rec.method, 'POST');
      assert.equal(rec.path, '/messages');
      if (rec.headers.authorization !== `AccessKey ${MB_KEY}`) return { status: 401, json: { errors: [{ code: 2, description: 'Request not allowed (incorrect access_key)', parameter: 'access_key' }] } };
      assert.match(rec.headers['content-type'] ?? '', /^application\/json/);
      assert.match(rec.headers.accept ?? '', /application\/json/);
      const b = rec.json;
      assert.equal(b.originator, 'HeraldE2E');
      assert.ok(Array.isArray(b.recipients) && b.recipients.length === 1, JSON.stringify(b));
      assert.match(String(b.recipients[0]), /^\d{7,15}$/);
      assert.ok(b.body.includes('Your code is 123'), b.body);
      n += 1;
      const next = script.shift() ?? 'ok';
      if (next === '429') return { status: 429, headers: { 'Retry-After': '1' }, json: { errors: [{ code: 7, description: 'Too many requests', parameter: null }] } };
      if (next === '422') return { status: 422, json: { errors: [{ code: 9, description: 'no (correct) recipients found', parameter: 'recipients' }] } };
      const id = `e8077d803532c0b5937c639b6021693${n}`;
      return {
        status: 201,
        json: { id, href: `https://rest.messagebird.com/messages/${id}`, direction: 'mt', type: 'sms', originator: b.originator, body: b.body, reference: b.reference ?? null, recipients: { totalCount: 1, totalSentCount: 1, items: [{ recipient: Number(b.recipients[0]), status: 'sent' }] } },
      };
    });
    const settings = { access_key: MB_KEY, originator: 'HeraldE2E', base_url: mb.base };
    const pid = ok(await api(srv, 'POST', '/providers', { provider: 'messagebird', settings })).id;
    assert.notEqual(ok(await api(srv, 'GET', `/providers/${pid}`)).settings.access_key, MB_KEY, 'masked');

    let r = await final(srv, await send(srv, { phone_number: '+31612345678' }, 'sms'));
    assert.equal(r.m.status, 'SENT', r.why);
    assert.equal(r.m.providers[0].reference?.id, 'e8077d803532c0b5937c639b60216931', r.why);
    assert.deepEqual(mb.requests[0].json.recipients, ['31612345678']);

    script.push('429');
    r = await final(srv, await send(srv, { phone_number: '+31612345679' }, 'sms'));
    assertRetried(r, mb.requests, 1);

    script.push('422');
    r = await final(srv, await send(srv, { phone_number: '+31612345670' }, 'sms'));
    assertFailed(r, 'messagebird 422: no (correct) recipients found (code 9, parameter recipients)');

    ok(await api(srv, 'PUT', `/providers/${pid}`, { provider: 'messagebird', settings: { ...settings, access_key: 'live_wrongKey9999' } }));
    r = await final(srv, await send(srv, { phone_number: '+31612345671' }, 'sms'));
    assertFailed(r, 'messagebird 401: Request not allowed (incorrect access_key)');
    assert.ok(!r.why.includes('live_wrongKey9999') && !r.why.includes(MB_KEY), 'no secret in the history');
    assert.deepEqual(mb.problems, []);
  });
});
