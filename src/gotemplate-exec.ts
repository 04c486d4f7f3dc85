// The evaluator of Go's text/template (exec.go): walks a parsed tree over data and the function
// library, with Go's variable scoping, truth, printing, field and method lookup, range, break and
// continue, template invocation and error messages (positions, the node being executed). Workers
// load this module only; the tree comes from gotemplate-parse.ts in the main thread.
//
// Values: undefined is Go's invalid value (a missing map key, nil data) and null a nil interface
// (JSON null, a nil result); both print as <no value>, as in Go, where a pipeline unwraps the
// interface. Maps are plain objects or Map instances, structs are the plain objects govalue.ts
// recognises by shape (store pairs, SRV records) and class instances such as GoTime, whose
// capitalised methods templates call.
import { BUILTINS, T, type ArgType, type Builtin } from "./gotemplate-builtins.ts";
import {
  K,
  nodeString,
  sourcePosition,
  type ActionNode,
  type ArgNode,
  type BranchNode,
  type ChainNode,
  type CommandNode,
  type FieldNode,
  type GoTemplateTree,
  type IdentifierNode,
  type ListNode,
  type Node,
  type NumberNode,
  type PipeNode,
  type TemplateNode,
  type VariableNode,
} from "./gotemplate-node.ts";
import { FuncError } from "./funcs.ts";
import { formatValue, PrintDepthError } from "./gofmt.ts";
import { and, compareGoStrings, goKind, goTypeName, isTrue, or } from "./govalue.ts";
import { goQuote } from "./strconv.ts";

export type { GoTemplateTree } from "./gotemplate-node.ts";

/**
 * `template: <name>:<line>:<col>: executing "<template>" at <node>: <what>`, Go's ExecError text;
 * key is the store key a confd function failed on.
 */
export class GoTemplateExecError extends Error {
  constructor(
    message: string,
    readonly line: number,
    readonly column: number,
    readonly key?: string,
  ) {
    super(message);
    this.name = "GoTemplateExecError";
  }
}

type Func = (...args: unknown[]) => unknown;

export function executeGoTemplate(tree: GoTemplateTree, data: unknown, funcs: Readonly<Record<string, Func>>): string {
  const root = lookupTemplate(tree, tree.name);
  if (root === undefined) {
    throw new GoTemplateExecError(`template: ${tree.name}: ${goQuote(tree.name)} is an incomplete or empty template`, 0, 0);
  }
  const st = new State(tree, funcs, root);
  // Nil data is Go's invalid value: {{.}} prints <no value>.
  const dot = data === null ? undefined : data;
  push(st, "$", dot);
  try {
    walk(st, dot, root);
  } catch (err) {
    // Recursion the depth limit does not catch (deep nesting inside each call) ends the same way.
    if (err instanceof RangeError && /call stack/i.test(err.message)) fail(st, `exceeded maximum template depth (${MAX_EXEC_DEPTH})`);
    throw err;
  }
  return st.out;
}

/** Go allows 100000 nested template calls; a JavaScript stack holds fewer. */
const MAX_EXEC_DEPTH = 1000;

/** The final argument of a command when there is no previous command in the pipeline. */
const MISSING: unique symbol = Symbol("missing");

// Walk results: how a {{break}} or {{continue}} travels up to its range.
const NEXT = 0;
const BREAK = 1;
const CONTINUE = 2;
type Signal = typeof NEXT | typeof BREAK | typeof CONTINUE;

class State {
  out = "";
  /** The node being executed, for error messages (Go's s.at). */
  node: Node | ArgNode | CommandNode;
  /** The template being executed, by name. */
  name: string;
  depth = 0;
  // The variable stack as two parallel arrays; a template call starts a frame at base.
  readonly names: string[] = [];
  readonly values: unknown[] = [];
  top = 0;
  base = 0;

