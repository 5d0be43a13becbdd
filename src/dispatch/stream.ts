/**
 * Results as an async generator: in input order (`'generator'`) or as they complete (`'unordered'`).
 * Back-pressure: no new batch is dispatched while more than `maxBuffered` results wait for the
 * consumer. Leaving the loop early (`break`, `return`, a throw) stops the run and frees the workers.
 */
import { type RunControl, type RunSpec, startRun } from './dispatcher.ts';

/** One result of an unordered stream: the task's position in the input, and its value. */
export interface IndexedResult<R> {
  index: number;
  value: R;
}

export function streamResults<R>(
  spec: Omit<RunSpec, 'onResults' | 'mayDispatch'>,
  ordered: boolean,
  maxBuffered: number,
): AsyncGenerator<R | IndexedResult<R>, void, undefined> {
  // Ordered: results wait in `pending` until every earlier one has come; then they move to `ready`.
  const pending = new Map<number, unknown>();
  const ready: unknown[] = [];
  let readyHead = 0;
  let nextIndex = 0;
  let wake: (() => void) | undefined;
  let finished = false;
  let failure: { error: unknown } | undefined;
  const buffered = () => ready.length - readyHead + pending.size;
  const settled = spec.errorMode === 'settled';

  const control: RunControl = startRun({
    ...spec,
    mayDispatch: () => buffered() < maxBuffered,
    onResults: (firstIndex, results) => {
      if (ordered) {
        for (let i = 0; i < results.length; i++) pending.set(firstIndex + i, results[i]);
        while (pending.has(nextIndex)) {
          ready.push(pending.get(nextIndex));
          pending.delete(nextIndex++);
        }
      } else {
        // Settled mode: each result is already an entry (`{ status, value | reason }`): the index goes in front.
        for (let i = 0; i < results.length; i++)
          ready.push(
            settled
              ? { index: firstIndex + i, ...(results[i] as object) }
              : { index: firstIndex + i, value: results[i] },
          );
      }
      wake?.();
    },
  });
  control.done.then(
    () => {
      finished = true;
      wake?.();
    },
    (error: unknown) => {
      failure = { error };
      finished = true;
      wake?.();
    },
  );

  async function* generate(): AsyncGenerator<R | IndexedResult<R>, void, undefined> {
    let completed = false;
    try {
      for (;;) {
        while (readyHead < ready.length) {
          const value = ready[readyHead];
          ready[readyHead++] = undefined;
          if (readyHead > 1024 && readyHead * 2 > ready.length) {
            ready.splice(0, readyHead);
            readyHead = 0;
          }
          control.resume();
          yield value as R | IndexedResult<R>;
        }
        if (failure) throw failure.error;
        if (finished) {
          completed = true;
          return;
        }
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
        wake = undefined;
      }
    } finally {
      if (!completed && !failure) control.stop();
      // Whatever happens to the run from here on is not the consumer's business any more.
      control.done.catch(() => {});
    }
  }
  return generate();
}
