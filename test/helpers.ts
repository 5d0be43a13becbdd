/** Shared test fixtures: temp dirs and child programs that clean up after themselves. */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';

export const repoRoot = new URL('..', import.meta.url).pathname.replace(/\/$/, '');

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
