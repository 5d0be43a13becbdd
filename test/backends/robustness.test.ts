import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import {
  delayed,
  InvalidArgumentError,
  Parallel,
  parallelConfig,
  type Task,
  TimeoutError,
  WorkerCrashedError,
} from '../../src/index.ts';
import {
  allocateForever,
  exitWorker,
  killSelf,
  markAndSpin,
  nestedRun,
  rejectUnhandled,
  spinForever,
  throwLater,
  throwValue,
} from '../fixtures/failing-tasks.ts';
import { waitForFile } from '../fixtures/latches.ts';
import { square, whereAmI } from '../fixtures/tasks.ts';
import { everyWorkerAnswered, repoRoot, tempDir } from '../helpers.ts';

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

/** Running, that is: a zombie (dead, waiting for init to collect its exit status) runs nothing. */
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

for (const backend of ['threads', 'processes'] as const) {
  describe(`stopping and failing well on ${backend}`, () => {
    // One pool for the describe: the Parallels of these tests have the same nJobs and worker
    // configuration, so they share it, and each is closed when the describe ends. Closing one in a test
    // would retire the pool, and the next test would start its workers again (a tsx start each). Workers
    // that a test kills are replaced by the pool, which is what these tests check.
    const parallel = new Parallel({ nJobs: 2, backend });
    const opened: Parallel[] = [parallel];
    after(() => Promise.all(opened.map((p) => p.close())));

    test('aborting a signal rejects even when tasks spin forever, and the pool recovers', async () => {
      const dir = tempDir();
      const spinning = [join(dir, 'a'), join(dir, 'b')];
      const controller = new AbortController();
      const running = parallel.run(
        [...spinning.map((file) => delayed(markAndSpin)(file)), delayed(square)(3)],
        { signal: controller.signal },
      );
      // Both workers are in their endless loops: only stopping them can settle the run.
      for (const file of spinning) await waitForFile(file);
      controller.abort();
      await assert.rejects(running, (error: unknown) => {
        assert.equal((error as Error).name, 'AbortError');
        return true;
      });
      assert.deepEqual(await parallel.run(range(4).map((i) => delayed(square)(i))), [0, 1, 4, 9]);
      await everyWorkerAnswered(backend, 2);
    });

    test('the signal of the Parallel, and an already aborted signal, work too', async () => {
      const spinning = join(tempDir(), 'spinning');
      const controller = new AbortController();
      const p = new Parallel({ nJobs: 2, backend, signal: controller.signal });
      opened.push(p);
      const running = p.run([delayed(markAndSpin)(spinning)]);
      await waitForFile(spinning);
      controller.abort(new Error('stop now'));
      await assert.rejects(running, /stop now/);
      await assert.rejects(p.run([delayed(square)(1)]), /stop now/);
    });

    test('timeoutMs fails the run with a TimeoutError naming the task, and replaces the worker', async () => {
      const p = new Parallel({ nJobs: 2, backend, timeoutMs: 300, batchSize: 1 });
      opened.push(p);
      const tasks = [delayed(square)(1), delayed(square)(2), delayed(spinForever)(), delayed(square)(3)];
      await assert.rejects(p.run(tasks), (error: unknown) => {
        assert.ok(error instanceof TimeoutError);
        assert.equal(error.taskIndex, 2);
        assert.equal(error.functionName, 'spinForever');
        assert.match(error.message, /Task 2 \(spinForever\) ran longer than timeoutMs=300/);
        return true;
      });
      assert.deepEqual(await p.run(range(3).map((i) => delayed(square)(i))), [0, 1, 4]);
      await everyWorkerAnswered(backend, 2);
    });

    const crashes: [string, () => Task, RegExp][] = [
      ['process.exit()', () => delayed(exitWorker)(3), /exited with code 3/],
      ['a throw in a timer', () => delayed(throwLater)(), /thrown from a timer/],
      ['an unhandled rejection', () => delayed(rejectUnhandled)(), /nobody handles this/],
    ];
    for (const [what, make, message] of crashes) {
      test(`a task that crashes its worker with ${what} rejects with WorkerCrashedError`, async () => {
        const tasks: Task[] = [delayed(square)(1), make()];
        await assert.rejects(parallel.run(tasks), (error: unknown) => {
          assert.ok(error instanceof WorkerCrashedError, String(error));
          assert.equal(error.taskIndex, 1);
          assert.match(error.message, message);
          return true;
        });
        assert.deepEqual(await parallel.run([delayed(square)(5)]), [25]);
      });
    }

    if (backend === 'processes') {
      test('a worker killed by a signal names the signal', async () => {
        await assert.rejects(parallel.run([delayed(killSelf)('SIGKILL')]), (error: unknown) => {
          assert.ok(error instanceof WorkerCrashedError);
          assert.equal(error.signal, 'SIGKILL');
          assert.match(error.message, /was killed by SIGKILL while running task 0 \(killSelf\)/);
          return true;
        });
      });
    }

    test('thrown values that are not Errors, AggregateError, cause chains and extra fields come back', async () => {
      await assert.rejects(
        parallel.run([delayed(throwValue)('string')]),
        (e: unknown) => e === 'plain string',
      );
      await assert.rejects(parallel.run([delayed(throwValue)('object')]), (e: unknown) => {
        assert.deepEqual(e, { code: 1, reason: 'an object' });
        return true;
      });
      await assert.rejects(parallel.run([delayed(throwValue)('aggregate')]), (e: unknown) => {
        assert.ok(e instanceof AggregateError);
        assert.equal(e.message, 'both failed');
        assert.ok(e.errors[0] instanceof TypeError && e.errors[1] instanceof RangeError);
        return true;
      });
      await assert.rejects(parallel.run([delayed(throwValue)('detailed')]), (e: unknown) => {
        const error = e as Error & { code: string; details: unknown };
        assert.equal(error.name, 'DetailedError');
        assert.equal(error.constructor.name, 'DetailedError');
        assert.equal(error.code, 'E_DETAILED');
        assert.deepEqual(error.details, { attempt: 3 });
        assert.equal((error.cause as Error).message, 'level 1');
        assert.equal(((error.cause as Error).cause as Error).message, 'level 2');
        return true;
      });
    });

    test('bad input is refused before any worker starts', async () => {
      assert.throws(
        () => new Parallel({ backend, timeoutMs: 0 }),
        /timeoutMs must be a number of milliseconds > 0/,
      );
      assert.throws(() => new Parallel({ backend, timeoutMs: -5 }), InvalidArgumentError);
      assert.throws(() => new Parallel({ backend, verbose: Number.NaN }), /verbose/);
      assert.throws(
        () => new Parallel({ backend, signal: {} as AbortSignal }),
        /signal must be an AbortSignal/,
      );
      await assert.rejects(
        parallel.run([delayed(square)(1), 42 as unknown as Task]),
        /item 1 is 42, not a task/,
      );
      function* breaksMidway() {
        yield delayed(square)(1);
        yield delayed(square)(2);
        throw new Error('the input broke');
      }
      await assert.rejects(parallel.run(breaksMidway()), /the input broke/);
      assert.deepEqual(await parallel.run([delayed(square)(9)]), [81]);
    });

    // Last: a memory cap makes a pool of its own, and starting it retires the shared one (idle).
    test('a task over maxWorkerMemoryMb crashes its worker, not the program', {
      timeout: 60_000,
    }, async () => {
      const p = new Parallel({ nJobs: 2, backend, maxWorkerMemoryMb: 64 });
      await assert.rejects(p.run([delayed(allocateForever)()]), (error: unknown) => {
        assert.ok(error instanceof WorkerCrashedError, String(error));
        assert.equal(error.taskIndex, 0);
        assert.equal(error.functionName, 'allocateForever');
        assert.match(error.message, /memory/);
        return true;
      });
      assert.deepEqual(await p.run([delayed(square)(2), delayed(square)(3)]), [4, 9]);
      await p.close();
    });
  });
}

