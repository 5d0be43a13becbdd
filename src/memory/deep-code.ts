/**
 * The code a cached function reaches, for its cache key: the function itself, then, transitively, the
 * functions, classes and constants of the user's own code it uses (read from its free variables and the
 * bindings of its module, through the inspector, as `capture/` does to send a function by value), and
 * the `name@version` of the packages under `node_modules` it uses (not their code). Each reached thing is
 * one part with a hash; the code version is the hash of all parts, and the parts are kept beside the
 * entries so that a miss can say which one changed.
 *
 * What is hashed: a function's or class's source text; a constant's value when it is a primitive or
 * plain data (arrays, plain objects; their functions are followed). Instances, `Map`s and `Set`s count by
 * their class only: their contents are runtime state, not code. Node's built-ins and the globals every
 * program has are not parts. Read once per function per process (a `WeakMap`).
 */
import { existsSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, relative, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { analyzeSource } from '../capture/free-variables.ts';
import { isBaselineGlobal } from '../capture/globals.ts';
import { readScopesOfMany, releaseScopeReads, topLevelBindings } from '../capture/scope-batch.ts';
import type { AnyFunction } from '../delayed.ts';
import { hash, hashBytes } from '../hash.ts';
import { describeLocation } from '../locate/index.ts';
import { packageVersion } from '../package-info.ts';
import { scanSource } from './source-scan.ts';

/** One thing a function's results depend on. */
export interface CodePart {
  readonly kind: 'function' | 'class' | 'constant' | 'package';
  /** The function's, class's or constant's name, or the package's name. */
  readonly name: string;
  /** `file:line:column` of a function or class, the file that reads a constant, the package's folder. */
  readonly where: string;
  /** Hash of the source or value; for a package, its `name@version`. */
  readonly hash: string;
}

/**
 * What a function's source says that a key needs: its free names, and the properties of those it reads
 * only as `name.property`. A pure function of the source text. From the scan (`source-scan.ts`), `free`
 * may also hold names the source declares, listed in `declared`: where one of them is a name the key
 * would follow, the exact parse is asked (`settle`). Without `declared`, the facts are the parse's.
 */
export interface SourceFacts {
  readonly free: readonly string[];
  readonly members: Readonly<Record<string, readonly string[]>>;
  readonly declared?: readonly string[];
}

/**
 * Facts of sources read by an earlier process, by the hash of the source (a part's `hash`), stored
 * beside a code version: a function whose source is unchanged is not read again. Facts written by
 * another version of joblib-ts are not used (`FACTS_FORMAT`).
 */
export interface StoredFacts {
  readonly format: string;
  readonly bySource: Readonly<Record<string, SourceFacts>>;
}

/** The code of a function and everything it reaches: `parts` by a stable id (file and name). */
export interface DeepCode {
  readonly version: string;
  readonly parts: Readonly<Record<string, CodePart>>;
  /** The facts of the functions and classes among `parts`, by source hash: to store for the next process. */
  readonly facts: StoredFacts;
}

/** Folders followed to this depth into plain data constants (to find the functions they hold). */
const DATA_DEPTH = 3;
/** At most this many properties of one object are followed. */
const MAX_PROPS = 200;

const rootCache = new WeakMap<AnyFunction, DeepCode>();
/** Per reached function: its own part and the values it reads, by name (read once per process). */
const nodeCache = new WeakMap<AnyFunction, FunctionNode>();
const packageCache = new Map<string, { name: string; version: string } | null>();

interface FunctionNode {
  readonly id: string;
  readonly part: CodePart | undefined;
  readonly reads: ReadonlyMap<string, unknown>;
  readonly members: Readonly<Record<string, readonly string[]>>;
  readonly file: string;
  /** The module's file URL, for its imports. */
  readonly url: string;
  /** What its source said (scanned or parsed), to store for the next process. */
  readonly facts?: SourceFacts;
}

const SELF_ROOT = dirname(dirname(dirname(fileURLToPath(import.meta.url))));
const SELF_DIRS = [join(SELF_ROOT, 'src') + sep, join(SELF_ROOT, 'dist') + sep];

/** Stored facts of this version of joblib-ts's reader: another version's may differ, and are not used. */
export const FACTS_FORMAT = `joblib-ts@${packageVersion()}/2`;

/** Sources read by this process, scanned or parsed (tests and benchmarks: 0 when stored facts covered all). */
let parsedSources = 0;
export function parsedSourceCount(): number {
  return parsedSources;
}
/** Sources given to acorn by this process: where the scan gave up or a declared name mattered. */
let exactParses = 0;
export function exactParseCount(): number {
  return exactParses;
}

/** Facts given to the walk in progress (from a store), by source hash. */
let hints: Readonly<Record<string, SourceFacts>> | undefined;

/**
 * The deep code of `fn` (cached per process). `stored`: facts an earlier process wrote (`DeepCode.facts`),
 * used for the functions whose source has not changed since.
 */
export function deepCode(fn: AnyFunction, stored?: StoredFacts): DeepCode {
  const hit = rootCache.get(fn);
  if (hit) return hit;
  hints = stored?.format === FACTS_FORMAT ? stored.bySource : undefined;
  let walked: { parts: Record<string, CodePart>; facts: Record<string, SourceFacts> };
  try {
    walked = walkFrom(fn);
  } finally {
    hints = undefined;
    releaseScopeReads();
  }
  const parts = walked.parts;
  // The cached function's own source always counts: for a function of a package (or of joblib-ts), which
  // counts by its package's version, and for one made by eval or new Function, which has no file.
  const root = nodeCache.get(fn);
  if (root?.part === undefined || root.part.kind === 'package')
    parts['(cached function)'] = {
      kind: 'function',
      name: fn.name || 'anonymous',
      where: root?.part?.where ?? '(no file)',
      hash: hashBytes(Function.prototype.toString.call(fn)).slice(0, 16),
    };
  const ids = Object.keys(parts).sort();
  const version = hashBytes(ids.map((id) => `${id}=${parts[id]?.hash}`).join('\n')).slice(0, 16);
  const sorted: Record<string, CodePart> = {};
  for (const id of ids) sorted[id] = parts[id] as CodePart;
  const result: DeepCode = {
    version,
    parts: sorted,
    facts: { format: FACTS_FORMAT, bySource: walked.facts },
  };
  rootCache.set(fn, result);
  return result;
}

/** A part that differs between two deep codes. */
export interface CodeChange {
  readonly change: 'changed' | 'added' | 'removed';
  readonly part: CodePart;
  /** For a package: its version before. */
  readonly before?: CodePart;
}

/** What differs from `before` to `after`, packages last. */
export function diffCode(
  before: Readonly<Record<string, CodePart>>,
  after: Readonly<Record<string, CodePart>>,
): CodeChange[] {
  const out: CodeChange[] = [];
  for (const [id, part] of Object.entries(after)) {
    const old = before[id];
    if (old === undefined) out.push({ change: 'added', part });
    else if (old.hash !== part.hash) out.push({ change: 'changed', part, before: old });
  }
  for (const [id, part] of Object.entries(before)) if (!(id in after)) out.push({ change: 'removed', part });
  return out.sort((a, b) => Number(a.part.kind === 'package') - Number(b.part.kind === 'package'));
}

const projectRoots = new Map<string, string>();

/** The folder of the nearest `package.json` above `dir` (the project a file belongs to), or ''. */
function projectRoot(dir: string): string {
  const hit = projectRoots.get(dir);
  if (hit !== undefined) return hit;
  let root = '';
  if (existsSync(join(dir, 'package.json'))) root = dir;
  else if (dirname(dir) !== dir) root = projectRoot(dirname(dir));
  projectRoots.set(dir, root);
  return root;
}

const shortFiles = new Map<string, string>();

/** A file's name in part ids: relative to its project's folder, so that ids do not depend on the cwd. */
function shortFile(url: string): string {
  let short = shortFiles.get(url);
  if (short !== undefined) return short;
  const path = url.startsWith('file:') ? fileURLToPath(url) : url;
  const root = path.startsWith('/') || /^[A-Za-z]:[\\/]/.test(path) ? projectRoot(dirname(path)) : '';
  short = root === '' ? path : relative(root, path).split(sep).join('/');
  shortFiles.set(url, short);
  return short;
}

const importsCache = new Map<string, ReadonlyMap<string, string>>();
const IMPORT =
  /(?:^|[;\n])\s*import\s+(?!type\b)([\w$]+\s*,?\s*)?(\*\s*as\s+[\w$]+|\{[^}]*\})?\s*from\s*['"]([^'"]+)['"]/g;
