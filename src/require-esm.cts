/**
 * Loads one of the package's ES modules from its CommonJS entries (`index.cts`, `backends/redis/index.cts`)
 * through Node's `require(esm)`, and explains what to do where this Node cannot.
 */

/** `load()`'s module, or an error naming the Node version, the entry and the three ways out. */
function requireEsm<T>(load: () => unknown, entry: string): T {
  try {
    return load() as T;
  } catch (error) {
    const code = (error as { code?: unknown } | null)?.code;
    if (code !== 'ERR_REQUIRE_ESM' && code !== 'ERR_REQUIRE_ASYNC_MODULE') throw error;
    throw new Error(
      `require('${entry}') needs require() of ES modules, which this Node (${process.version}) does not do: it is on by default from Node 20.19 and 22.12, unless node runs with --no-experimental-require-module. Upgrade Node, or run node with --experimental-require-module, or load the package with \`const { Parallel, delayed } = await import('${entry}')\`.`,
      { cause: error },
    );
  }
}

export = requireEsm;
