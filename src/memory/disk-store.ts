/**
 * The default store: a folder on the local disk (or a shared one), one file per key, written atomically
 * (see `store.ts` for the layout and the file operations), with single-flight lock files beside the
 * entries (`entry-lock.ts`).
 */
import { open, readdir, rm, stat } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import type { CacheStore, StoreItem, StoreLock } from './cache-store.ts';
import { LOCK_STALE_MS, takeFileLock } from './entry-lock.ts';
import { prepareLocation } from './location.ts';
import { clearLocation, readEntryBytes, removeQuietly, writeEntry } from './store.ts';

const TMP_STALE_MS = 60 * 60 * 1000;

export class DiskStore implements CacheStore {
  readonly description: string;
  private prepared: Promise<void> | undefined;

  constructor(
    readonly location: string,
    private readonly lockStaleMs = LOCK_STALE_MS,
  ) {
    this.description = location;
  }

  /** The file of `key`. */
  pathOf(key: string): string {
    return join(this.location, ...key.split('/'));
  }

  read(key: string): Promise<Uint8Array | undefined> {
    return readEntryBytes(this.pathOf(key));
  }

  async readHead(key: string, bytes: number): Promise<{ head: Uint8Array; size: number } | undefined> {
    let fh: Awaited<ReturnType<typeof open>>;
    try {
      fh = await open(this.pathOf(key), 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    try {
      const { size } = await fh.stat();
      const head = Buffer.alloc(Math.min(size, bytes));
      const { bytesRead } = await fh.read(head, 0, head.length, 0);
      return { head: head.subarray(0, bytesRead), size };
    } finally {
      await fh.close();
    }
  }

  async write(key: string, parts: readonly Uint8Array[]): Promise<void> {
    this.prepared ??= prepareLocation(this.location).catch((err: unknown) => {
      this.prepared = undefined;
      throw err;
    });
    await this.prepared;
    const path = this.pathOf(key);
    await writeEntry(path, dirname(path), [...parts]);
  }

  remove(key: string): Promise<void> {
    return removeQuietly(this.pathOf(key));
  }

  async list(prefix: string): Promise<StoreItem[]> {
    const base = prefix.includes('/') ? prefix.slice(0, prefix.lastIndexOf('/')) : '';
    const root = join(this.location, ...base.split('/').filter(Boolean));
    let entries: import('node:fs').Dirent[];
    try {
      entries = await readdir(root, { recursive: true, withFileTypes: true });
    } catch {
      return [];
    }
    const items: StoreItem[] = [];
    const now = Date.now();
    for (const e of entries) {
      if (!e.isFile()) continue;
      const path = join(e.parentPath ?? (e as { path?: string }).path ?? root, e.name);
      const key = relative(this.location, path).split(sep).join('/');
      if (!key.startsWith(prefix) || key === '.gitignore') continue;
      if (e.name.endsWith('.tmp') || e.name.endsWith('.lock') || e.name.endsWith('.breaking')) {
        // A writer killed mid-write left it: removed once old enough.
        if (e.name.endsWith('.tmp'))
          await stat(path)
            .then((st) => (now - st.mtimeMs > TMP_STALE_MS ? removeQuietly(path) : undefined))
            .catch(() => undefined);
        continue;
      }
      try {
        const st = await stat(path);
        items.push({ key, size: st.size, usedMs: st.atimeMs });
      } catch {
        // removed by someone else meanwhile
      }
    }
    return items;
  }

  async removeAll(prefix: string): Promise<void> {
    if (prefix === '') {
      await clearLocation(this.location);
      return;
    }
    if (prefix.endsWith('/')) {
      await rm(this.pathOf(prefix.slice(0, -1)), { recursive: true, force: true, maxRetries: 3 });
      return;
    }
    await Promise.all((await this.list(prefix)).map((item) => this.remove(item.key)));
  }

  lock(key: string): Promise<StoreLock | undefined> {
    return takeFileLock(`${this.pathOf(key)}.lock`, this.lockStaleMs);
  }
}
