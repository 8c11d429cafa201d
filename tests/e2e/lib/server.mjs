// server.mjs: the e2e harness. Starts the real herald binary (HERALD_BIN) on a free
// port with a fresh SQLite store in a temp dir, captures its output, and talks to it.
// With HERALD_TEST_STORE=postgres (HERALD_TEST_PG_DSN required), each store dir is
// paired with a fresh PostgreSQL database instead (see dsnFor), dropped at exit.
//
//   const srv = await startServer({ t });          // t: the node:test context (optional)
//   const r = await srv.request('GET', '/admin/queue', { auth: 'admin' });
//   const { code, ms } = await srv.stop();          // SIGTERM; checks sanitizer reports
//
// Output of every server goes to arrays (srv.stdout, srv.stderr: lines) and to
// tests/e2e/artifacts/<test name>.log for debugging. Servers still running when the
// test process ends are killed (process 'exit', SIGINT, SIGTERM); pass `t` to have
// srv.stop() run in t.after(), or call stopAll() from an after() hook.
//
// Sanitizers: an ASan, UBSan or ThreadSanitizer report in a server's (or a CLI run's)
// stderr fails the test at stop(); a report from a server that was never stopped fails
// the test file at exit. HERALD_E2E_TIME_SCALE (a number, default 1; `make
// VARIANT=tsan e2e` sets it) multiplies the harness's time limits and those the tests
// take through scaled() and waitFor(), for slow builds such as TSan.

import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const ARTIFACTS = path.resolve(HERE, '..', 'artifacts');
/** tests/tsan.supp: the ThreadSanitizer suppressions (third-party libraries only). */
export const TSAN_SUPPRESSIONS = path.resolve(HERE, '..', '..', 'tsan.supp');

/** HERALD_E2E_TIME_SCALE: how much slower than a release build the binary is (TSan:
 *  5-15x). Time limits (not the sleeps that let something happen) are multiplied. */
export const TIME_SCALE = (() => {
  const v = process.env.HERALD_E2E_TIME_SCALE;
  if (v === undefined || v === '') return 1;
  const n = Number(v);
  if (!(n >= 1 && n <= 100)) throw new Error(`HERALD_E2E_TIME_SCALE=${v}: must be a number from 1 to 100`);
  return n;
})();

/** A time limit in ms, scaled by HERALD_E2E_TIME_SCALE. */
export const scaled = (ms) => Math.round(ms * TIME_SCALE);

const START_TIMEOUT_MS = scaled(15000);
const POLL_MS = 50;
const STOP_TIMEOUT_MS = scaled(15000); // after this, stop() kills with SIGKILL and reports it
const REQUEST_TIMEOUT_MS = scaled(15000);

/* ---- environment ------------------------------------------------------------------- */

/** The binary under test; throws a clear error when HERALD_BIN is missing. */
export function heraldBin() {
  const bin = process.env.HERALD_BIN;
  if (!bin) throw new Error('HERALD_BIN is not set: point it at the herald binary (scripts/run-e2e.sh does)');
  try {
    fs.accessSync(bin, fs.constants.X_OK);
  } catch {
    throw new Error(`HERALD_BIN=${bin} is not executable`);
  }
  return path.resolve(bin);
}

/** The environment for a child: ours without HERALD_* (a developer's HERALD_STORE must
 *  not leak in), sanitizer options set unless already set, plus `extra`. */
function childEnv(extra = {}) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith('HERALD_')) env[k] = v;
  }
  // leaks are checked by the unit tests; here a report must abort and fail the test
  env.ASAN_OPTIONS ??= 'abort_on_error=1:detect_leaks=0';
  env.UBSAN_OPTIONS ??= 'halt_on_error=1:print_stacktrace=1';
  // TSan: every race is reported (not only the first) and the test fails at stop() on
  // the stderr text; exit code 66 also marks the exit. A longer history keeps the stack
  // of the earlier access; the suppressions cover third-party libraries only.
  env.TSAN_OPTIONS ??= `halt_on_error=0:exitcode=66:second_deadlock_stack=1:history_size=4:suppressions=${TSAN_SUPPRESSIONS}`;
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined || v === null) delete env[k];
    else env[k] = String(v);
  }
  return env;
}

