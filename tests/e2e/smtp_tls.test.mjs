// smtp_tls.test.mjs: the SMTP provider's encrypted modes end to end against the real
// smtp-server package with a throwaway self-signed certificate made by the openssl CLI:
// implicit TLS, STARTTLS, AUTH over STARTTLS (right and wrong password, none at all),
// and certificate verification being on by default. Each test runs its own herald
// (one SMTP provider) with --retry-base-ms 200.
//
// Outcomes asserted are those smtp.c and deliver.c document: an SMTP 5xx reply (535 for
// a rejected login, 530 for a missing one) is PERMANENT -> UNDELIVERABLE/PROVIDER_ERROR
// at once; a transport error (a certificate that fails verification) is TRANSIENT ->
// RETRYING until the message timeout, then UNDELIVERABLE/FAILED.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { startServer, stopAll, waitFor, scaled } from './lib/server.mjs';
import { BAD_LOGIN, makeSelfSignedCert, startTlsSmtpServer } from './lib/tls.mjs';

const T = { timeout: scaled(20000) };
const RETRY_ARGS = ['--retry-base-ms', '200'];
const PENDING = new Set(['ENQUEUED', 'DELAYED', 'ROUTED']);
const USER = 'herald-e2e';
const PASS = 'S3cret-pa55word';
const WRONG = 'not-the-Password-9';

/* ---- plumbing ------------------------------------------------------------------------ */

const closers = [];
after(async () => {
  // herald first: its open SMTP sessions would otherwise hold the sinks' close()
  try {
    await stopAll();
  } finally {
    for (const c of closers.reverse()) await c();
  }
});

let cert;
before(() => {
  cert = makeSelfSignedCert();
});

const api = (srv, method, path, json) => srv.request(method, path, { auth: 'admin', json });

function ok(r, status = 200) {
  assert.equal(r.status, status, `expected ${status}, got ${r.status}: ${r.body}`);
  return r.json;
}

const providerBody = (smtp, secure, extra = {}) => ({
  provider: 'smtp',
  settings: { host: '127.0.0.1', port: smtp.port, secure, from: 'noreply@herald.test', from_name: 'Herald TLS', timeout_ms: 5000, ...extra },
});

/** A fresh herald with one SMTP provider against a fresh TLS sink. */
async function setup(t, { mode, secure = mode, auth, settings = {} }) {
  const smtp = await startTlsSmtpServer({ mode, key: cert.key, cert: cert.cert, auth });
  closers.push(() => smtp.close());
  const srv = await startServer({ name: t.name, args: RETRY_ARGS });
  const body = providerBody(smtp, secure, settings);
  const pid = ok(await api(srv, 'POST', '/providers', body)).id;
  return { srv, smtp, pid, body };
}

async function send(srv, email, title, extra = {}) {
  const r = await api(srv, 'POST', '/send', {
    message: { to: { email }, content: { title, body: `Body of ${title}` }, routing: { method: 'single', channels: ['email'] }, ...extra },
  });
  return ok(r, 202).requestId;
}

const history = async (srv, id) => ok(await api(srv, 'GET', `/messages/${id}/history`)).results;
const types = (h) => h.map((e) => e.type);

/** Wait for a final status; assert it is `status` (and `reason` when given). */
async function expectFinal(srv, id, status, reason, { timeout = 15000 } = {}) {
  const m = await waitFor(
    async () => {
      const r = await api(srv, 'GET', `/messages/${id}`);
      return r.status === 200 && !PENDING.has(r.json.status) && r.json;
    },
    { timeout, what: `message ${id} to reach a final status` },
  );
  const h = await history(srv, id);
  const why = `message ${id}: ${JSON.stringify(m)}\nhistory: ${JSON.stringify(h.map((e) => ({ type: e.type, reason: e.reason, error_message: e.error_message })))}`;
  assert.equal(m.status, status, why);
  if (reason !== undefined) assert.equal(m.reason, reason, why);
  return { m, h, why };
}

