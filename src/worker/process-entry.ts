/** Entry of a child process worker: like a thread worker, over the IPC channel with V8 serialization. */
import { writeSync } from 'node:fs';
import { serialize } from 'node:v8';
import { captureOutput, writeUncaptured } from '../context/console-capture.ts';
import { markAsWorker } from '../main-guard.ts';
import type { BatchMessage, FromWorker, ToWorker, WorkerInit } from '../wire/protocol.ts';
import { TaskExecutor } from './executor.ts';
import { exitWithParent } from './parent-watch.ts';
import { currentTask } from './task-context.ts';

markAsWorker();
if (!process.send) {
  process.stderr.write(
    'joblib-ts: the process worker entry must be started by joblib-ts (it has no IPC channel).\n',
  );
  process.exit(1);
}
const send: (message: unknown) => boolean = process.send.bind(process);
// The caller is gone (exited or killed): nothing will read our results, so leave with it, even mid-task.
exitWithParent();

/** The task in progress, told to the caller through fd 4 (a pipe) on the way out, synchronously. */
let current: { batch: number; at: number } | undefined;
const LAST_WORD_FD = 4;
function lastWord(error?: unknown): void {
  const record: Record<string, unknown> = { ...current };
  if (error !== undefined) {
    record.error =
      error instanceof Error
        ? { name: error.name, message: error.message }
        : { name: 'Error', message: String(error) };
  }
  // A batch that keeps going: what its finished tasks gave, so that only the task it was on fails.
  const partial = executor?.partial();
  if (partial) record.partial = serialize(partial).toString('base64');
  try {
    writeSync(LAST_WORD_FD, `${JSON.stringify(record)}\n`);
  } catch {
    // No pipe (started by hand): nothing to tell.
  }
}
process.on('exit', () => lastWord());
// An error thrown outside the task's own call (a timer, a stray promise) kills the worker; say what it was.
for (const event of ['uncaughtException', 'unhandledRejection'] as const) {
  process.on(event, (error: unknown) => {
    // Name the task that left the timer or promise behind, not the one running now.
    current = currentTask() ?? current;
    lastWord(error);
    writeUncaptured(
      'stderr',
      `joblib-ts worker: ${event === 'uncaughtException' ? 'uncaught exception' : 'unhandled rejection'}: ${error instanceof Error ? error.stack : String(error)}\n`,
    );
    process.exit(70);
  });
}

// A task's output goes to the caller as messages, ahead of the task's result (console-capture.ts).
captureOutput((scope, s, line) => {
  // Negative ids: a nested sequential run's own tasks (its sink takes them).
  if (scope.batch < 0) return false;
  send({ t: 'log', id: scope.batch, at: 'setup' in scope ? -1 : scope.at, s, line } satisfies FromWorker);
  return true;
});

const cancelled = new Set<number>();
let executor: TaskExecutor | undefined;
const queue: BatchMessage[] = [];
let running = false;

async function drain(): Promise<void> {
  running = true;
  for (let message = queue.shift(); message && executor; message = queue.shift()) {
    const reply = await executor.runBatch(message);
    try {
      send(reply);
    } catch (error) {
      send(executor.unsendableResult(message, reply.t === 'done' ? [...reply.results] : [], error));
    }
  }
  running = false;
}

process.on('message', (message: ToWorker | { t: 'init'; init: WorkerInit }) => {
  if (message.t === 'init') {
    if (message.init.sourceMaps) process.setSourceMapsEnabled(true);
    executor = new TaskExecutor({
      init: message.init,
      isCancelled: (run) => cancelled.has(run),
      send,
      yieldEveryMs: 20,
      onTaskStart: (batch, at) => {
        current = { batch: batch.id, at };
        if (batch.report) send({ t: 'at', id: batch.id, at });
      },
    });
    // The pool starts a few workers at a time: this one is up, the next may start.
    send({ t: 'ready' } satisfies FromWorker);
    return;
  }
  if (message.t === 'prefetch') {
    executor?.prefetch(message.defs);
    return;
  }
  if (message.t === 'cancel') {
    cancelled.add(message.run);
    executor?.scopes.cancel(message.run);
    // Runs are numbered upwards: only recent ones can still have batches here.
    if (cancelled.size > 1024) cancelled.delete(cancelled.values().next().value as number);
    return;
  }
  queue.push(message);
  if (!running) void drain();
});
