/**
 * Refuses option names an API does not know. `tsx` and plain JavaScript never type-check, and a user
 * coming from Python writes joblib's names (`n_jobs`, `batch_size`): an ignored option would silently
 * run something else, so every options bag of the public API goes through `checkKnownOptions`.
 */

/** joblib's snake_case names (and a few of its other spellings) → ours, for the "did you mean" hint. */
const JOBLIB_NAMES: Readonly<Record<string, string>> = {
  n_jobs: 'nJobs',
  njobs: 'nJobs',
  batch_size: 'batchSize',
  pre_dispatch: 'preDispatch',
  max_nbytes: 'maxNbytes',
  return_as: 'returnAs',
  timeout: 'timeoutMs',
  bytes_limit: 'bytesLimit',
  cache_validation_callback: 'cacheValidationCallback',
  backend_options: 'backendOptions',
  backend_params: 'backendOptions',
  prefer: 'backend',
};

/** joblib options with no counterpart here, and what to do instead. */
const JOBLIB_WITHOUT_EQUIVALENT: Readonly<Record<string, string>> = {
  mmap_mode:
    "joblib's mmap_mode has no equivalent: cached arrays are read into memory, and Parallel shares typed arrays of maxNbytes or more with its workers by itself",
  temp_folder:
    "joblib's temp_folder has no equivalent: big arrays go to /dev/shm or the temp directory (TMPDIR)",
  require:
    "joblib's require has no equivalent: use backend: 'threads' and createSharedArray for shared memory",
  inner_max_num_threads: "joblib's inner_max_num_threads has no equivalent",
  protocol: "joblib's protocol has no equivalent: values are stored with V8's serializer",
};

/** How many single-letter edits (insert, delete, replace, swap of neighbours) turn `a` into `b`. */
export function editDistance(a: string, b: string): number {
  const width = b.length + 1;
  // d[i * width + j]: the distance between the first i letters of a and the first j of b.
  const d = new Uint16Array((a.length + 1) * width);
  for (let i = 0; i <= a.length; i++) d[i * width] = i;
  for (let j = 0; j <= b.length; j++) d[j] = j;
  const at = (i: number, j: number): number => d[i * width + j] ?? 0;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        best = Math.min(best, at(i - 2, j - 2) + 1);
      }
      d[i * width + j] = best;
    }
  }
  return at(a.length, b.length);
}

/** `n_jobs` → `nJobs`, `BATCH-SIZE` → `batchSize`: the camelCase spelling of a name. */
function camelCase(name: string): string {
  return name.toLowerCase().replace(/[_-]+([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

/** The known name `name` most likely meant, or undefined when none is close. */
export function nearestName(name: string, known: readonly string[]): string | undefined {
  const lower = name.toLowerCase();
  const mapped = JOBLIB_NAMES[lower] ?? JOBLIB_NAMES[lower.replace(/-/g, '_')];
  if (mapped && known.includes(mapped)) return mapped;
  const camel = camelCase(name);
  const exact = known.find((k) => k.toLowerCase() === camel.toLowerCase());
  if (exact) return exact;
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const candidate of known) {
    const distance = editDistance(camel.toLowerCase(), candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  // Close enough to be a typo: two edits, or a third of the longer name.
  const allowed = Math.max(2, Math.floor(Math.max(name.length, best?.length ?? 0) / 3));
  if (best !== undefined && bestDistance <= allowed) return best;
  // A name of ours with a unit or a prefix left off or added (`timeout` → `timeoutMs`).
  return known.find((k) => k.toLowerCase().startsWith(lower) || lower.startsWith(k.toLowerCase()));
}

export interface KnownOptionsCheck {
  /** How messages name the options bag: `new Parallel(options)`. */
  readonly where: string;
  /** Every option name the API accepts. */
  readonly known: readonly string[];
  /** Names that belong elsewhere, with where they go (`signal` given to parallelConfig...). */
  readonly elsewhere?: Readonly<Record<string, string>>;
  /** Builds the error thrown (each module keeps its own error class). */
  readonly error: (message: string) => Error;
}

/**
 * Throws `check.error(...)` for the first own key of `options` that is not in `check.known`, naming
 * it and the nearest known name. Does nothing for a non-object (the caller's own check reports that).
 */
export function checkKnownOptions(options: unknown, check: KnownOptionsCheck): void {
  if (options === null || typeof options !== 'object') return;
  for (const key of Object.keys(options)) {
    if (check.known.includes(key)) continue;
    throw check.error(unknownOptionMessage(key, check));
  }
}

function unknownOptionMessage(key: string, check: KnownOptionsCheck): string {
  const head = `${check.where}: unknown option ${JSON.stringify(key)}`;
  const elsewhere = check.elsewhere?.[key];
  if (elsewhere) return `${head}: ${elsewhere}.`;
  const known = `Known options: ${check.known.join(', ')}.`;
  const nearest = nearestName(key, check.known);
  const joblib = JOBLIB_NAMES[key] ?? (key.includes('_') ? camelCase(key) : undefined);
  if (nearest) {
    const from = joblib === nearest ? ` (joblib's ${key} is ${nearest} here)` : '';
    const unit = key === 'timeout' && nearest === 'timeoutMs' ? ', in milliseconds' : '';
    return `${head}; did you mean ${nearest}${unit}?${from} ${known}`;
  }
  const without = JOBLIB_WITHOUT_EQUIVALENT[key];
  if (without) return `${head}: ${without}. ${known}`;
  return `${head}. ${known}`;
}
