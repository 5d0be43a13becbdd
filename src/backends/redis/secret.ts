/**
 * The secret a caller and its Redis workers share, without which no code crosses Redis. A function sent
 * by value is code: a worker runs it only when its definitions come signed (HMAC-SHA256) with the
 * secret it holds too. The secret itself never leaves this object: not in a message, a log, a key, or
 * what `console.log` or `JSON.stringify` show of the options that hold it.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { inspect } from 'node:util';
import { InvalidArgumentError } from '../../errors.ts';

/** The environment variable both sides read when they are given no secret otherwise. */
export const SECRET_ENV = 'JOBLIB_TS_SECRET';
/** Shorter is guessable: refused. */
export const MIN_SECRET_LENGTH = 16;

export class Secret {
  readonly #key: Buffer;

  constructor(key: string) {
    this.#key = Buffer.from(key, 'utf8');
  }

  /** The signature of definitions sent for one call: bound to the call, so they cannot be replayed in another. */
  sign(call: string, bytes: Uint8Array): Buffer {
    return createHmac('sha256', this.#key).update(`joblib-ts by value 1\0${call}\0`).update(bytes).digest();
  }

  /** Whether `signature` is this secret's for these bytes (constant time). */
  verify(call: string, bytes: Uint8Array, signature: unknown): boolean {
    if (!(signature instanceof Uint8Array) || signature.length !== 32) return false;
    return timingSafeEqual(this.sign(call, bytes), signature);
  }

  toJSON(): string {
    return '[secret]';
  }

  [inspect.custom](): string {
    return 'Secret [redacted]';
  }

  toString(): string {
    return '[secret]';
  }
}

/**
 * `value` (an option) as a Secret, else `JOBLIB_TS_SECRET`'s, else undefined. `name` is how the user
 * gave it, for the error a bad one gets (which never shows the value).
 */
export function resolveSecret(value: unknown, name: string): Secret | undefined {
  let given = value;
  let from = name;
  if (given === undefined) {
    given = process.env[SECRET_ENV];
    from = SECRET_ENV;
    if (given === undefined || given === '') return undefined;
  }
  if (typeof given !== 'string') {
    throw new InvalidArgumentError(`${from} must be a string (the secret shared with the workers).`);
  }
  if (given.length < MIN_SECRET_LENGTH) {
    throw new InvalidArgumentError(
      `${from} is too short to be a secret: ${given.length} characters, at least ${MIN_SECRET_LENGTH} are needed (\`openssl rand -hex 32\` makes a good one).`,
    );
  }
  return new Secret(given);
}

/** The secret in a file (`joblib-ts worker --secret-file F`): its text, without the trailing newline, checked. */
export function readSecretFile(path: string): string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new InvalidArgumentError(
      `--secret-file ${path} cannot be read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}).`,
    );
  }
  const secret = text.replace(/\r?\n$/, '');
  resolveSecret(secret, `--secret-file ${path}`);
  return secret;
}
