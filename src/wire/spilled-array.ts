/**
 * A big typed array written to a file by the caller (`backends/big-arrays/spill-files.ts`), as it travels
 * in a batch in the array's place, and how the worker rebuilds a view of the right type from the bytes.
 */

/** The key that marks a spilled argument: no user object has it by accident. */
export const SPILL_KEY = '\u0000joblib-ts:spilled';

export interface SpilledArray {
  readonly [SPILL_KEY]: true;
  readonly path: string;
  /** The view's constructor name: `Float64Array`, `Uint8Array`, `DataView`, ... */
  readonly type: string;
  readonly byteLength: number;
}

export function isSpilled(value: unknown): value is SpilledArray {
  return typeof value === 'object' && value !== null && SPILL_KEY in value;
}

type ViewConstructor = {
  new (buffer: ArrayBuffer, byteOffset: number, length: number): ArrayBufferView;
  BYTES_PER_ELEMENT: number;
};

/** A view of `type` (`Float64Array`, `Buffer`, `DataView`, ...) on the bytes read back. */
export function toView(type: string, bytes: Buffer): ArrayBufferView {
  if (type === 'Buffer') return bytes;
  const Ctor = (globalThis as unknown as Record<string, ViewConstructor | undefined>)[type];
  if (type === 'DataView') return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (typeof Ctor !== 'function' || typeof Ctor.BYTES_PER_ELEMENT !== 'number') {
    throw new Error(`joblib-ts: unknown typed array type ${type} for a big argument.`);
  }
  // A typed array needs an offset that is a multiple of its element size: copy when the read's is not.
  const aligned =
    bytes.byteOffset % Ctor.BYTES_PER_ELEMENT === 0
      ? bytes
      : new Uint8Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  return new Ctor(
    aligned.buffer as ArrayBuffer,
    aligned.byteOffset,
    bytes.byteLength / Ctor.BYTES_PER_ELEMENT,
  );
}
