/** This package's own `package.json`, read once: its version and the extras' version ranges live there. */
import { readFileSync } from 'node:fs';

interface PackageJson {
  version?: string;
  peerDependencies?: Record<string, string>;
}

let cached: PackageJson | undefined;

export function packageJson(): PackageJson {
  // One level up from both src/ and dist/, the package root.
  cached ??= JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as PackageJson;
  return cached;
}

export function packageVersion(): string {
  return packageJson().version ?? '0.0.0';
}