describe('nested calls and scoped configuration', () => {
  test('a Parallel inside a task runs sequentially unless nested: true', async () => {
    const p = new Parallel({ nJobs: 2 });
    const [inner] = await p.run([delayed(nestedRun)(false)]);
    assert.deepEqual(inner?.results, [1, 4, 9]);
    const [outerThread, ...innerThreads] = inner?.threadIds ?? [];
    for (const id of innerThreads) assert.equal(id, outerThread, 'nested tasks ran in the same thread');
    const [allowed] = await p.run([delayed(nestedRun)(true)]);
    for (const id of allowed?.threadIds.slice(1) ?? []) assert.notEqual(id, allowed?.threadIds[0]);
    await p.close();
  });

  test('parallelConfig sets defaults for a scope; explicit options win', async () => {
    const seen = await parallelConfig({ backend: 'processes', nJobs: 2 }, async () => {
      const p = new Parallel();
      const where = await p.run([delayed(whereAmI)()]);
      await p.close();
      const explicit = new Parallel({ backend: 'sequential' });
      const here = await explicit.run([delayed(whereAmI)()]);
      return { where, here, nested: parallelConfig({ verbose: 0 }, () => new Parallel().nJobs) };
    });
    assert.notEqual(seen.where[0]?.pid, process.pid, 'the scope chose processes');
    assert.equal(seen.here[0]?.pid, process.pid, 'explicit backend wins');
    assert.equal(seen.nested, 2, 'inner scopes inherit what they do not set');
    assert.equal(new Parallel().nJobs, 1, 'outside the scope, the defaults are back');
    assert.throws(() => parallelConfig(null as unknown as object, () => 0), /config must be an object/);
  });
});

