// providers_email.test.mjs: the Postmark, Resend and Mailgun providers (issue 16, point 1)
// driven end to end: a provider configured through POST /providers (base_url at a local
// stand-in), real sends through POST /send, the outcome read back from GET /messages/{id}
// and its history.
//
// Each stand-in checks every request the way the real API documents it (path, method,
// auth header, content type, body encoding and required fields) and answers like the
// real API: a success body with the message id, a 429 with Retry-After, a 4xx error body
// in the API's own shape. A request that breaks the documented shape is answered 400
// and recorded as a violation, so a wrong request can never pass as a send.
//   Postmark  POST /email, X-Postmark-Server-Token, JSON {From, To, Subject, TextBody|HtmlBody}
//             -> 200 {MessageID, ErrorCode: 0}; 422 {ErrorCode: 406, Message} (inactive)
//   Resend    POST /emails, Authorization: Bearer, JSON {from, to, subject, html|text},
//             Idempotency-Key (a repeat gets the first answer, nothing sent twice)
//             -> 200 {id}; 422 {statusCode, name: validation_error, message}
//   Mailgun   POST /v3/{domain}/messages, Basic api:KEY, form {from, to, subject, text|html}
//             -> 200 {id: "<...>", message: "Queued. Thank you."}; 400 {message}

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import http from 'node:http';
import { describe, test } from 'node:test';

import { closeAfterAll } from './lib/cleanup.mjs';
import { finalMessage } from './lib/messages.mjs';
import { startServer, scaled } from './lib/server.mjs';

const T = { timeout: scaled(30000) };
const FROM = 'noreply@herald.test';
const closers = closeAfterAll();

/** A stand-in API: handle(req) -> {status, headers?, json?|body?} with req = {method,
 *  path, headers, body}; requests and violations recorded. */
async function standIn(handle) {
  const requests = [];
  const violations = [];
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const rec = { method: req.method, path: req.url, headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), at: Date.now() };
      requests.push(rec);
      let a;
      try {
        a = handle(rec);
      } catch (e) {
        violations.push(`${e.message} in ${rec.method} ${rec.path} ${rec.body.slice(0, 300)}`);
        a = { status: 400, json: { message: `stand-in: ${e.message}` } };
      }
      const headers = { ...(a.headers ?? {}) };
      let out = a.body ?? '';
      if (a.json !== undefined) {
        out = JSON.stringify(a.json);
        headers['Content-Type'] = 'application/json';
      }
      res.writeHead(a.status, headers);
      res.end(out);
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  closers.push(() => new Promise((r) => server.close(r)));
  return { url: `http://127.0.0.1:${server.address().port}`, requests, violations };
}

function need(cond, what) {
  if (!cond) throw new Error(what);
}

/** The recipient's local part picks the stand-in's answer: ok, slow (429 once), bad. */
const kind = (addr) => String(addr).replace(/^.*</, '').split('@')[0];

async function herald(t) {
  return startServer({ t, args: ['--retry-base-ms', '50'] });
}

const api = (srv, method, path, json) => srv.request(method, path, { auth: 'admin', json });

function ok(r, status = 200) {
  assert.equal(r.status, status, `expected ${status}, got ${r.status}: ${r.body}`);
  return r.json;
}

async function sendEmail(srv, local) {
  const message = {
    to: { email: `${local}@example.com` },
    content: { title: 'Your order', body: 'It is ready.' },
    routing: { method: 'single', channels: ['email'] },
  };
  return ok(await api(srv, 'POST', '/send', { message }), 202).requestId;
}

const final = (srv, id) => finalMessage(srv, id);

/** The three outcomes every provider must map: SENT with the API's id, a 429 retried after
 *  its Retry-After, a 4xx UNDELIVERABLE with the API's own words. */
