/**
 * The worker side of the Redis backend: pulls batches (BullMQ jobs) from the queue and runs them on a
 * local pool of child processes (or threads), so one worker uses all its cores and user code never runs
 * in the process that renews the jobs' locks. Results go to the call's own Redis list, never through
 * BullMQ's best-effort events. Through a Redis outage its commands wait and go out after the
 * reconnection; the batches of a call whose marker is gone (its caller died, or Redis lost it) are
 * stopped at the next heartbeat.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { Worker as BullWorker, type Job, WaitingError } from 'bullmq';
import type { Redis } from 'ioredis';
import { functionId } from '../../capture/function-ids.ts';
import { cpuCount } from '../../cpu.ts';
import type { AnyFunction } from '../../delayed.ts';
import { serializeThrown } from '../../errors.ts';
import type { JoblibEvent } from '../../events.ts';
import type { LocatedFunction } from '../../locate/index.ts';
import { renumberTags } from '../../wire/tagged.ts';
import type { BackendBatch, BatchInitializer, BatchOutcome, ParallelBackend } from '../backend.ts';
import { isInitializerError } from '../initializer-error.ts';
import { ProcessesBackend } from '../processes.ts';
import { ThreadsBackend } from '../threads.ts';
import {
  type BatchPayload,
  BlobRef,
  canEncode,
  pack,
  unpack,
  type WireCrash,
  type WireDefinition,
  type WireFailure,
  type WireOutcome,
  type WireOutput,
} from './codec.ts';
import { CodeRefusedError } from './errors.ts';
import { fromWire, realRoot, type WorkerSide } from './modules.ts';
import {
  createClient,
  DEFAULT_LOCK_MS,
  DEFAULT_MAX_STALLED_COUNT,
  DEFAULT_STALLED_INTERVAL_MS,
  describeConnection,
  HEARTBEAT_MS,
  Keys,
  type RedisQueueOptions,
  resolveQueueOptions,
  scrub,
} from './options.ts';
import { firstContact, settlesWithin } from './reachability.ts';
import { resolveSecret, SECRET_ENV, type Secret } from './secret.ts';

/** Reads of a job's keys that got an error reply, tried again this many times, this far apart (x attempt). */
const READ_ATTEMPTS = 5;
const READ_RETRY_MS = 200;

export interface RedisWorkerOptions extends RedisQueueOptions {
  /** Project root: modules named by jobs are resolved under it, and nothing outside it is imported. */
  root: string;
  /** Local pool size (child processes or threads). Default: the CPU count. */
  concurrency?: number;
  /** Where user code runs: `processes` (default, isolated) or `threads`. */
  backend?: 'processes' | 'threads';
  /** Jobs held beyond `concurrency`, so a pool slot never waits for Redis. Default: `concurrency`. */
  prefetch?: number;
  /** Job lock duration (ms); a dead worker's jobs return to the queue within lock + 2 × stalled interval. */
  lockMs?: number;
  stalledIntervalMs?: number;
  /** Times a job may be recovered from a dead worker before it fails. Default 3. */
  maxStalledCount?: number;
  /** Progress lines (started, stopping...). Default: none. */
  log?: (line: string) => void;
  /**
   * The secret shared with callers (default: `JOBLIB_TS_SECRET`): with it, the worker runs functions
   * sent by value whose code is signed with it; without it, it refuses them. Functions exported by
   * modules under `root` run either way. At least 16 characters.
   */
  secret?: string;
}

export interface WorkerInfo {
  readonly id: string;
  readonly host: string;
  readonly pid: number;
  readonly concurrency: number;
  readonly backend: string;
  readonly node: string;
  readonly startedAt: number;
}

/** Caller ids to the local pool's ids of the same definitions. */
function localIds(definitions: Map<number, LocatedFunction>, where: string): (id: number) => number {
  return (id) => {
    const located = definitions.get(id);
    if (!located) throw new CodeRefusedError(`${where} of this job names definition ${id}, which it lacks.`);
    return functionId(located);
  };
}

/** Pushes a batch outcome only while the call is alive (its marker exists): a finished call gets no keys back. */
const PUSH_IF_ALIVE = `
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('RPUSH', KEYS[2], ARGV[1])
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
  return 1
end
return 0`;

const placeholder: AnyFunction = () => {
  throw new Error('joblib-ts internal error: a Redis worker never calls task functions itself.');
};

