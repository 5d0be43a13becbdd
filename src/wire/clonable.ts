/**
 * Which values keep their meaning when they travel to or from a worker. Structured clone (threads) and
 * V8 serialization (processes) copy any object's own fields but not its class: a `Hash` from
 * `createHash('sha1')` arrives as `{ _options: undefined }`, a class instance as a plain object without
 * its methods, a native handle as an empty shell. Such values are refused, with the reason, instead of
 * arriving silently wrong. Plain data passes: primitives, plain objects, arrays, Map, Set, Date, RegExp,
 * boxed primitives, ArrayBuffer, typed arrays (Buffer included), DataView, Blob, Error.
 *
 * One function to extend (`unclonableReason`): a class whose instances are rebuilt on the other side
 * would be accepted here.
 */

/** Prototypes of the built-ins that structured clone rebuilds as what they were. */
const CLONABLE_PROTOTYPES: ReadonlySet<object> = new Set(
  [
    Object.prototype,
    Array.prototype,
    Map.prototype,
    Set.prototype,
    Date.prototype,
    RegExp.prototype,
    Number.prototype,
    String.prototype,
    Boolean.prototype,
    BigInt.prototype,
    ArrayBuffer.prototype,
    SharedArrayBuffer.prototype,
    DataView.prototype,
    Buffer.prototype,
    globalThis.Blob?.prototype,
    ...[
      Int8Array,
      Uint8Array,
      Uint8ClampedArray,
      Int16Array,
      Uint16Array,
      Int32Array,
      Uint32Array,
      Float32Array,
      Float64Array,
      BigInt64Array,
      BigUint64Array,
    ].map((ctor) => ctor.prototype),
  ].filter((proto): proto is object => proto !== undefined),
);

/** Objects whose contents are data only: nothing inside them needs looking at. */
function isOpaqueData(value: object): boolean {
  return ArrayBuffer.isView(value) || value instanceof ArrayBuffer || value instanceof SharedArrayBuffer;
}

/** What is wrong with `value` itself (not its contents), or undefined when it travels as it is. */
function ownReason(value: object): string | undefined {
  const proto = Object.getPrototypeOf(value) as object | null;
  if (proto === null || CLONABLE_PROTOTYPES.has(proto)) return undefined;
  // Errors travel with their name, message and stack (and thrown ones with more, see errors.ts).
  if (value instanceof Error) return undefined;
  const ctor = (proto as { constructor?: { name?: unknown } }).constructor;
  const name = typeof ctor?.name === 'string' && ctor.name ? ctor.name : undefined;
  if (!name || name === 'Object')
    return 'an object whose prototype is not Object.prototype: it would arrive as a plain object, without its prototype';
  return `a ${name}, an instance of a class: it would arrive as a plain object, without its class and methods (and a native handle, as a Hash or a socket holds, would be lost)`;
}

/** A value met on the walk, with how it was reached: the path is spelled out only for the culprit. */
interface Visit {
  readonly value: object;
  readonly parent: Visit | undefined;
  /** Array index, field name, or Map/Set entry number (`entry`). */
  readonly key: number | string;
  readonly entry?: 'set' | 'map key' | 'map value';
}

function pathOf(visit: Visit): string {
  let path = '';
  for (let v: Visit | undefined = visit; v?.parent; v = v.parent) {
    const { key, entry } = v;
    const step =
      entry === 'set'
        ? `<Set entry ${key}>`
        : entry === 'map key'
          ? `<Map key ${key}>`
          : entry === 'map value'
            ? `<Map value ${key}>`
            : typeof key === 'number'
              ? `[${key}]`
              : /^[A-Za-z_$][\w$]*$/.test(key)
                ? `.${key}`
                : `[${JSON.stringify(key)}]`;
    path = step + path;
  }
  return path.replace(/^\./, '');
}

/**
 * Why `value` would lose its meaning in a worker or on its way back (`items[2].hash is a Hash, ...`),
 * or undefined when it travels as it is. Values that cannot be cloned at all (functions, symbols) are
 * left to the clone's own error.
 */
export function unclonableReason(value: unknown): string | undefined {
  if (value === null || typeof value !== 'object') return undefined;
  // Most values are fine: a first walk without paths, then one with them only to explain a refusal.
  return allClonable(value) ? undefined : explain(value);
}

/** The fast walk: true when every object reached is plain data. Iterative; `seen` ends cycles. */
function allClonable(root: object): boolean {
  const seen = new Set<object>();
  const stack: object[] = [root];
  while (stack.length > 0) {
    const current = stack.pop() as object;
    const proto = Object.getPrototypeOf(current) as object | null;
    if (proto === Object.prototype || proto === null) {
      for (const key in current) {
        const child = (current as Record<string, unknown>)[key];
        if (child !== null && typeof child === 'object' && !seen.has(child)) {
          seen.add(child);
          stack.push(child);
        }
      }
    } else if (proto === Array.prototype) {
      const array = current as unknown[];
      for (let i = 0; i < array.length; i++) {
        const child = array[i];
        if (child !== null && typeof child === 'object' && !seen.has(child)) {
          seen.add(child);
          stack.push(child);
        }
      }
    } else if (ownReason(current)) {
      return false;
    } else if (current instanceof Map || current instanceof Set) {
      for (const entry of current instanceof Map ? [...current.keys(), ...current.values()] : current) {
        if (entry !== null && typeof entry === 'object' && !seen.has(entry)) {
          seen.add(entry);
          stack.push(entry);
        }
      }
    }
  }
  return true;
}

/** The slow walk, for a value the fast one refused: says which part is wrong, and why. */
function explain(value: object): string | undefined {
  const seen = new Set<object>();
  const stack: Visit[] = [{ value, parent: undefined, key: '' }];
  const push = (child: unknown, parent: Visit, key: number | string, entry?: Visit['entry']) => {
    if (child !== null && typeof child === 'object' && !seen.has(child))
      stack.push(entry ? { value: child, parent, key, entry } : { value: child, parent, key });
  };
  while (stack.length > 0) {
    const visit = stack.pop() as Visit;
    const current = visit.value;
    if (seen.has(current)) continue;
    seen.add(current);
    const reason = ownReason(current);
    if (reason) return visit.parent ? `${pathOf(visit)} is ${reason}` : `it is ${reason}`;
    if (isOpaqueData(current) || current instanceof Error) continue;
    if (Array.isArray(current)) {
      for (let i = 0; i < current.length; i++) push(current[i], visit, i);
    } else if (current instanceof Map) {
      let i = 0;
      for (const [k, v] of current) {
        push(k, visit, i, 'map key');
        push(v, visit, i++, 'map value');
      }
    } else if (current instanceof Set) {
      let i = 0;
      for (const v of current) push(v, visit, i++, 'set');
    } else {
      for (const key of Object.keys(current)) push((current as Record<string, unknown>)[key], visit, key);
    }
  }
  return undefined;
}
