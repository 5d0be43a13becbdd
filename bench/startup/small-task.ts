// A TypeScript task module, for bench/startup/worker-start.mjs: what a worker pays to import one.
export function square(x: number): number {
  return x * x;
}