interface JobData {
  c: string;
  s: number;
  ttl: number;
}

/** Cache of large arguments by content hash, bounded in bytes (least recently used first out). */
class BlobCache {
  private readonly entries = new Map<string, { value: unknown; bytes: number }>();
  private bytes = 0;
  constructor(private readonly limit: number) {}
  /** Whether the value is here (and marks it recently used). */
  has(hash: string): boolean {
    const entry = this.entries.get(hash);
    if (!entry) return false;
    this.entries.delete(hash);
    this.entries.set(hash, entry);
    return true;
  }
  value(hash: string): unknown {
    return this.entries.get(hash)?.value;
  }
  set(hash: string, value: unknown, bytes: number): void {
    this.entries.set(hash, { value, bytes });
    this.bytes += bytes;
    for (const [key, entry] of this.entries) {
      if (this.bytes <= this.limit || this.entries.size <= 1) break;
      this.entries.delete(key);
      this.bytes -= entry.bytes;
    }
  }
}

export class RedisWorker {
  readonly id: string;
  readonly info: WorkerInfo;
  private readonly keys: Keys;
  private readonly side: WorkerSide;
  /** Definitions by reference (module, global) that signed payloads named, made once. */
  private readonly references = new Map<string, LocatedFunction>();
  private readonly local: ParallelBackend;
  private readonly blobs = new BlobCache(512 * 1024 * 1024);
  /** Local run ids of the batches of each call, for cancellation. */
  private readonly runsOfCall = new Map<string, Set<number>>();
  private readonly activeJobs = new Map<number, { job: Job<JobData>; token: string | undefined }>();
  private nextRun = 1;
  private heartbeat: NodeJS.Timeout | undefined;
  /** A heartbeat is waiting for Redis (an outage): the next ones are skipped, not piled up. */
  private beating = false;
  private stopping: Promise<void> | undefined;
  private returning = false;
  private bull: BullWorker<JobData> | undefined;
  private markStopped!: () => void;
  /** Settles once the worker has stopped (unregistered, pool closed, connections closed). */
  readonly stopped = new Promise<void>((resolve) => {
    this.markStopped = resolve;
  });

  private constructor(
    private readonly options: RedisWorkerOptions,
    private readonly client: Redis,
    private readonly subscriber: Redis,
    private readonly blocking: Redis,
    /** Signs what this worker will run by value; never shown. */
    private readonly secret: Secret | undefined,
  ) {
    const { queue, prefix } = resolveQueueOptions(options);
    this.keys = new Keys(prefix, queue);
    const host = hostname();
    this.id = `${host}-${process.pid}-${randomBytes(3).toString('hex')}`;
    this.side = { root: realRoot(options.root), host };
    const concurrency = options.concurrency ?? cpuCount();
    const backend = options.backend ?? 'processes';
    this.local = backend === 'threads' ? new ThreadsBackend(concurrency) : new ProcessesBackend(concurrency);
    this.info = {
      id: this.id,
      host,
      pid: process.pid,
      concurrency,
      backend,
      node: process.version,
      startedAt: Date.now(),
    };
  }

  /** Connects, registers and starts pulling jobs. Rejects (without a password in the message) when Redis is unreachable. */
  static async start(options: RedisWorkerOptions): Promise<RedisWorker> {
    const { connection, queue, prefix } = resolveQueueOptions(options);
    const secret = resolveSecret(options.secret, 'RedisWorker option secret');
    const concurrency = options.concurrency ?? cpuCount();
    if (!Number.isInteger(concurrency) || concurrency < 1) {
      throw new Error(`--concurrency must be a positive integer; got ${String(options.concurrency)}.`);
    }
    const client = createClient(connection, { blocking: false, name: 'joblib-ts-worker' });
    try {
      await firstContact(client, connection, 10_000);
    } catch (error) {
      client.disconnect();
      throw new Error((error as Error).message);
    }
    const subscriber = createClient(connection, { blocking: true, name: 'joblib-ts-worker-cancel' });
    const blocking = createClient(connection, { blocking: true, name: 'joblib-ts-worker-jobs' });
    const worker = new RedisWorker(options, client, subscriber, blocking, secret);
    await worker.run(queue, prefix, concurrency);
    return worker;
  }

