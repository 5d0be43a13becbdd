/** Shared test fixtures: temp dirs and child programs that clean up after themselves. */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { delayed, Parallel, type ParallelOptions } from '../src/index.ts';
import { whereAmI } from './fixtures/tasks.ts';

export const repoRoot = new URL('..', import.meta.url).pathname.replace(/\/$/, '');

const opened: Parallel[] = [];
after(() => closeOpenedParallels());

/** A `Parallel` closed when the test file ends (or by `closeOpenedParallels`), whatever the test did. */
export function openParallel(options: ParallelOptions<'array'>): Parallel {
  const parallel = new Parallel(options);
  opened.push(parallel);
  return parallel;
}

/** Closes every `Parallel` made by `openParallel` so far. */
async function closeOpenedParallels(): Promise<void> {
  await Promise.all(opened.splice(0).map((parallel) => parallel.close()));
}

/** A fresh temp directory, removed when the test file ends. */
export function tempDir(prefix = 'joblib-ts-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export interface ProgramResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/** Runs a program to its end (killing it after `timeoutMs`) and returns what it printed. */
export function runProgram(
  command: string,
  args: string[],
  options: { cwd?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {},
): Promise<ProgramResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: options.cwd ?? repoRoot,
      env: { ...process.env, ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, options.timeoutMs ?? 30_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, timedOut });
    });
  });
}

/** Runs a TypeScript program with tsx, as a user would (`npx tsx main.ts`). */
export function runTsx(
  file: string,
  options: { cwd?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv; args?: string[] } = {},
): Promise<ProgramResult> {
  const cli = join(repoRoot, 'node_modules/tsx/dist/cli.mjs');
  return runProgram(process.execPath, [cli, file, ...(options.args ?? [])], options);
}

/**
 * Resolves once every one of the `nJobs` workers of the shared pool for `{ nJobs, backend }` has answered
 * a task sent now. A worker runs its batches in the order it got them, so by then every batch sent to
 * the pool earlier has been answered (run, or skipped as cancelled): whatever has started by then is all
 * that will ever start. A count, not a sleep; and it proves that no worker is stuck.
 */
export async function everyWorkerAnswered(backend: 'threads' | 'processes', nJobs: number): Promise<void> {
  // Same size and options: the same pool as the test's own Parallel (closed by the test's close()).
  const probe = new Parallel({ nJobs, backend, batchSize: 1 });
  const seen = new Set<string>();
  while (seen.size < nJobs) {
    const answers = await probe.run(Array.from({ length: nJobs }, () => delayed(whereAmI)()));
    for (const where of answers) seen.add(`${where.pid}/${where.threadId}`);
  }
}

/** Resolves once `condition()` holds, checking every few milliseconds; bounded by the test's timeout. */
export async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 10));
}
