import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { AutoBatchSize, MAX_AUTO_BATCH_SIZE } from '../../src/dispatch/batch-size.ts';
import { createSharedArray, delayed, Parallel, type Task } from '../../src/index.ts';
import { spinForever } from '../fixtures/failing-tasks.ts';
import { openLatch, waitForFile } from '../fixtures/latches.ts';
import {
  describeArray,
  gatedSquare,
  inspectArray,
  inspectArrayLater,
  recordStart,
  slowSquare,
  writeShared,
} from '../fixtures/tasks.ts';
import { everyWorkerAnswered, tempDir } from '../helpers.ts';

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

/**
 * The streaming and threads big-array tests' Parallels, closed when the file ends. Those of one backend
 * have the same nJobs and worker configuration, so they share one pool; closing one per test retired
 * that pool, and every test started its workers again (a tsx start each). No test here is about a fresh
 * pool: workers a test stops (a spinner left behind by a loop) are replaced by the pool, and
 * everyWorkerAnswered checks that they are.
 */
const opened: { close(): Promise<void> }[] = [];
after(() => Promise.all(opened.splice(0).map((p) => p.close())));
function kept<P extends { close(): Promise<void> }>(parallel: P): P {
  opened.push(parallel);
  return parallel;
}

describe('adaptive batch size', () => {
  test('grows while batches are fast and shrinks at once when they are slow', () => {
    const changes: string[] = [];
    const sizer = new AutoBatchSize((tooFast, _seconds, size) =>
      changes.push(`${tooFast ? 'fast' : 'slow'}->${size}`),
    );
    sizer.completed(1, 0.001);
    assert.equal(sizer.size, 2);
    for (let i = 0; i < 6; i++) sizer.completed(sizer.size, 0.001);
    assert.equal(sizer.size, 128, 'doubles each step while far below the ideal duration');
    sizer.completed(128, 10);
    assert.ok(sizer.size < 128 && sizer.size >= 1, `shrank to ${sizer.size}`);
    sizer.completed(sizer.size / 2, 0.001);
    assert.equal(changes.at(-1)?.startsWith('slow'), true, 'a batch of an older size does not count');
    assert.deepEqual(changes.slice(0, 2), ['fast->2', 'fast->4']);
  });

  test('never grows past MAX_AUTO_BATCH_SIZE, however fast the batches', () => {
    const sizer = new AutoBatchSize();
    for (let i = 0; i < 40; i++) sizer.completed(sizer.size, 1e-6);
    assert.equal(sizer.size, MAX_AUTO_BATCH_SIZE);
  });
});