  private async run(queue: string, prefix: string, concurrency: number): Promise<void> {
    const { options } = this;
    client(this.client).defineCommand('jtPushIfAlive', { numberOfKeys: 2, lua: PUSH_IF_ALIVE });
    await this.warmUp(concurrency);
    await this.subscriber.subscribe(this.keys.cancelChannel);
    this.subscriber.on('message', (_channel: string, call: string) => this.cancelCall(call));
    await this.beat();
    this.heartbeat = setInterval(() => void this.beat().catch(() => {}), HEARTBEAT_MS);
    const lockDuration = options.lockMs ?? DEFAULT_LOCK_MS;
    this.bull = new BullWorker<JobData>(queue, (job, token) => this.process(job, token), {
      connection: this.blocking,
      prefix,
      concurrency: concurrency + (options.prefetch ?? concurrency),
      lockDuration,
      lockRenewTime: Math.max(250, Math.floor(lockDuration / 4)),
      stalledInterval: options.stalledIntervalMs ?? DEFAULT_STALLED_INTERVAL_MS,
      maxStalledCount: options.maxStalledCount ?? DEFAULT_MAX_STALLED_COUNT,
      removeOnComplete: { count: 0 },
      drainDelay: 5,
      name: this.id,
    });
    this.bull.on('error', (error) => options.log?.(`worker error: ${scrub(error.message)}`));
    // A failed job is kept for its caller to read why, but never for longer than the call's keys.
    this.bull.on('failed', (job) => {
      if (job?.id)
        this.client.pexpire(`${this.keys.base}:${job.id}`, Number(job.data?.ttl) || 3_600_000).catch(() => 0);
    });
    options.log?.(
      `joblib-ts worker ${this.id}: ${this.info.concurrency} ${this.info.backend} on queue '${queue}' at ${describeConnection(resolveQueueOptions(options).connection)}, root ${this.side.root}, ${this.secret ? 'runs code sent by value when signed with its secret' : `refuses code sent by value (no secret: --secret-file or ${SECRET_ENV})`}`,
    );
  }

  /** Starts the local pool before taking jobs, so the first batches do not wait for processes to boot. */
  private async warmUp(concurrency: number): Promise<void> {
    const run = this.nextRun++;
    const located: LocatedFunction = { ref: { kind: 'global', path: ['Math', 'max'] }, name: 'Math.max' };
    this.local.startRun?.(run);
    try {
      await Promise.all(
        Array.from({ length: concurrency }, () =>
          this.local.runBatch({
            runId: run,
            firstIndex: 0,
            fns: [placeholder],
            locations: [located],
            args: [[]],
          }),
        ),
      );
    } finally {
      this.local.endRun?.(run);
    }
  }

  /**
   * Keeps the registration alive, and stops the running batches of calls whose marker is gone: their
   * caller died (its lease ran out) or Redis lost the call, so nobody waits for their results.
   */
  private async beat(): Promise<void> {
    if (this.beating) return;
    this.beating = true;
    try {
      const ttl = HEARTBEAT_MS * 3;
      const calls = [...this.runsOfCall.keys()];
      const multi = this.client
        .multi()
        .set(this.keys.worker(this.id), JSON.stringify(this.info), 'PX', ttl)
        .sadd(this.keys.workerSet, this.id)
        .pexpire(this.keys.workerSet, ttl * 10);
      for (const call of calls) multi.exists(this.keys.marker(call));
      const replies = (await multi.exec()) ?? [];
      calls.forEach((call, i) => {
        const [error, exists] = replies[3 + i] ?? [null, 1];
        if (!error && Number(exists) === 0) this.cancelCall(`!${call}`);
      });
    } finally {
      this.beating = false;
    }
  }

  /** A message on the cancel channel: `<call>` stops its batches between tasks, `!<call>` at once. */
  private cancelCall(message: string): void {
    const abort = message.startsWith('!');
    const runs = this.runsOfCall.get(abort ? message.slice(1) : message);
    if (!runs) return;
    for (const run of runs) {
      if (abort && this.local.abortRun) this.local.abortRun(run);
      else this.local.cancelRun(run);
    }
  }

