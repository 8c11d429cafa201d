// messages.mjs: waiting for a message sent through POST /send to settle, for tests that
// drive deliveries and read the outcome back.
//
//   const { m, h, why } = await finalMessage(srv, id);
//   m    GET /messages/{id} once its status is no longer ENQUEUED, DELAYED or ROUTED
//   h    GET /messages/{id}/history results
//   why  both as text, for assertion messages

import assert from 'node:assert/strict';

import { waitFor } from './server.mjs';

const PENDING = new Set(['ENQUEUED', 'DELAYED', 'ROUTED']);

/** finalMessage(srv, id, {timeout}) -> {m, h, why}; timeout (ms, scaled) defaults to 15 s. */
export async function finalMessage(srv, id, { timeout = 15000 } = {}) {
  const get = (p) => srv.request('GET', p, { auth: 'admin' });
  const m = await waitFor(
    async () => {
      const r = await get(`/messages/${id}`);
      return r.status === 200 && !PENDING.has(r.json.status) && r.json;
    },
    { timeout, what: `message ${id} to reach a final status` },
  );
  const hr = await get(`/messages/${id}/history`);
  assert.equal(hr.status, 200, `GET /messages/${id}/history: ${hr.status} ${hr.body}`);
  const h = hr.json.results;
  return { m, h, why: `message: ${JSON.stringify(m)}\nhistory: ${JSON.stringify(h)}` };
}