for (const backend of ['threads', 'processes'] as const) {
  describe(`streaming results on ${backend}`, () => {
    test("returnAs 'generator' yields results in input order as they come", async () => {
      const p = kept(new Parallel({ nJobs: 2, backend, returnAs: 'generator' }));
      const seen: number[] = [];
      for await (const value of p.run([30, 1, 20, 2].map((ms, i) => delayed(slowSquare)(i, ms))))
        seen.push(value);
      assert.deepEqual(seen, [0, 1, 4, 9]);
    });

    test("returnAs 'unordered' yields { index, value } as tasks complete", async () => {
      // Task 0 waits for a latch that the test opens only once it has received another result: a
      // stream that waited for task 0 first would never get there (and the test would time out).
      const gate = join(tempDir(), 'gate');
      const p = kept(new Parallel({ nJobs: 2, backend, returnAs: 'unordered', batchSize: 1 }));
      const seen: { index: number; value: number }[] = [];
      const tasks = [delayed(gatedSquare)(0, gate), ...[1, 2, 3].map((i) => delayed(gatedSquare)(i))];
      for await (const item of p.run(tasks)) {
        seen.push(item);
        if (seen.length === 1) openLatch(gate);
      }
      assert.equal(seen.length, 4);
      // Task 1 went to the other worker (task 0 held the first): its result is the first to come.
      assert.deepEqual(seen[0], { index: 1, value: 1 }, 'a fast task on the other worker comes first');
      assert.ok(seen.findIndex((s) => s.index === 0) > 0, 'the held first task comes later');
      assert.deepEqual(
        seen.find((s) => s.index === 0),
        { index: 0, value: 0 },
      );
      assert.deepEqual(seen.map((s) => s.index).sort(), [0, 1, 2, 3]);
    });

    for (const mode of ['generator', 'unordered'] as const) {
      test(`leaving a '${mode}' loop early stops the work and frees the workers`, async () => {
        const dir = tempDir();
        const log = join(dir, 'started.txt');
        // Tasks after the first wait for this latch, opened only once the loop has been left: until
        // then no task but the first completes, so no batch beyond the first window is dispatched.
        const gate = join(dir, 'gate');
        writeFileSync(log, '');
        const p = kept(new Parallel({ nJobs: 2, backend, returnAs: mode, batchSize: 1 }));
        const tasks: Task[] = [
          delayed(recordStart)(log, 0),
          ...range(40).map((i) => delayed(recordStart)(log, i + 1, gate)),
        ];
        tasks.splice(2, 0, delayed(spinForever)());
        let taken = 0;
        for await (const _ of p.run(tasks)) {
          if (++taken === 1) break;
        }
        openLatch(gate);
        // Both workers answer new tasks: the spinning one was stopped, and all that was queued is done.
        await everyWorkerAnswered(backend, 2);
        const started = readFileSync(log, 'utf8').trim().split('\n').map(Number);
        // The pre-dispatch window (2 x nJobs batches of one task: records 0, 1, the spinner, 2) and the
        // one batch that the first result freed a place for (record 3); the spinner records nothing.
        assert.ok(started.length <= 4, `${started.length} of 41 tasks started after the consumer left`);
        assert.ok(
          started.every((index) => index <= 3),
          `started: ${started.join(',')}`,
        );
      });
    }

    test('a lazy generator is not read beyond the pre-dispatch window', async () => {
      let pulled = 0;
      function* tasks() {
        for (let i = 0; i < 4000; i++) {
          pulled++;
          yield delayed(slowSquare)(i, 20);
        }
      }
      const p = kept(
        new Parallel({ nJobs: 2, backend, returnAs: 'generator', batchSize: 1, preDispatch: 4 }),
      );
      let consumed = 0;
      for await (const _ of p.run(tasks())) {
        consumed++;
        // Window of 4 batches of 1 task, plus results not consumed yet: never the whole input.
        assert.ok(pulled <= consumed + 4 + 1 + 1024, `pulled ${pulled} after consuming ${consumed}`);
        if (consumed === 12) break;
      }
      // Results that completed ahead of a slow consumer wait in the stream's buffer (1,024 here), so how
      // far past the window the input is read depends on the machine's load; what may never happen is
      // reading beyond window + buffer (an eager read would pull all 4,000).
      assert.ok(pulled <= 12 + 4 + 1024, `pulled ${pulled} tasks for 12 results`);
    });
  });
}

