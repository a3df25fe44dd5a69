// The package's types as a TypeScript user meets them: the packed tarball and typescript 5.9.3 (pinned) from npm in a fresh
// project, then `tsc --strict --noEmit` over wasm/examples/typescript/ (every export of both entries, ESM and
// CommonJS), with Node's module resolution (nodenext: the exports map's import and require conditions) and
// with a bundler's (the .ts files). The examples' @ts-expect-error lines must be errors, so a declaration that
// accepts anything fails the test too. Skipped, with npm's error, where npm cannot install typescript.
// Run with: FUNNEL_WASM_PACKAGE=… node --test tests/js/typescript.test.mjs
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';

import { InstallError, pack, project, root, unpackable } from './support/npm_project.mjs';

const packageDir = process.env.FUNNEL_WASM_PACKAGE && path.resolve(process.env.FUNNEL_WASM_PACKAGE);
const skip = !packageDir ? 'set FUNNEL_WASM_PACKAGE to run this test' : unpackable(packageDir);

const examples = path.join(root, 'wasm/examples/typescript');
const config = (compilerOptions, include) => JSON.stringify({
  compilerOptions: { target: 'es2022', lib: ['es2022', 'dom'], types: [], skipLibCheck: false, ...compilerOptions }, include });

test('tsc --strict --noEmit accepts the TypeScript examples against the packed package', { skip, timeout: 300_000 }, async (t) => {
  const work = path.join(root, 'build/bundlers/typescript');
  const files = Object.fromEntries(readdirSync(examples).map((name) => [`src/${name}`, readFileSync(path.join(examples, name), 'utf8')]));
  assert.ok(Object.keys(files).length >= 3, `no TypeScript examples in ${examples}`);
  let times;
  try {
    times = await project(work, {
      tarball: pack(packageDir, 'typescript'),
      packages: ['typescript@5.9.3'],
      files: {
        ...files,
        'tsconfig.node.json': config({ module: 'nodenext', moduleResolution: 'nodenext' }, ['src']),
        'tsconfig.bundler.json': config({ module: 'esnext', moduleResolution: 'bundler' }, ['src/*.ts']),
      },
    });
  } catch (error) {
    if (error instanceof InstallError) return t.skip(error.message);
    throw error;
  }
  t.diagnostic(`npm install ${times.installS.toFixed(1)} s`);
  for (const project of ['tsconfig.node.json', 'tsconfig.bundler.json']) {
    const tsc = path.join(work, 'node_modules/.bin/tsc');
    const checked = await promisify(execFile)(tsc, ['--strict', '--noEmit', '-p', project, '--listFilesOnly'], { cwd: work });
    const listed = checked.stdout.split('\n').filter((file) => file.includes('/funnel-recsys/'));
    assert.ok(listed.length > 0, `${project}: tsc read no declarations of the package`);
    await promisify(execFile)(tsc, ['--strict', '--noEmit', '-p', project], { cwd: work })
      .catch((error) => assert.fail(`${project}: tsc --strict --noEmit failed:\n${error.stdout}${error.stderr}`));
  }
});
