/**
 * The disk store's single-flight lock: a file `<entry>.lock` beside the entry, made with O_EXCL, that
 * holds its owner (host, pid and the process's start time, thread) and is touched while the owner
 * computes. A lock is stale, and is broken by the next caller, when its owner is gone:
 *
 * - same host, another process: that process is dead, or its pid now belongs to another process (its
 *   start time differs, on Linux). Found at once, whatever the owner was doing (a SIGKILL included).
 * - same process (another thread), or another host (a shared folder): not touched for `staleMs`. The
 *   touching is done by a thread of its own, so an owner busy with synchronous work keeps its lock.
 *
 * Breaking is careful about races: the lock is renamed aside, and put back if it turns out to be a fresh
 * lock taken meanwhile by someone else.
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, open, readFile, stat, unlink, utimes } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname } from 'node:path';
import { threadId, Worker } from 'node:worker_threads';
import { describeWriteFailure } from '../errors.ts';
import type { StoreLock } from './cache-store.ts';
import { MemoryError } from './errors.ts';

interface LockOwner {
  host: string;
  pid: number;
  start: string;
  thread: number;
  token: string;
}

/** Default time after which a lock nobody touches is stale (threads of one process, other hosts). */
export const LOCK_STALE_MS = 30_000;

const HOST = hostname();
let ownStart: string | undefined;

/** A process's start time (Linux: field 22 of /proc/<pid>/stat), or '' where it cannot be read. */
function startTimeOf(pid: number): string {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? '';
  } catch {
    return '';
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
  // A killed process its parent has not reaped yet still answers kill(0): a zombie is dead.
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return !existsSync('/proc/self/stat'); // gone meanwhile (dead), or no /proc to ask (alive)
  }
  return stat.charAt(stat.lastIndexOf(')') + 2) !== 'Z';
}

/** Whether the owner written in a lock file is gone. */
function ownerGone(owner: LockOwner, mtimeMs: number, staleMs: number): boolean {
  if (owner.host === HOST && owner.pid !== process.pid) {
    if (!pidAlive(owner.pid)) return true;
    const start = startTimeOf(owner.pid);
    if (start !== '' && owner.start !== '' && start !== owner.start) return true;
    return false;
  }
  return Date.now() - mtimeMs > staleMs;
}

function parseOwner(text: string): LockOwner | undefined {
  try {
    const o = JSON.parse(text) as Partial<LockOwner>;
    if (typeof o.pid === 'number' && typeof o.host === 'string' && typeof o.token === 'string')
      return { host: o.host, pid: o.pid, start: o.start ?? '', thread: o.thread ?? 0, token: o.token };
  } catch {
    // written halfway (its writer died between create and write): judged by age below
  }
  return undefined;
}

function lockError(path: string, err: unknown): MemoryError {
  return new MemoryError(
    'ERR_MEMORY_STORE',
    `cannot make the lock file ${path} (in the folder ${dirname(path)}): ${describeWriteFailure(err)}`,
    { cause: err },
  );
}

/** Takes the lock at `path`, or returns undefined while a live owner holds it. */
export async function takeFileLock(path: string, staleMs: number): Promise<StoreLock | undefined> {
  ownStart ??= startTimeOf(process.pid);
  const owner: LockOwner = {
    host: HOST,
    pid: process.pid,
    start: ownStart,
    thread: threadId,
    token: `${process.pid}-${threadId}-${Date.now()}-${Math.random().toString(36).slice(2)}`,
  };
  const text = JSON.stringify(owner);
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fh = await open(path, 'wx');
      try {
        await fh.writeFile(text);
      } finally {
        await fh.close();
      }
      return heldLock(path, owner.token, staleMs);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') {
        await mkdir(dirname(path), { recursive: true }).catch((e: unknown) => {
          throw lockError(path, e);
        });
        continue;
      }
      if (code !== 'EEXIST') throw lockError(path, err);
    }
    if (!(await breakIfStale(path, staleMs))) return undefined;
  }
  return undefined;
}

/** A breaker that died mid-break leaves its marker: past this age it is ignored. */
const BREAKER_STALE_MS = 10_000;

/**
 * Removes the lock at `path` when its owner is gone; true when the caller may try to take it again.
 * One breaker at a time (an O_EXCL marker beside the lock), who checks that the lock is still the one it
 * judged before removing it: two waiters never both break a lock and then both take a new one.
 */
async function breakIfStale(path: string, staleMs: number): Promise<boolean> {
  let text: string;
  let mtimeMs: number;
  try {
    text = await readFile(path, 'utf8');
    mtimeMs = (await stat(path)).mtimeMs;
  } catch {
    return true; // released meanwhile
  }
  const owner = parseOwner(text);
  const gone = owner ? ownerGone(owner, mtimeMs, staleMs) : Date.now() - mtimeMs > Math.min(staleMs, 5000);
  if (!gone) return false;
  const breaker = `${path}.breaking`;
  try {
    await (await open(breaker, 'wx')).close();
  } catch {
    const age = await stat(breaker).then(
      (st) => Date.now() - st.mtimeMs,
      () => 0,
    );
    if (age > BREAKER_STALE_MS) await unlink(breaker).catch(() => undefined);
    return false; // another waiter is breaking it
  }
  try {
    const now = await readFile(path, 'utf8').catch(() => undefined);
    if (now === undefined) return true;
    if (now !== text) return false; // a fresh lock
    await unlink(path).catch(() => undefined);
    return true;
  } finally {
    await unlink(breaker).catch(() => undefined);
  }
}

/**
 * The thread that touches this thread's lock files while their computations run: a computation that keeps
 * its event loop busy for minutes (synchronous work) still keeps its lock fresh, while a dead owner's
 * (its thread or process ended, and this thread with it) goes stale. Plain CommonJS, no loader needed;
 * unref'd, so it never holds the program.
 */
const HEARTBEAT_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { utimesSync } = require('node:fs');
const held = new Map();
let timer;
function beat() {
  const now = new Date();
  for (const path of held.keys()) { try { utimesSync(path, now, now); } catch {} }
}
parentPort.on('message', (m) => {
  if (m.add) held.set(m.add, m.every); else held.delete(m.remove);
  if (timer) clearInterval(timer);
  timer = held.size > 0 ? setInterval(beat, Math.min(...held.values())) : undefined;
});
`;

let heart: Worker | undefined;

function heartbeat(): Worker | undefined {
  if (heart === undefined) {
    try {
      heart = new Worker(HEARTBEAT_SOURCE, { eval: true, execArgv: [] });
      heart.unref();
      heart.on('error', () => {
        heart = undefined;
      });
    } catch {
      return undefined; // no threads here: the lock is then touched from this thread (below)
    }
  }
  return heart;
}

function heldLock(path: string, token: string, staleMs: number): StoreLock {
  const every = Math.max(50, Math.floor(staleMs / 4));
  const thread = heartbeat();
  let beat: NodeJS.Timeout | undefined;
  if (thread) thread.postMessage({ add: path, every });
  else {
    beat = setInterval(() => {
      const now = new Date();
      utimes(path, now, now).catch(() => undefined);
    }, every);
    beat.unref();
  }
  let released = false;
  return {
    async release(): Promise<void> {
      if (released) return;
      released = true;
      if (beat) clearInterval(beat);
      thread?.postMessage({ remove: path });
      const text = await readFile(path, 'utf8').catch(() => '');
      // Only our own lock: one broken as stale and taken by another is theirs now.
      if (parseOwner(text)?.token === token) await unlink(path).catch(() => undefined);
    },
  };
}