describe('big arrays on threads', () => {
  test('an array of 1 MB or more reaches thread workers through shared memory, once per run', async () => {
    const big = new Float64Array(256 * 1024).fill(1);
    const p = kept(new Parallel({ nJobs: 2 }));
    const results = await p.run(range(4).map(() => delayed(inspectArray)(big)));
    for (const r of results) assert.deepEqual(r, { shared: true, sum: 64 });
    assert.equal(big.buffer instanceof SharedArrayBuffer, false, "the caller's array is left as it was");
    const small = await p.run([delayed(inspectArray)(new Float64Array(16))]);
    assert.equal(small[0]?.shared, false, 'small arrays are copied');
    const off = kept(new Parallel({ nJobs: 2, maxNbytes: null }));
    assert.equal((await off.run([delayed(inspectArray)(big)]))[0]?.shared, false, 'maxNbytes: null copies');
    assert.throws(() => new Parallel({ maxNbytes: 'lots' }), /maxNbytes must be a number of bytes/);
  });

  test("a later run with the same array sees the array's new contents, also while another run reads it", async () => {
    const big = new Float64Array(256 * 1024).fill(1);
    const p = kept(new Parallel({ nJobs: 2 }));
    const first = await p.run(range(4).map(() => delayed(inspectArray)(big)));
    assert.deepEqual(first[0], { shared: true, sum: 64 });
    big.fill(2);
    const second = await p.run(range(4).map(() => delayed(inspectArray)(big)));
    for (const r of second) assert.deepEqual(r, { shared: true, sum: 128 });
    // Two runs at once on one array: the second must not rewrite the memory the first one reads.
    // The first task says when it has started (its arguments are prepared by then), and reads the
    // array only once the test opens the gate, after the change and the second run.
    const dir = tempDir();
    const started = join(dir, 'started');
    const gate = join(dir, 'gate');
    const slow = p.run([delayed(inspectArrayLater)(big, started, gate)]);
    await waitForFile(started);
    big.fill(3);
    const fast = await p.run([delayed(inspectArray)(big)]);
    openLatch(gate);
    const later = await slow;
    assert.deepEqual(fast[0], { shared: true, sum: 192 });
    assert.deepEqual(later[0], { shared: true, sum: 128 }, 'the first run read what it was given');
  });

  test('tasks write into a createSharedArray and the caller sees it, without a copy back', async () => {
    const target = createSharedArray(Float64Array, 8);
    const p = kept(new Parallel({ nJobs: 2 }));
    const shared = await p.run(range(8).map((i) => delayed(writeShared)(target, i, i * 1.5)));
    assert.ok(shared.every(Boolean));
    assert.deepEqual(
      [...target],
      range(8).map((i) => i * 1.5),
    );
  });
});

describe('big arrays on processes', () => {
  const spillFolders = () =>
    existsSync('/dev/shm')
      ? readdirSync('/dev/shm').filter((name) => name.startsWith(`joblib-ts-spill-${process.pid}-`))
      : [];
  const checksum = (values: ArrayLike<number>) => {
    let sum = 0;
    for (let i = 0; i < values.length; i++) sum += values[i] as number;
    return sum;
  };

  test('go through a file read once per worker and run, arrive intact, and leave no file behind', async () => {
    const floats = new Float64Array(256 * 1024).map((_, i) => i * 0.5);
    // A view at an odd offset, and one on shared memory.
    const bytes = new Uint8Array(2 * 1024 * 1024 + 1).map((_, i) => i % 251).subarray(1);
    const shared = createSharedArray(Int32Array, 512 * 1024).map((_, i) => i % 1000);
    // An orphan of a program killed earlier (a pid that does not exist): swept by the first spill.
    const orphan = existsSync('/dev/shm') ? join('/dev/shm', 'joblib-ts-spill-2147483646-test') : undefined;
    if (orphan) mkdirSync(orphan, { recursive: true });
    const p = new Parallel({ nJobs: 2, backend: 'processes' });
    try {
      const inputs = [floats, bytes, shared, floats, bytes, shared];
      const results = await p.run(inputs.map((values) => delayed(describeArray)(values)));
      results.forEach((r, i) => {
        const input = inputs[i] as ArrayLike<number> & ArrayBufferView;
        assert.equal(r.type, input.constructor.name, `task ${i}`);
        assert.equal(r.length, input.length, `task ${i}`);
        assert.equal(r.sum, checksum(input), `task ${i}`);
        assert.notEqual(r.pid, process.pid);
      });
      if (orphan) assert.equal(existsSync(orphan), false, 'the orphan folder was swept');
      for (const folder of spillFolders())
        assert.deepEqual(readdirSync(join('/dev/shm', folder)), [], 'no file outlives its run');
      // maxNbytes: null sends the arrays through the IPC pipe with every task.
      const piped = new Parallel({ nJobs: 2, backend: 'processes', maxNbytes: null });
      const [viaPipe] = await piped.run([delayed(describeArray)(floats)]);
      assert.equal(viaPipe?.sum, checksum(floats));
      await piped.close();
    } finally {
      await p.close();
      if (orphan) rmSync(orphan, { recursive: true, force: true });
    }
  });
});
