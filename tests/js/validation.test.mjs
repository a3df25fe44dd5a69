// Bad requests in JS, on the golden files: a feature value that is not finite (NaN, ±Infinity, "nan", "inf"),
// an option name no call knows (retrieve_k for retrieveK), a count of 0 and a catalogue row that scores
// infinity all throw with a message that names what is wrong, and every call answers afterwards exactly as
// before. Run with: FUNNEL_WASM_PACKAGE=… node --test tests/js/
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';

const env = process.env;
const skip = env.FUNNEL_WASM_PACKAGE ? false : 'set FUNNEL_WASM_PACKAGE to run this test';
const golden = (name) => path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../data/golden', name);

const user = { user_id: 'u3', age: 41, region: 'r2', device: 'ios' };
const request = { behaviours: ['i3', 'i8'], candidates: ['i5', 'i9', 'i0'] };
const models = [];
let fixture;
function setup() {
  fixture ??= (async () => {
    const api = await import(pathToFileURL(path.resolve(env.FUNNEL_WASM_PACKAGE, 'index.mjs')).href);
    const model = await api.loadModel(golden('three-stages.funnel'));
    models.push(model);
    return { api, model, before: answers(model) };
  })();
  return fixture;
}
after(() => models.forEach((model) => model.free()));

// What every call answers for the golden user: compared after each test's errors.
const answers = (model) => ({
  embedding: Array.from(model.userEmbedding(user)),
  recommend: model.recommend(user, { k: 5, exclude: ['i1'] }),
  rank: Array.from(model.rank(user, request)),
  prerank: Array.from(model.prerank(user, request)),
  cascade: model.cascade(user, { k: 5, retrieveK: 20, prerankK: 10, behaviours: request.behaviours }).items,
});

test('a feature value that is not finite throws in every call, naming the feature', { skip }, async () => {
  const { model, before } = await setup();
  for (const age of [NaN, Infinity, -Infinity, 'nan', 'NaN', 'inf', '-Infinity']) {
    const bad = { ...user, age };
    const message = /^InvalidArgument: feature 'age' is -?(nan|inf), not a finite number$/;
    for (const call of [() => model.userEmbedding(bad), () => model.recommend(bad), () => model.rank(bad, request),
                        () => model.prerank(bad, request), () => model.cascade(bad)])
      assert.throws(call, { name: 'Error', message }, `age ${age}: ${call}`);
  }
  // In a list, where numbers become keys: refused before they reach the SDK.
  assert.throws(() => model.cascade({ ...user, region: [NaN] }), { name: 'TypeError', message: /feature 'region'.*finite numbers/ });
  assert.deepEqual(answers(model), before);
});

test('an option no call knows throws, naming it and the options there are', { skip }, async () => {
  const { model, before } = await setup();
  assert.throws(() => model.cascade(user, { k: 5, retrieve_k: 20 }), {
    name: 'TypeError',
    message: "cascade() has no option 'retrieve_k'; its options are k, retrieveK, prerankK, behaviours, candidates, exclude, allow, skip",
  });
  assert.throws(() => model.recommend(user, { K: 3 }),
                { name: 'TypeError', message: "recommend() has no option 'K'; its options are k, exclude" });
  assert.throws(() => model.rank(user, { ...request, behaviour: [] }),
                { name: 'TypeError', message: "rank() has no option 'behaviour'; its options are behaviours, candidates" });
  assert.throws(() => model.prerank(user, { candidates: ['i5'], k: 1 }), { name: 'TypeError', message: /^prerank\(\) has no option 'k'/ });
  for (const call of [() => model.cascade(user, null), () => model.recommend(user, 5), () => model.rank(user), () => model.prerank(user, 'i5')])
    assert.throws(call, { name: 'TypeError', message: /options must be an object$/ }, String(call));
  assert.deepEqual(answers(model), before);
});

