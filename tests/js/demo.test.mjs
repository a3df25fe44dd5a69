// The browser demo (wasm/demo) in Debian's headless Chromium through playwright-core: start its server (which
// trains one three-stage file per dataset and writes the page's catalogue), open the page, search the list, pick
// items with the keyboard and the mouse, and require: readable names (titles and genres for MovieLens, generated
// names for the built-in dataset), never raw keys; every stage's list and time updated on each pick; and what
// each stage shows to be the native SDK's for the request the page made, on the same file (`funnel recommend`:
// the whole cascade, and with the later stages skipped, what retrieval and pre-ranking passed on). Saves
// screenshots, desktop and phone width, under build/demo-screenshots/. Skips, with a message, without Chromium,
// playwright-core or the CLI; the MovieLens part skips where ../shared/data/ml-100k is absent.
// Run with: FUNNEL_BIN=… FUNNEL_WASM_PACKAGE=… [FUNNEL_DEMO_OUT=build/web-demo-test] node --test tests/js/
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { launchChromium, skipReason } from './support/chromium.mjs';

const env = process.env;
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const skip = skipReason(['FUNNEL_BIN', 'FUNNEL_WASM_PACKAGE']);
const movieLens = path.resolve(root, '../shared/data/ml-100k');
const skipMovieLens = skip || (!existsSync(path.join(movieLens, 'u.data')) && `${path.relative(root, movieLens)} is absent`);
const out = path.resolve(root, env.FUNNEL_DEMO_OUT ?? 'build/web-demo-test');
const shots = path.join(root, 'build/demo-screenshots');
let browser;
let demo;  // { base, server }: one demo server for every test, with every dataset there is

