/**
 * The large arguments of one call: each is encoded once, stored once under its content hash, and every
 * batch that passes it refers to it by hash, so an array given to 1000 tasks crosses the network once.
 */
import { hashBytes } from '../../hash.ts';
import { pack } from './codec.ts';

export class CallBlobs {
  /** Every hash stored (or about to be) in this call: the keys to delete when it ends. */
  readonly stored = new Set<string>();
  private readonly unsent = new Map<string, Buffer>();
  private readonly hashOf = new WeakMap<object, string>();

  /** The hash of this very object if the call stored it already (no encoding again). */
  known(value: unknown): string | undefined {
    return value !== null && typeof value === 'object' ? this.hashOf.get(value) : undefined;
  }

  /** Encodes a large argument once per call, by content hash; the bytes go out with the next flush. */
  store(value: unknown): string {
    const bytes = pack(value);
    const hash = hashBytes(bytes);
    if (!this.stored.has(hash)) {
      this.stored.add(hash);
      this.unsent.set(hash, bytes);
    }
    if (value !== null && typeof value === 'object') this.hashOf.set(value, hash);
    return hash;
  }

  /** The hashes of the blobs already handed out to be sent. */
  sent(): string[] {
    return [...this.stored].filter((hash) => !this.unsent.has(hash));
  }

  /** The blobs not sent yet, each handed out once. */
  takeUnsent(): [hash: string, bytes: Buffer][] {
    const blobs = [...this.unsent];
    this.unsent.clear();
    return blobs;
  }
}
