import { arch, cpus, hostname, loadavg, platform, release, totalmem } from 'node:os';
import { cpuCount } from '../../cpu.ts';
import type { MachineInfo } from './types.ts';

/** Describes the machine the grid ran on, for the report, the CSV/JSON and the figures' subtitles. */
export function describeMachine(): MachineInfo {
  const list = cpus();
  const cpuModel = (list[0]?.model ?? 'unknown CPU').replace(/\s+/g, ' ').trim();
  const logicalCpus = list.length || 1;
  const usableCpus = cpuCount();
  const totalMemoryBytes = totalmem();
  const gib = Math.round(totalMemoryBytes / 2 ** 30);
  const cpusText =
    usableCpus === logicalCpus ? `${logicalCpus} CPUs` : `${usableCpus} of ${logicalCpus} CPUs usable`;
  const description = `${cpusText} (${cpuModel}), ${gib} GiB, ${platform()} ${arch()}, Node ${process.version}`;
  return {
    description,
    cpuModel,
    logicalCpus,
    usableCpus,
    totalMemoryBytes,
    platform: platform(),
    arch: arch(),
    osRelease: release(),
    node: process.version,
    hostname: hostname(),
    loadAverage: loadavg()[0] ?? 0,
  };
}

/** A warning when other work keeps the CPUs busy enough to skew the timings; undefined otherwise. */
export function busyWarning(machine: MachineInfo): string | undefined {
  if (machine.loadAverage <= machine.usableCpus / 2) return undefined;
  return (
    `warning: the machine is busy (load average ${machine.loadAverage.toFixed(1)} on ${machine.usableCpus} CPUs); ` +
    'the timings will be noisy, and more workers may look faster only because they win more CPU time from other programs.'
  );
}
