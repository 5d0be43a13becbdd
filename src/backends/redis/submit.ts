/**
 * Sends the batches a call dispatched together: their payloads and new large arguments in one pipeline,
 * then their jobs in one bulk add. A payload is written before its job, so a worker never finds a job
 * without its payload. A job that Redis lost (a restart that kept the call's marker but not its last
 * writes) is submitted again, with the same job id, so it can never be queued twice.
 */
import type { Queue } from 'bullmq';
import type { ChainableCommander } from 'ioredis';
import { type Call, type CallContext, failCall, type PendingBatch } from './call.ts';
import { RedisBackendError } from './errors.ts';
import { describeConnection, scrub } from './options.ts';
import { lostStateError } from './reachability.ts';

/** Submits what the call has queued since the last flush; a failure fails the call. */
export async function flushCall(ctx: CallContext, call: Call): Promise<void> {
  const items = call.toFlush;
  call.toFlush = [];
  if (items.length === 0) return;
  try {
    await call.ready;
  } catch {
    return; // failCall has rejected every pending batch.
  }
  if (call.ended || call.stopped) return;
  const { keys, options } = ctx;
  const { keyTtlMs } = options;
  try {
    // Commands wait through an outage (the call's check bounds it) and go out once Redis is back.
    const { client, queue } = await ctx.connections.connect();
    const pipeline = client.pipeline();
    for (const [hash, bytes] of call.blobs.takeUnsent())
      pipeline.set(keys.blob(call.id, hash), bytes, 'PX', keyTtlMs);
    await writeThenQueue(ctx, call, pipeline, queue, items);
    for (const { seq } of items) {
      const pending = call.pending.get(seq);
      if (pending) pending.flushed = true;
    }
  } catch (error) {
    failCall(
      call,
      new RedisBackendError(
        `Could not submit tasks to Redis at ${describeConnection(options.connection)}: ${scrub((error as Error).message)}`,
      ),
    );
  }
}

/**
 * Submits again batches whose job and result Redis no longer has, while the call's marker is there.
 * Runs in the call's flush chain, so that every large argument sent so far is in Redis (or lost).
 */
export async function resubmit(ctx: CallContext, call: Call, batches: PendingBatch[]): Promise<void> {
  if (call.ended || call.stopped) return;
  const { keys, options } = ctx;
  try {
    const { client, queue } = await ctx.connections.connect();
    const blobs = call.blobs.sent().map((hash) => keys.blob(call.id, hash));
    if (blobs.length > 0 && (await client.exists(...blobs)) < blobs.length) {
      failCall(call, lostStateError(options.connection, 'a large argument of the call is gone'));
      return;
    }
    await writeThenQueue(ctx, call, client.pipeline(), queue, batches);
  } catch (error) {
    failCall(
      call,
      new RedisBackendError(
        `Could not submit tasks again to Redis at ${describeConnection(options.connection)}: ${scrub((error as Error).message)}`,
      ),
    );
  }
}

/**
 * Writes the batches' payloads (after whatever `pipeline` already holds) and, once Redis has taken them
 * all, adds their jobs: a worker never finds a job without its payload. Throws the first failed write.
 */
async function writeThenQueue(
  ctx: CallContext,
  call: Call,
  pipeline: ChainableCommander,
  queue: Queue,
  batches: readonly { readonly seq: number; readonly bytes: Buffer }[],
): Promise<void> {
  const { keys, options } = ctx;
  for (const { seq, bytes } of batches)
    pipeline.set(keys.payload(call.id, seq), bytes, 'PX', options.keyTtlMs);
  const replies = (await pipeline.exec()) ?? [];
  const failed = replies.find(([error]) => error);
  if (failed) throw failed[0];
  await queue.addBulk(
    batches.map(({ seq }) => ({
      name: 'batch',
      data: { c: call.id, s: seq, ttl: options.keyTtlMs },
      opts: {
        jobId: keys.jobId(call.id, seq),
        removeOnComplete: true,
        // Failed jobs are kept for the caller to read why, for keyTtlMs at most (see the worker's 'failed').
        removeOnFail: { age: Math.ceil(options.keyTtlMs / 1000) },
        attempts: 1,
      },
    })),
  );
}
