// Funnel in JavaScript: the SDK's C ABI compiled to WebAssembly, wrapped in plain objects and exceptions. The
// entry points are index.mjs (the default build) and threads.mjs (the threaded one where the page allows it).

// As funnel::status_code_name spells them, so messages read the same as the CLI's and Status::to_string().
const STATUS_NAMES = ['Ok', 'InvalidArgument', 'NotFound', 'IoError', 'CorruptModel', 'Unsupported'];

// Node loads the CommonJS loader; browsers the ES-module one (funnel_wasm.web.mjs, made from the same link).
// What only Node imports is named by a variable, with the comments webpack and Vite read, so that no bundler
// follows it (esbuild fails on a literal 'node:fs/promises'): a browser build never reaches it. The .wasm is named by a literal `new URL()`, the pattern
// bundlers (Vite, webpack, Rollup with @web/rollup-plugin-import-meta-assets) follow to emit it beside the code.
export const isNode = typeof process == 'object' && !!process.versions?.node;
const NODE_LOADER = './funnel_wasm.cjs';
const NODE_FS = 'node:fs/promises';
export async function defaultModule() {
  if (isNode) return (await import(/* webpackIgnore: true */ /* @vite-ignore */ NODE_LOADER)).default();
  const { default: create } = await import('./funnel_wasm.web.mjs');
  const wasm = new URL('./funnel_wasm.wasm', import.meta.url).href;
  return create({ locateFile: () => wasm });
}

function check(m, status) {
  if (status === 0) return;
  const name = STATUS_NAMES[status] ?? `Status${status}`;
  throw new Error(`${name}: ${m.UTF8ToString(m._funnel_last_error())}`);
}

// Runs fn with an allocator whose blocks are all freed when fn returns or throws. Any allocation may grow
// the heap and detach m.HEAPU8 & co., so callers read the views only after their last allocation.
function withScratch(m, fn) {
  const blocks = [];
  const scratch = {
    alloc(bytes) {
      const pointer = m._malloc(Math.max(bytes, 1));
      if (!pointer) throw new Error(`out of WebAssembly memory allocating ${bytes} bytes`);
      blocks.push(pointer);
      return pointer;
    },
    string(text) {
      const bytes = m.lengthBytesUTF8(text) + 1;
      const pointer = scratch.alloc(bytes);
      m.stringToUTF8(text, pointer, bytes);
      return pointer;
    },
  };
  try {
    return fn(scratch);
  } finally {
    for (const pointer of blocks) m._free(pointer);
  }
}

function listValue(m, scratch, name, value) {
  if (typeof value === 'string') return scratch.string(value);
  // The SDK spells numbers as keys its own way (1 -> "1"); asking it keeps JS, CLI and C++ in agreement.
  if (Number.isFinite(value)) return m._funnel_wasm_number_to_key(value);
  throw new TypeError(`feature '${name}': list values must be strings or finite numbers`);
}

function setFeatures(m, scratch, handle, features) {
  if (features === null || typeof features !== 'object' || Array.isArray(features))
    throw new TypeError('features must be an object of feature name -> value');
  for (const [name, value] of Object.entries(features)) {
    const namePointer = scratch.string(name);
    if (typeof value === 'string') {
      check(m, m._funnel_features_set_string(handle, namePointer, scratch.string(value)));
    } else if (typeof value === 'number') {
      check(m, m._funnel_features_set_number(handle, namePointer, value));
    } else if (Array.isArray(value)) {
      if (value.length === 0) check(m, m._funnel_features_set_empty_list(handle, namePointer));
      for (const element of value)
        check(m, m._funnel_features_add_to_list(handle, namePointer, listValue(m, scratch, name, element)));
    } else {
      throw new TypeError(`feature '${name}' must be a string, a number or an array`);
    }
  }
}

function withFeatures(m, features, fn) {
  return withScratch(m, (scratch) => {
    const handle = m._funnel_features_new();
    try {
      setFeatures(m, scratch, handle, features);
      return fn(handle, scratch);
    } finally {
      m._funnel_features_free(handle);
    }
  });
}

