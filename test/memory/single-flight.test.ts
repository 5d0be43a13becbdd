/**
 * Single-flight across processes and threads: 2 processes, and a third on its main thread and in 3
 * worker threads, ask for the same slow entry at once; it is computed exactly once (counted by the computation's side effect, a line
 * in a file), and every caller gets that one result. Again with the owner SIGKILLed mid-compute: the
 * store frees its lock, exactly one waiter takes over, and the others get its result. Over every store.
 * Not more: every process is started with tsx (a second or two of CPU each, more with a Redis
 * client), and the race is the same with 6 askers in 3 processes as it was with 12 in 9: several
 * processes, and several threads of one process, wait on one lock.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { repoRoot, tempDir, until } from '../helpers.ts';
import type { SlowOptions } from './fixtures/slow-entry.ts';
import { type MadeStore, storeCases } from './store-cases.ts';

const fixture = fileURLToPath(new URL('./fixtures/slow-entry.ts', import.meta.url));
/** Asker processes, and one more that asks on its main thread and in THREADS threads. */
const PROCESSES = 2;
const THREADS = 3;
const ASKERS = PROCESSES + 1 + THREADS;
const children = new Set<ChildProcess>();
after(() => {
  for (const c of children) c.kill('SIGKILL');
});

const lines = (file: string) =>
  existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : [];

interface Asker {
  child: ChildProcess;
  answers: Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string[] }>;
}

function start(mode: 'process' | 'threads', options: SlowOptions): Asker {
  const child = spawn(process.execPath, ['--import', 'tsx', fixture, mode, JSON.stringify(options)], {
    cwd: repoRoot,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.add(child);
  let out = '';
  child.stdout?.on('data', (d) => {
    out += d;
  });
  const answers = new Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string[] }>(
    (resolve) => {
      child.on('close', (code, signal) => {
        children.delete(child);
        resolve({ code, signal, out: out.split('\n').filter(Boolean) });
      });
    },
  );
  return { child, answers };
}

async function crowd(made: MadeStore, kill: boolean): Promise<void> {
  const dir = tempDir('joblib-ts-single-flight-');
  const options: SlowOptions = {
    store: made.spec,
    counter: join(dir, 'starts.txt'),
    asking: join(dir, 'asking.txt'),
    release: join(dir, 'release'),
    threads: THREADS,
  };
  const askers = [
    ...Array.from({ length: PROCESSES }, () => start('process', options)),
    start('threads', options),
  ];
  // Everyone is asking, and one of them computes.
  await until(() => lines(options.asking).length === ASKERS && lines(options.counter).length >= 1);
  const [first] = lines(options.counter);
  const ownerPid = Number(first?.split(' ')[1]?.split('-')[0]);
  let killed: Asker | undefined;
  if (kill) {
    killed = askers.find((a) => a.child.pid === ownerPid);
    assert.ok(killed, `the owner ${ownerPid} is one of the askers`);
    killed.child.kill('SIGKILL');
    // Its lock frees itself: exactly one waiter takes over.
    await until(() => lines(options.counter).length >= 2);
  }
  writeFileSync(options.release, '');
  const results = await Promise.all(askers.map((a) => a.answers));
  const survivors = results.filter((_, i) => askers[i] !== killed);
  for (const r of survivors) assert.equal(r.code, 0, `an asker failed (${r.signal})`);
  const answers = survivors.flatMap((r) => r.out);
  const starts = lines(options.counter);
  assert.equal(starts.length, kill ? 2 : 1, `computed ${starts.length} times: ${starts.join(', ')}`);
  const computedBy = starts.at(-1)?.split(' ')[1];
  assert.equal(answers.length, kill ? ASKERS - (killed === askers[PROCESSES] ? 1 + THREADS : 1) : ASKERS);
  for (const a of answers) assert.deepStrictEqual(JSON.parse(a), { x: 7, by: computedBy });
}

for (const store of storeCases()) {
  describe(`${store.name} store: one computation for ${PROCESSES + 1} processes and ${THREADS} threads`, {
    skip: await store.skip(),
  }, () => {
    const made: MadeStore[] = [];
    after(async () => {
      for (const m of made) await m.cleanup();
    });

    it('computes the entry exactly once; every caller reads that result', { timeout: 300_000 }, async () => {
      const m = await store.make();
      made.push(m);
      await crowd(m, false);
    });

    it('still once after the owner is SIGKILLed mid-compute: one waiter takes over', {
      timeout: 300_000,
    }, async () => {
      const m = await store.make();
      made.push(m);
      await crowd(m, true);
    });
  });
}
