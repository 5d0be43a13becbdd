/**
 * The call's watchdog, run on a timer: compares what the call waits for with its jobs' state in Redis
 * (failed, lost) and with the workers' heartbeats, so that nothing can hang silently. Each check is also
 * the probe of an outage: while one goes unanswered, the call rides the outage out (its commands wait
 * and go out after the reconnection) for up to `outageMs`, then fails saying Redis is unreachable.
 * A marker gone after an outage means Redis came back without the call's state.
 */
import { type Call, type CallContext, failCall, markerTtl, type PendingBatch } from './call.ts';
import type { Connection } from './connection.ts';
import { RedisBackendError } from './errors.ts';
import { lostStateError, unreachableError } from './reachability.ts';
import { resubmit } from './submit.ts';

/** Times a batch is submitted again after Redis lost its job, before the call gives up. */
const MAX_RESUBMITS = 3;

/** One timer tick: judges the outstanding check, or starts the next one. */
export function tick(ctx: CallContext, call: Call, conn: Connection): void {
  if (call.ended || call.stopped) return;
  const waited = call.clock.tick();
  if (call.clock.waiting) {
    if (waited >= ctx.options.outageMs) {
      // Judged after this turn's I/O: a reply already in the socket still counts as an answer.
      setImmediate(() => {
        if (!call.clock.waiting || call.ended || call.stopped) return;
        failCall(call, unreachableError(ctx.options.connection, waited, ctx.options.outageMs));
      });
    }
    return;
  }
  call.clock.start();
  void reconcile(ctx, call, conn).finally(() => call.clock.answered());
}

/** One check. Commands wait through an outage; an error reply only postpones conclusions to the next. */
async function reconcile(ctx: CallContext, call: Call, conn: Connection): Promise<void> {
  const { keys } = ctx;
  try {
    const flushed = [...call.pending.values()].filter((p) => p.flushed);
    const pipeline = conn.client.pipeline();
    pipeline.pexpire(keys.marker(call.id), markerTtl(ctx.options));
    pipeline.llen(keys.results(call.id));
    for (const p of flushed) pipeline.hmget(keys.jobKey(call.id, p.seq), 'timestamp', 'failedReason');
    const replies = (await pipeline.exec()) ?? [];
    if (replies.length !== flushed.length + 2 || replies.some(([error]) => error)) return;
    if (call.ended || call.stopped) return;
    // The marker lives as long as the call (the lease thread renews it): gone means Redis lost it.
    if (Number(replies[0]?.[1]) === 0) {
      failCall(call, lostStateError(ctx.options.connection, "the call's marker key is gone"));
      return;
    }
    const waitingResults = Number(replies[1]?.[1] ?? 0);
    const lost: PendingBatch[] = [];
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
        // Twice in a row, so that a result on its way to the reader is not taken for a loss.
        p.misses++;
        if (p.misses < 2) continue;
        if (p.resubmits >= MAX_RESUBMITS) {
          failCall(
            call,
            lostStateError(
              ctx.options.connection,
              `job ${jobId} (${tasks}) was lost ${p.resubmits + 1} times, with no result`,
            ),
          );
          return;
        }
        p.misses = 0;
        p.resubmits++;
        lost.push(p);
      } else {
        p.misses = 0;
      }
    }
    if (lost.length > 0) call.flushing = call.flushing.then(() => resubmit(ctx, call, lost));
    const live = await ctx.liveness.read(conn.client);
    if (live.workers.length > 0 || call.pending.size === 0) {
      call.noWorkersSince = undefined;
    } else {
      call.noWorkersSince ??= Date.now();
      const waited = Date.now() - call.noWorkersSince;
      if (waited >= ctx.options.workerWaitMs) failCall(call, ctx.liveness.noWorkerError(waited));
    }
  } catch {
    // A failed check is retried at the next tick.
  }
}
