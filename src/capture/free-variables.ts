/**
 * Which variables a function's code uses that it does not declare itself: those are what it captured
 * (or globals). Read from its source with acorn, since V8's scopes list every binding a function could
 * see, not the ones it uses.
 */
import { parse } from 'acorn';

/** What the source of a function says about it, for sending it by value. */
export interface CodeFacts {
  /** `expression`: `(source)` is an expression; `method`: `({ source })` is an object with one method. */
  readonly form: 'expression' | 'method';
  /** Names the code uses and does not declare, in order of first use. */
  readonly free: readonly string[];
  /** `this`, `arguments` or `new.target` of an enclosing function (used in an arrow function at top level). */
  readonly outerThis?: 'this' | 'arguments' | 'new.target';
  /** `super` outside a class of its own (an object or class method's `super`, bound to its home object). */
  readonly usesSuper: boolean;
  /** Whether the source starts its body with a "use strict" directive. */
  readonly strictBody: boolean;
  /**
   * Free names the code uses only as `name.property` (a module object, a namespace): the properties it
   * reads. A name also used otherwise is not here.
   */
  readonly members: Readonly<Record<string, readonly string[]>>;
}

interface Node {
  type: string;
  [key: string]: unknown;
}

interface Scope {
  readonly parent: Scope | undefined;
  readonly names: Set<string>;
}

/** Parses a function's source (`fn.toString()`); undefined when acorn cannot read it. */
export function analyzeSource(source: string): CodeFacts | undefined {
  const parsed = parseFunction(source);
  return parsed ? factsOf(parsed.node, parsed.form) : undefined;
}

const PARSE_OPTIONS = { ecmaVersion: 'latest', sourceType: 'script', allowHashBang: false } as const;
const EXPRESSION_FORMS = /^(ArrowFunctionExpression|FunctionExpression|ClassExpression)$/;

function factsOf(root: Node, form: CodeFacts['form']): CodeFacts {
  const walker = new Walker();
  walker.visitRoot(root);
  const body = (root.type === 'Property' ? (root.value as Node) : root).body as Node | undefined;
  const first = (body?.type === 'BlockStatement' ? (body.body as Node[])[0] : undefined) as Node | undefined;
  const strictBody = first?.type === 'ExpressionStatement' && first.directive === 'use strict';
  return {
    form,
    free: [...walker.free],
    ...(walker.outerThis ? { outerThis: walker.outerThis } : {}),
    usesSuper: walker.usesSuper,
    strictBody,
    members: walker.members(),
  };
}

function parseFunction(source: string): { node: Node; form: CodeFacts['form'] } | undefined {
  const options = PARSE_OPTIONS;
  try {
    const program = parse(`(${source}\n)`, options) as unknown as Node;
    const statement = (program.body as Node[])[0];
    if ((program.body as Node[]).length === 1 && statement?.type === 'ExpressionStatement') {
      const expression = statement.expression as Node;
      if (EXPRESSION_FORMS.test(expression.type)) return { node: expression, form: 'expression' };
    }
  } catch {
    // Not an expression: an object or class method (`name(x) { ... }`).
  }
  try {
    const program = parse(`({${source}\n})`, options) as unknown as Node;
    const object = ((program.body as Node[])[0] as Node).expression as Node;
    const property = (object.properties as Node[])[0];
    if ((object.properties as Node[]).length === 1 && property?.type === 'Property')
      return { node: property, form: 'method' };
  } catch {
    // Not a method either.
  }
  return undefined;
}

/** Names a declaration pattern binds (`{ a, b: [c, ...d] = [] }` binds a, c, d). */
function patternNames(pattern: Node | null | undefined, into: string[] = []): string[] {
  if (!pattern) return into;
  switch (pattern.type) {
    case 'Identifier':
      into.push(pattern.name as string);
      break;
    case 'ObjectPattern':
      for (const property of pattern.properties as Node[])
        patternNames(
          property.type === 'RestElement' ? (property.argument as Node) : (property.value as Node),
          into,
        );
      break;
    case 'ArrayPattern':
      for (const element of pattern.elements as (Node | null)[]) patternNames(element, into);
      break;
    case 'RestElement':
      patternNames(pattern.argument as Node, into);
      break;
    case 'AssignmentPattern':
      patternNames(pattern.left as Node, into);
      break;
  }
  return into;
}

/** `var` declarations and function declarations anywhere in a function body, not in nested functions. */
function hoisted(node: Node | null | undefined, into: Set<string>): void {
  if (!node || typeof node !== 'object') return;
  switch (node.type) {
    case 'FunctionDeclaration':
      if (node.id) into.add((node.id as Node).name as string);
      return;
    case 'FunctionExpression':
    case 'ArrowFunctionExpression':
    case 'ClassDeclaration':
    case 'ClassExpression':
      return;
    case 'VariableDeclaration':
      if (node.kind === 'var')
        for (const d of node.declarations as Node[]) for (const n of patternNames(d.id as Node)) into.add(n);
      break;
  }
  for (const key of Object.keys(node)) {
    const child = node[key];
    if (Array.isArray(child)) for (const c of child) hoisted(c as Node, into);
    else if (child && typeof child === 'object' && typeof (child as Node).type === 'string')
      hoisted(child as Node, into);
  }
}