const REQUIRE = /(?:const|let|var)\s+(\{[^}]*\}|[\w$]+)\s*=\s*require\(\s*['"]([^'"]+)['"]\s*\)/g;

/**
 * The names a module's file imports, with where from (`import`, `require`): read from the file's text
 * once per process. Only what is needed to tell a binding of Node or of a package from the user's own.
 */
const texts = new Map<string, string | undefined>();

/** A module file's text (the original source: TypeScript under tsx), read once; undefined when unreadable. */
function fileText(url: string): string | undefined {
  if (!texts.has(url)) {
    let text: string | undefined;
    try {
      text = url.startsWith('file:') ? readFileSync(fileURLToPath(url), 'utf8') : undefined;
    } catch {
      text = undefined;
    }
    texts.set(url, text);
  }
  return texts.get(url);
}

const DECLARATION =
  /^(?:export\s+)?(?:default\s+)?(?:(?:async\s+)?function\s*\*?\s*|(?:abstract\s+)?class\s+)([\w$]+)|^(?:export\s+)?(?:const|let|var)\s+([\w$]+)\s*(?::[^=]+)?=\s*(?:async\s+)?(?:function\b|\([^)]*\)\s*(?::[^=]+)?=>|[\w$]+\s*=>)/;
const declarationsCache = new Map<string, ReadonlyMap<string, number>>();

