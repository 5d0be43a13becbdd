/**
 * A batch as the bytes of its payload: each distinct function once (as a module path a worker can import),
 * and each argument inline, or as a reference to the call's stored copy when it is large.
 */
import { functionId } from '../../capture/function-ids.ts';
import { UnreachableFunctionError } from '../../errors.ts';
import type { LocatedFunction } from '../../locate/index.ts';
import type { BackendBatch } from '../backend.ts';
import type { Call } from './call.ts';
import {
  type BatchPayload,
  BlobRef,
  checkArgument,
  pack,
  type WireDefinition,
  type WireFunction,
} from './codec.ts';
import { toWire } from './modules.ts';
import type { ResolvedBackendOptions } from './options.ts';
import { SECRET_ENV } from './secret.ts';

/** What a by-value refusal says to do: share a secret, or export the function. */
export const BY_VALUE_HINT = `On the redis backend, a function no worker can import (a closure, an inline arrow, a function of the entry file, a REPL or a notebook) travels by value only when the caller and the workers share a secret: set ${SECRET_ENV} (or backendOptions.secret) here and start the workers with \`joblib-ts worker --secret-file FILE\` (or the same ${SECRET_ENV}). Or export it from a module under the root.`;

/** Signed definitions made once per call and set of definitions: the same bytes for every batch. */
const sections = new WeakMap<Call, Map<string, { x: Buffer; xs: Buffer }>>();

/** The definition of one located function as a Redis worker is sent it. */
function wireDefinition(located: LocatedFunction, root: string): WireDefinition {
  const { ref, name } = located;
  const deps = (located.deps ?? []).map(functionId);
  let r: WireDefinition['r'];
  if (ref.kind === 'value') {
    if (typeof ref.code === 'string')
      throw new Error('joblib-ts internal error: a definition without its code reached the Redis backend.');
    r = { v: { c: ref.code, k: ref.captures, ...(ref.tagged?.length ? { t: ref.tagged } : {}) } };
  } else if (ref.kind === 'module' && ref.url.startsWith('node:')) {
    r = { b: ref.url, p: ref.path };
  } else {
    r = toWire(located, root) as WireDefinition['r'];
  }
  return { i: functionId(located), n: name, r, ...(deps.length > 0 ? { d: deps } : {}) };
}

/**
 * The signed definitions a batch needs: its functions sent by value and every definition they (and the
 * batch's encoded arguments) name, recursively. Undefined when there is none.
 */
function signedDefinitions(
  call: Call,
  batch: BackendBatch,
  options: ResolvedBackendOptions,
): { x: Buffer; xs: Buffer } | undefined {
  const all = new Map<number, LocatedFunction>();
  const add = (located: LocatedFunction): void => {
    const id = functionId(located);
    if (all.has(id)) return;
    all.set(id, located);
    for (const dep of located.deps ?? []) add(dep);
  };
  for (const located of new Set(batch.locations)) if (located?.ref.kind === 'value') add(located);
  for (const dep of batch.deps ?? []) add(dep);
  if (all.size === 0) return undefined;
  const { secret } = options;
  if (!secret) {
    const first = [...all.values()].find((l) => l.ref.kind === 'value') ?? [...all.values()][0];
    throw new UnreachableFunctionError(
      `Cannot run ${first?.name ?? 'this function'} on the redis backend: it would travel by value.\n${BY_VALUE_HINT}`,
      first?.name ?? 'task',
      undefined,
    );
  }
  let ofCall = sections.get(call);
  if (!ofCall) {
    ofCall = new Map();
    sections.set(call, ofCall);
  }
  const key = [...all.keys()].sort((a, b) => a - b).join(',');
  let section = ofCall.get(key);
  if (!section) {
    const x = pack([...all.values()].map((located) => wireDefinition(located, options.root)));
    section = { x, xs: secret.sign(call.id, x) };
    ofCall.set(key, section);
  }
  return section;
}

/** Turns a batch into its payload bytes; throws for an argument or function that cannot travel. */
export function encodeBatch(call: Call, batch: BackendBatch, options: ResolvedBackendOptions): Buffer {
  const fns: WireFunction[] = [];
  const fnIndex = new Map<LocatedFunction, number>();
  const f: number[] = [];
  const count = batch.args.length;
  for (let i = 0; i < count; i++) {
    const located = batch.locations[i];
    if (!located)
      throw new Error('joblib-ts internal error: a task without location reached the Redis backend.');
    let k = fnIndex.get(located);
    if (k === undefined) {
      let wire = call.wire.get(located);
      if (!wire) {
        wire =
          located.ref.kind === 'value'
            ? { d: functionId(located), n: located.name }
            : toWire(located, options.root);
        call.wire.set(located, wire);
      }
      k = fns.length;
      fns.push(wire);
      fnIndex.set(located, k);
    }
    f.push(k);
  }
  const threshold = options.largeArgumentBytes;
  const args: unknown[][] = new Array(count);
  for (let t = 0; t < count; t++) {
    const taskArgs = batch.args[t] as readonly unknown[];
    const out: unknown[] = new Array(taskArgs.length);
    for (let a = 0; a < taskArgs.length; a++) {
      const value = taskArgs[a];
      const known = call.blobs.known(value);
      if (known) {
        out[a] = new BlobRef(known);
        continue;
      }
      const name = batch.locations[t]?.name ?? 'task';
      const size = checkArgument(value, batch.firstIndex + t, a, name);
      out[a] = size > threshold ? new BlobRef(call.blobs.store(value)) : value;
    }
    args[t] = out;
  }
  const definitions = signedDefinitions(call, batch, options);
  const single = f.every((k) => k === f[0]);
  const { timeoutMs, seed, attempt, init } = batch;
  let initializer: BatchPayload['i'];
  if (init?.location) {
    let wire = call.wire.get(init.location);
    if (!wire) {
      wire = toWire(init.location, options.root);
      call.wire.set(init.location, wire);
    }
    initializer = { k: init.key, fn: wire, a: init.args };
  }
  const payload: BatchPayload = {
    v: 1,
    first: batch.firstIndex,
    fns,
    f: single ? (f[0] ?? 0) : f,
    a: args,
    ...(timeoutMs === undefined ? {} : { t: timeoutMs }),
    ...(seed === undefined ? {} : { sd: seed }),
    ...(attempt === undefined || attempt === 1 ? {} : { at: attempt }),
    ...(initializer ? { i: initializer } : {}),
    ...(definitions ? { x: definitions.x, xs: definitions.xs } : {}),
    ...(batch.encoded ? { e: 1 as const } : {}),
    ...(batch.keepGoing ? { k: 1 as const } : {}),
  };
  return pack(payload);
}