  constructor(
    readonly tree: GoTemplateTree,
    readonly funcs: Readonly<Record<string, Func>>,
    root: ListNode,
  ) {
    this.node = root;
    this.name = tree.name;
  }
}

function lookupTemplate(tree: GoTemplateTree, name: string): ListNode | undefined {
  return Object.hasOwn(tree.templates, name) ? tree.templates[name] : undefined;
}

function fail(st: State, what: string, key?: string): never {
  const { tree, node } = st;
  const { line, column } = sourcePosition(tree.text, node.pos);
  const message = `template: ${tree.name}:${line}:${column}: executing ${goQuote(st.name)} at <${nodeString(node)}>: ${what}`;
  throw new GoTemplateExecError(message, line, column, key);
}

// --- variables -----------------------------------------------------------------

function push(st: State, name: string, value: unknown): void {
  st.names[st.top] = name;
  st.values[st.top] = value;
  st.top++;
}

function varValue(st: State, name: string): unknown {
  for (let i = st.top - 1; i >= st.base; i--) if (st.names[i] === name) return st.values[i];
  fail(st, `undefined variable: ${name}`);
}

/** Assignment: overwrites the innermost variable of that name. */
function setVar(st: State, name: string, value: unknown): void {
  for (let i = st.top - 1; i >= st.base; i--) {
    if (st.names[i] === name) {
      st.values[i] = value;
      return;
    }
  }
  fail(st, `undefined variable: ${name}`);
}

// --- walking -------------------------------------------------------------------

function walk(st: State, dot: unknown, node: Node): Signal {
  st.node = node;
  switch (node.k) {
    case K.Text:
      st.out += node.text;
      return NEXT;
    case K.Action: {
      // Declared variables persist until the enclosing {{end}}; a declaration prints nothing.
      const value = evalPipeline(st, dot, node.pipe);
      if (node.pipe.decl.length === 0) printValue(st, node, value);
      return NEXT;
    }
    case K.List: {
      const nodes = node.nodes;
      for (let i = 0; i < nodes.length; i++) {
        const signal = walk(st, dot, nodes[i]!);
        if (signal !== NEXT) return signal;
      }
      return NEXT;
    }
    case K.If:
    case K.With:
      return walkIfOrWith(st, dot, node);
    case K.Range:
      return walkRange(st, dot, node);
    case K.Template:
      walkTemplate(st, dot, node);
      return NEXT;
    case K.Break:
      return BREAK;
    case K.Continue:
      return CONTINUE;
  }
}

function walkIfOrWith(st: State, dot: unknown, node: BranchNode): Signal {
  const mark = st.top;
  const value = evalPipeline(st, dot, node.pipe);
  let signal: Signal = NEXT;
  if (isTrue(value)) signal = walk(st, node.k === K.With ? value : dot, node.list);
  else if (node.elseList !== null) signal = walk(st, dot, node.elseList);
  st.top = mark;
  return signal;
}

function walkRange(st: State, dot: unknown, node: BranchNode): Signal {
  st.node = node;
  const mark = st.top;
  const value = evalPipeline(st, dot, node.pipe);
  // The body's variables are dropped after each iteration; the pipeline's stay until the end.
  const bodyMark = st.top;
  let ran = false;
  if (Array.isArray(value)) {
    ran = value.length > 0;
    for (let i = 0; i < value.length; i++) if (iterate(st, node, bodyMark, BigInt(i), value[i]) === BREAK) break;
  } else if (typeof value === "bigint") {
    // Go 1.22: range over an int counts from 0, with one variable only.
    // Go's messages here show the value; a value never appears in ours (see FuncError in funcs.ts).
    if (node.pipe.decl.length > 1) fail(st, `can't use ${goTypeName(value)} to iterate over more than one variable`);
    ran = value > 0n;
    for (let i = 0n; i < value; i++) if (iterate(st, node, bodyMark, undefined, i) === BREAK) break;
  } else if (value instanceof Map) {
    const keys = [...value.keys()].sort(compareKeys);
    ran = keys.length > 0;
    for (const key of keys) if (iterate(st, node, bodyMark, key, value.get(key)) === BREAK) break;
  } else if (isPlainObject(value) && goKind(value) === "map") {
    const map = value as Record<string, unknown>;
    const keys = Object.keys(map).sort(compareGoStrings);
    ran = keys.length > 0;
    for (const key of keys) if (iterate(st, node, bodyMark, key, map[key]) === BREAK) break;
  } else if (value !== undefined) {
    fail(st, `range can't iterate over ${goTypeName(value)}`);
  }
  let signal: Signal = NEXT;
  if (!ran && node.elseList !== null) {
    // As in Go, a {{break}} in the else list ends this range, a {{continue}} the enclosing one.
    signal = walk(st, dot, node.elseList) === CONTINUE ? CONTINUE : NEXT;
  }
  st.top = mark;
  return signal;
}

