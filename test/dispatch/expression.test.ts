import assert from 'node:assert/strict';
import { test } from 'node:test';
import { evaluatePreDispatch } from '../../src/dispatch/expression.ts';
import { InvalidArgumentError } from '../../src/index.ts';

test('preDispatch expressions are evaluated without running code', () => {
  assert.equal(evaluatePreDispatch('2*nJobs', 4), 8);
  assert.equal(evaluatePreDispatch('3 * nJobs + 1', 2), 7);
  assert.equal(evaluatePreDispatch('(nJobs + 1) / 2', 4), 2);
  assert.equal(evaluatePreDispatch(5, 4), 5);
  assert.equal(evaluatePreDispatch('all', 4), Number.POSITIVE_INFINITY);
  for (const bad of ['process.exit()', 'nJobs;1', '0*nJobs', '', 'x'.repeat(40), 0, 1.5, -2]) {
    assert.throws(() => evaluatePreDispatch(bad as string, 2), InvalidArgumentError, String(bad));
  }
});
