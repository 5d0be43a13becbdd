/**
 * The on-disk store of a `Memory`:
 *
 * ```
 * <location>/.gitignore                         "*"
 * <location>/<function>/func.json               { id, codeVersion, source, ... } of the last code seen
 * <location>/<function>/<codeVersion>/<argsId>.jlts   one entry: header + metadata + value (see persist.ts)
 * ```
 *
 * Each entry is one file written atomically (temp file + rename), so readers see either no entry or a
 * whole one. Entries of older code versions stay on disk (never served) until `reduceSize` or `clear`.
 * Access time is set explicitly on every hit (`futimes`), so LRU eviction works on `noatime` mounts.
 */
import { constants as fsConstants } from 'node:fs';
import { mkdir, open, readdir, readFile, rm, rmdir, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { PersistError, parseHeader, writeAtomic } from '../persist.ts';

export const ENTRY_EXT = '.jlts';
const TMP_STALE_MS = 60 * 60 * 1000;

export interface StoredFunctionInfo {
  id: string;
  codeVersion: string;
  source: string;
  updated: number;
}

export async function readFuncInfo(funcDir: string): Promise<StoredFunctionInfo | undefined> {
  try {
    const parsed: unknown = JSON.parse(await readFile(join(funcDir, 'func.json'), 'utf8'));
    if (
      parsed &&
      typeof parsed === 'object' &&
      typeof (parsed as StoredFunctionInfo).codeVersion === 'string'
    ) {
      return parsed as StoredFunctionInfo;
    }
  } catch {
    // missing or unreadable: treated as absent, rewritten by the caller
  }
  return undefined;
}

export async function writeFuncInfo(funcDir: string, info: StoredFunctionInfo): Promise<void> {
  await mkdir(funcDir, { recursive: true });
  await writeAtomic(join(funcDir, 'func.json'), [Buffer.from(`${JSON.stringify(info, null, 2)}\n`)]);
}

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

/** True when an entry file exists and its header and size are consistent. */
export async function entryLooksComplete(path: string): Promise<boolean> {
  let fh: Awaited<ReturnType<typeof open>> | undefined;
  try {
    fh = await open(path, fsConstants.O_RDONLY);
    const st = await fh.stat();
    const head = Buffer.alloc(Math.min(st.size, 64));
    await fh.read(head, 0, head.length, 0);
    parseHeader(head, st.size, path);
    return true;
  } catch (err) {
    if (err instanceof PersistError || (err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  } finally {
    await fh?.close();
  }
}

export async function removeQuietly(path: string): Promise<void> {
  await unlink(path).catch(() => undefined);
}

export interface StoredItem {
  path: string;
  size: number;
  atimeMs: number;
  mtimeMs: number;
}

async function dirs(path: string): Promise<string[]> {
  try {
    const entries = await readdir(path, { withFileTypes: true });
    return entries.filter((e) => e.isDirectory()).map((e) => join(path, e.name));
  } catch {
    return [];
  }
}

/** Every entry under `location` (all functions, all code versions). Removes stale temp files on the way. */
export async function listItems(location: string): Promise<StoredItem[]> {
  const items: StoredItem[] = [];
  const now = Date.now();
  for (const funcDir of await dirs(location)) {
    for (const codeDir of await dirs(funcDir)) {
      let names: string[];
      try {
        names = await readdir(codeDir);
      } catch {
        continue;
      }
      for (const name of names) {
        const path = join(codeDir, name);
        const isEntry = name.endsWith(ENTRY_EXT);
        const isTmp = name.endsWith('.tmp');
        if (!isEntry && !isTmp) continue;
        try {
          const st = await stat(path);
          if (isTmp) {
            if (now - st.mtimeMs > TMP_STALE_MS) await removeQuietly(path);
            continue;
          }
          items.push({ path, size: st.size, atimeMs: st.atimeMs, mtimeMs: st.mtimeMs });
        } catch {
          // removed by someone else meanwhile
        }
      }
    }
  }
  return items;
}

/** Removes code-version folders left empty (another process may be writing: errors are ignored). */
export async function pruneEmptyDirs(location: string): Promise<void> {
  for (const funcDir of await dirs(location)) {
    for (const codeDir of await dirs(funcDir)) await rmdir(codeDir).catch(() => undefined);
  }
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
