import assert from 'node:assert/strict';
import { availableParallelism } from 'node:os';
import { test } from 'node:test';
import { cpuCount, effectiveNJobs, InvalidArgumentError, Parallel } from '../src/index.ts';

test('cpuCount is at least 1 and at most what the process may use', () => {
  const n = cpuCount();
  assert.ok(Number.isInteger(n) && n >= 1);
  assert.ok(n <= availableParallelism());
});

test('effectiveNJobs resolves negative values as joblib does', () => {
  const cpus = cpuCount();
  assert.equal(effectiveNJobs(3), 3);
  assert.equal(effectiveNJobs(64), 64, 'more workers than CPUs is allowed');
  assert.equal(effectiveNJobs(-1), cpus);
  assert.equal(effectiveNJobs(-2), Math.max(1, cpus - 1));
  assert.equal(effectiveNJobs(-1000), 1);
});

test('bad options are refused before anything starts, naming the option', () => {
  for (const nJobs of [0, Number.NaN, 1.5, '2']) {
    assert.throws(() => effectiveNJobs(nJobs as number), InvalidArgumentError);
    assert.throws(() => new Parallel({ nJobs: nJobs as number }), /nJobs must be a non-zero integer/);
  }
  assert.throws(
    () => new Parallel({ backend: 'gpu' }),
    /backend must be one of 'threads', 'processes', 'sequential'/,
  );
  assert.throws(() => new Parallel({ verbose: -1 }), /verbose must be a number >= 0/);
  assert.throws(() => new Parallel({ batchSize: 0 }), /batchSize must be 'auto' or a positive integer/);
  assert.throws(() => new Parallel({ preDispatch: 'rm -rf' }), /preDispatch must be/);
});