async function threeOutcomes(srv, who, stub, { ref, errorWords }) {
  // SENT, with the provider's message id as the reference
  let id = await sendEmail(srv, 'ok');
  let r = await final(srv, id);
  assert.equal(r.m.status, 'SENT', r.why);
  assert.equal(r.m.providers?.[0]?.provider, who, r.why);
  assert.match(r.m.providers[0].reference?.id ?? '', ref, `the ${who} message id is the reference: ${r.why}`);

  // 429 + Retry-After: 1 -> RETRYING, then SENT on the second call, >= 1 s later
  const before = stub.requests.length;
  id = await sendEmail(srv, 'slow');
  r = await final(srv, id);
  assert.equal(r.m.status, 'SENT', r.why);
  const calls = stub.requests.slice(before);
  assert.equal(calls.length, 2, `one 429, one retry: ${r.why}`);
  const retry = r.h.find((e) => e.type === 'RETRYING');
  assert.ok(retry, `a RETRYING event: ${r.why}`);
  assert.match(retry.error_message ?? '', new RegExp(`^${who} 429`), r.why);
  const gap = calls[1].at - calls[0].at;
  assert.ok(gap >= 900, `the retry waited ${gap} ms; Retry-After asked for 1000`);

  // a documented 4xx -> UNDELIVERABLE, the API's words in the reason, no retry
  const n = stub.requests.length;
  id = await sendEmail(srv, 'bad');
  r = await final(srv, id);
  assert.equal(r.m.status, 'UNDELIVERABLE', r.why);
  assert.equal(stub.requests.length, n + 1, `one call, no retry: ${r.why}`);
  assert.ok(!r.h.some((e) => e.type === 'RETRYING'), `permanent, not retried: ${r.why}`);
  const errs = r.h.map((e) => e.error_message).filter(Boolean).join('\n');
  assert.match(errs, errorWords, `the provider's reason: ${r.why}`);
  assert.match(r.m.error ?? '', errorWords, `GET /messages/{id} shows the provider's reason: ${r.why}`);

  assert.deepEqual(stub.violations, [], `every request had the documented shape`);
}

describe('postmark', () => {
  test('POST /email with the server token: SENT with MessageID, 429 retried, 406 inactive recipient UNDELIVERABLE', T, async (t) => {
    const TOKEN = 'pm-e2e-server-token-01';
    const stub = await standIn((q) => {
      need(q.method === 'POST' && q.path === '/email', `POST /email, not ${q.method} ${q.path}`);
      if (q.headers['x-postmark-server-token'] !== TOKEN) return { status: 401, json: { ErrorCode: 10, Message: 'Request does not contain a valid Server token.' } };
      need(/^application\/json/.test(q.headers['content-type'] ?? ''), 'Content-Type application/json');
      need(/application\/json/.test(q.headers.accept ?? ''), 'Accept application/json');
      const b = JSON.parse(q.body);
      need(b.From === `Herald Shop <${FROM}>`, `From "Name <addr>": ${b.From}`);
      need(typeof b.To === 'string' && b.To.endsWith('@example.com'), 'To');
      need(b.Subject === 'Your order', `Subject: ${b.Subject}`);
      need(typeof b.TextBody === 'string' || typeof b.HtmlBody === 'string', 'TextBody or HtmlBody');
      need(b.TextBody === undefined || b.TextBody.includes('It is ready.'), 'TextBody carries the text');
      need(b.ReplyTo === 'help@herald.test', 'ReplyTo');
      need(b.MessageStream === 'outbound', 'MessageStream');
      need(typeof b.Metadata?.herald_message_id === 'string', 'Metadata.herald_message_id');
      const k = kind(b.To);
      if (k === 'slow') {
        stub.slowSeen = (stub.slowSeen ?? 0) + 1;
        if (stub.slowSeen === 1) return { status: 429, headers: { 'Retry-After': '1' }, json: { ErrorCode: 429, Message: 'Rate limit exceeded.' } };
      }
      if (k === 'bad')
        return {
          status: 422,
          json: {
            ErrorCode: 406,
            Message: `You tried to send to recipient(s) that have been marked as inactive. Found inactive addresses: ${b.To}. Inactive recipients are ones that have generated a hard bounce, a spam complaint, or a manual suppression.`,
          },
        };
      return { status: 200, json: { To: b.To, SubmittedAt: new Date().toISOString(), MessageID: crypto.randomUUID(), ErrorCode: 0, Message: 'OK' } };
    });
    const srv = await herald(t);
    ok(await api(srv, 'POST', '/providers', {
      provider: 'postmark',
      settings: { server_token: TOKEN, from: FROM, from_name: 'Herald Shop', reply_to: 'help@herald.test', message_stream: 'outbound', base_url: stub.url },
    }));
    await threeOutcomes(srv, 'postmark', stub, {
      ref: /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/,
      errorWords: /postmark 422: You tried to send to recipient\(s\) that have been marked as inactive\..*\(ErrorCode 406\)/,
    });
  });
});

