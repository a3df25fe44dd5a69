// The package as a user gets it: `npm pack` of build/wasm/package, installed from the tarball into a fresh
// project per bundler (Vite 8, webpack 5, esbuild, Rollup 4, and none: a static page with an import map), each
// built as the package README says, served on 127.0.0.1 and opened in headless Chromium; once plain (the
// default build) and once with COOP/COEP (the threaded build). The page (tests/js/bundlers/main.js) runs the
// cascade on a golden file, which must answer as the native SDK (`funnel recommend`) does; the isolated page
// also on a generated 70,000-item model, whose catalogue (over the 65,536-item threshold) is scanned on the
// workers. The Vite project also builds the package README's example as a page, which must log the native answer.
// The bundlers come from npm, into build/bundlers/<name>/ with a shared cache (build/npm-cache, so a second run
// installs offline); where npm cannot install one, its tests are skipped with npm's error.
// Run with: FUNNEL_BIN=… FUNNEL_WASM_PACKAGE=… [CHROMIUM=/usr/bin/chromium] node --test tests/js/bundlers.test.mjs
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createNetServer } from 'node:net';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { chromium, chromiumPath, skipReason } from './support/chromium.mjs';
import { CHROMIUM_ARGS, InstallError, pack, project, root, serve, unpackable } from './support/npm_project.mjs';

const env = process.env;
const here = path.dirname(fileURLToPath(import.meta.url));
const work = path.join(root, 'build/bundlers');
const packageDir = env.FUNNEL_WASM_PACKAGE && path.resolve(env.FUNNEL_WASM_PACKAGE);
const goldenModel = path.join(root, 'tests/data/golden/three-stages-trained.funnel');

const skip = skipReason(['FUNNEL_BIN', 'FUNNEL_WASM_PACKAGE']) || unpackable(packageDir);

// The cascade requests of the golden answers (tests/data/golden/expected.json), asked again of the native CLI.
// There must be some, or every comparison below would pass by checking nothing.
const requests = JSON.parse(readFileSync(path.join(root, 'tests/data/golden/expected.json'), 'utf8')).cascade
  .filter((entry) => entry.model === path.basename(goldenModel))
  .map((entry) => ({ user: entry.user, options: { k: entry.k, retrieveK: entry.retrieve_k, prerankK: entry.prerank_k,
                                                  behaviours: entry.behaviours, exclude: entry.exclude } }));

// The package README's example (the JS block under "## Use it"), which the Vite project builds as a second page,
// and the user and options it asks the cascade for (object literals in the block, read as JS).
const readmeExample = (() => {
  const readme = readFileSync(path.join(root, 'wasm/package/README.md'), 'utf8');
  const code = readme.slice(readme.indexOf('## Use it')).match(/```js\n([\s\S]*?)```/)[1];
  const literal = (pattern) => new Function(`return (${code.match(pattern)[1]});`)();
  return { code, user: literal(/const user = (\{.*\});/), options: literal(/model\.cascade\(user, (\{.*\})\)/) };
})();

const page = (head, script) => `<!doctype html><meta charset="utf-8"><title>funnel-recsys</title>${head}
<script type="module" src="${script}"></script>\n`;
const esm = page('', './main.js');

