// text/template's builtin functions (funcs.go) over this project's values: their signatures, which
// the evaluator checks the way Go's evalCall does, and their bodies with Go's results and error
// messages; truth and comparison are govalue.ts's, shared with the function library. and/or are here
// for their signature only: the evaluator runs them lazily.
import { byteLength, decodeBytes, encodeText } from "./bytes.ts";
import type { BuiltinName } from "./gotemplate-node.ts";
import { formatValue, sprintf } from "./gofmt.ts";
import { eq, ge, goKind, goTypeName, gt, isTrue, le, lt, ne } from "./govalue.ts";
import { isPrint } from "./strconv.ts";

/**
 * How an argument reaches a parameter, after Go's evalArg and validateType: VALUE is reflect.Value
 * (a missing value stays undefined, a nil one null), ANY is interface{} (both become null), STRING is
 * string (anything else is an error), NONE takes the value unchecked (the head of a field chain).
 */
export const T = { NONE: 0, VALUE: 1, ANY: 2, STRING: 3 } as const;
export type ArgType = (typeof T)[keyof typeof T];

export interface Builtin {
  /** Parameters before the variadic part, or all of them. */
  params: readonly ArgType[];
  /** The type of the variadic part; undefined for a fixed arity. */
  rest?: ArgType;
  /** Null for and/or, which the evaluator short-circuits. */
  fn: ((args: unknown[]) => unknown) | null;
}

const V = T.VALUE;

export const BUILTINS: ReadonlyMap<string, Builtin> = new Map<BuiltinName, Builtin>([
  ["and", { params: [V], rest: V, fn: null }],
  ["or", { params: [V], rest: V, fn: null }],
  ["call", { params: [V], rest: V, fn: call }],
  ["html", { params: [], rest: T.ANY, fn: (a) => htmlEscape(evalArgs(a)) }],
  ["js", { params: [], rest: T.ANY, fn: (a) => jsEscape(evalArgs(a)) }],
  ["urlquery", { params: [], rest: T.ANY, fn: (a) => queryEscape(evalArgs(a)) }],
  ["index", { params: [V], rest: V, fn: index }],
  ["slice", { params: [V], rest: V, fn: slice }],
  ["len", { params: [V], fn: (a) => length(a[0]) }],
  ["not", { params: [V], fn: (a) => !isTrue(a[0]) }],
  ["print", { params: [], rest: T.ANY, fn: sprint }],
  ["printf", { params: [T.STRING], rest: T.ANY, fn: (a) => sprintf(a[0] as string, a.slice(1)) }],
  ["println", { params: [], rest: T.ANY, fn: (a) => a.map(formatValue).join(" ") + "\n" }],
  ["eq", { params: [V], rest: V, fn: (a) => eq(a[0], ...a.slice(1)) }],
  ["ne", { params: [V, V], fn: (a) => ne(a[0], a[1]) }],
  ["lt", { params: [V, V], fn: (a) => lt(a[0], a[1]) }],
  ["le", { params: [V, V], fn: (a) => le(a[0], a[1]) }],
  ["gt", { params: [V, V], fn: (a) => gt(a[0], a[1]) }],
  ["ge", { params: [V, V], fn: (a) => ge(a[0], a[1]) }],
]);

/**
 * An error a builtin returns; the evaluator reports it as "error calling <name>: <message>". Where Go's
 * message shows an argument's value, this one shows its type (see FuncError in funcs.ts).
 */
class BuiltinError extends Error {}

// --- printing ------------------------------------------------------------------

/** fmt.Sprint: a space between operands when neither is a string. */
function sprint(args: unknown[]): string {
  let out = "";
  let prevString = false;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    const isString = typeof arg === "string";
    if (i > 0 && !isString && !prevString) out += " ";
    out += isString ? arg : formatValue(arg);
    prevString = isString;
  }
  return out;
}

/** Go's evalArgs for html, js and urlquery: Sprint, with nil printed as the template prints it. */
function evalArgs(args: unknown[]): string {
  if (args.length === 1 && typeof args[0] === "string") return args[0];
  return sprint(args.map((a) => (a === null || a === undefined ? "<no value>" : a)));
}

const HTML_ESCAPES: Readonly<Record<string, string>> = {
  "\0": "\uFFFD",
  '"': "&#34;",
  "'": "&#39;",
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
};

