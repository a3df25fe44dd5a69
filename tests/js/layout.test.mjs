// The C structs the JS loader reads and writes by hand (wasm/js/api.mjs) against their declarations in the
// C header (bindings/c/funnel_c.h), laid out as wasm32 lays them out: FEATURE_INFO_BYTES, REQUEST_WORDS, the
// timings' size and the order of the fields the loader names. wasm/funnel_wasm.cpp pins the header to the
// same numbers with static_asserts compiled for wasm32, so a change on either side fails one check or the other.
// Needs no build.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const header = readFileSync(path.join(root, 'bindings/c/funnel_c.h'), 'utf8');
const loader = readFileSync(path.join(root, 'wasm/js/api.mjs'), 'utf8');

// wasm32: pointers and size_t are 4 bytes; every field of these structs is naturally aligned.
const WASM32_SIZES = { size_t: 4, uint32_t: 4, uint64_t: 8, double: 8, pointer: 4 };

// The fields of `typedef struct NAME { ... } NAME;` with their wasm32 offsets, and the struct's size.
function layout(name) {
  const body = header.match(new RegExp(`typedef struct ${name} \\{([^}]*)\\} ${name};`));
  assert.ok(body, `funnel_c.h declares no struct ${name}`);
  const fields = [];
  let offset = 0;
  let align = 1;
  for (const line of body[1].replace(/\/\*[\s\S]*?\*\//g, '').split(';')) {
    const declaration = line.trim();
    if (!declaration) continue;
    const parts = declaration.match(/^(.*?)\s*(\w+)$/);
    assert.ok(parts, `cannot read the field '${declaration}' of ${name}`);
    const [, type, field] = parts;
    const kind = type.includes('*') ? 'pointer' : type.replace(/^const\s+/, '');
    const size = WASM32_SIZES[kind];
    assert.ok(size, `${name}.${field}: type '${type}' has no known wasm32 size`);
    offset = Math.ceil(offset / size) * size;
    fields.push({ field, offset, size });
    offset += size;
    align = Math.max(align, size);
  }
  return { fields, size: Math.ceil(offset / align) * align };
}

const constant = (name) => {
  const match = loader.match(new RegExp(`const ${name} = (\\d+);`));
  assert.ok(match, `api.mjs defines no ${name}`);
  return Number(match[1]);
};
const snakeCase = (name) => name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

test('FunnelFeatureInfo: FEATURE_INFO_BYTES and the five words inspect() reads', () => {
  const { fields, size } = layout('FunnelFeatureInfo');
  assert.equal(constant('FEATURE_INFO_BYTES'), size);
  const read = loader.match(/const \[([\w, ]+)\] = m\.HEAPU32\.subarray\(info >> 2, \(info >> 2\) \+ (\d+)\)/);
  assert.ok(read, 'api.mjs: inspect() no longer reads the feature info as one subarray of words');
  const names = read[1].split(',').map((name) => snakeCase(name.trim()));
  assert.equal(Number(read[2]), names.length);
  assert.deepEqual(names, fields.map((f) => f.field));
  assert.ok(fields.every((f, i) => f.size === 4 && f.offset === 4 * i), 'every feature-info field is one 32-bit word');
});

test('FunnelCascadeRequest: REQUEST_WORDS, and the words in the order cascade() writes them', () => {
  const { fields, size } = layout('FunnelCascadeRequest');
  assert.equal(constant('REQUEST_WORDS') * 4, size);
  assert.ok(fields.every((f, i) => f.size === 4 && f.offset === 4 * i), 'every request field is one 32-bit word');
  // cascade() pushes k, retrieveK, then (array, length) for each list named in its `lists`, then threads,
  // prerankK and the skip flags.
  const lists = loader.match(/const lists = \[([^\]]*)\]\.map/);
  assert.ok(lists, 'api.mjs: cascade() no longer names its key lists in one array');
  const listNames = lists[1].split(',').map((name) => name.trim().replace(/'/g, ''));
  const countField = (list) => `${list.replace(/s$/, '')}_count`;
  assert.deepEqual(fields.map((f) => f.field),
                   ['k', 'retrieve_k', ...listNames.flatMap((list) => [list, countField(list)]), 'threads', 'prerank_k', 'skip']);
  // The skip flags' values as the header defines them.
  const flag = (name) => Number(header.match(new RegExp(`#define ${name} (\\d+)u`))[1]);
  const flags = loader.match(/const SKIP_FLAGS = \{ preRanking: (\d+), ranking: (\d+) \};/);
  assert.ok(flags, 'api.mjs defines no SKIP_FLAGS');
  assert.deepEqual([Number(flags[1]), Number(flags[2])], [flag('FUNNEL_SKIP_PRE_RANKING'), flag('FUNNEL_SKIP_RANKING')]);
});

test('FunnelCascadeTimings: the four doubles cascade() reads, in order', () => {
  const { fields, size } = layout('FunnelCascadeTimings');
  const alloc = loader.match(/const timings = scratch\.alloc\((\d+)\);/);
  assert.ok(alloc, 'api.mjs: cascade() no longer allocates its timings in one piece');
  assert.equal(Number(alloc[1]), size);
  const read = loader.match(/const \[([\w, ]+)\] =\s*Array\.from\(m\.HEAPF64\.subarray\(timings >> 3, \(timings >> 3\) \+ (\d+)\)/);
  assert.ok(read, 'api.mjs: cascade() no longer reads the timings as one subarray of doubles');
  const names = read[1].split(',').map((name) => snakeCase(name.trim()));
  assert.equal(Number(read[2]), names.length);
  assert.deepEqual(names, fields.map((f) => f.field));
  assert.ok(fields.every((f, i) => f.size === 8 && f.offset === 8 * i), 'every timing is one double');
});
