// The package as a user installs it, for tests/js/bundlers.test.mjs and worker.test.mjs: `npm pack` of the
// built package, fresh projects that install the tarball (and a bundler) from npm with a shared cache under
// build/, and a static server on 127.0.0.1 (with COOP/COEP when asked). An npm install that fails because the
// registry cannot be reached (no network, DNS, a refused or reset connection, a timeout, the registry's 5xx)
// throws InstallError, which the tests report as a skip with npm's message; any other failure (ETARGET: no such
// version, ERESOLVE, a broken tarball) is a real error and fails the test.
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import { staticFile } from '../../../wasm/demo/static_file.mjs';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const npmCache = path.join(root, 'build/npm-cache');
const run = promisify(execFile);

export class InstallError extends Error {}

// npm's error codes (and messages) that say the registry could not be reached, not that the install is wrong.
// (npm reports the registry's 5xx as code E500, E503...)
const NETWORK = /\b(ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ETIMEDOUT|ESOCKETTIMEDOUT|ENETUNREACH|EHOSTUNREACH|ECONNRESET|E5\d\d)\b/;

// Whether npm's output (stderr) says the install failed for want of the registry, not for what was asked.
export function networkFailure(stderr) {
  return NETWORK.test(stderr);
}

// Why packageDir cannot be packed here (false if it can): no package at all, or no threaded build in it, which
// the package's prepack script refuses (a package without threads/ would break funnel-recsys/threads).
export function unpackable(packageDir) {
  if (!existsSync(path.join(packageDir, 'package.json'))) return `no package.json in ${packageDir}: rebuild the WASM package`;
  if (!existsSync(path.join(packageDir, 'threads/funnel_wasm.wasm')))
    return `no threaded build in ${packageDir}, which npm pack refuses (build/wasm-threads: see wasm/CMakeLists.txt)`;
  return false;
}

// The tarball of packageDir, written afresh into build/bundlers/tarballs/<owner>/ (a folder per test file, so that
// test files running at once never remove each other's).
export function pack(packageDir, owner) {
  const dir = path.join(root, 'build/bundlers/tarballs', owner);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const [packed] = JSON.parse(execFileSync('npm', ['pack', '--json', '--pack-destination', dir, packageDir], { encoding: 'utf8' }));
  return path.join(dir, packed.filename);
}

// A fresh project in dir (emptied first) with files ({path: text}), the tarball and packages installed, then
// each build command ([command, ...args], run in dir). Returns the seconds npm and the build took.
export async function project(dir, { tarball, packages = [], files = {}, build = [] }) {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: `funnel-${path.basename(dir)}`, private: true, type: 'module' }));
  for (const [file, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
    writeFileSync(path.join(dir, file), text);
  }
  const started = Date.now();
  try {
    await run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error', '--cache', npmCache,
                      tarball, ...packages], { cwd: dir, maxBuffer: 16 << 20 });
  } catch (error) {
    const stderr = String(error.stderr || error.message).trim();
    const message = `npm could not install ${[path.basename(tarball), ...packages].join(' ')}: ` +
                    stderr.split('\n').slice(0, 3).join(' ');
    throw networkFailure(stderr) ? new InstallError(message) : new Error(`${message}\n${stderr}`);
  }
  const installed = Date.now();
  for (const [command, ...args] of build) {
    try {
      await run(command, args, { cwd: dir, maxBuffer: 16 << 20 });
    } catch (error) {
      throw new Error(`${path.basename(dir)}: ${command} ${args.join(' ')} failed:\n${error.stdout}\n${error.stderr}`);
    }
  }
  return { installS: (installed - started) / 1000, buildS: (Date.now() - installed) / 1000 };
}

const TYPES = { '.html': 'text/html', '.js': 'text/javascript', '.mjs': 'text/javascript', '.wasm': 'application/wasm',
                '.json': 'application/json', '.css': 'text/css' };

// Serves dir on 127.0.0.1, and extra ({'/path': Buffer}) beside it; COOP/COEP when isolated. Resolves to the server.
export async function serve(dir, { isolated = false, extra = {} } = {}) {
  const server = createServer((request, response) => {
    if (isolated) {
      response.setHeader('cross-origin-opener-policy', 'same-origin');
      response.setHeader('cross-origin-embedder-policy', 'require-corp');
    }
    let name = new URL(request.url, 'http://x').pathname;
    if (extra[name]) return response.writeHead(200, { 'content-type': 'application/octet-stream' }).end(extra[name]);
    if (name.endsWith('/')) name += 'index.html';
    const { status, file } = staticFile(dir, name);
    if (status !== 200) return response.writeHead(status).end();
    response.writeHead(200, { 'content-type': TYPES[path.extname(file)] ?? 'application/octet-stream' }).end(readFileSync(file));
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

// The flags the browser tests launch Debian's Chromium with (support/chromium.mjs holds them).
export { CHROMIUM_ARGS } from './chromium.mjs';
