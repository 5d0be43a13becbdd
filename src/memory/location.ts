/** Where a Memory keeps its entries: the `location` argument resolved to a folder, created on first use. */
import { mkdir, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { optionError } from './checks.ts';

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
 * Creates the folder, with a `.gitignore` so that a cache inside a repository is never committed. Done
 * before the first write, not by `new Memory()`: a constructor that writes would throw raw disk errors
 * (a full disk, a read-only mount) where the user only asked for an object.
 */
export async function prepareLocation(location: string): Promise<void> {
  await mkdir(location, { recursive: true });
  try {
    await writeFile(join(location, '.gitignore'), '# created by joblib-ts Memory\n*\n', { flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
}
