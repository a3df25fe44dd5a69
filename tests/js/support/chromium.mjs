// Debian's headless Chromium through playwright-core, for the browser tests and wasm/tools/bench_layers_chromium.mjs:
// the launcher (undefined without playwright-core), the executable's path (CHROMIUM, else /usr/bin/chromium), the
// flags every launch uses, launchChromium(), and the reason to skip — a required environment variable unset,
// playwright-core or Chromium missing — or false.
import { existsSync } from 'node:fs';

export const chromiumPath = process.env.CHROMIUM ?? '/usr/bin/chromium';

export let chromium;
try {
  ({ chromium } = await import('playwright-core'));
} catch {
  chromium = undefined;
}

export function skipReason(requiredEnv) {
  const missing = requiredEnv.filter((name) => !process.env[name]);
  return missing.length ? `set ${missing.join(', ')} to run this test`
    : !chromium ? 'npm install (playwright-core) to run this test'
    : !existsSync(chromiumPath) ? `no Chromium at ${chromiumPath} (set CHROMIUM)` : false;
}

// No sandbox (root in a container), no GPU, and nothing that reaches the network on its own.
export const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
                              '--disable-component-update', '--disable-sync'];

export const launchChromium = (executablePath = chromiumPath) => chromium.launch({ executablePath, args: CHROMIUM_ARGS });
