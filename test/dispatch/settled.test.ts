/**
 * Issue 15 on threads and processes: errorMode 'settled' (every failure kind in its own entry, in every
 * returnAs mode), retries, a crash that blames one task of a batch of 100, crash and timeout forensics,
 * and worker recycling (maxTasksPerWorker, maxWorkerRssMb, idleTimeoutMs). Counts and orders only: no
 * wall-clock thresholds (timeoutMs only decides which task is late, never whether a test passes; the
 * test timeouts are generous bounds against a hang, for a loaded 2-core box starting workers from source).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import {
  delayed,
  InvalidArgumentError,
  type JoblibEvent,
  Parallel,
  type SettledResult,
  TimeoutError,
  WorkerCrashedError,
} from '../../src/index.ts';
import { crashThenWork, exitAt, flaky, leak, mixed, where } from '../fixtures/settled-tasks.ts';
import { tempDir } from '../helpers.ts';
import { checkMixedEntries, lazily, reasonOf } from '../settled-checks.ts';

function expectType<T>(_value: T): void {}

/** The workers' events of a Parallel's backend, for the recycling tests. */
function workerEvents(p: Parallel<'array', 'fail-fast' | 'settled'>): JoblibEvent[] {
  const events: JoblibEvent[] = [];
  const backend = (
    p as unknown as { backend?: { events?: { listen(id: number, l: (e: JoblibEvent) => void): void } } }
  ).backend;
  backend?.events?.listen(-424242, (event) => events.push(event));
  return events;
}

const KINDS = ['ok', 'throw', 'ok', 'spin', 'ok', 'exit', 'ok', 'unsendable', 'ok', 'ok'] as const;

