// report.mjs: turn the key=value results of bench/ingest.sh, bench/send.sh,
// bench/flow.sh, bench/peer.sh, bench/slow.sh, bench/fanout.sh, bench/pg.sh and
// bench/growth.sh into the markdown tables of docs/PERFORMANCE.md.
//
//   node bench/report.mjs RESULTS_FILE [--docs docs/PERFORMANCE.md]
//
// Prints the markdown. With --docs, also replaces the text between the markers
// <!-- bench:results:begin --> and <!-- bench:results:end --> in that file (the prose
// around them is kept; a missing file or missing markers get a skeleton).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BEGIN = '<!-- bench:results:begin -->';
const END = '<!-- bench:results:end -->';
const NOISY = 0.3; // cores used by others during a run that make it a noisy run

const args = process.argv.slice(2);
const file = args[0];
if (!file) {
  console.error('usage: node bench/report.mjs RESULTS_FILE [--docs PATH]');
  process.exit(2);
}
const di = args.indexOf('--docs');
const docs = di >= 0 ? args[di + 1] : undefined;

const raw = fs.readFileSync(file, 'utf8');
const R = {};
for (const line of raw.split('\n')) {
  const i = line.indexOf('=');
  if (i > 0) R[line.slice(0, i)] = line.slice(i + 1);
}

const has = (k) => R[k] !== undefined;
const num = (k) => Number(R[k]);
const int = (k) => (has(k) ? Math.round(num(k)).toLocaleString('en-US') : '—');
const ms = (k) => (has(k) ? `${num(k).toFixed(num(k) >= 100 ? 0 : num(k) >= 10 ? 1 : 2)} ms` : '—');
const x = (a, b) => (has(a) && has(b) && num(b) > 0 ? (num(a) / num(b)).toFixed(3).replace(/0+$/, '').replace(/\.$/, '') : '—');
const cores = (k) => (has(k) ? num(k).toFixed(2) : '—');

