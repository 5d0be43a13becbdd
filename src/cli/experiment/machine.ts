import { arch, cpus, hostname, platform, release, totalmem } from 'node:os';
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
  };
}
