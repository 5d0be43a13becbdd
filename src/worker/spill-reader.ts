/** Big typed-array arguments of worker processes, read back from the caller's spill files. */
import { readFileSync } from 'node:fs';
import { isSpilled, type SpilledArray, toView } from '../wire/spilled-array.ts';

/** Reads each spilled array once per run, and gives every task of the run that copy. */
export class SpillReader {
  private run = -1;
  private readonly loaded = new Map<string, ArrayBufferView>();

  /** The task's arguments with spilled arrays read back (the same array for every task of the run). */
  restore(run: number, args: readonly unknown[]): unknown[] {
    if (run !== this.run) {
      // Only the current run's arrays are kept: memory goes back as soon as the next run starts.
      this.loaded.clear();
      this.run = run;
    }
    return args.map((value) => (isSpilled(value) ? this.read(value) : value));
  }

  private read(spilled: SpilledArray): ArrayBufferView {
    const cached = this.loaded.get(spilled.path);
    if (cached) return cached;
    const bytes = readFileSync(spilled.path);
    if (bytes.byteLength !== spilled.byteLength) {
      throw new Error(
        `joblib-ts: a big argument (${spilled.type}, ${spilled.byteLength} bytes) was cut short in transit: read ${bytes.byteLength} bytes from ${spilled.path}.`,
      );
    }
    const view = toView(spilled.type, bytes);
    this.loaded.set(spilled.path, view);
    return view;
  }
}
