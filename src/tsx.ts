/**
 * Worker threads on Node 20 do not inherit tsx's module hooks, so a worker that must import a `.ts`
 * task module registers tsx itself, from the same tsx installation the caller runs under.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { isMainThread } from 'node:worker_threads';

const TS_EXTENSION = /\.[cm]?tsx?$/;

export function isTypeScriptUrl(url: string): boolean {
  return TS_EXTENSION.test(url.split('?')[0] ?? url);
}

/**
 * Finds the tsx package the caller uses: the loader named in this process's `--import` flag (how
 * `tsx main.ts` runs), else one resolvable from `nearUrl` (the task module), else from joblib-ts itself.
 */
export function findTsxDirectory(nearUrl?: string): string | undefined {
  const fromFlags = tsxDirectoryInExecArgv();
  if (fromFlags) return fromFlags;
  const bases = [nearUrl, import.meta.url].filter((u): u is string => !!u && u.startsWith('file:'));
  for (const base of bases) {
    try {
      const pkg = createRequire(base).resolve('tsx/package.json');
      return dirname(pkg);
    } catch {
      // not resolvable from there
    }
  }
  return undefined;
}

/**
 * tsx's hooks are active in a thread started with its `--import` flag only if it is a main thread:
 * tsx declines to register in worker threads (Node 20 does not share hooks with them).
 */
export function tsxActiveInThisThread(): boolean {
  return isMainThread && tsxDirectoryInExecArgv() !== undefined;
}

function tsxDirectoryInExecArgv(): string | undefined {
  const argv = process.execArgv;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    const value = arg.startsWith('--import=') ? arg.slice(9) : arg === '--import' ? (argv[i + 1] ?? '') : '';
    const match = /^(.*[\\/]node_modules[\\/]tsx)[\\/]/.exec(
      value.startsWith('file:') ? fileURLToPath(value) : value,
    );
    if (match?.[1]) return match[1];
  }
  return undefined;
}

let registered: Promise<void> | undefined;

/** Registers tsx's ESM and CommonJS hooks in this thread, once. */
export function registerTsx(tsxDirectory: string): Promise<void> {
  registered ??= (async () => {
    const esm = (await import(pathToFileURL(join(tsxDirectory, 'dist/esm/api/index.mjs')).href)) as {
      register: () => unknown;
    };
    const cjs = (await import(pathToFileURL(join(tsxDirectory, 'dist/cjs/api/index.mjs')).href)) as {
      register: () => unknown;
    };
    esm.register();
    cjs.register();
  })();
  return registered;
}