// Each bundler: what npm installs beside the tarball, the files of a fresh project, its build commands (run in
// the project) and the folder served. Pinned to exact versions (the newest of each major on 2026-12-06), so that
// a new release cannot change what the test checks; raise them deliberately.
const BUNDLERS = {
  vite: {
    packages: ['vite@8.4.1'],
    files: { 'index.html': page('', '/src/main.js'), 'readme.html': page('', '/src/readme.js'), 'src/readme.js': readmeExample.code,
             'vite.config.js': "export default { build: { rollupOptions: { input: ['index.html', 'readme.html'] } } };\n" },
    build: [['node_modules/.bin/vite', 'build']],
    serve: 'dist',
  },
  webpack: {
    packages: ['webpack@5.113.0', 'webpack-cli@7.3.1'],
    files: { 'dist/index.html': page('', './main.js').replace(' type="module"', '') },
    build: [['node_modules/.bin/webpack', '--mode', 'production', './src/main.js', '-o', 'dist']],
    serve: 'dist',
  },
  esbuild: {
    packages: ['esbuild@0.28.2'],
    files: { 'dist/index.html': esm },
    // As the README says: esbuild does not emit what new URL() names, so the .wasm and threads/ are copied.
    build: [['node_modules/.bin/esbuild', 'src/main.js', '--bundle', '--format=esm', '--outfile=dist/main.js'],
            ['cp', '-r', 'node_modules/funnel-recsys/funnel_wasm.wasm', 'node_modules/funnel-recsys/threads', 'dist/']],
    serve: 'dist',
  },
  rollup: {
    packages: ['rollup@4.69.3', '@rollup/plugin-node-resolve@16.0.3', '@web/rollup-plugin-import-meta-assets@2.3.3'],
    files: { 'dist/index.html': esm, 'rollup.config.mjs': readFileSync(path.join(here, 'bundlers/rollup.config.mjs'), 'utf8') },
    build: [['node_modules/.bin/rollup', '-c']],
    serve: 'dist',
  },
  none: {
    packages: [],
    files: { 'index.html': page(`<script type="importmap">${JSON.stringify({ imports: {
      'funnel-recsys': './node_modules/funnel-recsys/index.mjs',
      'funnel-recsys/threads': './node_modules/funnel-recsys/threads.mjs' } })}</script>`, './src/main.js') },
    build: [],
    serve: '.',
  },
};

// At most two projects install and build at once (this machine's cores); each test waits for its own.
let tarball;
const setups = {};
let slots = 2;
const queue = [];
const acquire = () => (slots > 0 ? (slots--, Promise.resolve()) : new Promise((resolve) => queue.push(resolve)));
const release = () => (queue.length ? queue.shift()() : slots++);

async function setup(name) {
  const { packages, files, build, serve: served } = BUNDLERS[name];
  await acquire();
  try {
    const dir = path.join(work, name);
    const times = await project(dir, { tarball, packages, build,
                                       files: { ...files, 'src/main.js': readFileSync(path.join(here, 'bundlers/main.js'), 'utf8') } });
    return { dir: path.join(dir, served), ...times };
  } finally {
    release();
  }
}

// A catalogue of 70,000 items (above the threaded build's 65,536-item threshold, as tests/js/worker.test.mjs),
// one epoch of retrieval: its requests and the native answers, for the isolated pages.
const large = { file: path.join(work, 'large/model.funnel') };
function makeLarge() {
  const dir = path.dirname(large.file);
  rmSync(dir, { recursive: true, force: true });
  execFileSync(env.FUNNEL_BIN, ['generate', '--out', path.join(dir, 'data'), '--users', '300', '--items', '70000', '--seed', '1']);
  execFileSync(env.FUNNEL_BIN, ['train', '--data', path.join(dir, 'data/dataset.json'), '--out', large.file, '--epochs', '1'],
               { stdio: 'ignore' });
  const users = JSON.parse(execFileSync('node', [path.join(root, 'wasm/examples/users_from_csv.mjs'),
                                                 path.join(dir, 'data/users.csv'), '3'], { encoding: 'utf8' }));
  large.requests = users.map((user) => ({ user, options: { k: 10 } }));
  large.native = users.map((user) => JSON.parse(execFileSync(env.FUNNEL_BIN, [
    'recommend', '--model', large.file, '--user', JSON.stringify(user), '-k', '10', '--json'], { encoding: 'utf8' })).recommendations);
}

// The page's answers against the native ones, item for item.
function sameAnswers(name, answers, asked, expected) {
  assert.equal(answers.length, asked.length);
  answers.forEach((items, i) => {
    const what = JSON.stringify(asked[i].user);
    assert.ok(items.length > 0, `${what}: no items`);
    assert.deepEqual(items.map((item) => item.key), expected[i].map((item) => item.key), what);
    items.forEach((item, j) => assert.ok(Math.abs(item.score - expected[i][j].score) <= 2e-5,
      `${what}: ${item.key} scores ${item.score} in ${name}'s page, ${expected[i][j].score} natively`));
  });
}