for (const backend of ['threads', 'processes'] as const) {
  describe(`issue 15 on ${backend}`, { timeout: 900_000 }, () => {
    // The tests' Parallels share one pool (same nJobs and worker configuration) and are closed when the
    // describe ends: none of these tests is about a fresh pool, and closing one per test retired the
    // shared pool, so that every test started its workers again (seconds of CPU each on processes).
    // Workers that a test crashes or times out are replaced by the pool, as a user's would be.
    const opened: { close(): Promise<void> }[] = [];
    after(() => Promise.all(opened.splice(0).map((p) => p.close())));
    const kept = <P extends { close(): Promise<void> }>(p: P): P => {
      opened.push(p);
      return p;
    };

    test('settled: a throw, a timeout, a crash and an unsendable result each land in their own entry', async () => {
      const p = kept(
        new Parallel({
          nJobs: 2,
          backend,
          errorMode: 'settled',
          timeoutMs: 2000,
          batchSize: 4,
        }),
      );
      const entries = await p.run(KINDS.map((kind, i) => delayed(mixed)(i, kind)));
      expectType<SettledResult<unknown>[]>(entries);
      checkMixedEntries(KINDS, entries);
      assert.match(reasonOf(entries[7]).message, /Task 7 \(mixed\).*cannot be sent back/);
    });

    test('settled: generator yields entries in input order; unordered yields { index, status, value | reason }', async () => {
      const ordered = kept(new Parallel({ nJobs: 2, backend, errorMode: 'settled', returnAs: 'generator' }));
      const kinds = ['ok', 'throw', 'ok', 'exit', 'ok'];
      const seen: SettledResult<unknown>[] = [];
      for await (const entry of ordered.run(kinds.map((kind, i) => delayed(mixed)(i, kind))))
        seen.push(entry);
      assert.deepEqual(
        seen.map((e) => e.status),
        ['fulfilled', 'rejected', 'fulfilled', 'rejected', 'fulfilled'],
      );
      assert.deepEqual(seen[4], { status: 'fulfilled', value: 8 });

      const unordered = kept(new Parallel({ nJobs: 2, backend, returnAs: 'unordered' }));
      const indexed = [];
      // Per run: the Parallel is fail-fast, this run is settled.
      for await (const entry of unordered.run(
        kinds.map((kind, i) => delayed(mixed)(i, kind)),
        { errorMode: 'settled' },
      )) {
        expectType<number>(entry.index);
        indexed.push(entry);
      }
      indexed.sort((a, b) => a.index - b.index);
      assert.deepEqual(
        indexed.map((e) => [e.index, e.status]),
        kinds.map((kind, i) => [i, kind === 'ok' ? 'fulfilled' : 'rejected']),
      );
      const thrown = indexed[1];
      assert.ok(thrown?.status === 'rejected' && thrown.reason instanceof RangeError);
      assert.deepEqual(indexed[2], { index: 2, status: 'fulfilled', value: 4 });
    });

    test('retries: 2 — a task that fails twice then succeeds; the last error of one that keeps failing carries attempts', async () => {
      const dir = tempDir();
      const p = kept(new Parallel({ nJobs: 2, backend, retries: 2 }));
      const results = await p.run([0, 1, 2, 3].map((i) => delayed(flaky)(dir, i, i === 2 ? 2 : 0)));
      assert.deepEqual(results, [0, 1, 2, 3]);
      assert.equal(readFileSync(join(dir, 'flaky-2'), 'utf8'), 'x\nx\nx\n');

      // Fail-fast: three attempts, then the run fails with the third attempt's error.
      await assert.rejects(p.run([delayed(flaky)(dir, 10, 5)]), (error: Error & { attempts?: number }) => {
        assert.match(error.message, /flaky 10: attempt 3 fails/);
        assert.equal(error.attempts, 3);
        return true;
      });
      // Settled, per-run retries with retryOn refusing: one attempt only.
      const entries = await p.run([delayed(flaky)(dir, 20, 5), delayed(flaky)(dir, 21, 0)], {
        errorMode: 'settled',
        retries: { count: 4, retryOn: (error) => !String(error).includes('flaky 20') },
      });
      assert.equal(reasonOf(entries[0]).attempts, 1);
      assert.deepEqual(entries[1], { status: 'fulfilled', value: 21 });
      assert.equal(readFileSync(join(dir, 'flaky-20'), 'utf8'), 'x\n');
    });

    test('retries after a crash run the task on another worker', async () => {
      const dir = tempDir();
      const p = kept(new Parallel({ nJobs: 2, backend, retries: { count: 1, delayMs: 1, backoff: 2 } }));
      assert.deepEqual(
        await p.run([0, 1, 2].map((i) => delayed(crashThenWork)(dir, i, i === 1 ? 1 : 0))),
        [0, 1, 2],
      );
      assert.equal(readFileSync(join(dir, 'crash-1'), 'utf8'), 'x\nx\n');
    });

    test('a batch of 100 where task 57 calls process.exit(): only task 57 fails, the others run once', async () => {
      const dir = tempDir();
      const p = kept(new Parallel({ nJobs: 2, backend, batchSize: 100, errorMode: 'settled' }));
      const tasks = Array.from({ length: 100 }, (_, i) => delayed(exitAt)(dir, i, 57));
      const entries = await p.run(lazily(tasks));
      assert.equal(entries.length, 100);
      const crash = reasonOf(entries[57]);
      assert.ok(crash instanceof WorkerCrashedError);
      assert.equal(crash.taskIndex, 57);
      assert.equal(crash.functionName, 'exitAt');
      assert.equal(crash.exitCode, 5);
      assert.equal(crash.signal, null);
      assert.match(String(crash.argsSummary), /, 57, 57\)$/);
      assert.match(crash.message, /while running task 57 \(exitAt\)/);
      assert.equal(typeof crash.worker, 'string');
      if (backend === 'processes') assert.ok(crash.stderrTail?.includes('task 57 is about to exit'));
      const fulfilled = entries.filter((e) => e.status === 'fulfilled');
      assert.equal(fulfilled.length, 99);
      // Each other task ran exactly once: the 57 before it kept their results from the dead worker.
      const ran = readFileSync(join(dir, 'ran'), 'utf8').trim().split('\n').map(Number);
      assert.deepEqual(
        [...ran].sort((a, b) => a - b),
        Array.from({ length: 100 }, (_, i) => i).filter((i) => i !== 57),
      );
      const first = entries[0];
      const before = entries[56];
      assert.ok(first?.status === 'fulfilled' && before?.status === 'fulfilled');
      assert.equal(first.value.i, 0);
      // Tasks 0..56 ran in the worker that died (same pid and thread).
      assert.deepEqual([before.value.pid, before.value.threadId], [first.value.pid, first.value.threadId]);
    });

    test('fail-fast with a crash in a batch: the run fails with the forensics of task 57', async () => {
      const dir = tempDir();
      const p = kept(new Parallel({ nJobs: 2, backend, batchSize: 100 }));
      const tasks = Array.from({ length: 100 }, (_, i) => delayed(exitAt)(dir, i, 57));
      await assert.rejects(p.run(lazily(tasks)), (error: WorkerCrashedError) => {
        assert.equal(error.taskIndex, 57);
        assert.match(error.message, /Arguments: \(.*, 57, 57\)/);
        return true;
      });
    });

    test('a timeout tells its task, arguments and worker', async () => {
      const p = kept(new Parallel({ nJobs: 2, backend, timeoutMs: 300, errorMode: 'settled' }));
      const entries = await p.run([delayed(mixed)(0, 'ok'), delayed(mixed)(1, 'spin')]);
      const timeout = reasonOf(entries[1]);
      assert.ok(timeout instanceof TimeoutError);
      assert.equal(timeout.taskIndex, 1);
      assert.equal(timeout.argsSummary, "(1, 'spin')");
      assert.match(String(timeout.worker), backend === 'threads' ? /^thread \d+$/ : /^process \d+$/);
    });

    // 4 over 20: each replacement worker costs a start (about a second of CPU for a process); the
    // adaptive batch size still outgrows the limit (1, 2, 4, then 8 capped to 4), as it did with 10.
    test('maxTasksPerWorker: 4 over 20 tasks uses at least 5 workers and loses nothing', async () => {
      await using p = new Parallel({ nJobs: 2, backend, maxTasksPerWorker: 4 });
      const results = await p.run(Array.from({ length: 20 }, (_, i) => delayed(where)(i)));
      assert.deepEqual(
        results.map((r) => r.i),
        Array.from({ length: 20 }, (_, i) => i),
      );
      const perWorker = new Map<string, number>();
      for (const r of results) {
        const key = `${r.pid}/${r.threadId}`;
        perWorker.set(key, (perWorker.get(key) ?? 0) + 1);
      }
      assert.ok(perWorker.size >= 5, `${perWorker.size} workers`);
      assert.ok(Math.max(...perWorker.values()) <= 4);
    });
  });
}

