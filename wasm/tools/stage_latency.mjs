// The SDK's time per request in WASM (Node) for each ranking-like stage of a model file: one user with a
// behaviour sequence against N candidates, median over requests, in microseconds per 1,000 candidates.
//   node wasm/tools/stage_latency.mjs MODEL KEYS_FILE [--candidates 1000] [--requests 50] [--user JSON]
// KEYS_FILE lists item keys of the model's item table, one per line (the candidates and behaviours are
// drawn from them with a fixed seed).
import { readFileSync } from 'node:fs';
import { argv, exit } from 'node:process';

const args = argv.slice(2);
if (args.length < 2) {
  console.error('usage: node wasm/tools/stage_latency.mjs MODEL KEYS_FILE [--candidates 1000] [--requests 50] [--user JSON] [--package DIR]');
  exit(2);
}
const option = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : fallback;
};
const candidateCount = Number(option('--candidates', '1000'));
const requests = Number(option('--requests', '50'));
const user = JSON.parse(option('--user', '{}'));
const packageDir = option('--package', new URL('../../build/wasm/package/', import.meta.url).pathname);
const { loadModel } = await import(`${packageDir}/index.mjs`);

const model = await loadModel(readFileSync(args[0]));
const keys = readFileSync(args[1], 'utf8').split('\n').map((line) => line.trim()).filter(Boolean);
if (keys.length === 0) throw new Error(`${args[1]}: no item keys`);
let state = 12345;
const draw = () => {  // a fixed-seed linear congruential draw: the same requests on every run
  state = (state * 1103515245 + 12345) % 2147483648;
  return keys[state % keys.length];
};
const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
};
const result = { model: args[0], candidates: candidateCount, requests, target: 'wasm node' };
for (const [stage, run] of [['pre_ranking', model.hasPreRanking && ((u, r) => model.prerank(u, r))],
                            ['ranking', model.hasRanking && ((u, r) => model.rank(u, r))]]) {
  if (!run) continue;
  const times = [];
  for (let q = 0; q <= requests; ++q) {
    const request = { behaviours: Array.from({ length: 50 }, draw), candidates: Array.from({ length: candidateCount }, draw) };
    const start = process.hrtime.bigint();
    run(user, request);
    const microseconds = Number(process.hrtime.bigint() - start) / 1000;
    if (q > 0) times.push(microseconds * 1000 / candidateCount);  // the first request warms up
  }
  result[`${stage}_us_per_1000`] = median(times);
}
console.log(JSON.stringify(result));
model.free();
