// The whole cascade of a three-stage .funnel file (funnel train-funnel) with the WASM module in Node:
// retrieval of K1, pre-ranking to K2, ranking to k, with each stage's time inside the SDK.
//   node wasm/examples/cascade.mjs FUNNEL.funnel '{"user_id": "u42", ...}' BEHAVIOURS [K] [K1] [K2]
// BEHAVIOURS: the user's item keys, oldest first, comma-separated: the ranking stages read them, and they
// are never recommended again.
import { readFile } from 'node:fs/promises';
import { loadModel } from '../../build/wasm/package/index.mjs';

const [modelPath, userJson, behaviourList = '', k = '10', retrieveK = '200', prerankK = '50'] = process.argv.slice(2);
if (!modelPath || !userJson) {
  console.error('usage: node wasm/examples/cascade.mjs FUNNEL.funnel USER_JSON BEHAVIOURS [K] [K1] [K2]');
  process.exit(2);
}
const model = await loadModel(await readFile(modelPath));
const behaviours = behaviourList.split(',').filter(Boolean);
const { items, timings } = model.cascade(JSON.parse(userJson), {
  k: Number(k), retrieveK: Number(retrieveK), prerankK: Number(prerankK), behaviours, exclude: behaviours,
});
items.forEach(({ key, score }, i) => console.log(`${String(i + 1).padStart(3)}  ${key.padEnd(24)} ${score.toFixed(6)}`));
const ms = (value) => (value === null ? '-' : `${value.toFixed(3)} ms`);
console.log(`retrieval ${ms(timings.retrievalMs)}, pre-ranking ${ms(timings.preRankingMs)}, ranking ${ms(timings.rankingMs)}; ` +
            `${ms(timings.totalMs)} in all (WASM in Node ${process.version})`);
model.free();
