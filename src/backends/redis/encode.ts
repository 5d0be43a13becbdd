/**
 * A batch as the bytes of its payload: each distinct function once (as a module path a worker can import),
 * and each argument inline, or as a reference to the call's stored copy when it is large.
 */
import type { LocatedFunction } from '../../locate/index.ts';
import type { BackendBatch } from '../backend.ts';
import type { Call } from './call.ts';
import { type BatchPayload, BlobRef, checkArgument, pack, type WireFunction } from './codec.ts';
import { toWire } from './modules.ts';
import type { ResolvedBackendOptions } from './options.ts';

/** Turns a batch into its payload bytes; throws for an argument or function that cannot travel. */
export function encodeBatch(call: Call, batch: BackendBatch, options: ResolvedBackendOptions): Buffer {
  const fns: WireFunction[] = [];
  const fnIndex = new Map<LocatedFunction, number>();
  const f: number[] = [];
  const count = batch.args.length;
  for (let i = 0; i < count; i++) {
    const located = batch.locations[i];
    if (!located)
      throw new Error('joblib-ts internal error: a task without location reached the Redis backend.');
    let k = fnIndex.get(located);
    if (k === undefined) {
      let wire = call.wire.get(located);
      if (!wire) {
        wire = toWire(located, options.root);
        call.wire.set(located, wire);
      }
      k = fns.length;
      fns.push(wire);
      fnIndex.set(located, k);
    }
    f.push(k);
  }
  const threshold = options.largeArgumentBytes;
  const args: unknown[][] = new Array(count);
  for (let t = 0; t < count; t++) {
    const taskArgs = batch.args[t] as readonly unknown[];
    const out: unknown[] = new Array(taskArgs.length);
    for (let a = 0; a < taskArgs.length; a++) {
      const value = taskArgs[a];
      const known = call.blobs.known(value);
      if (known) {
        out[a] = new BlobRef(known);
        continue;
      }
      const name = batch.locations[t]?.name ?? 'task';
      const size = checkArgument(value, batch.firstIndex + t, a, name);
      out[a] = size > threshold ? new BlobRef(call.blobs.store(value)) : value;
    }
    args[t] = out;
  }
  const single = f.every((k) => k === f[0]);
  const { timeoutMs } = batch;
  const payload: BatchPayload = {
    v: 1,
    first: batch.firstIndex,
    fns,
    f: single ? (f[0] ?? 0) : f,
    a: args,
    ...(timeoutMs === undefined ? {} : { t: timeoutMs }),
    ...(batch.keepGoing ? { k: 1 as const } : {}),
  };
  return pack(payload);
}
