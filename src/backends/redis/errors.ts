/** Errors of the Redis backend. Those raised on a worker travel by class name and are rebuilt as these. */
import { JoblibError } from '../../errors.ts';

/** Redis cannot be reached, a job vanished or failed in the queue: the call could not run. */
export class RedisBackendError extends JoblibError {
  override name = 'RedisBackendError';
}

/** No worker has registered on the queue within `workerWaitMs`. */
export class NoRedisWorkerError extends RedisBackendError {
  override name = 'NoRedisWorkerError';
}

/**
 * A worker refused a job's function: an absolute path, a URL, a bare package name, a module outside the
 * worker's `--root` (symlinks resolved), or an export path it does not allow.
 */
export class ModuleRefusedError extends JoblibError {
  override name = 'ModuleRefusedError';
}

/** The worker's copy of a task module differs from the caller's (another version of the code). */
export class VersionSkewError extends JoblibError {
  override name = 'VersionSkewError';
}

/**
 * A worker refused code sent by value: the job was not signed with the secret the worker holds (it
 * has none, the job carried no signature, or another secret signed it). Nothing of the batch ran.
 */
export class CodeRefusedError extends ModuleRefusedError {
  override name = 'CodeRefusedError';
}