function iterate(st: State, node: BranchNode, bodyMark: number, index: unknown, elem: unknown): Signal {
  const { decl, isAssign } = node.pipe;
  if (decl.length > 0) {
    // With two variables, index comes first; with one, it gets the element.
    if (isAssign) setVar(st, decl[0]!.ident[0]!, decl.length > 1 ? index : elem);
    else st.values[st.top - 1] = elem;
  }
  if (decl.length > 1) {
    if (isAssign) setVar(st, decl[1]!.ident[0]!, elem);
    else st.values[st.top - 2] = index;
  }
  const signal = walk(st, elem, node.list);
  st.top = bodyMark;
  return signal;
}

function compareKeys(a: unknown, b: unknown): number {
  if (typeof a === "string" && typeof b === "string") return compareGoStrings(a, b);
  if ((typeof a === "number" && typeof b === "number") || (typeof a === "bigint" && typeof b === "bigint")) return a < b ? -1 : a > b ? 1 : 0;
  return compareGoStrings(formatValue(a), formatValue(b));
}

function walkTemplate(st: State, dot: unknown, node: TemplateNode): void {
  st.node = node;
  const tmpl = lookupTemplate(st.tree, node.name);
  if (tmpl === undefined) fail(st, `template ${goQuote(node.name)} not defined`);
  if (st.depth === MAX_EXEC_DEPTH) fail(st, `exceeded maximum template depth (${MAX_EXEC_DEPTH})`);
  // Variables declared by the pipeline stay in the caller's frame.
  const newDot = node.pipe === null ? undefined : evalPipeline(st, dot, node.pipe);
  const { base, name } = st;
  // No dynamic scoping: the called template sees only $, its dot.
  st.base = st.top;
  push(st, "$", newDot);
  st.depth++;
  st.name = node.name;
  walk(st, newDot, tmpl);
  st.depth--;
  st.name = name;
  st.top = st.base;
  st.base = base;
}

function printValue(st: State, node: ActionNode, value: unknown): void {
  st.node = node;
  if (typeof value === "string") st.out += value;
  else if (value === undefined || value === null) st.out += "<no value>";
  else if (typeof value === "bigint") st.out += String(value);
  else if (typeof value === "function") fail(st, `can't print ${nodeString(node)} of type ${goTypeName(value)}`);
  else {
    try {
      st.out += formatValue(value);
    } catch (err) {
      if (err instanceof PrintDepthError) fail(st, err.message);
      throw err;
    }
  }
}

// --- evaluation ----------------------------------------------------------------

function evalPipeline(st: State, dot: unknown, pipe: PipeNode): unknown {
  st.node = pipe;
  let value: unknown = MISSING;
  const cmds = pipe.cmds;
  for (let i = 0; i < cmds.length; i++) {
    // The previous command's value is this one's final argument.
    value = evalCommand(st, dot, cmds[i]!, value);
    // Go digs a value out of its interface{}: a nil interface becomes the invalid value.
    if (value === null) value = undefined;
  }
  const decl = pipe.decl;
  for (let i = 0; i < decl.length; i++) {
    const name = decl[i]!.ident[0]!;
    if (pipe.isAssign) setVar(st, name, value);
    else push(st, name, value);
  }
  return value;
}

