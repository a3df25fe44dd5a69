// Recommends from a .funnel file with the WASM module in Node:
//   node wasm/examples/recommend.mjs MODEL.funnel '{"user_id": "u42", "age": 31, ...}' [K]
import { readFile } from 'node:fs/promises';
import { loadModel } from '../../build/wasm/package/index.mjs';

const [modelPath, userJson, k = '10'] = process.argv.slice(2);
if (!modelPath || !userJson) {
  console.error('usage: node wasm/examples/recommend.mjs MODEL.funnel USER_JSON [K]');
  process.exit(2);
}
const model = await loadModel(await readFile(modelPath));
const user = JSON.parse(userJson);
const options = { k: Number(k) };
let start = performance.now();
const recommendations = model.recommend(user, options);
const first = (performance.now() - start) * 1000;
recommendations.forEach(({ key, score }, i) =>
  console.log(`${String(i + 1).padStart(3)}  ${key.padEnd(24)} ${score.toFixed(6)}`));
// The first call includes the JIT's warm-up; the steady state is what a page sees afterwards.
const repeats = 50;
start = performance.now();
for (let i = 0; i < repeats; ++i) model.recommend(user, options);
const steady = ((performance.now() - start) * 1000) / repeats;
console.log(`retrieval over ${model.catalogueSize} items: first call ${first.toFixed(0)} us, then ${steady.toFixed(0)} us per call ` +
  `(WASM in Node ${process.version})`);
model.free();