/** Block-scoped declarations made directly in a list of statements. */
function lexical(statements: readonly Node[], into: Set<string>): void {
  for (const statement of statements) {
    if (statement.type === 'VariableDeclaration' && statement.kind !== 'var') {
      for (const d of statement.declarations as Node[])
        for (const n of patternNames(d.id as Node)) into.add(n);
    } else if (
      (statement.type === 'ClassDeclaration' || statement.type === 'FunctionDeclaration') &&
      statement.id
    ) {
      into.add((statement.id as Node).name as string);
    }
  }
}

const SKIPPED_KEYS = new Set(['type', 'start', 'end', 'loc', 'range']);

class Walker {
  readonly free = new Set<string>();
  outerThis: CodeFacts['outerThis'];
  usesSuper = false;
  private readonly memberUses = new Map<string, Set<string>>();
  private readonly wholeUses = new Set<string>();

  members(): Record<string, string[]> {
    const out: Record<string, string[]> = {};
    for (const [name, props] of this.memberUses) if (!this.wholeUses.has(name)) out[name] = [...props];
    return out;
  }

  private isFree(name: string, scope: Scope): boolean {
    for (let s: Scope | undefined = scope; s; s = s.parent) if (s.names.has(name)) return false;
    return name !== 'arguments';
  }

  visitRoot(root: Node): void {
    const top: Scope = { parent: undefined, names: new Set() };
    if (root.type === 'Property') {
      // A method: its key is not a reference unless computed, and its `super` is its home object's.
      if (root.computed) this.visit(root.key as Node, top, { thisBound: false, inClass: false });
      this.visitFunction(root.value as Node, top, { thisBound: true, inClass: false });
    } else this.visit(root, top, { thisBound: false, inClass: false });
  }

  private reference(name: string, scope: Scope): void {
    for (let s: Scope | undefined = scope; s; s = s.parent) if (s.names.has(name)) return;
    // Every non-arrow function declares its own `arguments`: one not found is an enclosing function's.
    if (name === 'arguments') this.outerThis ??= 'arguments';
    else {
      this.free.add(name);
      this.wholeUses.add(name);
    }
  }

  private visitFunction(node: Node, outer: Scope, context: Context): void {
    const names = new Set<string>();
    const arrow = node.type === 'ArrowFunctionExpression';
    if (node.type === 'FunctionExpression' && node.id) names.add((node.id as Node).name as string);
    if (!arrow) names.add('arguments');
    for (const param of node.params as Node[]) for (const n of patternNames(param)) names.add(n);
    const body = node.body as Node;
    if (body.type === 'BlockStatement') {
      hoisted(body, names);
      lexical(body.body as Node[], names);
    }
    const scope: Scope = { parent: outer, names };
    const inner: Context = arrow ? context : { thisBound: true, inClass: context.inClass };
    for (const param of node.params as Node[]) this.visitPattern(param, scope, inner);
    if (body.type === 'BlockStatement') for (const s of body.body as Node[]) this.visit(s, scope, inner);
    else this.visit(body, scope, inner);
  }

  private visitClass(node: Node, outer: Scope, context: Context): void {
    if (node.superClass) this.visit(node.superClass as Node, outer, context);
    const names = new Set<string>();
    if (node.id) names.add((node.id as Node).name as string);
    const scope: Scope = { parent: outer, names };
    const inner: Context = { thisBound: true, inClass: true };
    for (const member of (node.body as Node).body as Node[]) {
      if (member.computed) this.visit(member.key as Node, scope, context);
      if (member.type === 'MethodDefinition') this.visitFunction(member.value as Node, scope, inner);
      else if (member.type === 'PropertyDefinition' && member.value)
        this.visit(member.value as Node, scope, inner);
      else if (member.type === 'StaticBlock') this.visitBlock(member.body as Node[], scope, inner);
    }
  }

  private visitBlock(statements: Node[], outer: Scope, context: Context): void {
    const names = new Set<string>();
    lexical(statements, names);
    const scope: Scope = { parent: outer, names };
    for (const s of statements) this.visit(s, scope, context);
  }