let browser;
let native;
before(async () => {
  if (skip) return;
  makeLarge();
  tarball = pack(packageDir, 'bundlers');
  for (const name of Object.keys(BUNDLERS)) {
    setups[name] = setup(name);
    setups[name].catch(() => {});  // awaited by the tests; a failure is theirs to report
  }
  native = requests.map(({ user, options }) => JSON.parse(execFileSync(env.FUNNEL_BIN, [
    'recommend', '--model', goldenModel, '--user', JSON.stringify(user), '-k', String(options.k),
    '--retrieve-k', String(options.retrieveK), '--prerank-k', String(options.prerankK),
    '--behaviours', options.behaviours.join(','), '--exclude', options.exclude.join(','), '--json'], { encoding: 'utf8' }))
    .recommendations);
  browser = await chromium.launch({ executablePath: chromiumPath, args: CHROMIUM_ARGS });
});
after(async () => {
  await browser?.close();
});

// The built project served statically, or (dev) Vite's dev server in it; the page must answer as natively.
async function check(t, name, isolated, dev = false) {
  let built;
  try {
    built = await setups[name];
  } catch (error) {
    if (error instanceof InstallError) return t.skip(error.message);
    throw error;
  }
  t.diagnostic(`${name}: npm install ${built.installS.toFixed(1)} s, build ${built.buildS.toFixed(1)} s`);
  const stop = [];
  try {
    let base;
    if (dev) {
      base = await viteDev(path.dirname(built.dir), isolated, stop);
    } else {
      const server = await serve(built.dir, { isolated, extra: { '/model.funnel': readFileSync(goldenModel),
                                                                 '/large.funnel': readFileSync(large.file) } });
      stop.push(() => server.close());
      base = `http://127.0.0.1:${server.address().port}`;
    }
    const context = await browser.newContext();
    stop.push(() => context.close());
    const tab = await context.newPage();
    const errors = [];
    tab.on('pageerror', (error) => errors.push(error.message));
    tab.on('requestfailed', (request) => errors.push(`${request.url()}: ${request.failure()?.errorText}`));
    tab.on('response', (response) => response.status() >= 400 && errors.push(`${response.url()}: ${response.status()}`));
    tab.on('console', (message) => message.type() === 'warning' && errors.push(message.text()));
    await tab.goto(`${base}/`);
    await tab.waitForFunction(() => typeof globalThis.funnelCascade == 'function', null, { timeout: 60_000 });
    const ask = (asked, file) => tab.evaluate(([asked, file]) => Promise.race([
      globalThis.funnelCascade(asked, file),
      new Promise((_, reject) => setTimeout(() => reject(new Error('no answer in 60 s')), 60_000))]), [asked, file]);
    const answer = await ask(requests, 'model.funnel');
    const cores = await tab.evaluate(() => navigator.hardwareConcurrency);
    assert.ok(requests.length > 0, `no cascade requests for ${path.basename(goldenModel)} in tests/data/golden/expected.json`);
    assert.equal(answer.threads, isolated ? Math.min(4, cores) : 1);
    sameAnswers(name, answer.answers, requests, native);
    assert.deepEqual(errors, []);
    if (isolated) {
      // Emscripten warns (once) when the main thread waits on its workers: the sign that the scan ran on them,
      // which the golden file's small catalogue never does.
      sameAnswers(name, (await ask(large.requests, 'large.funnel')).answers, large.requests, large.native);
      const blocking = errors.findIndex((text) => /^Blocking on the main thread/.test(text));
      assert.ok(blocking >= 0, `${name}: the 70,000-item catalogue was not scanned on the workers`);
      errors.splice(blocking, 1);
      assert.deepEqual(errors, []);
    }
  } finally {
    for (const close of stop.reverse()) await close();
  }
}

