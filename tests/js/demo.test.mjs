// The browser demo (wasm/demo) in Debian's headless Chromium through playwright-core: start its server (which
// trains one three-stage file), open the page, pick a user, and require what each stage shows to be the
// native SDK's for that user on the same file (`funnel recommend`: the whole cascade, and with the later stages
// skipped, what retrieval and pre-ranking passed on); save a screenshot of the page and of the charts page
// under build/. Skips, with a message, without Chromium, playwright-core or the CLI.
// Run with: FUNNEL_BIN=… FUNNEL_WASM_PACKAGE=… [FUNNEL_DEMO_OUT=build/web-demo-test] node --test tests/js/
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { chromium, chromiumPath, skipReason } from './support/chromium.mjs';

const env = process.env;
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const skip = skipReason(['FUNNEL_BIN', 'FUNNEL_WASM_PACKAGE']);

test('the demo page shows the native SDK\'s recommendations for a picked user', { skip, timeout: 300_000 }, async () => {
  const out = path.resolve(root, env.FUNNEL_DEMO_OUT ?? 'build/web-demo-test');
  const server = spawn(process.execPath, [path.join(root, 'wasm/demo/serve.mjs'), '--port', '0', '--funnel', env.FUNNEL_BIN,
                                          '--out', out, '--datasets', 'builtin'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const base = await new Promise((resolve, reject) => {
    let text = '';
    server.stdout.on('data', (chunk) => {
      text += chunk;
      const match = /http:\/\/127\.0\.0\.1:\d+/.exec(text);
      if (match) resolve(match[0]);
    });
    server.on('exit', (code) => reject(new Error(`the demo server exited (${code})`)));
  });
  const browser = await chromium.launch({
    executablePath: chromiumPath,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
           '--disable-component-update', '--disable-sync'],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    const errors = [];
    page.on('pageerror', (error) => errors.push(error.message));
    await page.goto(`${base}/`);
    await page.waitForSelector('body[data-ready="true"]', { timeout: 60_000 });
    await page.evaluate(() => { document.body.dataset.ready = 'false'; });
    await page.selectOption('#user', '7');
    await page.waitForSelector('body[data-ready="true"]');
    const shown = await page.$$eval('#final li', (items) => items.map((li) => li.dataset.key));
    const features = JSON.parse(await page.inputValue('#features'));
    const behaviours = (await page.inputValue('#behaviours')).split(/\s+/).filter(Boolean);
    const k = Number(await page.inputValue('#k'));
    const retrieveK = Number(await page.inputValue('#retrieve-k'));
    const prerankK = Number(await page.inputValue('#prerank-k'));
    assert.equal(shown.length, k);
    assert.equal(await page.textContent('#error'), '');
    assert.match(await page.textContent('#status'), /thread/);
    mkdirSync(path.join(root, 'build'), { recursive: true });
    await page.screenshot({ path: path.join(root, 'build/demo-screenshot.png'), fullPage: true });

    // The native SDK on the same file, the same request.
    const model = path.join(out, 'builtin/funnel.funnel');
    const native = (k, ...skip) => JSON.parse(execFileSync(env.FUNNEL_BIN, [
      'recommend', '--model', model, '--user', JSON.stringify(features), '-k', String(k), '--retrieve-k', String(retrieveK),
      '--prerank-k', String(prerankK), ...(behaviours.length ? ['--behaviours', ...behaviours, '--exclude', ...behaviours] : []),
      ...(skip.length ? ['--skip', skip.join(',')] : []), '--json'], { encoding: 'utf8' })).recommendations.map((r) => r.key);
    const keys = (list) => page.$$eval(`#${list} li`, (items) => items.map((li) => li.dataset.key));
    assert.deepEqual(shown, native(k));
    assert.deepEqual(await keys('retrieval'), native(retrieveK, 'pre_ranking', 'ranking'));
    assert.deepEqual(await keys('pre-ranking'), native(prerankK, 'ranking'));
    for (const stage of ['retrieval', 'pre-ranking', 'ranking']) assert.match(await page.textContent(`#t-${stage}`), /\d ms$/);

    await page.goto(`${base}/charts.html`);
    await page.waitForSelector('body[data-ready="true"]', { timeout: 60_000 });
    assert.ok(await page.$$eval('.chart canvas', (canvases) => canvases.length) >= 3, 'loss, validation and drift charts');
    await page.screenshot({ path: path.join(root, 'build/demo-charts-screenshot.png'), fullPage: true });
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
    server.kill();
  }
});
