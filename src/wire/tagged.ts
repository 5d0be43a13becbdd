/**
 * Values that structured clone alone would not carry as they are: functions and modules (by their
 * definition id, see `function-ref.ts`) and instances of classes that travel (their class's id and
 * their own fields, so that they arrive with their prototype, as pickle does). Such a value is
 * replaced by a tag, a plain object with the key `TAG`; containers holding one are copied.
 */

export const TAG = '\u0000joblib-ts';

/** A function, class or module: definition `id` of the worker. */
export interface RefTag {
  readonly [TAG]: number;
}
/** An instance of the class defined as `id`, with its own enumerable fields `p` (encoded too). */
export interface InstanceTag {
  readonly [TAG]: number;
  readonly p: Record<string, unknown>;
}

/** How a side turns a value it cannot send as it is into a tag's id: undefined leaves it to structured clone. */
export interface TagHooks {
  /** A function, a class, or an object that is a module (namespace or exports). */
  ref(value: object): number | undefined;
  /** An object of a class other than Object, Array, Map, Set and the clonable built-ins. */
  instance(value: object): number | undefined;
}

const plainProtos = new Set<unknown>([Object.prototype, null]);

/** Containers walked into: arrays, plain objects, Maps and Sets. Everything else is a leaf or a candidate for a tag. */
export function containerKind(value: object): 'array' | 'object' | 'map' | 'set' | undefined {
  if (Array.isArray(value)) return Object.getPrototypeOf(value) === Array.prototype ? 'array' : undefined;
  const proto: unknown = Object.getPrototypeOf(value);
  if (plainProtos.has(proto)) return 'object';
  if (proto === Map.prototype) return 'map';
  if (proto === Set.prototype) return 'set';
  return undefined;
}

/** Objects structured clone carries with their type: typed arrays, buffers, dates, regexps, errors, boxed primitives. */
export function isClonableLeaf(value: object): boolean {
  return (
    ArrayBuffer.isView(value) ||
    value instanceof ArrayBuffer ||
    value instanceof SharedArrayBuffer ||
    value instanceof Date ||
    value instanceof RegExp ||
    value instanceof Error ||
    value instanceof Boolean ||
    value instanceof Number ||
    value instanceof String ||
    (typeof Blob !== 'undefined' && value instanceof Blob)
  );
}

function isTag(value: object): value is RefTag | InstanceTag {
  return Object.hasOwn(value, TAG);
}

/**
 * Whether `value` holds anything `hooks` would tag. Cheap for what most tasks pass: numbers, strings,
 * typed arrays.
 */
export function needsTags(value: unknown, hooks: TagHooks, seen = new Set<object>()): boolean {
  if (typeof value === 'function') return hooks.ref(value) !== undefined;
  if (value === null || typeof value !== 'object') return false;
  if (seen.has(value)) return false;
  seen.add(value);
  const kind = containerKind(value);
  switch (kind) {
    case 'array':
      for (const item of value as unknown[]) if (needsTags(item, hooks, seen)) return true;
      return false;
    case 'object':
      if (isTag(value)) return true;
      for (const key of Object.keys(value))
        if (needsTags((value as Record<string, unknown>)[key], hooks, seen)) return true;
      return false;
    case 'map':
      for (const [k, v] of value as Map<unknown, unknown>)
        if (needsTags(k, hooks, seen) || needsTags(v, hooks, seen)) return true;
      return false;
    case 'set':
      for (const item of value as Set<unknown>) if (needsTags(item, hooks, seen)) return true;
      return false;
    default:
      if (isClonableLeaf(value)) return false;
      return hooks.ref(value) !== undefined || hooks.instance(value) !== undefined;
  }
}

/** A copy of `value` with tags in place of what `hooks` names; shared and cyclic references stay so. */
export function encodeTags(value: unknown, hooks: TagHooks, seen = new Map<object, unknown>()): unknown {
  if (typeof value === 'function') {
    const id = hooks.ref(value);
    return id === undefined ? value : { [TAG]: id };
  }
  if (value === null || typeof value !== 'object') return value;
  const done = seen.get(value);
  if (done !== undefined) return done;
  const kind = containerKind(value);
  if (kind === 'array') {
    const source = value as unknown[];
    const copy: unknown[] = new Array(source.length);
    seen.set(value, copy);
    for (let i = 0; i < source.length; i++) copy[i] = encodeTags(source[i], hooks, seen);
    return copy;
  }
  if (kind === 'object') {
    // A module's namespace or exports object goes as a reference to the module.
    const ref = hooks.ref(value);
    if (ref !== undefined) return { [TAG]: ref };
    const copy: Record<string, unknown> = {};
    seen.set(value, copy);
    for (const key of Object.keys(value))
      copy[key] = encodeTags((value as Record<string, unknown>)[key], hooks, seen);
    return copy;
  }
  if (kind === 'map') {
    const copy = new Map<unknown, unknown>();
    seen.set(value, copy);
    for (const [k, v] of value as Map<unknown, unknown>)
      copy.set(encodeTags(k, hooks, seen), encodeTags(v, hooks, seen));
    return copy;
  }
  if (kind === 'set') {
    const copy = new Set<unknown>();
    seen.set(value, copy);
    for (const item of value as Set<unknown>) copy.add(encodeTags(item, hooks, seen));
    return copy;
  }
  if (isClonableLeaf(value)) return value;
  const ref = hooks.ref(value);
  if (ref !== undefined) return { [TAG]: ref };
  const cls = hooks.instance(value);
  if (cls === undefined) return value;
  const fields: Record<string, unknown> = {};
  const tag: InstanceTag = { [TAG]: cls, p: fields };
  seen.set(value, tag);
  for (const key of Object.keys(value))
    fields[key] = encodeTags((value as Record<string, unknown>)[key], hooks, seen);
  return tag;
}

