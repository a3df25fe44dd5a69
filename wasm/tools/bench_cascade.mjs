// The same cascade natively (the C ABI), in Node's WebAssembly and in headless Chromium's, in one run: for each
// of N users, the retrieval file's cascade (retrieve_k candidates, leaving out the user's behaviours), then the
// ranker's cascade over those candidates (k kept), single-threaded everywhere. Times are the SDK's own
// (funnel_model_recommend's total_ms of both calls), median over the requests after warm-up passes.
//   node wasm/tools/bench_cascade.mjs [--set build/web-demo/builtin] [--users 100] [--warmup 3]
//        [--k 10] [--retrieve-k 100] [--lib build/helper-js] [--chromium /usr/bin/chromium]
// --set is a folder the demo server wrote (node wasm/demo/serve.mjs): demo.json, model.funnel, ranker.funnel.
// --lib is a native release build (cmake --preset release -B build/helper-js && cmake --build build/helper-js
// --target funnel_c): the native side is wasm/tools/bench_cascade_native.c linked against it.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const args = process.argv.slice(2);
const option = (name, fallback) => (args.includes(name) ? args[args.indexOf(name) + 1] : fallback);
const setDir = path.resolve(root, option('--set', 'build/web-demo/builtin'));
const userCount = Number(option('--users', '100'));
const warmup = Number(option('--warmup', '3'));
const k = Number(option('--k', '10'));
const retrieveK = Number(option('--retrieve-k', '100'));
const lib = path.resolve(root, option('--lib', 'build/helper-js'));
const chromiumPath = option('--chromium', '/usr/bin/chromium');
const packageDir = path.join(root, 'build/wasm/package');

const demo = JSON.parse(readFileSync(path.join(setDir, 'demo.json'), 'utf8'));
const model = path.join(setDir, path.basename(demo.model));
const ranker = demo.ranker ? path.join(setDir, path.basename(demo.ranker)) : undefined;
const requests = demo.users.slice(0, userCount).map((user) => ({ user, behaviours: demo.behaviours[user[demo.userKey]] ?? [] }));
const median = (values) => [...values].sort((a, b) => a - b)[values.length >> 1];

// Native: the C ABI through a small C program.
const out = path.join(root, 'build/bench-cascade');
mkdirSync(out, { recursive: true });
const native = path.join(out, 'native');
execFileSync('gcc', ['-O2', '-std=c11', '-c', path.join(root, 'wasm/tools/bench_cascade_native.c'), `-I${path.join(root, 'bindings/c')}`,
                     '-o', `${native}.o`]);
execFileSync('g++', [`${native}.o`, path.join(lib, 'bindings/c/libfunnel_c.a'), path.join(lib, 'sdk/libfunnel_sdk.a'), '-lpthread', '-o', native]);
const lines = requests.map(({ user, behaviours }) =>
  [...Object.entries(user).map(([name, value]) => `${name}=${value}`), '|', ...behaviours].join('\t')).join('\n');
const nativeTimes = execFileSync(native, [model, ranker ?? '-', String(k), String(retrieveK), String(warmup)], { input: `${lines}\n`, encoding: 'utf8' })
  .trim().split('\n').map((line) => line.split(' ').map(Number).reduce((a, b) => a + b, 0));

// The cascade as the demo page runs it, in either JS engine: the package's API, the SDK's timings.
async function cascadeTimes(api, source, rankerSource, requests, k, retrieveK, warmup) {
  const retrieval = await api.loadModel(source);
  const ranking = rankerSource ? await api.loadModel(rankerSource) : undefined;
  const times = [];
  for (let pass = 0; pass <= warmup; ++pass) {
    for (const { user, behaviours } of requests) {
      const first = retrieval.cascade(user, { k: retrieveK, exclude: behaviours });
      let ms = first.timings.totalMs;
      if (ranking) {
        const candidates = first.items.map((item) => item.key);
        ms += ranking.cascade(user, { k, candidates, behaviours }).timings.totalMs;
      }
      if (pass === warmup) times.push(ms);
    }
  }
  retrieval.free();
  ranking?.free();
  return times;
}

const api = await import(pathToFileURL(path.join(packageDir, 'index.mjs')).href);
const nodeTimes = await cascadeTimes(api, model, ranker, requests, k, retrieveK, warmup);

// Chromium: the same function in a page served from 127.0.0.1 (not cross-origin isolated: the default build).
let chromiumTimes;
let chromiumVersion = '';
try {
  const { chromium } = await import('playwright-core');
  const files = { '/model.funnel': model, ...(ranker ? { '/ranker.funnel': ranker } : {}) };
  const server = createServer((request, response) => {
    const name = new URL(request.url, 'http://x').pathname;
    if (name === '/') return response.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>bench</title>');
    const file = files[name] ?? (name.startsWith('/package/') ? path.join(packageDir, path.basename(name)) : undefined);
    if (!file || !existsSync(file)) return response.writeHead(404).end();
    const type = { '.mjs': 'text/javascript', '.wasm': 'application/wasm' }[path.extname(file)] ?? 'application/octet-stream';
    response.writeHead(200, { 'content-type': type }).end(readFileSync(file));
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${server.address().port}`;
  const browser = await chromium.launch({ executablePath: chromiumPath, args: ['--no-sandbox', '--disable-gpu', '--disable-quic'] });
  try {
    chromiumVersion = browser.version();
    const page = await browser.newPage();
    await page.goto(`${base}/`);
    chromiumTimes = await page.evaluate(async ({ base, hasRanker, requests, k, retrieveK, warmup, body }) => {
      const api = await import(`${base}/package/index.mjs`);
      const run = new Function(`return (${body})`)();  // eslint-disable-line no-new-func
      return run(api, `${base}/model.funnel`, hasRanker ? `${base}/ranker.funnel` : undefined, requests, k, retrieveK, warmup);
    }, { base, hasRanker: Boolean(ranker), requests, k, retrieveK, warmup, body: cascadeTimes.toString() });
  } finally {
    await browser.close();
    server.close();
  }
} catch (error) {
  console.error(`Chromium: skipped (${error.message.split('\n')[0]})`);
}

const base = median(nativeTimes);
const rows = [['native (C ABI, this CPU\'s kernels)', nativeTimes], ['WASM in Node ' + process.version, nodeTimes],
              ...(chromiumTimes ? [[`WASM in Chromium ${chromiumVersion}`, chromiumTimes]] : [])];
console.log(`${demo.name}: ${requests.length} users, retrieve ${retrieveK}${ranker ? `, rank them, keep ${k}` : ''}; ` +
            `median of the SDK's time per request after ${warmup} warm-up passes`);
console.log('| target | ms per request | × native |\n| --- | ---: | ---: |');
for (const [name, times] of rows) console.log(`| ${name} | ${median(times).toFixed(3)} | ${(median(times) / base).toFixed(2)} |`);