const SANITIZER_PATTERNS = ['ERROR: AddressSanitizer', 'ERROR: LeakSanitizer', 'runtime error:', 'WARNING: ThreadSanitizer', 'ThreadSanitizer:'];

/** Throws when text (or a server's stderr) holds an ASan/UBSan/TSan report. */
export function assertNoSanitizerReports(serverOrText, what = 'herald') {
  const text = typeof serverOrText === 'string' ? serverOrText : serverOrText.stderr.join('\n');
  for (const p of SANITIZER_PATTERNS) {
    const i = text.indexOf(p);
    if (i >= 0) {
      const from = Math.max(0, text.lastIndexOf('\n', Math.max(0, i - 2000)));
      throw new Error(`${what}: sanitizer report in stderr ("${p}"):\n${text.slice(from, i + 4000)}`);
    }
  }
}

/* ---- small helpers ------------------------------------------------------------------- */

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** sanitized(pid) -> true when the process runs under ASan or TSan (its runtime is
 *  mapped): memory figures are the sanitizer's there, not herald's. */
export function sanitized(pid) {
  try {
    return /libasan|libtsan|libclang_rt\.[at]san/.test(fs.readFileSync(`/proc/${pid}/maps`, 'utf8'));
  } catch {
    return false;
  }
}

/** Poll fn (sync or async) every intervalMs until it returns a truthy value; return it.
 *  On timeout throw, naming `what` and the last value or error seen. A herald that
 *  crashes meanwhile (a fatal signal no test sent) ends the wait at once, with its log. */
export async function waitFor(fn, { timeout: limit = 10000, interval = POLL_MS, what = 'condition' } = {}) {
  const timeout = scaled(limit);
  const deadline = Date.now() + timeout;
  const crashesBefore = crashes.length;
  let last;
  for (;;) {
    if (crashes.length > crashesBefore) throw new Error(`while waiting for ${what}: ${crashes[crashesBefore]}`);
    try {
      const v = await fn();
      if (v) return v;
      last = v;
    } catch (e) {
      last = e;
    }
    if (Date.now() >= deadline) {
      const detail = last instanceof Error ? last.message : JSON.stringify(last);
      throw new Error(`timed out after ${timeout} ms waiting for ${what} (last: ${detail})`);
    }
    await sleep(interval);
  }
}

/* The kernel hands out local ports for outgoing connections from this range; a port a
 * test holds by number only (a sink that starts later, a server about to start) must lie
 * outside it, or one of herald's own outgoing connections can take it in the meantime
 * (seen in CI: EADDRINUSE on a webhook sink that started after a 60 s outage). */
function ephemeralRange() {
  try {
    const [lo, hi] = fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    if (lo > 0 && hi >= lo) return [lo, hi];
  } catch {
    /* not Linux: fall through */
  }
  return [32768, 60999];
}

function tryListen(port) {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.unref();
    s.on('error', () => resolve(0));
    s.listen(port, '127.0.0.1', () => {
      const got = s.address().port;
      s.close(() => resolve(got));
    });
  });
}

// Ports the Fetch standard calls bad: Node's fetch refuses them ("bad port") before
// connecting, so a server there never answers the harness's /healthz (a CI run drew 10080
// and failed a test with "did not answer 200 within 15000 ms"). Of the list, only 10080
// lies in the range freePort draws from; the others are below 10000.
const FETCH_BAD_PORTS = new Set([10080]);

/** A TCP port on 127.0.0.1 free right now, below the kernel's ephemeral range (so no
 *  outgoing connection takes it before the caller listens on it), and one fetch uses. */
export async function freePort() {
  const [lo] = ephemeralRange();
  const base = 10000;
  if (lo - base > 1000) {
    for (let i = 0; i < 50; i++) {
      const pick = base + Math.floor(Math.random() * (lo - base));
      if (FETCH_BAD_PORTS.has(pick)) continue;
      const port = await tryListen(pick);
      if (port) return port;
    }
  }
  for (let i = 0; i < 10; i++) {
    const port = await tryListen(0);
    if (!port) break;
    if (!FETCH_BAD_PORTS.has(port)) return port;
  }
  throw new Error('no free TCP port on 127.0.0.1');
}

