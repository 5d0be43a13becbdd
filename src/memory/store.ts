/**
 * The file operations of the disk store (`disk-store.ts`):
 *
 * ```
 * <location>/.gitignore                         "*"
 * <location>/<function>/func.json               { id, codeVersion, source, ... } of the last code seen
 * <location>/<function>/<codeVersion>/code.json the parts of that code (functions, constants, packages)
 * <location>/<function>/<codeVersion>/<argsId>.jlts   one entry: header + metadata + value (see persist.ts)
 * <location>/<function>/<codeVersion>/<argsId>.jlts.lock   while one caller computes it (entry-lock.ts)
 * ```
 *
 * Each entry is one file written atomically (temp file + rename), so readers see either no entry or a
 * whole one. Entries of older code versions stay on disk (never served) until `reduceSize` or `clear`.
 * Access time is set explicitly on every hit (`futimes`), so LRU eviction works on `noatime` mounts.
 */
import { constants as fsConstants } from 'node:fs';
import { mkdir, open, readdir, rm, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { writeAtomic } from '../persist.ts';

/** Writes an entry atomically, creating its folder; retries once if a concurrent `clear` removed it. */
export async function writeEntry(path: string, dir: string, parts: Uint8Array[]): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    await mkdir(dir, { recursive: true });
    try {
      await writeAtomic(path, parts);
      return;
    } catch (err) {
      if (attempt < 2 && (err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw err;
    }
  }
}

/**
 * Reads a whole entry file and marks it as just used (atime = now). Returns undefined when there is no
 * such entry. Other I/O errors are thrown.
 */
export async function readEntryBytes(path: string): Promise<Buffer | undefined> {
  let fh: Awaited<ReturnType<typeof open>>;
  try {
    fh = await open(path, fsConstants.O_RDONLY);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  try {
    const st = await fh.stat();
    const buf = Buffer.allocUnsafeSlow(st.size);
    let off = 0;
    while (off < st.size) {
      const { bytesRead } = await fh.read(buf, off, Math.min(st.size - off, 1 << 30), off);
      if (bytesRead === 0) break;
      off += bytesRead;
    }
    await fh.utimes(new Date(), st.mtime).catch(() => undefined);
    return off === st.size ? buf : buf.subarray(0, off);
  } finally {
    await fh.close();
  }
}

export async function removeQuietly(path: string): Promise<void> {
  await unlink(path).catch(() => undefined);
}

/** Removes everything under `location` except `.gitignore`. */
export async function clearLocation(location: string): Promise<void> {
  let names: string[];
  try {
    names = await readdir(location);
  } catch {
    return;
  }
  await Promise.all(
    names
      .filter((n) => n !== '.gitignore')
      .map((n) =>
        rm(join(location, n), { recursive: true, force: true, maxRetries: 3 }).catch(() => undefined),
      ),
  );
}
