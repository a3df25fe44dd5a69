// The model in a Web Worker (wasm/examples/worker/): the packed package and the example, built by Vite into a
// page (as the example says: worker.format 'es'), opened in headless Chromium on a 70,000-item catalogue. The
// page runs cascades for about 1.5 s on the main thread, then the same number through the worker, measuring
// the main thread's worst pause each time with a 5 ms timer: on the main thread the search blocks it (the
// control: the measure sees a pause), through the worker it must not pause the page, and the worker must
// answer the same. Vite comes from npm (build/bundlers/worker, the bundler test's cache); skipped, with npm's
// error, where npm cannot install it.
// Run with: FUNNEL_BIN=… FUNNEL_WASM_PACKAGE=… [CHROMIUM=/usr/bin/chromium] node --test tests/js/worker.test.mjs
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';

import { chromium, chromiumPath, skipReason } from './support/chromium.mjs';
import { CHROMIUM_ARGS, InstallError, pack, project, root, serve, unpackable } from './support/npm_project.mjs';

const env = process.env;
const packageDir = env.FUNNEL_WASM_PACKAGE && path.resolve(env.FUNNEL_WASM_PACKAGE);
const skip = skipReason(['FUNNEL_BIN', 'FUNNEL_WASM_PACKAGE']) || unpackable(packageDir);

const example = (file) => readFileSync(path.join(root, 'wasm/examples/worker', file), 'utf8');
const BUDGET_MS = 1500;  // how long the main thread searches, in one task
const PAUSE_MS = 250;    // the worst pause allowed with the worker (generous: this machine's 2 cores are shared)

test('a Web Worker searches a 70,000-item catalogue while the page stays responsive', { skip, timeout: 300_000 }, async (t) => {
  const work = path.join(root, 'build/bundlers/worker');
  const data = mkdtempSync(path.join(tmpdir(), 'funnel-worker-'));
  let server;
  let browser;
  try {
    execFileSync(env.FUNNEL_BIN, ['generate', '--out', path.join(data, 'data'), '--users', '300', '--items', '70000', '--seed', '1']);
    execFileSync(env.FUNNEL_BIN, ['train', '--data', path.join(data, 'data/dataset.json'), '--out', path.join(data, 'model.funnel'),
                                  '--epochs', '1'], { stdio: 'ignore' });
    const users = JSON.parse(execFileSync('node', [path.join(root, 'wasm/examples/users_from_csv.mjs'),
                                                   path.join(data, 'data/users.csv'), '20'], { encoding: 'utf8' }));
    const requests = users.map((user) => ({ user, options: { k: 10 } }));
    let times;
    try {
      times = await project(work, {
        tarball: pack(packageDir, 'worker'),
        packages: ['vite@8.4.1'],
        files: {
          'index.html': '<!doctype html><meta charset="utf-8"><title>worker</title><script type="module" src="/src/page.js"></script>\n',
          'vite.config.js': "export default { worker: { format: 'es' } };\n",
          'src/page.js': readFileSync(path.join(root, 'tests/js/worker/page.js'), 'utf8'),
          'src/recommender.mjs': example('recommender.mjs'),
          'src/recommender.worker.mjs': example('recommender.worker.mjs'),
        },
        build: [['node_modules/.bin/vite', 'build']],
      });
    } catch (error) {
      if (error instanceof InstallError) return t.skip(error.message);
      throw error;
    }
    t.diagnostic(`npm install ${times.installS.toFixed(1)} s, vite build ${times.buildS.toFixed(1)} s`);
    server = await serve(path.join(work, 'dist'), { extra: { '/model.funnel': readFileSync(path.join(data, 'model.funnel')) } });
    browser = await chromium.launch({ executablePath: chromiumPath, args: CHROMIUM_ARGS });
    const page = await browser.newPage();
    const errors = [];
    page.on('pageerror', (error) => errors.push(error.message));
    page.on('response', (response) => response.status() >= 400 && errors.push(`${response.url()}: ${response.status()}`));
    await page.goto(`http://127.0.0.1:${server.address().port}/`);
    await page.waitForFunction(() => typeof globalThis.responsiveness == 'function', null, { timeout: 30_000 });
    const result = await page.evaluate(({ requests, budget }) => globalThis.responsiveness(requests, budget),
                                       { requests, budget: BUDGET_MS });
    t.diagnostic(`${result.count} cascades over ${result.catalogueSize} items: on the main thread ${result.main.tookMs.toFixed(0)} ms ` +
                 `with a worst pause of ${result.main.worstMs.toFixed(0)} ms; in the worker ${result.worker.tookMs.toFixed(0)} ms ` +
                 `with a worst pause of ${result.worker.worstMs.toFixed(0)} ms`);
    assert.deepEqual(errors, []);
    assert.equal(result.catalogueSize, 70000);
    assert.ok(result.same, "the worker's answers differ from the main thread's");
    assert.match(result.error, /^Error: InvalidArgument: missing feature/);
    // The control: searching on the main thread does block it, so the measure can see a pause.
    assert.ok(result.main.worstMs >= BUDGET_MS * 0.9, `the main thread's search paused it only ${result.main.worstMs} ms`);
    // The same work in the worker took longer than the pause allowed (so that a short pause means something),
    // and never paused the page for long. The worker mostly does the same cascades 2-4x faster than the main
    // thread here (388 to 2,017 ms against 1,500 in eight runs on this loaded 2-core machine; warming up the main
    // thread first did not change it), so twice the pause (500 ms) failed now and then; the pause is the check.
    assert.ok(result.worker.tookMs >= PAUSE_MS, `the worker's search took only ${result.worker.tookMs} ms`);
    assert.ok(result.worker.worstMs < PAUSE_MS, `the page paused ${result.worker.worstMs} ms while the worker searched`);
  } finally {
    await browser?.close();
    server?.close();
    rmSync(data, { recursive: true, force: true });
  }
});