/** Parse Prometheus text into [{name, labels: {k: v}, value}] (comments skipped). */
export function parseMetrics(text) {
  const out = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+\S+)?$/.exec(line);
    if (!m) continue;
    const labels = {};
    if (m[3]) {
      const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
      let lm;
      while ((lm = re.exec(m[3]))) labels[lm[1]] = lm[2].replace(/\\(.)/g, (_, c) => (c === 'n' ? '\n' : c));
    }
    const v = m[4] === '+Inf' ? Infinity : m[4] === '-Inf' ? -Infinity : Number(m[4]);
    out.push({ name: m[1], labels, value: v });
  }
  return out;
}

/** The value of the sample `name` whose labels include all of `labels`; undefined if none. */
export function metricValue(samplesOrText, name, labels = {}) {
  const samples = typeof samplesOrText === 'string' ? parseMetrics(samplesOrText) : samplesOrText;
  const s = samples.find(
    (x) => x.name === name && Object.entries(labels).every(([k, v]) => x.labels[k] === String(v)),
  );
  return s ? s.value : undefined;
}

function safeName(s) {
  return String(s).replace(/[^a-zA-Z0-9._-]+/g, '_').replace(/^_+|_+$/g, '').slice(0, 100) || 'server';
}

/** Splits a stream into lines, calling onLine for each complete line (and the rest at end). */
function lineSplitter(stream, onLine) {
  let partial = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk) => {
    partial += chunk;
    let i;
    while ((i = partial.indexOf('\n')) >= 0) {
      onLine(partial.slice(0, i).replace(/\r$/, ''));
      partial = partial.slice(i + 1);
    }
  });
  stream.on('end', () => {
    if (partial) onLine(partial);
    partial = '';
  });
}

/* ---- live process registry and cleanup -------------------------------------------- */

const live = new Set(); // Server objects with a running process
/* A herald killed by a signal that means a crash (not one a test sent): never expected.
 * Each crash is described here (exit, log tail); waitFor() and stop() fail on it. */
const CRASH_SIGNALS = new Set(['SIGSEGV', 'SIGABRT', 'SIGBUS', 'SIGILL', 'SIGFPE', 'SIGTRAP', 'SIGSYS']);
const crashes = [];
const unchecked = new Set(); // Server objects whose stderr stop() has not checked yet
const tempDirs = new Set();

/** At exit: a sanitizer report or a crash of a server that no stop() checked fails the
 *  file. */
function checkUncheckedSync() {
  for (const s of unchecked) {
    try {
      assertNoSanitizerReports(s, `herald (${path.basename(s.logPath)}, never stopped)`);
      assertNoCrash(s);
    } catch (e) {
      process.stderr.write(`e2e: ${e.message}\n`);
      process.exitCode = 1;
    }
  }
  unchecked.clear();
}

/** Throws when a run of server s ended by a crash signal (see CRASH_SIGNALS). */
function assertNoCrash(s) {
  const run = s.runs.find((r) => r.crash);
  if (run) throw new Error(run.crash);
}

function killAllSync() {
  for (const s of live) {
    try {
      s.proc.kill('SIGKILL');
    } catch {
      /* already gone */
    }
  }
  live.clear();
}

function removeTempDirsSync() {
  if (process.env.HERALD_E2E_KEEP) return;
  for (const d of tempDirs) {
    try {
      fs.rmSync(d, { recursive: true, force: true });
    } catch {
      /* best effort */
    }
  }
  tempDirs.clear();
}

process.on('exit', () => {
  checkUncheckedSync();
  killAllSync();
  removeTempDirsSync();
  dropPgDatabasesSync();
});
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.once(sig, () => {
    killAllSync();
    removeTempDirsSync();
    dropPgDatabasesSync();
    process.exit(sig === 'SIGINT' ? 130 : 143);
  });
}

/** Stop every server still running (SIGTERM, then SIGKILL after a timeout).
 *  For after() hooks; throws the first sanitizer report found. */
export async function stopAll() {
  const errors = [];
  for (const s of [...live]) {
    try {
      await s.stop();
    } catch (e) {
      errors.push(e);
    }
  }
  if (errors.length) throw errors[0];
}

let serial = 0;

/** Make a fresh temp dir (removed when the test process exits unless HERALD_E2E_KEEP=1). */
export function makeTempDir(prefix = 'herald-e2e-') {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  tempDirs.add(d);
  return d;
}

/* ---- the store: SQLite (default) or PostgreSQL ---------------------------------------- */

