/**
 * Sends the batches a call dispatched together: their payloads and new large arguments in one pipeline,
 * then their jobs in one bulk add. A payload is written before its job, so a worker never finds a job
 * without its payload.
 */
import { type Call, type CallContext, failCall } from './call.ts';
import { RedisBackendError } from './errors.ts';
import { describeConnection, scrub } from './options.ts';

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
  const { client, queue } = await ctx.connections.connect();
  const { keyTtlMs } = options;
  try {
    const pipeline = client.pipeline();
    for (const [hash, bytes] of call.blobs.takeUnsent())
      pipeline.set(keys.blob(call.id, hash), bytes, 'PX', keyTtlMs);
    for (const { seq, bytes } of items) pipeline.set(keys.payload(call.id, seq), bytes, 'PX', keyTtlMs);
    const replies = (await pipeline.exec()) ?? [];
    const failed = replies.find(([error]) => error);
    if (failed) throw failed[0];
    await queue.addBulk(
      items.map(({ seq }) => ({
        name: 'batch',
        data: { c: call.id, s: seq, ttl: keyTtlMs },
        opts: {
          jobId: keys.jobId(call.id, seq),
          removeOnComplete: true,
          removeOnFail: false,
          attempts: 1,
        },
      })),
    );
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