describe('resend', () => {
  test('POST /emails with Bearer and Idempotency-Key: SENT with id, 429 retried under the same key, validation_error UNDELIVERABLE', T, async (t) => {
    const KEY = 're_e2e_resend_key_02';
    const seenKeys = new Map(); // Idempotency-Key -> the answer given (Resend replays it)
    const stub = await standIn((q) => {
      need(q.method === 'POST' && q.path === '/emails', `POST /emails, not ${q.method} ${q.path}`);
      if (q.headers.authorization !== `Bearer ${KEY}`) return { status: 401, json: { statusCode: 401, name: 'validation_error', message: 'API key is invalid' } };
      need(/^application\/json/.test(q.headers['content-type'] ?? ''), 'Content-Type application/json');
      const idem = q.headers['idempotency-key'];
      need(typeof idem === 'string' && idem.length >= 1 && idem.length <= 256, 'Idempotency-Key of 1..256 characters');
      if (seenKeys.has(idem)) return seenKeys.get(idem);
      const b = JSON.parse(q.body);
      need(b.from === `"Herald, Inc." <${FROM}>`, `from as an RFC 5322 mailbox: ${b.from}`);
      need(Array.isArray(b.to) && b.to.length === 1, 'to: [address]');
      need(b.subject === 'Your order', 'subject');
      need(typeof b.html === 'string' || typeof b.text === 'string', 'html or text');
      need(b.reply_to === 'help@herald.test', 'reply_to');
      need(Array.isArray(b.tags) && b.tags.every((x) => /^[A-Za-z0-9_-]+$/.test(x.name) && /^[A-Za-z0-9_-]+$/.test(x.value)), 'tags of ASCII letters, digits, _ and -');
      const k = kind(b.to[0]);
      if (k === 'slow') {
        stub.slowSeen = (stub.slowSeen ?? 0) + 1;
        if (stub.slowSeen === 1) return { status: 429, headers: { 'Retry-After': '1' }, json: { statusCode: 429, name: 'rate_limit_exceeded', message: 'Too many requests. You can only make 2 requests per second.' } };
      }
      if (k === 'bad') return { status: 422, json: { statusCode: 422, name: 'validation_error', message: 'Invalid `to` field. The email address needs to follow the `email@example.com` or `Name <email@example.com>` format.' } };
      const a = { status: 200, json: { id: crypto.randomUUID() } };
      seenKeys.set(idem, a);
      return a;
    });
    const srv = await herald(t);
    ok(await api(srv, 'POST', '/providers', {
      provider: 'resend',
      settings: { api_key: KEY, from: FROM, from_name: 'Herald, Inc.', reply_to: 'help@herald.test', base_url: stub.url },
    }));
    await threeOutcomes(srv, 'resend', stub, {
      ref: /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/,
      errorWords: /resend 422: Invalid `to` field\..*\(validation_error\)/,
    });
    // the 429 and its retry carried the same key; every message had its own
    const slow = stub.requests.filter((q) => q.body.includes('slow@'));
    assert.equal(slow.length, 2);
    assert.equal(slow[0].headers['idempotency-key'], slow[1].headers['idempotency-key'], 'a retry reuses the key');
    const keys = new Set(stub.requests.map((q) => q.headers['idempotency-key']));
    assert.equal(keys.size, 3, `one key per message: ${[...keys]}`);
  });
});

