#!/usr/bin/env node
/**
 * Runs the compiled tests (`*.test.js` under the folders given) with Node's test runner, prints
 * its report, and fails when a test fails or when there is no test at all.
 *
 *   node scripts/run-tests.mjs out/test/unit out/test/integration
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

function testFiles(dir) {
  let found = [];
  for (const name of readdirSync(dir).sort()) {
    const full = join(dir, name);
    if (statSync(full).isDirectory()) {
      found = found.concat(testFiles(full));
    } else if (name.endsWith('.test.js')) {
      found.push(full);
    }
  }
  return found;
}

const dirs = process.argv.slice(2);
if (dirs.length === 0) {
  console.error('usage: node scripts/run-tests.mjs DIR...');
  process.exit(2);
}
const files = dirs.flatMap((dir) => testFiles(dir));
if (files.length === 0) {
  console.error(`no test files (*.test.js) under ${dirs.join(', ')}: failing`);
  process.exit(1);
}
const reportDir = mkdtempSync(join(tmpdir(), 'gemma-tests-'));
const tap = join(reportDir, 'report.tap');
const started = Date.now();
const run = spawnSync(
  process.execPath,
  ['--enable-source-maps', '--test', '--test-concurrency=1', '--test-reporter=spec', '--test-reporter-destination=stdout', '--test-reporter=tap', `--test-reporter-destination=${tap}`, ...files],
  { stdio: 'inherit' },
);
const report = readFileSync(tap, 'utf8');
rmSync(reportDir, { recursive: true, force: true });
const count = (name) => Number((report.match(new RegExp(`^# ${name} (\\d+)$`, 'm')) ?? [])[1] ?? 0);
const tests = count('tests');
const failed = count('fail') + count('cancelled');
console.log(`${files.length} test files, ${tests} tests, ${failed} failed, ${((Date.now() - started) / 1000).toFixed(1)} s`);
if (tests === 0) {
  console.error('the test runner found no tests: failing');
  process.exit(1);
}
process.exit(run.status === 0 && failed === 0 ? 0 : 1);
