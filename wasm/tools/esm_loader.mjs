// Build step: the Emscripten loader (CommonJS/UMD, for Node) as an ES module for browsers, where index.mjs
// cannot import a CommonJS file. Emscripten 3.1.6's own -sEXPORT_ES6 output does not run in Node
// (__dirname), so one link makes both: this replaces the UMD footer with `export default`, and declares a
// module-local `require`, so that bundlers (esbuild: "Could not resolve 'fs'") do not take the Node branches'
// require('fs') for dependencies: in an ES module in a browser those branches never run. api.mjs passes
// locateFile, so the .wasm is found beside the loader whatever page imports it.
//   node wasm/tools/esm_loader.mjs IN.cjs OUT.mjs
import { readFileSync, writeFileSync } from 'node:fs';

const [input, output] = process.argv.slice(2);
const text = readFileSync(input, 'utf8');
const footer = /\nif \(typeof exports === 'object' && typeof module === 'object'\)\n[\s\S]*$/;
if (!footer.test(text)) throw new Error(`${input}: the UMD footer this step replaces was not found`);
writeFileSync(output, `var require;\n${text.replace(footer, '\nexport default createFunnelModule;\n')}`);
