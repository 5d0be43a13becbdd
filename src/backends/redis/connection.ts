/**
 * The caller's connections to Redis: one shared client (commands and the BullMQ queue), plus blocking
 * readers for the calls' results, one per running call and reused by the next. They keep the program
 * alive only while the backend is busy, as idle local workers do not; an idle backend whose Redis goes
 * away drops its connections rather than reconnecting forever (the next call connects afresh).
 */
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { createClient, type ResolvedBackendOptions } from './options.ts';
import { firstContact, settlesWithin } from './reachability.ts';

export interface Connection {
  readonly client: Redis;
  readonly queue: Queue;
  readonly idleReaders: Redis[];
}

function setRefed(client: Redis, refed: boolean): void {
  const stream = (client as unknown as { stream?: { ref?: () => void; unref?: () => void } }).stream;
  if (refed) stream?.ref?.();
  else stream?.unref?.();
}

/** How long `close()` waits for BullMQ's queue to close before dropping the connections anyway. */
const QUEUE_CLOSE_MS = 1000;

export class Connections {
  private connecting: Promise<Connection> | undefined;
  private readonly clients = new Set<Redis>();

  constructor(
    private readonly options: ResolvedBackendOptions,
    /** Whether the backend has work (a call, a cleanup, a prepare): only then do connections hold the program. */
    private readonly busy: () => boolean,
  ) {}

  /** A connection was asked for (and neither failed nor was closed): only then can a call have keys in Redis. */
  get started(): boolean {
    return this.connecting !== undefined;
  }

  /**
   * The shared connection, made on first use; a failed attempt is forgotten so that the next one retries.
   * The first contact fails fast (a refused connection, or no answer within 10 s); once connected,
   * commands wait through outages.
   */
  connect(): Promise<Connection> {
    this.connecting ??= (async () => {
      const { connection, queue, prefix } = this.options;
      const client = this.newClient(false, 'joblib-ts-caller');
      try {
        await firstContact(client, connection, 10_000);
      } catch (error) {
        this.clients.delete(client);
        client.disconnect();
        this.connecting = undefined;
        throw error;
      }
      const bullQueue = new Queue(queue, {
        connection: client,
        prefix,
        streams: { events: { maxLen: 100 } },
      });
      bullQueue.on('error', () => {});
      return { client, queue: bullQueue, idleReaders: [] };
    })();
    return this.connecting;
  }

  /** Holds the program alive through every connection while the backend is busy, and lets go otherwise. */
  updateRefs(): void {
    const refed = this.busy();
    for (const client of this.clients) setRefed(client, refed);
  }

  /** A blocking client for one call's results: an idle one, else a new one. It holds the program while used. */
  takeReader(conn: Connection): Redis {
    const reader = conn.idleReaders.pop() ?? this.newClient(true, 'joblib-ts-results');
    setRefed(reader, true);
    return reader;
  }

  /** Keeps a reader for the next call, or drops it when its connection broke or the backend closed. */
  returnReader(conn: Connection, reader: Redis, broken: boolean): void {
    if (broken || !this.clients.has(reader)) {
      this.clients.delete(reader);
      reader.disconnect();
    } else {
      setRefed(reader, false);
      conn.idleReaders.push(reader);
    }
  }

  /** Drops a reader whose blocking pop cannot be woken through Redis: the pop rejects, the reader ends. */
  dropReader(reader: Redis): void {
    this.clients.delete(reader);
    reader.disconnect();
  }

  /**
   * Closes the queue and every client, within about a second whatever Redis does: commands still
   * waiting reject. A later `connect()` starts afresh.
   */
  async close(): Promise<void> {
    const connecting = this.connecting;
    this.connecting = undefined;
    // Only these: a call that starts meanwhile connects afresh, and keeps its own clients.
    const clients = [...this.clients];
    this.clients.clear();
    if (connecting) {
      const closing = connecting.then((conn) => conn.queue.close());
      // Never connected, or Redis does not answer: the clients are dropped below all the same.
      await settlesWithin(closing, QUEUE_CLOSE_MS);
    }
    for (const client of clients) client.disconnect();
  }

  private newClient(blocking: boolean, name: string): Redis {
    const client = createClient(this.options.connection, { blocking, name });
    this.clients.add(client);
    client.on('connect', () => setRefed(client, this.busy()));
    // Reconnecting while idle would hold the program until Redis is back: drop everything instead.
    client.on('reconnecting', () => {
      if (!this.busy() && this.clients.has(client)) void this.close();
    });
    return client;
  }
}
