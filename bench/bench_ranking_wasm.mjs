// The ranking benchmark of bench/bench_ranking.cpp in WebAssembly (Node): one user against the same
// 1,000 candidates with the same 50 behaviours, on the model files that benchmark writes.
//   build/release/bench/funnel_bench --benchmark_filter=Rank && node bench/bench_ranking_wasm.mjs
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const api = await import(pathToFileURL(path.join(root, 'build/wasm/package/index.mjs')).href);
const request = JSON.parse(readFileSync(path.join(root, 'build/bench/ranker-request.json'), 'utf8'));

for (const name of ['can', 'dnn']) {
  const model = await api.loadModel(readFileSync(path.join(root, `build/bench/ranker-${name}.funnel`)));
  for (let i = 0; i < 5; ++i) model.rank({}, request);  // warm-up: compilation tiers, heap growth
  const times = [];
  const deadline = performance.now() + 3000;
  while (performance.now() < deadline || times.length < 10) {
    const start = performance.now();
    model.rank({}, request);
    times.push(performance.now() - start);
  }
  times.sort((a, b) => a - b);
  const median = times[times.length >> 1];
  console.log(`BM_Rank_wasm/${name}  median ${(median * 1000).toFixed(0)} us over ${times.length} calls  ` +
              `${(request.candidates.length / median * 1000 / 1000).toFixed(1)}k candidates/s`);
  model.free();
}