function evalCommand(st: State, dot: unknown, cmd: CommandNode, final: unknown): unknown {
  const first = cmd.args[0]!;
  switch (first.k) {
    case K.Field:
      return evalFieldNode(st, dot, first, cmd.args, final);
    case K.Chain:
      return evalChainNode(st, dot, first, cmd.args, final);
    case K.Identifier:
      return evalFunction(st, dot, first, cmd, cmd.args, final);
    case K.Pipe:
      notAFunction(st, first, cmd.args, final);
      return evalPipeline(st, dot, first);
    case K.Variable:
      return evalVariableNode(st, dot, first, cmd.args, final);
  }
  st.node = first;
  notAFunction(st, first, cmd.args, final);
  switch (first.k) {
    case K.Bool:
      return first.value;
    case K.Dot:
      return dot;
    case K.Nil:
      return fail(st, "nil is not a command");
    case K.Number:
      return idealConstant(st, first);
    case K.String:
      return first.text;
  }
}

function notAFunction(st: State, node: ArgNode, args: ArgNode[] | null, final: unknown): void {
  if ((args !== null && args.length > 1) || final !== MISSING) fail(st, `can't give argument to non-function ${nodeString(node)}`);
}

function idealConstant(st: State, node: NumberNode): number | bigint {
  st.node = node;
  if (node.overflows) fail(st, `${node.text} overflows int`);
  return node.value;
}

function evalFieldNode(st: State, dot: unknown, field: FieldNode, args: ArgNode[] | null, final: unknown): unknown {
  st.node = field;
  return evalFieldChain(st, dot, dot, field, field.ident, 0, args, final);
}

function evalChainNode(st: State, dot: unknown, chain: ChainNode, args: ArgNode[] | null, final: unknown): unknown {
  st.node = chain;
  if (chain.node.k === K.Nil) fail(st, `indirection through explicit nil in ${nodeString(chain)}`);
  // (pipeline).Field1.Field2: the pipeline first, then the fields.
  const receiver = evalArg(st, dot, T.NONE, chain.node);
  return evalFieldChain(st, dot, receiver, chain, chain.field, 0, args, final);
}

function evalVariableNode(st: State, dot: unknown, variable: VariableNode, args: ArgNode[] | null, final: unknown): unknown {
  st.node = variable;
  const value = varValue(st, variable.ident[0]!);
  if (variable.ident.length === 1) {
    notAFunction(st, variable, args, final);
    return value;
  }
  return evalFieldChain(st, dot, value, variable, variable.ident, 1, args, final);
}

/** .X.Y.Z from ident[start]: dot is where arguments are evaluated, receiver walks the chain. */
function evalFieldChain(
  st: State,
  dot: unknown,
  receiver: unknown,
  node: FieldNode | ChainNode | VariableNode,
  ident: string[],
  start: number,
  args: ArgNode[] | null,
  final: unknown,
): unknown {
  const last = ident.length - 1;
  let value = receiver;
  for (let i = start; i < last; i++) value = evalField(st, dot, ident[i]!, node, null, MISSING, value);
  // Only the last one, if it is a method, gets the arguments.
  return evalField(st, dot, ident[last]!, node, args, final, value);
}

function hasArgs(args: ArgNode[] | null, final: unknown): boolean {
  return (args !== null && args.length > 1) || final !== MISSING;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== "object" || v === null || Array.isArray(v)) return false;
  const proto: unknown = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