// A model's bytes from bytes, a URL (fetch) or, in Node, a file path (or a file: URL).
async function toBytes(source) {
  if (source instanceof ArrayBuffer) return new Uint8Array(source);
  if (ArrayBuffer.isView(source)) return new Uint8Array(source.buffer, source.byteOffset, source.byteLength);
  if (typeof source == 'string' || source instanceof URL) {
    const text = String(source);
    if (isNode && !/^(https?|data|blob):/i.test(text)) {
      const fs = await import(/* webpackIgnore: true */ /* @vite-ignore */ NODE_FS);
      return new Uint8Array(await fs.readFile(/^file:/i.test(text) ? new URL(text) : text));
    }
    const response = await fetch(source);
    if (!response.ok) throw new Error(`IoError: fetching ${text} answered ${response.status} ${response.statusText}`);
    return new Uint8Array(await response.arrayBuffer());
  }
  throw new TypeError('loadModel expects a Uint8Array, an ArrayBuffer, a URL or (in Node) a file path');
}

const keyList = (array, what) => {
  if (!Array.isArray(array) || !array.every((key) => typeof key == 'string'))
    throw new TypeError(`${what} must be an array of item keys (strings)`);
  return array;
};

// Counts (k, retrieveK, prerankK) are positive integers in every call; left out, they take their default.
const count = (value, what, fallback) => {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 1) throw new RangeError(`${what} must be a positive integer, not ${value}`);
  return value;
};

// A call's options object, checked against the names the call knows: a misspelt option (retrieve_k for
// retrieveK) is an error rather than silently ignored.
const known = (options, call, names) => {
  if (options === null || typeof options != 'object') throw new TypeError(`${call} options must be an object`);
  for (const name of Object.keys(options))
    if (!names.includes(name)) throw new TypeError(`${call} has no option '${name}'; its options are ${names.join(', ')}`);
  return options;
};
// cascade()'s options.
const CASCADE_OPTIONS = ['k', 'retrieveK', 'prerankK', 'behaviours', 'candidates', 'exclude', 'allow', 'skip'];

// Writes an array of key strings into the heap and returns its address.
const keyArray = (m, scratch, keys) => {
  const strings = keys.map((key) => scratch.string(key));
  const array = scratch.alloc(keys.length * 4);
  m.HEAPU32.set(strings, array >> 2);
  return array;
};

// cascade({skip: ['preRanking', 'ranking']}): stages the file holds that the call leaves out.
const skipFlags = (stages) => {
  if (!Array.isArray(stages)) throw new TypeError("skip must be an array of stage names ('preRanking', 'ranking')");
  return stages.reduce((flags, stage) => {
    if (!Object.hasOwn(SKIP_FLAGS, stage)) throw new TypeError(`skip: unknown stage '${stage}'; the stages are 'preRanking' and 'ranking'`);
    return flags | SKIP_FLAGS[stage];
  }, 0);
};

const FEATURE_INFO_BYTES = 20;  // FunnelFeatureInfo in wasm32: name, kind, cardinality, vocabulary_size, hash_buckets
const REQUEST_WORDS = 13;       // FunnelCascadeRequest: thirteen size_t / pointer fields
const SKIP_FLAGS = { preRanking: 1, ranking: 2 };  // FUNNEL_SKIP_PRE_RANKING, FUNNEL_SKIP_RANKING

export class FunnelModel {
  #m;
  #handle;

  constructor(m, handle) {
    this.#m = m;
    this.#handle = handle;
    this.catalogueSize = m._funnel_model_catalogue_size(handle);
    this.embeddingDim = m._funnel_model_embedding_dim(handle);
    this.hasRanking = m._funnel_model_has_ranking(handle) === 1;
    this.hasPreRanking = m._funnel_model_has_pre_ranking(handle) === 1;
  }

  #live() {
    if (!this.#handle) throw new Error('FunnelModel used after free()');
    return this.#handle;
  }

  itemKey(index) {
    const m = this.#m;
    const handle = this.#live();
    return withScratch(m, (scratch) => {
      const length = scratch.alloc(4);
      const key = Number.isInteger(index) && index >= 0 ? m._funnel_model_item_key(handle, index, length) : 0;
      if (!key) throw new RangeError(`item index ${index} is outside [0, ${this.catalogueSize})`);
      return m.UTF8ToString(key, m.HEAPU32[length >> 2]);
    });
  }

