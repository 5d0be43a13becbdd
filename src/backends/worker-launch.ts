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
