/** Where a Memory keeps its entries: the `location` argument resolved to a folder, created on first use. */
import { accessSync, constants, statfsSync, statSync } from 'node:fs';
import { mkdir, stat, writeFile } from 'node:fs/promises';
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

/** File systems that hold no user files (kernel views): a cache there can never be made. */
const PSEUDO_FILE_SYSTEMS = new Set([
  0x9fa0 /* proc */, 0x62656572 /* sysfs */, 0x1cd1 /* devpts */, 0x27e0eb /* cgroup */,
  0x63677270 /* cgroup2 */, 0x64626720 /* debugfs */, 0x74726163 /* tracefs */, 0x73636673 /* securityfs */,
  0xcafe4a11 /* bpf */, 0x62656570 /* configfs */, 0x6165676c /* pstore */, 0xde5e81e4 /* efivarfs */,
]);

/**
 * Checks at once, writing nothing, that the folder can be made and written: its nearest existing
 * ancestor is a folder, writable, on a real file system. Anything else is a `MemoryError` naming the
 * path, from `new Memory()` itself, rather than a hang (Node's recursive mkdir never returns on /proc) or
 * a failure at the first cached call. The folder itself is made before the first write (`prepareLocation`):
 * a constructor that writes would throw disk errors where the user only asked for an object.
 */
export function checkLocation(location: string): void {
  try {
    let dir = location;
    for (;;) {
      try {
        if (!statSync(dir).isDirectory()) {
          throw Object.assign(new Error(`${dir} exists and is not a folder`), { code: 'ENOTDIR', path: dir });
        }
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || dirname(dir) === dir) throw err;
        dir = dirname(dir);
      }
    }
    if (PSEUDO_FILE_SYSTEMS.has(statfsSync(dir).type)) {
      throw Object.assign(new Error(`${dir} is a kernel file system`), { code: 'ENOENT', path: dir });
    }
    accessSync(dir, constants.W_OK);
  } catch (err) {
    throw new MemoryError(
      'ERR_MEMORY_LOCATION',
      `new Memory(location): cannot use ${location} as the cache folder: ${reason(err)}. Give a folder you can write, such as '.cache/joblib' or a path under ${homedir()}.`,
      { cause: err },
    );
  }
}

/**
 * Makes the folder (one level at a time: see `checkLocation`), with a `.gitignore` so that a cache inside
 * a repository is never committed. Called before the first write; its errors are the raw system errors,
 * which the caller turns into a `MemoryError` or a warning as `onStoreError` says.
 */
export async function prepareLocation(location: string): Promise<void> {
  const missing: string[] = [];
  for (let dir = location; dirname(dir) !== dir; dir = dirname(dir)) {
    try {
      await stat(dir);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      missing.unshift(dir);
    }
  }
  for (const dir of missing) {
    try {
      await mkdir(dir);
    } catch (err) {
      // Made meanwhile by another process: fine.
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
  try {
    await writeFile(join(location, '.gitignore'), '# created by joblib-ts Memory\n*\n', { flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
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
