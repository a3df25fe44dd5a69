// The package's main entry: the SDK on the single-threaded WebAssembly build, in Node and in browsers (the API
// is in api.mjs; threads.mjs is the entry for the threaded build).
import { defaultModule, entry } from './api.mjs';

export { FunnelModel } from './api.mjs';
export const { loadModel, version, threads } = entry(defaultModule);
