/**
 * What a call leaves in Redis, removed when it ends: marker, results list, payloads, large arguments,
 * and its jobs still queued. Whatever is missed expires by itself (`keyTtlMs`).
 */
import type { Call, CallContext } from './call.ts';
import type { Connection } from './connection.ts';

/** Deletes every key of the call, once its submissions and its results reader are done. */
export async function cleanupCall(ctx: CallContext, call: Call): Promise<void> {
  if (!ctx.connections.started) return;
  const { keys } = ctx;
  let conn: Connection;
  try {
    await call.ready;
  } catch {
    // Even a call that never started may have set keys: fall through.
  }
  try {
    conn = await ctx.connections.connect();
  } catch {
    return;
  }
  await call.flushing.catch(() => {});
  // Wake the results reader (blocked in BLPOP) so its connection serves the next call at once.
  await conn.client.rpush(keys.results(call.id), '').catch(() => 0);
  await call.readerDone;
  const doomed: string[] = [keys.marker(call.id), keys.results(call.id)];
  for (let seq = 0; seq < call.nextSeq; seq++) doomed.push(keys.payload(call.id, seq));
  for (const hash of call.blobs.stored) doomed.push(keys.blob(call.id, hash));
  try {
    for (let i = 0; i < doomed.length; i += 1000) await conn.client.unlink(...doomed.slice(i, i + 1000));
    // Jobs not known to be finished: queued ones are removed; running ones finish (or stop) and go.
    const open = [...call.open].map((seq) => keys.jobId(call.id, seq));
    await Promise.all(open.map((id) => conn.queue.remove(id).catch(() => 0)));
  } catch {
    // Keys expire by themselves (keyTtlMs).
  }
}
