/**
 * The names a function's source uses, read from its tokens instead of a parse: what a deep code key
 * needs (`deep-code.ts`), at a fraction of acorn's cost in a process where acorn has not run yet (the
 * first keying: acorn needs 10–20 ms to warm up). The tokens come from one sticky regular expression
 * (V8 runs it as native code from the first call, where a loop over characters would run interpreted),
 * then one pass over them with a token of lookahead.
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

enum Kind {
  Name,
  /** A number, string, regular expression, whole template or private `#name`: a value, no name in it. */
  Value,
  Punct,
  /** The text of a template up to a `${`: opens a group. */
  TemplateOpen,
  /** The `}` that ends a template's `${`. */
  TemplateClose,
}

/**
 * One token and the space before it: (1) the space and comments, then (2) a name, (3) a number, (4) a
 * string, or (5) punctuation (the operators the analysis needs whole, else one character).
 */
const TOKEN =
  /((?:\s+|\/\/[^\n]*|\/\*[\s\S]*?\*\/)*)(?:([A-Za-z_$][\w$]*)|([0-9][\w.]*|\.[0-9][\w.]*)|("(?:[^"\\\n]|\\[\s\S])*"|'(?:[^'\\\n]|\\[\s\S])*')|(\.\.\.|\?\.(?![0-9])|=>|[=!]==?|\+\+|--|\S))/y;
