/**
 * Issue 16 on the local backends: `taskContext()` (index, seed, random, signal, report), the
 * `initializer` and `workerContext()`, bad options, and the run's seed.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { sfc32, taskSeed } from '../../src/context/prng.ts';
import {
  delayed,
  InvalidArgumentError,
  type JoblibEvent,
  Parallel,
  type ParallelOptions,
  TimeoutError,
  taskContext,
  workerContext,
} from '../../src/index.ts';
import {
  draws,
  failAfter,
  failingSetup,
  readSetup,
  reporting,
  type Setup,
  setup,
  slowSetup,
  waitForAbort,
} from '../fixtures/context-tasks.ts';
import { openParallel as parallel, tempDir, until } from '../helpers.ts';

const TASKS = 200;
const DRAWS = 3;
const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

/** What `draws(DRAWS)` must give for task `index` of a run seeded with `seed`: computed here, by hand. */
function expected(seed: number, index: number): number[] {
  const taskSeedValue = taskSeed(seed, index);
  const random = sfc32(taskSeedValue);
  return [index, taskSeedValue, ...range(DRAWS).map(() => random())];
}

describe('taskContext: the same numbers whatever runs the tasks', () => {
  const reference = range(TASKS).map((i) => expected(42, i));

  test('the seed depends on the run seed and the index only, and random() is sfc32 from it', () => {
    assert.equal(taskSeed(42, 7), taskSeed(42, 7));
    assert.notEqual(taskSeed(42, 7), taskSeed(42, 8));
    assert.notEqual(taskSeed(42, 7), taskSeed(43, 7));
    const random = sfc32(1);
    const values = range(1000).map(() => random());
    assert.ok(values.every((v) => v >= 0 && v < 1));
    assert.equal(new Set(values).size, 1000);
  });

  for (const backend of ['sequential', 'threads', 'processes'] as const) {
    // nJobs 4, not 8: more workers than this 2-core machine's CPUs either way, and each worker started
    // from source costs a tsx start (about a second of CPU for a process).
    test(`${backend}: 200 tasks give the same draws with nJobs 1, 2, 4 and batch sizes 1 and 'auto'`, async () => {
      for (const nJobs of [1, 2, 4]) {
        for (const batchSize of [1, 'auto'] as const) {
          const p = parallel({ backend, nJobs, batchSize, seed: 42 });
          const results = await p.run(range(TASKS).map(() => delayed(draws)(DRAWS)));
          assert.deepEqual(results, reference, `${backend}, nJobs ${nJobs}, batchSize ${batchSize}`);
        }
      }
    });
  }

  test('without a seed each run draws one, given on run-start and as lastSeed, and replays with it', async () => {
    const seeds: number[] = [];
    const p = parallel({
      backend: 'threads',
      nJobs: 2,
      onEvent: (event) => {
        if (event.type === 'run-start') seeds.push(event.seed);
      },
    });
    const first = await p.run(range(20).map(() => delayed(draws)(2)));
    assert.equal(seeds.length, 1);
    assert.equal(p.lastSeed, seeds[0]);
    const replay = await p.run(
      range(20).map(() => delayed(draws)(2)),
      { seed: seeds[0] as number },
    );
    assert.deepEqual(replay, first);
  });

  test('verbose >= 10 prints the run seed', async () => {
    const written: string[] = [];
    const write = process.stderr.write;
    process.stderr.write = ((chunk: string) => {
      written.push(String(chunk));
      return true;
    }) as typeof process.stderr.write;
    try {
      await parallel({ backend: 'sequential', verbose: 10, seed: 1234 }).run([delayed(draws)(1)]);
    } finally {
      process.stderr.write = write;
    }
    assert.match(written.join(''), /Run seed: 1234 \(pass seed: 1234 to replay this run\)/);
  });

  test('outside a task, taskContext() and workerContext() throw a clear error', () => {
    assert.throws(() => taskContext(), /taskContext\(\) was called outside a task/);
    assert.throws(() => workerContext(), /workerContext\(\) was called outside a task/);
  });
});

describe('taskContext().signal', () => {
  for (const backend of ['threads', 'processes'] as const) {
    test(`${backend}: a running task's signal aborts when another task fails the run`, async () => {
      const dir = tempDir();
      const started = join(dir, 'started');
      const aborted = join(dir, 'aborted');
      const p = parallel({ backend, nJobs: 2, batchSize: 1 });
      await assert.rejects(
        p.run([delayed(waitForAbort)(started, aborted), delayed(failAfter)(started)]),
        /failing on purpose/,
      );
      await until(() => existsSync(aborted));
      assert.match(readFileSync(aborted, 'utf8'), /the run was stopped/);
    });
  }

  for (const backend of ['threads', 'processes'] as const) {
    test(`${backend}: a task's signal aborts at timeoutMs, and the run still fails with a TimeoutError`, async () => {
      const dir = tempDir();
      const aborted = join(dir, 'aborted');
      const p = parallel({ backend, nJobs: 2, timeoutMs: 300 });
      await assert.rejects(p.run([delayed(waitForAbort)(join(dir, 'started'), aborted)]), TimeoutError);
      // The task saw its signal abort (unless the worker was terminated first, which also fails the run).
      if (existsSync(aborted)) assert.match(readFileSync(aborted, 'utf8'), /TimeoutError|timed? ?out/i);
    });
  }

  test("sequential: the task's signal aborts with the run's AbortSignal", async () => {
    const dir = tempDir();
    const started = join(dir, 'started');
    const aborted = join(dir, 'aborted');
    const controller = new AbortController();
    const p = parallel({ backend: 'sequential' });
    const running = p.run([delayed(waitForAbort)(started, aborted)], { signal: controller.signal });
    await until(() => existsSync(started));
    controller.abort(new Error('stop now'));
    await assert.rejects(running, /stop now/);
    await until(() => existsSync(aborted));
  });
});

