// The browser demo's server: trains the demo's funnel on first start, one three-stage file per dataset
// (`funnel train-funnel`: retrieval, the AutoFAS pre-ranking student searched on a latency table measured in
// WebAssembly, the CAN ranker), on the built-in dataset and MovieLens 100K where ../shared/data/ml-100k
// exists; copies uPlot from node_modules into the demo, and serves it all on 127.0.0.1 with the cross-origin
// isolation headers (COOP + COEP), so the package's threaded build is used.
//   node wasm/demo/serve.mjs [--port 8080] [--funnel build/release/train/funnel] [--out build/web-demo]
//                            [--datasets builtin,ml-100k]
// (--port 0 picks a free port; the URL is printed either way.)
// Needs the WASM package (cmake --preset wasm && cmake --build --preset wasm), the native CLI for training,
// and `npm install` (uPlot). Then open http://127.0.0.1:8080/ (the charts: /charts.html).
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const args = process.argv.slice(2);
const option = (name, fallback) => (args.includes(name) ? args[args.indexOf(name) + 1] : fallback);
const port = Number(option('--port', '8080'));
const funnel = path.resolve(root, option('--funnel', ['build/release/train/funnel', 'build/helper-js/train/funnel']
  .find((candidate) => existsSync(path.join(root, candidate))) ?? 'build/release/train/funnel'));
const packageDir = path.join(root, 'build/wasm/package');
const out = path.resolve(root, option('--out', 'build/web-demo'));
const wanted = option('--datasets', 'builtin,ml-100k').split(',');
const demoDir = path.join(root, 'wasm/demo');

const run = (...command) => execFileSync(funnel, command, { stdio: ['ignore', 'ignore', 'inherit'] });

// The dense-layer latency table the pre-ranking search reads, measured where the demo runs it: in
// WebAssembly (wasm/tools/bench_layers.mjs) when that module is built, else natively (funnel bench-layers).
function latencyTable(dir) {
  const file = path.join(dir, 'latency.json');
  const grid = ['--inputs', '8,16,32,64,128,256', '--outputs', '1,16,32,64', '--repeats', '5'];
  if (existsSync(path.join(root, 'build/wasm/bench-layers'))) {
    execFileSync(process.execPath, [path.join(root, 'wasm/tools/bench_layers.mjs'), '--out', file, ...grid], { stdio: 'ignore' });
  } else {
    run('bench-layers', '--out', file, ...grid);
  }
  return file;
}

// One three-stage file: retrieval, pre-ranking and ranking trained together, their epochs in one metrics log.
function trainFunnel(data, dir, retrievalEpochs) {
  run('train-funnel', '--data', data, '--out', path.join(dir, 'funnel.funnel'), '--work', path.join(dir, 'stages'),
      '--set', `retrieval.epochs=${retrievalEpochs}`, '--set', 'retrieval.drift_sample=512', '--set', 'ranking.epochs=2',
      '--set', 'ranking.max_history=20', '--set', 'pre_ranking.student_epochs=2', '--set', 'pre_ranking.operators=[0,16,32,64]',
      '--set', `pre_ranking.latency_table=${latencyTable(dir)}`, '--metrics-log', path.join(dir, 'metrics.jsonl'));
}
const csv = (file, separator = ',') => readFileSync(file, 'latin1').trim().split('\n').map((line) => line.split(separator));

// The last `count` items each user interacted with, oldest first: the behaviour sequences ranking reads.
function recentItems(rows, count) {
  const byUser = new Map();
  for (const [user, item, time] of rows) {
    if (!byUser.has(user)) byUser.set(user, []);
    byUser.get(user).push([Number(time), item]);
  }
  const recent = {};
  for (const [user, list] of byUser) recent[user] = list.sort((a, b) => a[0] - b[0]).slice(-count).map(([, item]) => item);
  return recent;
}

function prepareBuiltin() {
  const dir = path.join(out, 'builtin');
  if (!existsSync(path.join(dir, 'demo.json'))) {
    console.log('training the demo funnel on the built-in dataset (about a minute)');
    mkdirSync(dir, { recursive: true });
    run('generate', '--out', path.join(dir, 'data'));
    trainFunnel(path.join(dir, 'data/dataset.json'), dir, 8);
    const [header, ...rows] = csv(path.join(dir, 'data/users.csv'));
    const users = rows.slice(0, 200).map((row) => Object.fromEntries(row.map((value, i) =>
      [header[i], value !== '' && !Number.isNaN(Number(value)) ? Number(value) : value])));
    const behaviours = recentItems(csv(path.join(dir, 'data/interactions.csv')).slice(1), 20);
    writeFileSync(path.join(dir, 'demo.json'), JSON.stringify({
      name: 'built-in synthetic dataset', model: 'builtin/funnel.funnel', metrics: ['builtin/metrics.jsonl'], userKey: 'user_id', users,
      behaviours: Object.fromEntries(users.map((u) => [u.user_id, behaviours[u.user_id] ?? []])),
    }));
  }
  return 'builtin';
}

