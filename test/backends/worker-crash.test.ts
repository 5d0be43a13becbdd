/**
 * A task that leaves behind a throwing timer or a rejection nobody handles kills its worker on both
 * backends, and the run fails with a WorkerCrashedError naming that task (issue 14, item 3): the
 * threads backend used to resolve the run and print nothing.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { delayed, Parallel, type Task, WorkerCrashedError } from '../../src/index.ts';
import { square } from '../fixtures/tasks.ts';
import {
  hang,
  rejectAfterAsyncReturn,
  rejectAfterReturn,
  throwAfterReturn,
} from '../fixtures/worker-life-tasks.ts';
import { repoRoot, runTsx } from '../helpers.ts';

function crashedAt(taskIndex: number, functionName: string, message: RegExp) {
  return (error: unknown): boolean => {
    assert.ok(error instanceof WorkerCrashedError, String(error));
    assert.equal(error.taskIndex, taskIndex);
    assert.equal(error.functionName, functionName);
    assert.match(error.message, message);
    return true;
  };
}

for (const backend of ['threads', 'processes'] as const) {
  describe(`a task that fails after it returned, on ${backend}`, () => {
    // One Parallel (and pool) for the describe, closed when it ends: a new one per test started both
    // workers again each time (a tsx start each). Each test crashes a worker; the pool replaces it,
    // which every test checks with a run after the crash.
    const parallel = new Parallel({ nJobs: 2, backend });
    after(() => parallel.close());

    const cases: [string, () => Task, RegExp][] = [
      ['rejectAfterReturn', () => delayed(rejectAfterReturn)(), /rejected and never handled/],
      ['rejectAfterAsyncReturn', () => delayed(rejectAfterAsyncReturn)(), /never handled \(async\)/],
    ];
    for (const [name, make, message] of cases) {
      test(`an unhandled rejection (${name}) fails the run with WorkerCrashedError naming the task`, async () => {
        await assert.rejects(
          parallel.run([delayed(square)(1), make(), delayed(square)(3)]),
          crashedAt(1, name, message),
        );
        // The worker is replaced: the pool still runs tasks.
        assert.deepEqual(await parallel.run([delayed(square)(5), delayed(square)(6)]), [25, 36]);
      });
    }

    // Last: its other task never ends, and holds its worker until the describe's close() stops it.
    test('a timer that throws after the task returned fails the run, naming that task', async () => {
      // The other task never ends, so the run can only end through the timer's crash.
      await assert.rejects(
        parallel.run([delayed(throwAfterReturn)(1), delayed(hang)()]),
        crashedAt(0, 'throwAfterReturn', /thrown from a timer after the task returned/),
      );
      assert.deepEqual(await parallel.run([delayed(square)(4)]), [16]);
    });
  });
}

describe('a worker process that runs out of memory', () => {
  test("keeps V8's fatal-error report in the error (workerStderr), off the user's stderr", {
    timeout: 120_000,
  }, async () => {
    const result = await runTsx(join(repoRoot, 'test/fixtures/programs/out-of-memory.ts'), {
      timeoutMs: 110_000,
    });
    assert.equal(result.code, 0, result.stderr);
    const reported = JSON.parse(result.stdout.trim().split('\n').at(-1) ?? '{}') as Record<string, unknown>;
    assert.equal(reported.name, 'WorkerCrashedError');
    assert.match(String(reported.message), /speakThenExhaustMemory.*ran out of memory/);
    assert.equal(reported.fatal, true, 'the error carries FATAL ERROR');
    assert.equal(reported.gcs, true, 'the error carries the last GCs');
    assert.doesNotMatch(result.stderr, /FATAL ERROR|<--- Last few GCs --->|Native stack trace/);
    // What the task wrote itself still reaches the user.
    assert.match(result.stderr, /the task speaks before it runs out of memory/);
  });
});