// 8 tasks (was 16): a batch of 4 leaks 200 MB, past the limit on its own, so each batch costs its worker a
// replacement (a process started from source); two batches show it as well as four did.
test('maxWorkerRssMb on processes: a task that leaks 50 MB per call gets its worker replaced, all results arrive', {
  timeout: 300_000,
}, async () => {
  await using p = new Parallel({
    nJobs: 1 + 1,
    backend: 'processes',
    maxWorkerRssMb: 200,
    batchSize: 4,
    verbose: 1,
  });
  const lines: string[] = [];
  const write = process.stderr.write;
  process.stderr.write = ((chunk: string | Uint8Array) => {
    lines.push(String(chunk));
    return true;
  }) as typeof process.stderr.write;
  let results: number[];
  try {
    results = await p.run(Array.from({ length: 8 }, (_, i) => delayed(leak)(i, 50)));
  } finally {
    process.stderr.write = write;
  }
  assert.deepEqual(
    results,
    Array.from({ length: 8 }, (_, i) => i),
  );
  assert.ok(
    lines.some((line) => /Replacing process \d+: its memory passed maxWorkerRssMb=200/.test(line)),
    lines.join(''),
  );
});

test('idleTimeoutMs: an idle worker exits and says why', { timeout: 300_000 }, async () => {
  await using p = new Parallel({ nJobs: 2, backend: 'threads', idleTimeoutMs: 50 });
  await p.run([delayed(where)(0)]);
  const events = workerEvents(p);
  while (!events.some((e) => e.type === 'worker-recycled' && e.reason === 'idleTimeout'))
    await new Promise((resolve) => setTimeout(resolve, 20));
  // The pool starts a new worker for the next run.
  assert.deepEqual(
    (await p.run([delayed(where)(1)])).map((r) => r.i),
    [1],
  );
});