/** What may follow the last token: space and comments only. */
const TRAILER = /(?:\s+|\/\/[^\n]*|\/\*[\s\S]*?\*\/)*$/y;
/** A template's text from where it starts or resumes, up to its end or its next `${`. */
const TEMPLATE_TEXT = /(?:[^`\\$]|\\[\s\S]|\$(?!\{))*(`|\$\{)/y;
/** A regular expression's body after its `/`, its closing `/` and flags. */
const REGEX_BODY = /(?:[^\\/[\n\r]|\\[^\n\r]|\[(?:[^\]\\\n\r]|\\[^\n\r])*\])+\/[A-Za-z]*/y;
const NAME = /[A-Za-z_$][\w$]*/y;

interface Tokens {
  readonly kinds: Kind[];
  readonly texts: string[];
  /** Whether a line break comes before the token. */
  readonly breakBefore: boolean[];
}

/** The tokens of a source; undefined where code and text cannot be told apart for sure. */
function tokenize(source: string): Tokens | undefined {
  const kinds: Kind[] = [];
  const texts: string[] = [];
  const breakBefore: boolean[] = [];
  /** Open brackets: for `(`, whether a control keyword came before it; `${` for a template's. */
  const open: string[] = [];
  let prev = Prev.Operator;
  let at = 0;
  const push = (kind: Kind, text: string, lineBreak: boolean) => {
    kinds.push(kind);
    texts.push(text);
    breakBefore.push(lineBreak);
  };
  /** A value token whose rest `pattern` matches at `at` (a regex's body, a private name's); false if none. */
  const value = (pattern: RegExp, lineBreak: boolean): boolean => {
    pattern.lastIndex = at;
    if (!pattern.test(source)) return false;
    at = pattern.lastIndex;
    push(Kind.Value, '', lineBreak);
    prev = Prev.Value;
    return true;
  };
  /** Reads a template's text from `from`; false where it does not end. */
  const template = (from: number, lineBreak: boolean): boolean => {
    TEMPLATE_TEXT.lastIndex = from;
    const m = TEMPLATE_TEXT.exec(source);
    if (m === null) return false;
    at = TEMPLATE_TEXT.lastIndex;
    if (m[1] === '`') {
      push(Kind.Value, '`', lineBreak);
      prev = Prev.Value;
    } else {
      push(Kind.TemplateOpen, '${', lineBreak);
      open.push('${');
      prev = Prev.Operator;
    }
    return true;
  };
  while (at < source.length) {
    TOKEN.lastIndex = at;
    const m = TOKEN.exec(source);
    if (m === null) {
      TRAILER.lastIndex = at;
      return TRAILER.test(source) ? { kinds, texts, breakBefore } : undefined;
    }
    at = TOKEN.lastIndex;
    const lineBreak = (m[1] ?? '').includes('\n');
    const name = m[2];
    if (name !== undefined) {
      push(Kind.Name, name, lineBreak);
      prev = VALUE_WORDS.has(name)
        ? Prev.Value
        : RESERVED.has(name)
          ? Prev.Operator
          : AMBIGUOUS_BEFORE_SLASH.has(name)
            ? Prev.Unsure
            : Prev.Value;
      continue;
    }
    if (m[3] !== undefined || m[4] !== undefined) {
      push(Kind.Value, '', lineBreak);
      prev = Prev.Value;
      continue;
    }
    const p = m[5] as string;
    switch (p) {
      case '`':
        if (!template(at, lineBreak)) return undefined;
        continue;
      case '/':
        if (prev === Prev.Value) break; // division
        if (prev === Prev.Unsure || !value(REGEX_BODY, lineBreak)) return undefined;
        continue;
      case '#':
        // `#name`: a private member, never a variable.
        if (!value(NAME, lineBreak)) return undefined;
        continue;
      case '(':
        open.push(CONTROL.has(texts.at(-1) ?? '') && kinds.at(-1) === Kind.Name ? 'control(' : '(');
        break;
      case '[':
      case '{':
        open.push(p);
        break;
      case ')':
      case ']':
      case '}': {
        const opened = open.pop();
        if (opened === undefined) return undefined;
        if (opened === '${') {
          if (p !== '}') return undefined;
          push(Kind.TemplateClose, '}', lineBreak);
          if (!template(at, false)) return undefined;
          continue;
        }
        push(Kind.Punct, p, lineBreak);
        prev = p === '}' ? Prev.Unsure : opened === 'control(' ? Prev.ControlClose : Prev.Value;
        continue;
      }
      case '"':
      case "'":
      case '\\':
      case '@':
        return undefined; // an unterminated string, an escape in a name, a decorator
    }
    if (p.charCodeAt(0) > 127) return undefined; // a non-ASCII name: the parse reads it
    if (p === '/' && (source[at] === '*' || source[at] === '/')) return undefined; // an unclosed comment
    push(Kind.Punct, p, lineBreak);
    // `a++ / b` divides, `++/re/.lastIndex` would not: rare enough to give up on.
    prev = p === '++' || p === '--' ? Prev.Unsure : Prev.Operator;
  }
  return open.length === 0 ? { kinds, texts, breakBefore } : undefined;
}

interface Group {
  readonly open: string;
  /** For `(`: the name before it when that could be a method's name. */
  readonly method: string;
  /** Index in `idents` where this group started (parameter lists: every name in it is declared). */
  readonly firstIdent: number;
  readonly control: boolean;
  readonly isCatch: boolean;
  /** `{`/`[` right after let/const/var (or inside such a pattern): all names in it declared. */
  readonly pattern: boolean;
}

/** Scans a function's or class's source (`fn.toString()`); undefined when it cannot read it for sure. */
export function scanSource(source: string): ScannedFacts | undefined {
  if (source.includes('<!--') || source.includes('-->')) return undefined; // HTML-like comments
  const tokens = tokenize(source);
  if (tokens === undefined) return undefined;
  const { kinds, texts, breakBefore } = tokens;
  const count = kinds.length;
  const punctAt = (k: number) => (k < count && kinds[k] === Kind.Punct ? (texts[k] as string) : '');

  const order: string[] = [];
  const whole = new Set<string>();
  const memberUses = new Map<string, Set<string>>();
  const declared = new Set<string>();
  /** Names met in order (for parameter lists and patterns: the names inside a group). */
  const idents: string[] = [];
  const groups: Group[] = [];
  /** Depths (`groups.length`) of `case` clauses whose `:` has not come yet. */
  const cases: number[] = [];
  /** The previous token when it was punctuation (`{`, `,`, `.`...), else ''; `;` at the start. */
  let prevPunct = ';';
  /** The previous token when it was a word (keyword or name), else ''. */
  let prevWord = '';
  /** A declaration list (let/const/var) is open at this depth: names after its commas are declared. */
  let declaringAt = -1;
  /** The name just read could be a method's (a body after its parameters makes it a declaration). */
  let maybeMethod = '';
  /** The next name is a label (after `break` or `continue` on the same line). */
  let labelNext = false;

  const use = (name: string, k: number) => {
    if (!whole.has(name) && !memberUses.has(name)) order.push(name);
    // `name.prop` or `name?.prop` (not `name.#private`, not `name?.[k]`): a member read.
    const dot = punctAt(k + 1);
    if ((dot === '.' || dot === '?.') && kinds[k + 2] === Kind.Name) {
      let props = memberUses.get(name);
      if (props === undefined) {
        props = new Set();
        memberUses.set(name, props);
      }
      props.add(texts[k + 2] as string);
      return;
    }
    whole.add(name);
  };

  for (let k = 0; k < count; k++) {
    const kind = kinds[k];
    const text = texts[k] as string;
    if (kind === Kind.Name) {
      const afterDot = prevPunct === '.' || prevPunct === '?.';
      const next = punctAt(k + 1);
      const nameNext = kinds[k + 1] === Kind.Name && !breakBefore[k + 1];
      if (afterDot) {
        // a property name, keywords included
      } else if (RESERVED.has(text)) {
        if (text === 'case') cases.push(groups.length);
        if (text === 'let' || text === 'const' || text === 'var') declaringAt = groups.length;
        // `break name` on one line names a label (on the next line, `name` starts a statement).
        if (text === 'break' || text === 'continue') labelNext = nameNext;
      } else if (CONTEXTUAL.has(text) && nameNext) {
        // `await x`, `async function`, `get name()`, `x of xs`: a keyword here (as a variable, a name
        // right after it on the same line would be a syntax error).
      } else if (labelNext) {
        // `break outer`: a label, not a variable
      } else {
        const isKey =
          (prevPunct === '{' || prevPunct === ',') && next === ':' && cases.at(-1) !== groups.length;
        if (!isKey) {
          idents.push(text);
          if (
            DECLARES.has(prevWord) ||
            (prevPunct === ',' && declaringAt === groups.length) ||
            groups.at(-1)?.pattern === true ||
            next === '=>'
          )
            declared.add(text);
          use(text, k);
          // `async (x) => ...`, `await (x)`: more likely the keyword than a call; the parse decides if it matters.
          if (CONTEXTUAL.has(text) && (next === '(' || next === '[')) declared.add(text);
          // Perhaps a method's name (`{ name(a) {`, `} static name(a) {`): declared if a body follows.
          if (
            prevPunct === '{' ||
            prevPunct === '}' ||
            prevPunct === ';' ||
            prevPunct === ',' ||
            prevPunct === '*' ||
            MODIFIERS.has(prevWord)
          )
            maybeMethod = text;
          // Perhaps a class field (`{ name = 1;`, `; count;`): the parse decides if it matters.
          if (maybeMethod === text && prevPunct !== '*' && (next === ';' || next === '=')) declared.add(text);
        }
      }
      if (!RESERVED.has(text)) labelNext = false;
      prevWord = afterDot ? '' : text;
      prevPunct = '';
      continue;
    }
    if (kind === Kind.Value) {
      prevPunct = prevWord = '';
      continue;
    }
    if (kind === Kind.TemplateOpen) {
      groups.push({
        open: '${',
        method: '',
        firstIdent: idents.length,
        control: false,
        isCatch: false,
        pattern: false,
      });
      prevPunct = '${';
      prevWord = '';
      continue;
    }
    if (kind === Kind.TemplateClose) {
      groups.pop();
      prevPunct = prevWord = '';
      continue;
    }
    // Punctuation.
    if (text === '(' || text === '[' || text === '{') {
      const word = prevWord;
      groups.push({
        open: text,
        method: text === '(' && word !== '' && word === maybeMethod ? word : '',
        firstIdent: idents.length,
        control: text === '(' && CONTROL.has(word),
        isCatch: text === '(' && word === 'catch',
        pattern:
          (text === '{' || text === '[') &&
          (word === 'let' || word === 'const' || word === 'var' || groups.at(-1)?.pattern === true),
      });
    } else if (text === ')' || text === ']' || text === '}') {
      const group = groups.pop();
      if (group === undefined) return undefined;
      if (declaringAt > groups.length) declaringAt = -1;
      if (text === ')') {
        // A parameter list (before `=>` or a method's `{`) or a catch binding: its names are declared.
        const next = punctAt(k + 1);
        const body = next === '{' && !group.control;
        if (next === '=>' || body || group.isCatch)
          for (let j = group.firstIdent; j < idents.length; j++) declared.add(idents[j] as string);
        if (body && group.method !== '') declared.add(group.method);
      }
    } else if (text === '*' && prevWord === 'function') {
      continue; // `function* name`: the name is still declared
    } else if (text === ':' && cases.at(-1) === groups.length) cases.pop();
    else if (text === ';' && declaringAt === groups.length) declaringAt = -1;
    prevPunct = text;
    prevWord = '';
  }
  const members: Record<string, readonly string[]> = {};
  for (const [name, props] of memberUses) if (!whole.has(name)) members[name] = [...props];
  return { free: order, members, declared: [...declared] };
}
