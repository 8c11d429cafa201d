#!/usr/bin/env node
// soak.mjs: `make soak`. Starts herald (HERALD_BIN; SQLite unless HERALD_TEST_STORE=
// postgres), measures its capacity (or takes SOAK_CAPACITY, units/s), then keeps steady
// load at SOAK_FRACTION (0.5) of it for SOAK_SECONDS (1800), a line every
// SOAK_WINDOW_SECONDS (10). Exits 1 when anything acknowledged was lost or delivered
// twice, when memory grew, or when latency grew (definitions in ../e2e/lib/soak.mjs);
// the summary goes to SOAK_REPORT (default build/soak/report.json) as well.
import fs from 'node:fs';
import path from 'node:path';

import { runSoak } from '../e2e/lib/soak.mjs';

const num = (name, dflt) => {
  const v = process.env[name];
  if (v === undefined || v === '') return dflt;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) {
    console.error(`soak: ${name}=${v}: need a positive number`);
    process.exit(2);
  }
  return n;
};

const seconds = num('SOAK_SECONDS', 1800);
const report = await runSoak({
  seconds,
  windowSeconds: num('SOAK_WINDOW_SECONDS', 10),
  warmupSeconds: num('SOAK_WARMUP_SECONDS', 60),
  capacity: num('SOAK_CAPACITY', undefined),
  capSeconds: num('SOAK_CAP_SECONDS', 15),
  fraction: num('SOAK_FRACTION', 0.5),
  name: 'make-soak',
});

const failures = [];
if (report.lost.length) failures.push(`${report.lost.length} acknowledged units never delivered (e.g. ${report.lost.slice(0, 5).join(', ')})`);
if (report.duplicates.length) failures.push(`${report.duplicates.length} units delivered more than once (e.g. ${report.duplicates.slice(0, 5).join(', ')})`);
if (report.redelivered > report.timeouts) failures.push(`${report.redelivered} units redelivered after only ${report.timeouts} timed-out calls (${report.lostLeases} leases lost)`);
if (report.redelivered) console.log(`soak: ${report.redelivered} deliveries repeated a unit's Idempotency-Key (calls retried after their answer was lost; at-least-once)`);
if (report.unexpected.length) failures.push(`${report.unexpected.length} refused units delivered anyway`);
if (report.errors) failures.push(`${report.errors} requests failed (5xx or transport)`);
if (!report.memory.ok) failures.push('memory grew');
if (!report.memory.checked) console.log(`soak: memory check skipped: ${report.memory.why}`);
if (!report.latency.ok) failures.push('latency grew');

const out = process.env.SOAK_REPORT || 'build/soak/report.json';
fs.mkdirSync(path.dirname(out), { recursive: true });
fs.writeFileSync(out, JSON.stringify({ seconds, ...report, failures }, null, 2) + '\n');
console.log(`soak: report in ${out}`);
if (failures.length) {
  console.log(`soak: FAILED: ${failures.join('; ')}`);
  process.exit(1);
}
console.log(`soak: passed: nothing lost, memory ${report.memory.checked ? 'flat' : 'not judged'}, latency flat`);
process.exit(0);
