/** What a run has done so far, as the dispatcher counts it; progress reporters read it. */
export interface RunCounters {
  completedTasks: number;
  dispatchedTasks: number;
  dispatchedBatches: number;
  /** True once the input has been read to its end (the total is then known). */
  inputExhausted: boolean;
  /** True when the run was stopped by its signal or Ctrl-C rather than by a task. */
  aborted?: boolean;
}
