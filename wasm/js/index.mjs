// Funnel in JavaScript: the SDK's C ABI compiled to WebAssembly, wrapped in plain objects and exceptions.
import createFunnelModule from './funnel_wasm.cjs';

// As funnel::status_code_name spells them, so messages read the same as the CLI's and Status::to_string().
const STATUS_NAMES = ['Ok', 'InvalidArgument', 'NotFound', 'IoError', 'CorruptModel', 'Unsupported'];

// One WebAssembly instance serves every model: its heap holds them all.
let instancePromise;
function instance() {
  instancePromise ??= createFunnelModule();
  return instancePromise;
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
  if (typeof value === 'number') return m._funnel_wasm_number_to_key(value);
  throw new TypeError(`feature '${name}': list values must be strings or numbers`);
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

function toBytes(bytes) {
  if (bytes instanceof ArrayBuffer) return new Uint8Array(bytes);
  if (ArrayBuffer.isView(bytes)) return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  throw new TypeError('loadModel expects a Uint8Array or an ArrayBuffer');
}

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
      check(m, m._funnel_user_embedding(handle, user, out));
      return m.HEAPF32.slice(out >> 2, (out >> 2) + this.embeddingDim);
    });
  }

  recommend(features, { k = 10, exclude = [] } = {}) {
    const m = this.#m;
    const handle = this.#live();
    if (!Number.isInteger(k) || k < 1) throw new RangeError(`k must be a positive integer, not ${k}`);
    if (!Array.isArray(exclude) || !exclude.every((key) => typeof key === 'string'))
      throw new TypeError('exclude must be an array of item keys (strings)');
    // No answer is longer than the catalogue, so the output buffers need no more room than that. At least 1,
    // so that a model without a catalogue gets the SDK's own error.
    const capacity = Math.min(k, Math.max(this.catalogueSize, 1));
    const [indices, scores] = withFeatures(m, features, (user, scratch) => {
      const keys = exclude.map((key) => scratch.string(key));
      const excludeArray = scratch.alloc(keys.length * 4);
      const outIndices = scratch.alloc(capacity * 4);
      const outScores = scratch.alloc(capacity * 4);
      const outCount = scratch.alloc(4);
      m.HEAPU32.set(keys, excludeArray >> 2);
      check(m, m._funnel_retrieve(handle, user, capacity, excludeArray, keys.length, outIndices, outScores, outCount));
      const count = m.HEAPU32[outCount >> 2];
      return [m.HEAPU32.slice(outIndices >> 2, (outIndices >> 2) + count),
              m.HEAPF32.slice(outScores >> 2, (outScores >> 2) + count)];
    });
    return Array.from(indices, (index, i) => ({ key: this.itemKey(index), index, score: scores[i] }));
  }

  rank(features, request) {
    return this.#score('_funnel_rank', features, request);
  }

  prerank(features, request) {
    return this.#score('_funnel_prerank', features, request);
  }

  // rank and prerank: one stage's click probabilities of the candidates.
  #score(stage, features, { behaviours = [], candidates }) {
    const m = this.#m;
    const handle = this.#live();
    const keysOf = (array, what) => {
      if (!Array.isArray(array) || !array.every((key) => typeof key === 'string'))
        throw new TypeError(`${what} must be an array of item keys (strings)`);
      return array;
    };
    keysOf(behaviours, 'behaviours');
    keysOf(candidates, 'candidates');
    return withFeatures(m, features, (user, scratch) => {
      const pointers = (keys) => {
        const array = scratch.alloc(keys.length * 4);
        const strings = keys.map((key) => scratch.string(key));
        m.HEAPU32.set(strings, array >> 2);
        return array;
      };
      const behaviourArray = pointers(behaviours);
      const candidateArray = pointers(candidates);
      const out = scratch.alloc(candidates.length * 4);
      check(m, m[stage](handle, user, behaviourArray, behaviours.length, candidateArray, candidates.length, out));
      return m.HEAPF32.slice(out >> 2, (out >> 2) + candidates.length);
    });
  }

  free() {
    if (this.#handle) this.#m._funnel_model_free(this.#handle);
    this.#handle = 0;
  }
}

export async function loadModel(bytes) {
  const data = toBytes(bytes);
  const m = await instance();
  return withScratch(m, (scratch) => {
    const buffer = scratch.alloc(data.length);
    const out = scratch.alloc(4);
    m.HEAPU8.set(data, buffer);
    check(m, m._funnel_model_load_bytes(buffer, data.length, out));
    return new FunnelModel(m, m.HEAPU32[out >> 2]);
  });
}
