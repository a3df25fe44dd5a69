// The browser demo's server: trains the demo's funnel on first start, one three-stage file per dataset
// (`funnel train-funnel`: retrieval, the AutoFAS pre-ranking student searched on a latency table measured in
// WebAssembly, the CAN ranker), on the built-in dataset and MovieLens 100K where ../shared/data/ml-100k
// exists; writes each one's catalogue for the page (catalogue.mjs: titles and genres, or generated names, and
// the users' profiles), copies uPlot from node_modules into the demo, and serves it all on 127.0.0.1 with the
// cross-origin isolation headers (COOP + COEP), so the package's threaded build is used.
//   node wasm/demo/serve.mjs [--port 8080] [--funnel build/release/train/funnel] [--out build/web-demo]
//                            [--datasets builtin,ml-100k] [--quick (fewer epochs, when it trains)]
// (--port 0 picks a free port; the URL is printed either way.)
// Needs the WASM package (cmake --preset wasm && cmake --build --preset wasm), the native CLI for training,
// and `npm install` (uPlot). Then open http://127.0.0.1:8080/ (the charts: /charts.html).
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { builtinCatalogue, movieLensCatalogue } from './catalogue.mjs';
import { staticFile } from './static_file.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const args = process.argv.slice(2);
function fail(message) {
  console.error(`serve.mjs: ${message}`);
  process.exit(1);
}
// An option's value: the next argument, which must be there and not be another option.
function option(name, fallback) {
  if (!args.includes(name)) return fallback;
  const value = args[args.indexOf(name) + 1];
  if (value === undefined || value.startsWith('--')) fail(`${name} needs a value`);
  return value;
}
const port = Number(option('--port', '8080'));
if (!Number.isInteger(port) || port < 0 || port > 65535) fail(`--port must be a port number (0 picks a free one), not '${option('--port')}'`);
const funnel = path.resolve(root, option('--funnel', 'build/release/train/funnel'));
const packageDir = path.join(root, 'build/wasm/package');
const out = path.resolve(root, option('--out', 'build/web-demo'));
const wanted = option('--datasets', 'builtin,ml-100k').split(',');
const unknown = wanted.filter((name) => !['builtin', 'ml-100k'].includes(name));
if (unknown.length) fail(`--datasets: unknown ${unknown.join(', ')} (builtin, ml-100k)`);
// --quick (the test): less training, the same stages. The retrieval epochs, the ranker's, the pre-ranking
// student's, the share of the training instances the pre-ranking search visits, and the most behaviours the ranker
// reads (CAN's co-action cost grows with them); and a narrower ranker (embeddings and co-action feeds of 8, an MLP
// of 32 and 16): the test checks what each stage shows against the native SDK, not how well it learnt. On MovieLens
// 100K that took the training from 92 to 22 CPU seconds (teacher test AUC 0.886 before, 0.891 after).
const quick = args.includes('--quick');
const [retrievalEpochs, rankingEpochs, studentEpochs, searchFraction, maxHistory] = quick ? [2, 1, 1, 0.15, 5] : [8, 2, 2, 1, 20];
const rankerWidth = quick ? ['--set', 'ranking.embedding_dim=8', '--set', 'ranking.coaction_feed_dim=8', '--set', 'ranking.hidden=[32,16]'] : [];
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
function trainFunnel(data, dir) {
  run('train-funnel', '--data', data, '--out', path.join(dir, 'funnel.funnel'), '--work', path.join(dir, 'stages'),
      '--set', `retrieval.epochs=${retrievalEpochs}`, '--set', 'retrieval.drift_sample=512', '--set', `ranking.epochs=${rankingEpochs}`,
      '--set', `ranking.max_history=${maxHistory}`, ...rankerWidth, '--set', `pre_ranking.student_epochs=${studentEpochs}`,
      '--set', `pre_ranking.search_fraction=${searchFraction}`, '--set', 'pre_ranking.operators=[0,16,32,64]',
      '--set', `pre_ranking.latency_table=${latencyTable(dir)}`, '--metrics-log', path.join(dir, 'metrics.jsonl'));
}
// A dataset's page data next to its model: the catalogue (catalogue.mjs) and where the files are.
function writeDemo(dir, name, catalogue) {
  writeFileSync(path.join(dir, 'demo.json'), JSON.stringify({
    model: `${name}/funnel.funnel`, metrics: [`${name}/metrics.jsonl`], ...catalogue,
  }));
  return { id: name, name: catalogue.name };
}

