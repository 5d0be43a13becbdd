/**
 * A redis-server of a test's own, on a free port, that the test may kill (-9), freeze (SIGSTOP), thaw
 * and restart on the same port and directory: with `appendonly`, a restart finds the data again; without,
 * Redis comes back empty. Used by the outage tests and the soak's outage cycle, so it does not depend on
 * node:test: `destroyOwnServers()` (a test file's `after`) stops them all, and none outlives the process.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';

export const REDIS_SERVER = process.env.REDIS_SERVER || '/usr/bin/redis-server';

/** Why the outage tests cannot run here (no redis-server binary), else undefined. */
export function ownServerSkipReason(): string | undefined {
  if (existsSync(REDIS_SERVER)) return undefined;
  try {
    execFileSync('redis-server', ['--version'], { stdio: 'ignore' });
    return undefined;
  } catch {
    const reason = `no redis-server binary (${REDIS_SERVER}, or on PATH) to start a server of the test's own`;
    if (process.env.JOBLIB_TS_REQUIRE_REDIS === '1')
      throw new Error(`JOBLIB_TS_REQUIRE_REDIS=1 but ${reason}.`);
    process.stderr.write(`\n\n*** SKIPPING the Redis outage tests: ${reason}. ***\n\n`);
    return reason;
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

export interface OwnRedisOptions {
  /** AOF persistence (a restart keeps the data); off: a restart comes back empty. */
  appendonly: boolean;
  password?: string;
}

export class OwnRedis {
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();

  private constructor(
    readonly port: number,
    readonly dir: string,
    private readonly options: OwnRedisOptions,
  ) {}

  static async start(options: OwnRedisOptions): Promise<OwnRedis> {
    const server = new OwnRedis(await freePort(), mkdtempSync(join(tmpdir(), 'joblib-ts-redis-')), options);
    servers.add(server);
    await server.start();
    return server;
  }

  /** `redis://[:password@]127.0.0.1:port`. */
  get url(): string {
    const auth = this.options.password ? `:${this.options.password}@` : '';
    return `redis://${auth}127.0.0.1:${this.port}`;
  }

  /** Starts (or restarts, on the same port and directory) the server and waits until it answers. */
  async start(): Promise<void> {
    const args = [
      '--port',
      String(this.port),
      '--bind',
      '127.0.0.1',
      '--dir',
      this.dir,
      '--save',
      '',
      '--appendonly',
      this.options.appendonly ? 'yes' : 'no',
      ...(this.options.password ? ['--requirepass', this.options.password] : []),
    ];
    const child = spawn(REDIS_SERVER, args, { stdio: 'ignore' });
    this.child = child;
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    const deadline = Date.now() + 10_000;
    for (;;) {
      const probe = new Redis(this.url, {
        lazyConnect: true,
        retryStrategy: () => null,
        maxRetriesPerRequest: 0,
      });
      probe.on('error', () => {});
      try {
        await probe.connect();
        if ((await probe.ping()) === 'PONG') return;
      } catch {
        if (Date.now() > deadline) throw new Error(`redis-server on port ${this.port} did not start`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      } finally {
        probe.disconnect();
      }
    }
  }

  /** SIGKILL: no shutdown, no last save; resolves once the process is gone. */
  async kill9(): Promise<void> {
    this.child?.kill('SIGCONT');
    this.child?.kill('SIGKILL');
    await this.exited;
    this.child = undefined;
  }

  freeze(): void {
    this.child?.kill('SIGSTOP');
  }

  thaw(): void {
    this.child?.kill('SIGCONT');
  }

  /** A plain client for the test's own checks (the caller must disconnect it). */
  client(): Redis {
    const client = new Redis(this.url, { maxRetriesPerRequest: 1 });
    client.on('error', () => {});
    return client;
  }

  /** At exit: nothing async left to run. */
  killNow(): void {
    this.child?.kill('SIGKILL');
    rmSync(this.dir, { recursive: true, force: true });
  }

  async destroy(): Promise<void> {
    await this.kill9();
    servers.delete(this);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

const servers = new Set<OwnRedis>();

/** Kills every server started here and removes its directory. */
export async function destroyOwnServers(): Promise<void> {
  await Promise.all([...servers].map((server) => server.destroy()));
}

// Whatever happens to the program, no server outlives it.
process.on('exit', () => {
  for (const server of servers) server.killNow();
});
