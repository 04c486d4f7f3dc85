// Go's view of this project's values, shared by both engines and the function library: how a Go value
// is held in JavaScript, the kind and type name it has in Go (int, float64, memkv.KVPair, time.Time,
// map[string]interface {}), the order of Go strings, and text/template's truth (if, with, and, or,
// not) and comparisons (eq, ne, lt, le, gt, ge), with Go's error messages. The engines and the
// library call these; none has rules of its own.
import { encodeText } from "./bytes.ts";
import { GoTime } from "./gotime.ts";

/**
 * Go's values as JavaScript holds them:
 *
 *   int          bigint, kept within int64 (a template's 1, len, add, atoi, seq, a range index)
 *   float64      number (a template's 1.5 or 1e6, and every JSON number, as encoding/json decodes it)
 *   string, bool string, boolean
 *   nil          null (a nil interface: JSON null, a nil result) or undefined (no value at all)
 *   slice        array;  map: plain object or Map;  struct: see STRUCTS and markStruct, GoTime, Date
 *
 * So 1.0 and 1 stay apart as in Go: a JSON 12345678 prints 1.2345678e+07, and eq 1 1.0 is an error.
 */
export type GoKind = "nil" | "bool" | "int" | "float" | "string" | "slice" | "map" | "struct" | "func";

// Store pairs and SRV records are Go structs in confd, so they print as {a b}, not as
// maps. They are recognised by shape because they are plain objects on this side.
const STRUCTS: ReadonlyArray<{ type: string; fields: readonly string[] }> = [
  { type: "memkv.KVPair", fields: ["Key", "Value"] },
  { type: "net.SRV", fields: ["Target", "Port", "Priority", "Weight"] },
];

/**
 * Values made as Go structs by the code that made them (the catalog's, catalog-values.ts), rather than
 * recognised by shape: a JSON object with the same fields stays a map.
 */
const MADE_STRUCTS = new WeakMap<object, { type: string; fields: readonly string[] }>();

/** Makes `v` a Go struct of this type, whose fields print in this order. */
export function markStruct<T extends object>(v: T, type: { type: string; fields: readonly string[] }): T {
  MADE_STRUCTS.set(v, type);
  return v;
}

export function structOf(v: object): { type: string; fields: readonly string[] } | undefined {
  const made = MADE_STRUCTS.get(v);
  if (made) return made;
  const keys = Object.keys(v);
  return STRUCTS.find((s) => s.fields.length === keys.length && s.fields.every((f) => Object.hasOwn(v, f)));
}

export function goKind(v: unknown): GoKind {
  switch (typeof v) {
    case "undefined":
      return "nil";
    case "boolean":
      return "bool";
    case "number":
      return "float";
    case "bigint":
      return "int";
    case "string":
      return "string";
    case "function":
    case "symbol":
      return "func";
  }
  if (v === null) return "nil";
  if (Array.isArray(v)) return "slice";
  if (v instanceof Map) return "map";
  if (v instanceof GoTime || v instanceof Date) return "struct";
  return typeof v === "object" && structOf(v) !== undefined ? "struct" : "map";
}

export function goTypeName(v: unknown): string {
  switch (goKind(v)) {
    case "nil":
      return "<nil>";
    case "bool":
      return "bool";
    case "int":
      return "int";
    case "float":
      return "float64";
    case "string":
      return "string";
    case "slice":
      return "[]interface {}";
    case "map":
      return "map[string]interface {}";
    case "func":
      return "func()";
    case "struct":
      if (typeof v === "object" && v !== null && !(v instanceof GoTime) && !(v instanceof Date)) {
        return structOf(v)?.type ?? "struct";
      }
      return "time.Time";
  }
}

/**
 * Go orders strings by their bytes. For characters below the surrogates UTF-16 code unit order is the
 * same; where the strings first differ at a surrogate (half of a character above U+FFFF, or the escape
 * of a byte that is not UTF-8, which must sort as that byte: see bytes.ts) their bytes are compared.
 */
export function compareGoStrings(a: string, b: string): number {
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    if (isSurrogate(x) || isSurrogate(y)) return Buffer.compare(encodeText(a), encodeText(b));
    return x < y ? -1 : 1;
  }
  return a.length < b.length ? -1 : 1;
}

function isSurrogate(unit: number): boolean {
  return unit >= 0xd800 && unit <= 0xdfff;
}

// --- truth -----------------------------------------------------------------------

/**
 * Go's template truth: false, 0, "", nil and empty lists and maps are false; structs (pairs, SRV
 * records, times) and functions are always true.
 */
export function isTrue(v: unknown): boolean {
  switch (goKind(v)) {
    case "nil":
      return false;
    case "bool":
      return v === true;
    case "int":
    case "float":
      return v !== 0 && v !== 0n;
    case "string":
      return (v as string).length > 0;
    case "slice":
      return (v as unknown[]).length > 0;
    case "map":
      return v instanceof Map ? v.size > 0 : Object.keys(v as object).length > 0;
    case "struct":
    case "func":
      return true;
  }
}

