/**
 * `npm run soak`: 1,000 successive run() calls on threads and processes, a failure every fourth,
 * an abort every tenth, and shows that threads, child processes and handles do not grow.
 * Prints one line per 100 runs and a verdict; exits 1 on growth. Then starts, uses and closes a pool
 * 150 times per backend (an early end of the program, exit code 13, would show as a failed soak).
 * Between the two: 1,000 settled runs per backend with random throws, crashes and flaky tasks under
 * retries (issue 15), checking every entry and the same growth.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { delayed, Parallel, WorkerCrashedError } from '../src/index.ts';
import { sleep } from '../test/fixtures/failing-tasks.ts';
import { coinFlip, mixed } from '../test/fixtures/settled-tasks.ts';
import { failWhen, square } from '../test/fixtures/tasks.ts';

const RUNS = Number(process.env.SOAK_RUNS ?? 1000);

function osThreads(): number {
  return readdirSync('/proc/self/task').length;
}

function childProcesses(): number {
  let count = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[1]) === process.pid && fields[0] !== 'Z') count++;
    } catch {
      // gone meanwhile
    }
  }
  return count;
}

const handles = () => process.getActiveResourcesInfo().length;

let failed = false;
for (const backend of ['threads', 'processes'] as const) {
  const p = new Parallel({ nJobs: 2, backend });
  await p.run([delayed(square)(1), delayed(square)(2)]);
  const baseline = { threads: osThreads(), children: childProcesses(), handles: handles() };
  const started = performance.now();
  let errors = 0;
  let aborts = 0;
  for (let run = 1; run <= RUNS; run++) {
    const tasks = Array.from({ length: 8 }, (_, i) => delayed(failWhen)(i, run % 4 === 0 ? 5 : -1));
    try {
      if (run % 10 === 0) {
        const controller = new AbortController();
        setTimeout(() => controller.abort(), 2);
        await p.run([delayed(sleep)(50), delayed(sleep)(50)], { signal: controller.signal });
      } else {
        await p.run(tasks);
      }
    } catch (error) {
      if ((error as Error).name === 'AbortError') aborts++;
      else errors++;
    }
    if (run % 100 === 0) {
      const now = { threads: osThreads(), children: childProcesses(), handles: handles() };
      console.log(
        `${backend} run ${run}: ${errors} task errors, ${aborts} aborts; OS threads ${now.threads} (start ${baseline.threads}), child processes ${now.children} (start ${baseline.children}), handles ${now.handles} (start ${baseline.handles}), ${((performance.now() - started) / run).toFixed(1)} ms/run`,
      );
    }
  }
  await new Promise((resolve) => setTimeout(resolve, 200));
  const end = { threads: osThreads(), children: childProcesses(), handles: handles() };
  // Aborts terminate workers that are replaced lazily: allow the pool's own size, never more.
  const grew =
    end.threads > baseline.threads + 2 ||
    end.children > baseline.children ||
    end.handles > baseline.handles + 4;
  console.log(
    `${backend}: ${grew ? 'GROWTH' : 'no growth'} after ${RUNS} runs (${JSON.stringify(baseline)} -> ${JSON.stringify(end)})`,
  );
  failed ||= grew;
  await p.close();
}
// Settled runs (issue 15): random throws, worker crashes and flaky tasks, with retries. Every entry
// must say what happened to its task, and nothing may grow: threads, child processes, handles.
const SETTLED_RUNS = Number(process.env.SOAK_SETTLED_RUNS ?? 1000);
/** A small deterministic generator, so that a failing soak can be replayed (SOAK_SEED). */
let seed = Number(process.env.SOAK_SEED ?? 15);
const random = () => {
  seed = (seed * 1103515245 + 12345) % 2147483648;
  return seed / 2147483648;
};
for (const backend of ['threads', 'processes'] as const) {
  const p = new Parallel({ nJobs: 2, backend, errorMode: 'settled', retries: { count: 2 } });
  await p.run([delayed(square)(1), delayed(square)(2)]);
  const baseline = { threads: osThreads(), children: childProcesses(), handles: handles() };
  const started = performance.now();
  const counts = { fulfilled: 0, thrown: 0, crashed: 0, flakyFailed: 0, wrong: 0 };
  for (let run = 1; run <= SETTLED_RUNS; run++) {
    // One run in forty has a task that crashes its worker on every attempt (3 worker restarts).
    const crashAt = random() < 0.025 ? Math.floor(random() * 8) : -1;
    const kinds = Array.from({ length: 8 }, (_, i) =>
      i === crashAt ? 'exit' : random() < 0.1 ? 'throw' : random() < 0.3 ? 'flaky' : 'ok',
    );
    const tasks = kinds.map((kind, i) =>
      kind === 'flaky' ? delayed(coinFlip)(i, 0.5) : delayed(mixed)(i, kind),
    );
    const entries = await p.run(tasks);
    entries.forEach((entry, i) => {
      const kind = kinds[i];
      const reason =
        entry.status === 'rejected' ? (entry.reason as Error & { attempts?: number }) : undefined;
      if (entry.status === 'fulfilled') {
        counts.fulfilled++;
        if (entry.value !== (kind === 'flaky' ? i : i * 2) || kind === 'throw' || kind === 'exit')
          counts.wrong++;
      } else if (kind === 'exit') {
        counts.crashed++;
        if (!(reason instanceof WorkerCrashedError) || reason.attempts !== 3) counts.wrong++;
      } else if (kind === 'throw') {
        counts.thrown++;
        if (!(reason instanceof RangeError) || (reason as { attempts?: number }).attempts !== 3)
          counts.wrong++;
      } else if (kind === 'flaky') {
        counts.flakyFailed++;
        if (reason?.attempts !== 3) counts.wrong++;
      } else counts.wrong++;
    });
    if (run % 100 === 0) {
      const now = { threads: osThreads(), children: childProcesses(), handles: handles() };
      console.log(
        `${backend} settled run ${run}: ${JSON.stringify(counts)}; OS threads ${now.threads} (start ${baseline.threads}), child processes ${now.children} (start ${baseline.children}), handles ${now.handles} (start ${baseline.handles}), ${((performance.now() - started) / run).toFixed(1)} ms/run`,
      );
    }
  }
  await new Promise((resolve) => setTimeout(resolve, 200));
  const end = { threads: osThreads(), children: childProcesses(), handles: handles() };
  // A crash replaces its worker lazily: allow the pool's own size, never more.
  const grew =
    end.threads > baseline.threads + 2 ||
    end.children > baseline.children ||
    end.handles > baseline.handles + 4;
  console.log(
    `${backend}: settled soak ${grew ? 'GROWTH' : 'no growth'}, ${counts.wrong} wrong entries after ${SETTLED_RUNS} runs (${JSON.stringify(baseline)} -> ${JSON.stringify(end)})`,
  );
  failed ||= grew || counts.wrong > 0;
  await p.close();
}

// Start-run-close cycles with nothing else keeping the program alive: close() must always finish.
// (Before the IPC channel was ref'd while a worker process is stopped, about one program in three
// exited with code 13 in the middle of close() within 150 cycles on 2 cores.)
const CYCLES = Number(process.env.SOAK_CYCLES ?? 150);
for (const backend of ['threads', 'processes'] as const) {
  const started = performance.now();
  for (let cycle = 0; cycle < CYCLES; cycle++) {
    const p = new Parallel({ nJobs: 2, backend });
    await p.run(Array.from({ length: 5000 }, (_, i) => delayed(square)(i)));
    await p.close();
  }
  console.log(
    `${backend}: ${CYCLES} new/run/close cycles, each closed cleanly (${((performance.now() - started) / CYCLES).toFixed(1)} ms/cycle)`,
  );
}
process.exitCode = failed ? 1 : 0;
