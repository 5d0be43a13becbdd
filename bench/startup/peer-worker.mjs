// piscina's worker file for bench/startup/program.mjs: the task as piscina's docs have it, one export per name.
export function square(x) {
  return x * x;
}
