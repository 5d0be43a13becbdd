import { type ChildProcess, fork } from 'node:child_process';
import type { Socket } from 'node:net';
import { deserialize } from 'node:v8';
import { onInterruptExit } from '../interrupt.ts';
import type { FromWorker, ToWorker, WorkerInit } from '../wire/protocol.ts';
import { isSpillable, SpillFiles } from './big-arrays/spill-files.ts';
import { CrashOutputFilter, StderrTail } from './crash-output.ts';
import type { WorkerEvents, WorkerHandle, WorkerPool } from './pool.ts';
import { WorkerBackend } from './worker-backend.ts';
import {
  inheritableExecArgv,
  runningFromSource,
  tsxDirectory,
  withoutTsxLoader,
  workerEntryPath,
} from './worker-launch.ts';

/** Big arguments' files, for every processes backend of the program (one folder, one exit hook). */
const spills = new SpillFiles();

/**
 * Every live worker process. On Ctrl-C the pools stop them and wait for their exit (see pool.ts); any
 * still here when that wait runs out is killed again on the way out, so none is left running.
 */
const liveChildren = new Set<ChildProcess>();
onInterruptExit({
  kill: () => {
    for (const child of liveChildren) child.kill('SIGKILL');
  },
});

function startProcess(events: WorkerEvents, maxWorkerMemoryMb: number | undefined): WorkerHandle {
  // Without tsx's loader, unless our own entry is TypeScript (joblib-ts run from its sources): the
  // worker registers tsx when it imports a TypeScript task module, not for every task.
  const inherited = runningFromSource ? inheritableExecArgv() : withoutTsxLoader(inheritableExecArgv());
  const execArgv = inherited.filter((arg) => !arg.startsWith('--max-old-space-size'));
  if (maxWorkerMemoryMb) execArgv.push(`--max-old-space-size=${maxWorkerMemoryMb}`);
  const child: ChildProcess = fork(workerEntryPath('process-entry'), [], {
    serialization: 'advanced',
    execArgv,
    // fd 2 through a filter (crash-output.ts): V8's fatal-error report goes into the error, not on
    // the user's terminal. fd 4: the worker's last word (which task it was on, what killed it),
    // written synchronously.
    stdio: ['ignore', 'inherit', 'pipe', 'ipc', 'pipe'],
  });
  liveChildren.add(child);
  let position: { batch: number; at: number } | undefined;
  let lastError: Error | undefined;
  let lastWords = '';
  /** The results of a dying worker's finished tasks, from its last word (see process-entry.ts). */
  let partial: FromWorker | undefined;
  // The last lines it wrote on stderr, for a crash or timeout error (`stderrTail`).
  const tail = new StderrTail();
  const stderr = new CrashOutputFilter((text) => {
    tail.push(text);
    process.stderr.write(text);
  });
  const stderrPipe = child.stderr as Socket | null;
  stderrPipe?.setEncoding('utf8');
  stderrPipe?.on('data', (text: string) => stderr.push(text));
  stderrPipe?.on('end', () => stderr.end());
  const lastWordPipe = child.stdio[4] as Socket | null;
  lastWordPipe?.on('data', (chunk: Buffer) => {
    lastWords += chunk.toString('utf8');
  });
  // The pipe is ref'd exactly when the worker is (while it has work, or is being stopped): an idle
  // program may exit, but a busy one waits for the worker's 'close', which comes after the pipe's end.
  lastWordPipe?.unref();
  stderrPipe?.unref();
  const readLastWords = () => {
    for (const line of lastWords.split('\n')) {
      if (!line) continue;
      try {
        const record = JSON.parse(line) as {
          batch?: number;
          at?: number;
          error?: { name: string; message: string };
          partial?: string;
        };
        if (record.partial) partial = deserialize(Buffer.from(record.partial, 'base64')) as FromWorker;
        if (record.batch !== undefined && record.at !== undefined)
          position = { batch: record.batch, at: record.at };
        if (record.error)
          lastError = Object.assign(new Error(record.error.message), { name: record.error.name });
      } catch {
        // A partial line from a worker killed mid-write says nothing reliable.
      }
    }
    lastWords = '';
  };
  const init: WorkerInit = { tsxDirectory: tsxDirectory(), sourceMaps: process.sourceMapsEnabled };
  child.send({ t: 'init', init });
  let failure: Error | undefined;
  child.on('message', (message: FromWorker) => {
    if (message.t === 'at') position = { batch: message.id, at: message.at };
    else events.message(message);
  });
  child.on('error', (error) => {
    failure = error;
  });
  // 'close' comes after 'exit' once the pipes are drained, so the last word has been read.
  child.on('close', (code, signal) => {
    liveChildren.delete(child);
    readLastWords();
    stderr.end();
    if (partial) events.message(partial);
    if (stderr.captured) tail.push(stderr.captured);
    events.exit(code, signal, failure ?? lastError, stderr.captured, tail.lines());
  });
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
  return {
    label: `process ${child.pid}`,
    send: (message: ToWorker) => {
      child.send(message);
    },
    ref: () => {
      child.ref();
      child.channel?.ref();
      lastWordPipe?.ref();
      stderrPipe?.ref();
    },
    unref: () => {
      child.unref();
      child.channel?.unref();
      lastWordPipe?.unref();
      stderrPipe?.unref();
    },
    position: () => {
      readLastWords();
      return position;
    },
    stderrTail: () => tail.lines(),
    terminate: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        // An unref'd child would let the event loop end before its exit event arrives, and so would an
        // unref'd IPC channel before its end: 'close' waits for both, and the program would exit with
        // code 13 (a top-level await never settled) in the middle of close().
        child.ref();
        child.channel?.ref();
        lastWordPipe?.ref();
        stderrPipe?.ref();
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

  /** Big typed arrays go through files, read once per worker and run, not through the pipe per task. */
  protected readonly bigArrays = {
    accepts: isSpillable,
    replace: (runId: number, view: ArrayBufferView) => spills.spill(runId, view),
    release: (runId: number) => spills.endRun(runId),
    spilled: true,
  } as const;

  protected readonly workerKind = 'worker process';

  protected spawnWorker(events: WorkerEvents): WorkerHandle {
    return startProcess(events, this.maxWorkerMemoryMb);
  }

  protected cancelInWorkers(pool: WorkerPool, runId: number): void {
    pool.broadcast({ t: 'cancel', run: runId });
  }
}
