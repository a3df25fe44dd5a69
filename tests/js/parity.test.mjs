// The WebAssembly package against the native CLI on one trained model, and the JS API's error paths.
// Run with: FUNNEL_BIN=… FUNNEL_WASM_PACKAGE=… FUNNEL_TEST_MODEL=… FUNNEL_TEST_USERS=… node --test tests/js/
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import { pathToFileURL } from 'node:url';

const env = process.env;

function skipUnless(...names) {
  const missing = names.filter((name) => !env[name]);
  return missing.length ? `set ${missing.join(', ')} to run this test` : false;
}
const skipApi = skipUnless('FUNNEL_WASM_PACKAGE', 'FUNNEL_TEST_MODEL', 'FUNNEL_TEST_USERS');
const skipParity = skipUnless('FUNNEL_BIN', 'FUNNEL_WASM_PACKAGE', 'FUNNEL_TEST_MODEL', 'FUNNEL_TEST_USERS');

let fixture;
function setup() {
  fixture ??= (async () => {
    const api = await import(pathToFileURL(path.resolve(env.FUNNEL_WASM_PACKAGE, 'index.mjs')).href);
    const bytes = readFileSync(env.FUNNEL_TEST_MODEL);
    const users = JSON.parse(readFileSync(env.FUNNEL_TEST_USERS, 'utf8'));
    assert.ok(Array.isArray(users) && users.length > 0, 'FUNNEL_TEST_USERS must hold a non-empty JSON array');
    return { api, bytes, users, model: await api.loadModel(bytes) };
  })();
  return fixture;
}
after(async () => {
  if (fixture) (await fixture).model.free();
});

test('recommendations match the native CLI for every user', { skip: skipParity }, async () => {
  const { model, users } = await setup();
  for (const user of users) {
    const stdout = execFileSync(env.FUNNEL_BIN,
      ['recommend', '--model', env.FUNNEL_TEST_MODEL, '--user', JSON.stringify(user), '-k', '20', '--json'],
      { encoding: 'utf8' });
    const expected = JSON.parse(stdout).recommendations;
    const actual = model.recommend(user, { k: 20 });
    const what = JSON.stringify(user);
    assert.equal(actual.length, expected.length, what);
    assert.deepEqual(actual.map((r) => r.key), expected.map((r) => r.key), what);
    assert.deepEqual(actual.map((r) => r.index), expected.map((r) => r.index), what);
    actual.forEach((r, i) => assert.ok(Math.abs(r.score - expected[i].score) <= 1e-5,
      `${what}: ${r.key} scores ${r.score} in WASM, ${expected[i].score} natively`));
  }
});

test('the model describes itself', { skip: skipApi }, async () => {
  const { model, users } = await setup();
  assert.ok(model.catalogueSize > 20);
  assert.ok(model.embeddingDim > 0);
  const [top] = model.recommend(users[0], { k: 1 });
  assert.equal(model.itemKey(top.index), top.key);
  assert.throws(() => model.itemKey(model.catalogueSize), RangeError);
  const embedding = model.userEmbedding(users[0]);
  assert.ok(embedding instanceof Float32Array);
  assert.equal(embedding.length, model.embeddingDim);
  assert.ok(embedding.every(Number.isFinite));
});

test('garbage and truncated models throw, and the module keeps working', { skip: skipApi }, async () => {
  const { api, bytes, model, users } = await setup();
  const before = model.recommend(users[0]);
  const garbage = Uint8Array.from({ length: 4096 }, (_, i) => (i * 2654435761) >>> 24);
  await assert.rejects(api.loadModel(garbage), { name: 'Error', message: /^CorruptModel: / });
  await assert.rejects(api.loadModel(bytes.subarray(0, bytes.length >> 1)), { name: 'Error', message: /^CorruptModel: / });
  await assert.rejects(api.loadModel(new ArrayBuffer(0)), { name: 'Error', message: /^CorruptModel: empty model/ });
  assert.deepEqual(model.recommend(users[0]), before);
  const again = await api.loadModel(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  try {
    assert.deepEqual(again.recommend(users[0]), before);
  } finally {
    again.free();
  }
});

test('a missing feature throws an Error naming it', { skip: skipApi }, async () => {
  const { model, users } = await setup();
  const [name] = Object.keys(users[0]);
  const { [name]: _, ...partial } = users[0];
  assert.throws(() => model.recommend(partial), { message: `InvalidArgument: missing feature '${name}'` });
  assert.throws(() => model.userEmbedding(partial), { message: `InvalidArgument: missing feature '${name}'` });
});

test('an unknown feature throws', { skip: skipApi }, async () => {
  const { model, users } = await setup();
  assert.throws(() => model.recommend({ ...users[0], no_such_feature: 'x' }),
    { message: /^InvalidArgument: unknown feature 'no_such_feature'/ });
});

test('features of the wrong shape throw', { skip: skipApi }, async () => {
  const { model, users } = await setup();
  const [name] = Object.keys(users[0]);
  assert.throws(() => model.recommend({ ...users[0], [name]: [1, 2.5] }), { message: /^InvalidArgument: .*not a list/ });
  assert.throws(() => model.recommend({ ...users[0], [name]: true }), TypeError);
  assert.throws(() => model.recommend(null), TypeError);
});

test('exclude removes items, and k is bounded by the catalogue', { skip: skipApi }, async () => {
  const { model, users } = await setup();
  const top = model.recommend(users[0], { k: 12 });
  const excluded = [top[0].key, top[3].key];
  const actual = model.recommend(users[0], { k: 10, exclude: excluded });
  assert.deepEqual(actual, top.filter((r) => !excluded.includes(r.key)));
  assert.equal(model.recommend(users[0], { k: 1e9 }).length, model.catalogueSize);
  assert.throws(() => model.recommend(users[0], { k: 0 }), RangeError);
});

test('results survive the WebAssembly heap growing', { skip: skipApi }, async () => {
  const { api, bytes, model, users } = await setup();
  const before = model.recommend(users[0]);
  // 64 MiB of zeros outgrows the initial 16 MiB heap (it is copied in twice) before the SDK rejects it.
  await assert.rejects(api.loadModel(new Uint8Array(64 << 20)), { message: /^CorruptModel: / });
  assert.deepEqual(model.recommend(users[0]), before);
  const again = await api.loadModel(bytes);
  try {
    assert.deepEqual(again.recommend(users[0]), before);
  } finally {
    again.free();
  }
});

test('a freed model refuses to work', { skip: skipApi }, async () => {
  const { api, bytes, users } = await setup();
  const model = await api.loadModel(bytes);
  model.free();
  model.free();
  assert.throws(() => model.recommend(users[0]), /used after free/);
});