  private async process(job: Job<JobData>, token: string | undefined): Promise<string> {
    const { c: call, s: seq, ttl } = job.data;
    const keys = this.keys;
    const { alive, payloadBytes } = await this.readJob(call, seq);
    // The call has ended (finished, failed, cancelled, or its caller died): nothing to do.
    if (!alive) return 'skipped';
    if (!payloadBytes) {
      await this.push(call, ttl, {
        s: seq,
        ok: 'infra',
        message: `the batch's data is gone from Redis (${keys.payload(call, seq)})`,
        host: this.side.host,
      });
      return 'no payload';
    }
    const payload = unpack(payloadBytes) as BatchPayload;
    const outcome = await this.runPayload(call, seq, payload, job, token);
    if (outcome === 'returned') throw new WaitingError();
    await this.push(call, ttl, outcome);
    return 'done';
  }

  /**
   * The call's marker and the batch's payload, read together. An error reply (a command caught by a
   * reconnection, a server still loading its data) is not an answer: read again, a few times, and then
   * fail the job with that error rather than report the payload gone when it may not be.
   */
  private async readJob(call: string, seq: number): Promise<{ alive: boolean; payloadBytes: Buffer | null }> {
    const keys = this.keys;
    for (let attempt = 1; ; attempt++) {
      const replies = await this.client
        .multi()
        .exists(keys.marker(call))
        .getBuffer(keys.payload(call, seq))
        .exec();
      const failed = replies
        ? replies.find(([error]) => error)?.[0]
        : new Error('the transaction was aborted');
      if (!failed && replies) {
        const [[, alive], [, payloadBytes]] = replies as [[null, number], [null, Buffer | null]];
        return { alive: alive === 1, payloadBytes };
      }
      if (attempt >= READ_ATTEMPTS) throw failed;
      await new Promise((resolve) => setTimeout(resolve, READ_RETRY_MS * attempt));
    }
  }

