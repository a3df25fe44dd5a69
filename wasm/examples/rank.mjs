// Ranks candidates by click probability with the WASM module in Node:
//   node wasm/examples/rank.mjs RANKER.funnel USER_JSON BEHAVIOURS CANDIDATES
// BEHAVIOURS and CANDIDATES are comma-separated item keys (behaviours oldest first).
import { readFile } from 'node:fs/promises';
import { loadModel } from '../../build/wasm/package/index.mjs';

const [modelPath, userJson, behaviourList, candidateList] = process.argv.slice(2);
if (!modelPath || !userJson || behaviourList === undefined || !candidateList) {
  console.error('usage: node wasm/examples/rank.mjs RANKER.funnel USER_JSON BEHAVIOURS CANDIDATES');
  process.exit(2);
}
const model = await loadModel(await readFile(modelPath));
const request = { behaviours: behaviourList ? behaviourList.split(',') : [], candidates: candidateList.split(',') };
const start = performance.now();
const probabilities = model.rank(JSON.parse(userJson), request);
const micros = (performance.now() - start) * 1000;
const order = request.candidates.map((key, i) => ({ key, p: probabilities[i] })).sort((a, b) => b.p - a.p);
order.forEach(({ key, p }, i) => console.log(`${String(i + 1).padStart(3)}  ${key.padEnd(24)} ${p.toFixed(6)}`));
console.log(`ranked ${request.candidates.length} candidates with ${request.behaviours.length} behaviours in ${micros.toFixed(0)} us ` +
  `(WASM in Node ${process.version}, first call)`);
model.free();
