// The package's API: loading from bytes, a path, a file: URL and an http URL; inspect(); the whole cascade
// against the native CLI (`funnel recommend`, which runs the same funnel_model_recommend); the CommonJS entry;
// errors that must come back as Errors and leave the module working.
// Run with: FUNNEL_BIN=… FUNNEL_WASM_PACKAGE=… FUNNEL_TEST_MODEL=… FUNNEL_TEST_RANKER=… FUNNEL_TEST_USERS=… node --test tests/js/
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { pathToFileURL } from 'node:url';

const env = process.env;
const skipUnless = (...names) => {
  const missing = names.filter((name) => !env[name]);
  return missing.length ? `set ${missing.join(', ')} to run this test` : false;
};
const skipApi = skipUnless('FUNNEL_WASM_PACKAGE', 'FUNNEL_TEST_MODEL', 'FUNNEL_TEST_USERS');
const skipParity = skipUnless('FUNNEL_BIN', 'FUNNEL_WASM_PACKAGE', 'FUNNEL_TEST_MODEL', 'FUNNEL_TEST_USERS');
const skipRanker = skipUnless('FUNNEL_BIN', 'FUNNEL_WASM_PACKAGE', 'FUNNEL_TEST_RANKER');

const entry = (name) => path.resolve(env.FUNNEL_WASM_PACKAGE ?? '.', name);
let fixture;
function setup() {
  fixture ??= (async () => {
    const api = await import(pathToFileURL(entry('index.mjs')).href);
    const users = JSON.parse(readFileSync(env.FUNNEL_TEST_USERS, 'utf8'));
    return { api, users, model: await api.loadModel(env.FUNNEL_TEST_MODEL) };
  })();
  return fixture;
}
const models = [];
after(async () => {
  if (fixture) (await fixture).model.free();
  for (const model of models) model.free();
});

const native = (args) => JSON.parse(execFileSync(env.FUNNEL_BIN, [...args, '--json'], { encoding: 'utf8' }));
const sameItems = (actual, expected, what) => {
  assert.deepEqual(actual.map((r) => r.key), expected.map((r) => r.key), what);
  actual.forEach((r, i) => assert.ok(Math.abs(r.score - expected[i].score) <= 1e-5,
    `${what}: ${r.key} scores ${r.score} in WASM, ${expected[i].score} natively`));
};

