// The ranking stage in WebAssembly against the native CLI on one trained ranker, and its error paths.
// Run with: FUNNEL_BIN=… FUNNEL_WASM_PACKAGE=… FUNNEL_TEST_MODEL=… FUNNEL_TEST_RANKER=… FUNNEL_TEST_USERS=…
// node --test tests/js/ (the retrieval model, trained on the same data, supplies the item keys).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import { pathToFileURL } from 'node:url';

const env = process.env;
const needed = ['FUNNEL_BIN', 'FUNNEL_WASM_PACKAGE', 'FUNNEL_TEST_MODEL', 'FUNNEL_TEST_RANKER', 'FUNNEL_TEST_USERS'];
const missing = needed.filter((name) => !env[name]);
const skip = missing.length ? `set ${missing.join(', ')} to run this test` : false;

let fixture;
function setup() {
  fixture ??= (async () => {
    const api = await import(pathToFileURL(path.resolve(env.FUNNEL_WASM_PACKAGE, 'index.mjs')).href);
    const retrieval = await api.loadModel(readFileSync(env.FUNNEL_TEST_MODEL));
    const ranker = await api.loadModel(readFileSync(env.FUNNEL_TEST_RANKER));
    const keys = Array.from({ length: retrieval.catalogueSize }, (_, i) => retrieval.itemKey(i));
    retrieval.free();
    const users = JSON.parse(readFileSync(env.FUNNEL_TEST_USERS, 'utf8'));
    // Per user: a behaviour sequence longer than the model keeps, and 40 candidates, both spread over
    // the catalogue by a stride that differs per user.
    const requests = users.slice(0, 12).map((user, u) => ({
      user,
      behaviours: Array.from({ length: 25 + u }, (_, i) => keys[(u * 31 + i * 7) % keys.length]),
      candidates: Array.from({ length: 40 }, (_, i) => keys[(u * 17 + i * 13) % keys.length]),
    }));
    return { api, ranker, requests };
  })();
  return fixture;
}
after(async () => {
  if (fixture) (await fixture).ranker.free();
});

test('ranking probabilities match the native CLI for every request', { skip }, async () => {
  const { ranker, requests } = await setup();
  assert.ok(ranker.hasRanking);
  for (const { user, behaviours, candidates } of requests) {
    const stdout = execFileSync(env.FUNNEL_BIN, ['rank', '--model', env.FUNNEL_TEST_RANKER, '--user', JSON.stringify(user),
      '--behaviours', behaviours.join(','), '--candidates', candidates.join(','), '--json'], { encoding: 'utf8' });
    const native = new Map(JSON.parse(stdout).ranked.map((r) => [r.key, r.probability]));
    const wasm = ranker.rank(user, { behaviours, candidates });
    assert.equal(wasm.length, candidates.length);
    candidates.forEach((key, i) => {
      assert.ok(wasm[i] > 0 && wasm[i] < 1, `${key}: ${wasm[i]} is no probability`);
      assert.ok(Math.abs(wasm[i] - native.get(key)) <= 1e-5, `${JSON.stringify(user)} ${key}: ${wasm[i]} in WASM, ${native.get(key)} natively`);
    });
  }
});

test('ranking errors throw, and the module keeps working', { skip }, async () => {
  const { ranker, requests } = await setup();
  const { user, behaviours, candidates } = requests[0];
  const before = ranker.rank(user, { behaviours, candidates });
  assert.throws(() => ranker.rank(user, { behaviours, candidates: ['no-such-item'] }), { name: 'Error', message: /^NotFound: .*no-such-item/ });
  assert.throws(() => ranker.rank({}, { behaviours, candidates }), { name: 'Error', message: /^InvalidArgument: missing feature/ });
  assert.throws(() => ranker.rank(user, { behaviours: 'a,b', candidates }), TypeError);
  assert.throws(() => ranker.rank(user, { behaviours, candidates: [1, 2] }), TypeError);
  // An unknown behaviour is allowed: it counts with out-of-vocabulary features.
  assert.equal(ranker.rank(user, { behaviours: ['never-seen', ...behaviours], candidates }).length, candidates.length);
  assert.deepEqual(ranker.rank(user, { behaviours, candidates }), before);
});
