/**
 * The names a function's source uses, read by one pass over its characters instead of a parse: what a
 * deep code key needs (`deep-code.ts`), at a fraction of acorn's cost in a process where acorn has not
 * run yet (the first keying: acorn needs 10–20 ms to warm up, this scan well under 1 ms for 50 helpers).
 *
 * The result is safe rather than exact. `free` holds every name the source uses without declaring it
 * (acorn's free names) and may hold more: a name both declared and used (a parameter, a local that
 * shadows a module binding), a class's method names, a label. Those are listed in `declared` where they
 * are declared, so that the caller can ask the exact parse whenever one of them is a name it would
 * follow. `members` lists a name only when every use of it is `name.property`. Where the scan cannot
 * tell code from text for sure (a `/` after `}` could start a regular expression or divide), or meets
 * what it does not read (non-ASCII identifiers, escapes in names), it gives up: undefined, and the
 * caller parses.
 */

/** What the scan says of a source. */
export interface ScannedFacts {
  /** Every name used and not declared (and perhaps a few declared ones, listed in `declared`). */
  readonly free: readonly string[];
  /** Free names used only as `name.property`: the properties read. */
  readonly members: Readonly<Record<string, readonly string[]>>;
  /** Names the source declares somewhere (parameters, variables, functions, classes, catch bindings). */
  readonly declared: readonly string[];
}

/** Words that are never a reference (reserved words and the literals among them). */
const RESERVED = new Set(
  (
    'break case catch class const continue debugger default delete do else enum export extends false ' +
    'finally for function if import in instanceof new null return super switch this throw true try ' +
    'typeof var void while with let arguments'
  ).split(' '),
);
/** Reserved words that are values: a `/` after them divides. */
const VALUE_WORDS = new Set(['this', 'super', 'true', 'false', 'null']);
/** Words after which a `/` could divide or start a regular expression, by context: the scan gives up. */
const AMBIGUOUS_BEFORE_SLASH = new Set(['yield', 'await', 'of', 'async', 'get', 'set', 'static']);
/** Keywords of a statement whose parenthesis is a condition or head, not a parameter list. */
const CONTROL = new Set(['if', 'while', 'for', 'switch', 'with']);
/** Words that are keywords only in some places: followed by a name on the same line, they are. */
const CONTEXTUAL = new Set(['async', 'await', 'yield', 'of', 'get', 'set', 'static']);
/** Words before a class or object method's name. */
const MODIFIERS = new Set(['static', 'async', 'get', 'set']);
/** Words that declare the names after them. */
const DECLARES = new Set(['let', 'const', 'var', 'function', 'class']);

enum Prev {
  /** Start, an operator or an opening bracket: an expression may follow (so may a regex). */
  Operator,
  /** A name, number, string, `)` or `]`: a `/` divides. */
  Value,
  /** `)` closing an `if (...)` or like: a statement follows (so may a regex). */
  ControlClose,
  /** `}`, `++`, `--` or a contextual word: a `/` cannot be told apart. */
  Unsure,
}

interface Group {
  readonly open: string;
  /** For `(`: the name before it when that could be a method's name. */
  readonly method: string;
  /** Index in `idents` where this group started (parameter lists: every name in it is declared). */
  readonly firstIdent: number;
  readonly control: boolean;
  readonly isCatch: boolean;
  /** `{`/`[` right after let/const/var: a destructuring pattern, all names in it declared. */
  readonly pattern: boolean;
}

