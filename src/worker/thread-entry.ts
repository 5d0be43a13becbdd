/** Entry of a worker thread: runs batches one after another, in the order they arrive. */
import { parentPort, workerData } from 'node:worker_threads';
import { captureOutput } from '../context/console-capture.ts';
import { markAsWorker } from '../main-guard.ts';
import {
  type BatchMessage,
  cancelSlot,
  type FromWorker,
  type ToWorker,
  type WorkerInit,
} from '../wire/protocol.ts';
import { TaskExecutor } from './executor.ts';
import { currentTask } from './task-context.ts';

markAsWorker();
const init = workerData as WorkerInit;
if (init.sourceMaps) process.setSourceMapsEnabled(true);
const control = init.control ? new Int32Array(init.control) : undefined;
const position = init.position ? new Int32Array(init.position) : undefined;
const executor = new TaskExecutor({
  init,
  isCancelled: (run) => control !== undefined && Atomics.load(control, cancelSlot(run)) === run,
  // Two plain stores per task: the caller reads them only when a timeout or a crash needs to know.
  onTaskStart: position
    ? (message, at) => {
        Atomics.store(position, 0, message.id);
        Atomics.store(position, 1, at);
      }
    : undefined,
  send: (message) => parentPort?.postMessage(message),
});
// A task's output goes to the caller as messages, ahead of the task's result (console-capture.ts).
captureOutput((scope, s, line) => {
  // Negative ids: a nested sequential run's own tasks (its sink takes them).
  if (scope.batch < 0) return false;
  parentPort?.postMessage({
    t: 'log',
    id: scope.batch,
    at: 'setup' in scope ? -1 : scope.at,
    s,
    line,
  } satisfies FromWorker);
  return true;
});

// A throw outside a task's own call (a timer, a rejection nobody handles) kills this worker, as it kills
// a worker process: first point the position slots at the task it came from, for the caller's error.
function blameTask(): void {
  const task = currentTask();
  if (!task || !position) return;
  Atomics.store(position, 0, task.batch);
  Atomics.store(position, 1, task.at);
}
process.on('uncaughtExceptionMonitor', blameTask);
process.on('unhandledRejection', (reason) => {
  blameTask();
  throw reason;
});

const port = parentPort!;
// Dying in the middle of a batch that keeps going (process.exit() in a task, a throw from a timer): the
// results of the tasks it finished go first, so that only the task it was on fails.
process.on('exit', () => {
  const partial = executor.partial();
  if (partial) port.postMessage(partial);
});
const queue: BatchMessage[] = [];
let running = false;

async function drain(): Promise<void> {
  running = true;
  for (let message = queue.shift(); message; message = queue.shift()) {
    const reply = await executor.runBatch(message);
    try {
      const transfer: ArrayBuffer[] =
        reply.t === 'done' && ArrayBuffer.isView(reply.results) ? [reply.results.buffer as ArrayBuffer] : [];
      port.postMessage(reply, transfer);
    } catch (error) {
      port.postMessage(
        executor.unsendableResult(message, reply.t === 'done' ? [...reply.results] : [], error),
      );
    }
  }
  running = false;
}

port.on('message', (message: ToWorker) => {
  if (message.t === 'prefetch') executor.prefetch(message.defs);
  // Cancellation itself is read from the shared table; this aborts the run's task signals.
  if (message.t === 'cancel') executor.scopes.cancel(message.run);
  if (message.t !== 'batch') return;
  queue.push(message);
  if (!running) void drain();
});
// The pool starts a few workers at a time: this one is up, the next may start.
port.postMessage({ t: 'ready' } satisfies FromWorker);