/** 'sqlite' or 'postgres' (HERALD_TEST_STORE). */
export const STORE = (() => {
  const v = process.env.HERALD_TEST_STORE || 'sqlite';
  if (v !== 'sqlite' && v !== 'postgres') throw new Error(`HERALD_TEST_STORE=${v}: must be sqlite or postgres`);
  return v;
})();
export const isPostgres = STORE === 'postgres';

/** In PostgreSQL mode, a killed node's leases are not ended when a node starts (another
 *  node may own them), so its in-flight jobs wait for the lease to end. Servers here get
 *  3 s leases (scaled for sanitizer builds) instead of 60 s: provider calls are bounded
 *  by a 10 s timeout, but in the tests the sinks answer at once. A job starts with at
 *  least half its lease left (the queue gives back the others) and must commit within
 *  it, or a live node loses it and the job runs twice: under ASan, with three nodes and
 *  PostgreSQL on two slow cores, an unscaled 1.5 s was once not enough (multinode: a
 *  route job lost on a live node, its message delivered twice). */
export const PG_LEASE_MS = scaled(3000);

function pgAdminDsn() {
  const dsn = process.env.HERALD_TEST_PG_DSN;
  if (!dsn)
    throw new Error(
      'HERALD_TEST_STORE=postgres but HERALD_TEST_PG_DSN is not set: start a cluster ' +
        '(HERALD_TEST_PG_DSN=$(scripts/pg-test.sh start)) or run `make test`',
    );
  return dsn;
}

/** dsn with its database replaced by db. */
export function pgDsnWithDb(dsn, db) {
  const m = /^(postgres(?:ql)?:\/\/[^/?]*)(?:\/[^?]*)?(\?.*)?$/.exec(dsn);
  if (!m) throw new Error(`HERALD_TEST_PG_DSN=${dsn}: expected postgres://USER@HOST:PORT/DB`);
  return `${m[1]}/${db}${m[2] ?? ''}`;
}

/** Run SQL statements with psql against the admin DSN; throws with psql's output. */
export function psql(statements, { dsn = pgAdminDsn(), tuples = false } = {}) {
  const a = [dsn, '-v', 'ON_ERROR_STOP=1', '-X', '-q'];
  if (tuples) a.push('-tA');
  for (const st of [].concat(statements)) a.push('-c', st);
  const r = spawnSync('psql', a, { encoding: 'utf8', timeout: 30000 });
  if (r.error) throw new Error(`psql: ${r.error.message} (is the postgresql-client package installed?)`);
  if (r.status !== 0) throw new Error(`psql ${[].concat(statements).join('; ')}: exit ${r.status}: ${r.stderr}`);
  return r.stdout;
}

const pgDatabases = new Map(); // store dir -> database name

function dropPgDatabasesSync() {
  if (!pgDatabases.size || process.env.HERALD_E2E_KEEP) return;
  try {
    psql([...new Set(pgDatabases.values())].map((db) => `DROP DATABASE IF EXISTS ${db} WITH (FORCE)`));
  } catch (e) {
    process.stderr.write(`e2e: dropping the test databases failed (best effort): ${e.message}\n`);
  }
  pgDatabases.clear();
}

/** The store DSN of a store dir: sqlite:DIR/herald.db, or in PostgreSQL mode the DSN of
 *  the database paired with DIR (created on first use, so a new dir is a new database
 *  and restarts, reuse of the dir and the CLI helper see the same one). */
export function dsnFor(dir) {
  if (!isPostgres) return `sqlite:${path.join(dir, 'herald.db')}`;
  let db = pgDatabases.get(dir);
  if (!db) {
    db = `herald_e2e_${process.pid}_${Math.random().toString(36).slice(2, 10)}`;
    psql(`CREATE DATABASE ${db}`);
    pgDatabases.set(dir, db);
  }
  return pgDsnWithDb(pgAdminDsn(), db);
}

/* ---- the server ------------------------------------------------------------------ */

/** The allowlist servers get by default: the loopback blocks the test sinks listen on. */
export const LOOPBACK_ALLOW = '127.0.0.0/8,::1/128';