  private async runPayload(
    call: string,
    seq: number,
    payload: BatchPayload,
    job: Job<JobData>,
    token: string | undefined,
  ): Promise<WireOutcome | 'returned'> {
    const count = payload.a.length;
    const fnIndex = (i: number) => (typeof payload.f === 'number' ? payload.f : (payload.f[i] as number));
    const run = this.nextRun++;
    // Code sent by value: nothing of the batch runs unless it is signed with this worker's secret.
    let definitions: Map<number, LocatedFunction> | undefined;
    if (payload.x !== undefined || payload.e !== undefined || payload.fns.some((fn) => 'd' in fn)) {
      try {
        definitions = this.definitions(call, payload, run);
      } catch (error) {
        return this.failure(seq, 0, error);
      }
    }
    // Resolve each function once; a refused one fails the batch at its first task.
    const located: (LocatedFunction | undefined)[] = [];
    for (let k = 0; k < payload.fns.length; k++) {
      try {
        const wire = payload.fns[k] as BatchPayload['fns'][number];
        const own = 'd' in wire ? definitions?.get(wire.d) : undefined;
        located[k] = own ?? fromWire(wire, this.side);
      } catch (error) {
        let at = 0;
        while (at < count && fnIndex(at) !== k) at++;
        return this.failure(seq, Math.min(at, count - 1), error);
      }
    }
    let args: unknown[][];
    try {
      args = await this.resolveBlobs(call, payload.a);
    } catch (error) {
      return { s: seq, ok: 'infra', message: (error as Error).message, host: this.side.host };
    }
    if (payload.e !== undefined && definitions)
      args = renumberTags(args, localIds(definitions, 'an argument')) as unknown[][];
    const locations = Array.from({ length: count }, (_, i) => located[fnIndex(i)] as LocatedFunction);
    let init: BatchInitializer | undefined;
    if (payload.i) {
      try {
        const location = fromWire(payload.i.fn, this.side);
        init = { key: payload.i.k, fn: placeholder, location, args: payload.i.a };
      } catch (error) {
        return { ...this.failure(seq, 0, error), init: true };
      }
    }
    let runs = this.runsOfCall.get(call);
    if (!runs) {
      runs = new Set();
      this.runsOfCall.set(call, runs);
    }
    runs.add(run);
    this.activeJobs.set(run, { job, token });
    const batch: BackendBatch = {
      runId: run,
      firstIndex: payload.first,
      fns: locations.map(() => placeholder),
      locations,
      args,
      ...(typeof payload.t === 'number' ? { timeoutMs: payload.t } : {}),
      ...(typeof payload.sd === 'number' ? { seed: payload.sd } : {}),
      ...(typeof payload.at === 'number' ? { attempt: payload.at } : {}),
      ...(init ? { init } : {}),
      ...(payload.e !== undefined && definitions
        ? { encoded: true as const, deps: [...definitions.values()] }
        : {}),
      ...(payload.k ? { keepGoing: true as const } : {}),
    };
    let outcome: BatchOutcome;
    this.local.startRun?.(run);
    // What the tasks write and report goes back with the outcome, for the caller to emit before it;
    // so do the local processes that died running them (the caller's worker-crashed events).
    const output: WireOutput[] = [];
    const crashes: WireCrash[] = [];
    const unlisten = this.local.events?.listen(run, (event) =>
      collectOutput(event, payload.first, output, crashes),
    );
    const crashed = () => (crashes.length > 0 ? { wc: crashes } : {});
    try {
      outcome = await this.local.runBatch(batch);
    } catch (error) {
      if (isInitializerError(error))
        return { ...this.failure(seq, 0, error), o: output, init: true, ...crashed() };
      const index = (error as { taskIndex?: unknown }).taskIndex;
      const at = typeof index === 'number' ? index - payload.first : 0;
      return { ...this.failure(seq, Math.max(0, Math.min(at, count - 1)), error), o: output, ...crashed() };
    } finally {
      unlisten?.();
      this.local.endRun?.(run);
      runs.delete(run);
      if (runs.size === 0) this.runsOfCall.delete(call);
      this.activeJobs.delete(run);
    }
    if (outcome.ok === 'cancelled') {
      if (this.returning) {
        // Stopping: give the job back to the queue for another worker.
        await job.moveToWait(token);
        return 'returned';
      }
      return { s: seq, ok: 'cancelled', completed: outcome.completed, o: output };
    }
    if (outcome.ok === false) {
      const failed = { ...this.failure(seq, outcome.failedAt, outcome.error), o: output, ...crashed() };
      if (!payload.k || !outcome.results) return failed;
      // Kept going: the tasks before the one that crashed keep their results.
      const kept = this.keptResults(outcome.results, outcome.failures);
      return { ...failed, r: kept.results, ...(kept.failures.length > 0 ? { fl: kept.failures } : {}) };
    }
    if (payload.k) {
      const unsendable = this.unsendableOutput(seq, output);
      if (unsendable) return unsendable;
      const kept = this.keptResults(outcome.results, outcome.failures);
      return {
        s: seq,
        ok: true,
        r: kept.results,
        ...(kept.failures.length > 0 ? { fl: kept.failures } : {}),
        ...(output.length > 0 ? { o: output } : {}),
      };
    }
    try {
      pack(outcome.results);
    } catch (error) {
      return this.failure(
        seq,
        0,
        new TypeError(
          `A result of this batch cannot be sent back through Redis (${(error as Error).message}). Return plain data: numbers, strings, arrays, plain objects, typed arrays, Map, Set, Date, BigInt.`,
        ),
      );
    }
    const unsendable = this.unsendableOutput(seq, output);
    if (unsendable) return unsendable;
    return { s: seq, ok: true, r: outcome.results, ...(output.length > 0 ? { o: output } : {}) };
  }

  /** The batch's failure when a value its tasks reported cannot go back through Redis. */
  private unsendableOutput(seq: number, output: readonly WireOutput[]): WireOutcome | undefined {
    if (output.length === 0) return undefined;
    try {
      pack(output);
      return undefined;
    } catch (error) {
      return this.failure(
        seq,
        Math.max(0, output.find(([, kind]) => kind === 'report')?.[0] ?? 0),
        new TypeError(
          `A value a task reported cannot be sent back through Redis (${(error as Error).message}). Report plain data.`,
        ),
      );
    }
  }

