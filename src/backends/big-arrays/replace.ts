/**
 * Big typed-array arguments are sent once per run, not once per task, as joblib memory-maps big NumPy
 * arrays: threads get a view of one shared copy (`shared-copies.ts`), processes a file to read once
 * (`spill-files.ts`). This finds them in a batch; the backend says which it takes and what replaces them.
 */
import type { BackendBatch } from '../backend.ts';

/**
 * The batch's arguments with each typed-array argument of `minBytes` or more that `accept`s replaced by
 * `replace(view)`; undefined when there is none (the batch then goes as it is).
 */
export function replaceBigViews(
  batch: BackendBatch,
  minBytes: number,
  accept: (view: ArrayBufferView) => boolean,
  replace: (view: ArrayBufferView) => unknown,
): (readonly unknown[])[] | undefined {
  let args: (readonly unknown[])[] | undefined;
  for (let t = 0; t < batch.args.length; t++) {
    const taskArgs = batch.args[t] as readonly unknown[];
    for (let a = 0; a < taskArgs.length; a++) {
      const value = taskArgs[a];
      if (typeof value !== 'object' || !ArrayBuffer.isView(value) || value.byteLength < minBytes) continue;
      if (!accept(value)) continue;
      args ??= batch.args.map((list) => [...list]);
      (args[t] as unknown[])[a] = replace(value);
    }
  }
  return args;
}
