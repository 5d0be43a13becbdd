/**
 * recovery.ts on its own, with a fake run: which tasks are delivered, sent again, retried or failed,
 * and the events it emits ('task-failed' with willRetry, then 'task-retried').
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { BackendBatch } from '../../src/backends/backend.ts';
import { type RecoveryHost, TaskRecovery } from '../../src/dispatch/recovery.ts';
import { retryPolicy } from '../../src/dispatch/retry.ts';
import { WorkerCrashedError } from '../../src/errors.ts';
import { EventHub, type JoblibEvent } from '../../src/events.ts';

function batch(firstIndex: number, size: number): BackendBatch {
  const fn = function task() {};
  return {
    runId: 7,
    firstIndex,
    fns: Array.from({ length: size }, () => fn),
    locations: Array.from({ length: size }, () => undefined),
    args: Array.from({ length: size }, (_, i) => [firstIndex + i]),
  };
}

function fakeRun(settled: boolean) {
  const events: JoblibEvent[] = [];
  const hub = new EventHub();
  hub.listen(7, (event) => events.push(event));
  const log = {
    delivered: new Map<number, unknown>(),
    failures: new Map<number, unknown>(),
    resubmitted: [] as [number, number][],
    batches: [] as BackendBatch[],
    failed: undefined as unknown,
    events,
  };
  const host: RecoveryHost = {
    runId: 7,
    events: hub,
    settled,
    done: false,
    deliver: (first, results) => {
      for (const [i, r] of results.entries()) log.delivered.set(first + i, r);
    },
    deliverFailure: (index, error) => log.failures.set(index, error),
    resubmit: (b) => {
      log.resubmitted.push([b.firstIndex, b.fns.length]);
      log.batches.push(b);
    },
    hold: () => {},
    release: () => {},
    fail: (error) => {
      log.failed = error;
    },
    findUnsendable: () => undefined,
  };
  return { host, log };
}

test('a crash at task 57 of a batch of 100 with kept results: 57 fails alone, 58..99 go again', () => {
  const { host, log } = fakeRun(true);
  const recovery = new TaskRecovery(host, undefined);
  const crash = new WorkerCrashedError('boom', 57, 'task', 5, null);
  recovery.outcome(batch(0, 100), {
    ok: false,
    failedAt: 57,
    error: crash,
    results: Array.from({ length: 57 }, (_, i) => i),
  });
  assert.equal(log.delivered.size, 57);
  assert.deepEqual([...log.failures.keys()], [57]);
  assert.deepEqual(log.resubmitted, [[58, 42]]);
  assert.deepEqual(
    log.events.map((e) => [e.type, e.type === 'task-failed' ? e.willRetry : undefined]),
    [['task-failed', false]],
  );
});

test('without kept results the finished tasks run again; a retry follows task-failed with willRetry', () => {
  const { host, log } = fakeRun(false);
  const recovery = new TaskRecovery(host, retryPolicy(1));
  recovery.outcome(batch(10, 5), { ok: false, failedAt: 2, error: new Error('x') });
  assert.deepEqual(log.resubmitted, [
    [10, 2],
    [12, 1],
    [13, 2],
  ]);
  assert.deepEqual(
    log.events.map((e) => e.type),
    ['task-failed', 'task-retried'],
  );
  const [failed, retried] = log.events;
  assert.ok(
    failed?.type === 'task-failed' && failed.willRetry && failed.index === 12 && failed.attempt === 1,
  );
  assert.ok(retried?.type === 'task-retried' && retried.index === 12 && retried.attempt === 2);
  // The second failure of task 12 is its last: fail-fast fails the run with attempts: 2.
  recovery.outcome(batch(12, 1), {
    ok: true,
    results: [undefined],
    failures: [{ at: 0, error: new Error('y') }],
  });
  assert.equal((log.failed as { attempts?: number }).attempts, 2);
  assert.equal((log.failed as { taskIndex?: number }).taskIndex, 12);
});

test('a crash that names no task of its batch sends each task again alone', () => {
  const { host, log } = fakeRun(true);
  new TaskRecovery(host, undefined).batchError(
    batch(0, 3),
    new WorkerCrashedError('boom', 0, 'task', 1, null),
  );
  assert.deepEqual(log.resubmitted, [
    [0, 1],
    [1, 1],
    [2, 1],
  ]);
});

test('a retry after a crash asks for a new worker and says its attempt', () => {
  const { host, log } = fakeRun(true);
  new TaskRecovery(host, retryPolicy(2)).batchError(
    batch(4, 1),
    new WorkerCrashedError('boom', 4, 'task', 1, null),
  );
  assert.deepEqual(
    log.batches.map((b) => [b.firstIndex, b.attempt, b.freshWorker]),
    [[4, 2, true]],
  );
});
