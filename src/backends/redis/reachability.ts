/**
 * Whether Redis answers, and what a call says when it does not. ioredis clients here wait through an
 * outage (commands queue and are resent after a reconnection), so every wait that matters is bounded
 * here: the first contact, each step of a cleanup, and a running call's checks (`outageMs`).
 */
import type { Redis } from 'ioredis';
import { RedisBackendError } from './errors.ts';
import { describeConnection, type RedisConnection, scrub } from './options.ts';

/** Whether `promise` settled (either way) within `ms`. The timer holds the program only while it waits. */
export function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    promise.then(
      () => {
        clearTimeout(timer);
        resolve(true);
      },
      () => {
        clearTimeout(timer);
        resolve(true);
      },
    );
  });
}

/** `promise`, or a rejection with `onTimeout()` once `ms` have passed without an answer. */
export function answerWithin<T>(promise: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(onTimeout()), ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}

/**
 * The first PING of a new client: fails at the first refused connection (a wrong URL is far more likely
 * than an outage at that moment) or after `timeoutMs` without an answer, so a mistake is reported at
 * once rather than retried forever.
 */
export async function firstContact(
  client: Redis,
  connection: RedisConnection,
  timeoutMs: number,
): Promise<void> {
  let onError: ((error: Error) => void) | undefined;
  try {
    await answerWithin(
      Promise.race([
        client.ping(),
        new Promise<never>((_, reject) => {
          onError = reject;
          client.once('error', onError);
        }),
      ]),
      timeoutMs,
      () => new Error(`no answer within ${(timeoutMs / 1000).toFixed(0)} s`),
    );
  } catch (error) {
    throw new RedisBackendError(
      `Cannot reach Redis at ${describeConnection(connection)}: ${scrub((error as Error).message)}`,
    );
  } finally {
    if (onError) client.off('error', onError);
  }
}

/** A call gave up on Redis: it did not answer for longer than `outageMs`. */
export function unreachableError(
  connection: RedisConnection,
  waitedMs: number,
  outageMs: number,
): RedisBackendError {
  return new RedisBackendError(
    `Redis unreachable for ${(waitedMs / 1000).toFixed(0)} s at ${describeConnection(connection)}: the call gave up (the backend option outageMs allows ${outageMs} ms).`,
  );
}

/** Redis answers again, but without the call's keys: it restarted without persistence (or was flushed). */
export function lostStateError(connection: RedisConnection, detail: string): RedisBackendError {
  return new RedisBackendError(
    `Redis restarted and lost this call's state at ${describeConnection(connection)} (${detail}). Run it again; with persistence (appendonly yes), a restart is ridden out.`,
  );
}

/**
 * Measures how long a probe of Redis (a call's periodic check) has gone unanswered. Time during which
 * this program's own event loop was blocked is not counted: a reply may be waiting unread in the socket.
 */
export class OutageClock {
  private since: number | undefined;
  private lastTick = Date.now();

  constructor(private readonly intervalMs: number) {}

  /** A probe is on its way (nothing else is outstanding). */
  start(now = Date.now()): void {
    this.since = now;
  }

  /** The probe was answered. */
  answered(): void {
    this.since = undefined;
  }

  get waiting(): boolean {
    return this.since !== undefined;
  }

  /** Called on each timer tick: how long the outstanding probe has waited, blocked time left out. */
  tick(now = Date.now()): number {
    const gap = now - this.lastTick;
    this.lastTick = now;
    if (this.since === undefined) return 0;
    // The timer came late: this program was busy, not Redis silent. Count one interval of it.
    if (gap > 3 * this.intervalMs) this.since += gap - this.intervalMs;
    return now - this.since;
  }
}