/**
 * Functions and classes declared at the top level of a module file (at the start of a line, as
 * formatted code has them), with their line: their scope is the module's, so their free names are read
 * from its bindings without asking V8 for each (the fast path of a walk).
 */
function declarationsOf(url: string): ReadonlyMap<string, number> {
  let map = declarationsCache.get(url);
  if (map) return map;
  const found = new Map<string, number>();
  (fileText(url) ?? '').split('\n').forEach((line, i) => {
    const m = DECLARATION.exec(line);
    const name = m?.[1] ?? m?.[2];
    if (name !== undefined && !found.has(name)) found.set(name, i + 1);
  });
  map = found;
  declarationsCache.set(url, map);
  return map;
}

function importsOf(url: string): ReadonlyMap<string, string> {
  let map = importsCache.get(url);
  if (map) return map;
  const names = new Map<string, string>();
  try {
    const text = fileText(url);
    if (text === undefined) throw new Error('unreadable');
    const bind = (clause: string, spec: string) => {
      for (const part of clause.replace(/[{}]/g, '').split(',')) {
        const item = part.trim().replace(/^type\s+/, '');
        if (item === '') continue;
        const local = item
          .split(/\s+as\s+|\s*:\s*/)
          .at(-1)
          ?.trim();
        if (local && /^[\w$]+$/.test(local)) names.set(local, spec);
      }
    };
    // The patterns only where their keyword is: a regular expression tried at every character of a
    // file costs milliseconds before V8 compiles it.
    if (text.includes('import'))
      for (const m of text.matchAll(IMPORT)) {
        const spec = m[3] ?? '';
        if (m[1]) bind(m[1].replace(',', ''), spec);
        if (m[2]) bind(m[2].startsWith('*') ? (m[2].split(/\s+as\s+/)[1] ?? '') : m[2], spec);
      }
    if (text.includes('require(')) for (const m of text.matchAll(REQUIRE)) bind(m[1] ?? '', m[2] ?? '');
  } catch {
    // not a file we can read: every binding is followed by its value
  }
  map = names;
  importsCache.set(url, map);
  return map;
}

