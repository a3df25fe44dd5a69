// How tests/js/support/npm_project.mjs classifies a failed `npm install`: only an unreachable registry is a skip
// (InstallError); a version that does not exist, a conflict or a missing/broken tarball fails the test. Runs npm
// for real against a closed port on 127.0.0.1 and a tarball that is not there (no network needed).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';

import { InstallError, networkFailure, project } from './support/npm_project.mjs';

const scratch = mkdtempSync(path.join(tmpdir(), 'funnel-npm-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

const closedPort = () => new Promise((resolve) => {
  const probe = createServer().listen(0, '127.0.0.1', () => {
    const { port } = probe.address();
    probe.close(() => resolve(port));
  });
});

test('a registry that refuses the connection is a network failure (a skip)', async () => {
  const dir = path.join(scratch, 'refused');
  mkdirSync(dir);
  writeFileSync(path.join(dir, 'package.json'), '{"name": "refused", "private": true}');
  const result = spawnSync('npm', ['install', '--no-audit', '--no-fund', '--fetch-retries=0', '--cache', path.join(scratch, 'cache'),
                                   `--registry=http://127.0.0.1:${await closedPort()}/`, 'left-pad@1.3.0'],
                           { cwd: dir, encoding: 'utf8' });
  assert.notEqual(result.status, 0);
  assert.ok(networkFailure(result.stderr), result.stderr);
});

test("npm's errors for a wrong request are not network failures", () => {
  for (const stderr of [
    'npm error code ETARGET\nnpm error notarget No matching version found for vite@99.',
    'npm error code ERESOLVE\nnpm error ERESOLVE unable to resolve dependency tree',
    'npm error code EINTEGRITY\nnpm error sha512-... integrity checksum failed',
    'npm error code E404\nnpm error 404 Not Found - GET https://registry.npmjs.org/no-such-package-funnel',
  ]) assert.equal(networkFailure(stderr), false, stderr);
  for (const stderr of ['npm error code ENOTFOUND\nnpm error getaddrinfo ENOTFOUND registry.npmjs.org',
                        'npm error code EAI_AGAIN', 'npm error code ETIMEDOUT', 'npm error code ECONNRESET',
                        'npm error code E503\nnpm error 503 Service Unavailable - GET https://registry.npmjs.org/vite'])
    assert.equal(networkFailure(stderr), true, stderr);
});

test('a tarball that is not there fails the install with an error, not a skip', async () => {
  await assert.rejects(project(path.join(scratch, 'missing'), { tarball: path.join(scratch, 'no-such-package-1.0.0.tgz') }),
                       (error) => !(error instanceof InstallError) && /could not install no-such-package-1\.0\.0\.tgz/.test(error.message));
});
