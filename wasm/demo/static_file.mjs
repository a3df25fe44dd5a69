// The one checked mapping from a URL path to a file under a served folder, shared by the demo's server
// (serve.mjs) and the test servers (tests/js/support/npm_project.mjs, tests/js/browser.test.mjs).
//   staticFile(dir, pathname) -> { status: 200, file } | { status: 400 } | { status: 404 }
// 400: the path does not decode (`/%`) or holds a NUL; 404: it leaves dir (`..%2F`, or a sibling folder whose name
// starts with dir's, which a plain startsWith check lets through), names dir itself, or names no plain file.
import { statSync } from 'node:fs';
import path from 'node:path';

export function staticFile(dir, pathname) {
  let name;
  try {
    name = decodeURIComponent(pathname);
  } catch {
    return { status: 400 };
  }
  if (name.includes('\0')) return { status: 400 };
  const root = path.resolve(dir);
  const file = path.join(root, name);
  const rel = path.relative(root, file);
  if (rel === '' || rel === '..' || rel.startsWith(`..${path.sep}`) || path.isAbsolute(rel)) return { status: 404 };
  try {
    return statSync(file).isFile() ? { status: 200, file } : { status: 404 };
  } catch {
    return { status: 404 };
  }
}