  /**
   * The definitions a payload sends by value, checked and made ready for the local pool: their
   * signature first (this worker's secret over the call's id and the bytes), so that nothing unsigned
   * is even unpacked. Throws CodeRefusedError; keyed by the caller's ids, which the payload names.
   */
  private definitions(call: string, payload: BatchPayload, run: number): Map<number, LocatedFunction> {
    const { x, xs } = payload;
    if (!(x instanceof Uint8Array)) {
      throw new CodeRefusedError(
        `This worker refuses a job that sends code by value without its signed definitions. Nothing ran.`,
      );
    }
    if (!this.secret) {
      throw new CodeRefusedError(
        `The worker on ${this.side.host} refuses code sent by value: it has no secret. Start it with \`joblib-ts worker --secret-file FILE\` (or ${SECRET_ENV}) holding the secret the caller has (${SECRET_ENV} or backendOptions.secret). Nothing ran.`,
      );
    }
    if (xs === undefined) {
      throw new CodeRefusedError(
        `The worker on ${this.side.host} refuses code sent by value without a signature. Nothing ran.`,
      );
    }
    if (!this.secret.verify(call, x, xs)) {
      throw new CodeRefusedError(
        `The worker on ${this.side.host} refuses code sent by value whose signature does not match its secret: the caller and this worker do not share the same secret (or the job was altered). Give both the same ${SECRET_ENV} (or backendOptions.secret and --secret-file). Nothing ran.`,
      );
    }
    const wires = unpack(x) as WireDefinition[];
    const made = new Map<number, { located: LocatedFunction; deps: LocatedFunction[] }>();
    for (const wire of wires) {
      const deps: LocatedFunction[] = [];
      const name = String(wire.n);
      const { r } = wire;
      let located: LocatedFunction;
      if ('v' in r) {
        located = {
          ref: { kind: 'value', code: r.v.c, captures: r.v.k, tagged: r.v.t ?? [], run },
          name,
          deps,
        };
      } else {
        // The same reference is the same definition for every batch: the local pool keeps it once.
        const key = JSON.stringify(r);
        let known = this.references.get(key);
        if (!known) {
          if ('b' in r) {
            if (typeof r.b !== 'string' || !/^node:[a-z_/]+$/.test(r.b))
              throw new CodeRefusedError(
                `This worker refuses the module ${JSON.stringify(r.b)}: not one of Node's.`,
              );
            known = { ref: { kind: 'module', url: r.b, path: r.p }, name };
          } else known = fromWire(r, this.side);
          this.references.set(key, known);
        }
        located = known;
      }
      made.set(wire.i, { located, deps });
    }
    const result = new Map<number, LocatedFunction>();
    for (const [id, { located }] of made) result.set(id, located);
    for (const wire of wires) {
      const entry = made.get(wire.i) as { deps: LocatedFunction[] };
      for (const dep of wire.d ?? []) {
        const found = result.get(dep);
        if (!found)
          throw new CodeRefusedError(`A definition of this job names definition ${dep}, which it lacks.`);
        entry.deps.push(found);
      }
    }
    // Tags in captured values name the caller's ids: the local pool knows these definitions by its own.
    const map = localIds(result, 'a captured value');
    for (const located of result.values()) {
      const { ref } = located;
      if (ref.kind !== 'value' || !ref.tagged?.length) continue;
      const captures = [...ref.captures];
      for (const at of ref.tagged) captures[at] = renumberTags(captures[at], map);
      (located as { ref: unknown }).ref = { ...ref, captures };
    }
    return result;
  }

  /**
   * A batch that kept going: its failures as they travel, and each result that cannot go back through
   * Redis made its own task's failure rather than the batch's.
   */
  private keptResults(
    results: readonly unknown[],
    failures: readonly { at: number; error: unknown }[] | undefined,
  ): { results: unknown[]; failures: WireFailure[] } {
    const out: WireFailure[] = (failures ?? []).map((f) => ({
      at: f.at,
      e: serializeThrown(f.error, canEncode),
    }));
    const kept = results.map((value, at) => {
      try {
        pack(value);
        return value;
      } catch (error) {
        out.push({
          at,
          e: serializeThrown(
            new TypeError(
              `The result of this task cannot be sent back through Redis (${(error as Error).message}). Return plain data: numbers, strings, arrays, plain objects, typed arrays, Map, Set, Date, BigInt.`,
            ),
            canEncode,
          ),
        });
        return undefined;
      }
    });
    out.sort((a, b) => a.at - b.at);
    return { results: kept, failures: out };
  }

  private failure(seq: number, at: number, error: unknown): Extract<WireOutcome, { ok: false }> {
    return {
      s: seq,
      ok: false,
      at,
      e: serializeThrown(error, canEncode),
      host: this.side.host,
      worker: this.id,
    };
  }

