/**
 * Where the worker entry files are. From the built package they are plain JavaScript; when joblib-ts
 * itself runs from its TypeScript sources (its own tests, under tsx), the entry is TypeScript too and
 * the worker must load tsx before it.
 */
import { fileURLToPath, pathToFileURL } from 'node:url';
import { findTsxDirectory, isTypeScriptUrl } from '../tsx.ts';

const extension = isTypeScriptUrl(import.meta.url) ? '.ts' : '.js';

export function workerEntryUrl(name: 'thread-entry' | 'process-entry'): URL {
  return new URL(`../worker/${name}${extension}`, import.meta.url);
}

export function workerEntryPath(name: 'thread-entry' | 'process-entry'): string {
  return fileURLToPath(workerEntryUrl(name));
}

export const runningFromSource = extension === '.ts';

let tsx: string | undefined | null = null;

/** The tsx installation workers should use for TypeScript task modules (found once). */
export function tsxDirectory(): string | undefined {
  if (tsx === null) tsx = findTsxDirectory(process.argv[1] ? pathToFileURL(process.argv[1]).href : undefined);
  return tsx;
}

/**
 * Node flags a worker must not inherit: a second debugger on the same port, a CPU profile per worker,
 * and what says which program to run (`node -e CODE`: a worker process given `-e CODE` would run the
 * caller's program again instead of the worker entry; `--input-type` is refused without `-e`).
 */
export function inheritableExecArgv(): string[] {
  const out: string[] = [];
  const argv = process.execArgv;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (/^--(inspect|debug)(-brk|-port|-wait)?(=|$)/.test(arg) || arg.startsWith('--cpu-prof')) continue;
    if (/^(-e|--eval|-p|--print|-pe)$/.test(arg)) {
      i++;
      continue;
    }
    if (/^(--eval|--print)=/.test(arg) || /^(-i|--interactive|-c|--check|--input-type(=.*)?)$/.test(arg))
      continue;
    out.push(arg);
  }
  return out;
}

/** Whether the value of a loader flag (`--import`, `--require`, `--loader`) is tsx's, by name or by path. */
function isTsxLoader(value: string): boolean {
  return /^tsx(\/|$)/.test(value) || /[\\/]node_modules[\\/]tsx[\\/]/.test(value);
}

const LOADER_FLAGS = new Set(['--import', '--require', '-r', '--loader', '--experimental-loader']);

/**
 * `argv` without tsx's loader flags. A worker started with them loads tsx (and, in a child process,
 * starts tsx's hooks thread) before anything else: a third of a worker thread's start and most of a
 * child's, wasted on workers that run JavaScript or built-ins. The worker registers tsx itself when it
 * imports a TypeScript module (executor.ts).
 */
export function withoutTsxLoader(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    const eq = arg.indexOf('=');
    const flag = eq > 0 ? arg.slice(0, eq) : arg;
    if (LOADER_FLAGS.has(flag)) {
      const value = eq > 0 ? arg.slice(eq + 1) : (argv[i + 1] ?? '');
      if (isTsxLoader(value.startsWith('file:') ? fileURLToPath(value) : value)) {
        if (eq < 0) i++;
        continue;
      }
    }
    out.push(arg);
  }
  return out;
}
