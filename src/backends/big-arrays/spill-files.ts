/**
 * Big typed-array arguments for worker processes, as joblib memory-maps big NumPy arrays: written once
 * per run to a file in shared memory (`/dev/shm` where there is one), and read by each worker process
 * once per run, instead of being serialized through the IPC pipe for every task (a 256 MB array took
 * about 1 s per task that way on 2 cores). This is the caller's side; the worker reads them back with
 * `worker/spill-reader.ts`, and what travels between them is in `wire/spilled-array.ts`.
 */
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SPILL_KEY, type SpilledArray } from '../../wire/spilled-array.ts';

const DIR_PREFIX = 'joblib-ts-spill-';

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Removes spill folders left by programs that were killed before they could clean up. */
function sweepOrphans(root: string): void {
  let names: string[];
  try {
    names = readdirSync(root);
  } catch {
    return;
  }
  for (const name of names) {
    if (!name.startsWith(DIR_PREFIX)) continue;
    const pid = Number(name.slice(DIR_PREFIX.length).split('-')[0]);
    if (!Number.isInteger(pid) || pid === process.pid || isAlive(pid)) continue;
    rmSync(join(root, name), { recursive: true, force: true });
  }
}

/**
 * The caller's spill files: one folder per program, one file per (run, array), removed when the run ends.
 * `/dev/shm` first; where it is missing, unwritable or too small (containers often give it 64 MB), the temp
 * directory; where that fails too, the array goes through the IPC pipe as it would with `maxNbytes: null`.
 */
export class SpillFiles {
  private readonly folders: (string | undefined)[] = [];
  private root = 0;
  private nextFile = 1;
  private readonly runs = new Map<number, WeakMap<ArrayBufferView, SpilledArray>>();
  private readonly files = new Map<number, string[]>();
  private exitHook = false;
  private readonly removeAll = () => {
    for (const folder of this.folders) if (folder) rmSync(folder, { recursive: true, force: true });
  };

  constructor(private readonly roots: readonly string[] = ['/dev/shm', tmpdir()]) {}

  /**
   * What stands for `view` in this run's messages: a descriptor of its file (written the first time), or
   * the view itself when no folder could take it.
   */
  spill(runId: number, view: ArrayBufferView): SpilledArray | ArrayBufferView {
    let spilled = this.runs.get(runId);
    if (!spilled) {
      spilled = new WeakMap();
      this.runs.set(runId, spilled);
    }
    const known = spilled.get(view);
    if (known) return known;
    const path = this.write(runId, view);
    if (!path) return view;
    let files = this.files.get(runId);
    if (!files) {
      files = [];
      this.files.set(runId, files);
    }
    files.push(path);
    const descriptor: SpilledArray = {
      [SPILL_KEY]: true,
      path,
      type: view.constructor.name,
      byteLength: view.byteLength,
    };
    spilled.set(view, descriptor);
    return descriptor;
  }

  /** The run is over: its files go (workers have read what they needed). */
  endRun(runId: number): void {
    this.runs.delete(runId);
    for (const path of this.files.get(runId) ?? []) rmSync(path, { force: true });
    this.files.delete(runId);
  }

  /** Writes the view's bytes to a new file in the first root that takes them; undefined when none does. */
  private write(runId: number, view: ArrayBufferView): string | undefined {
    const bytes = new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
    for (; this.root < this.roots.length; this.root++) {
      const folder = this.folder();
      if (!folder) continue;
      const path = join(folder, `${runId}-${this.nextFile++}.bin`);
      try {
        writeFileSync(path, bytes);
        return path;
      } catch {
        // Full (ENOSPC) or refused: no half-written file stays, and this program moves to the next root.
        rmSync(path, { force: true });
      }
    }
    return undefined;
  }

  /** This program's folder in the current root, made on first use; undefined when the root refuses it. */
  private folder(): string | undefined {
    if (this.folders[this.root] === undefined) {
      const root = this.roots[this.root] as string;
      try {
        sweepOrphans(root);
        this.folders[this.root] = mkdtempSync(join(root, `${DIR_PREFIX}${process.pid}-`));
      } catch {
        return undefined;
      }
      if (!this.exitHook) {
        // Ctrl-C, process.exit() and a normal end all pass here; only SIGKILL leaves the folder, and the
        // next program that spills sweeps it.
        process.once('exit', this.removeAll);
        this.exitHook = true;
      }
    }
    return this.folders[this.root];
  }
}

/** True for the views a worker can rebuild: Buffers, DataViews and the built-in typed arrays. */
export function isSpillable(view: ArrayBufferView): boolean {
  const Ctor = view.constructor;
  return Buffer.isBuffer(view) || (globalThis as unknown as Record<string, unknown>)[Ctor.name] === Ctor;
}
