/** Entry of a child process worker: like a thread worker, over the IPC channel with V8 serialization. */
import { markAsWorker } from '../main-guard.ts';
import { TaskExecutor } from './executor.ts';
import type { BatchMessage, ToWorker, WorkerInit } from './protocol.ts';

markAsWorker();
if (!process.send) {
  process.stderr.write(
    'joblib-ts: the process worker entry must be started by joblib-ts (it has no IPC channel).\n',
  );
  process.exit(1);
}
const send: (message: unknown) => boolean = process.send.bind(process);
// The caller is gone (exited or killed): nothing will read our results, so leave with it.
process.on('disconnect', () => process.exit(0));

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
      send(executor.unsendableResult(message, reply.t === 'done' ? reply.results : [], error));
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
      yieldEveryMs: 20,
    });
    return;
  }
  if (message.t === 'cancel') {
    cancelled.add(message.run);
    // Runs are numbered upwards: only recent ones can still have batches here.
    if (cancelled.size > 1024) cancelled.delete(cancelled.values().next().value as number);
    return;
  }
  queue.push(message);
  if (!running) void drain();
});