function sh(cmd, argv, fallback = '?') {
  try {
    return execFileSync(cmd, argv, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  } catch (e) {
    return (e.stdout || e.stderr || '').toString().trim() || fallback;
  }
}

function machine() {
  const cpuinfo = fs.readFileSync('/proc/cpuinfo', 'utf8');
  const model = R['run.cpu_model'] || (/^model name\s*:\s*(.*)$/m.exec(cpuinfo) || [])[1] || '?';
  const mhz = (/^cpu MHz\s*:\s*(.*)$/m.exec(cpuinfo) || [])[1];
  const mem = (/^MemTotal:\s*(\d+)/m.exec(fs.readFileSync('/proc/meminfo', 'utf8')) || [])[1];
  const memGib = R['run.mem_gib'] || (mem ? (Number(mem) / 1048576).toFixed(1) : '?');
  const commit = R['run.commit'] || sh('git', ['rev-parse', '--short', 'HEAD']);
  const dirty = R['run.dirty'] !== undefined ? Number(R['run.dirty']) > 0
    : Boolean(sh('git', ['status', '--porcelain', '--untracked-files=no']));
  const wrk = (sh('wrk', ['-v']).split('\n')[0] || '?').replace(/ \[.*$/, '');
  const nginx = sh('sh', ['-c', 'nginx -v 2>&1 || /usr/sbin/nginx -v 2>&1']).replace(/^nginx version: /, '');
  const sqlite = sh('sh', ['-c', 'pkg-config --modversion sqlite3 2>/dev/null || echo ?']);
  const curl = sh('sh', ['-c', 'curl-config --version 2>/dev/null || echo ?']);
  const mins = (k) => (has(k) ? `${(num(k) / 60).toFixed(1)} min` : null);
  const parts = ['ingest', 'send', 'flow', 'peer', 'slow', 'fanout', 'backlog', 'pg', 'growth'].filter((b) => has(`run.${b}.elapsed_s`))
    .map((b) => `${b} ${mins(`run.${b}.elapsed_s`)}`);
  return [
    `- date: ${R['run.date'] || new Date().toISOString()}` +
      (has('run.elapsed_s') ? `; the whole run took ${mins('run.elapsed_s')} (${parts.join(', ')})` : ''),
    `- commit: \`${commit}\`${dirty ? ' (with uncommitted changes to tracked files)' : ''}` +
      (R['run.quick'] === '1' ? ' — **quick run (BENCH_QUICK=1): short runs and a small seeded store, a smoke test, not figures**' : ''),
    `- machine: ${R['run.cpus'] || sh('nproc', [])} CPUs, ${model}${mhz ? ` (${Number(mhz).toFixed(0)} MHz)` : ''}, ` +
      `${memGib} GiB RAM, Linux ${R['run.kernel'] || os.release()}, ${R['run.os'] || '?'}; ` +
      `load average before the run: ${R['run.loadavg'] || '?'}`,
    `- stores: SQLite in ${R['run.store_fs'] || '?'}` +
      (has('growth.store_fs') ? `; growth stores in ${R['growth.store_fs']}` : '') +
      (has('pg.version') ? `; PostgreSQL ${R['pg.version']} (throwaway cluster under build/pg-bench-fsync-${R['pg.fsync'] || 'off'}, fsync ${R['pg.fsync'] || 'off'})` : ''),
    `- tools: ${wrk}, nginx ${nginx}, SQLite ${sqlite}, ${curl}` +
      (has('peer.bullmq_version') ? `, BullMQ ${R['peer.bullmq_version']} on redis-server ${R['peer.redis_version']}` : '') + '; ' +
      `wrk -t${R['run.threads'] || 2} -c${R['run.conns'] || 64} -d${R['run.duration'] || 10}s, ` +
      `send run ${R['run.send_duration'] || 10}s` +
      (has('flow.sat.rps') ? `, flow runs ${R['run.flow_duration'] || 10}s saturating + ${R['run.flow_light_duration'] || 10}s light + ${R['run.flow_light_duration'] || 10}s paced at ~1,000 events/s` : ''),
  ].join('\n');
}

function check(prefix) {
  const c = R[`${prefix}.durable_check`];
  if (!c) return '—';
  return `${c === 'ok' ? 'ok' : '**MISMATCH**'}: catalog ${int(`${prefix}.catalog_events`)} = ` +
    `herald 2xx ${int(`${prefix}.herald_2xx_events`)} (wrk saw ${int(`${prefix}.wrk_2xx_events`)})`;
}

function errs(prefix) {
  const b = num(`${prefix}.bad_status`) || 0;
  const s = num(`${prefix}.socket_errors`) || 0;
  return b || s ? `; **${b} error statuses, ${s} socket errors**` : '';
}


function growthTables(out, pre, storeName) {
  if (has('growth.skipped')) {
    if (pre === 'growth') out.push('', '### Growth with stored data', '', `**Skipped**: ${R['growth.skipped']} (bench/growth.sh).`);
    return;
  }
  if (has(`${pre}.skipped`)) {
    out.push('', `### Growth with stored data, ${storeName}`, '', '**Skipped**: no PostgreSQL server binaries (bench/growth.sh).');
    return;
  }
  if (!has(`${pre}.empty.track.rps`)) return;
  const P = int('growth.profiles'), M = int('growth.messages');
  const H = has(`${pre}.seed.history`) ? int(`${pre}.seed.history`) : '—';
  const g = (k) => `${pre}.${k}`;
  const row = (label, key, fmt, key2) => {
    const e = g(`empty.${key}`), sd = g(`seeded.${key}`);
    const r2 = key2 ? ` / ${x(g(`seeded.${key2}`), g(`empty.${key2}`))}` : '';
    return `| ${label} | ${fmt(e)} | ${fmt(sd)} | ${x(sd, e)}${r2} |`;
  };
  const pp = (k) => `${ms(k.replace(/\.[a-z0-9_]+$/, '.p50_ms'))} / ${ms(k.replace(/\.[a-z0-9_]+$/, '.p99_ms'))}`;
  const e2e = (k) => `${ms(k.replace(/\.[a-z0-9_]+$/, '.e2e_p50_ms'))} / ${ms(k.replace(/\.[a-z0-9_]+$/, '.e2e_p99_ms'))}`;
  const chk = (s) => ['track', 'batch', 'send', 'light'].map((c) => R[g(`${s}.${c}.check`)] === 'ok' ? 'ok' : `**${R[g(`${s}.${c}.check`)] || '—'}**`).join(' / ');
  out.push('', `### Growth with stored data, ${storeName} (bench/growth.sh: an empty store, then one holding ${P} profiles and ${M} messages)`, '');
  out.push(`${pre === 'growth' ? '' : `PostgreSQL ${R['growth.pg.version'] || R['pg.version'] || '?'} on the throwaway cluster of scripts/pg-test.sh (fsync off), ${R['growth.pg.store_fs'] || '?'}; "others" below include PostgreSQL's own processes. `}The same runs (wrk -t${R['run.threads'] || 2} -c${R['run.conns'] || 64}, ${R['run.duration'] || 10} s; /send ${R['run.send_duration'] || 10} s then the drain; light /send wrk -c4 with 20 ms pauses) on one herald per store, track, batch, send and light in turn, first on an empty ${storeName} store, then on a store seeded by \`herald seed\` with ${P} profiles (u0..u${has('growth.profiles') ? (num('growth.profiles') - 1).toLocaleString('en-US') : '?'}; the ingest events' userIds u0..u9999 hit existing profiles) and ${M} SENT messages with ${H} history rows (5 each, shaped as herald writes them for a webhook send). Both stores in the same ${pre === 'growth' ? 'directory' : 'cluster'}; the seeded one was written just before its runs (warm page cache). Ratio: seeded / empty, same run.`, '');
  out.push(`Seeding: ${int(g('seed.profiles'))} profiles in ${R[g('seed.profiles_s')] || '—'} s, ${int(g('seed.messages'))} messages + ${H} history rows in ${R[g('seed.messages_s')] || '—'} s; **${R[g('seed.total_s')] || '—'} s in all (${int(g('seed.rows_ps'))} rows/s)**; store on disk: ${int(g('seed.store_mb'))} MB (empty store after its runs: ${int(g('empty.store_mb'))} MB). herald started on it in ${R[g('seeded.start_s')] || '—'} s (empty: ${R[g('empty.start_s')] || '—'} s).`, '');
  out.push('| figure | empty store | seeded store | seeded / empty |');
  out.push('| --- | --- | --- | --- |');
  out.push(row('POST /v1/track events/s', 'track.eps', int));
  out.push(row('/v1/track p50 / p99', 'track.p50_ms', pp, 'track.p99_ms'));
  out.push(row('POST /v1/batch events/s (100 per request)', 'batch.eps', int));
  out.push(row('/v1/batch p50 / p99', 'batch.p50_ms', pp, 'batch.p99_ms'));
  out.push(row('POST /send accepted/s', 'send.rps', int));
  out.push(row('/send answer p50 / p99', 'send.p50_ms', pp, 'send.p99_ms'));
  out.push(row('/send delivered/s (first send to last delivery)', 'send.delivered_ps', int));
  out.push(row('light /send, send to delivery p50 / p99', 'light.e2e_p50_ms', e2e, 'light.e2e_p99_ms'));
  out.push(row('drain after the /send run (s)', 'send.drain_s', (k) => R[k] || '—'));
  const rd = (k) => `${ms(k)} / ${ms(k.replace(/p50_ms$/, 'max_ms'))}`;
  out.push(row(`GET /profiles/{id}, p50 / max of ${R['growth.reads'] || 50} (before the load)`, 'read.profile.p50_ms', rd, 'read.profile.max_ms'));
  out.push(row('GET /messages?recipient={id}&limit=10, p50 / max', 'read.recipient.p50_ms', rd, 'read.recipient.max_ms'));
  out.push(row('GET /messages/{id}/history, p50 / max', 'read.history.p50_ms', rd, 'read.history.max_ms'));
  out.push(`| checks track / batch / send / light | ${chk('empty')} | ${chk('seeded')} | — |`);
  out.push('', 'CPU in cores during each run (others = machine - herald - wrk; bold above ' + NOISY + ': noisy).', '');
  out.push('| run | herald empty | herald seeded | others empty | others seeded |');
  out.push('| --- | --- | --- | --- | --- |');
  const gnoisy = [];
  for (const c of ['track', 'batch', 'send', 'light']) {
    const oth = (s) => {
      const p = g(`${s}.${c}`);
      if (!has(`${p}.cpu_machine`)) return '—';
      const o = num(`${p}.cpu_machine`) - num(`${p}.cpu_server`) - num(`${p}.cpu_wrk`);
      if (o > NOISY) gnoisy.push(`${storeName} ${s} ${c}`);
      return o > NOISY ? `**${o.toFixed(2)}**` : o.toFixed(2);
    };
    out.push(`| ${c} | ${cores(g(`empty.${c}.cpu_server`))} | ${cores(g(`seeded.${c}.cpu_server`))} | ${oth('empty')} | ${oth('seeded')} |`);
  }
  if (gnoisy.length)
    out.push('', `**Noisy run**: other processes used more than ${NOISY} cores during: ${gnoisy.join('; ')}. Rerun before reading a ratio from those.`);
}

// peerTables: the peer baseline (peer.sh), the slow provider (slow.sh) and the fan-out
// (fanout.sh), each as a ratio to what was measured in the same run.
function peerTables(out) {
  const chk = (p) => (R[`${p}.check`] === undefined ? '—' : R[`${p}.check`] === 'ok' ? 'ok' : '**MISMATCH**');
  const rate = (p, k) => `${int(`${p}.${k}`)}/s${R[`${p}.drained`] === '0' ? ` (backlog not drained: over a ${R['slow.window_s'] || '?'} s window)` : ''}`;
  if (has('peer.skipped')) {
    out.push('', '### Peer baseline: BullMQ', '', `**Skipped**: ${R['peer.skipped'].replace(/"/g, '')} (bench/peer.sh).`);
  } else if (has('peer.nofsync.jobs_ps')) {
    const c = R['peer.concurrency'] || 64;
    out.push('', `### Peer baseline: BullMQ ${R['peer.bullmq_version'] || '?'} on redis-server ${R['peer.redis_version'] || '?'} (bench/peer.sh), worker concurrency ${c}, POSTing to the same sink`, '');
    out.push(`Jobs/s enqueue -> worker -> HTTP POST -> completed (64 producers adding one job at a time for ${R['run.peer_duration'] || 10} s, then until every job completed); latency enqueue -> POST at the sink (saturating: mostly the backlog draining, as herald's flow figure; light: 2 producers, 40 ms pauses, ~50 jobs/s). Ratio: herald's flow deliveries/s (flow.sh, same run) / BullMQ's jobs/s.`, '');
    out.push('| Redis persistence | jobs/s | added/s | latency p50 / p99 saturating; light | herald flow deliveries/s / this | CPU redis; machine (cores) | check |');
    out.push('| --- | --- | --- | --- | --- | --- | --- |');
    for (const [m, label] of [['nofsync', 'none (no AOF, no RDB)'], ['fsync', 'appendonly, appendfsync always']]) {
      const p = `peer.${m}`;
      if (!has(`${p}.jobs_ps`)) continue;
      out.push(`| ${label} | **${int(`${p}.jobs_ps`)}** | ${int(`${p}.add_ps`)} | ${ms(`${p}.e2e_p50_ms`)} / ${ms(`${p}.e2e_p99_ms`)}; **${ms(`${p}.light.e2e_p50_ms`)} / ${ms(`${p}.light.e2e_p99_ms`)}** | **${x('flow.sat.deliveries_ps', `${p}.jobs_ps`)}** | ${cores(`${p}.cpu_redis`)}; ${cores(`${p}.cpu_machine`)} | ${chk(p)}: ${int(`${p}.completed`)} completed of ${int(`${p}.added`)}, sink ${int(`${p}.delivered`)}; light ${chk(`${p}.light`)} |`);
    }
    out.push('');
    if (has('flow.sat.deliveries_ps')) {
      const r = num('flow.sat.deliveries_ps') / num('peer.nofsync.jobs_ps');
      out.push(`herald in the same run: flow ${int('flow.sat.deliveries_ps')} deliveries/s, light event to delivery ${ms('flow.light.e2e_p50_ms')} / ${ms('flow.light.e2e_p99_ms')}. Goal (issue 14): >= 2x BullMQ without fsync: **${r.toFixed(3)}, ${r >= 2 ? 'met' : 'not met'}**.`);
      if (has('flow.paced.e2e_p50_ms')) {
        const met = num('flow.paced.rps') >= 950 && num('flow.paced.e2e_p50_ms') < 3 && num('flow.paced.e2e_p99_ms') < 20;
        out.push(`Paced at ${int('flow.paced.rps')} events/s (issue 14: p50 < 3 ms and p99 < 20 ms at 1,000 events/s): event to delivery ${ms('flow.paced.e2e_p50_ms')} / ${ms('flow.paced.e2e_p99_ms')}, **${met ? 'met' : 'not met'}**.`);
      }
    } else {
      out.push('herald\'s flow figure is not in this run (bench/flow.sh did not run): no ratio.');
    }
  }
  if (has('slow.herald.delivered_ps')) {
    out.push('', `### Slow provider: the sink answers after ${R['slow.delay_ms'] || 100} ms (bench/slow.sh)`, '');
    out.push(`/send (wrk -c64 for ${R['run.slow_duration'] || 5} s) through the webhook provider, herald's default flags; delivered/s from the first send to the last delivery, or to the end of a ${R['slow.window_s'] || '?'} s window while a backlog remains. BullMQ: the same sink, worker concurrency ${R['peer.concurrency'] || 64}, Redis without persistence (${R['peer.concurrency'] || 64} calls in flight of ${R['slow.delay_ms'] || 100} ms each: at most ${Math.round((Number(R['peer.concurrency']) || 64) * 1000 / (Number(R['slow.delay_ms']) || 100))} jobs/s).`, '');
    out.push('| who | delivered/s | ratio to BullMQ, same run | send to delivery p50 / p99 | check |');
    out.push('| --- | --- | --- | --- | --- |');
    out.push(`| herald /send, default flags | **${rate('slow.herald', 'delivered_ps')}** | **${x('slow.herald.delivered_ps', 'slow.bullmq.jobs_ps')}** | ${ms('slow.herald.e2e_p50_ms')} / ${ms('slow.herald.e2e_p99_ms')} | ${chk('slow.herald')}: ${int('slow.herald.delivered')} delivered of ${int('slow.herald.accepted')} accepted |`);
    if (has('slow.bullmq.skipped'))
      out.push(`| BullMQ | **skipped**: ${R['slow.bullmq.skipped'].replace(/"/g, '')} | — | — | — |`);
    else if (has('slow.bullmq.jobs_ps'))
      out.push(`| BullMQ, concurrency ${R['peer.concurrency'] || 64} | ${rate('slow.bullmq', 'jobs_ps')} | (the reference) | ${ms('slow.bullmq.e2e_p50_ms')} / ${ms('slow.bullmq.e2e_p99_ms')} | ${chk('slow.bullmq')}: ${int('slow.bullmq.completed')} completed of ${int('slow.bullmq.added')} |`);
    out.push('', `Goal (issue 14): >= 5,000/s: **${int('slow.herald.delivered_ps')}/s, ${num('slow.herald.delivered_ps') >= 5000 ? 'met' : 'not met'}**.`);
  }
  if (has('fanout.total_s') || has('fanout.list_total_s')) {
    const bullPs = has('peer.nofsync.jobs_ps') && num('peer.nofsync.jobs_ps') > 0 ? num('peer.nofsync.jobs_ps') : undefined;
    const bull = bullPs === undefined ? '—' : `${(num('fanout.n') / bullPs).toFixed(1)} s`;
    const fchk = (k, what) => (R[k] === undefined ? '—' : `${R[k] === 'ok' ? 'ok' : '**MISMATCH**'}: ${what}`);
    out.push('', `### Fan-out: one announcement to ${int('fanout.n')} recipients (bench/fanout.sh)`, '');
    out.push(`Three ways to the same recipients, webhook provider to the instant sink: POST /send with \`to\` arrays of ${int('fanout.chunk')} recipients (${int('fanout.requests')} requests; from the first request to the last delivery), ONE POST /send to a list of them (\`to.list_id\`) and one bulk job of them (runJob), each from that one request to the last delivery (subscribing and adding the users timed apart). For scale, the same number of jobs at BullMQ's rate (no persistence) in this run.`, '');
    out.push('| what | herald | BullMQ at its rate, same run | ratio (herald deliveries/s / BullMQ jobs/s) | send to delivery p50 / p99 | check |');
    out.push('| --- | --- | --- | --- | --- | --- |');
    if (has('fanout.total_s'))
      out.push(`| ${int('fanout.n')} deliveries, /send arrays | **${Number(R['fanout.total_s']).toFixed(1)} s** (${int('fanout.delivered_ps')} deliveries/s; accepted in ${R['fanout.accept_s']} s) | ${bull} | **${x('fanout.delivered_ps', 'peer.nofsync.jobs_ps')}** | ${ms('fanout.e2e_p50_ms')} / ${ms('fanout.e2e_p99_ms')} | ${fchk('fanout.check', `${int('fanout.delivered')} delivered of ${int('fanout.accepted')} accepted`)} |`);
    for (const [m, label] of [['list', 'one /send to a list'], ['bulk', 'one bulk job']]) {
      const p = `fanout.${m}`;
      if (!has(`${p}_total_s`)) continue;
      out.push(`| ${label} | **${Number(R[`${p}_total_s`]).toFixed(1)} s** (${int(`${p}_recipients_ps`)} recipients/s; answered in ${ms(`${p}_accept_ms`)}; setup ${R[`${p}_setup_s`] || '—'} s) | ${bull} | **${x(`${p}_recipients_ps`, 'peer.nofsync.jobs_ps')}** | — | ${fchk(`${p}_check`, `${int(`${p}_delivered`)} delivered of ${int('fanout.n')}`)} |`);
    }
    if (has('fanout.list_recipients_ps') || has('fanout.bulk_recipients_ps')) {
      const single = has('send.deliver.delivered_ps')
        ? `**${int('send.deliver.delivered_ps')} delivered/s**; list / single ${x('fanout.list_recipients_ps', 'send.deliver.delivered_ps')}, bulk / single ${x('fanout.bulk_recipients_ps', 'send.deliver.delivered_ps')}`
        : '**not in this run** (bench/send.sh did not run)';
      out.push('', `Recipients/s of the one-request fan-outs: list send **${int('fanout.list_recipients_ps')}/s**, bulk job **${int('fanout.bulk_recipients_ps')}/s**. /send's single sends in the same run (bench/send.sh's saturating run, one recipient per request, first send to last delivery): ${single}.`);
    }
    if (has('fanout.list_tx_e2e_p99_ms') || has('fanout.quiet_tx_e2e_p99_ms')) {
      const rate = R['fanout.tx_rate'] || 50;
      const times = (a, b) => {
        if (!has(a) || !has(b) || !(num(b) > 0)) return '—';
        const r = num(a) / num(b);
        return `${r.toFixed(r >= 10 ? 0 : r >= 1 ? 1 : 2)}x`;
      };
      out.push('', `Transactional /send while the fan-out runs (bench/txload.mjs): single sends, one recipient each, the same webhook provider and sink, ${rate}/s open loop (one every ${(1000 / Number(rate)).toFixed(0)} ms whatever the answers), from the list send (runJob) until the sink has the ${int('fanout.n')} fan-out deliveries; "quiet": the same load with no fan-out, ${R['fanout.quiet_tx_load_s'] || '?'} s (as long as the list fan-out took, 5-60 s), same run. Ratio: during / quiet.`, '');
      out.push('| transactional /send | sends (rate) | answer p50 / p99 | send to delivery p50 / p99 | during / quiet, p50; p99 | check |');
      out.push('| --- | --- | --- | --- | --- | --- |');
      for (const [m, label] of [['quiet', 'quiet (no fan-out)'], ['list', 'during the list fan-out'], ['bulk', 'during the bulk job']]) {
        const p = `fanout.${m}_tx`;
        if (!has(`${p}_e2e_p99_ms`)) continue;
        const b = num(`${p}_bad`) || 0, sk = num(`${p}_skipped`) || 0;
        const ratio = m === 'quiet' ? '(the reference)'
          : `**${times(`${p}_e2e_p50_ms`, 'fanout.quiet_tx_e2e_p50_ms')}; ${times(`${p}_e2e_p99_ms`, 'fanout.quiet_tx_e2e_p99_ms')}**`;
        out.push(`| ${label} | ${int(`${p}_sent`)} in ${R[`${p}_load_s`] || '—'} s (${R[`${p}_rate_ps`] || '—'}/s)${b ? `; **${b} failed**` : ''}${sk ? `; **${sk} ticks skipped** (64 in flight)` : ''} | ${ms(`${p}_answer_p50_ms`)} / ${ms(`${p}_answer_p99_ms`)} | **${ms(`${p}_e2e_p50_ms`)} / ${ms(`${p}_e2e_p99_ms`)}** | ${ratio} | ${fchk(`${p}_check`, `${int(`${p}_delivered`)} delivered of ${int(`${p}_accepted`)} accepted`)} |`);
      }
    }
  }
}

// backlogTable: herald's memory under a backlog of pending messages (backlog.sh).
function backlogTable(out) {
  if (!has('backlog.anon_mb')) return;
  const mb = (k) => (has(k) ? `${Number(R[k]).toFixed(1)} MB` : '—');
  const n = num('backlog.n');
  out.push('', `### Memory under a backlog of ${int('backlog.n')} pending messages (bench/backlog.sh)`, '');
  out.push(`The webhook provider answers after 1 s with \`--provider-concurrency 2\` (about 2 deliveries/s), so what is accepted stays pending; ${int('backlog.n')} messages go in as /send \`to\` arrays of 100 (accepted in ${R['backlog.accept_s']} s; ${int('backlog.pending')} jobs pending at the end; store ${int('backlog.store_mb')} MB on disk). Anonymous memory (RssAnon) is herald's own: the heap, SQLite's page caches, stacks; file pages (RssFile) are the binary and the store file mapped by SQLite's mmap reads (the kernel's page cache: shared, reclaimable, capped by mmap_size 256 MiB).`, '');
  out.push('| pending messages | idle | ' + [1, 2, 5, 10].map((k) => Math.round(n * k / 10).toLocaleString('en-US')).join(' | ') + ' |');
  out.push('| --- | --- | --- | --- | --- | --- |');
  out.push(`| anonymous memory | ${mb('backlog.anon_idle_mb')} | ${[1, 2, 5, 10].map((k) => mb(`backlog.anon_${k}_mb`)).join(' | ')} |`);
  out.push(`| resident (RSS) | ${mb('backlog.rss_idle_mb')} | ${[1, 2, 5, 10].map((k) => mb(`backlog.rss_${k}_mb`)).join(' | ')} |`);
  out.push('', `At the end: RSS ${mb('backlog.rss_mb')} = anonymous ${mb('backlog.anon_mb')} + file ${mb('backlog.file_mb')}; peak (VmHWM) ${mb('backlog.hwm_mb')}. Goal (issue 14): idle RSS < 30 MB: **${mb('backlog.rss_idle_mb')}, ${num('backlog.rss_idle_mb') < 30 ? 'met' : 'not met'}**; bounded under a 1M-message backlog: anonymous memory ${mb('backlog.anon_1_mb')} at a tenth, ${mb('backlog.anon_mb')} at all of it.`);
}

function tables() {
  const out = [];
  if (has('herald.track.rps') || has('herald.batch.rps')) {
    out.push('### Ingest (events in)', '');
    out.push('| what | herald | baseline, same run | ratio | p50 / p99 (herald; baseline) | check |');
    out.push('| --- | --- | --- | --- | --- | --- |');
  }
  if (has('herald.track.rps')) {
    out.push(`| POST /v1/track, 1 event (~700 B) per request | ${int('herald.track.rps')} req/s = ${int('herald.track.eps')} events/s${errs('herald.track')} | nginx fixed 200, same POST bodies: ${int('nginx.track.rps')} req/s | ${x('herald.track.rps', 'nginx.track.rps')} | ${ms('herald.track.p50_ms')} / ${ms('herald.track.p99_ms')}; ${ms('nginx.track.p50_ms')} / ${ms('nginx.track.p99_ms')} | ${check('herald.track')} |`);
  }
  if (has('herald.batch.rps')) {
    out.push(`| POST /v1/batch, 100 events per request | ${int('herald.batch.rps')} req/s = **${int('herald.batch.eps')} events/s**${errs('herald.batch')} | nginx fixed 200, same POST bodies: ${int('nginx.batch.rps')} req/s | ${x('herald.batch.rps', 'nginx.batch.rps')} | ${ms('herald.batch.p50_ms')} / ${ms('herald.batch.p99_ms')}; ${ms('nginx.batch.p50_ms')} / ${ms('nginx.batch.p99_ms')} | ${check('herald.batch')} |`);
  }
  if (has('nginx.get.rps')) {
    out.push(`| (reference) nginx GET / fixed 200 | — | ${int('nginx.get.rps')} req/s | — | ${ms('nginx.get.p50_ms')} / ${ms('nginx.get.p99_ms')} | — |`);
  }
  if (has('herald.track.rps') || has('herald.batch.rps')) {
    out.push('');
    out.push('Goals: /v1/track within 2x of the nginx baseline (ratio >= 0.5): ' +
      (has('herald.track.rps') ? `**${x('herald.track.rps', 'nginx.track.rps')}, ${num('herald.track.rps') / num('nginx.track.rps') >= 0.5 ? 'met' : 'not met'}**` : 'not measured') +
      '; over 100,000 events/s through batches: ' +
      (has('herald.batch.eps') ? `**${int('herald.batch.eps')}/s, ${num('herald.batch.eps') > 100000 ? 'met' : 'not met'}**` : 'not measured') + '.');
  }
  if (has('send.accept.rps')) {
    out.push('', '### Sending (notifications out, webhook provider to a local sink)', '');
    out.push('| what | herald | baseline, same run | ratio | latency p50 / p99 (herald; baseline) | check |');
    out.push('| --- | --- | --- | --- | --- | --- |');
    out.push(`| POST /send accepted (202), wrk -c64 | ${int('send.accept.rps')} sends/s${errs('send.accept')} | libcurl multi, 16 in flight, to the sink: ${int('curl.sink.rps')} req/s | ${x('send.accept.rps', 'curl.sink.rps')} | answer: ${ms('send.accept.p50_ms')} / ${ms('send.accept.p99_ms')} | — |`);
    out.push(`| delivered to the sink, saturating run (first send to last delivery) | ${int('send.deliver.delivered_ps')} messages/s | same: ${int('curl.sink.rps')} req/s | ${x('send.deliver.delivered_ps', 'curl.sink.rps')} | send to delivery: ${ms('send.deliver.e2e_p50_ms')} / ${ms('send.deliver.e2e_p99_ms')} (queueing behind the backlog); libcurl ${ms('curl.sink.p50_ms')} / ${ms('curl.sink.p99_ms')} | ${R['send.deliver.delivery_check'] === 'ok' ? 'ok' : '**MISMATCH**'}: ${int('send.deliver.delivered')} delivered = ${int('send.deliver.accepted')} accepted; drained ${R['send.deliver.drain_s']} s after wrk stopped |`);
    if (has('send.light.rps')) {
      out.push(`| light paced load (wrk -c4, 20 ms pauses) | ${int('send.light.rps')} sends/s, ${int('send.light.delivered_ps')} delivered/s | — | — | answer: ${ms('send.light.p50_ms')} / ${ms('send.light.p99_ms')}; send to delivery: **${ms('send.light.e2e_p50_ms')} / ${ms('send.light.e2e_p99_ms')}** | ${R['send.light.delivery_check'] === 'ok' ? 'ok' : '**MISMATCH**'}: ${int('send.light.delivered')} = ${int('send.light.accepted')} |`);
    }
  }
  if (has('flow.sat.rps')) {
    const fcheck = (p) => `${R[`${p}.delivery_check`] === 'ok' ? 'ok' : '**MISMATCH**'}: ${int(`${p}.delivered`)} delivered = 2 x ${int(`${p}.accepted`)} events answered 200 (herald counts ${int(`${p}.herald_sent`)} sent)`;
    out.push('', '### Flow (Segment track events in, two linked automations each, webhooks out to the sink)', '');
    out.push('| what | herald | baseline, same run | ratio | latency p50 / p99 (herald; baseline) | check |');
    out.push('| --- | --- | --- | --- | --- | --- |');
    out.push(`| POST /v1/track "Flow Event" accepted (200), wrk -c64 | ${int('flow.sat.rps')} events/s${errs('flow.sat')} | nginx fixed 200, same POST bodies: ${int('nginx.flow.rps')} req/s | ${x('flow.sat.rps', 'nginx.flow.rps')} | answer: ${ms('flow.sat.p50_ms')} / ${ms('flow.sat.p99_ms')}; ${ms('nginx.flow.p50_ms')} / ${ms('nginx.flow.p99_ms')} | — |`);
    out.push(`| processed end to end, saturating run (first send to last delivery, ${Number(R['flow.sat.span_s']).toFixed(0)} s) | **${int('flow.sat.events_ps')} events/s** = ${int('flow.sat.deliveries_ps')} deliveries/s | libcurl multi, 16 in flight, to the sink: ${int('flow.curl.sink.rps')} req/s | deliveries ${x('flow.sat.deliveries_ps', 'flow.curl.sink.rps')}; events ${x('flow.sat.events_ps', 'flow.curl.sink.rps')} | event to delivery: ${ms('flow.sat.e2e_p50_ms')} / ${ms('flow.sat.e2e_p99_ms')} (queueing behind the backlog); libcurl ${ms('flow.curl.sink.p50_ms')} / ${ms('flow.curl.sink.p99_ms')} | ${fcheck('flow.sat')}; drained ${R['flow.sat.drain_s']} s after wrk stopped |`);
    if (has('flow.light.rps')) {
      out.push(`| light paced load (wrk -c2, 40 ms pauses) | ${int('flow.light.rps')} events/s, ${int('flow.light.deliveries_ps')} deliveries/s | — | — | answer: ${ms('flow.light.p50_ms')} / ${ms('flow.light.p99_ms')}; event to delivery: **${ms('flow.light.e2e_p50_ms')} / ${ms('flow.light.e2e_p99_ms')}** | ${fcheck('flow.light')} |`);
    }
    if (has('flow.paced.rps')) {
      out.push(`| paced ~1,000 events/s (wrk -c25, 20 ms pauses) | ${int('flow.paced.rps')} events/s, ${int('flow.paced.deliveries_ps')} deliveries/s | — | — | answer: ${ms('flow.paced.p50_ms')} / ${ms('flow.paced.p99_ms')}; event to delivery: **${ms('flow.paced.e2e_p50_ms')} / ${ms('flow.paced.e2e_p99_ms')}** | ${fcheck('flow.paced')} |`);
    }
  }
  peerTables(out);
  backlogTable(out);
  if (has('pg.skipped')) {
    out.push('', '### PostgreSQL', '', '**Skipped**: no PostgreSQL server binaries on this machine (bench/pg.sh).');
  } else if (has('pg.nginx.track.rps')) {
    const d = R['pg.duration'] || 6, sd = R['pg.send_duration'] || 4;
    const stores = [['sqlite', 'SQLite, 1 node'], ['n1', 'PostgreSQL, 1 node'], ['n2', 'PostgreSQL, 2 nodes'], ['n3', 'PostgreSQL, 3 nodes']].filter(([k]) => has(`pg.${k}.track.rps`) || has(`pg.${k}.send.rps`));
    const chk = (p) => (R[`${p}.check`] === undefined ? '—' : R[`${p}.check`] === 'ok' ? 'ok' : '**MISMATCH**');
    const pgNoisy = [];
    const oth = (p) => {
      const o = num(`${p}.cpu_machine`) - num(`${p}.cpu_server`) - num(`${p}.cpu_pg`) - num(`${p}.cpu_wrk`);
      return o;
    };
    out.push('', `### PostgreSQL (bench/pg.sh: N herald nodes on one database, N wrk -t1 -c${Math.round((Number(R['run.conns']) || 64))}/N at once, ${d} s runs; send ${sd} s then drain)`, '');
    out.push(`PostgreSQL ${R['pg.version'] || '?'}, throwaway cluster (scripts/pg-test.sh: ${R['pg.fsync'] === 'on' ? 'fsync, synchronous_commit and full_page_writes on (PG_FSYNC=on, as users run it)' : 'fsync=off, synchronous_commit=off, full_page_writes=off (PG_FSYNC=off)'}). Baselines from the same run: nginx fixed 200 with the same bodies and the same wrk shape: track ${int('pg.nginx.track.rps')} req/s, batch ${int('pg.nginx.batch.rps')} req/s; libcurl multi to the sink ${int('pg.curl.sink.rps')} req/s. Ratios: to SQLite 1 node / to the baseline.`, '');
    out.push('| store | /v1/track events/s (x SQLite; x nginx) | /v1/batch events/s (x SQLite; x nginx) | /send accepted/s | delivered/s (x SQLite; x libcurl) | checks track / batch / send |');
    out.push('| --- | --- | --- | --- | --- | --- |');
    for (const [k, label] of stores) {
      const p = `pg.${k}`;
      out.push(`| ${label} | ${int(`${p}.track.eps`)}${errs(`${p}.track`)} (${x(`${p}.track.eps`, 'pg.sqlite.track.eps')}; ${x(`${p}.track.rps`, 'pg.nginx.track.rps')}) | ${int(`${p}.batch.eps`)}${errs(`${p}.batch`)} (${x(`${p}.batch.eps`, 'pg.sqlite.batch.eps')}; ${x(`${p}.batch.rps`, 'pg.nginx.batch.rps')}) | ${int(`${p}.send.rps`)}${errs(`${p}.send`)} | ${int(`${p}.send.delivered_ps`)} (${x(`${p}.send.delivered_ps`, 'pg.sqlite.send.delivered_ps')}; ${x(`${p}.send.delivered_ps`, 'pg.curl.sink.rps')}) | ${chk(`${p}.track`)} ${int(`${p}.track.catalog_events`)} / ${chk(`${p}.batch`)} ${int(`${p}.batch.catalog_events`)} / ${chk(`${p}.send`)} ${int(`${p}.send.delivered`)} of ${int(`${p}.send.accepted`)} |`);
    }
    out.push('', 'CPU in cores during each run (herald: all nodes; postgres: the run database\'s backends and the cluster\'s background processes; others = machine - herald - postgres - wrk, bold above ' + NOISY + ': noisy; the sink counts as others in the send runs), PostgreSQL commits/s of the run\'s database (pg_stat_database.xact_commit) and the wait events of its active backends (pg_stat_activity every 0.5 s; CPU = no wait event).', '');
    out.push('| run | herald | postgres | wrk | machine | others | commits/s | wait events (share of samples) | p50 / p99 |');
    out.push('| --- | --- | --- | --- | --- | --- | --- | --- | --- |');
    for (const [k, label] of stores) {
      for (const c of ['track', 'batch', 'send']) {
        const p = `pg.${k}.${c}`;
        if (!has(`${p}.cpu_server`)) continue;
        const o = oth(p);
        if (o > NOISY) pgNoisy.push(`${label} ${c}`);
        out.push(`| ${label}, ${c} | ${cores(`${p}.cpu_server`)} | ${k === 'sqlite' ? '—' : cores(`${p}.cpu_pg`)} | ${cores(`${p}.cpu_wrk`)} | ${cores(`${p}.cpu_machine`)} | ${o > NOISY ? `**${o.toFixed(2)}**` : o.toFixed(2)} | ${k === 'sqlite' ? '—' : int(`${p}.pg_commits_ps`)} | ${k === 'sqlite' ? '—' : (R[`${p}.pg_waits`] || '').replace(/"/g, '') + (has(`${p}.pg_lock_pct`) ? `; all Lock waits ${R[`${p}.pg_lock_pct`]}%` : '')} | ${ms(`${p}.p50_ms`)} / ${ms(`${p}.p99_ms`)} |`);
      }
    }
    if (pgNoisy.length)
      out.push('', `**Noisy run**: other processes used more than ${NOISY} cores during: ${pgNoisy.join('; ')}. Rerun before comparing those.`);
  }
  growthTables(out, 'growth', 'SQLite');
  growthTables(out, 'growth.pg', 'PostgreSQL');
  out.push('', '### Where the time goes (same runs)', '');
  out.push('CPU in cores (CPU-seconds per second of the run; the machine has 2): the server\'s process(es), wrk, the whole machine, and the rest (machine - server - wrk: other tenants, the kernel\'s own threads; in bold above ' + NOISY + ' cores, a noisy neighbour).', '');
  out.push('| run | server | wrk | machine busy | others | store transactions / commits (per commit) |');
  out.push('| --- | --- | --- | --- | --- | --- |');
  const cpuStart = out.length;
  const noisy = [];
  const cpuRow = (label, p, store) => {
    if (!has(`${p}.cpu_server`)) return;
    const others = num(`${p}.cpu_machine`) - num(`${p}.cpu_server`) - num(`${p}.cpu_wrk`);
    if (others > NOISY) noisy.push(label);
    out.push(`| ${label} | ${cores(`${p}.cpu_server`)} | ${cores(`${p}.cpu_wrk`)} | ${cores(`${p}.cpu_machine`)} | ${others > NOISY ? `**${others.toFixed(2)}**` : others.toFixed(2)} | ${store || '—'} |`);
  };
  const st = (p) => (has(`${p}.store_transactions`) ? `${int(`${p}.store_transactions`)} / ${int(`${p}.store_commits`)} (${R[`${p}.tx_per_commit`]})` : '');
  cpuRow('nginx GET', 'nginx.get');
  cpuRow('nginx POST track body', 'nginx.track');
  cpuRow('nginx POST batch body', 'nginx.batch');
  cpuRow('herald /v1/track', 'herald.track', st('herald.track'));
  cpuRow('herald /v1/batch', 'herald.batch', st('herald.batch'));
  cpuRow('herald /send (accept phase)', 'send.accept', has('send.store_transactions') ? `${st('send')}, accept and drain` : '');
  if (has('send.deliver.cpu_server'))
    out.push(`| herald /send, accept + drain until delivered | ${cores('send.deliver.cpu_server')} | — | — | — | ${int('send.deliveries_sent')} deliveries |`);
  cpuRow('herald /send light load', 'send.light');
  cpuRow('nginx POST flow body', 'nginx.flow');
  cpuRow('herald flow (accept phase)', 'flow.sat', has('flow.store_transactions') ? `${st('flow')}, accept and drain` : '');
  if (has('flow.sat.drain_cpu_server')) {
    const others = num('flow.sat.drain_cpu_machine') - num('flow.sat.drain_cpu_server');
    if (others > NOISY) noisy.push('herald flow, accept + drain');
    out.push(`| herald flow, accept + drain until delivered (${R['flow.sat.drain_wall_s']} s) | ${cores('flow.sat.drain_cpu_server')} | (first ${R['run.flow_duration'] || 10} s only) | ${cores('flow.sat.drain_cpu_machine')} | ${others > NOISY ? `**${others.toFixed(2)}**` : others.toFixed(2)} (incl. wrk, sink) | ${int('flow.sat.herald_sent')} deliveries |`);
  }
  cpuRow('herald flow light load', 'flow.light');
  cpuRow('herald flow paced ~1,000 events/s', 'flow.paced');
  if (out.length === cpuStart) out.splice(cpuStart - 7, 7); // no run with CPU figures: no table
  if (noisy.length)
    out.push('', `**Noisy run**: other processes used more than ${NOISY} cores during: ${noisy.join('; ')}. Those figures understate what herald does alone; rerun before comparing.`);
  return out.join('\n');
}

const section = [
  BEGIN,
  '',
  '## Figures (generated by `make bench`, i.e. `bench/run.sh --write-docs`)',
  '',
  machine(),
  '',
  tables(),
  '',
  '<details><summary>raw results (key=value)</summary>',
  '',
  '```',
  raw.trim(),
  '```',
  '',
  '</details>',
  '',
  END,
].join('\n');

console.log(section);

if (docs) {
  const p = path.resolve(docs);
  let text = fs.existsSync(p) ? fs.readFileSync(p, 'utf8') : '';
  // the markers count only alone on their line (prose may quote them)
  const lineAt = (m, from = 0) => {
    for (let i = text.indexOf(m, from); i >= 0; i = text.indexOf(m, i + 1)) {
      const end = i + m.length;
      if ((i === 0 || text[i - 1] === '\n') && (end === text.length || text[end] === '\n')) return i;
    }
    return -1;
  };
  const b = lineAt(BEGIN);
  const e = b >= 0 ? lineAt(END, b) : -1;
  if (b >= 0 && e > b) {
    text = text.slice(0, b) + section + text.slice(e + END.length);
  } else {
    text = (text || '# Performance\n\nMethod: see bench/README.md.\n') + '\n' + section + '\n';
  }
  fs.writeFileSync(p, text);
  console.error(`report: wrote ${p}`);
}
