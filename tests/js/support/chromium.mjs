// Debian's headless Chromium through playwright-core, for the browser tests: the launcher (undefined without
// playwright-core), the executable's path (CHROMIUM, else /usr/bin/chromium), and the reason to skip — a
// required environment variable unset, playwright-core or Chromium missing — or false.
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
