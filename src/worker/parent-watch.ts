/**
 * A worker process leaves as soon as its caller is gone. The IPC channel's 'disconnect' says so when the
 * worker is idle, but a task in a CPU loop blocks the event loop that would hear it, and the worker
 * would spin on for a caller that no longer exists (seen: 20 s and more after `kill -9` of the caller,
 * then an EPIPE stack on the terminal). So a watchdog thread, whose loop stays free, polls the parent
 * pid (a child whose parent dies is re-parented) and ends the process at once, without a stack trace.
 */
import { Worker } from 'node:worker_threads';

const POLL_MS = 200;

/** The watchdog's code: plain CommonJS, so that starting it needs no loader and costs little. */
const WATCHDOG = `
const { workerData } = require('node:worker_threads');
setInterval(() => {
  if (process.ppid !== workerData.parent) process.kill(workerData.self, 'SIGKILL');
}, ${POLL_MS});
`;

export function exitWithParent(): void {
  process.on('disconnect', () => process.exit(0));
  const watchdog = new Worker(WATCHDOG, {
    eval: true,
    workerData: { parent: process.ppid, self: process.pid },
    // Its own small heap: it holds one timer.
    resourceLimits: { maxOldGenerationSizeMb: 8, maxYoungGenerationSizeMb: 1 },
    stdout: false,
    stderr: false,
  });
  // Losing the watchdog must not take the worker with it: 'disconnect' still covers the idle case.
  watchdog.on('error', () => {});
  // It must never keep the worker alive by itself.
  watchdog.unref();
}
