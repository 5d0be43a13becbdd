/**
 * What a worker says besides its batches' answers, turned into events of the run it belongs to: the
 * lines its tasks wrote and the values they reported. A line no run listens for (a task's timer that
 * wrote after its run ended) is printed as it is, so that output is never lost.
 */
import type { EventHub } from '../events.ts';
import type { FromWorker } from '../wire/protocol.ts';

export type WorkerOutput = Extract<FromWorker, { t: 'log' | 'report' }>;

/** Emits `message` as an event of run `runId`, whose batch began at input index `firstIndex`. */
export function emitWorkerOutput(
  hub: EventHub | undefined,
  runId: number,
  firstIndex: number,
  message: WorkerOutput,
): void {
  const index = message.at < 0 ? undefined : firstIndex + message.at;
  if (message.t === 'report') {
    if (index !== undefined) hub?.emit({ type: 'report', runId, index, value: message.value });
    return;
  }
  const delivered = hub?.emit({ type: 'log', runId, index, stream: message.s, line: message.line }) ?? false;
  if (!delivered) process[message.s].write(`${message.line}\n`);
}
