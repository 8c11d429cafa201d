// docs.test.mjs: the documentation says what the tree holds (no server needed). The
// README's layout names exactly the folders under src/; every relative Markdown link in
// README.md and docs/ points at a file that exists; the OpenAPI document does not list
// as missing what herald serves (the admin UI, PostgreSQL), and says which error is not
// {message, type} (cancel's 409, the message record, as in Courier).

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const read = (p) => fs.readFileSync(path.join(ROOT, p), 'utf8');

test("README's layout names exactly the folders under src/", () => {
  const readme = read('README.md');
  const m = /`src\/` has one folder per component \(([\s\S]*?)\);/.exec(readme);
  assert.ok(m, 'README.md has the "`src/` has one folder per component (...)" sentence');
  const named = [...m[1].matchAll(/`([a-z_]+)`/g)].map((x) => x[1]).sort();
  const dirs = fs
    .readdirSync(path.join(ROOT, 'src'), { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => d.name)
    .sort();
  assert.deepEqual(named, dirs, 'the folders README.md names are the folders src/ has');
});

test('relative Markdown links in README.md and docs/ resolve', () => {
  const files = ['README.md', 'bench/README.md'];
  const walk = (dir) => {
    for (const e of fs.readdirSync(path.join(ROOT, dir), { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.md')) files.push(p);
    }
  };
  walk('docs');
  const broken = [];
  for (const f of files) {
    if (!fs.existsSync(path.join(ROOT, f))) continue;
    const text = read(f);
    // [text](target) links, and `path` mentions that look like a relative .md path
    const targets = [...text.matchAll(/\]\(([^)\s]+)\)/g)].map((x) => x[1]);
    targets.push(...[...text.matchAll(/`(\.\.?\/[^`\s]+\.md)`/g)].map((x) => x[1]));
    for (const t of targets) {
      if (/^[a-z]+:/i.test(t) || t.startsWith('#')) continue;
      const file = t.split('#')[0];
      if (!fs.existsSync(path.resolve(ROOT, path.dirname(f), file))) broken.push(`${f}: ${t}`);
    }
  }
  assert.deepEqual(broken, [], `broken relative links:\n${broken.join('\n')}`);
});

test("the OpenAPI description's 'not implemented' list and error rule match what is served", () => {
  const doc = JSON.parse(read('docs/openapi.yaml'));
  const d = doc.info.description;
  const m = /Not implemented yet: ([^.]*)\./.exec(d);
  assert.ok(m, `info.description has a "Not implemented yet:" sentence: ${d}`);
  for (const served of ['admin UI', 'PostgreSQL']) {
    assert.ok(!m[1].includes(served), `"${served}" is served, yet listed as not implemented: ${m[0]}`);
  }
  assert.match(d, /cancel[^.]*409[^.]*message record/, 'info.description names the cancel 409 exception to {message, type}');
  assert.match(read('README.md'), /cancel`[^.]*409[^.]*message\s+record/, 'README.md names the cancel 409 exception');
});
