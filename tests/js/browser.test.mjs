// The same package in Debian's headless Chromium (playwright-core): a page imports index.mjs (which loads the
// ES-module loader, funnel_wasm.web.mjs), or threads.mjs on a cross-origin isolated page, fetches the model by
// URL, and must answer as Node does, which the other tests hold to the native SDK. Skips, with a message, without Chromium or playwright-core.
// Run with: FUNNEL_WASM_PACKAGE=… FUNNEL_TEST_MODEL=… FUNNEL_TEST_USERS=… [CHROMIUM=/usr/bin/chromium] node --test tests/js/
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer } from 'node:http';
import path from 'node:path';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';

import { staticFile } from '../../wasm/demo/static_file.mjs';
import { launchChromium, skipReason } from './support/chromium.mjs';

const env = process.env;
const skip = skipReason(['FUNNEL_WASM_PACKAGE', 'FUNNEL_TEST_MODEL', 'FUNNEL_TEST_USERS']);

const TYPES = { '.mjs': 'text/javascript', '.js': 'text/javascript', '.wasm': 'application/wasm', '.html': 'text/html' };

const threadsSkip = skip || (existsSync(path.join(path.resolve(env.FUNNEL_WASM_PACKAGE), 'threads', 'funnel_wasm.wasm'))
  ? false : 'no threaded build in the package (build/wasm-threads: see wasm/CMakeLists.txt)');

test('the package answers in Chromium as in Node', { skip }, () => inChromium(false));
test('a cross-origin isolated page gets the threaded build from threads.mjs, with the same answers', { skip: threadsSkip },
     () => inChromium(true));
// The threaded build's scan starts threads only from 65,536 items (two shares of 32,768): a 70,000-item
// catalogue, so that its workers really run (and the blocked main thread is not left waiting for them).
test('the threaded build scans a 70,000-item catalogue on its workers, with the same answers',
     { skip: threadsSkip || (env.FUNNEL_BIN ? false : 'set FUNNEL_BIN to run this test'), timeout: 120_000 }, async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'funnel-threads-'));
  try {
    execFileSync(env.FUNNEL_BIN, ['generate', '--out', path.join(dir, 'data'), '--users', '300', '--items', '70000', '--seed', '1']);
    execFileSync(env.FUNNEL_BIN, ['train', '--data', path.join(dir, 'data/dataset.json'), '--out', path.join(dir, 'model.funnel'),
                                  '--epochs', '1'], { stdio: 'ignore' });
    await inChromium(true, path.join(dir, 'model.funnel'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

async function inChromium(isolated, modelPath = env.FUNNEL_TEST_MODEL) {
  const packageDir = path.resolve(env.FUNNEL_WASM_PACKAGE);
  const model = readFileSync(modelPath);
  const users = JSON.parse(readFileSync(env.FUNNEL_TEST_USERS, 'utf8')).slice(0, 10);
  const server = createServer((request, response) => {
    if (isolated) {
      response.setHeader('cross-origin-opener-policy', 'same-origin');
      response.setHeader('cross-origin-embedder-policy', 'require-corp');
    }
    const name = new URL(request.url, 'http://x').pathname;
    if (name === '/') return response.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>funnel</title>');
    if (name === '/model.funnel') return response.writeHead(200, { 'content-type': 'application/octet-stream' }).end(model);
    if (!name.startsWith('/package/')) return response.writeHead(404).end();
    const { status, file } = staticFile(packageDir, name.slice('/package'.length));
    if (status !== 200) return response.writeHead(status).end();
    response.writeHead(200, { 'content-type': TYPES[path.extname(file)] ?? 'application/octet-stream' }).end(readFileSync(file));
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${server.address().port}`;
  const browser = await launchChromium();
  try {
    const page = await browser.newPage();
    const errors = [];
    page.on('pageerror', (error) => errors.push(error.message));
    await page.goto(`${base}/`);
    const inBrowser = await page.evaluate(async ({ base, users, isolated }) => {
      const api = await import(`${base}/package/${isolated ? 'threads' : 'index'}.mjs`);
      const model = await api.loadModel(`${base}/model.funnel`);
      const out = { info: model.inspect(), cascades: users.map((user) => model.cascade(user, { k: 10 }).items),
                    threads: await api.threads(), isolated: globalThis.crossOriginIsolated,
                    cores: navigator.hardwareConcurrency };
      try {
        model.cascade({});
      } catch (error) {
        out.error = `${error.name}: ${error.message}`;
      }
      out.after = model.cascade(users[0], { k: 10 }).items;
      await api.loadModel(new Uint8Array(100)).catch((error) => { out.corrupt = error.message; });
      return out;
    }, { base, users, isolated });
    assert.deepEqual(errors, []);
    assert.equal(inBrowser.isolated, isolated);
    if (isolated) assert.equal(inBrowser.threads, Math.min(4, inBrowser.cores));
    else assert.equal(inBrowser.threads, 1);
    const api = await import(pathToFileURL(path.join(packageDir, 'index.mjs')).href);
    const inNode = await api.loadModel(model);
    try {
      assert.deepEqual(inBrowser.info, inNode.inspect());
      users.forEach((user, i) => assert.deepEqual(inBrowser.cascades[i], inNode.cascade(user, { k: 10 }).items, JSON.stringify(user)));
      assert.match(inBrowser.error, /^Error: InvalidArgument: missing feature/);
      assert.match(inBrowser.corrupt, /^CorruptModel: /);
      assert.deepEqual(inBrowser.after, inBrowser.cascades[0]);
    } finally {
      inNode.free();
    }
  } finally {
    await browser.close();
    server.close();
  }
}