describe('initializer and workerContext()', () => {
  for (const backend of ['sequential', 'threads', 'processes'] as const) {
    test(`${backend}: runs once per worker, before its first task, and tasks read what it returned`, async () => {
      const p = parallel({ backend, nJobs: 2, batchSize: 1, initializer: delayed(slowSetup)('first') });
      /** Each worker's setup count, as every task it ran over both runs saw it. */
      const counts = new Map<string, Set<number>>();
      for (let run = 0; run < 2; run++) {
        const results = await p.run(range(24).map((i) => delayed(readSetup)(i)));
        results.forEach((result, i) => {
          assert.equal(result.index, i);
          assert.equal(result.setup.tag, 'first');
          const seen = counts.get(result.setup.worker) ?? new Set();
          seen.add(result.setup.count);
          counts.set(result.setup.worker, seen);
        });
      }
      assert.ok(counts.size >= 1 && counts.size <= (backend === 'sequential' ? 1 : 2));
      // Once per worker and call configuration: a worker ran it once, however many tasks and runs.
      for (const [worker, seen] of counts) assert.equal(seen.size, 1, `${worker} ran it again: ${[...seen]}`);
      const seen = new Map([...counts].map(([worker, set]) => [worker, [...set][0] as number]));
      // Another Parallel (another configuration) on the same pool: each worker runs its initializer too.
      const other = parallel({ backend, nJobs: 2, batchSize: 1, initializer: delayed(setup)('second') });
      const second = await other.run(range(8).map((i) => delayed(readSetup)(i)));
      for (const result of second) {
        assert.equal(result.setup.tag, 'second');
        const before = seen.get(result.setup.worker);
        if (before !== undefined) assert.equal(result.setup.count, before + 1);
      }
    });

    test(`${backend}: a failing initializer fails the run once, with its error`, async () => {
      const events: JoblibEvent[] = [];
      const p = parallel({
        backend,
        nJobs: 2,
        batchSize: 1,
        initializer: delayed(failingSetup)(),
        onEvent: (event) => events.push(event),
      });
      let failures = 0;
      await p.run(range(10).map((i) => delayed(readSetup)(i))).catch((error: unknown) => {
        failures++;
        assert.ok(error instanceof RangeError, String(error));
        assert.equal((error as Error).message, 'the setup failed');
      });
      assert.equal(failures, 1);
      assert.equal(events.filter((e) => e.type === 'task-done').length, 0);
      const end = events.at(-1);
      assert.equal(end?.type, 'run-end');
      assert.equal(end?.type === 'run-end' && end.status, 'failed');
    });
  }

  test('workerContext() is undefined without an initializer', async () => {
    const [result] = await parallel({ backend: 'threads', nJobs: 2 }).run([delayed(readSetup)(0)]);
    assert.equal(result?.setup, undefined);
  });

  test('report(value) reaches onEvent before the task is done, on every local backend', async () => {
    for (const backend of ['sequential', 'threads', 'processes'] as const) {
      const events: JoblibEvent[] = [];
      const p = parallel({ backend, nJobs: 2, onEvent: (event) => events.push(event) });
      await p.run(range(30).map((i) => delayed(reporting)(i)));
      for (const i of range(30)) {
        const mine = events.filter((e) => 'index' in e && e.index === i);
        assert.deepEqual(
          mine.map((e) => (e.type === 'report' ? `report ${JSON.stringify(e.value)}` : e.type)),
          [`report {"step":1,"i":${i}}`, `report {"step":2,"i":${i}}`, 'task-done'],
          `${backend}, task ${i}`,
        );
      }
    }
  });
});

describe('bad values are refused with InvalidArgumentError naming the option', () => {
  const cases: [string, Record<string, unknown>, RegExp][] = [
    ['seed', { seed: -1 }, /seed/],
    ['seed', { seed: 1.5 }, /seed/],
    ['seed', { seed: 2 ** 32 }, /seed/],
    ['seed', { seed: '42' }, /seed/],
    ['logs', { logs: 'loud' }, /logs/],
    ['onEvent', { onEvent: 'print' }, /onEvent/],
    ['initializer', { initializer: () => 1 }, /initializer/],
  ];
  for (const [name, options, pattern] of cases) {
    test(`${name}: ${JSON.stringify(options[name]) ?? String(options[name])}`, () => {
      assert.throws(
        () => new Parallel(options as ParallelOptions),
        (error: unknown) => error instanceof InvalidArgumentError && pattern.test((error as Error).message),
      );
    });
  }

  test("run(tasks, { seed }) checks the run's seed", async () => {
    await assert.rejects(
      new Parallel({ backend: 'sequential' }).run([delayed(draws)(1)], { seed: -3 }),
      (error: unknown) =>
        error instanceof InvalidArgumentError && /options\.seed/.test((error as Error).message),
    );
  });

  test('a misspelt option is refused by name', () => {
    assert.throws(
      () => new Parallel({ initialiser: delayed(setup)('x') } as ParallelOptions),
      /did you mean initializer/,
    );
  });
});

// Types: a task's setup is what workerContext<T>() says.
export type _SetupType = Setup;
