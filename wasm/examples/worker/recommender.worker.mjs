// A Web Worker that owns a Funnel model, so that a search over a large catalogue never blocks the page: the
// page talks to it through recommender.mjs. Bundled with the page (Vite: `worker: { format: 'es' }`; webpack 5
// as is), it imports the package like any module.
import { loadModel } from 'funnel-recsys';

// What the page may call on the model (recommender.mjs's methods); load replaces the model.
const CALLS = ['cascade', 'recommend', 'rank', 'prerank', 'userEmbedding', 'inspect'];
let model;

self.onmessage = async ({ data: { id, call, args } }) => {
  try {
    let result;
    if (call === 'load') {
      const loaded = await loadModel(args[0]);
      model?.free();
      model = loaded;
      result = model.inspect();
    } else if (CALLS.includes(call)) {
      if (!model) throw new Error('no model: call load() first');
      result = model[call](...args);
    } else {
      throw new TypeError(`the worker has no call '${call}'; its calls are load, ${CALLS.join(', ')}`);
    }
    self.postMessage({ id, result });
  } catch (error) {
    self.postMessage({ id, error: { name: error.name, message: error.message } });
  }
};