/** A delivered mail: the envelope, the subject, and the session encrypted at MAIL and DATA. */
function assertTlsMail(mail, email, subject) {
  assert.deepEqual(mail.rcpt, [email]);
  assert.equal(mail.from, 'noreply@herald.test');
  assert.equal(mail.parsed.subject, subject);
  assert.ok(mail.parsed.text.includes(`Body of ${subject}`), mail.parsed.text);
  assert.equal(mail.secureAtMail, true, 'session.secure at MAIL FROM');
  assert.equal(mail.secureAtData, true, 'session.secure at DATA');
  assert.equal(typeof mail.cipher, 'string', 'a negotiated cipher');
}

/* ---- 1. implicit TLS ------------------------------------------------------------------ */

test('1. implicit TLS (secure "tls", tls_verify false): delivered over a TLS session', T, async (t) => {
  const { srv, smtp } = await setup(t, { mode: 'tls', settings: { tls_verify: false } });
  const id = await send(srv, 'tls1@x.test', 'Implicit TLS');
  const mail = await smtp.waitForMail((m) => m.rcpt.includes('tls1@x.test'));
  assertTlsMail(mail, 'tls1@x.test', 'Implicit TLS');
  const { m } = await expectFinal(srv, id, 'SENT');
  assert.equal(m.providers[0].reference.id, mail.parsed.messageId, 'the reference is the Message-ID');
  assert.ok(smtp.connections.length >= 1);
  for (const c of smtp.connections) assert.equal(c.secureAtConnect, true, 'encrypted from the first byte');
});

/* ---- 2. STARTTLS ------------------------------------------------------------------------ */

test('2. STARTTLS (secure "starttls", tls_verify false): upgraded before MAIL and DATA', T, async (t) => {
  const { srv, smtp } = await setup(t, { mode: 'starttls', settings: { tls_verify: false } });
  const id = await send(srv, 'starttls@x.test', 'Via STARTTLS');
  const mail = await smtp.waitForMail((m) => m.rcpt.includes('starttls@x.test'));
  assertTlsMail(mail, 'starttls@x.test', 'Via STARTTLS');
  await expectFinal(srv, id, 'SENT');
  assert.ok(smtp.connections.length >= 1);
  for (const c of smtp.connections) {
    assert.equal(c.secureAtConnect, false, 'the session starts in plain text');
    assert.equal(c.upgraded, true, 'and is upgraded with STARTTLS');
  }
});

/* ---- 3. AUTH over STARTTLS ----------------------------------------------------------- */

