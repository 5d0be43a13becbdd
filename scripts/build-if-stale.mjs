/**
 * `npm run build` unless dist/ is newer than everything it is built from: `npm ci` has just built it
 * (the `prepare` script), and `npm test` would otherwise spend another 12 s (two tsc passes) building
 * the same files. Stale when any file under src/, package.json or a tsconfig is newer than
 * dist/index.d.ts (the build's last output), or when dist is missing.
 */
import { execSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const root = join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '..');
const mtime = (path) => {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return undefined;
  }
};
function newest(dir) {
  let latest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    latest = Math.max(latest, entry.isDirectory() ? newest(path) : (mtime(path) ?? 0));
  }
  return latest;
}
const built = mtime(join(root, 'dist', 'index.d.ts'));
const inputs = Math.max(
  newest(join(root, 'src')),
  ...['package.json', 'tsconfig.json', 'tsconfig.build.json'].map((f) => mtime(join(root, f)) ?? 0),
);
if (built !== undefined && built > inputs) console.log('dist/ is newer than its sources: not rebuilt');
else execSync('npm run -s build', { cwd: root, stdio: 'inherit' });
