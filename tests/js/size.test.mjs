// The size budget: what a page downloads for the default (single-threaded) build — the .wasm, its loader
// (funnel_wasm.web.mjs in browsers, funnel_wasm.cjs in Node: the larger counts) and the ES-module entry with the API
// it imports (index.mjs, api.mjs) — at most 64 KB (65,536 bytes) gzipped (zlib level 9; `gzip -9c FILE | wc -c` reads about 0.4% less).
// Reads FUNNEL_WASM_PACKAGE, else build/wasm/package; skips, with a message, when neither has been built.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

export const BUDGET_BYTES = 65536;
export const PAGE_FILES = ['funnel_wasm.wasm', 'funnel_wasm.cjs', 'index.mjs', 'api.mjs'];
const LOADERS = ['funnel_wasm.cjs', 'funnel_wasm.web.mjs'];  // one or the other

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const packageDir = process.env.FUNNEL_WASM_PACKAGE ?? path.join(root, 'build/wasm/package');
const built = existsSync(path.join(packageDir, PAGE_FILES[0]));
const skip = !built && !process.env.FUNNEL_WASM_PACKAGE
  ? 'build the WASM package first (cmake --preset wasm && cmake --build --preset wasm)'
  : false;

test('the default build is within 64 KB gzipped', { skip }, (t) => {
  const rows = [];
  const sizes = {};
  for (const name of [...PAGE_FILES, LOADERS[1]]) {
    const file = path.join(packageDir, name);
    assert.ok(existsSync(file), `${file} is missing`);
    const raw = readFileSync(file);
    sizes[name] = gzipSync(raw, { level: 9 }).length;
    rows.push(`${name}: ${raw.length} bytes, ${sizes[name]} gzipped`);
  }
  const total = sizes['funnel_wasm.wasm'] + sizes['index.mjs'] + sizes['api.mjs'] + Math.max(...LOADERS.map((name) => sizes[name]));
  for (const row of rows) t.diagnostic(row);
  t.diagnostic(`total ${total} bytes gzipped of a ${BUDGET_BYTES}-byte budget`);
  assert.ok(total <= BUDGET_BYTES,
            `the package is ${total} bytes gzipped, over the ${BUDGET_BYTES}-byte budget:\n  ${rows.join('\n  ')}`);
});
