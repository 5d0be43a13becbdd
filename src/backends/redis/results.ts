/**
 * The answers of a call's batches: workers push each outcome to the call's own results list, read here
 * with a blocking pop (never through BullMQ's best-effort events), and each settles its batch. A task's
 * error is rebuilt with its own class where the caller knows it.
 */
import { type ErrorClass, findErrorClass } from '../../error-class.ts';
import * as coreErrors from '../../errors.ts';
import { deserializeThrown, type SerializedThrown } from '../../errors.ts';
import type { BackendBatch } from '../backend.ts';
import { type Call, type CallContext, failCall } from './call.ts';
import { unpack, type WireCrash, type WireFailure, type WireOutcome, type WireOutput } from './codec.ts';
import type { Connection } from './connection.ts';
import { CodeRefusedError, ModuleRefusedError, RedisBackendError, VersionSkewError } from './errors.ts';
import { scrub } from './options.ts';

/** joblib-ts's own error classes, so that a worker's TaskImportError or TimeoutError is one here too. */
const OWN_ERRORS: Record<string, ErrorClass> = {
  CodeRefusedError,
  ModuleRefusedError,
  VersionSkewError,
  RedisBackendError,
};
for (const value of Object.values(coreErrors)) {
  if (typeof value === 'function' && value.prototype instanceof Error)
    OWN_ERRORS[value.name] = value as ErrorClass;
}

/**
 * Reads the call's results until it ends or stops. The blocking pop waits through an outage (it is sent
 * again after the reconnection); a cleanup that cannot wake it drops its connection instead.
 */
export async function readResults(ctx: CallContext, call: Call, conn: Connection): Promise<void> {
  const reader = ctx.connections.takeReader(conn);
  call.reader = reader;
  const key = ctx.keys.results(call.id);
  let broken = false;
  try {
    while (!call.ended && !call.stopped) {
      const item = await reader.blpopBuffer(key, 1);
      // An empty item is the wake-up pushed when the call ends.
      if (item && item[1].length > 0) onResult(ctx, call, conn, item[1]);
    }
  } catch (error) {
    broken = true;
    if (!call.ended) {
      failCall(
        call,
        new RedisBackendError(
          `Lost the connection to Redis while waiting for results: ${scrub((error as Error).message)}`,
        ),
      );
    }
  } finally {
    call.reader = undefined;
    ctx.connections.returnReader(conn, reader, broken);
  }
}

/** What the batch's tasks wrote and reported, as the run's events, ahead of its results. */
function emitOutput(ctx: CallContext, call: Call, firstIndex: number, output: readonly WireOutput[]): void {
  const runId = call.runId;
  for (const [at, kind, value] of output) {
    const index = at < 0 ? undefined : firstIndex + at;
    if (kind === 'report') {
      if (index !== undefined) ctx.events.emit({ type: 'report', runId, index, value });
      continue;
    }
    const line = String(value);
    if (!ctx.events.emit({ type: 'log', runId, index, stream: kind, line })) process[kind].write(`${line}\n`);
  }
}

/**
 * The local workers (of the Redis worker `worker`) that died running the batch's tasks: each told as
 * `worker-crashed`, then `worker-exited`, as the other backends tell their own, before the results.
 */
function emitCrashes(
  ctx: CallContext,
  call: Call,
  firstIndex: number,
  worker: string,
  crashes: readonly WireCrash[],
): void {
  const runId = call.runId;
  for (const { w, at, c: exitCode, g: signal } of crashes) {
    const label = `${worker}/${w}`;
    const index = at < 0 ? undefined : firstIndex + at;
    ctx.events.emit({ type: 'worker-crashed', runId, worker: label, exitCode, signal, index });
    ctx.events.emit({ type: 'worker-exited', runId, worker: label, exitCode, signal });
  }
}

function onResult(ctx: CallContext, call: Call, conn: Connection, bytes: Buffer): void {
  let outcome: WireOutcome;
  try {
    outcome = unpack(bytes) as WireOutcome;
  } catch (error) {
    failCall(
      call,
      new RedisBackendError(`A worker sent a result this caller cannot read: ${(error as Error).message}`),
    );
    return;
  }
  call.open.delete(outcome.s);
  const pending = call.pending.get(outcome.s);
  // A batch that ran twice (its first worker died after answering) answers twice: keep the first.
  if (!pending) return;
  call.pending.delete(outcome.s);
  call.donePayloads.push(outcome.s);
  if (call.donePayloads.length >= 64) {
    const seqs = call.donePayloads;
    call.donePayloads = [];
    conn.client.unlink(...seqs.map((s) => ctx.keys.payload(call.id, s))).catch(() => {});
  }
  const { batch } = pending;
  if ('o' in outcome && outcome.o) emitOutput(ctx, call, batch.firstIndex, outcome.o);
  if (outcome.ok === false && outcome.wc)
    emitCrashes(ctx, call, batch.firstIndex, outcome.worker, outcome.wc);
  // Kept going (settled mode, retries): each failed task's error, rebuilt with its class.
  const failuresOf = (failed: readonly WireFailure[] | undefined) => {
    const failures = (failed ?? []).map((f) => ({ at: f.at, error: rebuild(batch, f.at, f.e, outcome) }));
    return failures.length > 0 ? { failures } : {};
  };
  switch (outcome.ok) {
    case true:
      pending.resolve({ ok: true, results: outcome.r, ...failuresOf(outcome.fl) });
      return;
    case 'cancelled':
      pending.resolve({ ok: 'cancelled', completed: outcome.completed });
      return;
    case 'infra':
      pending.reject(
        new RedisBackendError(
          `A worker on ${outcome.host} could not run tasks ${batch.firstIndex}..${batch.firstIndex + batch.args.length - 1}: ${outcome.message}`,
        ),
      );
      return;
    default: {
      if (outcome.init) {
        // The worker's initializer failed: no task ran, and the run fails with its error as it is.
        const located = batch.init?.location;
        pending.reject(
          deserializeThrown(outcome.e, (name) => findErrorClass(located, name) ?? OWN_ERRORS[name]),
        );
        return;
      }
      const error = rebuild(batch, outcome.at, outcome.e, outcome);
      const kept = outcome.r ? { results: outcome.r, ...failuresOf(outcome.fl) } : {};
      pending.resolve({ ok: false, failedAt: outcome.at, error, ...kept });
    }
  }
}

/** A task's error as a worker sent it, with its class where the caller knows it, and where it ran. */
function rebuild(batch: BackendBatch, at: number, thrown: SerializedThrown, outcome: WireOutcome): unknown {
  const located = batch.locations[at];
  const error = deserializeThrown(thrown, (name) => findErrorClass(located, name) ?? OWN_ERRORS[name]);
  if (error !== null && typeof error === 'object' && 'host' in outcome) {
    try {
      Object.assign(error, {
        host: outcome.host,
        ...('worker' in outcome ? { worker: outcome.worker } : {}),
      });
    } catch {
      // A frozen thrown value stays as it is.
    }
  }
  return error;
}