/** Where a specifier leads: Node itself, a package (by name), or the user's own files. */
function specifierKind(spec: string): { kind: 'node' } | { kind: 'package'; name: string } | { kind: 'own' } {
  if (spec.startsWith('node:') || builtinModules.includes(spec)) return { kind: 'node' };
  if (/^(\.|\/|file:|#|[A-Za-z]:)/.test(spec)) return { kind: 'own' };
  const segments = spec.split('/');
  return {
    kind: 'package',
    name: spec.startsWith('@') ? segments.slice(0, 2).join('/') : (segments[0] ?? spec),
  };
}

const packagesByName = new Map<string, PackageId | undefined>();

/** A package's folder and version, found from the file that imports it (its `node_modules` lookup). */
function packageByName(name: string, fromFile: string): PackageId | undefined {
  const key = `${dirname(fromFile)}\0${name}`;
  if (packagesByName.has(key)) return packagesByName.get(key);
  const found = findPackage(name, fromFile);
  packagesByName.set(key, found);
  return found;
}

function findPackage(name: string, fromFile: string): PackageId | undefined {
  for (let dir = dirname(fromFile); ; dir = dirname(dir)) {
    const candidate = join(dir, 'node_modules', ...name.split('/'));
    if (existsSync(join(candidate, 'package.json')))
      return packageOf(pathToFileURL(join(candidate, 'package.json')).href);
    if (dirname(dir) === dir) return undefined;
  }
}

/** Something reached that is not a function: visited in place; its functions are queued. */
function visitValue(value: unknown, name: string, from: string, walk: Walk, depth: number): void {
  if (typeof value === 'function') {
    walk.queue.push({ fn: value as AnyFunction, name });
    return;
  }
  if (value === null || typeof value !== 'object') {
    walk.parts[`${from}#${name}`] ??= { kind: 'constant', name, where: from, hash: primitiveHash(value) };
    return;
  }
  if (walk.seen.has(value)) return;
  walk.seen.add(value);
  const proto = Object.getPrototypeOf(value) as object | null;
  const plain = proto === null || proto === Object.prototype || Array.isArray(value);
  const namespace = Object.prototype.toString.call(value) === '[object Module]';
  if (!plain && !namespace) {
    // An instance (a Map, a Set, a user class's): its class is code; its contents are state.
    const ctor = (proto as { constructor?: unknown } | null)?.constructor;
    if (typeof ctor === 'function') walk.queue.push({ fn: ctor as AnyFunction, name: ctor.name || name });
    return;
  }
  const record = value as Record<string, unknown>;
  let holdsCode = namespace;
  for (const key of Object.keys(value).slice(0, MAX_PROPS)) {
    let v: unknown;
    try {
      v = record[key];
    } catch {
      continue; // a namespace binding not initialised yet
    }
    if (typeof v === 'function') {
      holdsCode = true;
      walk.queue.push({ fn: v as AnyFunction, name: (v as AnyFunction).name || key });
    } else if (
      namespace ||
      (v !== null && typeof v === 'object' && depth < DATA_DEPTH && holdsFunctions(v, 0))
    ) {
      holdsCode = true;
      visitValue(v, `${name}.${key}`, from, walk, depth + 1);
    }
  }
  // Data: its hash, without the functions it holds (followed above).
  walk.parts[`${from}#${name}`] ??= {
    kind: 'constant',
    name,
    where: from,
    hash: hashData(value, holdsCode),
  };
}

function hashData(value: object, holdsCode: boolean): string {
  try {
    return hash(holdsCode ? withoutCode(value, 0) : value).slice(0, 16);
  } catch {
    return 'unhashable';
  }
}

function withoutCode(value: unknown, depth: number): unknown {
  if (typeof value === 'function') return `[function ${value.name}]`;
  if (value === null || typeof value !== 'object') return value;
  if (depth > DATA_DEPTH) return '[deep]';
  const proto = Object.getPrototypeOf(value) as object | null;
  if (Array.isArray(value)) return value.slice(0, MAX_PROPS).map((v) => withoutCode(v, depth + 1));
  if (proto !== null && proto !== Object.prototype)
    return `[${(proto.constructor as AnyFunction | undefined)?.name ?? 'object'}]`;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value).slice(0, MAX_PROPS)) {
    try {
      out[key] = withoutCode((value as Record<string, unknown>)[key], depth + 1);
    } catch {
      out[key] = '[uninitialised]';
    }
  }
  return out;
}

function primitiveHash(value: unknown): string {
  if (typeof value === 'symbol') return hashBytes(`symbol:${value.description ?? ''}`).slice(0, 16);
  try {
    return hash(value).slice(0, 16);
  } catch {
    return hashBytes(`${typeof value}:${String(value)}`).slice(0, 16);
  }
}

/** A plain object, an array or a module namespace: what it holds is followed (an instance's is state). */
function isContainer(value: unknown): boolean {
  if (value === null || typeof value !== 'object') return false;
  const proto = Object.getPrototypeOf(value) as object | null;
  return (
    proto === null ||
    proto === Object.prototype ||
    Array.isArray(value) ||
    Object.prototype.toString.call(value) === '[object Module]'
  );
}