const isIdentStart = (c: number) => (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || c === 95 || c === 36; // a-z A-Z _ $
const isIdentPart = (c: number) => isIdentStart(c) || (c >= 48 && c <= 57);
const isDigit = (c: number) => c >= 48 && c <= 57;
const isSpace = (c: number) => c === 32 || c === 10 || c === 13 || c === 9 || c === 11 || c === 12;

/** Scans a function's or class's source (`fn.toString()`); undefined when it cannot read it for sure. */
export function scanSource(source: string): ScannedFacts | undefined {
  if (source.includes('<!--') || source.includes('-->')) return undefined; // HTML-like comments
  const n = source.length;
  const code = (k: number) => source.charCodeAt(k);
  /** Index of the next character that is not space or comment, from `k`. */
  const skipGap = (k: number): number => {
    while (k < n) {
      const c = code(k);
      if (isSpace(c)) k++;
      else if (c === 47 && code(k + 1) === 47) {
        const end = source.indexOf('\n', k);
        k = end === -1 ? n : end + 1;
      } else if (c === 47 && code(k + 1) === 42) {
        const end = source.indexOf('*/', k + 2);
        k = end === -1 ? n : end + 2;
      } else break;
    }
    return k;
  };
  const identEnd = (k: number): number => {
    while (k < n && isIdentPart(code(k))) k++;
    return k;
  };

  const order: string[] = [];
  const whole = new Set<string>();
  const memberUses = new Map<string, Set<string>>();
  const declared = new Set<string>();
  /** Names met in order (for parameter lists and patterns: the names inside a group). */
  const idents: string[] = [];
  const groups: Group[] = [];
  /** Depths (`groups.length`) of `case` clauses whose `:` has not come yet. */
  const cases: number[] = [];
  let prev = Prev.Operator;
  /** The previous token when it was punctuation (`{`, `,`, `.`...), else ''. */
  let prevPunct = ';';
  /** The previous token when it was a word (keyword or name), else ''. */
  let prevWord = '';
  /** A declaration list (let/const/var) is open at this depth: names after its commas are declared. */
  let declaringAt = -1;
  /** The name just read could be a method's (a body after its parameters makes it a declaration). */
  let maybeMethod = '';
  /** The next name is a label (after `break` or `continue` on the same line). */
  let labelNext = false;

  const use = (name: string, next: number) => {
    if (!whole.has(name) && !memberUses.has(name)) order.push(name);
    // `name.prop` or `name?.prop` (not `?.5`, not `name.#private`): a member read.
    let k = next;
    if (code(k) === 63 && code(k + 1) === 46 && !isDigit(code(k + 2))) k += 2;
    else if (code(k) === 46 && code(k + 1) !== 46) k += 1;
    else k = -1;
    if (k !== -1) {
      const start = skipGap(k);
      if (isIdentStart(code(start))) {
        const prop = source.slice(start, identEnd(start));
        let props = memberUses.get(name);
        if (props === undefined) {
          props = new Set();
          memberUses.set(name, props);
        }
        props.add(prop);
        return;
      }
    }
    whole.add(name);
  };

  let i = 0;
  while (i < n) {
    const c = code(i);
    if (isSpace(c)) {
      i++;
      continue;
    }
    if (c > 127 || c === 92) return undefined; // non-ASCII names or escapes: the parse reads them
    if (c === 47) {
      const d = code(i + 1);
      if (d === 47 || d === 42) {
        i = skipGap(i);
        continue;
      }
      if (prev === Prev.Value) {
        i += d === 61 ? 2 : 1; // `/` or `/=`
        prev = Prev.Operator;
        prevPunct = '/';
        prevWord = '';
        continue;
      }
      if (prev === Prev.Unsure) return undefined;
      // A regular expression: its text is not code.
      i++;
      let inClass = false;
      for (;;) {
        if (i >= n) return undefined;
        const r = code(i);
        if (r === 10 || r === 13) return undefined;
        if (r === 92) i += 2;
        else {
          if (r === 91) inClass = true;
          else if (r === 93) inClass = false;
          else if (r === 47 && !inClass) break;
          i++;
        }
      }
      i = identEnd(i + 1); // flags
      prev = Prev.Value;
      prevPunct = prevWord = '';
      continue;
    }
    if (c === 34 || c === 39) {
      i++;
      while (i < n && code(i) !== c) i += code(i) === 92 ? 2 : 1;
      if (i >= n) return undefined;
      i++;
      prev = Prev.Value;
      prevPunct = prevWord = '';
      continue;
    }
    if (c === 96 || (c === 125 && groups.at(-1)?.open === '${')) {
      // A template's text, up to its end or its next `${`.
      if (c === 125) groups.pop();
      i++;
      for (;;) {
        if (i >= n) return undefined;
        const t = code(i);
        if (t === 92) i += 2;
        else if (t === 96) {
          i++;
          prev = Prev.Value;
          prevPunct = prevWord = '';
          break;
        } else if (t === 36 && code(i + 1) === 123) {
          i += 2;
          groups.push({
            open: '${',
            method: '',
            firstIdent: idents.length,
            control: false,
            isCatch: false,
            pattern: false,
          });
          prev = Prev.Operator;
          prevPunct = '${';
          prevWord = '';
          break;
        } else i++;
      }
      continue;
    }
    if (isDigit(c) || (c === 46 && isDigit(code(i + 1)))) {
      while (i < n && (isIdentPart(code(i)) || code(i) === 46)) i++;
      prev = Prev.Value;
      prevPunct = prevWord = '';
      continue;
    }
    if (c === 35) {
      // `#name`: a private member, never a variable.
      i = identEnd(i + 1);
      prev = Prev.Value;
      prevPunct = prevWord = '';
      continue;
    }
    if (isIdentStart(c)) {
      const end = identEnd(i);
      const word = source.slice(i, end);
      const next = skipGap(end);
      const afterDot = prevPunct === '.' || prevPunct === '?.';
      if (afterDot) {
        prev = Prev.Value; // a property name, keywords included
      } else if (RESERVED.has(word)) {
        if (word === 'case') cases.push(groups.length);
        // `break name` on one line names a label (on the next line, `name` starts a statement).
        if ((word === 'break' || word === 'continue') && isIdentStart(code(next)))
          labelNext = !source.slice(end, next).includes('\n');
        if (word === 'let' || word === 'const' || word === 'var') declaringAt = groups.length;
        // After `this` or a literal a `/` divides; after any other keyword an expression or a statement
        // follows (`return /re/`, `else /re/`).
        prev = VALUE_WORDS.has(word) ? Prev.Value : Prev.Operator;
      } else if (
        CONTEXTUAL.has(word) &&
        isIdentStart(code(next)) &&
        !source.slice(end, next).includes('\n')
      ) {
        // `await x`, `async function`, `get name()`, `x of xs`: a keyword here (as a variable, a name
        // right after it on the same line would be a syntax error).
        prev = Prev.Operator;
      } else if (labelNext) {
        prev = Prev.Value; // `break outer`: a label, not a variable
      } else {
        const isKey =
          (prevPunct === '{' || prevPunct === ',') && code(next) === 58 && cases.at(-1) !== groups.length;
        if (!isKey) {
          idents.push(word);
          const group = groups.at(-1);
          if (
            DECLARES.has(prevWord) ||
            (prevPunct === ',' && declaringAt === groups.length) ||
            group?.pattern === true ||
            (code(next) === 61 && code(next + 1) === 62) // `name =>`
          )
            declared.add(word);
          use(word, next);
          // `async (x) => ...`, `await (x)`: more likely the keyword than a call; the parse decides if it matters.
          if (CONTEXTUAL.has(word) && (code(next) === 40 || code(next) === 91)) declared.add(word);
          // Perhaps a method's name (`{ name(a) {`, `} static name(a) {`): declared if a body follows.
          if (
            prevPunct === '{' ||
            prevPunct === '}' ||
            prevPunct === ';' ||
            prevPunct === ',' ||
            prevPunct === '*' ||
            MODIFIERS.has(prevWord)
          )
            maybeMethod = word;
          // Perhaps a class field (`{ name = 1;`, `; count;`): the parse decides if it matters.
          if (
            maybeMethod === word &&
            prevPunct !== '*' &&
            (code(next) === 59 || (code(next) === 61 && code(next + 1) !== 61 && code(next + 1) !== 62))
          )
            declared.add(word);
        }
        prev = AMBIGUOUS_BEFORE_SLASH.has(word) ? Prev.Unsure : Prev.Value;
      }
      if (!RESERVED.has(word)) labelNext = false;
      prevWord = afterDot ? '' : word;
      prevPunct = '';
      i = end;
      continue;
    }
    // Punctuation.
    const p = c === 46 && code(i + 1) === 46 && code(i + 2) === 46 ? '...' : String.fromCharCode(c);
    if (p === '(' || p === '[' || p === '{') {
      const words = prevWord;
      groups.push({
        open: p,
        method: p === '(' && words !== '' && words === maybeMethod ? words : '',
        firstIdent: idents.length,
        control: p === '(' && CONTROL.has(words),
        isCatch: p === '(' && words === 'catch',
        pattern:
          (p === '{' || p === '[') &&
          (words === 'let' || words === 'const' || words === 'var' || groups.at(-1)?.pattern === true),
      });
      prev = Prev.Operator;
      prevPunct = p;
      prevWord = '';
      i++;
      continue;
    }
    if (p === ')' || p === ']' || p === '}') {
      const group = groups.pop();
      if (group === undefined) return undefined;
      if (group.pattern && declaringAt > groups.length) declaringAt = -1;
      if (declaringAt > groups.length) declaringAt = -1;
      const next = skipGap(i + 1);
      if (p === ')') {
        // A parameter list (before `=>` or a method's `{`) or a catch binding: its names are declared.
        const arrow = code(next) === 61 && code(next + 1) === 62;
        const body = code(next) === 123 && !group.control;
        if (arrow || body || group.isCatch)
          for (let k = group.firstIdent; k < idents.length; k++) declared.add(idents[k] as string);
        if (body && group.method !== '') declared.add(group.method);
        prev = group.control ? Prev.ControlClose : Prev.Value;
      } else prev = p === ']' ? Prev.Value : Prev.Unsure;
      prevPunct = p;
      prevWord = '';
      i++;
      continue;
    }
    if (p === '...') {
      prev = Prev.Operator;
      prevPunct = p;
      prevWord = '';
      i += 3;
      continue;
    }
    if (c === 63 && code(i + 1) === 46 && !isDigit(code(i + 2))) {
      prev = Prev.Operator;
      prevPunct = '?.';
      prevWord = '';
      i += 2;
      continue;
    }
    if ((c === 43 || c === 45) && code(i + 1) === c) {
      prev = Prev.Unsure; // `a++ / b` divides, `++/re/.lastIndex` would not: rare enough to give up on
      prevPunct = p + p;
      prevWord = '';
      i += 2;
      continue;
    }
    if (p === '*' && prevWord === 'function') {
      i++; // `function* name`: the name is still declared
      continue;
    }
    if (p === ':' && cases.at(-1) === groups.length) cases.pop();
    if (p === ';' && declaringAt === groups.length) declaringAt = -1;
    prev = Prev.Operator;
    prevPunct = p;
    prevWord = '';
    i++;
  }
  if (groups.length > 0) return undefined;
  const members: Record<string, readonly string[]> = {};
  for (const [name, props] of memberUses) if (!whole.has(name)) members[name] = [...props];
  return { free: order, members, declared: [...declared] };
}
