// bullmq.mjs: the peer baseline of herald's delivery benchmarks. BullMQ (the queue Novu
// runs on) on a redis-server that bench/lib.sh started: a producer adds jobs, a worker
// (a separate node process, forked here, concurrency --concurrency) POSTs each job to the
// sink and completes it. The job carries a Segment-like event (~700 B, as flow.sh's
// events) and the enqueue time; the POST body is shaped like herald's webhook body, with
// "ts:<enqueue time in us>" in content.body, so bench/sink.c measures enqueue -> POST
// arrival exactly as it measures herald's event -> delivery.
//
//   node bench/bullmq.mjs --redis PORT --sink URL [--concurrency 64] [--producers 64]
//        [--duration S] [--max-jobs N] [--wait S] [--pace-ms MS] [--queue NAME]
//
// The producer is a closed loop like wrk -c64 on herald: --producers loops, each awaiting
// one Queue.add at a time, for --duration seconds or until --max-jobs jobs were added;
// with --pace-ms each loop pauses that long after each add (a light paced load, as
// wrk's BENCH_DELAY_MS).
// Then it waits (at most --wait seconds) until the worker has completed every job.
// Prints key=value lines on stdout:
//   added, add_ps          jobs added and the add rate (the "accept" side)
//   completed, failed      jobs the worker completed / failed (a POST that did not get 2xx)
//   span_s                 first add -> last completion (or -> the end of the wait)
//   jobs_ps                completed / span_s: enqueue -> worker -> POST -> completed
//   drained                1 when every added job completed or failed within --wait
//   done_p50_ms, done_p99_ms   enqueue -> completed (the worker's 'completed' event)
// Jobs are removed on completion (removeOnComplete: true), as a production queue is run;
// failed jobs are kept. One attempt per job (BullMQ's default).
import { fork } from 'node:child_process';
import http from 'node:http';
import { fileURLToPath } from 'node:url';
import { Queue, Worker } from 'bullmq';
import { FLOW_EVENT } from './flowevent.mjs';

const opt = {
  redis: 0, sink: '', concurrency: 64, producers: 64, duration: 10, 'max-jobs': Infinity,
  wait: 600, queue: 'bench', 'pace-ms': 0, worker: false,
};
for (let i = 2; i < process.argv.length; i++) {
  const a = process.argv[i];
  if (a === '--worker') { opt.worker = true; continue; }
  if (!a.startsWith('--') || !(a.slice(2) in opt) || i + 1 >= process.argv.length) {
    console.error(`bullmq.mjs: bad argument ${a}`);
    process.exit(2);
  }
  const k = a.slice(2), v = process.argv[++i];
  opt[k] = typeof opt[k] === 'number' ? Number(v) : v;
}
if (!opt.redis || !opt.sink) {
  console.error('usage: node bench/bullmq.mjs --redis PORT --sink URL [--concurrency 64] [--producers 64] [--duration S] [--max-jobs N] [--wait S]');
  process.exit(2);
}
// ioredis options BullMQ asks for (workers block on Redis; no retry limit per request)
const connection = { host: '127.0.0.1', port: opt.redis, maxRetriesPerRequest: null };
const nowUs = () => Math.round((performance.timeOrigin + performance.now()) * 1000);

function pct(sorted, p) {
  return sorted.length ? sorted[Math.floor((sorted.length - 1) * p / 100)] : 0;
}