test('bad values of each option are refused with InvalidArgumentError naming it', () => {
  const bad: [Record<string, unknown>, RegExp][] = [
    [{ errorMode: 'lenient' }, /errorMode must be 'fail-fast' or 'settled'/],
    [{ retries: -1 }, /retries must be an integer >= 0/],
    [{ retries: 1.5 }, /retries must be/],
    [{ retries: { count: 'two' } }, /retries\.count must be an integer >= 0/],
    [{ retries: { count: 1, delayMs: -5 } }, /retries\.delayMs must be/],
    [{ retries: { count: 1, backoff: 0.5 } }, /retries\.backoff must be a number >= 1/],
    [{ retries: { count: 1, retryOn: true } }, /retries\.retryOn must be a function/],
    [{ retries: { count: 1, tries: 2 } }, /retries: unknown option "tries"/],
    [{ maxTasksPerWorker: 0 }, /maxTasksPerWorker must be a positive integer/],
    [{ idleTimeoutMs: -1 }, /idleTimeoutMs must be/],
    [{ maxWorkerRssMb: 'big', backend: 'processes' }, /maxWorkerRssMb must be a number of megabytes/],
    [{ maxWorkerRssMb: 100, backend: 'threads' }, /maxWorkerRssMb applies to backend 'processes'/],
  ];
  for (const [options, message] of bad) {
    assert.throws(
      () => new Parallel(options as never),
      (error: Error) => error instanceof InvalidArgumentError && message.test(error.message),
      JSON.stringify(options),
    );
  }
});

test('bad per-run errorMode and retries are refused naming the run option', async () => {
  const p = new Parallel({ nJobs: 1 });
  await assert.rejects(
    p.run([delayed(where)(0)], { errorMode: 'x' as never }),
    /run\(tasks, options\): options\.errorMode must be 'fail-fast' or 'settled'/,
  );
  await assert.rejects(
    p.run([delayed(where)(0)], { retries: { count: -1 } }),
    /run\(tasks, options\): options\.retries\.count must be an integer >= 0/,
  );
});

test('sequential (nJobs: 1) honours settled and retries too', async () => {
  const dir = tempDir();
  const p = new Parallel({ nJobs: 1, errorMode: 'settled', retries: 1 });
  const entries = await p.run([delayed(flaky)(dir, 0, 1), delayed(flaky)(dir, 1, 3), delayed(where)(2)]);
  assert.deepEqual(entries[0], { status: 'fulfilled', value: 0 });
  assert.equal(reasonOf(entries[1]).attempts, 2);
  assert.equal(reasonOf(entries[1]).taskIndex, 1);
  assert.equal(entries[2]?.status, 'fulfilled');
});

test('types: settled entries in every returnAs mode, per Parallel and per run', () => {
  // Type-level only (checked by the typecheck); nothing runs.
  async function types(): Promise<void> {
    const tasks = [delayed(where)(1), delayed(where)(2)];
    const settled = new Parallel({ errorMode: 'settled' });
    const entries = await settled.run(tasks);
    expectType<SettledResult<{ i: number; pid: number; threadId: number }>[]>(entries);
    // @ts-expect-error: settled entries are not bare results
    expectType<{ i: number }[]>(entries);
    const tuple = await settled.run([delayed(where)(1), delayed(mixed)(2, 'ok')] as const);
    expectType<[SettledResult<{ i: number; pid: number; threadId: number }>, SettledResult<unknown>]>(tuple);
    const failFast = new Parallel({});
    expectType<{ i: number }[]>(await failFast.run(tasks));
    expectType<SettledResult<{ i: number }>[]>(await failFast.run(tasks, { errorMode: 'settled' }));
    for await (const entry of new Parallel({ returnAs: 'generator', errorMode: 'settled' }).run(tasks))
      expectType<SettledResult<{ i: number }>>(entry);
    for await (const entry of new Parallel({ returnAs: 'unordered' }).run(tasks, { errorMode: 'settled' })) {
      expectType<number>(entry.index);
      if (entry.status === 'fulfilled') expectType<{ i: number }>(entry.value);
      else expectType<unknown>(entry.reason);
    }
  }
  assert.equal(typeof types, 'function');
});