  /** Replaces BlobRefs (large arguments) by their values, fetched once per worker and kept by hash. */
  private async resolveBlobs(call: string, args: readonly (readonly unknown[])[]): Promise<unknown[][]> {
    const missing = new Set<string>();
    for (const task of args) {
      for (const arg of task) if (arg instanceof BlobRef && !this.blobs.has(arg.hash)) missing.add(arg.hash);
    }
    if (missing.size > 0) {
      const hashes = [...missing];
      const values = await this.client.mgetBuffer(...hashes.map((h) => this.keys.blob(call, h)));
      for (let i = 0; i < hashes.length; i++) {
        const bytes = values[i];
        if (!bytes)
          throw new Error(
            `a large argument is gone from Redis (${this.keys.blob(call, hashes[i] as string)})`,
          );
        this.blobs.set(hashes[i] as string, unpack(bytes), bytes.length);
      }
    }
    return args.map((task) =>
      task.map((arg) => (arg instanceof BlobRef ? this.blobs.value(arg.hash) : arg)),
    ) as unknown[][];
  }

  private async push(call: string, ttl: number, outcome: WireOutcome): Promise<void> {
    let bytes: Buffer;
    try {
      bytes = pack(outcome);
    } catch (error) {
      bytes = pack({ s: outcome.s, ok: 'infra', message: (error as Error).message, host: this.side.host });
    }
    await client(this.client).jtPushIfAlive(this.keys.marker(call), this.keys.results(call), bytes, ttl);
  }

  /**
   * Graceful stop: takes no new job, lets running batches finish (or, with `returnJobs`, stops them
   * between tasks and puts their jobs back in the queue for another worker), unregisters, exits the pool.
   */
  stop(returnJobs = false): Promise<void> {
    if (returnJobs && !this.returning) {
      this.returning = true;
      for (const run of this.activeJobs.keys()) this.local.cancelRun(run);
    }
    this.stopping ??= this.shutdown();
    return this.stopping;
  }

  /** Jobs this worker is running now. */
  get activeCount(): number {
    return this.activeJobs.size;
  }

  private async shutdown(): Promise<void> {
    if (this.heartbeat) clearInterval(this.heartbeat);
    // Redis gone: the registration expires by itself (6 s).
    await settlesWithin(
      this.client.multi().del(this.keys.worker(this.id)).srem(this.keys.workerSet, this.id).exec(),
      2000,
    );
    await this.bull?.close();
    await this.local.close();
    await this.disconnect();
    this.markStopped();
  }

  /**
   * Stops now, whatever Redis and the running batches do (a second signal that a graceful stop did not
   * honour in time): the local pool is closed, the connections dropped. The jobs it held go back to the
   * queue when their locks expire, for another worker.
   */
  async kill(): Promise<void> {
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.returning = true;
    await Promise.all([
      settlesWithin(this.bull?.close(true) ?? Promise.resolve(), 1000),
      settlesWithin(this.local.close(), 1000),
    ]);
    for (const redis of [this.subscriber, this.client, this.blocking]) redis.disconnect();
    this.markStopped();
  }

  /** Quits politely where Redis answers, drops the connections where it does not. */
  private async disconnect(): Promise<void> {
    const clients = [this.subscriber, this.client, this.blocking];
    await settlesWithin(Promise.allSettled(clients.map((redis) => redis.quit())), 1000);
    for (const redis of clients) redis.disconnect();
  }
}

/**
 * Keeps a task's log line or report (`index` is the input's), by its position in the batch, and each
 * crash of a local worker that ran one of its tasks.
 */
function collectOutput(event: JoblibEvent, first: number, into: WireOutput[], crashes: WireCrash[]): void {
  if (event.type === 'log')
    into.push([event.index === undefined ? -1 : event.index - first, event.stream, event.line]);
  else if (event.type === 'report') into.push([event.index - first, 'report', event.value]);
  else if (event.type === 'worker-crashed')
    crashes.push({
      w: event.worker,
      at: event.index === undefined ? -1 : event.index - first,
      c: event.exitCode,
      g: event.signal,
    });
}

interface WorkerCommands {
  defineCommand(name: string, definition: { numberOfKeys: number; lua: string }): void;
  jtPushIfAlive(marker: string, results: string, bytes: Buffer, ttl: number): Promise<number>;
}

function client(redis: Redis): WorkerCommands {
  return redis as unknown as WorkerCommands;
}
