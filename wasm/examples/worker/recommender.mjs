// The page's side of recommender.worker.mjs: the model's calls, asynchronous, answered by a Web Worker, so that
// the page stays responsive however long a search takes (tests/js/worker.test.mjs measures it). Errors are
// rethrown here with the SDK's message ("InvalidArgument: missing feature 'age'").
//   import { Recommender } from './recommender.mjs';
//   const recommender = new Recommender();
//   await recommender.load('/model.funnel');        // a URL, or bytes (copied to the worker)
//   const { items } = await recommender.cascade({ user_id: 'u42', age: 31 }, { k: 10 });
//   recommender.terminate();
export class Recommender {
  #worker;
  #pending = new Map();
  #next = 0;

  constructor() {
    // The pattern Vite and webpack 5 follow to bundle the worker with its imports.
    this.#worker = new Worker(new URL('./recommender.worker.mjs', import.meta.url), { type: 'module' });
    this.#worker.onmessage = ({ data: { id, result, error } }) => {
      const { resolve, reject } = this.#pending.get(id);
      this.#pending.delete(id);
      if (error) reject(Object.assign(new Error(error.message), { name: error.name }));
      else resolve(result);
    };
    this.#worker.onerror = (event) => {
      for (const { reject } of this.#pending.values()) reject(new Error(`the recommender's worker failed: ${event.message}`));
      this.#pending.clear();
    };
  }

  #call(call, ...args) {
    return new Promise((resolve, reject) => {
      const id = this.#next++;
      this.#pending.set(id, { resolve, reject });
      this.#worker.postMessage({ id, call, args });
    });
  }

  /** Loads a model (a URL, relative to the page, or bytes) in the worker, replacing any; resolves to its inspect(). */
  load(source) {
    const url = typeof source == 'string' || source instanceof URL;
    return this.#call('load', url ? new URL(source, globalThis.document?.baseURI ?? globalThis.location?.href).href : source);
  }

  cascade(features, options) {
    return this.#call('cascade', features, options);
  }

  recommend(features, options) {
    return this.#call('recommend', features, options);
  }

  rank(features, request) {
    return this.#call('rank', features, request);
  }

  prerank(features, request) {
    return this.#call('prerank', features, request);
  }

  userEmbedding(features) {
    return this.#call('userEmbedding', features);
  }

  inspect() {
    return this.#call('inspect');
  }

  /** Stops the worker; its model goes with it. */
  terminate() {
    this.#worker.terminate();
    for (const { reject } of this.#pending.values()) reject(new Error('the recommender was terminated'));
    this.#pending.clear();
  }
}