/**
 * startServer(opts) -> Promise<Server>
 *   opts.t          node:test context: names the log file, registers stop() in t.after()
 *   opts.name       log file name (default: the test's name, or the test file's)
 *   opts.dir        reuse this store dir instead of a fresh one
 *   opts.port       listen on this port instead of a free one
 *   opts.via        'flags' (default): --listen, --store, --log-level as flags;
 *                   'env': HERALD_LISTEN, HERALD_STORE, HERALD_LOG_LEVEL instead
 *   opts.logLevel   'info' by default; null: pass none
 *   opts.args       extra arguments after the defaults
 *   opts.env        extra environment (a null/undefined value removes a variable)
 *   opts.egressAllow the egress allowlist (--egress-allow / HERALD_EGRESS_ALLOW); by
 *                   default LOOPBACK_ALLOW, since the tests' sinks listen on loopback;
 *                   null: none (webhooks and fetch-data to loopback are refused)
 *   opts.expectKeys wait for the two HERALD_*_KEY lines (default: true for a fresh dir)
 *   opts.timeout    start timeout in ms (default 15000)
 */
export async function startServer(opts = {}) {
  const bin = heraldBin();
  const dir = opts.dir ?? makeTempDir();
  const port = opts.port ?? (await freePort());
  const testName = opts.name ?? opts.t?.name ?? path.basename(process.argv[1] ?? 'e2e', '.test.mjs');
  serial += 1;
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const logPath = path.join(ARTIFACTS, `${safeName(path.basename(process.argv[1] ?? 'e2e', '.test.mjs'))}--${safeName(testName)}--${serial}.log`);
  const srv = new Server({ bin, dir, port, opts, logPath });
  if (opts.t && typeof opts.t.after === 'function') {
    opts.t.after(() => srv.stop());
  }
  await srv._start({ expectKeys: opts.expectKeys ?? opts.dir === undefined, first: true });
  return srv;
}

class Server {
  constructor({ bin, dir, port, opts, logPath }) {
    this.bin = bin;
    this.dir = dir;
    this.port = port;
    this.url = `http://127.0.0.1:${port}`;
    this.opts = opts;
    this.logPath = logPath;
    this.stdout = []; // all runs
    this.stderr = [];
    this.runs = []; // per start: {stdout, stderr, proc, exited, result}
    this.adminKey = undefined;
    this.writeKey = undefined;
    this.proc = undefined;
    try {
      fs.writeFileSync(logPath, '');
    } catch {
      /* debugging aid only */
    }
  }

  /** The current (last) run: {stdout: [], stderr: [], proc, result}. */
  get run() {
    return this.runs[this.runs.length - 1];
  }

  /** stderr lines (the log) of every run so far. */
  logs() {
    return [...this.stderr];
  }

  /** Everything captured, for assertion messages. */
  output() {
    return `--- stdout\n${this.stdout.join('\n')}\n--- stderr\n${this.stderr.join('\n')}`;
  }

  args() {
    const o = this.opts;
    const a = ['serve'];
    if ((o.via ?? 'flags') === 'flags') {
      a.push('--listen', `127.0.0.1:${this.port}`, '--store', dsnFor(this.dir));
      const lvl = o.logLevel === undefined ? 'info' : o.logLevel;
      if (lvl !== null) a.push('--log-level', lvl);
      if (isPostgres) a.push('--lease-ms', String(PG_LEASE_MS));
      const allow = o.egressAllow === undefined ? LOOPBACK_ALLOW : o.egressAllow;
      if (allow !== null) a.push('--egress-allow', allow);
    }
    return a.concat(o.args ?? []);
  }

  env() {
    const o = this.opts;
    const e = {};
    if (o.via === 'env') {
      e.HERALD_LISTEN = `127.0.0.1:${this.port}`;
      e.HERALD_STORE = dsnFor(this.dir);
      const lvl = o.logLevel === undefined ? 'info' : o.logLevel;
      if (lvl !== null) e.HERALD_LOG_LEVEL = lvl;
      if (isPostgres) e.HERALD_LEASE_MS = PG_LEASE_MS;
      const allow = o.egressAllow === undefined ? LOOPBACK_ALLOW : o.egressAllow;
      if (allow !== null) e.HERALD_EGRESS_ALLOW = allow;
    }
    return childEnv({ ...e, ...(o.env ?? {}) });
  }

  _log(text) {
    try {
      fs.appendFileSync(this.logPath, text);
    } catch {
      /* debugging aid only */
    }
  }