  /** The expressions inside a binding pattern (defaults, computed keys); its names are declared elsewhere. */
  private visitPattern(pattern: Node | null, scope: Scope, context: Context): void {
    if (!pattern) return;
    switch (pattern.type) {
      case 'ObjectPattern':
        for (const property of pattern.properties as Node[]) {
          if (property.type === 'RestElement') this.visitPattern(property.argument as Node, scope, context);
          else {
            if (property.computed) this.visit(property.key as Node, scope, context);
            this.visitPattern(property.value as Node, scope, context);
          }
        }
        break;
      case 'ArrayPattern':
        for (const element of pattern.elements as (Node | null)[]) this.visitPattern(element, scope, context);
        break;
      case 'RestElement':
        this.visitPattern(pattern.argument as Node, scope, context);
        break;
      case 'AssignmentPattern':
        this.visitPattern(pattern.left as Node, scope, context);
        this.visit(pattern.right as Node, scope, context);
        break;
      case 'MemberExpression':
        this.visit(pattern, scope, context);
        break;
    }
  }

  private visit(node: Node | null | undefined, scope: Scope, context: Context): void {
    if (!node || typeof node !== 'object') return;
    switch (node.type) {
      case 'Identifier':
        this.reference(node.name as string, scope);
        return;
      case 'ThisExpression':
        if (!context.thisBound) this.outerThis ??= 'this';
        return;
      case 'Super':
        if (!context.inClass) this.usesSuper = true;
        return;
      case 'MetaProperty':
        if ((node.meta as Node).name === 'new' && !context.thisBound) this.outerThis ??= 'new.target';
        return;
      case 'MemberExpression': {
        const object = node.object as Node;
        const property = node.property as Node;
        if (
          object.type === 'Identifier' &&
          !node.computed &&
          property.type === 'Identifier' &&
          this.isFree(object.name as string, scope)
        ) {
          const name = object.name as string;
          this.free.add(name);
          let props = this.memberUses.get(name);
          if (!props) {
            props = new Set();
            this.memberUses.set(name, props);
          }
          props.add(property.name as string);
          return;
        }
        this.visit(node.object as Node, scope, context);
        if (node.computed) this.visit(node.property as Node, scope, context);
        return;
      }
      case 'Property':
        if (node.computed) this.visit(node.key as Node, scope, context);
        // An object literal's methods have that object as their `super`.
        if (node.method || node.kind !== 'init')
          this.visitFunction(node.value as Node, scope, { thisBound: true, inClass: true });
        else this.visit(node.value as Node, scope, context);
        return;
      case 'LabeledStatement':
        this.visit(node.body as Node, scope, context);
        return;
      case 'BreakStatement':
      case 'ContinueStatement':
        return;
      case 'FunctionDeclaration':
      case 'FunctionExpression':
      case 'ArrowFunctionExpression':
        this.visitFunction(node, scope, context);
        return;
      case 'ClassDeclaration':
      case 'ClassExpression':
        this.visitClass(node, scope, context);
        return;
      case 'VariableDeclaration':
        for (const d of node.declarations as Node[]) {
          this.visitPattern(d.id as Node, scope, context);
          this.visit(d.init as Node, scope, context);
        }
        return;
      case 'BlockStatement':
      case 'StaticBlock':
        this.visitBlock(node.body as Node[], scope, context);
        return;
      case 'ForStatement':
      case 'ForInStatement':
      case 'ForOfStatement': {
        const head = (node.type === 'ForStatement' ? node.init : node.left) as Node | null;
        const names = new Set<string>();
        if (head?.type === 'VariableDeclaration' && head.kind !== 'var')
          for (const d of head.declarations as Node[])
            for (const n of patternNames(d.id as Node)) names.add(n);
        const inner: Scope = { parent: scope, names };
        for (const key of ['init', 'left', 'right', 'test', 'update', 'body'])
          this.visit(node[key] as Node, inner, context);
        return;
      }
      case 'CatchClause': {
        const names = new Set(patternNames(node.param as Node));
        const inner: Scope = { parent: scope, names };
        this.visitPattern(node.param as Node, inner, context);
        this.visit(node.body as Node, inner, context);
        return;
      }
      case 'SwitchStatement': {
        this.visit(node.discriminant as Node, scope, context);
        const statements = (node.cases as Node[]).flatMap((c) => c.consequent as Node[]);
        const names = new Set<string>();
        lexical(statements, names);
        const inner: Scope = { parent: scope, names };
        for (const c of node.cases as Node[]) {
          this.visit(c.test as Node, inner, context);
          for (const s of c.consequent as Node[]) this.visit(s, inner, context);
        }
        return;
      }
    }
    for (const key of Object.keys(node)) {
      if (SKIPPED_KEYS.has(key)) continue;
      const child = node[key];
      if (Array.isArray(child)) for (const c of child) this.visit(c as Node, scope, context);
      else if (child && typeof child === 'object' && typeof (child as Node).type === 'string')
        this.visit(child as Node, scope, context);
    }
  }
}

interface Context {
  /** Inside a non-arrow function (or class member): `this` is its own. */
  readonly thisBound: boolean;
  /** Inside a class body: `super` is that class's. */
  readonly inClass: boolean;
}
