/**
 * Single-flight across processes and threads: 8 processes, and a ninth on its main thread and in 4
 * worker threads, ask for the same slow entry at once; it is computed exactly once (counted by the
 * computation's side effect, a line in a file), and every caller gets that one result. Then the same
 * crowd asks for a second entry and its owner is SIGKILLed mid-compute: the store frees its lock, exactly
 * one waiter takes over, and every survivor gets its result. Over every store. One crowd does both
 * rounds: every asker process is a tsx start (about a second of CPU), so the processes are started once.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { repoRoot, tempDir, until } from '../helpers.ts';
import type { SlowOptions, SlowRound } from './fixtures/slow-entry.ts';
import { type MadeStore, storeCases } from './store-cases.ts';

const fixture = fileURLToPath(new URL('./fixtures/slow-entry.ts', import.meta.url));
/** Asker processes, and one more that asks on its main thread and in THREADS threads. */
const PROCESSES = 8;
const THREADS = 4;
const ASKERS = PROCESSES + 1 + THREADS;
const children = new Set<ChildProcess>();
after(() => {
  for (const c of children) c.kill('SIGKILL');
});

const lines = (file: string) =>
  existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : [];

interface Asker {
  child: ChildProcess;
  /** Answer lines so far (`{ round, got }`). */
  out: string[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function start(mode: 'process' | 'threads', options: SlowOptions): Asker {
  const child = spawn(process.execPath, ['--import', 'tsx', fixture, mode, JSON.stringify(options)], {
    cwd: repoRoot,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.add(child);
  const asker: Asker = {
    child,
    out: [],
    exited: new Promise((resolve) => {
      child.on('close', (code, signal) => {
        children.delete(child);
        resolve({ code, signal });
      });
    }),
  };
  let pending = '';
  child.stdout?.on('data', (d) => {
    pending += d;
    const complete = pending.split('\n');
    pending = complete.pop() ?? '';
    asker.out.push(...complete.filter(Boolean));
  });
  return asker;
}

/** What the askers said for one round. */
const answersOf = (askers: readonly Asker[], round: number) =>
  askers
    .flatMap((a) => a.out)
    .map((line) => JSON.parse(line) as { round: number; got: { x: number; by: string } })
    .filter((a) => a.round === round);

/** The round's one computation: who started it (`pid-thread`). */
async function computing(round: SlowRound, starts: number): Promise<string[]> {
  await until(() => lines(round.asking).length === ASKERS && lines(round.counter).length >= starts);
  return lines(round.counter).map((l) => l.split(' ')[1] ?? '');
}

async function crowd(made: MadeStore): Promise<void> {
  const dir = tempDir('joblib-ts-single-flight-');
  const round = (x: number): SlowRound => ({
    x,
    counter: join(dir, `starts-${x}.txt`),
    asking: join(dir, `asking-${x}.txt`),
    release: join(dir, `release-${x}`),
  });
  const [once, killed] = [round(7), round(8)];
  const options: SlowOptions = { store: made.spec, rounds: [once, killed], threads: THREADS };
  const askers = [
    ...Array.from({ length: PROCESSES }, () => start('process', options)),
    start('threads', options),
  ];

  // Round 1: everyone is asking and one of them computes; released, it was computed once, for all.
  await computing(once, 1);
  writeFileSync(once.release, '');
  await until(() => answersOf(askers, 0).length === ASKERS);
  const startsOnce = lines(once.counter);
  assert.equal(startsOnce.length, 1, `computed ${startsOnce.length} times: ${startsOnce.join(', ')}`);
  const by = startsOnce[0]?.split(' ')[1];
  for (const a of answersOf(askers, 0)) assert.deepStrictEqual(a.got, { x: 7, by });

  // Round 2: the owner is SIGKILLed mid-compute; its lock frees itself and exactly one waiter takes over.
  const [owner] = await computing(killed, 1);
  const ownerPid = Number(owner?.split('-')[0]);
  const victim = askers.find((a) => a.child.pid === ownerPid);
  assert.ok(victim, `the owner ${ownerPid} is one of the askers`);
  victim.child.kill('SIGKILL');
  await until(() => lines(killed.counter).length >= 2);
  writeFileSync(killed.release, '');
  const exits = await Promise.all(askers.map((a) => a.exited));
  exits.forEach((e, i) => {
    if (askers[i] !== victim) assert.equal(e.code, 0, `an asker failed (${e.signal})`);
  });
  const startsKilled = lines(killed.counter);
  assert.equal(startsKilled.length, 2, `computed ${startsKilled.length} times: ${startsKilled.join(', ')}`);
  const takenOverBy = startsKilled[1]?.split(' ')[1];
  const lost = victim === askers[PROCESSES] ? 1 + THREADS : 1;
  const survivors = answersOf(
    askers.filter((a) => a !== victim),
    1,
  );
  assert.equal(survivors.length, ASKERS - lost);
  for (const a of survivors) assert.deepStrictEqual(a.got, { x: 8, by: takenOverBy });
}

for (const store of storeCases()) {
  describe(`${store.name} store: one computation for ${PROCESSES + 1} processes and ${THREADS} threads`, {
    skip: await store.skip(),
  }, () => {
    const made: MadeStore[] = [];
    after(async () => {
      for (const m of made) await m.cleanup();
    });

    it('computes an entry exactly once for all; again after its owner is SIGKILLed, one waiter taking over', {
      timeout: 300_000,
    }, async () => {
      const m = await store.make();
      made.push(m);
      await crowd(m);
    });
  });
}
