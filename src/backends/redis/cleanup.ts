/**
 * What a call leaves in Redis, removed when it ends: marker, results list, payloads, large arguments,
 * and its jobs still queued. Each step waits for Redis a bounded time (CLEANUP_STEP_MS): a Redis that
 * does not answer is given up on, so that `close()` returns and the program can exit. Whatever is
 * missed then expires by itself (`keyTtlMs`, the marker after `leaseMs`), and workers remove the jobs
 * of a call without a marker as they reach them.
 */
import type { Call, CallContext } from './call.ts';
import type { Connection } from './connection.ts';
import { settlesWithin } from './reachability.ts';

/** How long one step of a cleanup waits for Redis before the cleanup is given up. */
export const CLEANUP_STEP_MS = 2000;

const step = (promise: Promise<unknown>) => settlesWithin(promise, CLEANUP_STEP_MS);

/**
 * Deletes every key of the call, once its submissions and its results reader are done. Resolves to
 * false when Redis stopped answering (the call's keys are then left to expire).
 */
export async function cleanupCall(ctx: CallContext, call: Call): Promise<boolean> {
  if (!ctx.connections.started) return true;
  const { keys } = ctx;
  // Even a call that never started may have set keys: go on whether it failed or not.
  if (!(await step(call.ready))) return abandon(ctx, call);
  let conn: Connection;
  try {
    conn = await ctx.connections.connect();
  } catch {
    return abandon(ctx, call);
  }
  if (!(await step(call.flushing))) return abandon(ctx, call);
  // Wake the results reader (blocked in BLPOP) so its connection serves the next call at once.
  // The list gets a lifetime too, in case the deletion below cannot run.
  const wake = conn.client
    .multi()
    .rpush(keys.results(call.id), '')
    .pexpire(keys.results(call.id), ctx.options.keyTtlMs);
  if (!(await step(wake.exec()))) return abandon(ctx, call);
  if (!(await step(call.readerDone))) return abandon(ctx, call);
  const doomed: string[] = [keys.marker(call.id), keys.results(call.id)];
  for (let seq = 0; seq < call.nextSeq; seq++) doomed.push(keys.payload(call.id, seq));
  for (const hash of call.blobs.stored) doomed.push(keys.blob(call.id, hash));
  for (let i = 0; i < doomed.length; i += 1000) {
    if (!(await step(conn.client.unlink(...doomed.slice(i, i + 1000))))) return abandon(ctx, call);
  }
  // Jobs not known to be finished: queued (or failed) ones are removed; running ones finish (or stop) and go.
  const open = [...call.open].map((seq) => keys.jobId(call.id, seq));
  for (let i = 0; i < open.length; i += 100) {
    const removals = open.slice(i, i + 100).map((id) => conn.queue.remove(id).catch(() => 0));
    if (!(await step(Promise.all(removals)))) return abandon(ctx, call);
  }
  return true;
}

/** Redis does not answer: the reader cannot be woken, so its connection is dropped. */
function abandon(ctx: CallContext, call: Call): false {
  if (call.reader) ctx.connections.dropReader(call.reader);
  return false;
}