// The demo server on a free port; it trains fewer epochs (--quick) to keep the test short.
async function serve(datasets) {
  const server = spawn(process.execPath, [path.join(root, 'wasm/demo/serve.mjs'), '--port', '0', '--funnel', env.FUNNEL_BIN,
                                          '--out', out, '--datasets', datasets, '--quick'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const base = await new Promise((resolve, reject) => {
    let text = '';
    server.stdout.on('data', (chunk) => {
      text += chunk;
      const match = /http:\/\/127\.0\.0\.1:\d+/.exec(text);
      if (match) resolve(match[0]);
    });
    server.on('exit', (code) => reject(new Error(`the demo server exited (${code})`)));
  });
  return { base, server };
}

// The training, once for all the tests, on its own budget: on a fresh --out the server trains a three-stage file
// per dataset first (with --quick, both together about 2 minutes on a loaded 2-core machine: docs/wasm.md), so the
// hook may take long while each test stays short.
before(async () => {
  if (skip) return;
  mkdirSync(shots, { recursive: true });
  browser = await launchChromium();
  const started = Date.now();
  demo = await serve(skipMovieLens ? 'builtin' : 'ml-100k,builtin');
  console.log(`# the demo server was up in ${((Date.now() - started) / 1000).toFixed(0)} s (training included where ${out} had no models)`);
}, { timeout: 1_800_000 });
after(async () => {
  demo?.server.kill();
  await browser?.close();
});

// GET path with these headers on the demo server, as sent (no URL normalisation): the status and body.
const get = (path, headers = {}) => new Promise((resolve, reject) => {
  const { hostname, port } = new URL(demo.base);
  httpRequest({ hostname, port, path, headers }, (response) => {
    let body = '';
    response.on('data', (chunk) => { body += chunk; });
    response.on('end', () => resolve({ status: response.statusCode, body }));
  }).on('error', reject).end();
});

// Waits for the page to run the cascade after `action`.
async function settled(page, action) {
  await page.evaluate(() => { document.body.dataset.ready = 'false'; });
  await action();
  await page.waitForSelector('body[data-ready="true"]');
  assert.equal(await page.textContent('#error'), '');
}

const STAGES = [['retrieval', 'retrieval'], ['pre-ranking', 'pre-ranking'], ['final', 'ranking']];
const stageLists = (page) => Promise.all(STAGES.map(([list]) =>
  page.$$eval(`#${list} li`, (items) => items.map((li) => ({ key: li.dataset.key, title: li.querySelector('.title').textContent })))));

// Every stage shows items by name (never a raw key) with a time; and each list is the native SDK's for the
// request the page shows, on the same file.
async function checkStages(page, modelFile, checkTitle) {
  const request = JSON.parse(await page.textContent('#request'));
  const lists = await stageLists(page);
  assert.deepEqual(lists.map((list) => list.length), [request.retrieveK, request.prerankK, request.k]);
  for (const list of lists) for (const { key, title } of list) checkTitle(key, title);
  for (const [, stage] of STAGES) assert.match(await page.textContent(`#t-${stage}`), /^\d+\.\d\d ms$/);
  assert.match(await page.textContent('#t-total'), /ms for the whole funnel, in WebAssembly/);
  const { features, behaviours, k, retrieveK, prerankK } = request;
  const native = (count, ...skipped) => JSON.parse(execFileSync(env.FUNNEL_BIN, [
    'recommend', '--model', modelFile, '--user', JSON.stringify(features), '-k', String(count), '--retrieve-k', String(retrieveK),
    '--prerank-k', String(prerankK), ...(behaviours.length ? ['--behaviours', ...behaviours, '--exclude', ...behaviours] : []),
    ...(skipped.length ? ['--skip', skipped.join(',')] : []), '--json'], { encoding: 'utf8' })).recommendations.map((r) => r.key);
  assert.deepEqual(lists[2].map((item) => item.key), native(k));
  assert.deepEqual(lists[0].map((item) => item.key), native(retrieveK, 'pre_ranking', 'ranking'));
  assert.deepEqual(lists[1].map((item) => item.key), native(prerankK, 'ranking'));
  return lists;
}

// The built-in dataset's generated names: words, never the key (i17).
const PRODUCT = /^[A-Z][a-z]+( [A-Z][\w&-]*)+( No\. \d+)?$/;
const productTitle = (key, title) => assert.ok(PRODUCT.test(title) && !title.includes(key), `item ${key} shows '${title}'`);

const options = (page) => page.$$eval('#options li', (items) => items.map((li) => li.textContent.toLowerCase()));

test('the demo server: a path that does not decode is a 400 and it serves on, nothing outside its folders, only its own Host',
     { skip, timeout: 60_000 }, async () => {
  // A folder beside --out whose name starts with --out's: a plain startsWith check would serve it.
  const sibling = `${out}-secret`;
  mkdirSync(sibling, { recursive: true });
  writeFileSync(path.join(sibling, 'x.txt'), 'secret');
  try {
    assert.equal((await get('/%')).status, 400);
    assert.equal((await get('/models/%E0%A4%A')).status, 400);
    assert.equal((await get('/index.html')).status, 200, 'the server still answers after a bad path');
    assert.equal((await get(`/models/..%2F${path.basename(sibling)}/x.txt`)).status, 404);
    assert.equal((await get(`/models/../${path.basename(sibling)}/x.txt`)).status, 404);
    assert.equal((await get('/..%2F..%2Fpackage.json')).status, 404);
    assert.equal((await get('/package/..%2F..%2F..%2Fpackage.json')).status, 404);
    assert.equal((await get('/models/')).status, 404);
    assert.equal((await get('/models/index.json')).status, 200);
    const { port } = new URL(demo.base);
    assert.equal((await get('/index.html', { host: `localhost:${port}` })).status, 200);
    const foreign = await get('/models/index.json', { host: `attacker.example:${port}` });
    assert.equal(foreign.status, 403, 'a page that rebinds its own name to 127.0.0.1 is refused');
    assert.doesNotMatch(foreign.body, /builtin/);
  } finally {
    rmSync(sibling, { recursive: true, force: true });
  }
});

test('the demo on the built-in dataset: generated names, search, picks that update the three stages as the native SDK does',
     { skip, timeout: 300_000 }, async () => {
  const { base } = demo;
  const page = await browser.newPage({ viewport: { width: 1440, height: 1000 } });
  const errors = [];
  page.on('pageerror', (error) => errors.push(error.message));
  await page.goto(`${base}/`);
  await page.waitForSelector('body[data-ready="true"]', { timeout: 60_000 });
  if (await page.inputValue('#dataset') !== 'builtin') await settled(page, () => page.selectOption('#dataset', 'builtin'));
  assert.match(await page.textContent('#status'), /1000 items, \d+-d embeddings/);
  const model = path.join(out, 'builtin/funnel.funnel');
  const first = await checkStages(page, model, productTitle);  // no picks: a visitor the model knows nothing of

  // The list before any typing: the most popular items, each a name and a department; then search narrows it.
  const popular = await options(page);
  assert.ok(popular.length >= 20, 'the popular items are listed');
  const all = await page.$$eval('#options .title', (titles) => titles.map((t) => t.textContent));
  assert.ok(all.every((title) => PRODUCT.test(title)), `readable names: ${all.slice(0, 5)}`);
  const word = all[0].split(' ').at(-1).toLowerCase();
  await page.fill('#search', word);
  const found = await options(page);
  assert.ok(found.length > 0 && found.every((text) => text.includes(word)), `every match for '${word}' holds it`);
  assert.match(await page.textContent('#match-count'), /^\d+ of 1000 products match/);
  await page.locator('.taste').screenshot({ path: path.join(shots, 'builtin-search.png') });
  await page.fill('#search', 'no such product anywhere');
  assert.equal((await options(page)).length, 0);

  // Picks: by the keyboard (type, arrow down, Enter), then by a click; each one reruns the whole funnel.
  await page.fill('#search', word);
  await settled(page, async () => { await page.press('#search', 'ArrowDown'); await page.press('#search', 'Enter'); });
  const picked = await page.$$eval('#picks li', (chips) => chips.map((chip) => chip.dataset.key));
  assert.equal(picked.length, 1);
  await settled(page, () => page.click('#options li:nth-child(3)'));
  await settled(page, () => page.click('#options li:nth-child(1)'));
  const chips = await page.$$eval('#picks li', (items) => items.map((li) => li.textContent));
  assert.equal(chips.length, 3);
  const after = await checkStages(page, model, productTitle);
  assert.notDeepEqual(after[2].map((i) => i.key), first[2].map((i) => i.key), 'the recommendations follow the picks');
  assert.match(await page.textContent('#profile'), /Retrieval reads the profile of user u\d+/);
  // For screen readers: the search box's label, one polite summary per change, and the highlight said in words.
  assert.match(await page.textContent('label[for="search"]'), /^Search products by title, department or price$/);
  assert.match(await page.textContent('#live-summary'), /^Recommendations updated for 3 picks: 10 products, first [^,]+, [^,]+, [^,]+\.$/);
  const kept = await page.$$eval('#retrieval li.kept', (items) => items.map((li) => li.querySelector('.visually-hidden')?.textContent));
  assert.ok(kept.length > 0 && kept.every((text) => text === ', in your final recommendations'), `highlighted: ${kept}`);
  await page.screenshot({ path: path.join(shots, 'builtin-desktop.png'), fullPage: true });

  // A pick removed by its chip's button reruns the funnel too; "Surprise me" picks five a user liked.
  await settled(page, () => page.click('#picks li:first-child .remove'));
  assert.equal((await page.$$('#picks li')).length, 2);
  await checkStages(page, model, productTitle);
  await settled(page, () => page.click('#sample'));
  assert.equal((await page.$$('#picks li')).length, 5);
  await checkStages(page, model, productTitle);

  await page.setViewportSize({ width: 390, height: 844 });
  await page.screenshot({ path: path.join(shots, 'builtin-phone.png'), fullPage: true });
  assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= 390), 'nothing wider than a phone');

  await page.setViewportSize({ width: 1440, height: 1000 });
  await page.goto(`${base}/charts.html`);
  await page.waitForSelector('body[data-ready="true"]', { timeout: 60_000 });
  assert.ok(await page.$$eval('.chart canvas', (canvases) => canvases.length) >= 3, 'loss, validation and drift charts');
  await page.screenshot({ path: path.join(shots, 'charts.png'), fullPage: true });
  assert.equal(await page.textContent('h1'), 'Training charts');
  const labels = await page.$$eval('.chart', (charts) => charts.map((chart) => chart.getAttribute('aria-label')));
  assert.ok(labels.every((label) => /^.+: .+, over \d+ (epoch|step)s?\. .+: -?[\d.e+-]+ at /.test(label)), `charts' text: ${labels[0]}`);
  assert.deepEqual(errors, []);
});