  userEmbedding(features) {
    const m = this.#m;
    const handle = this.#live();
    return withFeatures(m, features, (user, scratch) => {
      const out = scratch.alloc(this.embeddingDim * 4);
      check(m, m._funnel_model_user_embedding(handle, user, out));
      return m.HEAPF32.slice(out >> 2, (out >> 2) + this.embeddingDim);
    });
  }

  recommend(features, options = {}) {
    const m = this.#m;
    const handle = this.#live();
    const { k: wanted, exclude = [] } = known(options, 'recommend()', ['k', 'exclude']);
    const k = count(wanted, 'k', 10);
    keyList(exclude, 'exclude');
    // No answer is longer than the catalogue, so the output buffers need no more room than that. At least 1,
    // so that a model without a catalogue gets the SDK's own error.
    const capacity = Math.min(k, Math.max(this.catalogueSize, 1));
    const [indices, scores] = withFeatures(m, features, (user, scratch) => {
      const excludeArray = keyArray(m, scratch, exclude);
      const outIndices = scratch.alloc(capacity * 4);
      const outScores = scratch.alloc(capacity * 4);
      const outCount = scratch.alloc(4);
      check(m, m._funnel_model_retrieve(handle, user, capacity, excludeArray, exclude.length, outIndices, outScores, outCount));
      const count = m.HEAPU32[outCount >> 2];
      return [m.HEAPU32.slice(outIndices >> 2, (outIndices >> 2) + count),
              m.HEAPF32.slice(outScores >> 2, (outScores >> 2) + count)];
    });
    return Array.from(indices, (index, i) => ({ key: this.itemKey(index), index, score: scores[i] }));
  }

  rank(features, request) {
    return this.#score('rank', features, request);
  }

  prerank(features, request) {
    return this.#score('prerank', features, request);
  }