describe('3. AUTH over STARTTLS (the server requires a login)', () => {
  test('3a. right password: delivered as that user; wrong password (PUT): 535 -> UNDELIVERABLE with the server\'s words', T, async (t) => {
    const { srv, smtp, pid, body } = await setup(t, { mode: 'starttls', auth: { user: USER, pass: PASS }, settings: { tls_verify: false, username: USER, password: PASS } });

    const id = await send(srv, 'auth@x.test', 'Authenticated');
    const mail = await smtp.waitForMail((m) => m.rcpt.includes('auth@x.test'));
    assertTlsMail(mail, 'auth@x.test', 'Authenticated');
    assert.equal(mail.user, USER, 'the session was authenticated as the configured user');
    await expectFinal(srv, id, 'SENT');
    assert.ok(smtp.auths.length >= 1);
    assert.deepEqual(smtp.auths[0], { user: USER, method: smtp.auths[0].method, ok: true, secure: true }, 'logged in over TLS');

    // the same provider, now with a wrong password: herald's open, authenticated session
    // to this server must not be reused for it
    const put = structuredClone(body);
    put.settings.password = WRONG;
    ok(await api(srv, 'PUT', `/providers/${pid}`, put));
    const id2 = await send(srv, 'badpass@x.test', 'Wrong password');
    const { m, h, why } = await expectFinal(srv, id2, 'UNDELIVERABLE', 'PROVIDER_ERROR');
    assert.match(m.error ?? '', /\b535\b/, `the error names the 535 reply: ${why}`);
    assert.ok((m.error ?? '').includes(BAD_LOGIN), `the error carries the server's words: ${why}`);
    assert.ok(!types(h).includes('RETRYING'), `a 535 is permanent, not retried: ${why}`);
    const und = h.filter((e) => e.type === 'UNDELIVERABLE');
    assert.ok(und.some((e) => e.reason === 'PROVIDER_ERROR' && (e.error_message ?? '').includes(BAD_LOGIN)), `history: ${why}`);
    assert.equal(smtp.to('badpass@x.test').length, 0, 'nothing was delivered');
    const last = smtp.auths.at(-1);
    assert.deepEqual(last, { user: USER, method: last.method, ok: false, secure: true }, 'the wrong login was tried over TLS');
    // secrets stay secret: neither password in the message, its history or the provider
    const prov = ok(await api(srv, 'GET', `/providers/${pid}`));
    for (const text of [JSON.stringify(m), JSON.stringify(h), JSON.stringify(prov)]) {
      assert.ok(!text.includes(WRONG) && !text.includes(PASS), `no password in ${text}`);
    }
  });

  test('3b. no credentials configured: the server\'s 530 -> UNDELIVERABLE, not retried', T, async (t) => {
    const { srv, smtp } = await setup(t, { mode: 'starttls', auth: { user: USER, pass: PASS }, settings: { tls_verify: false } });
    const id = await send(srv, 'noauth@x.test', 'No login');
    const { m, h, why } = await expectFinal(srv, id, 'UNDELIVERABLE', 'PROVIDER_ERROR');
    assert.match(m.error ?? '', /\b530\b/, `the error names the 530 reply: ${why}`);
    assert.ok(!types(h).includes('RETRYING'), why);
    assert.equal(smtp.mails.length, 0);
    assert.equal(smtp.auths.length, 0, 'no login was attempted');
  });
});

/* ---- 4. certificate verification is on by default ------------------------------------ */

describe('4. tls_verify left at its default (true) against a self-signed certificate', () => {
  for (const mode of ['tls', 'starttls']) {
    test(`4${mode === 'tls' ? 'a' : 'b'}. ${mode}: a certificate error, retried (transport error), then UNDELIVERABLE/FAILED; nothing sent`, T, async (t) => {
      const { srv, smtp } = await setup(t, { mode });
      const email = `verify-${mode}@x.test`;
      // transport errors are transient: a short message timeout ends the retries
      const id = await send(srv, email, `Verify ${mode}`, { timeout: { message: 1500 } });
      const { m, h, why } = await expectFinal(srv, id, 'UNDELIVERABLE', 'FAILED');
      const retries = h.filter((e) => e.type === 'RETRYING');
      assert.ok(retries.length >= 1, `a certificate failure is classified transient and retried: ${why}`);
      for (const e of retries) assert.match(e.error_message ?? '', /certificate/i, `RETRYING names the certificate problem: ${why}`);
      assert.match(m.error ?? '', /certificate/i, `the final error names the certificate problem: ${why}`);
      assert.ok(h.some((e) => e.type === 'UNDELIVERABLE' && e.reason === 'PROVIDER_ERROR' && /certificate/i.test(e.error_message ?? '')), why);
      assert.equal(smtp.mails.length, 0, 'no mail reached the server');
      assert.ok(smtp.tcpConnections >= 1, 'herald did connect');
      // the server's side of it: herald (libcurl + OpenSSL) aborted the handshake with an
      // alert rejecting the certificate
      const codes = smtp.errors.map((e) => e.code);
      assert.ok(codes.some((c) => /UNKNOWN_CA|BAD_CERTIFICATE|CERTIFICATE_UNKNOWN/.test(c ?? '')), `a certificate alert at the server: ${JSON.stringify(codes)}`);
      if (mode === 'starttls') {
        assert.ok(smtp.connections.length >= 1);
        for (const c of smtp.connections) assert.deepEqual([c.secureAtConnect, c.upgraded], [false, false], 'STARTTLS was tried, never completed');
      }
    });
  }
});