function prepareBuiltin() {
  const dir = path.join(out, 'builtin');
  if (!existsSync(path.join(dir, 'funnel.funnel'))) {
    console.log('training the demo funnel on the built-in dataset (about a minute)');
    mkdirSync(dir, { recursive: true });
    run('generate', '--out', path.join(dir, 'data'));
    trainFunnel(path.join(dir, 'data/dataset.json'), dir);
  }
  return writeDemo(dir, 'builtin', builtinCatalogue(path.join(dir, 'data')));
}

// MovieLens 100K, read in place: its titles and genres go into build/ (demo.json), never into the repository.
function prepareMovieLens() {
  const data = path.resolve(root, '../shared/data/ml-100k');
  if (!existsSync(path.join(data, 'u.data'))) {
    console.log(`MovieLens 100K: ${data} is absent; serving the built-in dataset only`);
    return undefined;
  }
  const dir = path.join(out, 'ml-100k');
  const description = path.join(root, 'datasets/ml-100k.json');
  if (!existsSync(path.join(dir, 'funnel.funnel'))) {
    console.log('training the demo funnel on MovieLens 100K (a few minutes)');
    mkdirSync(dir, { recursive: true });
    trainFunnel(description, dir);
  }
  return writeDemo(dir, 'ml-100k', movieLensCatalogue(data, JSON.parse(readFileSync(description, 'utf8'))));
}

if (!existsSync(path.join(packageDir, 'index.mjs'))) fail('build the WASM package first: cmake --preset wasm && cmake --build --preset wasm');
if (!existsSync(funnel)) fail(`no native funnel CLI at ${funnel} (cmake --preset release && cmake --build --preset release)`);
mkdirSync(out, { recursive: true });
// MovieLens first where it is there: the page opens on the first.
const sets = [wanted.includes('ml-100k') && prepareMovieLens(), wanted.includes('builtin') && prepareBuiltin()].filter(Boolean);
if (!sets.length) fail(`no dataset to serve (--datasets ${wanted.join(',')}); add builtin`);
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

// Only the names this server is reached by on this machine: a page on another site that rebinds its own name to
// 127.0.0.1 (DNS rebinding) sends its own Host, and is refused.
function allowedHost(host) {
  const { port } = server.address();
  return ['127.0.0.1', 'localhost'].some((name) => host === `${name}:${port}` || (port === 80 && host === name));
}

const server = createServer((request, response) => {
  response.setHeader('Cross-Origin-Opener-Policy', 'same-origin');
  response.setHeader('Cross-Origin-Embedder-Policy', 'require-corp');
  response.setHeader('Cross-Origin-Resource-Policy', 'same-origin');
  response.setHeader('Cache-Control', 'no-store');
  if (!allowedHost(request.headers.host)) return response.writeHead(403).end('this server answers only to 127.0.0.1 and localhost');
  let name = new URL(request.url, 'http://localhost').pathname;
  if (name === '/') name = '/index.html';
  const [prefix, dir] = ROUTES.find(([p]) => name.startsWith(p));
  const { status, file } = staticFile(dir, name.slice(prefix.length - 1));
  if (status !== 200) return response.writeHead(status).end(status === 400 ? 'bad request' : 'not found');
  try {
    response.writeHead(200, { 'Content-Type': TYPES[path.extname(file)] ?? 'application/octet-stream' }).end(readFileSync(file));
  } catch {
    response.writeHead(404).end('not found');
  }
});
server.listen(port, '127.0.0.1', () => {
  console.log(`Funnel demo: http://127.0.0.1:${server.address().port}/  (training charts: /charts.html; models: ${sets.map((set) => set.id).join(', ')})`);
});