describe('Ctrl-C', () => {
  for (const backend of ['threads', 'processes']) {
    test(`SIGINT stops every worker and exits with 130 (${backend})`, { timeout: 60_000 }, async () => {
      const { code, stdout, stderr, pids } = await interrupt(backend, {});
      assert.equal(code, 130, stderr);
      assert.match(stderr, /Interrupted by Ctrl-C after 2 of 4 tasks \| elapsed:/);
      assert.equal(
        stderr
          .trim()
          .split('\n')
          .filter((l) => l.includes('Interrupted')).length,
        1,
      );
      assert.doesNotMatch(stdout, /run rejected/);
      for (const pid of pids) assert.equal(isAlive(pid), false, `worker ${pid} is still alive`);
    });
  }

  test('a program with its own SIGINT handler keeps control: run() rejects and cleans up', async () => {
    const { code, stdout, pids } = await interrupt('processes', { OWN_HANDLER: '1' });
    assert.equal(code, 0);
    assert.match(stdout, /own handler ran/);
    assert.match(stdout, /run rejected: InterruptedError/);
    assert.match(stdout, /program still in control/);
    for (const pid of pids) assert.equal(isAlive(pid), false, `worker ${pid} is still alive`);
  });
});

/** Starts the interrupted-program fixture, sends SIGINT once both workers spin, and waits for its end. */
function interrupt(
  backend: string,
  env: Record<string, string>,
): Promise<{ code: number | null; stdout: string; stderr: string; pids: number[] }> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      // node --import tsx, not the tsx CLI: on SIGINT the CLI gives its child 30 ms to say that it got
      // the signal and SIGKILLs it otherwise (exit 130), which a busy machine turns into a lost test
      // of our handling (seen: a program with its own handler ended with 130).
      ['--import', 'tsx', join(repoRoot, 'test/fixtures/programs/interrupted.ts')],
      // A process group of its own, as a terminal gives a job: Ctrl-C signals the whole group (the
      // program and its workers), as a terminal does.
      {
        env: { ...process.env, BACKEND: backend, VERBOSE: '1', ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
        detached: true,
      },
    );
    const group = -(child.pid as number);
    let stdout = '';
    let stderr = '';
    let sent = false;
    const killer = setTimeout(() => process.kill(group, 'SIGKILL'), 45_000);
    child.stdout.on('data', (d) => {
      stdout += d;
      // Press Ctrl-C once both spinning tasks have said that they run (after the two short ones).
      if (!sent && stdout.split('spinning').length > 2) {
        sent = true;
        process.kill(group, 'SIGINT');
      }
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(killer);
      const pids = JSON.parse(/pids (\[.*\])/.exec(stdout)?.[1] ?? '[]') as number[];
      resolve({ code, stdout, stderr, pids: pids.filter((pid) => pid !== child.pid) });
    });
  });
}
