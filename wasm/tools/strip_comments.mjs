// Build step: copies a JS file without its whole-line // comments, indentation and blank lines (what the
// package ships counts against its gzip budget; the source in wasm/js/ keeps them). A line-based strip,
// safe for files without multi-line template literals or strings, which it refuses.
//   node wasm/tools/strip_comments.mjs IN OUT
import { readFileSync, writeFileSync } from 'node:fs';

const [input, output] = process.argv.slice(2);
const lines = readFileSync(input, 'utf8').split('\n');
lines.forEach((line, i) => {
  if ((line.match(/`/g) ?? []).length % 2) throw new Error(`${input}:${i + 1}: a template literal spans lines`);
});
const kept = lines.map((line) => line.trim()).filter((line) => line && !line.startsWith('//'));
writeFileSync(output, `${kept.join('\n')}\n`);