// `vite` (the dev server, which pre-bundles the package) in the Vite project, on a free port; the model in
// public/ as a Vite user would put it, and for the isolated page the headers in server.headers, as the
// package README says. Resolves to its address; stop gets what ends it.
async function viteDev(dir, isolated, stop) {
  mkdirSync(path.join(dir, 'public'), { recursive: true });
  cpSync(goldenModel, path.join(dir, 'public/model.funnel'));
  cpSync(large.file, path.join(dir, 'public/large.funnel'));
  writeFileSync(path.join(dir, 'vite.isolated.config.js'), `export default { server: { headers: {
  'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' } } };\n`);
  const port = await new Promise((resolve) => {
    const probe = createNetServer().listen(0, '127.0.0.1', () => {
      const { port: free } = probe.address();
      probe.close(() => resolve(free));
    });
  });
  const vite = spawn(path.join(dir, 'node_modules/.bin/vite'),
                     ['--host', '127.0.0.1', '--port', String(port), '--strictPort', ...(isolated ? ['--config', 'vite.isolated.config.js'] : [])],
                     { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  stop.push(() => new Promise((resolve) => (vite.exitCode === null && vite.signalCode === null ? (vite.once('exit', resolve), vite.kill()) : resolve())));
  let output = '';
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`vite did not start in 60 s:\n${output}`)), 60_000);
    const read = (chunk) => {
      output += chunk;
      if (/ready in/.test(output)) clearTimeout(timer), resolve();
    };
    vite.stdout.on('data', read);
    vite.stderr.on('data', read);
    vite.once('exit', (code) => reject(new Error(`vite exited (${code}):\n${output}`)));
  });
  return `http://127.0.0.1:${port}`;
}

for (const name of Object.keys(BUNDLERS)) {
  test(`${name}: the packed package, built and served, answers as the native SDK`, { skip, timeout: 600_000 },
       (t) => check(t, name, false));
  test(`${name}: the threaded entry on a cross-origin isolated page answers the same, and scans a 70,000-item catalogue on its workers`,
       { skip, timeout: 600_000 }, (t) => check(t, name, true));
}
test("vite: the dev server (`vite`) answers as the native SDK", { skip, timeout: 600_000 }, (t) => check(t, 'vite', false, true));
test("vite: the dev server with COOP/COEP in server.headers runs the threaded entry, with the same answers on both models",
     { skip, timeout: 600_000 }, (t) => check(t, 'vite', true, true));

test("vite: the package README's example, built as a page, logs what the native SDK recommends", { skip, timeout: 600_000 }, async (t) => {
  let built;
  try {
    built = await setups.vite;
  } catch (error) {
    if (error instanceof InstallError) return t.skip(error.message);
    throw error;
  }
  const { user, options } = readmeExample;
  const expected = JSON.parse(execFileSync(env.FUNNEL_BIN, [
    'recommend', '--model', goldenModel, '--user', JSON.stringify(user), '-k', String(options.k),
    '--behaviours', options.behaviours.join(','), '--json'], { encoding: 'utf8' })).recommendations;
  const server = await serve(built.dir, { extra: { '/model.funnel': readFileSync(goldenModel) } });
  const context = await browser.newContext();
  try {
    const tab = await context.newPage();
    const errors = [];
    tab.on('pageerror', (error) => errors.push(error.message));
    tab.on('response', (response) => response.status() >= 400 && errors.push(`${response.url()}: ${response.status()}`));
    const logged = new Promise((resolve) => tab.on('console', (message) => message.type() === 'log' && resolve(message.args()[0].jsonValue())));
    await tab.goto(`http://127.0.0.1:${server.address().port}/readme.html`);
    // The timer is cleared once the page logs: a pending one kept Node (and the test command) waiting 60 s more.
    let timer;
    const items = await Promise.race([logged, new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`nothing logged in 60 s: ${errors}`)), 60_000);
    })]).finally(() => clearTimeout(timer));
    assert.deepEqual(errors, []);
    assert.equal(items.length, options.k);
    sameAnswers('the README', [items], [{ user }], [expected]);
  } finally {
    await context.close();
    server.close();
  }
});