test('the demo on MovieLens 100K: titles and genres from ../shared/data, films picked from the search',
     { skip: skipMovieLens, timeout: 300_000 }, async () => {
  const { base } = demo;
  const page = await browser.newPage({ viewport: { width: 1440, height: 1000 } });
  const errors = [];
  page.on('pageerror', (error) => errors.push(error.message));
  await page.goto(`${base}/`);
  await page.waitForSelector('body[data-ready="true"]', { timeout: 60_000 });
  const model = path.join(out, 'ml-100k/funnel.funnel');
  // The most popular film of MovieLens 100K first, with its year and genres; titles with their article in front.
  const top = await page.textContent('#options li:first-child');
  assert.match(top, /^Star Wars1977ActionAdventureRomanceSci-FiWar$/);
  for (const [query, title] of [['usual suspects', 'The Usual Suspects'], ['toy story', 'Toy Story'], ['fargo', 'Fargo']]) {
    await page.fill('#search', query);
    const found = await options(page);
    assert.ok(found.length >= 1 && found.every((text) => query.split(' ').every((w) => text.includes(w))), `matches for '${query}'`);
    await settled(page, () => page.press('#search', 'Enter'));
    assert.equal(await page.textContent('#picks li:last-child span'), title);
  }
  await page.fill('#search', 'film-noir');
  assert.ok((await options(page)).every((text) => text.includes('film-noir')), 'a genre searches too');
  await page.locator('.taste').screenshot({ path: path.join(shots, 'ml-100k-search.png') });
  await page.fill('#search', '');
  // Every item shown under the title u.item gives its key (the article moved to the front, the year apart).
  const titles = new Map(readFileSync(path.join(movieLens, 'u.item'), 'latin1').trim().split('\n').map((line) => line.split('|'))
    .map(([key, title]) => [key, title.replace(/\s*\(\d{4}\)\s*$/, '').replace(/^(.*), (The|A|An)$/, '$2 $1')]));
  const lists = await checkStages(page, model, (key, title) => assert.equal(title, titles.get(key), `item ${key}`));
  const genres = await page.$$eval('#final .tag', (tags) => tags.map((t) => t.textContent));
  assert.ok(genres.length >= lists[2].length && genres.every((g) => /^[A-Z][\w'-]+$/.test(g)), `genres: ${genres}`);
  assert.match(await page.textContent('#profile'), /Retrieval reads the profile of user \d+ \(.*\), who liked [1-3] of your 3 picks/);
  await page.screenshot({ path: path.join(shots, 'ml-100k-desktop.png'), fullPage: true });
  await page.setViewportSize({ width: 390, height: 844 });
  await page.screenshot({ path: path.join(shots, 'ml-100k-phone.png'), fullPage: true });
  assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= 390), 'nothing wider than a phone');
  // A catalogue that does not load says so in #error and leaves the page on the model it has.
  await page.route('**/models/builtin/demo.json', (route) => route.fulfill({ status: 404, body: 'not found' }));
  await page.selectOption('#dataset', 'builtin');
  await page.waitForFunction(() => document.getElementById('error').textContent !== '');
  assert.match(await page.textContent('#error'), /^Could not load the builtin catalogue: \/models\/builtin\/demo\.json: HTTP 404/);
  await page.unroute('**/models/builtin/demo.json');
  await settled(page, () => page.click('#clear'));
  await checkStages(page, model, (key, title) => assert.equal(title, titles.get(key), `item ${key}`));
  await settled(page, () => page.selectOption('#dataset', 'ml-100k'));
  // The other catalogue, from the page's menu: its names, and the picks start afresh.
  await settled(page, () => page.selectOption('#dataset', 'builtin'));
  assert.equal((await page.$$('#picks li')).length, 0);
  await checkStages(page, path.join(out, 'builtin/funnel.funnel'), productTitle);
  assert.deepEqual(errors, []);
});