  async _start({ expectKeys, first }) {
    if (this.run && !this.run.result) throw new Error('herald: already running');
    const args = this.args();
    const env = this.env();
    const run = { stdout: [], stderr: [], proc: undefined, result: undefined, exited: undefined };
    this.runs.push(run);
    this._log(`=== ${new Date().toISOString()} start: ${this.bin} ${args.join(' ')}\n`);
    const proc = spawn(this.bin, args, { cwd: this.dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
    run.proc = proc;
    this.proc = proc;
    live.add(this);
    unchecked.add(this);

    lineSplitter(proc.stdout, (line) => {
      run.stdout.push(line);
      this.stdout.push(line);
      this._log(`[out] ${line}\n`);
      if (first) {
        let m;
        if ((m = /^HERALD_ADMIN_KEY=(\S+)$/.exec(line)) && !this.adminKey) this.adminKey = m[1];
        if ((m = /^HERALD_WRITE_KEY=(\S+)$/.exec(line)) && !this.writeKey) this.writeKey = m[1];
      }
    });
    lineSplitter(proc.stderr, (line) => {
      run.stderr.push(line);
      this.stderr.push(line);
      this._log(`[err] ${line}\n`);
    });

    let spawnError;
    run.exited = new Promise((resolve) => {
      let exitAt;
      proc.on('error', (e) => {
        spawnError = e;
        run.result = { code: null, signal: null, ms: 0, error: e };
        live.delete(this);
        resolve(run.result);
      });
      proc.on('exit', () => {
        exitAt = Date.now();
      });
      // 'close': exited and stdout/stderr drained, so the output is complete
      proc.on('close', (code, signal) => {
        if (run.result) return;
        run.result = { code, signal, at: exitAt ?? Date.now() };
        live.delete(this);
        this._log(`=== exit code=${code} signal=${signal}\n`);
        if (CRASH_SIGNALS.has(signal) && run.sent !== signal) {
          run.crash = `herald (${path.basename(this.logPath)}) crashed: ${signal}; its log ends:\n${run.stderr.slice(-40).join('\n')}`;
          crashes.push(run.crash);
        }
        resolve(run.result);
      });
    });

    const timeout = this.opts.timeout === undefined ? START_TIMEOUT_MS : scaled(this.opts.timeout);
    const deadline = Date.now() + timeout;
    const early = run.exited.then((r) => {
      throw new Error(
        `herald exited during start (code=${r.code} signal=${r.signal}${spawnError ? ` error=${spawnError.message}` : ''}):\n${this.output()}`,
      );
    });
    early.catch(() => {}); // handled through the race below

    const ready = (async () => {
      for (;;) {
        if (run.result) return early;
        try {
          const r = await fetch(`${this.url}/healthz`, { signal: AbortSignal.timeout(scaled(2000)) });
          await r.arrayBuffer();
          if (r.status === 200) break;
        } catch {
          /* not listening yet */
        }
        if (Date.now() >= deadline) throw new Error(`herald: /healthz did not answer 200 within ${timeout} ms:\n${this.output()}`);
        await sleep(POLL_MS);
      }
      if (expectKeys) {
        while (!(this.adminKey && this.writeKey)) {
          if (run.result) return early;
          if (Date.now() >= deadline)
            throw new Error(`herald: the first start did not print HERALD_ADMIN_KEY= and HERALD_WRITE_KEY= on stdout within ${timeout} ms:\n${this.output()}`);
          await sleep(POLL_MS);
        }
      }
    })();

    try {
      await Promise.race([ready, early]);
    } catch (e) {
      this.kill9Sync();
      throw e;
    }
  }

  kill9Sync() {
    if (this.run && !this.run.result) {
      try {
        this.run.proc.kill('SIGKILL');
      } catch {
        /* gone */
      }
    }
  }

  /** Send `signal`, wait for the exit (SIGKILL after 15 s), check for sanitizer reports.
   *  Resolves {code, signal, ms} (ms: from the signal to the exit). Idempotent. */
  async stop(signal = 'SIGTERM') {
    const run = this.run;
    if (!run) return { code: null, signal: null, ms: 0 };
    let ms = 0;
    if (!run.result) {
      const t0 = Date.now();
      run.sent = signal;
      run.proc.kill(signal);
      let timer;
      const timedOut = await Promise.race([
        run.exited.then(() => false),
        new Promise((r) => {
          timer = setTimeout(() => r(true), STOP_TIMEOUT_MS);
        }),
      ]);
      clearTimeout(timer);
      if (timedOut) {
        run.proc.kill('SIGKILL');
        await run.exited;
        run.result.timedOut = true;
      }
      ms = run.result.at - t0;
      run.result.ms = ms;
    }
    unchecked.delete(this);
    assertNoSanitizerReports(this);
    assertNoCrash(this);
    const { code, signal: sig, timedOut } = run.result;
    return { code, signal: sig, ms: run.result.ms ?? ms, ...(timedOut ? { timedOut } : {}) };
  }

  /** kill -9 and wait for the exit. */
  async kill9() {
    return this.stop('SIGKILL');
  }

  /** Start again on the same dir and port (stopping first with SIGTERM if running).
   *  Keys stay those of the first start; a restart is expected to print none. */
  async restart(extra = {}) {
    if (this.run && !this.run.result) await this.stop();
    await this._start({ expectKeys: false, first: false, ...extra });
    return this;
  }

  /** auth: 'admin' (Bearer admin key), 'write' (Basic writeKey:), 'none', or a full
   *  Authorization header value. */
  authHeader(auth) {
    if (!auth || auth === 'none') return undefined;
    if (auth === 'admin') {
      if (!this.adminKey) throw new Error('no admin key known for this server');
      return `Bearer ${this.adminKey}`;
    }
    if (auth === 'write') {
      if (!this.writeKey) throw new Error('no write key known for this server');
      return `Basic ${Buffer.from(`${this.writeKey}:`).toString('base64')}`;
    }
    return auth;
  }

  /** request(method, path, {headers, body, json, auth, timeout}) -> {status, headers, body, json}
   *  json: sent as the body with Content-Type application/json (unless given).
   *  The response's json is its parsed body, or undefined if it is not JSON. */
  async request(method, p, { headers = {}, body, json, auth = 'none', timeout: limit } = {}) {
    const timeout = limit === undefined ? REQUEST_TIMEOUT_MS : scaled(limit);
    const h = { ...headers };
    const a = this.authHeader(auth);
    if (a !== undefined) h.Authorization = a;
    let b = body;
    if (json !== undefined) {
      b = JSON.stringify(json);
      if (!Object.keys(h).some((k) => k.toLowerCase() === 'content-type')) h['Content-Type'] = 'application/json';
    }
    const res = await fetch(this.url + p, { method, headers: h, body: b, signal: AbortSignal.timeout(timeout) });
    const text = await res.text();
    let parsed;
    try {
      parsed = text.length ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    return { status: res.status, headers: res.headers, body: text, json: parsed };
  }

  /** GET /metrics parsed: {text, samples}. */
  async metrics() {
    const r = await this.request('GET', '/metrics');
    if (r.status !== 200) throw new Error(`GET /metrics: ${r.status} ${r.body}`);
    return { text: r.body, samples: parseMetrics(r.body) };
  }

  /** Wait for a stderr line matching re (RegExp or predicate); returns the line. */
  async waitForLog(re, { timeout = 5000 } = {}) {
    const test = typeof re === 'function' ? re : (l) => re.test(l);
    return waitFor(() => this.stderr.find(test), { timeout, what: `a log line matching ${re}` });
  }
}

/**
 * rawRequest(port, {method, path, headers, body}) -> Promise<{status, headers, body}>
 * One HTTP/1.1 request over a plain socket with Connection: close. Like curl, it sends
 * the headers, then waits up to earlyMs for an early final answer (e.g. 413 from the
 * Content-Length alone) before sending the body, so a server that answers and closes
 * is seen answering (fetch would report a reset). A 100 Continue is skipped.
 */
export function rawRequest(port, { method = 'GET', path: p = '/', headers = {}, body, timeout: limit, earlyMs = 1000 } = {}) {
  const timeout = limit === undefined ? REQUEST_TIMEOUT_MS : scaled(limit);
  return new Promise((resolve, reject) => {
    const buf = body === undefined ? Buffer.alloc(0) : Buffer.isBuffer(body) ? body : Buffer.from(body);
    const h = { Host: `127.0.0.1:${port}`, Connection: 'close', ...headers };
    if (body !== undefined && !Object.keys(h).some((k) => k.toLowerCase() === 'content-length')) h['Content-Length'] = String(buf.length);
    const head = `${method} ${p} HTTP/1.1\r\n${Object.entries(h).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`;
    const chunks = [];
    let done = false;
    const sock = net.connect(port, '127.0.0.1');
    const timer = setTimeout(() => finish(new Error(`rawRequest: no complete response within ${timeout} ms`)), timeout);
    // the response once complete (all of Content-Length), or at the end of the
    // connection whatever arrived; null before the status line and headers
    function parse(final = false) {
      let all = Buffer.concat(chunks).toString('latin1');
      // skip interim 1xx responses
      while (/^HTTP\/1\.[01] 1\d\d/.test(all) && all.includes('\r\n\r\n')) all = all.slice(all.indexOf('\r\n\r\n') + 4);
      const end = all.indexOf('\r\n\r\n');
      if (end < 0) return null;
      const lines = all.slice(0, end).split('\r\n');
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0]);
      if (!m) return null;
      const hdrs = {};
      for (const l of lines.slice(1)) {
        const i = l.indexOf(':');
        if (i > 0) hdrs[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
      }
      const rest = all.slice(end + 4);
      if (!final && hdrs['content-length'] !== undefined && rest.length < Number(hdrs['content-length'])) return null;
      return { status: Number(m[1]), headers: hdrs, body: Buffer.from(rest, 'latin1').toString('utf8') };
    }
    function finish(err) {
      if (done) return;
      const r = parse(Boolean(err));
      if (r) {
        done = true;
        clearTimeout(timer);
        sock.destroy();
        resolve(r);
      } else if (err) {
        done = true;
        clearTimeout(timer);
        sock.destroy();
        reject(err);
      }
    }
    sock.on('data', (d) => chunks.push(d));
    sock.on('end', () => finish(new Error('rawRequest: connection closed before a response')));
    sock.on('close', () => finish(new Error('rawRequest: connection closed before a response')));
    sock.on('error', (e) => {
      // the server may answer early (413) and reset while we still write
      setTimeout(() => finish(e), 200);
    });
    let bodyStarted = false;
    let earlyTimer;
    function startBody() {
      if (bodyStarted || done) return;
      bodyStarted = true;
      clearTimeout(earlyTimer);
      // write the body in pieces so an early answer is seen, then end our side
      let off = 0;
      const step = 64 * 1024;
      const writeMore = () => {
        while (off < buf.length && !done && !sock.destroyed) {
          const ok = sock.write(buf.subarray(off, off + step));
          off += step;
          if (!ok) {
            sock.once('drain', writeMore);
            return;
          }
        }
      };
      writeMore();
    }
    sock.on('data', () => {
      // an early final answer ends the exchange; a 100 Continue starts the body
      const r = parse();
      if (r && !bodyStarted) finish();
      else if (!bodyStarted && /^HTTP\/1\.[01] 100/.test(Buffer.concat(chunks).toString('latin1'))) startBody();
    });
    sock.on('connect', () => {
      sock.write(head);
      if (buf.length === 0) return;
      earlyTimer = setTimeout(startBody, earlyMs);
    });
  });
}

/**
 * herald(args, {dir, env, timeout, input}) -> {status, signal, stdout, stderr}
 * Run a CLI subcommand synchronously. With `dir`, `--store DSN` is appended: DIR's
 * SQLite file, or in PostgreSQL mode DIR's database (dsnFor). Throws if the run left a sanitizer report on stderr.
 */
export function herald(args, { dir, env = {}, timeout = 30000, input } = {}) {
  const bin = heraldBin();
  const a = dir === undefined ? [...args] : [...args, '--store', dsnFor(dir)];
  const r = spawnSync(bin, a, {
    cwd: dir ?? os.tmpdir(),
    env: childEnv(env),
    encoding: 'utf8',
    timeout: scaled(timeout),
    input,
    killSignal: 'SIGKILL',
  });
  if (r.error && r.error.code !== 'ETIMEDOUT') throw r.error;
  const out = { status: r.status, signal: r.signal, stdout: r.stdout ?? '', stderr: r.stderr ?? '', timedOut: r.error?.code === 'ETIMEDOUT' };
  assertNoSanitizerReports(out.stderr, `herald ${args.join(' ')}`);
  return out;
}
