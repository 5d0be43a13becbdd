/**
 * How a function travels through Redis: as (module path relative to the project root, export path,
 * fingerprint of the file), never as a URL or source text. The worker resolves the path under its own
 * `--root` and refuses anything else, so a job in Redis cannot make a worker run arbitrary code.
 */
import { readFileSync, realpathSync, statSync } from 'node:fs';
import { isAbsolute, relative, resolve, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { TaskImportError } from '../../errors.ts';
import { hashBytes } from '../../hash.ts';
import type { LocatedFunction } from '../../locate/index.ts';
import type { WireFunction } from './codec.ts';
import { CodeRefusedError, ModuleRefusedError, VersionSkewError } from './errors.ts';

interface Fingerprint {
  readonly mtimeMs: number;
  readonly size: number;
  readonly hash: string;
}

const fingerprints = new Map<string, Fingerprint>();

/** xxHash of the file's bytes, recomputed only when its size or modification time changes. */
export function fileFingerprint(path: string): string {
  const stat = statSync(path);
  const known = fingerprints.get(path);
  if (known && known.mtimeMs === stat.mtimeMs && known.size === stat.size) return known.hash;
  const hash = hashBytes(readFileSync(path));
  fingerprints.set(path, { mtimeMs: stat.mtimeMs, size: stat.size, hash });
  return hash;
}

const realRoots = new Map<string, string>();

export function realRoot(root: string): string {
  let real = realRoots.get(root);
  if (!real) {
    real = realpathSync(resolve(root));
    realRoots.set(root, real);
  }
  return real;
}

function inside(root: string, path: string): boolean {
  const rel = relative(root, path);
  return rel !== '' && !rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel);
}

/** The caller's side: a located function as it travels, or a clear error when a worker could not reach it. */
export function toWire(located: LocatedFunction, root: string): WireFunction {
  const { ref, name } = located;
  if (ref.kind === 'global') return { g: ref.path, n: name };
  // Functions sent by value go as signed definitions (encode.ts), never through here.
  if (ref.kind === 'value')
    throw new ModuleRefusedError(`${name} is not exported at the top level of a module.`);
  if (!ref.url.startsWith('file:')) {
    throw new ModuleRefusedError(
      `${name} comes from ${ref.url}, which a Redis worker will not import (workers only import modules of your project, under their --root). Wrap it in a function exported by a module of your project.`,
    );
  }
  const rootReal = realRoot(root);
  const file = realpathSync(fileURLToPath(ref.url));
  if (!inside(rootReal, file)) {
    throw new ModuleRefusedError(
      `The module of ${name} (${file}) is outside the project root ${rootReal}: Redis workers only import modules under their --root. Move it under the root, or set the backend option root to a folder that contains it (and start the workers with the same --root).`,
    );
  }
  const path = `./${relative(rootReal, file).split(sep).join('/')}`;
  const wire: { m: string; p: readonly string[]; h: string; n: string; sh?: string } = {
    m: path,
    p: ref.path,
    h: fileFingerprint(file),
    n: name,
  };
  if (ref.sourceHash) wire.sh = ref.sourceHash;
  return wire;
}

/** Globals a job may call: pure functions of their arguments. `eval`, `Function`, `process`... are not. */
const ALLOWED_GLOBALS = new Set([
  'Math',
  'JSON',
  'Number',
  'String',
  'Array',
  'Object',
  'Date',
  'BigInt',
  'Boolean',
  'parseInt',
  'parseFloat',
  'isNaN',
  'isFinite',
  'encodeURIComponent',
  'decodeURIComponent',
  'encodeURI',
  'decodeURI',
  'atob',
  'btoa',
  'structuredClone',
]);

const SAFE_SEGMENT = /^[A-Za-z_$][\w$]*$/;
const FORBIDDEN_SEGMENTS = new Set(['constructor', 'prototype', '__proto__']);