describe('mailgun', () => {
  test('POST /v3/{domain}/messages with Basic api:KEY and a form: SENT with the id, 429 retried, 400 UNDELIVERABLE', T, async (t) => {
    const KEY = 'key-e2e-mailgun-03';
    const DOMAIN = 'mg.herald.test';
    const stub = await standIn((q) => {
      need(q.method === 'POST' && q.path === `/v3/${DOMAIN}/messages`, `POST /v3/${DOMAIN}/messages, not ${q.method} ${q.path}`);
      if (q.headers.authorization !== `Basic ${Buffer.from(`api:${KEY}`).toString('base64')}`) return { status: 401, body: 'Forbidden' };
      need(/^application\/x-www-form-urlencoded/.test(q.headers['content-type'] ?? ''), 'a form body');
      const f = new URLSearchParams(q.body);
      need(f.get('from') === `Herald <${FROM}>`, `from: ${f.get('from')}`);
      need((f.get('to') ?? '').endsWith('@example.com'), 'to');
      need(f.get('subject') === 'Your order', 'subject');
      need(f.has('text') || f.has('html'), 'text or html');
      need(f.get('h:Reply-To') === 'help@herald.test', 'h:Reply-To');
      need((f.get('v:herald_message_id') ?? '').length > 0, 'v:herald_message_id');
      const k = kind(f.get('to'));
      if (k === 'slow') {
        stub.slowSeen = (stub.slowSeen ?? 0) + 1;
        if (stub.slowSeen === 1) return { status: 429, headers: { 'Retry-After': '1' }, json: { message: 'Too many requests' } };
      }
      if (k === 'bad') return { status: 400, json: { message: "'to' parameter is not a valid address. please check documentation" } };
      return { status: 200, json: { id: `<${Date.now()}.${crypto.randomInt(1e6)}@${DOMAIN}>`, message: 'Queued. Thank you.' } };
    });
    const srv = await herald(t);
    ok(await api(srv, 'POST', '/providers', {
      provider: 'mailgun',
      settings: { api_key: KEY, domain: DOMAIN, region: 'eu', from: FROM, from_name: 'Herald', reply_to: 'help@herald.test', base_url: stub.url },
    }));
    await threeOutcomes(srv, 'mailgun', stub, {
      ref: new RegExp(`^\\d+\\.\\d+@${DOMAIN.replace(/\./g, '\\.')}$`), // without the angle brackets
      errorWords: /mailgun 400: 'to' parameter is not a valid address\. please check documentation/,
    });
  });

  test('settings are checked, naming the field; the key is masked', T, async (t) => {
    const srv = await herald(t);
    const bad = async (settings, field) => {
      const r = await api(srv, 'POST', '/providers', { provider: 'mailgun', settings });
      assert.equal(r.status, 400, r.body);
      assert.equal(r.json?.type, 'invalid_request_error', r.body);
      assert.ok(r.json.message.includes(`settings.${field}`), `names settings.${field}: ${r.body}`);
    };
    await bad({ api_key: 'k-123456', from: FROM }, 'domain');
    await bad({ api_key: 'k-123456', domain: 'mg/../x', from: FROM }, 'domain');
    await bad({ api_key: 'k-123456', domain: 'mg.x.test', region: 'ap', from: FROM }, 'region');
    await bad({ domain: 'mg.x.test', from: FROM }, 'api_key');
    const p = ok(await api(srv, 'POST', '/providers', { provider: 'mailgun', settings: { api_key: 'key-0123456789abcd', domain: 'mg.x.test', from: FROM } }));
    assert.equal(p.settings.api_key, '****abcd');
    const r = await api(srv, 'POST', '/providers', { provider: 'postmark', settings: { from: FROM } });
    assert.equal(r.status, 400);
    assert.match(r.json.message, /settings\.server_token/);
  });
});
