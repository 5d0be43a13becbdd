/**
 * The call's watchdog, run on a timer: compares what the call waits for with its jobs' state in Redis
 * (failed, vanished) and with the workers' heartbeats, so that nothing can hang silently. It also keeps
 * the call's marker alive, which tells workers the call still wants its jobs run.
 */
import { type Call, type CallContext, failCall, markerTtl, type PendingBatch } from './call.ts';
import type { Connection } from './connection.ts';
import { RedisBackendError } from './errors.ts';

/** One check; a check that cannot reach Redis is retried at the next tick. */
export async function reconcile(ctx: CallContext, call: Call, conn: Connection): Promise<void> {
  if (call.ended || call.stopped) return;
  const { keys } = ctx;
  try {
    const flushed = [...call.pending.values()].filter((p) => p.flushed);
    const pipeline = conn.client.pipeline();
    pipeline.pexpire(keys.marker(call.id), markerTtl(ctx.options));
    pipeline.llen(keys.results(call.id));
    for (const p of flushed) pipeline.hmget(keys.jobKey(call.id, p.seq), 'timestamp', 'failedReason');
    const replies = (await pipeline.exec()) ?? [];
    const waitingResults = Number(replies[1]?.[1] ?? 0);
    for (let i = 0; i < flushed.length; i++) {
      const p = flushed[i] as PendingBatch;
      if (!call.pending.has(p.seq)) continue;
      const [timestamp, failedReason] = (replies[i + 2]?.[1] ?? [null, null]) as (string | null)[];
      const jobId = keys.jobId(call.id, p.seq);
      const tasks = `tasks ${p.batch.firstIndex}..${p.batch.firstIndex + p.batch.args.length - 1}`;
      if (failedReason) {
        failCall(call, new RedisBackendError(`Job ${jobId} (${tasks}) failed in the queue: ${failedReason}`));
        return;
      }
      if (timestamp === null && waitingResults === 0) {
        p.misses++;
        if (p.misses >= 2) {
          failCall(
            call,
            new RedisBackendError(
              `Job ${jobId} (${tasks}) vanished from the queue without a result (its keys were deleted or expired).`,
            ),
          );
          return;
        }
      } else {
        p.misses = 0;
      }
    }
    const live = await ctx.liveness.read(conn.client);
    if (live.workers.length > 0 || call.pending.size === 0) {
      call.noWorkersSince = undefined;
    } else {
      call.noWorkersSince ??= Date.now();
      const waited = Date.now() - call.noWorkersSince;
      if (waited >= ctx.options.workerWaitMs) failCall(call, ctx.liveness.noWorkerError(waited));
    }
  } catch {
    // A failed check is retried at the next tick; a dead connection shows up in the reader.
  }
}
