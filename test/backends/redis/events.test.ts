/**
 * Issue 16's onEvent test on the `redis` backend: a run with failures, retries and a crash gives the
 * same complete, validly ordered stream as on the local backends (event-stream.ts); Redis workers that
 * register, are killed or stop are told as worker-started, worker-crashed and worker-exited; under
 * `logs: 'tagged'` each line a task wrote is printed with its index, before that task's result.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe } from 'node:test';
import { delayed, type JoblibEvent } from '../../../src/index.ts';
import { logPrefix } from '../../../src/progress/logs.ts';
import { checkRetriesRun, retriesTasks } from '../../event-stream.ts';
import { chatty } from '../../fixtures/context-tasks.ts';
import { openLatch } from '../../fixtures/latches.ts';
import { tempDir, until } from '../../helpers.ts';
import { logThenWait } from './fixtures/tasks.ts';
import { callKeysLeft, redisSkipReason, redisTest, sharedWorkers } from './helpers.ts';

const skip = await redisSkipReason();
const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

/** The id a worker process registers under: `host-pid-random`. */
const isWorkerOf = (id: string, pid: number): boolean => id.includes(`-${pid}-`) && !id.includes('/');

describe('onEvent on redis: retries, crashes, workers, tagged logs', { skip }, () => {
  // One worker of two slots for the stream test (the first to use it: it sees the worker start) and the
  // logs test. A Redis worker starts a local worker process per slot, and the logs test's own two
  // workers were four more processes started from source; its lines now come from two local processes
  // of one worker, each task's lines still tagged and before its result.
  const shared = skip ? undefined : sharedWorkers({ count: 1, concurrency: 2 });
  redisTest(
    'failures, retries and a crash: a complete, validly ordered stream',
    async (scope) => {
      const [worker] = await scope.sharedWorkers();
      const events: JoblibEvent[] = [];
      const p = scope.parallel({
        nJobs: 2,
        batchSize: 2,
        retries: 1,
        onEvent: (event) => events.push(event),
      });
      const entries = await p.run(retriesTasks(tempDir('joblib-events-retries-'), true), {
        errorMode: 'settled',
      });
      checkRetriesRun(entries, events, true);
      // The crashed process was one of the worker's local pool, named under the worker; the worker
      // itself was told as started (the first run of this backend), and did not exit.
      const id = events.find((e) => e.type === 'worker-started')?.worker;
      assert.ok(id !== undefined && isWorkerOf(id, worker?.pid as number), `worker-started ${id}`);
      for (const e of events.filter((x) => x.type === 'worker-crashed'))
        assert.ok(e.worker.startsWith(`${id}/process `), e.worker);
      assert.ok(!events.some((e) => e.type === 'worker-exited' && e.worker === id));
      assert.deepEqual(await callKeysLeft(scope.prefix, scope.queue), []);
    },
    { shared },
  );

  redisTest(
    'a worker killed mid-run is told crashed then exited; one that joins, started; one that stops, exited',
    async (scope) => {
      const flags = ['--lock-ms', '1000', '--stalled-ms', '500'];
      const [victim, other] = await scope.startWorkers({ count: 2, concurrency: 1, extraArgs: flags });
      const dir = tempDir();
      const log = join(dir, 'started');
      const go = join(dir, 'go');
      writeFileSync(log, '');
      const events: JoblibEvent[] = [];
      let newcomer: number | undefined;
      // The tasks wait until the run has been told of the crash and of the new worker: both are
      // then known to have come within the run, whatever the timing.
      const told = (type: JoblibEvent['type'], pid: number | undefined) =>
        pid !== undefined &&
        events.some((e) => e.type === type && 'worker' in e && isWorkerOf(e.worker, pid));
      const p = scope.parallel(
        {
          nJobs: 2,
          batchSize: 1,
          onEvent: (event) => {
            events.push(event);
            if (told('worker-crashed', victim?.pid) && told('worker-started', newcomer)) openLatch(go);
          },
        },
        { reconcileMs: 250 },
      );
      const run = p.run(range(4).map((i) => delayed(logThenWait)(i, log, go)));
      // Once the victim runs a task, kill it; then a third worker joins.
      await until(() => readFileSync(log, 'utf8').split('\n').includes(String(victim?.pid)));
      victim?.child.kill('SIGKILL');
      const [joined] = await scope.startWorkers({ count: 1, concurrency: 1, extraArgs: flags });
      newcomer = joined?.pid;
      const results = await run;
      assert.deepEqual(
        results.map((r) => r.index),
        range(4),
      );
      assert.equal((await victim?.exited)?.signal, 'SIGKILL');

      const types = events.map((e) => e.type).join(' ');
      assert.equal(events[0]?.type, 'run-start', types);
      assert.equal(events.at(-1)?.type, 'run-end', types);
      const at = (type: JoblibEvent['type'], pid: number | undefined) =>
        events.findIndex((e) => e.type === type && 'worker' in e && isWorkerOf(e.worker, pid as number));
      const once = (type: JoblibEvent['type'], pid: number | undefined) =>
        events.filter((e) => e.type === type && 'worker' in e && isWorkerOf(e.worker, pid as number)).length;
      for (const pid of [victim?.pid, other?.pid, newcomer]) assert.equal(once('worker-started', pid), 1);
      assert.equal(once('worker-crashed', victim?.pid), 1, types);
      assert.equal(once('worker-exited', victim?.pid), 1, types);
      assert.ok(at('worker-started', victim?.pid) < at('worker-crashed', victim?.pid), types);
      assert.ok(at('worker-crashed', victim?.pid) < at('worker-exited', victim?.pid), types);
      const crash = events[at('worker-crashed', victim?.pid)];
      assert.ok(crash?.type === 'worker-crashed' && crash.index === undefined);
      for (const pid of [other?.pid, newcomer]) {
        assert.equal(once('worker-crashed', pid), 0, types);
        assert.equal(once('worker-exited', pid), 0, types);
      }

      // The newcomer stops gracefully between runs: the next run is told it exited, not crashed, and
      // nothing of the workers it already knows.
      events.length = 0;
      joined?.child.kill('SIGTERM');
      await joined?.exited;
      writeFileSync(go, '');
      assert.equal((await p.run([delayed(logThenWait)(0, log, go)]))[0]?.index, 0);
      assert.equal(once('worker-exited', newcomer), 1, events.map((e) => e.type).join(' '));
      assert.equal(once('worker-crashed', newcomer), 0);
      assert.ok(!events.some((e) => e.type === 'worker-started'));
      assert.deepEqual(await callKeysLeft(scope.prefix, scope.queue), []);
    },
  );

  redisTest(
    "logs: 'tagged' prints every line of 100 tasks with its index, before its result",
    async (scope) => {
      await scope.sharedWorkers();
      // What the caller prints, and the task-done events, in the order they happen.
      const seen: string[] = [];
      const p = scope.parallel({
        nJobs: 2,
        logs: 'tagged',
        onEvent: (event) => {
          if (event.type === 'task-done') seen.push(`done ${event.index}`);
        },
      });
      const writes = { stdout: process.stdout.write, stderr: process.stderr.write };
      for (const stream of ['stdout', 'stderr'] as const) {
        const original = writes[stream];
        process[stream].write = ((chunk: string | Uint8Array, ...rest: never[]) => {
          const text = String(chunk);
          if (!text.startsWith('[task ')) return original.call(process[stream], chunk, ...rest);
          for (const line of text.split('\n').filter((l) => l !== '')) seen.push(`${stream} ${line}`);
          return true;
        }) as typeof process.stdout.write;
      }
      let results: number[];
      try {
        results = await p.run(range(100).map((i) => delayed(chatty)(i)));
      } finally {
        process.stdout.write = writes.stdout;
        process.stderr.write = writes.stderr;
      }
      assert.deepEqual(results, range(100));
      for (const i of range(100)) {
        const tag = logPrefix(i);
        const mine = seen.filter((s) => s.endsWith(` ${i}`) && (s.startsWith('done') || s.includes(tag)));
        assert.deepEqual(
          mine,
          [
            `stdout ${tag}first line of ${i}`,
            `stderr ${tag}error line of ${i}`,
            `stdout ${tag}second line of ${i}`,
            `stdout ${tag}unfinished ${i}`,
            `done ${i}`,
          ],
          `task ${i}`,
        );
      }
    },
    { shared },
  );
});
