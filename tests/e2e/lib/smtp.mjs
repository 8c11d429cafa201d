// smtp.mjs: a real SMTP server (the smtp-server package) on 127.0.0.1 that keeps every
// message it receives, parsed with mailparser, for e2e tests of email delivery.
//
//   const smtp = await startSmtpSink();                 // port 0: a free port
//   ... configure herald's smtp provider with {host: '127.0.0.1', port: smtp.port, secure: 'none'}
//   const mail = await smtp.waitForMail((m) => m.rcpt.includes('a@x.test'));
//   mail.parsed.subject, mail.parsed.html, mail.parsed.text, mail.raw (string)
//   await smtp.close();
//
// No TLS (STARTTLS is not offered), AUTH optional. Each mail is
//   {from, rcpt: [addresses], raw: string, parsed: mailparser's ParsedMail, at: ms}.

import { simpleParser } from 'mailparser';
import { SMTPServer } from 'smtp-server';

import { waitFor } from './server.mjs';

export async function startSmtpSink({ port = 0 } = {}) {
  const mails = [];
  const errors = [];
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    banner: 'herald e2e smtp sink',
    size: 32 * 1024 * 1024,
    closeTimeout: 1000, // close() waits at most this for clients' open sessions
    onData(stream, session, callback) {
      const chunks = [];
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
  server.on('error', (e) => errors.push(e));
  await new Promise((resolve, reject) => {
    server.server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.server.off('error', reject);
      resolve();
    });
  });
  const actualPort = server.server.address().port;

  return {
    port: actualPort,
    mails,
    errors,
    /** Mails whose envelope recipients include addr. */
    to(addr) {
      return mails.filter((m) => m.rcpt.includes(addr));
    },
    /** Wait for a mail matching pred (default: any); returns it. */
    waitForMail(pred = () => true, { timeout = 10000, what = 'a mail at the SMTP sink' } = {}) {
      return waitFor(() => mails.find(pred), { timeout, what });
    },
    close() {
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
