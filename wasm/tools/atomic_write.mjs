// The atomic write of funnel/atomic_file.hpp for the Node tools that write results (latency tables,
// evaluation reports), which cannot call the native one: a unique temporary file beside the target
// (exclusive create), fsync, rename over the target, fsync of the folder; the temporary is removed on
// every error, and the error names the file and the reason. The same steps, in the same order.
import { closeSync, fsyncSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import path from 'node:path';

let counter = 0;

export function writeFileAtomically(file, data) {
  const bytes = typeof data === 'string' ? Buffer.from(data) : data;
  let temporary = null;
  let fd = null;
  try {
    for (let attempt = 0; fd === null; ++attempt) {
      temporary = `${file}.tmp-${process.pid}-${counter++}`;
      try {
        fd = openSync(temporary, 'wx');
      } catch (error) {
        if (error.code !== 'EEXIST' || attempt >= 1000) {
          temporary = null;
          throw error;
        }
      }
    }
    for (let written = 0; written < bytes.length;) written += writeSync(fd, bytes, written);
    fsyncSync(fd);
    closeSync(fd);
    fd = null;
    renameSync(temporary, file);
    temporary = null;
    const folder = openSync(path.dirname(file), 'r');
    try {
      fsyncSync(folder);
    } finally {
      closeSync(folder);
    }
  } catch (error) {
    if (fd !== null) closeSync(fd);
    if (temporary !== null) {
      try { unlinkSync(temporary); } catch { /* already gone */ }
    }
    throw new Error(`${file}: cannot write: ${error.message}`);
  }
}