function evalField(
  st: State,
  dot: unknown,
  name: string,
  node: FieldNode | ChainNode | VariableNode,
  args: ArgNode[] | null,
  final: unknown,
  receiver: unknown,
): unknown {
  // missingkey=default: nothing from nothing.
  if (receiver === undefined) return undefined;
  if (receiver === null) fail(st, `nil pointer evaluating interface {}.${name}`);
  if (isPlainObject(receiver)) {
    if (Object.hasOwn(receiver, name)) {
      if (hasArgs(args, final)) {
        fail(st, goKind(receiver) === "struct" ? `${name} has arguments but cannot be invoked as function` : `${name} is not a method but has arguments`);
      }
      return receiver[name];
    }
    if (goKind(receiver) === "struct") fail(st, `can't evaluate field ${name} in type ${goTypeName(receiver)}`);
    if (hasArgs(args, final)) fail(st, `${name} is not a method but has arguments`);
    return undefined;
  }
  if (receiver instanceof Map) {
    if (hasArgs(args, final)) fail(st, `${name} is not a method but has arguments`);
    return receiver.has(name) ? receiver.get(name) : undefined;
  }
  if (typeof receiver === "object" && !Array.isArray(receiver) && isExported(name)) {
    const method: unknown = (receiver as Record<string, unknown>)[name];
    if (typeof method === "function") return evalMethod(st, dot, receiver, method as Func, node, name, args, final);
  }
  fail(st, `can't evaluate field ${name} in type ${goTypeName(receiver)}`);
}

// Go's exported names start with an upper-case letter; only those are methods a template may call.
function isExported(name: string): boolean {
  const c = name.charCodeAt(0);
  if (c < 0x80) return c >= 0x41 && c <= 0x5a;
  return /^\p{Lu}/u.test(name);
}

function evalFunction(st: State, dot: unknown, ident: IdentifierNode, node: IdentifierNode | CommandNode, args: ArgNode[] | null, final: unknown): unknown {
  st.node = ident;
  const name = ident.name;
  const builtin = BUILTINS.get(name);
  if (builtin !== undefined) return evalBuiltin(st, dot, builtin, node, name, args, final);
  const fn = Object.hasOwn(st.funcs, name) ? st.funcs[name] : undefined;
  if (typeof fn !== "function") fail(st, `${goQuote(name)} is not a defined function`);
  const argv = argValues(st, dot, args, final);
  let result: unknown;
  try {
    result = fn(...argv);
  } catch (err) {
    // The library checks its own arity; Go checks it before the call, at the function's name.
    if (err instanceof FuncError && err.message.startsWith(`wrong number of args for ${name}:`)) {
      st.node = ident;
      fail(st, err.message, err.key);
    }
    callFailed(st, node, name, err);
  }
  return result === undefined ? null : result;
}

function evalMethod(
  st: State,
  dot: unknown,
  receiver: object,
  method: Func,
  node: FieldNode | ChainNode | VariableNode,
  name: string,
  args: ArgNode[] | null,
  final: unknown,
): unknown {
  const numIn = (args === null ? 0 : args.length - 1) + (final === MISSING ? 0 : 1);
  if (numIn !== method.length) fail(st, `wrong number of args for ${name}: want ${method.length} got ${numIn}`);
  const argv = argValues(st, dot, args, final);
  let result: unknown;
  try {
    result = method.apply(receiver, argv);
  } catch (err) {
    callFailed(st, node, name, err);
  }
  return result === undefined ? null : result;
}

/** The arguments of a library function or method, all interface{}: args[0] is the callee. */
function argValues(st: State, dot: unknown, args: ArgNode[] | null, final: unknown): unknown[] {
  const argc = args === null ? 0 : args.length - 1;
  const argv: unknown[] = new Array(argc + (final === MISSING ? 0 : 1));
  for (let i = 0; i < argc; i++) argv[i] = evalArg(st, dot, T.ANY, args![i + 1]!);
  if (final !== MISSING) argv[argc] = final === undefined ? null : final;
  return argv;
}

