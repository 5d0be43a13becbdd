/**
 * One worker budget for a pool that runs of different sizes share (issue 18): the pool's size is the
 * largest `nJobs` among its live runs, and each run may have batches on at most its own `nJobs`
 * workers at once. Concurrent runs with `nJobs` 2 and 8 share 8 workers, of which the first uses at
 * most 2 at a time; when the 8 ends, the workers beyond 2 stop once idle (`SHRINK_AFTER_MS`).
 *
 * Between runs the pool keeps as many workers as the run that ended last asked for, so that a loop of
 * runs of one size finds its workers up (the whole pool still stops after a long idle time).
 */

/** How long workers beyond what live runs ask for are kept, idle, before they stop. */
export const SHRINK_AFTER_MS = 1000;

export class WorkerBudget {
  /** The `nJobs` of each live run. */
  private readonly demands = new Map<number, number>();
  /** The largest live demand; with no live run, the demand of the run that ended last. */
  private size: number;

  constructor(initial: number) {
    this.size = checkedDemand('the pool size', initial);
  }

  /** How many workers the pool may have alive: the largest live `nJobs` (see above with none live). */
  get target(): number {
    return this.size;
  }

  /** A run starts that may use `nJobs` workers at once. */
  add(runId: number, nJobs: number): void {
    this.demands.set(runId, checkedDemand(`nJobs of run ${runId}`, nJobs));
    if (nJobs > this.size || this.demands.size === 1) this.size = nJobs;
  }

  /** A run has ended. True when the target went down (workers beyond it may stop). */
  remove(runId: number): boolean {
    const demand = this.demands.get(runId);
    if (demand === undefined) return false;
    this.demands.delete(runId);
    const before = this.size;
    if (this.demands.size === 0) this.size = demand;
    else if (demand >= before) this.size = Math.max(...this.demands.values());
    return this.size < before;
  }

  /** How many workers one run may have batches on at once: its `nJobs` (the target for an unknown run). */
  limitOf(runId: number): number {
    return this.demands.get(runId) ?? this.size;
  }
}

function checkedDemand(what: string, value: number): number {
  if (!Number.isInteger(value) || value < 1) {
    throw new RangeError(
      `joblib-ts worker budget: ${what} must be a positive integer; got ${String(value)}.`,
    );
  }
  return value;
}
