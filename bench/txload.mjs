// txload.mjs: the transactional probe of bench/fanout.sh: single POST /send requests (one
// recipient, inline content, routing single ["webhook"]: the provider and sink the fan-out
// uses) at a fixed rate, open loop: one request every 1000/RATE ms whatever the answers (at
// most MAX_INFLIGHT in flight), so a herald that answers slowly under a fan-out does not
// get a lighter probe (no coordinated omission). Each content body is "tx:<send time in
// us>": bench/sink.c counts and times those apart from the fan-out's "ts:" deliveries
// (its tx_* figures).
//
//   node bench/txload.mjs HERALD_URL ADMIN_KEY --rate R --seconds S [--start-file F]
//                         [--until SINK_URL --count N]
//
// --seconds S: send for at most S seconds. --start-file F: first wait (at most S seconds)
// until F exists (bench/listsend.mjs writes it just before its send). --until/--count:
// stop sooner, once SINK_URL/count says the sink has N deliveries other than the probe's
// (the fan-out is delivered; polled every 100 ms). Answers are awaited before it exits.
//
// Prints key=value lines: sent, accepted (202s), bad (other statuses, errors), skipped
// (ticks when MAX_INFLIGHT were in flight), load_s (first tick -> stop), rate_ps (sent /
// load_s), answer_p50_ms, answer_p99_ms, answer_max_ms (request -> answer of the 202s,
// through node's fetch), stopped (count: the fan-out was delivered; time; nostart: F never
// appeared).
import fs from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';

const usage = 'usage: node bench/txload.mjs HERALD_URL ADMIN_KEY --rate R --seconds S [--start-file F] [--until SINK_URL --count N]';
let opt, url, key;
try {
  const a = parseArgs({
    allowPositionals: true,
    options: {
      rate: { type: 'string', default: '50' },
      seconds: { type: 'string' },
      'start-file': { type: 'string' },
      until: { type: 'string' },
      count: { type: 'string' },
    },
  });
  opt = a.values;
  [url, key] = a.positionals;
} catch (e) {
  console.error(`${e.message}\n${usage}`);
  process.exit(2);
}
const RATE = Number(opt.rate), SECONDS = Number(opt.seconds), COUNT = Number(opt.count);
if (!url || !key || !(RATE > 0) || !(SECONDS > 0) || (opt.until !== undefined && !(COUNT > 0))) {
  console.error(usage);
  process.exit(2);
}
const MAX_INFLIGHT = 64;
const H = { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' };
const nowUs = () => Math.round((performance.timeOrigin + performance.now()) * 1000);

let stopped = 'time', done = false;
if (opt['start-file']) {
  const end = performance.now() + SECONDS * 1000;
  while (!fs.existsSync(opt['start-file'])) {
    if (performance.now() > end) {
      stopped = 'nostart';
      done = true;
      break;
    }
    await sleep(5);
  }
}

let sent = 0, accepted = 0, bad = 0, skipped = 0;
const answers = []; // ms, of the 202s
async function one(i) {
  const body = JSON.stringify({
    message: {
      to: { user_id: `tx${i}` },
      content: { title: 'Transactional', body: `tx:${nowUs()}` },
      routing: { method: 'single', channels: ['webhook'] },
    },
  });
  const t = performance.now();
  try {
    const r = await fetch(`${url}/send`, { method: 'POST', headers: H, body });
    await r.arrayBuffer();
    if (r.status === 202) {
      accepted++;
      answers.push(performance.now() - t);
    } else if (++bad <= 3) {
      console.error(`txload: /send answered ${r.status}`);
    }
  } catch (e) {
    if (++bad <= 3) console.error(`txload: /send failed: ${e.message}`);
  }
}

// until: the sink's count of non-probe deliveries reaches COUNT
async function watch() {
  while (!done) {
    await sleep(100);
    try {
      const r = await fetch(`${opt.until}/count`);
      const j = await r.json();
      if (j.count >= COUNT && !done) {
        stopped = 'count';
        done = true;
      }
    } catch (e) {
      console.error(`txload: ${opt.until}/count: ${e.message}`);
    }
  }
}

const watcher = opt.until !== undefined && !done ? watch() : Promise.resolve();
const pending = new Set();
const t0 = performance.now(), end = t0 + SECONDS * 1000, period = 1000 / RATE;
for (let i = 0; !done; i++) {
  const due = t0 + i * period;
  if (due >= end) break;
  const wait = due - performance.now();
  if (wait > 0) await sleep(wait);
  if (done) break;
  if (pending.size >= MAX_INFLIGHT) {
    skipped++;
    continue;
  }
  sent++;
  const p = one(i).finally(() => pending.delete(p));
  pending.add(p);
}
const loadS = (performance.now() - t0) / 1000;
done = true;
await Promise.all([...pending]);
await watcher;

answers.sort((a, b) => a - b);
const pct = (q) => (answers.length ? answers[Math.floor((answers.length - 1) * q)].toFixed(2) : '0');
console.log([
  `sent=${sent}`, `accepted=${accepted}`, `bad=${bad}`, `skipped=${skipped}`,
  `load_s=${loadS.toFixed(2)}`, `rate_ps=${(loadS > 0 ? sent / loadS : 0).toFixed(1)}`,
  `answer_p50_ms=${pct(0.5)}`, `answer_p99_ms=${pct(0.99)}`, `answer_max_ms=${pct(1)}`,
  `stopped=${stopped}`,
].join('\n'));
