/**
 * Backends by name: the built-in ones and those users add with `registerParallelBackend` (joblib's
 * `register_parallel_backend`) live in the same table, so `new Parallel({ backend })` treats them alike.
 * An entry may be lazy: the Redis backend's module (and its packages) is loaded on the first run that
 * names it, so `backend: 'redis'` needs no side-effect import and the core never loads what it does not use.
 */
import { InvalidArgumentError } from '../errors.ts';
import type { ParallelBackendFactory } from './backend.ts';
import { BUILTIN_BACKENDS, type BuiltinBackendEntry } from './builtins.ts';

const registry = new Map<string, BuiltinBackendEntry>(Object.entries(BUILTIN_BACKENDS));

/** Makes a backend available by name to `new Parallel({ backend: name })`, as joblib's `register_parallel_backend`. */
export function registerParallelBackend(name: string, factory: ParallelBackendFactory): void {
  if (typeof name !== 'string' || name.length === 0) {
    throw new InvalidArgumentError(
      'registerParallelBackend(name, factory): name must be a non-empty string.',
    );
  }
  if (typeof factory !== 'function') {
    throw new InvalidArgumentError(
      `registerParallelBackend(${JSON.stringify(name)}, factory): factory must be a function returning a ParallelBackend.`,
    );
  }
  registry.set(name, { factory });
}

export function isRegisteredBackend(name: string): boolean {
  return registry.has(name);
}

export function registeredBackendNames(): string[] {
  return [...registry.keys()];
}

/** The factory registered under `name`, loading its module first when the entry is lazy. */
export async function backendFactory(name: string): Promise<ParallelBackendFactory | undefined> {
  const entry = registry.get(name);
  if (!entry) return undefined;
  if ('factory' in entry) return entry.factory;
  const factory = await entry.load();
  // Unless the user registered their own under this name meanwhile.
  if (registry.get(name) === entry) registry.set(name, { factory });
  return factory;
}
