/** Where a Memory keeps its entries: the `location` argument resolved to a folder, created on first use. */
import { accessSync, constants, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { optionError } from './checks.ts';
import { MemoryError } from './errors.ts';

/** A path, `~/...`, or a `file:` URL to an absolute folder; null (caching off) stays null. */
export function resolveLocation(location: unknown): string | null {
  if (location === null) return null;
  if (location instanceof URL && location.protocol === 'file:') return fileURLToPath(location);
  if (typeof location === 'string' && location.length > 0) {
    if (location === '~' || location.startsWith('~/')) return join(homedir(), location.slice(1));
    return resolve(location);
  }
  throw optionError(
    `new Memory(location): location must be a directory path (a non-empty string or file: URL), or null to turn caching off; got ${location === undefined ? 'undefined' : JSON.stringify(location)}`,
  );
}

/**
 * Creates the folder, with a `.gitignore` so that a cache inside a repository is never committed. Any
 * failure (read-only, under a file, a special file system) is a `MemoryError` naming the folder, at once.
 */
export function prepareLocation(location: string): void {
  try {
    makeFolder(location);
    accessSync(location, constants.W_OK);
    writeFileSync(join(location, '.gitignore'), '# created by joblib-ts Memory\n*\n', { flag: 'wx' });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return;
    throw new MemoryError(
      'ERR_MEMORY_LOCATION',
      `new Memory(location): cannot use ${location} as the cache folder: ${reason(err)}. Give a folder you can write, such as '.cache/joblib' or a path under ${homedir()}.`,
      { cause: err },
    );
  }
}

/**
 * `mkdir -p`, one level at a time. Node's own `mkdirSync(path, { recursive: true })` never returns on
 * /proc (mkdir answers ENOENT although the parent exists, and Node retries forever).
 */
function makeFolder(location: string): void {
  const missing: string[] = [];
  for (let dir = location; ; dir = dirname(dir)) {
    try {
      if (statSync(dir).isDirectory()) break;
      throw Object.assign(new Error(`${dir} exists and is not a folder`), { code: 'ENOTDIR' });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || dirname(dir) === dir) throw err;
      missing.unshift(dir);
    }
  }
  for (const dir of missing) {
    try {
      mkdirSync(dir);
    } catch (err) {
      // Made meanwhile by another process: fine if it is a folder.
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || !statSync(dir).isDirectory()) throw err;
    }
  }
}

function reason(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  const why: Record<string, string> = {
    ENOENT: 'this file system does not let files or folders be made there',
    EACCES: 'permission denied',
    EPERM: 'operation not permitted',
    EROFS: 'the file system is read-only',
    ENOTDIR: 'a part of the path is a file, not a folder',
  };
  return `${(e.code && why[e.code]) ?? e.message}${e.code ? ` (${e.code}${e.path ? ` on ${e.path}` : ''})` : ''}`;
}
