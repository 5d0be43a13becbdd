import assert from 'node:assert/strict';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { shortFormatTime, skipAtVerbosity } from '../../src/progress/verbose.ts';
import { repoRoot, runTsx } from '../helpers.ts';

const LINE = /^\[Parallel\(nJobs=2\)\]: (Using backend|Batch computation too|Done)/;
const program = join(repoRoot, 'test/fixtures/programs/verbose-run.ts');

/**
 * Every run the tests read, in one program: each program started from source costs about two seconds
 * of CPU (tsx, and its two worker threads), and the runs do not need one each. Each run is a new
 * Parallel with its own verbose level, as it was in a program of its own; the program marks where each
 * run's output starts on both streams.
 */
const RUNS = {
  five: { verbose: 5 },
  one: { verbose: 1, batch: 1 },
  ten: { verbose: 10, batch: 1 },
  eleven: { verbose: 11, batch: 1 },
  fifty: { verbose: 50 },
  autoBatching: { verbose: 10, tasks: 64, ms: 1 },
  sequential: { verbose: 10, tasks: 64, ms: 1, nJobs: 1 },
};
type RunName = keyof typeof RUNS;
const outputs = new Map<RunName, { stderr: string; stdout: string }>();

/** Cuts a stream's text at the program's `=== run <n> ===` lines: the text of each run, in order. */
function byRun(text: string, count: number): string[] {
  const parts = text.split(/^=== run \d+ ===\n/m);
  assert.equal(parts.shift(), '', 'nothing is printed before the first run');
  assert.equal(parts.length, count);
  return parts;
}

before(async () => {
  const names = Object.keys(RUNS) as RunName[];
  const run = await runTsx(program, {
    env: { RUNS: JSON.stringify(names.map((name) => RUNS[name])) },
    timeoutMs: 120_000,
  });
  assert.equal(run.code, 0, run.stderr);
  const stderr = byRun(run.stderr, names.length);
  const stdout = byRun(run.stdout, names.length);
  names.forEach((name, i) => {
    outputs.set(name, { stderr: stderr[i] ?? '', stdout: stdout[i] ?? '' });
  });
});

function verboseRun(name: RunName): { stderr: string; stdout: string } {
  const output = outputs.get(name);
  assert.ok(output, `run ${name} printed nothing`);
  return output;
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

  test('a run prints the backend, progress and a finished line to stderr', () => {
    const { stderr, stdout } = verboseRun('five');
    assert.equal(stdout, '');
    const lines = stderr.trim().split('\n');
    assert.equal(lines[0], '[Parallel(nJobs=2)]: Using backend ThreadsBackend with 2 concurrent workers.');
    assert.match(
      lines.at(-1) ?? '',
      /^\[Parallel\(nJobs=2\)\]: Done {2}16 out of {2}16 \| elapsed: +\d+\.\ds finished$/,
    );
    for (const line of lines) assert.match(line, LINE);
  });

  test('higher levels print more; above 10 every batch; 50 and more go to stdout', () => {
    const counts: number[] = [];
    for (const verbose of ['one', 'ten', 'eleven'] as const) {
      const { stderr } = verboseRun(verbose);
      const done = stderr.split('\n').filter((l) => l.includes(': Done'));
      counts.push(done.length);
      // joblib's rule: above 10, every batch while the input is being read; once it is all dispatched,
      // every (total / verbose + 1)-th task, here every other one.
      if (verbose === 'eleven') assert.ok(done.length >= 8, `${done.length} lines for 16 batches`);
    }
    assert.ok(counts[0]! <= counts[1]! && counts[1]! <= counts[2]!, `counts ${counts.join(' <= ')}`);
    const { stderr, stdout } = verboseRun('fifty');
    assert.equal(stderr, '');
    assert.match(stdout, /Done {2}16 out of {2}16/);
  });

  test('auto batching reports its decisions at level 10', () => {
    const { stderr } = verboseRun('autoBatching');
    assert.match(stderr, /Batch computation too fast \([\d.e-]+s\.\) Setting batchSize=2\./);
  });

  test('with nJobs: 1 (a loop in this thread) no batch size is reported, only progress', () => {
    const { stderr } = verboseRun('sequential');
    assert.doesNotMatch(stderr, /Batch computation|batchSize/);
    assert.match(
      stderr,
      /^\[Parallel\(nJobs=1\)\]: Using backend SequentialBackend with 1 concurrent workers\./,
    );
    assert.match(stderr, /Done {2}64 out of {2}64 \| elapsed: +\d+\.\ds finished/);
  });
});
