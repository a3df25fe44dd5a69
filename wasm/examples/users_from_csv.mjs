// Turns the first N rows of a users CSV with a header (the built-in dataset's users.csv) into a JSON
// array of raw feature objects, numbers as numbers: the requests the parity tests send.
//   node wasm/examples/users_from_csv.mjs users.csv N > users.json
import { readFileSync } from 'node:fs';

const [path, count = '20'] = process.argv.slice(2);
const [header, ...rows] = readFileSync(path, 'utf8').trim().split('\n');
const names = header.split(',');
const users = rows.slice(0, Number(count)).map((row) =>
  Object.fromEntries(row.split(',').map((value, i) => [names[i], value !== '' && !Number.isNaN(Number(value)) ? Number(value) : value])));
console.log(JSON.stringify(users));
