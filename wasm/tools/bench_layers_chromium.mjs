// The dense-layer latency table measured by the SDK in WebAssembly inside Chromium (Debian's
// /usr/bin/chromium, headless, driven by playwright-core: `npm install` at the repository root). The page
// and the module (build/wasm/bench-layers/) are served from 127.0.0.1 by a small static server in this
// script; nothing else is reached.
//   node wasm/tools/bench_layers_chromium.mjs --out latency-wasm-chromium.json [--candidates 1000]
//        [--inputs ...] [--outputs ...] [--repeats 20] [--target "wasm chromium"] [--chromium /usr/bin/chromium]
// The page is not cross-origin isolated, so performance.now() ticks in 100 us steps: the SDK times each
// sample over at least 2 ms of calls (LayerLatencyOptions::min_sample_microseconds), which resolves it.
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, launchChromium } from '../../tests/js/support/chromium.mjs';
import { parseArguments, report } from './bench_layers.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const options = parseArguments(process.argv.slice(2), {
  out: '', candidates: '1000', inputs: '', outputs: '', repeats: '20', target: 'wasm chromium',
  module: path.join(root, 'build/wasm/bench-layers'), chromium: '/usr/bin/chromium',
});

if (!chromium) throw new Error('playwright-core is missing: run `npm install` at the repository root');

const page = `<!doctype html><meta charset="utf-8"><title>Funnel layer latency</title>
<script src="funnel_bench_layers.cjs"></script>`;
const types = { '.cjs': 'text/javascript', '.js': 'text/javascript', '.wasm': 'application/wasm' };
const server = createServer(async (request, response) => {
  const name = new URL(request.url, 'http://127.0.0.1').pathname;
  if (name === '/') {
    response.writeHead(200, { 'content-type': 'text/html' }).end(page);
    return;
  }
  const file = path.basename(name);
  if (!(path.extname(file) in types)) {
    response.writeHead(404).end();
    return;
  }
  try {
    const body = await readFile(path.join(options.module, file));
    response.writeHead(200, { 'content-type': types[path.extname(file)] }).end(body);
  } catch {
    response.writeHead(404).end();
  }
});
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const url = `http://127.0.0.1:${server.address().port}/`;

const browser = await launchChromium(options.chromium);
try {
  const tab = await browser.newPage();
  tab.on('pageerror', (error) => console.error(`page error: ${error.message}`));
  await tab.goto(url);
  await tab.waitForFunction(() => typeof createFunnelBenchModule === 'function');
  const version = browser.version();
  const json = await tab.evaluate(async ({ target, candidates, inputs, outputs, repeats }) => {
    const m = await createFunnelBenchModule();
    return m.ccall('funnel_bench_layers', 'string', ['string', 'number', 'string', 'string', 'number'],
                   [target, candidates, inputs, outputs, repeats]);
  }, { target: options.target, candidates: Number(options.candidates), inputs: options.inputs, outputs: options.outputs,
       repeats: Number(options.repeats) });
  report(json, options.out);
  console.log(`Chromium ${version}`);
} finally {
  await browser.close();
  server.close();
}