test('k = 0 is an error in every call, as are retrieveK = 0 and prerankK = 0', { skip }, async () => {
  const { model, before } = await setup();
  const message = /^k must be a positive integer, not 0$/;
  assert.throws(() => model.recommend(user, { k: 0 }), { name: 'RangeError', message });
  assert.throws(() => model.cascade(user, { k: 0 }), { name: 'RangeError', message });
  assert.throws(() => model.cascade(user, { retrieveK: 0 }), { name: 'RangeError', message: /^retrieveK must be a positive integer, not 0$/ });
  assert.throws(() => model.cascade(user, { prerankK: 0 }), { name: 'RangeError', message: /^prerankK must be a positive integer, not 0$/ });
  for (const k of [-1, 1.5, '3', null]) {
    assert.throws(() => model.recommend(user, { k }), RangeError, `k ${k}`);
    assert.throws(() => model.cascade(user, { k }), RangeError, `k ${k}`);
  }
  // Left out, each count takes its default; given, it is used as it is.
  assert.equal(model.cascade(user).items.length, 10);
  assert.equal(model.recommend(user).length, 10);
  assert.equal(model.cascade(user, { k: 1, retrieveK: 1, prerankK: 1 }).items.length, 1);
  // A count beyond the catalogue answers as the whole catalogue does (and does not overflow the heap).
  const all = model.cascade(user, { k: model.catalogueSize }).items;
  assert.deepEqual(model.cascade(user, { k: 2 ** 30, retrieveK: 2 ** 30, prerankK: 2 ** 30 }).items, all);
  assert.deepEqual(model.cascade(user, { k: 2 ** 30 }).items, all);
  assert.equal(model.recommend(user, { k: 2 ** 30 }).length, model.catalogueSize);
  assert.deepEqual(answers(model), before);
});

// retrieval.funnel's catalogue: 40 rows of 4 L2-normalised floats, found in the file as the only such run.
function catalogueOffset(bytes) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const unit = (at) => {
    let norm = 0;
    for (let d = 0; d < 4; ++d) norm += view.getFloat32(at + 4 * d, true) ** 2;
    return Math.abs(norm - 1) < 1e-4;
  };
  const found = [];
  for (let at = 0; at + 40 * 16 <= bytes.length; at += 4)
    if (Array.from({ length: 40 }, (_, row) => at + 16 * row).every(unit)) found.push(at);
  assert.equal(found.length, 1, `runs of 40 unit rows at ${found}`);
  return found[0];
}

test('a catalogue row that scores infinity throws CorruptModel naming the row; the model beside it is unaffected', { skip }, async () => {
  const { api } = await setup();
  const bytes = new Uint8Array(readFileSync(golden('retrieval.funnel')));
  const good = await api.loadModel(bytes);
  models.push(good);
  const query = good.userEmbedding(user);
  const d = query.findIndex((x) => x !== 0);
  const offset = catalogueOffset(bytes);
  // The offset is the catalogue's: each row's product with the query is the score retrieval reports.
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (const { index, score } of good.recommend(user)) {
    const dot = [0, 1, 2, 3].reduce((sum, i) => sum + query[i] * view.getFloat32(offset + 16 * index + 4 * i, true), 0);
    assert.ok(Math.abs(dot - score) < 1e-5, `row ${index}: ${dot} vs ${score}`);
  }
  const expected = good.recommend(user, { k: 5 });
  view.setFloat32(offset + 16 * 7 + 4 * d, query[d] > 0 ? Infinity : -Infinity, true);
  const bad = await api.loadModel(bytes);
  models.push(bad);
  const message = /^CorruptModel: the score of row 7 is inf, not a finite number$/;
  assert.throws(() => bad.recommend(user, { k: 1 }), { name: 'Error', message });
  assert.throws(() => bad.cascade(user), { name: 'Error', message });
  assert.ok(bad.recommend(user, { exclude: ['i7'] }).every(({ score }) => Number.isFinite(score)));
  assert.deepEqual(good.recommend(user, { k: 5 }), expected);
});
