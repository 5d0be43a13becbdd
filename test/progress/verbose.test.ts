import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { shortFormatTime, skipAtVerbosity } from '../../src/progress/verbose.ts';
import { repoRoot, runTsx } from '../helpers.ts';

const LINE = /^\[Parallel\(nJobs=2\)\]: (Using backend|Batch computation too|Done)/;
const program = join(repoRoot, 'test/fixtures/programs/verbose-run.ts');

async function verboseRun(env: Record<string, string>): Promise<{ stderr: string; stdout: string }> {
  const run = await runTsx(program, { env, timeoutMs: 60_000 });
  assert.equal(run.code, 0, run.stderr);
  return run;
}

describe('verbose messages', () => {
  test("time format and frequency rule follow joblib's", () => {
    assert.equal(shortFormatTime(1.23), '   1.2s');
    assert.equal(shortFormatTime(0), '   0.0s');
    assert.equal(shortFormatTime(150), ' 2.5min');
    assert.equal(skipAtVerbosity(0, 1), false, 'the first batch is always reported');
    assert.equal(skipAtVerbosity(5, 11), false, 'above 10 every batch is reported');
    assert.equal(skipAtVerbosity(5, 0), true);
    // At level 1 messages thin out quadratically: few among the first hundred batches.
    const shown = Array.from({ length: 100 }, (_, i) => i).filter((i) => !skipAtVerbosity(i, 1));
    assert.ok(shown.length < 5, `shown at ${shown.join(',')}`);
  });

  test('a run prints the backend, progress and a finished line to stderr', async () => {
    const { stderr, stdout } = await verboseRun({ VERBOSE: '5' });
    assert.equal(stdout, '');
    const lines = stderr.trim().split('\n');
    assert.equal(lines[0], '[Parallel(nJobs=2)]: Using backend ThreadsBackend with 2 concurrent workers.');
    assert.match(
      lines.at(-1) ?? '',
      /^\[Parallel\(nJobs=2\)\]: Done {2}16 out of {2}16 \| elapsed: +\d+\.\ds finished$/,
    );
    for (const line of lines) assert.match(line, LINE);
  });

  test('higher levels print more; above 10 every batch; 50 and more go to stdout', async () => {
    const counts: number[] = [];
    for (const verbose of ['1', '10', '11']) {
      const { stderr } = await verboseRun({ VERBOSE: verbose, BATCH: '1' });
      const done = stderr.split('\n').filter((l) => l.includes(': Done'));
      counts.push(done.length);
      // joblib's rule: above 10, every batch while the input is being read; once it is all dispatched,
      // every (total / verbose + 1)-th task, here every other one.
      if (verbose === '11') assert.ok(done.length >= 8, `${done.length} lines for 16 batches`);
    }
    assert.ok(counts[0]! <= counts[1]! && counts[1]! <= counts[2]!, `counts ${counts.join(' <= ')}`);
    const { stderr, stdout } = await verboseRun({ VERBOSE: '50' });
    assert.equal(stderr, '');
    assert.match(stdout, /Done {2}16 out of {2}16/);
  });

  test('auto batching reports its decisions at level 10', async () => {
    const { stderr } = await verboseRun({ VERBOSE: '10', TASKS: '64', MS: '1' });
    assert.match(stderr, /Batch computation too fast \([\d.e-]+s\.\) Setting batchSize=2\./);
  });

  test('with nJobs: 1 (a loop in this thread) no batch size is reported, only progress', async () => {
    const { stderr } = await verboseRun({ VERBOSE: '10', TASKS: '64', MS: '1', NJOBS: '1' });
    assert.doesNotMatch(stderr, /Batch computation|batchSize/);
    assert.match(
      stderr,
      /^\[Parallel\(nJobs=1\)\]: Using backend SequentialBackend with 1 concurrent workers\./,
    );
    assert.match(stderr, /Done {2}64 out of {2}64 \| elapsed: +\d+\.\ds finished/);
  });
});
