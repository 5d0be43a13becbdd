/**
 * The opt-in parts of joblib-ts and the packages each one needs. The core (Parallel, Memory, hash,
 * dump/load) installs with two small dependencies; the Redis backend and the `experiment` command need
 * more, declared as optional peer dependencies (npm's closest thing to Python's `pip install joblib[dask]`),
 * and loaded only when used. Using one whose packages are missing fails with the command that installs
 * them, at the versions this release was tested with (the ranges in our package.json).
 */
import { MissingExtraError } from './errors.ts';
import { packageJson } from './package-info.ts';

export type ExtraName = 'redis' | 'experiment';

const EXTRAS: Record<ExtraName, { readonly what: string; readonly packages: readonly string[] }> = {
  redis: {
    what: "the Redis backend (backend: 'redis', joblib-ts worker)",
    packages: ['bullmq', 'ioredis', 'msgpackr'],
  },
  experiment: {
    what: 'joblib-ts experiment (its charts)',
    packages: ['vega', 'vega-lite', '@resvg/resvg-js'],
  },
};

/** `npm install bullmq@^6.7.0 ioredis@^5.11.1 msgpackr@^2.1.4`, from our peer ranges. */
export function installCommand(extra: ExtraName): string {
  const ranges = packageJson().peerDependencies ?? {};
  const specs = EXTRAS[extra].packages.map((name) => (ranges[name] ? `${name}@${ranges[name]}` : name));
  return `npm install ${specs.join(' ')}`;
}

/** The package a failed import could not find (`Cannot find package 'bullmq' imported from ...`). */
function missingPackage(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  if (code !== 'ERR_MODULE_NOT_FOUND' && code !== 'MODULE_NOT_FOUND') return undefined;
  const message = error instanceof Error ? error.message : '';
  return /Cannot find (?:package|module) '((?:@[^/']+\/)?[^/']+)/.exec(message)?.[1];
}

/**
 * Runs `load` (a dynamic import of the module that uses the extra). When it fails because one of the
 * extra's packages is not installed, throws a `MissingExtraError` naming them and the install command;
 * any other failure passes through unchanged.
 */
export async function importExtra<T>(extra: ExtraName, load: () => Promise<T>): Promise<T> {
  try {
    return await load();
  } catch (error) {
    const missing = missingPackage(error);
    if (missing === undefined || !EXTRAS[extra].packages.includes(missing)) throw error;
    const { what } = EXTRAS[extra];
    throw new MissingExtraError(
      `${what} needs the package '${missing}', which is not installed. Install the '${extra}' extra: ${installCommand(extra)}`,
      extra,
      installCommand(extra),
      { cause: error },
    );
  }
}
