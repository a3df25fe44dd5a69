// `funnel eval`'s cascade grid replayed in WebAssembly (Node), on the requests it wrote with --requests-out:
// for each configuration (retrieval alone; + ranking per K1; + pre-ranking and ranking per K1 and K2 < K1),
// every request through the package's cascade() with the same behaviours and exclusions, the final top-k
// quality and the SDK's own per-stage times, single-threaded.
//   node wasm/tools/eval_cascade.mjs --model X.funnel --requests requests.jsonl [--k 10]
//        [--retrieve-k 100,500,1000] [--prerank-k 50,100,200] [--package build/wasm/package] [--out rows.json]
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

import { writeFileAtomically } from './atomic_write.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const args = process.argv.slice(2);
const option = (name, fallback) => (args.includes(name) ? args[args.indexOf(name) + 1] : fallback);
const list = (text) => text.split(',').map(Number);
const modelPath = option('--model');
const requestsPath = option('--requests');
if (!modelPath || !requestsPath) {
  console.error('usage: node wasm/tools/eval_cascade.mjs --model X.funnel --requests requests.jsonl [--k 10] [--retrieve-k ...] [--prerank-k ...]');
  process.exit(2);
}
const k = Number(option('--k', '10'));
const retrieveKs = list(option('--retrieve-k', '100,500,1000'));
const prerankKs = list(option('--prerank-k', '50,100,200'));
const packageDir = path.resolve(root, option('--package', 'build/wasm/package'));

const api = await import(pathToFileURL(path.join(packageDir, 'index.mjs')).href);
const model = await api.loadModel(path.resolve(modelPath));
const requests = readFileSync(requestsPath, 'utf8').trim().split('\n').map((line) => JSON.parse(line));

const rows = [{ stages: 'retrieval', retrieveK: 0, prerankK: 0, skip: ['preRanking', 'ranking'] }];
for (const k1 of retrieveKs) {
  if (model.hasRanking) rows.push({ stages: 'retrieval+ranking', retrieveK: k1, prerankK: 0, skip: ['preRanking'] });
  if (model.hasRanking && model.hasPreRanking)
    for (const k2 of prerankKs)
      if (k2 < k1) rows.push({ stages: 'retrieval+pre_ranking+ranking', retrieveK: k1, prerankK: k2, skip: [] });
}

const mean = (values) => values.reduce((a, b) => a + b, 0) / Math.max(values.length, 1);
const results = [];
for (const row of rows) {
  let hits = 0;
  let ndcg = 0;
  const stageMs = { retrievalMs: [], preRankingMs: [], rankingMs: [], totalMs: [] };
  const started = performance.now();
  for (const { user, behaviours, held } of requests) {
    const { items, timings } = model.cascade(user, {
      k, retrieveK: Math.max(row.retrieveK, k), prerankK: Math.max(row.prerankK, k), behaviours, exclude: behaviours, skip: row.skip,
    });
    const position = items.findIndex((item) => item.key === held);
    if (position >= 0) {
      hits += 1;
      ndcg += 1 / Math.log2(position + 2);
    }
    for (const stage of Object.keys(stageMs)) stageMs[stage].push(timings[stage] ?? 0);
  }
  const result = {
    stages: row.stages, retrieve_k: row.retrieveK, prerank_k: row.prerankK, k, users: requests.length,
    recall: hits / requests.length, ndcg: ndcg / requests.length,
    retrieval_ms: mean(stageMs.retrievalMs), pre_ranking_ms: mean(stageMs.preRankingMs), ranking_ms: mean(stageMs.rankingMs),
    total_ms: mean(stageMs.totalMs),
  };
  results.push(result);
  console.error(`${row.stages.padEnd(30)} K1 ${String(row.retrieveK || '-').padStart(5)} K2 ${String(row.prerankK || '-').padStart(4)}  ` +
                `Recall ${result.recall.toFixed(4)}  NDCG ${result.ndcg.toFixed(4)}  ms/request: retrieval ${result.retrieval_ms.toFixed(3)} ` +
                `pre-ranking ${result.pre_ranking_ms.toFixed(3)} ranking ${result.ranking_ms.toFixed(3)} ` +
                `(${((performance.now() - started) / 1000).toFixed(1)} s)`);
}
const out = option('--out');
if (out) writeFileAtomically(out, `${JSON.stringify(results, null, 2)}\n`);
else console.log(JSON.stringify(results));
