// sink.mjs: a local HTTP server (node:http on 127.0.0.1) that records every request and
// answers from a script, for e2e tests of webhook-style providers.
//
//   const sink = await startHttpSink({ responses: [{ status: 500 }] });   // then 200s
//   sink.url            http://127.0.0.1:<port>/hook
//   sink.requests       [{method, path, headers, body (raw string), json, at}]
//   await sink.waitForRequests(2);
//   await sink.close();
//
// responses: answered in order, one per request; once used up, `fallback` (default
// {status: 200, json: {id: 'sink-<n>'}}). A response is {status, headers, body|json,
// delayMs (answer that much later; the request is recorded on arrival)} or a function
// (req) -> that. port: listen there (e.g. a port that was refused before).
// host: the loopback address to listen on (default 127.0.0.1; '::1' for IPv6, in the
// url as [::1]).

import http from 'node:http';

import { waitFor } from './server.mjs';

export async function startHttpSink({ port = 0, host = '127.0.0.1', responses = [], fallback, path = '/hook' } = {}) {
  const requests = [];
  const queue = [...responses];
  const sockets = new Set();
  let n = 0;
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      n += 1;
      const body = Buffer.concat(chunks).toString('utf8');
      let json;
      try {
        json = JSON.parse(body);
      } catch {
        json = undefined;
      }
      const rec = { method: req.method, path: req.url, headers: req.headers, body, json, at: Date.now() };
      requests.push(rec);
      let r = queue.length ? queue.shift() : (fallback ?? { status: 200, json: { id: `sink-${n}` } });
      if (typeof r === 'function') r = r(rec);
      const headers = { ...(r.headers ?? {}) };
      let out = r.body ?? '';
      if (r.json !== undefined) {
        out = JSON.stringify(r.json);
        headers['Content-Type'] ??= 'application/json';
      }
      const answer = () => {
        res.writeHead(r.status ?? 200, headers);
        res.end(out);
      };
      if (r.delayMs) setTimeout(answer, r.delayMs);
      else answer();
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const actualPort = server.address().port;
  return {
    port: actualPort,
    url: `http://${host.includes(':') ? `[${host}]` : host}:${actualPort}${path}`,
    requests,
    /** Wait until at least count requests arrived; returns the list. */
    waitForRequests(count = 1, { timeout = 10000 } = {}) {
      return waitFor(() => requests.length >= count && requests, { timeout, what: `${count} request(s) at the HTTP sink` });
    },
    close() {
      for (const s of sockets) s.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
