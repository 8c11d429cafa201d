// tls.mjs: TLS fixtures for e2e tests of the SMTP provider's encrypted modes.
//
//   const cert = makeSelfSignedCert();        // openssl CLI, into a temp dir: {key, cert, dir}
//   const smtp = await startTlsSmtpServer({ mode: 'tls', ...cert });     // implicit TLS
//   const smtp = await startTlsSmtpServer({ mode: 'starttls', ...cert }); // STARTTLS offered
//   const smtp = await startTlsSmtpServer({ mode: 'starttls', ...cert, auth: { user, pass } });
//   const mail = await smtp.waitForMail((m) => m.rcpt.includes('a@x.test'));
//   mail.secureAtMail, mail.secureAtData, mail.cipher, mail.user, mail.parsed.subject
//   smtp.connections: [{secureAtConnect, upgraded, cipher}], smtp.auths: [{user, ok, secure}]
//   smtp.tcpConnections: accepted TCP connections; smtp.errors: e.g. failed handshakes
//   await smtp.close();
//
// The server is the real smtp-server package on 127.0.0.1 (a free port). With `auth`,
// AUTH is required (authOptional: false) and, as smtp-server does by default, only
// offered once the session is encrypted; a wrong login is answered 535 with BAD_LOGIN.

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

import { simpleParser } from 'mailparser';
import { SMTPServer } from 'smtp-server';

import { makeTempDir, waitFor } from './server.mjs';

/** The server's words for a rejected login (they must reach herald's error). */
export const BAD_LOGIN = 'e2e sink: username and password not accepted';

/** A throwaway self-signed certificate for 127.0.0.1 (valid one day), made with the
 *  openssl CLI in a fresh temp dir. Returns {key, cert} (PEM Buffers) and their paths. */
export function makeSelfSignedCert() {
  const dir = makeTempDir('herald-e2e-tls-');
  const keyPath = path.join(dir, 'k.pem');
  const certPath = path.join(dir, 'c.pem');
  const r = spawnSync(
    'openssl',
    ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyPath, '-out', certPath, '-days', '1', '-subj', '/CN=127.0.0.1'],
    { encoding: 'utf8', timeout: 30000 },
  );
  if (r.error) throw new Error(`openssl could not be run (is the openssl CLI installed?): ${r.error.message}`);
  if (r.status !== 0) throw new Error(`openssl req -x509 failed (status ${r.status}):\n${r.stderr}`);
  return { dir, keyPath, certPath, key: fs.readFileSync(keyPath), cert: fs.readFileSync(certPath) };
}

/**
 * startTlsSmtpServer({mode, key, cert, auth}) -> Promise<sink>
 *   mode 'tls':      implicit TLS (secure: true): the session is encrypted from the start
 *   mode 'starttls': plain at first (secure: false) with key/cert, so STARTTLS is offered
 *   auth {user, pass}: require AUTH with exactly these credentials
 */
export async function startTlsSmtpServer({ mode, key, cert, auth } = {}) {
  if (mode !== 'tls' && mode !== 'starttls') throw new Error(`startTlsSmtpServer: mode must be 'tls' or 'starttls', not ${mode}`);
  const mails = [];
  const errors = [];
  const connections = new Map(); // session id -> {secureAtConnect, upgraded, cipher}
  const auths = [];
  let tcpConnections = 0;
  const server = new SMTPServer({
    secure: mode === 'tls',
    key,
    cert,
    authOptional: !auth,
    ...(auth ? {} : { disabledCommands: ['AUTH'] }),
    logger: false,
    banner: `herald e2e ${mode} sink`,
    size: 32 * 1024 * 1024,
    closeTimeout: 1000,
    onConnect(session, callback) {
      connections.set(session.id, { secureAtConnect: Boolean(session.secure), upgraded: false, cipher: null });
      callback();
    },
    onSecure(socket, session, callback) {
      const c = connections.get(session.id);
      if (c) {
        c.upgraded = true;
        c.cipher = session.tlsOptions?.name ?? null;
      }
      callback();
    },
    onAuth(a, session, callback) {
      const good = Boolean(auth) && a.username === auth.user && a.password === auth.pass;
      auths.push({ user: a.username, method: a.method, ok: good, secure: Boolean(session.secure) });
      if (!good) {
        const e = new Error(BAD_LOGIN);
        e.responseCode = 535;
        return callback(e);
      }
      return callback(null, { user: a.username });
    },
    onMailFrom(address, session, callback) {
      session.e2eSecureAtMail = Boolean(session.secure);
      callback();
    },
    onData(stream, session, callback) {
      const chunks = [];
      const secureAtData = Boolean(session.secure);
      stream.on('data', (c) => chunks.push(c));
      stream.on('error', (e) => callback(e));
      stream.on('end', async () => {
        const raw = Buffer.concat(chunks);
        try {
          const parsed = await simpleParser(raw);
          mails.push({
            from: session.envelope.mailFrom ? session.envelope.mailFrom.address : null,
            rcpt: session.envelope.rcptTo.map((r) => r.address),
            raw: raw.toString('utf8'),
            parsed,
            secureAtMail: Boolean(session.e2eSecureAtMail),
            secureAtData,
            cipher: session.tlsOptions?.name ?? null,
            user: session.user ?? null,
            at: Date.now(),
          });
          callback();
        } catch (e) {
          errors.push(e);
          callback(e);
        }
      });
    },
  });
  // failed handshakes (the client refusing our certificate) land here: kept, not thrown
  server.on('error', (e) => errors.push(e));
  server.server.on('connection', () => {
    tcpConnections += 1;
  });
  await new Promise((resolve, reject) => {
    server.server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.server.off('error', reject);
      resolve();
    });
  });
  return {
    port: server.server.address().port,
    mails,
    errors,
    auths,
    /** SMTP sessions (implicit TLS: only those whose handshake succeeded). */
    get connections() {
      return [...connections.values()];
    },
    /** Accepted TCP connections, handshake or not. */
    get tcpConnections() {
      return tcpConnections;
    },
    to(addr) {
      return mails.filter((m) => m.rcpt.includes(addr));
    },
    waitForMail(pred = () => true, { timeout = 10000, what = `a mail at the ${mode} SMTP sink` } = {}) {
      return waitFor(() => mails.find(pred), { timeout, what });
    },
    close() {
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
