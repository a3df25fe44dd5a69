// Emscripten 3.1.6 loads the .wasm with fetch() whenever fetch exists, and Node 18+ has one that cannot
// read file paths: hide it in Node so the loader falls back to reading the file.
var fetch = (typeof process == 'object' && process.versions && process.versions.node) ? undefined : globalThis.fetch;
