/**
 * Memory of a process and of the processes it started (Linux `/proc`), for the peak-RSS rows of the
 * parallel-dispatch benchmark. PSS (proportional set size) rather than RSS for a tree of processes, so
 * that memory shared between a caller and its worker processes is counted once, not once per process.
 */
import { readdirSync, readFileSync } from 'node:fs';

function readKb(file: string, field: string): number {
  try {
    const text = readFileSync(file, 'latin1');
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text);
    return match ? Number(match[1]) : 0;
  } catch {
    return 0; // the process has just exited
  }
}

/** `pid` and every process it started, transitively. */
export function processTree(pid: number): number[] {
  const out = [pid];
  for (let i = 0; i < out.length; i++) {
    const current = out[i] as number;
    let threads: string[] = [];
    try {
      threads = readdirSync(`/proc/${current}/task`);
    } catch {
      continue;
    }
    for (const tid of threads) {
      let children = '';
      try {
        children = readFileSync(`/proc/${current}/task/${tid}/children`, 'latin1');
      } catch {
        continue;
      }
      for (const child of children.split(' ')) if (child.trim()) out.push(Number(child));
    }
  }
  return out;
}

/** Sum of PSS (kB) over `pid` and its descendants: what the tree holds in memory right now. */
export function treePssKb(pid: number): number {
  let total = 0;
  for (const p of processTree(pid)) total += readKb(`/proc/${p}/smaps_rollup`, 'Pss');
  return total;
}

/** Resident set size (kB) of one process right now. */
export function rssKb(pid: number): number {
  return readKb(`/proc/${pid}/status`, 'VmRSS');
}

/** Samples `treePssKb(pid)` every `intervalMs` until stopped; `peakKb` is the largest sample. */
export class PeakSampler {
  peakKb = 0;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly pid: number,
    intervalMs: number,
  ) {
    this.timer = setInterval(() => this.sample(), intervalMs);
  }

  sample(): void {
    const kb = treePssKb(this.pid);
    if (kb > this.peakKb) this.peakKb = kb;
  }

  stop(): number {
    clearInterval(this.timer);
    return this.peakKb;
  }
}