  // rank and prerank: one stage's click probabilities of the candidates.
  #score(stage, features, request) {
    const m = this.#m;
    const handle = this.#live();
    const { behaviours = [], candidates } = known(request, `${stage}()`, ['behaviours', 'candidates']);
    keyList(behaviours, 'behaviours');
    keyList(candidates, 'candidates');
    return withFeatures(m, features, (user, scratch) => {
      const behaviourArray = keyArray(m, scratch, behaviours);
      const candidateArray = keyArray(m, scratch, candidates);
      const out = scratch.alloc(candidates.length * 4);
      check(m, m[`_funnel_model_${stage}`](handle, user, behaviourArray, behaviours.length, candidateArray, candidates.length, out));
      return m.HEAPF32.slice(out >> 2, (out >> 2) + candidates.length);
    });
  }

  // The whole cascade the file holds (retrieval, pre-ranking, ranking) in one call, with each stage's time.
  cascade(features, options = {}) {
    const m = this.#m;
    const handle = this.#live();
    known(options, 'cascade()', CASCADE_OPTIONS);
    const lists = ['behaviours', 'candidates', 'exclude', 'allow'].map((what) => keyList(options[what] ?? [], what));
    // No stage holds more items than the catalogue or the candidates, so each count is clamped to that (the
    // answers are the same) and the output buffers need no more room: a huge k cannot overflow the heap.
    const most = Math.max(this.catalogueSize, lists[1].length, 1);
    const k = Math.min(count(options.k, 'k', 10), most);
    // 0 asks the C ABI for its default (200 and 50).
    const words = [k, Math.min(count(options.retrieveK, 'retrieveK', 0), most)];
    const prerankK = Math.min(count(options.prerankK, 'prerankK', 0), most);
    const skip = skipFlags(options.skip ?? []);
    return withFeatures(m, features, (user, scratch) => {
      for (const keys of lists) words.push(keyArray(m, scratch, keys), keys.length);
      words.push(m.threadCount ?? 1, prerankK, skip);  // threads scanning the catalogue (1 unless the threaded build is in use)
      const request = scratch.alloc(REQUEST_WORDS * 4);
      const outKeys = scratch.alloc(k * 4);
      const outLengths = scratch.alloc(k * 4);
      const outScores = scratch.alloc(k * 4);
      const outCount = scratch.alloc(4);
      const timings = scratch.alloc(32);
      m.HEAPU32.set(words, request >> 2);
      check(m, m._funnel_model_recommend(handle, user, request, outKeys, outLengths, outScores, outCount, timings));
      const n = m.HEAPU32[outCount >> 2];
      const items = [];
      for (let i = 0; i < n; ++i)
        items.push({ key: m.UTF8ToString(m.HEAPU32[(outKeys >> 2) + i], m.HEAPU32[(outLengths >> 2) + i]),
                     score: m.HEAPF32[(outScores >> 2) + i] });
      const [retrievalMs, rankingMs, totalMs, preRankingMs] =
        Array.from(m.HEAPF64.subarray(timings >> 3, (timings >> 3) + 4), (ms) => (Number.isNaN(ms) ? null : ms));
      return { items, timings: { retrievalMs, preRankingMs, rankingMs, totalMs } };
    });
  }

  // What the file holds: its format, producer, stages, features and metadata.
  inspect() {
    const m = this.#m;
    const handle = this.#live();
    return withScratch(m, (scratch) => {
      const info = scratch.alloc(FEATURE_INFO_BYTES);
      const features = [];
      for (let i = 0, n = m._funnel_model_feature_count(handle); i < n; ++i) {
        check(m, m._funnel_model_feature_info(handle, i, info));
        const [name, kind, cardinality, vocabularySize, hashBuckets] = m.HEAPU32.subarray(info >> 2, (info >> 2) + 5);
        features.push({ name: m.UTF8ToString(name), kind: m.UTF8ToString(kind), cardinality, vocabularySize, hashBuckets });
      }
      const pair = scratch.alloc(8);
      const metadata = {};
      for (let i = 0, n = m._funnel_model_metadata_count(handle); i < n; ++i) {
        check(m, m._funnel_model_metadata(handle, i, pair, pair + 4));
        metadata[m.UTF8ToString(m.HEAPU32[pair >> 2])] = m.UTF8ToString(m.HEAPU32[(pair >> 2) + 1]);
      }
      return {
        formatVersion: m._funnel_model_format_version(handle),
        producer: m.UTF8ToString(m._funnel_model_producer(handle)),
        byteSize: m._funnel_model_byte_size(handle) >>> 0,
        hasRetrieval: m._funnel_model_has_retrieval(handle) === 1,
        hasPreRanking: this.hasPreRanking,
        hasRanking: this.hasRanking,
        catalogueSize: this.catalogueSize,
        cataloguePrecision: m.UTF8ToString(m._funnel_model_catalogue_precision(handle)),
        embeddingDim: this.embeddingDim,
        features,
        metadata,
      };
    });
  }

  free() {
    if (this.#handle) this.#m._funnel_model_free(this.#handle);
    this.#handle = 0;
  }
}

// An entry point's functions over one WebAssembly instance (made by load() on first use), which serves every
// model: its heap holds them all. index.mjs passes the default build, threads.mjs the threaded one. A load
// that fails (the .wasm not fetched, say) is forgotten, so that the next call tries again.
export function entry(load) {
  let instance;
  const ready = () => (instance ??= load().catch((error) => {
    instance = undefined;
    throw error;
  }));
  return {
    // The SDK's version.
    async version() {
      const m = await ready();
      return m.UTF8ToString(m._funnel_version());
    },
    // How many threads the module scans a catalogue with: 1 for the default build, up to 4 for the threaded one.
    async threads() {
      return (await ready()).threadCount ?? 1;
    },
    async loadModel(source) {
      const data = await toBytes(source);
      const m = await ready();
      return withScratch(m, (scratch) => {
        const buffer = scratch.alloc(data.length);
        const out = scratch.alloc(4);
        m.HEAPU8.set(data, buffer);
        check(m, m._funnel_model_load_bytes(buffer, data.length, out));
        return new FunnelModel(m, m.HEAPU32[out >> 2]);
      });
    },
  };
}
