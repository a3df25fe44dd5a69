// The npm package's face: what `npm pack` of build/wasm/package puts in the tarball (the entries, their types,
// both builds' loader files, the package's own README, the licence and the third-party notices: nothing else), that its package.json
// points only at files it ships, and that `npm publish --dry-run` has nothing to warn about (but the login
// it does not need for a dry run). Needs no network.
// Run with: FUNNEL_WASM_PACKAGE=… node --test tests/js/package.test.mjs
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const packageDir = process.env.FUNNEL_WASM_PACKAGE && path.resolve(process.env.FUNNEL_WASM_PACKAGE);
const skip = !packageDir ? 'set FUNNEL_WASM_PACKAGE to run this test'
  : !existsSync(path.join(packageDir, 'package.json')) ? `no package.json in ${packageDir}: rebuild the WASM package`
  : !existsSync(path.join(packageDir, 'threads/funnel_wasm.wasm')) ? 'no threaded build in the package (build/wasm-threads)'
  : false;

const SHIPPED = [
  'LICENSE', 'THIRD_PARTY_NOTICES', 'README.md', 'package.json',
  'index.mjs', 'index.cjs', 'api.mjs', 'threads.mjs', 'index.d.ts', 'index.d.mts', 'index.d.cts', 'threads.d.mts',
  'funnel_wasm.cjs', 'funnel_wasm.web.mjs', 'funnel_wasm.wasm',
  'threads/funnel_wasm.web.mjs', 'threads/funnel_wasm.wasm', 'threads/funnel_wasm.worker.js', 'threads/funnel_wasm.classic.js',
];

test('npm pack ships the package, its README, licence and third-party notices, and nothing else', { skip }, () => {
  const [packed] = JSON.parse(execFileSync('npm', ['pack', '--dry-run', '--json', packageDir], { encoding: 'utf8' }));
  assert.deepEqual(packed.files.map((file) => file.path).sort(), [...SHIPPED].sort());
  assert.equal(packed.name, 'funnel-recsys');
  const readme = readFileSync(path.join(packageDir, 'README.md'), 'utf8');
  assert.equal(readme, readFileSync(path.join(root, 'wasm/package/README.md'), 'utf8'));
  assert.equal(readFileSync(path.join(packageDir, 'LICENSE'), 'utf8'), readFileSync(path.join(root, 'LICENSE'), 'utf8'));
  assert.equal(readFileSync(path.join(packageDir, 'THIRD_PARTY_NOTICES'), 'utf8'),
               readFileSync(path.join(root, 'wasm/package/THIRD_PARTY_NOTICES'), 'utf8'));
});

test("package.json's entries and exports name files the package ships", { skip }, () => {
  const manifest = JSON.parse(readFileSync(path.join(packageDir, 'package.json'), 'utf8'));
  const targets = [manifest.main, manifest.module, manifest.types];
  const walk = (value) => (typeof value == 'string' ? targets.push(value) : Object.values(value).forEach(walk));
  walk(manifest.exports);
  for (const target of targets) assert.ok(SHIPPED.includes(target.replace(/^\.\//, '')), `${target} is not shipped`);
  assert.deepEqual(Object.keys(manifest.exports), ['.', './threads', './package.json']);
  assert.equal(manifest.license, 'Apache-2.0');
  assert.match(manifest.version, /^\d+\.\d+\.\d+$/);
});

test('npm publish --dry-run warns of nothing but the login a dry run does not need', { skip }, () => {
  const result = spawnSync('npm', ['publish', '--dry-run', '--registry=https://registry.npmjs.org/', packageDir],
                           { encoding: 'utf8', cwd: packageDir });
  assert.equal(result.status, 0, result.stderr);
  const warnings = `${result.stdout}\n${result.stderr}`.split('\n')
    .filter((line) => /^npm (warn|WARN|error|ERR)/.test(line) && !/requires you to be logged in/.test(line));
  assert.deepEqual(warnings, []);
});

test('npm pack refuses a package without the threaded build (its prepack script)', { skip }, () => {
  const copy = mkdtempSync(path.join(tmpdir(), 'funnel-package-'));
  try {
    cpSync(packageDir, copy, { recursive: true, filter: (source) => path.relative(packageDir, source) !== 'threads' });
    const result = spawnSync('npm', ['pack', '--dry-run', copy], { encoding: 'utf8', cwd: copy });
    assert.notEqual(result.status, 0);
    assert.match(result.stderr, /threads\/funnel_wasm\.wasm is missing/);
    assert.equal(spawnSync('npm', ['pack', '--dry-run', packageDir], { encoding: 'utf8', cwd: packageDir }).status, 0);
  } finally {
    rmSync(copy, { recursive: true, force: true });
  }
});