/** The ids of every tag in an encoded value (to resolve them before `decodeTags`, which is synchronous). */
export function tagIds(value: unknown, into = new Set<number>(), seen = new Set<object>()): Set<number> {
  if (value === null || typeof value !== 'object' || seen.has(value)) return into;
  seen.add(value);
  const kind = containerKind(value);
  if (kind === 'array') for (const item of value as unknown[]) tagIds(item, into, seen);
  else if (kind === 'object') {
    if (isTag(value)) into.add(value[TAG]);
    for (const key of Object.keys(value)) tagIds((value as Record<string, unknown>)[key], into, seen);
  } else if (kind === 'map')
    for (const [k, v] of value as Map<unknown, unknown>) {
      tagIds(k, into, seen);
      tagIds(v, into, seen);
    }
  else if (kind === 'set') for (const item of value as Set<unknown>) tagIds(item, into, seen);
  return into;
}

/**
 * A deep copy of the arrays, plain objects, Maps and Sets of an encoded value (shared and cyclic parts
 * stay shared), where `tagged` decides what a tag object becomes. It receives the tag, the copier for
 * its fields, and `remember` to register what it makes before copying fields that may point back.
 */
function copyEncoded(
  value: unknown,
  tagged: (
    tag: RefTag | InstanceTag,
    copy: (inner: unknown) => unknown,
    remember: (made: unknown) => void,
  ) => unknown,
  seen: Map<object, unknown>,
): unknown {
  if (value === null || typeof value !== 'object') return value;
  const done = seen.get(value);
  if (done !== undefined) return done;
  const copy = (inner: unknown): unknown => copyEncoded(inner, tagged, seen);
  const kind = containerKind(value);
  if (kind === 'array') {
    const source = value as unknown[];
    const out: unknown[] = new Array(source.length);
    seen.set(value, out);
    for (let i = 0; i < source.length; i++) out[i] = copy(source[i]);
    return out;
  }
  if (kind === 'object') {
    if (isTag(value)) return tagged(value, copy, (made) => seen.set(value, made));
    const out: Record<string, unknown> = {};
    seen.set(value, out);
    for (const key of Object.keys(value)) out[key] = copy((value as Record<string, unknown>)[key]);
    return out;
  }
  if (kind === 'map') {
    const out = new Map<unknown, unknown>();
    seen.set(value, out);
    for (const [k, v] of value as Map<unknown, unknown>) out.set(copy(k), copy(v));
    return out;
  }
  if (kind === 'set') {
    const out = new Set<unknown>();
    seen.set(value, out);
    for (const item of value as Set<unknown>) out.add(copy(item));
    return out;
  }
  return value;
}

/**
 * Rebuilds an encoded value: a reference tag becomes `lookup(id)`, an instance tag an object whose
 * prototype is that of the class `lookup(id)` (its constructor is not called, as pickle does not).
 */
export function decodeTags(value: unknown, lookup: (id: number) => unknown): unknown {
  return copyEncoded(
    value,
    (tag, copy, remember) => {
      const target = lookup(tag[TAG]);
      if (!('p' in tag)) return target;
      const proto = (target as { prototype?: object } | undefined)?.prototype ?? Object.prototype;
      const instance = Object.create(proto) as Record<string, unknown>;
      remember(instance);
      for (const key of Object.keys(tag.p)) instance[key] = copy(tag.p[key]);
      return instance;
    },
    new Map(),
  );
}

/**
 * A copy of an encoded value whose tags name other ids (`map(id)`): definitions made again on another
 * side (a Redis worker) get ids of their own. Only containers and tags are copied.
 */
export function renumberTags(value: unknown, map: (id: number) => number): unknown {
  return copyEncoded(
    value,
    (tag, copy, remember) => {
      const out: Record<string | symbol, unknown> = {};
      remember(out);
      for (const key of Object.keys(tag)) out[key] = copy((tag as unknown as Record<string, unknown>)[key]);
      out[TAG] = map(tag[TAG]);
      return out;
    },
    new Map(),
  );
}