function holdsFunctions(value: object, depth: number): boolean {
  if (depth > DATA_DEPTH) return false;
  const proto = Object.getPrototypeOf(value) as object | null;
  if (!(proto === null || proto === Object.prototype || Array.isArray(value))) return true;
  for (const v of Object.values(value).slice(0, MAX_PROPS)) {
    if (typeof v === 'function') return true;
    if (v !== null && typeof v === 'object' && holdsFunctions(v, depth + 1)) return true;
  }
  return false;
}

interface Walk {
  readonly parts: Record<string, CodePart>;
  readonly facts: Record<string, SourceFacts>;
  readonly seen: Set<unknown>;
  queue: { fn: AnyFunction; name: string }[];
}

/** Walks from `root`, one batch of functions at a time (one round of inspector calls per batch). */
function walkFrom(root: AnyFunction): {
  parts: Record<string, CodePart>;
  facts: Record<string, SourceFacts>;
} {
  const walk: Walk = {
    parts: {},
    facts: {},
    seen: new Set(),
    queue: [{ fn: root, name: root.name || 'anonymous' }],
  };
  while (walk.queue.length > 0) {
    const batch: { fn: AnyFunction; name: string }[] = [];
    for (const item of walk.queue) {
      let { fn } = item;
      // A cached function: what it computes is the function it wraps.
      const inner = (fn as { func?: unknown }).func;
      if (typeof inner === 'function' && (fn as { memory?: unknown }).memory !== undefined)
        fn = inner as AnyFunction;
      if (walk.seen.has(fn)) continue;
      walk.seen.add(fn);
      batch.push({ fn, name: item.name });
    }
    walk.queue = [];
    const missing: { fn: AnyFunction; name: string }[] = [];
    for (const b of batch) {
      if (nodeCache.has(b.fn)) continue;
      const owner = owners.get(b.fn);
      if (owner === undefined) missing.push(b);
      else staticNode(b.fn, b.name, owner);
    }
    readNodes(missing);
    for (const { fn } of batch) {
      const node = nodeCache.get(fn);
      if (node === undefined || node.part === undefined) continue;
      walk.parts[node.id] ??= node.part;
      if (node.facts !== undefined) walk.facts[node.part.hash] = node.facts;
      const imports = node.url.startsWith('file:') ? importsOf(node.url) : new Map<string, string>();
      for (const [bound, value] of node.reads) {
        const spec = imports.get(bound);
        const from = spec === undefined ? { kind: 'own' as const } : specifierKind(spec);
        // Node's modules are not code of yours; a package counts by its version (not its code or values).
        if (from.kind === 'node') continue;
        if (from.kind === 'package') {
          const pkg = packageByName(from.name, fileURLToPath(node.url));
          const name = pkg?.name ?? from.name;
          walk.parts[`package:${name}`] ??= {
            kind: 'package',
            name,
            where: pkg?.dir ?? name,
            hash: `${name}@${pkg?.version ?? 'unknown'}`,
          };
          continue;
        }
        const members = node.members[bound];
        if (members !== undefined && (typeof value === 'function' || isContainer(value))) {
          // Only the properties the code reads (`helpers.scale`, a module object's `helperA`).
          if (typeof value === 'function') walk.queue.push({ fn: value as AnyFunction, name: bound });
          for (const prop of members) {
            let v: unknown;
            try {
              v = (value as Record<string, unknown>)[prop];
            } catch {
              continue;
            }
            if (typeof v === 'function' && typeof value === 'function') continue; // a static method: in the class
            visitValue(v, `${bound}.${prop}`, node.file, walk, 1);
          }
        } else visitValue(value, bound, node.file, walk, 0);
      }
    }
  }
  return { parts: walk.parts, facts: walk.facts };
}

/**
 * Reads the functions' locations, sources and the values of their free names, in one batch: the names
 * asked of V8 are those the scan of each source found (a superset of its free names).
 */