function checkPath(path: unknown, what: string): readonly string[] {
  if (
    !Array.isArray(path) ||
    path.length < 1 ||
    path.length > 2 ||
    !path.every((s) => typeof s === 'string' && SAFE_SEGMENT.test(s) && !FORBIDDEN_SEGMENTS.has(s))
  ) {
    throw new ModuleRefusedError(
      `This worker refuses the export path ${JSON.stringify(path)} of ${what}: one or two identifiers, not constructor, prototype or __proto__.`,
    );
  }
  return path as string[];
}

export interface WorkerSide {
  /** The worker's `--root`, symlinks resolved. */
  readonly root: string;
  readonly host: string;
}

/**
 * The worker's side: checks a function reference from a job and turns it into what the local pool
 * imports. Throws ModuleRefusedError, TaskImportError (no such module here) or VersionSkewError.
 */
export function fromWire(wire: WireFunction, side: WorkerSide): LocatedFunction {
  if ('d' in wire) {
    throw new CodeRefusedError(
      'This worker refuses a job that names code sent by value outside signed definitions. Nothing ran.',
    );
  }
  if ('g' in wire) {
    const path = checkPath(wire.g, 'a global function');
    if (!ALLOWED_GLOBALS.has(path[0] as string)) {
      throw new ModuleRefusedError(
        `This worker refuses to call the global ${path.join('.')}: only pure built-ins (Math, JSON, Number, String, Array, Object, Date, ...) may be named by a job. Export a function from a module of your project instead.`,
      );
    }
    return { ref: { kind: 'global', path }, name: String(wire.n ?? path.join('.')) };
  }
  const m: unknown = wire.m;
  if (typeof m !== 'string' || m.includes('\0')) {
    throw new ModuleRefusedError(
      `This worker refuses a job whose module is not a path: ${JSON.stringify(m)}.`,
    );
  }
  let why: string | undefined;
  if (isAbsolute(m) || /^[A-Za-z]:[\\/]/.test(m) || m.startsWith('\\')) why = 'an absolute path';
  else if (/^[A-Za-z][A-Za-z0-9+.-]*:/.test(m)) why = 'a URL';
  else if (!m.startsWith('./')) why = 'a bare package name';
  if (why) {
    throw new ModuleRefusedError(
      `This worker refuses the module ${JSON.stringify(m)}: it is ${why}. Jobs name modules by a path relative to the project root (./src/tasks.ts), and the worker only imports modules under its --root ${side.root}.`,
    );
  }
  const path = checkPath(wire.p, m);
  const candidate = resolve(side.root, m);
  let file: string;
  try {
    file = realpathSync(candidate);
  } catch (error) {
    throw new TaskImportError(
      `The worker on ${side.host} has no module ${m} under its root ${side.root} (${(error as NodeJS.ErrnoException).code ?? 'not found'}). Deploy the same project on every worker machine and start the worker with --root pointing at it.`,
      pathToFileURL(candidate).href,
      { cause: error },
    );
  }
  if (!inside(side.root, file)) {
    throw new ModuleRefusedError(
      `This worker refuses the module ${m}: it resolves to ${file}, outside its --root ${side.root} (symlinks resolved).`,
    );
  }
  const fingerprint = fileFingerprint(file);
  if (fingerprint !== wire.h) {
    throw new VersionSkewError(
      `Version skew: the worker on ${side.host} has a different copy of ${m} than the caller (file fingerprint ${fingerprint} here, ${String(wire.h)} at the caller). Deploy the same version of the code on the caller and every worker, then restart the workers.`,
    );
  }
  const sourceHash = (wire as { sh?: unknown }).sh;
  return {
    ref: {
      kind: 'module',
      url: pathToFileURL(file).href,
      path,
      ...(typeof sourceHash === 'string' ? { sourceHash } : {}),
    },
    name: String(wire.n ?? path.join('.')),
  };
}
