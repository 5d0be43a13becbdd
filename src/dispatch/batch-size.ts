/**
 * joblib's adaptive batch size: start with one task per batch; while batches finish faster than the
 * ideal duration, grow (at most doubling per step); when they take far longer, shrink at once.
 * Durations are smoothed (exponentially weighted) over batches of the current size only. Batches never
 * grow past `MAX_AUTO_BATCH_SIZE` tasks.
 */
export const MIN_IDEAL_BATCH_SECONDS = 0.2;
export const MAX_IDEAL_BATCH_SECONDS = 2;
/**
 * Our own bound, not joblib's: past a few thousand tasks a message costs nothing more per task, while a
 * batch sized to 0.2 s of trivial tasks (100,000 and more here) only holds memory and makes results come
 * in bursts. Measured on 2 cores: 2,000,000 trivial unordered tasks took 1.33 s and peaked at 346 MB RSS
 * with no bound, 0.81 s and 125 MB with this one; 100,000 tasks ran no slower.
 */
export const MAX_AUTO_BATCH_SIZE = 4096;

export interface BatchSizer {
  readonly size: number;
  /** Records how long a batch of `size` tasks took, from dispatch to result, and may pick a new size. */
  completed(size: number, seconds: number): void;
}

export class FixedBatchSize implements BatchSizer {
  constructor(readonly size: number) {}
  completed(): void {}
}

export class AutoBatchSize implements BatchSizer {
  size = 1;
  private smoothed = 0;

  constructor(
    private readonly onChange?: (tooFast: boolean, smoothedSeconds: number, size: number) => void,
  ) {}

  completed(size: number, seconds: number): void {
    if (size !== this.size) return;
    this.smoothed = this.smoothed === 0 ? seconds : 0.8 * this.smoothed + 0.2 * seconds;
    const old = this.size;
    const duration = this.smoothed;
    let next = old;
    if (duration > 0 && duration < MIN_IDEAL_BATCH_SECONDS) {
      const ideal = Math.floor((old * MIN_IDEAL_BATCH_SECONDS) / duration) * 2;
      next = Math.max(1, Math.min(2 * old, ideal));
    } else if (duration > MAX_IDEAL_BATCH_SECONDS && old >= 2) {
      next = Math.max(1, 2 * Math.floor((old * MIN_IDEAL_BATCH_SECONDS) / duration));
    }
    next = Math.min(next, MAX_AUTO_BATCH_SIZE);
    if (next !== old) {
      this.size = next;
      this.smoothed = 0;
      this.onChange?.(next > old, duration, next);
    }
  }
}
