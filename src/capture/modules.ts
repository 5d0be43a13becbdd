/**
 * A captured value that is a module (`import * as zlib from 'node:zlib'`, `import path from 'node:path'`,
 * a REPL's `fs`): it travels as a reference to that module, which the worker imports, not as a copy.
 */
import { builtinModules } from 'node:module';
import { types } from 'node:util';
import type { LocatedFunction } from '../locate/index.ts';
import { loadedFileUrls } from '../locate/inspector.ts';
import { isEntryFileUrl } from '../main-guard.ts';

/** Modules whose import prints a deprecation or experimental warning: a user who captured one imported it already. */
const NOISY = new Set(['sys', 'wasi', 'punycode', 'test', 'test/reporters', 'sqlite', 'sea']);

const known = new WeakMap<object, LocatedFunction | null>();
let builtins: Promise<[string, Record<string, unknown>][]> | undefined;

/** Node's public modules, imported once (the first time a captured value may be one of them). */
function builtinNamespaces(): Promise<[string, Record<string, unknown>][]> {
  builtins ??= (async () => {
    const out: [string, Record<string, unknown>][] = [];
    for (const name of builtinModules) {
      if (name.startsWith('_') || name.includes('/internal') || NOISY.has(name)) continue;
      try {
        out.push([`node:${name}`, (await import(`node:${name}`)) as Record<string, unknown>]);
      } catch {
        // Not loadable here (a flag-gated module): nothing to find in it.
      }
    }
    return out;
  })();
  return builtins;
}

const EVALUATING_WAIT_MS = 50;

/** A loaded module's namespace; undefined for one still evaluating (importing it would wait for it). */
async function namespaceOf(url: string): Promise<Record<string, unknown> | undefined> {
  const loading = import(url) as Promise<Record<string, unknown>>;
  loading.catch(() => {});
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), EVALUATING_WAIT_MS);
  });
  try {
    return await Promise.race([loading, late]);
  } catch {
    return undefined;
  } finally {
    clearTimeout(timer);
  }
}

function match(
  value: object,
  url: string,
  namespace: Record<string, unknown>,
  name: string,
): LocatedFunction | undefined {
  if (namespace === value) return { ref: { kind: 'module', url, path: [] }, name, value };
  if (namespace.default === value) return { ref: { kind: 'module', url, path: ['default'] }, name, value };
  return undefined;
}

/**
 * The module `value` is the namespace or the default export of, among Node's modules and the files
 * loaded so far (not the entry file, which a worker never imports).
 */
export async function findModuleObject(value: object): Promise<LocatedFunction | undefined> {
  const hit = known.get(value);
  if (hit !== undefined) return hit ?? undefined;
  let found: LocatedFunction | undefined;
  for (const [url, namespace] of await builtinNamespaces()) {
    found = match(value, url, namespace, url);
    if (found) break;
  }
  if (!found) {
    for (const url of loadedFileUrls()) {
      if (isEntryFileUrl(url)) continue;
      const namespace = await namespaceOf(url);
      found = namespace && match(value, url, namespace, url.slice(url.lastIndexOf('/') + 1));
      if (found) break;
    }
  }
  known.set(value, found ?? null);
  return found;
}

/** An `import * as ns` namespace object. */
export function isModuleNamespace(value: object): boolean {
  return types.isModuleNamespaceObject(value);
}