function htmlEscape(s: string): string {
  return s.replace(/[\0"'&<>]/g, (c) => HTML_ESCAPES[c] ?? c);
}

const JS_ESCAPES: Readonly<Record<string, string>> = {
  "\\": "\\\\",
  "'": "\\'",
  '"': '\\"',
  "<": "\\u003C",
  ">": "\\u003E",
  "&": "\\u0026",
  "=": "\\u003D",
};

function jsEscape(s: string): string {
  if (!/[\\'"<>&=\u0000-\u001f\u0080-\uffff]/.test(s)) return s;
  let out = "";
  for (const c of s) {
    const r = c.codePointAt(0)!;
    const special = JS_ESCAPES[c];
    if (special !== undefined && Object.hasOwn(JS_ESCAPES, c)) out += special;
    else if (r < 0x20) out += "\\u00" + r.toString(16).toUpperCase().padStart(2, "0");
    else if (r < 0x80 || isPrint(r) || isLoneSurrogate(r)) out += c;
    else out += "\\u" + r.toString(16).toUpperCase().padStart(4, "0");
  }
  return out;
}

/**
 * A lone surrogate left by for..of: a byte that is not UTF-8 (its escape, see bytes.ts) or a stray half
 * that is written as U+FFFD. Go decodes either as U+FFFD, which is printable, so JSEscape copies it.
 */
function isLoneSurrogate(r: number): boolean {
  return r >= 0xd800 && r <= 0xdfff;
}

/** url.QueryEscape: unreserved bytes stay, space is '+', the rest is %XX. */
function queryEscape(s: string): string {
  let out = "";
  for (const b of encodeText(s)) {
    const c = String.fromCharCode(b);
    if (/[A-Za-z0-9\-_.~]/.test(c)) out += c;
    else if (c === " ") out += "+";
    else out += "%" + b.toString(16).toUpperCase().padStart(2, "0");
  }
  return out;
}

// --- length, indexing, slicing -------------------------------------------------

/** A map that is a plain object (JSON, the map function); Map instances are checked apart. */
function isObjectMap(v: unknown): v is Record<string, unknown> {
  return !(v instanceof Map) && goKind(v) === "map";
}

function length(v: unknown): bigint {
  // A missing value reaches Go's length as the zero reflect.Value, whose Type panics.
  if (v === undefined) throw new BuiltinError("reflect: call of reflect.Value.Type on zero Value");
  if (v === null) throw new BuiltinError("len of nil pointer");
  if (typeof v === "string") return BigInt(byteLength(v));
  if (Array.isArray(v)) return BigInt(v.length);
  if (v instanceof Map) return BigInt(v.size);
  if (isObjectMap(v)) return BigInt(Object.keys(v).length);
  throw new BuiltinError(`len of type ${goTypeName(v)}`);
}

/** Go's indexArg: an int in [0, cap]. */
function indexArg(index: unknown, cap: number): number {
  let x: number;
  if (typeof index === "bigint") x = index < 0n ? -1 : index > BigInt(cap) ? cap + 1 : Number(index);
  else if (index === null || index === undefined) throw new BuiltinError("cannot index slice/array with nil");
  else throw new BuiltinError(`cannot index slice/array with type ${goTypeName(index)}`);
  if (x < 0 || x > cap) throw new BuiltinError(`index out of range: ${formatValue(index)}`);
  return x;
}

function isAscii(s: string): boolean {
  return /^[\x00-\x7f]*$/.test(s);
}

function index(args: unknown[]): unknown {
  let item = args[0];
  if (item === null || item === undefined) throw new BuiltinError("index of untyped nil");
  for (let i = 1; i < args.length; i++) {
    const key = args[i];
    if (item === null || item === undefined) throw new BuiltinError("index of nil pointer");
    if (Array.isArray(item)) {
      const x = indexArg(key, item.length);
      // Go's check lets len through and reflect then panics.
      if (x === item.length) throw new BuiltinError("reflect: slice index out of range");
      item = item[x];
    } else if (typeof item === "string") {
      const bytes = isAscii(item) ? undefined : encodeText(item);
      const n = bytes ? bytes.length : item.length;
      const x = indexArg(key, n);
      if (x === n) throw new BuiltinError("reflect: string index out of range");
      // A byte: Go's uint8, an int here.
      item = BigInt(bytes ? bytes[x]! : item.charCodeAt(x));
    } else if (item instanceof Map) {
      item = item.has(key) ? item.get(key) : null;
    } else if (isObjectMap(item)) {
      if (key === null || key === undefined) throw new BuiltinError("value is nil; should be of type string");
      if (typeof key !== "string") throw new BuiltinError(`value has type ${goTypeName(key)}; should be string`);
      // A missing key gives the zero value of interface{}: nil.
      item = Object.hasOwn(item, key) ? item[key] : null;
    } else {
      throw new BuiltinError(`can't index item of type ${goTypeName(item)}`);
    }
    if (item === undefined) item = null;
  }
  return item;
}

function slice(args: unknown[]): unknown {
  const item = args[0];
  if (item === null || item === undefined) throw new BuiltinError("slice of untyped nil");
  const indexes = args.length - 1;
  if (indexes > 3) throw new BuiltinError(`too many slice indexes: ${indexes}`);
  let bytes: Uint8Array | undefined;
  let len: number;
  if (typeof item === "string") {
    if (indexes === 3) throw new BuiltinError("cannot 3-index slice a string");
    bytes = isAscii(item) ? undefined : encodeText(item);
    len = bytes ? bytes.length : item.length;
  } else if (Array.isArray(item)) {
    len = item.length;
  } else {
    throw new BuiltinError(`can't slice item of type ${goTypeName(item)}`);
  }
  const idx = [0, len, len];
  for (let i = 0; i < indexes; i++) idx[i] = indexArg(args[i + 1], len);
  const [from, to, max] = idx as [number, number, number];
  if (from > to) throw new BuiltinError(`invalid slice index: ${from} > ${to}`);
  if (indexes === 3 && to > max) throw new BuiltinError(`invalid slice index: ${to} > ${max}`);
  if (Array.isArray(item)) return item.slice(from, to);
  // Strings are sliced by UTF-8 bytes, as in Go; a cut through a character decodes to U+FFFD.
  return bytes ? decodeBytes(bytes.subarray(from, to)) : (item as string).slice(from, to);
}

// --- call ----------------------------------------------------------------------

/** call name fn args...: the evaluator puts the callee's text first, for the error. */
function call(args: unknown[]): unknown {
  const [name, fn, ...rest] = args;
  if (fn === null || fn === undefined) throw new BuiltinError("call of nil");
  if (typeof fn !== "function") throw new BuiltinError(`non-function ${String(name)} of type ${goTypeName(fn)}`);
  const result: unknown = fn(...rest.map((a) => (a === undefined ? null : a)));
  return result === undefined ? null : result;
}