function readNodes(items: readonly { fn: AnyFunction; name: string }[]): void {
  if (items.length === 0) return;
  const sources = new Map<AnyFunction, string>();
  const scanned = new Map<AnyFunction, SourceFacts | undefined>();
  const readings = readScopesOfMany(
    items.map((i) => i.fn),
    (fn, location) => {
      if (location === undefined || location.url === '' || location.url.startsWith('node:')) return [];
      if (packageOf(location.url) !== undefined) return [];
      const source = Function.prototype.toString.call(fn);
      const facts = factsFor(source);
      sources.set(fn, source);
      scanned.set(fn, facts);
      return facts?.free ?? [];
    },
  );
  items.forEach(({ fn, name }, i) => {
    const reading = readings[i];
    const location = reading?.location;
    if (location === undefined || location.url === '' || location.url.startsWith('node:')) {
      // Native functions (the engine's, Node's), bound functions, Node's modules: not the user's code.
      nodeCache.set(fn, NOT_CODE);
      return;
    }
    const pkg = packageOf(location.url);
    if (pkg !== undefined) {
      nodeCache.set(fn, {
        id: `package:${pkg.name}`,
        part: { kind: 'package', name: pkg.name, where: pkg.dir, hash: `${pkg.name}@${pkg.version}` },
        reads: new Map(),
        members: {},
        file: pkg.dir,
        url: '',
      });
      return;
    }
    registerModule(location.scriptId, location.url);
    const found = reading?.values ?? new Map<string, unknown>();
    const source = sources.get(fn) ?? Function.prototype.toString.call(fn);
    const facts = settle(scanned.get(fn), source, (n) => found.has(n) && found.get(n) !== fn);
    const reads = new Map<string, unknown>();
    for (const free of facts?.free ?? []) if (found.has(free)) reads.set(free, found.get(free));
    nodeCache.set(
      fn,
      makeNode(fn, name, source, facts, reads, location.url, () => describeLocation(location)),
    );
  });
}

/** A module whose top-level bindings are known. */
interface ModuleInfo {
  readonly url: string;
  readonly bindings: ReadonlyMap<string, unknown>;
}

interface Owner {
  readonly module: ModuleInfo;
  readonly line: number;
}

/** Functions declared at the top level of a module whose bindings are known: keyed without the inspector. */
const owners = new WeakMap<AnyFunction, Owner>();
const registered = new Set<string>();

/** The facts of a source: stored by an earlier process (`hints`), else scanned, else parsed. */
function factsFor(source: string): SourceFacts | undefined {
  const known = hints === undefined ? undefined : hints[sourceHash(source)];
  if (isSourceFacts(known)) return known;
  parsedSources++;
  const scanned = scanSource(source);
  if (scanned !== undefined) return scanned;
  return exactFacts(source);
}

function exactFacts(source: string): SourceFacts | undefined {
  exactParses++;
  const parsed = analyzeSource(source);
  return parsed === undefined ? undefined : { free: parsed.free, members: parsed.members };
}

/**
 * The facts to key with: the scan's, unless a name it found declared is one the key would follow
 * (`follows`: a binding or global of that name, other than the function itself); then, where the scan
 * cannot tell a local from the outer binding, the parse's.
 */
function settle(
  facts: SourceFacts | undefined,
  source: string,
  follows: (name: string) => boolean,
): SourceFacts | undefined {
  if (facts?.declared === undefined || !facts.declared.some(follows)) return facts;
  return exactFacts(source) ?? facts;
}

/** Stored facts come from a file or a server: any other shape (a damaged note) is read again. */
function isSourceFacts(value: unknown): value is SourceFacts {
  if (value === null || typeof value !== 'object') return false;
  const { free, members, declared } = value as { free?: unknown; members?: unknown; declared?: unknown };
  const strings = (list: unknown) => Array.isArray(list) && list.every((n) => typeof n === 'string');
  return (
    strings(free) &&
    (declared === undefined || strings(declared)) &&
    members !== null &&
    typeof members === 'object' &&
    Object.values(members).every(strings)
  );
}

/** A source's hash, as a part's `hash`. */
function sourceHash(source: string): string {
  return hashBytes(source).slice(0, 16);
}