function callFailed(st: State, node: Node | ArgNode | CommandNode, name: string, err: unknown): never {
  st.node = node;
  const message = err instanceof Error ? err.message : String(err);
  fail(st, `error calling ${name}: ${message}`, err instanceof FuncError ? err.key : undefined);
}

function evalBuiltin(
  st: State,
  dot: unknown,
  builtin: Builtin,
  node: IdentifierNode | CommandNode,
  name: string,
  args: ArgNode[] | null,
  final: unknown,
): unknown {
  const { params, rest } = builtin;
  const argc = args === null ? 0 : args.length - 1;
  const numIn = argc + (final === MISSING ? 0 : 1);
  if (rest !== undefined) {
    if (numIn < params.length) fail(st, `wrong number of args for ${name}: want at least ${params.length} got ${argc}`);
  } else if (numIn !== params.length) {
    fail(st, `wrong number of args for ${name}: want ${params.length} got ${numIn}`);
  }
  if (builtin.fn === null) return andOr(st, dot, name === "or", args, final);
  const argv: unknown[] = new Array(numIn);
  for (let i = 0; i < argc; i++) argv[i] = evalArg(st, dot, i < params.length ? params[i]! : rest!, args![i + 1]!);
  if (final !== MISSING) argv[argc] = validateType(st, final, numIn - 1 < params.length ? params[numIn - 1]! : rest!);
  if (name === "call") argv.unshift(calleeName(args, final));
  try {
    return builtin.fn(argv);
  } catch (err) {
    callFailed(st, node, name, err);
  }
}

/** and/or stop at the first argument that decides, leaving the rest unevaluated. */
function andOr(st: State, dot: unknown, isOr: boolean, args: ArgNode[] | null, final: unknown): unknown {
  function* operands(): Generator<unknown> {
    if (args !== null) for (let i = 1; i < args.length; i++) yield evalArg(st, dot, T.VALUE, args[i]!);
    // Go returns a piped final argument without testing it; as the last one, and/or return it too.
    if (final !== MISSING) yield final;
  }
  return isOr ? or(operands()) : and(operands());
}

/** What "call" names in its errors: the callee's text, or its type when piped (Go would print a string's value). */
function calleeName(args: ArgNode[] | null, final: unknown): string {
  if (args !== null && args.length > 1) return nodeString(args[1]!);
  return `<${goTypeName(final)} Value>`;
}

function evalArg(st: State, dot: unknown, type: ArgType, node: ArgNode): unknown {
  st.node = node;
  switch (node.k) {
    case K.Dot:
      return validateType(st, dot, type);
    case K.Nil:
      if (type === T.STRING) fail(st, "cannot assign nil to string");
      return type === T.VALUE ? undefined : null;
    case K.Field:
      return validateType(st, evalFieldNode(st, dot, node, null, MISSING), type);
    case K.Variable:
      return validateType(st, evalVariableNode(st, dot, node, null, MISSING), type);
    case K.Pipe:
      return validateType(st, evalPipeline(st, dot, node), type);
    case K.Identifier:
      return validateType(st, evalFunction(st, dot, node, node, null, MISSING), type);
    case K.Chain:
      return validateType(st, evalChainNode(st, dot, node, null, MISSING), type);
  }
  if (type === T.STRING) {
    if (node.k === K.String) return node.text;
    fail(st, `expected string; found ${nodeString(node)}`);
  }
  switch (node.k) {
    case K.Bool:
      return node.value;
    case K.Number:
      return idealConstant(st, node);
    case K.String:
      return node.text;
  }
}

function validateType(st: State, value: unknown, type: ArgType): unknown {
  switch (type) {
    case T.NONE:
    case T.VALUE:
      return value;
    case T.ANY:
      return value === undefined ? null : value;
    case T.STRING:
      if (typeof value === "string") return value;
      if (value === undefined) fail(st, "invalid value; expected string");
      return fail(st, `wrong type for value; expected string; got ${value === null ? "interface {}" : goTypeName(value)}`);
  }
}
