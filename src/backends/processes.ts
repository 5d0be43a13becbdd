import { type ChildProcess, fork } from 'node:child_process';
import type { FromWorker, ToWorker, WorkerInit } from '../worker/protocol.ts';
import { type WorkerEvents, type WorkerHandle, WorkerPool } from './pool.ts';
import { WorkerBackend } from './worker-backend.ts';
import { inheritableExecArgv, tsxDirectory, workerEntryPath } from './worker-entry.ts';

function startProcess(events: WorkerEvents): WorkerHandle {
  const child: ChildProcess = fork(workerEntryPath('process-entry'), [], {
    serialization: 'advanced',
    execArgv: inheritableExecArgv(),
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const init: WorkerInit = { tsxDirectory: tsxDirectory(), sourceMaps: process.sourceMapsEnabled };
  child.send({ t: 'init', init });
  let failure: Error | undefined;
  child.on('message', (message: FromWorker) => events.message(message));
  child.on('error', (error) => {
    failure = error;
  });
  child.on('exit', (code, signal) => events.exit(code, signal, failure));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    label: `process ${child.pid}`,
    send: (message: ToWorker) => {
      child.send(message);
    },
    ref: () => {
      child.ref();
      child.channel?.ref();
    },
    unref: () => {
      child.unref();
      child.channel?.unref();
    },
    terminate: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        // An unref'd child would let the event loop end before its exit event arrives.
        child.ref();
        child.kill('SIGKILL');
        await exited;
      }
    },
  };
}

/**
 * Runs tasks in child processes: isolation (a crash or `process.exit()` takes one worker, not the
 * program) at the cost of copying arguments and results through V8 serialization.
 */
export class ProcessesBackend extends WorkerBackend {
  readonly name = 'ProcessesBackend';
  protected readonly poolKind = 'processes';

  protected poolKey(): string {
    return String(this.concurrency);
  }

  protected createPool(): WorkerPool {
    return new WorkerPool(this.concurrency, startProcess, 'worker process');
  }

  protected cancelInWorkers(pool: WorkerPool, runId: number): void {
    pool.broadcast({ t: 'cancel', run: runId });
  }
}