/** Notes the top-level functions of the module of `scriptId`, once its bindings have been read. */
function registerModule(scriptId: string, url: string): void {
  if (registered.has(scriptId)) return;
  const bindings = topLevelBindings(scriptId);
  if (bindings === undefined) return;
  registered.add(scriptId);
  if (!url.startsWith('file:') || packageOf(url) !== undefined) return;
  const imports = importsOf(url);
  const declared = declarationsOf(url);
  const module: ModuleInfo = { url, bindings };
  for (const [name, value] of bindings) {
    const line = declared.get(name);
    if (
      typeof value !== 'function' ||
      imports.has(name) ||
      line === undefined ||
      owners.has(value as AnyFunction)
    )
      continue;
    owners.set(value as AnyFunction, { module, line });
  }
}

/** The node of a top-level function of a known module: its free names read from the module's bindings. */
function staticNode(fn: AnyFunction, name: string, owner: Owner): void {
  const source = Function.prototype.toString.call(fn);
  const { url, bindings } = owner.module;
  const root = globalThis as unknown as Record<string, unknown>;
  const isOwnGlobal = (n: string) => Object.hasOwn(root, n) && !isBaselineGlobal(n);
  const facts = settle(factsFor(source), source, (n) =>
    bindings.has(n) ? bindings.get(n) !== fn : isOwnGlobal(n) && root[n] !== fn,
  );
  const reads = new Map<string, unknown>();
  for (const free of facts?.free ?? []) {
    if (bindings.has(free)) reads.set(free, bindings.get(free));
    else if (isOwnGlobal(free)) reads.set(free, root[free]);
  }
  nodeCache.set(
    fn,
    makeNode(fn, name, source, facts, reads, url, () => `${fileURLToPath(url)}:${owner.line}:1`),
  );
}

function makeNode(
  fn: AnyFunction,
  name: string,
  source: string,
  facts: SourceFacts | undefined,
  reads: Map<string, unknown>,
  url: string,
  describe: () => string,
): FunctionNode {
  const file = shortFile(url);
  const isClass = /^class\b/.test(source);
  const ownName = fn.name || name;
  if (isClass) {
    // A subclass's parent, when its source does not name it (a mixin's result).
    const parent = Object.getPrototypeOf(fn) as unknown;
    if (
      typeof parent === 'function' &&
      parent !== Function.prototype &&
      ![...reads.values()].includes(parent)
    )
      reads.set('(superclass)', parent);
  }
  let where: string | undefined;
  const part: CodePart = {
    kind: isClass ? 'class' : 'function',
    name: ownName,
    hash: sourceHash(source),
    // Mapped to the original source (TypeScript) only when asked: source maps cost more than the rest.
    get where(): string {
      where ??= describe();
      return where;
    },
  };
  Object.defineProperty(part, 'where', { enumerable: true });
  const node: FunctionNode = {
    id: `${file}#${ownName}`,
    part,
    reads,
    members: facts?.members ?? {},
    file,
    url,
    ...(facts !== undefined ? { facts } : {}),
  };
  return node;
}

const NOT_CODE: FunctionNode = { id: '', part: undefined, reads: new Map(), members: {}, file: '', url: '' };

interface PackageId {
  name: string;
  version: string;
  dir: string;
}

/** The package a file belongs to: under `node_modules`, or joblib-ts itself; undefined for the user's code. */
function packageOf(url: string): PackageId | undefined {
  if (!url.startsWith('file:')) return undefined;
  const path = fileURLToPath(url);
  if (SELF_DIRS.some((d) => path.startsWith(d)))
    return { name: 'joblib-ts', version: packageVersion(), dir: SELF_ROOT };
  const marker = `${sep}node_modules${sep}`;
  const at = path.lastIndexOf(marker);
  if (at === -1) return undefined;
  const rest = path.slice(at + marker.length).split(sep);
  const segments = rest[0]?.startsWith('@') ? 2 : 1;
  const dir = path.slice(0, at + marker.length) + rest.slice(0, segments).join(sep);
  let info = packageCache.get(dir);
  if (info === undefined) {
    try {
      const json = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {
        name?: unknown;
        version?: unknown;
      };
      info = {
        name: typeof json.name === 'string' ? json.name : rest.slice(0, segments).join('/'),
        version: typeof json.version === 'string' ? json.version : 'unknown',
      };
    } catch {
      info = null;
    }
    packageCache.set(dir, info);
  }
  if (info === null) return { name: rest.slice(0, segments).join('/'), version: 'unknown', dir };
  return { ...info, dir };
}
