// listsend.mjs: the streamed fan-out (src/engine/fanout.h) for bench/fanout.sh: N users
// into a list (or a bulk job), then ONE request sends to all of them. Setup (subscribing,
// adding users) is timed apart; the message's content body is "ts:<send time in us>", so
// bench/sink.c measures send -> delivery per message.
//
//   node bench/listsend.mjs HERALD_URL ADMIN_KEY N list|bulk [CONC]
//
// Prints key=value lines: send_us (when the send or runJob left, wall clock us: the
// bulk job's content was stamped at createJob, so fanout.sh counts from here), setup_s (subscribe / addUsers), accept_ms (the send, or
// runJob, until its answer), accepted (N when the send was accepted), bad (failed calls).
// With LISTSEND_GO_FILE set, that file is written just before the send or runJob leaves
// (bench/fanout.sh starts its transactional probe, bench/txload.mjs, on it).
import fs from 'node:fs';

const [url, key, nArg, mode, concArg] = process.argv.slice(2);
const N = Number(nArg), CONC = Number(concArg || 4), BATCH = 1000;
if (!url || !key || !(N > 0) || !['list', 'bulk'].includes(mode)) {
  console.error('usage: node bench/listsend.mjs HERALD_URL ADMIN_KEY N list|bulk [CONC]');
  process.exit(2);
}
const nowUs = () => Math.round((performance.timeOrigin + performance.now()) * 1000);
const H = { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' };
let bad = 0;
async function call(method, path, body) {
  const r = await fetch(url + path, { method, headers: H, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  if (r.status >= 300) {
    bad++;
    if (bad <= 3) console.error(`listsend: ${method} ${path} answered ${r.status} ${text.slice(0, 200)}`);
  }
  return { status: r.status, body: text ? JSON.parse(text) : null };
}
const content = () => ({ title: 'Announcement', body: `ts:${nowUs()}` });
let jobId;
if (mode === 'bulk') {
  jobId = (await call('POST', '/bulk', { message: { event: 'bench-bulk', content: content() } })).body?.jobId;
}
const t0 = nowUs();
let next = 0;
async function setup() {
  while (next < N) {
    const from = next, to = Math.min(N, from + BATCH);
    next = to;
    const ids = [];
    for (let i = from; i < to; i++) ids.push(`u${i}`);
    if (mode === 'list') await call('POST', '/lists/bench.all/subscriptions', { recipients: ids.map((recipientId) => ({ recipientId })) });
    else await call('POST', `/bulk/${jobId}`, { users: ids.map((recipient) => ({ recipient })) });
  }
}
await Promise.all(Array.from({ length: CONC }, setup));
const t1 = nowUs();
if (process.env.LISTSEND_GO_FILE) fs.writeFileSync(process.env.LISTSEND_GO_FILE, `${t1}\n`);
let r;
if (mode === 'list') {
  r = await call('POST', '/send', { message: { to: { list_id: 'bench.all' }, content: content(), routing: { method: 'single', channels: ['webhook'] } } });
} else {
  r = await call('POST', `/bulk/${jobId}/run`);
}
const t2 = nowUs();
console.log(`send_us=${t1}\nsetup_s=${((t1 - t0) / 1e6).toFixed(2)}\naccept_ms=${((t2 - t1) / 1e3).toFixed(1)}\naccepted=${r.status === 202 ? N : 0}\nbad=${bad}`);