// ---- worker process: POST each job to the sink ----------------------------------------
async function worker() {
  const sink = new URL(opt.sink);
  const agent = new http.Agent({ keepAlive: true, maxSockets: opt.concurrency });
  const post = (body) => new Promise((resolve, reject) => {
    const req = http.request({
      host: sink.hostname, port: sink.port, path: sink.pathname, method: 'POST', agent,
      headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) },
    }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode >= 200 && res.statusCode < 300 ? resolve()
        : reject(new Error(`sink answered ${res.statusCode}`))));
    });
    req.on('error', reject);
    req.end(body);
  });
  let completed = 0, failed = 0, lastUs = 0, target = Infinity;
  const lat = [];
  const w = new Worker(opt.queue, async (job) => {
    const d = job.data;
    await post(JSON.stringify({
      message_id: job.id,
      recipient: { user_id: d.event.userId },
      content: { title: d.event.event, body: `ts:${d.ts}` },
    }));
  }, { connection, concurrency: opt.concurrency });
  const check = () => {
    if (completed + failed >= target) process.send({ completed, failed, lastUs, lat });
  };
  w.on('completed', (job) => {
    completed++;
    lastUs = nowUs();
    lat.push((lastUs - job.data.ts) / 1000);
    check();
  });
  w.on('failed', () => { failed++; lastUs = nowUs(); check(); });
  w.on('error', (e) => console.error(`bullmq worker: ${e.message}`));
  process.on('message', async (m) => {
    if (m.target !== undefined) { target = m.target; check(); }
    if (m.report) process.send({ completed, failed, lastUs, lat });
    if (m.stop) { await w.close(true); await agent.destroy(); process.exit(0); }
  });
  await w.waitUntilReady();
  process.send({ ready: true });
}

// ---- producer (and driver) ---------------------------------------------------------------
const EVENT = FLOW_EVENT;

async function producer() {
  const child = fork(fileURLToPath(import.meta.url), [...process.argv.slice(2), '--worker']);
  const msgs = [];
  let waiter = null;
  child.on('message', (m) => { if (waiter) { const w = waiter; waiter = null; w(m); } else msgs.push(m); });
  const next = (ms) => new Promise((resolve) => {
    if (msgs.length) return resolve(msgs.shift());
    const t = setTimeout(() => { waiter = null; resolve(null); }, ms);
    waiter = (m) => { clearTimeout(t); resolve(m); };
  });
  child.on('exit', (code) => { if (code) { console.error(`bullmq worker exited ${code}`); process.exit(1); } });
  if (!(await next(60000))?.ready) throw new Error('the worker did not start');

  const queue = new Queue(opt.queue, { connection });
  await queue.waitUntilReady();
  await queue.obliterate({ force: true });
  const jobOpts = { removeOnComplete: true, removeOnFail: false };
  let added = 0, n = 0;
  const firstUs = nowUs(), endAt = Date.now() + opt.duration * 1000;
  const loop = async () => {
    while (Date.now() < endAt && n < opt['max-jobs']) {
      const i = n++;
      await queue.add('deliver', {
        event: { ...EVENT, userId: `u${i % 10000}`, messageId: `bull-${i}` }, ts: nowUs(),
      }, jobOpts);
      added++;
      if (opt['pace-ms'] > 0) await new Promise((resolve) => setTimeout(resolve, opt['pace-ms']));
    }
  };
  await Promise.all(Array.from({ length: opt.producers }, loop));
  const addUs = nowUs() - firstUs;
  child.send({ target: added });
  let r = await next(opt.wait * 1000);
  const drained = r ? 1 : 0;
  if (!r) {
    child.send({ report: true });
    r = await next(30000);
  }
  child.send({ stop: true });
  await queue.close();
  const endUs = drained ? r.lastUs : nowUs();
  const span = (endUs - firstUs) / 1e6;
  const lat = r.lat.sort((a, b) => a - b);
  const out = {
    added, add_ps: (added / (addUs / 1e6)).toFixed(0), completed: r.completed, failed: r.failed,
    span_s: span.toFixed(2), jobs_ps: (r.completed / span).toFixed(0), drained,
    done_p50_ms: pct(lat, 50).toFixed(2), done_p99_ms: pct(lat, 99).toFixed(2),
  };
  for (const [k, v] of Object.entries(out)) console.log(`${k}=${v}`);
  await new Promise((resolve) => child.on('exit', resolve));
}

if (opt.worker) {
  worker().catch((e) => { console.error(`bullmq worker: ${e.stack}`); process.exit(1); });
} else {
  producer().then(() => process.exit(0), (e) => { console.error(`bullmq.mjs: ${e.stack}`); process.exit(1); });
}
