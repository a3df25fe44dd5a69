// The dense-layer latency table measured by the SDK in WebAssembly under Node: the same code as
// `funnel bench-layers` natively (funnel/layer_latency.hpp), from the module build/wasm/bench-layers/.
//   node wasm/tools/bench_layers.mjs --out latency-wasm-node.json [--candidates 1000]
//        [--inputs 8,16,32,64,128,256,512,1024] [--outputs 1,32,64,128,256,512] [--repeats 20]
//        [--target "wasm node"] [--module build/wasm/bench-layers]
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

import { writeFileAtomically } from './atomic_write.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export function parseArguments(argv, defaults) {
  const options = { ...defaults };
  for (let i = 0; i < argv.length; i += 2) {
    const name = argv[i].replace(/^--/, '');
    if (!(name in options) || i + 1 >= argv.length) throw new Error(`unknown option or missing value: ${argv[i]}`);
    options[name] = argv[i + 1];
  }
  if (!options.out) throw new Error('--out FILE is required');
  return options;
}

// Prints the table as `funnel bench-layers` does and writes the JSON.
export function report(json, out) {
  const table = JSON.parse(json);
  if (table.error) throw new Error(table.error);
  writeFileAtomically(out, json);
  const cell = (v) => String(v).padStart(9);
  console.log(`${'in\\out'.padEnd(8)}${table.outputs.map(cell).join(' ')}   (us per layer over ${table.candidates} candidates, median of ${table.repeats})`);
  table.inputs.forEach((a, i) => console.log(`${String(a).padEnd(8)}${table.microseconds[i].map((t) => cell(t.toFixed(1))).join(' ')}`));
  console.log(`wrote ${out} (${table.target})`);
  return table;
}

const defaults = { out: '', candidates: '1000', inputs: '', outputs: '', repeats: '20', target: 'wasm node',
                   module: path.join(root, 'build/wasm/bench-layers') };

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const options = parseArguments(process.argv.slice(2), defaults);
  const { default: createFunnelBenchModule } = await import(pathToFileURL(path.resolve(options.module, 'funnel_bench_layers.cjs')).href);
  const m = await createFunnelBenchModule();
  const json = m.ccall('funnel_bench_layers', 'string', ['string', 'number', 'string', 'string', 'number'],
                       [options.target, Number(options.candidates), options.inputs, options.outputs, Number(options.repeats)]);
  report(json, options.out);
}
