/**
 * The rule that lets a program define its task functions in its own entry file, as the seed does:
 *
 *   export function convolveRandom(n: number) { ... }
 *   if (isMainProgram(import.meta)) { ...the program... }
 *
 * A worker imports the entry file to reach `convolveRandom`; inside a worker `isMainProgram` is false,
 * so the program does not run again there. This is Python's `if __name__ == "__main__":`.
 */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { isMainThread } from 'node:worker_threads';
import { MainGuardError } from './errors.ts';

/** Set by the worker entry before any user module is imported: nothing in a worker is "the main program". */
const WORKER_FLAG = Symbol.for('joblib-ts.worker');

export function markAsWorker(): void {
  (globalThis as unknown as Record<symbol, boolean>)[WORKER_FLAG] = true;
}

export function isJoblibWorker(): boolean {
  return !isMainThread || (globalThis as unknown as Record<symbol, boolean>)[WORKER_FLAG] === true;
}

const guardedEntries = new Set<string>();

function realPath(pathOrUrl: string): string | undefined {
  try {
    return realpathSync(pathOrUrl.startsWith('file:') ? fileURLToPath(pathOrUrl) : pathOrUrl);
  } catch {
    return undefined;
  }
}

let entry: string | undefined | null = null;

/** The file the user started (`node main.js`, `tsx main.ts`), resolved through symlinks. */
function entryFile(): string | undefined {
  if (entry === null) {
    const argv1 = process.argv[1];
    entry = undefined;
    if (argv1) {
      entry = realPath(argv1);
      // `node main` resolves an extension the way require does.
      for (const ext of ['.js', '.mjs', '.cjs', '.ts', '.mts', '.cts']) {
        if (entry) break;
        entry = realPath(argv1 + ext);
      }
    }
  }
  return entry;
}

/**
 * True only in the program the user started, and only for its entry module: false in every worker
 * thread or process, and false in modules the entry imports. Put the program's top-level code under
 * it when the entry file also exports task functions.
 */
export function isMainProgram(meta: ImportMeta): boolean {
  if (isJoblibWorker()) return false;
  const file = realPath(meta.url);
  if (!file || file !== entryFile()) return false;
  guardedEntries.add(file);
  return true;
}

/** Whether `url` is the program's entry file (in the caller; a worker has no entry file of its own). */
export function isEntryFileUrl(url: string): boolean {
  if (isJoblibWorker() || !url.startsWith('file:')) return false;
  const file = realPath(url);
  return file !== undefined && file === entryFile();
}

/**
 * Refuses, before anything runs, a task whose module is the unguarded entry file: importing it in a
 * worker would start the whole program again there.
 */
export function assertImportableByWorker(moduleUrl: string, functionName: string): void {
  if (!moduleUrl.startsWith('file:')) return;
  const file = realPath(moduleUrl);
  if (!file || file !== entryFile() || guardedEntries.has(file)) return;
  throw new MainGuardError(entryGuardMessage(functionName, file));
}

export function entryGuardMessage(functionName: string, file: string): string {
  return [
    `${functionName} is defined in the program's entry file (${file}). A worker has to import that file`,
    'to reach it, and importing it would run the whole program again in every worker.',
    'Put the code that runs the program under the main-program guard (like Python\'s if __name__ == "__main__"):',
    '',
    "  import { isMainProgram } from 'joblib-ts';",
    `  export function ${functionName}(...) { ... }`,
    '  if (isMainProgram(import.meta)) {',
    '    // everything that runs the program, including the Parallel call',
    '  }',
    '',
    `or move ${functionName} to a module of its own.`,
  ].join('\n');
}

let importingTaskModule = 0;

/** Marks the span during which a worker imports a task module (see `assertNotImportingTaskModule`). */
export function beginTaskModuleImport(): void {
  importingTaskModule++;
}
export function endTaskModuleImport(): void {
  importingTaskModule--;
}

/**
 * A module that starts a parallel run while a worker is importing it is an unguarded program being
 * re-run: refuse instead of recursing, whatever path led there.
 */
export function assertNotImportingTaskModule(): void {
  if (importingTaskModule > 0) {
    throw new MainGuardError(
      [
        'A task module started a Parallel run at its top level while a worker was importing it.',
        'That would run the program again in every worker (and again in theirs). Put the code that runs',
        'the program under the main-program guard:',
        '',
        "  import { isMainProgram } from 'joblib-ts';",
        '  if (isMainProgram(import.meta)) {',
        '    // everything that runs the program, including the Parallel call',
        '  }',
      ].join('\n'),
    );
  }
}