test('a model loads from bytes, a path, a file: URL and an http URL alike', { skip: skipApi }, async () => {
  const { api, model } = await setup();
  const bytes = readFileSync(env.FUNNEL_TEST_MODEL);
  const server = createServer((request, response) => {
    if (request.url !== '/model.funnel') return response.writeHead(404).end();
    response.writeHead(200, { 'content-type': 'application/octet-stream' }).end(bytes);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${server.address().port}`;
  try {
    const expected = model.inspect();
    for (const source of [bytes, bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length),
                          pathToFileURL(env.FUNNEL_TEST_MODEL), pathToFileURL(env.FUNNEL_TEST_MODEL).href,
                          `${base}/model.funnel`, new URL(`${base}/model.funnel`)]) {
      const loaded = await api.loadModel(source);
      models.push(loaded);
      assert.deepEqual(loaded.inspect(), expected, String(source).slice(0, 80));
    }
    await assert.rejects(api.loadModel(`${base}/missing.funnel`), { name: 'Error', message: /^IoError: fetching .* 404/ });
  } finally {
    server.close();
  }
});

test('inspect() describes the file', { skip: skipApi }, async () => {
  const { model, users } = await setup();
  const info = model.inspect();
  assert.ok(info.formatVersion >= 1);
  assert.match(info.producer, /^funnel/);
  assert.equal(info.byteSize, readFileSync(env.FUNNEL_TEST_MODEL).length);
  assert.equal(info.hasRetrieval, true);
  assert.equal(info.catalogueSize, model.catalogueSize);
  assert.equal(info.embeddingDim, model.embeddingDim);
  assert.ok(['f32', 'f16', 'int8'].includes(info.cataloguePrecision));
  const names = info.features.map((f) => f.name);
  for (const name of Object.keys(users[0])) assert.ok(names.includes(name), `feature ${name}`);
  for (const f of info.features) assert.ok(['categorical', 'multi_categorical', 'dense'].includes(f.kind), f.kind);
  assert.equal(typeof info.metadata, 'object');
  assert.ok(Object.values(info.metadata).every((v) => typeof v === 'string'));
});

test('the cascade matches the native CLI for every user, with its timings', { skip: skipParity }, async () => {
  const { model, users } = await setup();
  for (const user of users) {
    const what = JSON.stringify(user);
    const expected = native(['recommend', '--model', env.FUNNEL_TEST_MODEL, '--user', what, '-k', '15']);
    const { items, timings } = model.cascade(user, { k: 15 });
    sameItems(items, expected.recommendations, what);
    assert.ok(timings.retrievalMs >= 0 && timings.totalMs >= timings.retrievalMs, JSON.stringify(timings));
    assert.equal(timings.rankingMs, null);
    assert.equal(timings.preRankingMs, null);
  }
  const exclude = model.cascade(users[0], { k: 3 }).items.map((r) => r.key);
  const expected = native(['recommend', '--model', env.FUNNEL_TEST_MODEL, '--user', JSON.stringify(users[0]), '-k', '5',
                           '--exclude', ...exclude]);
  sameItems(model.cascade(users[0], { k: 5, exclude }).items, expected.recommendations, 'exclude');
});

test('a ranking file\'s cascade matches the native CLI', { skip: skipRanker }, async () => {
  const api = await import(pathToFileURL(entry('index.mjs')).href);
  const ranker = await api.loadModel(env.FUNNEL_TEST_RANKER);
  models.push(ranker);
  const info = ranker.inspect();
  assert.equal(info.hasRanking, true);
  const user = { age: 30, region: 'r1' };
  const candidates = ['i1', 'i2', 'i3', 'i4', 'i5', 'i8', 'i13', 'i21'];
  const behaviours = ['i7', 'i9'];
  const expected = native(['recommend', '--model', env.FUNNEL_TEST_RANKER, '--user', JSON.stringify(user), '-k', '4',
                           '--candidates', ...candidates, '--behaviours', ...behaviours]);
  const { items, timings } = ranker.cascade(user, { k: 4, candidates, behaviours });
  sameItems(items, expected.recommendations, 'ranker');
  assert.ok(timings.rankingMs >= 0, JSON.stringify(timings));
  // The cascade's scores are the ranking stage's own.
  const probabilities = ranker.rank(user, { behaviours, candidates });
  for (const item of items) assert.ok(Math.abs(item.score - probabilities[candidates.indexOf(item.key)]) <= 1e-6, item.key);
});

test('a trained three-stage file\'s cascade, whole and with later stages skipped, matches the native CLI', { skip: skipRanker }, async () => {
  const api = await import(pathToFileURL(entry('index.mjs')).href);
  // The whole funnel as `funnel train-funnel` writes it (tests/data/golden).
  const file = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../data/golden/three-stages-trained.funnel');
  const funnel = await api.loadModel(file);
  models.push(funnel);
  const user = { user_id: 'u3', age: 41, region: 'r2', device: 'ios' };
  const behaviours = ['i3', 'i8', 'i21'];
  const request = { k: 5, retrieveK: 20, prerankK: 10, behaviours, exclude: ['i1', 'i2'] };
  const cli = ['recommend', '--model', file, '--user', JSON.stringify(user), '-k', '5', '--retrieve-k', '20', '--prerank-k', '10',
               '--behaviours', ...behaviours, '--exclude', 'i1', 'i2'];
  for (const [skip, flag] of [[[], []], [['ranking'], ['--skip', 'ranking']], [['preRanking', 'ranking'], ['--skip', 'pre_ranking,ranking']],
                              [['preRanking'], ['--skip', 'pre_ranking']]]) {
    const { items, timings } = funnel.cascade(user, { ...request, skip });
    sameItems(items, native([...cli, ...flag]).recommendations, `skip ${skip.join(', ') || 'nothing'}`);
    assert.equal(timings.rankingMs === null, skip.includes('ranking'), JSON.stringify(timings));
    assert.equal(timings.preRankingMs === null, skip.includes('preRanking'), JSON.stringify(timings));
  }
  assert.throws(() => funnel.cascade(user, { ...request, skip: ['retrieval'] }), /unknown stage 'retrieval'/);
  assert.throws(() => funnel.cascade(user, { ...request, skip: 'ranking' }), TypeError);
  assert.equal(funnel.cascade(user, request).items.length, 5);
});

test('format 2 and format 3 golden files load and give the same cascade (the package reads checksummed files; it exports no verify)',
     { skip: skipUnless('FUNNEL_WASM_PACKAGE') }, async () => {
  const api = await import(pathToFileURL(entry('index.mjs')).href);
  const golden = (name) => path.resolve(path.dirname(new URL(import.meta.url).pathname), '../data/golden', name);
  const v2 = await api.loadModel(golden('three-stages.funnel'));
  const v3 = await api.loadModel(golden('three-stages-v3.funnel'));
  models.push(v2, v3);
  assert.equal(v2.inspect().formatVersion, 2);
  assert.equal(v3.inspect().formatVersion, 3);
  const user = { user_id: 'u3', age: 41, region: 'r2', device: 'ios' };
  const request = { k: 5, retrieveK: 20, prerankK: 10, behaviours: ['i3', 'i8', 'i21'], exclude: ['i1', 'i2'] };
  const items = v3.cascade(user, request).items;
  assert.equal(items.length, 5);
  assert.deepEqual(items, v2.cascade(user, request).items);
});

test('the CommonJS entry serves the same API', { skip: skipApi }, async () => {
  const { model, users } = await setup();
  const cjs = createRequire(import.meta.url)(entry('index.cjs'));
  assert.equal(typeof cjs.loadModel, 'function');
  const again = await cjs.loadModel(readFileSync(env.FUNNEL_TEST_MODEL));
  models.push(again);
  assert.deepEqual(again.cascade(users[0]).items, model.cascade(users[0]).items);
  assert.match(await cjs.version(), /^\d+\.\d+\.\d+/);
});

test('bad files, missing features and wrong types throw, and later calls are unaffected', { skip: skipApi }, async () => {
  const { api, model, users } = await setup();
  const before = model.cascade(users[0], { k: 10 }).items;
  const dir = mkdtempSync(path.join(tmpdir(), 'funnel-js-'));
  try {
    const garbage = path.join(dir, 'garbage.funnel');
    writeFileSync(garbage, Uint8Array.from({ length: 2048 }, (_, i) => (i * 2654435761) >>> 24));
    await assert.rejects(api.loadModel(garbage), { name: 'Error', message: /^CorruptModel: / });
    const truncated = path.join(dir, 'truncated.funnel');
    const bytes = readFileSync(env.FUNNEL_TEST_MODEL);
    writeFileSync(truncated, bytes.subarray(0, bytes.length - 100));
    await assert.rejects(api.loadModel(truncated), { name: 'Error', message: /^CorruptModel: / });
    await assert.rejects(api.loadModel(path.join(dir, 'absent.funnel')), { code: 'ENOENT' });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  await assert.rejects(api.loadModel(42), TypeError);
  await assert.rejects(api.loadModel(null), TypeError);

  const [name] = Object.keys(users[0]);
  const { [name]: _, ...partial } = users[0];
  assert.throws(() => model.cascade(partial), { name: 'Error', message: `InvalidArgument: missing feature '${name}'` });
  assert.throws(() => model.cascade({ ...users[0], nope: 'x' }), { message: /^InvalidArgument: unknown feature 'nope'/ });
  assert.throws(() => model.cascade({ ...users[0], [name]: { nested: 1 } }), TypeError);
  assert.throws(() => model.cascade({ ...users[0], [name]: [1, 2.5] }), { message: /^InvalidArgument: / });
  assert.throws(() => model.cascade(users[0], { k: -1 }), RangeError);
  assert.throws(() => model.cascade(users[0], { k: 1.5 }), RangeError);
  assert.throws(() => model.cascade(users[0], { retrieveK: 'many' }), RangeError);
  assert.throws(() => model.cascade(users[0], { exclude: 'i1' }), TypeError);
  assert.throws(() => model.cascade(users[0], { behaviours: [1, 2] }), TypeError);
  assert.throws(() => model.cascade(users[0], null), TypeError);
  assert.throws(() => model.rank(users[0], null), TypeError);
  assert.throws(() => model.rank(users[0], { candidates: ['i1'] }), { name: 'Error', message: /^\w+: / });

  assert.deepEqual(model.cascade(users[0], { k: 10 }).items, before);
  const freed = await api.loadModel(env.FUNNEL_TEST_MODEL);
  freed.free();
  assert.throws(() => freed.cascade(users[0]), /used after free/);
  assert.throws(() => freed.inspect(), /used after free/);
  assert.deepEqual(model.cascade(users[0], { k: 10 }).items, before);
});

test('a module load that fails is not kept: the next call loads again', { skip: skipUnless('FUNNEL_WASM_PACKAGE') }, async () => {
  const { entry: entryOf, defaultModule } = await import(pathToFileURL(entry('api.mjs')).href);
  let tries = 0;
  const { version } = entryOf(async () => {
    if (++tries === 1) throw new Error('the .wasm could not be fetched');
    return defaultModule();
  });
  await assert.rejects(version(), /could not be fetched/);
  assert.match(await version(), /^\d+\.\d+\.\d+/);
  assert.equal(tries, 2);
});
