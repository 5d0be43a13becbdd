/**
 * Stopping a call before its end: its waiting batches resolve as cancelled at once, and the workers are
 * told (marker deleted, cancel message published) to skip its queued jobs and stop its running ones.
 */
import type { Call, CallContext } from './call.ts';

/**
 * Stops the call's work: workers skip its jobs and stop its running batches between tasks (with
 * `abort`, at once: they terminate the local processes that run them).
 */
export function stopCall(ctx: CallContext, call: Call, abort: boolean): void {
  if (call.stopped && (!abort || call.aborted)) return;
  call.stopped = true;
  if (abort) call.aborted = true;
  const pending = [...call.pending.values()];
  call.pending.clear();
  for (const p of pending) p.resolve({ ok: 'cancelled', completed: 0 });
  if (!ctx.connections.started) return;
  const stopping = (async () => {
    const conn = await ctx.connections.connect();
    await conn.client
      .multi()
      .del(ctx.keys.marker(call.id))
      .publish(ctx.keys.cancelChannel, abort ? `!${call.id}` : call.id)
      .exec();
  })().catch(() => {});
  // Cleanup waits for this, so the cancel goes out before the call's keys are deleted.
  call.flushing = call.flushing.then(() => stopping);
}