function prepareMovieLens() {
  const data = path.resolve(root, '../shared/data/ml-100k');
  if (!existsSync(path.join(data, 'u.data'))) return undefined;
  const dir = path.join(out, 'ml-100k');
  if (!existsSync(path.join(dir, 'demo.json'))) {
    console.log('training the demo funnel on MovieLens 100K (a few minutes)');
    mkdirSync(dir, { recursive: true });
    trainFunnel(path.join(root, 'datasets/ml-100k.json'), dir, 8);
    const users = csv(path.join(data, 'u.user'), '|').slice(0, 200)
      .map(([id, age, gender, occupation, zip]) => ({ user_id: id, gender, age: Number(age), occupation, zip3: zip }));
    const titles = Object.fromEntries(csv(path.join(data, 'u.item'), '|').map(([id, title]) => [id, title]));
    const behaviours = recentItems(csv(path.join(data, 'u.data'), '\t'), 20);
    writeFileSync(path.join(dir, 'demo.json'), JSON.stringify({
      name: 'MovieLens 100K', model: 'ml-100k/funnel.funnel', metrics: ['ml-100k/metrics.jsonl'], userKey: 'user_id',
      users, titles, behaviours: Object.fromEntries(users.map((u) => [u.user_id, behaviours[u.user_id] ?? []])),
    }));
  }
  return 'ml-100k';
}

if (!existsSync(path.join(packageDir, 'index.mjs'))) {
  console.error('build the WASM package first: cmake --preset wasm && cmake --build --preset wasm');
  process.exit(1);
}
if (!existsSync(funnel)) {
  console.error(`no native funnel CLI at ${funnel} (cmake --preset release && cmake --build --preset release)`);
  process.exit(1);
}
const sets = [wanted.includes('builtin') && prepareBuiltin(), wanted.includes('ml-100k') && prepareMovieLens()].filter(Boolean);
writeFileSync(path.join(out, 'index.json'), JSON.stringify(sets));
// uPlot, vendored from node_modules: the pages never fetch anything from another origin.
const uplot = path.join(root, 'node_modules/uplot/dist');
mkdirSync(path.join(out, 'vendor'), { recursive: true });
if (existsSync(uplot)) for (const file of ['uPlot.esm.js', 'uPlot.min.css']) copyFileSync(path.join(uplot, file), path.join(out, 'vendor', file));
else console.warn('node_modules/uplot is missing (npm install): the charts page will not draw');

const TYPES = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.mjs': 'text/javascript', '.cjs': 'text/javascript',
  '.wasm': 'application/wasm', '.css': 'text/css', '.json': 'application/json', '.jsonl': 'text/plain; charset=utf-8',
};
const ROUTES = [['/package/', packageDir], ['/models/', out], ['/vendor/', path.join(out, 'vendor')], ['/', demoDir]];

const server = createServer((request, response) => {
  response.setHeader('Cross-Origin-Opener-Policy', 'same-origin');
  response.setHeader('Cross-Origin-Embedder-Policy', 'require-corp');
  response.setHeader('Cross-Origin-Resource-Policy', 'same-origin');
  response.setHeader('Cache-Control', 'no-store');
  let name = decodeURIComponent(new URL(request.url, 'http://localhost').pathname);
  if (name === '/') name = '/index.html';
  const [prefix, dir] = ROUTES.find(([p]) => name.startsWith(p));
  const file = path.join(dir, name.slice(prefix.length));
  if (!file.startsWith(dir) || !existsSync(file) || file === dir) return response.writeHead(404).end('not found');
  try {
    response.writeHead(200, { 'Content-Type': TYPES[path.extname(file)] ?? 'application/octet-stream' }).end(readFileSync(file));
  } catch {
    response.writeHead(404).end('not found');
  }
});
server.listen(port, '127.0.0.1', () => {
  console.log(`Funnel demo: http://127.0.0.1:${server.address().port}/  (training charts: /charts.html; models: ${sets.join(', ')})`);
});
