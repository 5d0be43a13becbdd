/**
 * Every definition a worker may receive (a located function, class or module) gets one number for the
 * program's lifetime: batches and captured values name it by that number, and each worker is sent its
 * definition once.
 */
import type { LocatedFunction } from '../locate/index.ts';

let next = 1;
const ids = new WeakMap<LocatedFunction, number>();

export function functionId(located: LocatedFunction): number {
  let id = ids.get(located);
  if (id === undefined) {
    id = next++;
    ids.set(located, id);
  }
  return id;
}
