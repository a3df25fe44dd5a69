// The package's threaded entry (`funnel-recsys/threads`): the same API as index.mjs, on the threaded build
// (pthreads + SIMD, four workers) where the page is cross-origin isolated (served with COOP same-origin and COEP
// require-corp), else on the default build. Every file it needs is named by a literal `new URL()`, so that
// bundlers emit it: the .wasm, the workers' script and the classic loader they import.
import { defaultModule, entry, isNode } from './api.mjs';

export { FunnelModel } from './api.mjs';

const POOL = 4;  // the threaded build's workers (PTHREAD_POOL_SIZE)

// The workers' script is started from a blob: URL of its text: a bundler may inline a file this small as a
// data: URL (Vite does, under 4 KB), and a worker from a data: URL has an opaque origin, which may not load
// the classic loader.
async function workerUrl() {
  const response = await fetch(new URL('./threads/funnel_wasm.worker.js', import.meta.url));
  if (!response.ok) throw new Error(`funnel_wasm.worker.js answered ${response.status}`);
  return URL.createObjectURL(new Blob([await response.text()], { type: 'text/javascript' }));
}

async function threadedModule() {
  if (isNode || globalThis.crossOriginIsolated !== true) return undefined;
  try {
    const files = {
      'funnel_wasm.wasm': new URL('./threads/funnel_wasm.wasm', import.meta.url).href,
      'funnel_wasm.worker.js': await workerUrl(),
    };
    const { default: create } = await import('./threads/funnel_wasm.web.mjs');
    const m = await create({
      locateFile: (file) => files[file],
      mainScriptUrlOrBlob: new URL('./threads/funnel_wasm.classic.js', import.meta.url).href,
    });
    m.threadCount = Math.max(1, Math.min(POOL, globalThis.navigator?.hardwareConcurrency ?? POOL));
    return m;
  } catch (error) {
    console.warn('funnel-recsys/threads: the threaded build did not start; using the single-threaded one.', error);
    return undefined;
  }
}

export const { loadModel, version, threads } = entry(async () => (await threadedModule()) ?? defaultModule());