/**
 * and: the first false argument, or the last. Arguments are taken one at a time and none after the
 * first false one, so an engine may pass them lazily, as Go's evaluator does.
 */
export function and(args: Iterable<unknown>): unknown {
  return firstWithTruth(args, false);
}

/** or: the first true argument, or the last; lazily, as and. */
export function or(args: Iterable<unknown>): unknown {
  return firstWithTruth(args, true);
}

function firstWithTruth(args: Iterable<unknown>, truth: boolean): unknown {
  let last: unknown;
  for (const arg of args) {
    if (isTrue(arg) === truth) return arg;
    last = arg;
  }
  return last;
}

// --- comparison --------------------------------------------------------------------

/** An error of text/template's eq, ne, lt, le, gt or ge, in Go's words; never shows a value (see FuncError). */
export class ComparisonError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ComparisonError";
  }
}

// Go's basic kinds for comparison.
const INVALID = 0;
const BOOL = 1;
const INT = 2;
const FLOAT = 3;
const STRING = 4;

function basicKind(v: unknown): number {
  switch (typeof v) {
    case "boolean":
      return BOOL;
    case "bigint":
      return INT;
    case "number":
      return FLOAT;
    case "string":
      return STRING;
  }
  return INVALID;
}

function isNil(v: unknown): boolean {
  return v === null || v === undefined;
}

/** eq: whether arg1 equals any of others. A nil (null or undefined) on one side is simply unequal. */
export function eq(arg1: unknown, ...others: unknown[]): boolean {
  if (others.length === 0) throw new ComparisonError("missing argument for comparison");
  const k1 = basicKind(arg1);
  for (const arg of others) {
    const k2 = basicKind(arg);
    let truth = false;
    if (k1 !== k2) {
      if (!isNil(arg1) && !isNil(arg)) throw incompatible(arg1, arg);
    } else if (k1 !== INVALID) {
      truth = arg1 === arg;
    } else {
      truth = nonBasicEqual(arg1, arg);
    }
    if (truth) return true;
  }
  return false;
}

export function ne(arg1: unknown, arg2: unknown): boolean {
  return !eq(arg1, arg2);
}

export function lt(arg1: unknown, arg2: unknown): boolean {
  const k1 = basicKind(arg1);
  const k2 = basicKind(arg2);
  if (k1 === INVALID || k2 === INVALID) throw new ComparisonError("invalid type for comparison");
  if (k1 !== k2) throw incompatible(arg1, arg2);
  if (k1 === BOOL) throw new ComparisonError("invalid type for comparison");
  if (k1 === STRING) return compareGoStrings(arg1 as string, arg2 as string) < 0;
  return (arg1 as bigint | number) < (arg2 as bigint | number);
}

export function le(arg1: unknown, arg2: unknown): boolean {
  return lt(arg1, arg2) || eq(arg1, arg2);
}

export function gt(arg1: unknown, arg2: unknown): boolean {
  return !le(arg1, arg2);
}

export function ge(arg1: unknown, arg2: unknown): boolean {
  return !lt(arg1, arg2);
}

function incompatible(arg1: unknown, arg2: unknown): ComparisonError {
  return new ComparisonError(`incompatible types for comparison: ${goTypeName(arg1)} and ${goTypeName(arg2)}`);
}

/** reflect.Kind, for the values that are not of a basic kind. */
function reflectKind(v: unknown): string {
  return isNil(v) ? "invalid" : goKind(v);
}

// Lists, maps and functions only equal nil; structs compare field by field.
function nonBasicEqual(a: unknown, b: unknown): boolean {
  const ka = reflectKind(a);
  const kb = reflectKind(b);
  if (ka !== kb && ka !== "invalid" && kb !== "invalid") {
    throw new ComparisonError(`non-comparable types ${goTypeName(a)} and ${goTypeName(b)}`);
  }
  if (isNil(a) || isNil(b)) return isNil(a) === isNil(b);
  if (kb !== "struct") throw new ComparisonError(`non-comparable type ${goTypeName(b)}`);
  return structsEqual(a as object, b as object);
}

// Only values of the same type are equal; times compare their instant and zone, as time.Time's == does.
function structsEqual(a: object, b: object): boolean {
  if (goTypeName(a) !== goTypeName(b)) return false;
  const ta = a instanceof Date ? new GoTime(a) : a;
  const tb = b instanceof Date ? new GoTime(b) : b;
  if (ta instanceof GoTime && tb instanceof GoTime) return ta.UnixMilli() === tb.UnixMilli() && ta.String() === tb.String();
  const ra = a as Record<string, unknown>;
  const rb = b as Record<string, unknown>;
  return Object.keys(ra).every((k) => ra[k] === rb[k]);
}
