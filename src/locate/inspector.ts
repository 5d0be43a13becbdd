import { Session } from 'node:inspector';
import type { AnyFunction } from '../delayed.ts';

/** Where V8 says a function's code starts: the script's URL and a 0-based line and column in it. */
export interface CodeLocation {
  scriptId: string;
  url: string;
  line: number;
  column: number;
}

/** What V8 can tell about a function without calling it. */
export interface FunctionFacts {
  location: CodeLocation | undefined;
  /** True for `fn.bind(...)` results, which have no code of their own. */
  bound: boolean;
}

const PROBE = Symbol.for('joblib-ts.locate.probe');
const GROUP = 'joblib-ts-locate';

interface InternalProperty {
  name: string;
  value?: { value?: { scriptId: string; lineNumber: number; columnNumber: number } };
}

let session: Session | undefined;
const scriptUrls = new Map<string, string>();
/** Scripts V8 parsed as ES modules (strict code; the others are scripts or CommonJS). */
const moduleScripts = new Set<string>();

/**
 * Posts a message on the in-thread inspector session. The session of the thread itself answers
 * synchronously, which keeps locating a function a plain function call.
 */
export function post<T>(method: string, params?: object): T {
  if (!session) {
    session = new Session();
    session.connect();
    session.on('Debugger.scriptParsed', (message) => {
      scriptUrls.set(message.params.scriptId, message.params.url);
      if (message.params.isModule) moduleScripts.add(message.params.scriptId);
    });
  }
  let error: Error | null = null;
  let result: unknown;
  session.post(method, params, (err: Error | null, res: unknown) => {
    error = err;
    result = res;
  });
  if (error) throw error;
  return result as T;
}

/**
 * Maps a script id to its URL. Enabling the debugger replays `scriptParsed` for every script loaded
 * so far; it is switched off again at once so that it costs nothing while tasks run.
 */
export function scriptUrlOf(scriptId: string): string | undefined {
  return scriptUrl(scriptId);
}

function scriptUrl(scriptId: string): string | undefined {
  if (!scriptUrls.has(scriptId)) {
    post('Debugger.enable');
    post('Debugger.disable');
  }
  return scriptUrls.get(scriptId);
}

/** Asks V8 for a function's `[[FunctionLocation]]` (and whether it is bound), through the inspector protocol. */
export function inspectFunction(fn: AnyFunction): FunctionFacts {
  const holder = globalThis as unknown as Record<symbol, unknown>;
  holder[PROBE] = fn;
  try {
    const { result } = post<{ result: RemoteObject }>('Runtime.evaluate', {
      expression: `globalThis[Symbol.for(${JSON.stringify(PROBE.description)})]`,
      objectGroup: GROUP,
    });
    if (!result.objectId) return { location: undefined, bound: false };
    const { internalProperties = [] } = post<{ internalProperties?: InternalProperty[] }>(
      'Runtime.getProperties',
      {
        objectId: result.objectId,
        ownProperties: true,
      },
    );
    const bound = internalProperties.some((p) => p.name === '[[TargetFunction]]');
    const raw = internalProperties.find((p) => p.name === '[[FunctionLocation]]')?.value?.value;
    if (!raw) return { location: undefined, bound };
    const url = scriptUrl(raw.scriptId);
    return {
      location: url
        ? { scriptId: raw.scriptId, url, line: raw.lineNumber, column: raw.columnNumber }
        : undefined,
      bound,
    };
  } finally {
    delete holder[PROBE];
    post('Runtime.releaseObjectGroup', { objectGroup: GROUP });
  }
}

/** The code V8 runs for a script (for TypeScript under tsx: the JavaScript tsx produced). */
export function scriptSource(scriptId: string): string | undefined {
  post('Debugger.enable');
  try {
    return post<{ scriptSource: string }>('Debugger.getScriptSource', { scriptId }).scriptSource;
  } catch {
    return undefined;
  } finally {
    post('Debugger.disable');
  }
}

/** URLs of every file module loaded so far in this thread (refreshed from the debugger). */
export function loadedFileUrls(): string[] {
  post('Debugger.enable');
  post('Debugger.disable');
  const urls = new Set<string>();
  for (const url of scriptUrls.values()) if (url.startsWith('file:')) urls.add(url);
  return [...urls];
}

/** Whether V8 parsed the script as an ES module (known once the script's URL has been looked up). */
export function isModuleScript(scriptId: string): boolean {
  scriptUrl(scriptId);
  return moduleScripts.has(scriptId);
}

/** What the inspector's Runtime domain returns for a value (the fields joblib-ts reads). */
export interface RemoteObject {
  type?: string;
  value?: unknown;
  unserializableValue?: string;
  objectId?: string;
  description?: string;
}

/** A value the inspector returned, as an argument of `Runtime.callFunctionOn`. */
export function toCallArgument(value: RemoteObject): object {
  if (value.objectId) return { objectId: value.objectId };
  if (value.unserializableValue !== undefined) return { unserializableValue: value.unserializableValue };
  if (value.type === 'undefined') return {};
  return { value: value.value };
}
