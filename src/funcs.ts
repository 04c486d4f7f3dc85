// confd's template functions (memkv's store functions and template_funcs.go) plus the text/template
// builtins every engine needs (their truth and comparison rules are govalue.ts's), as plain
// synchronous functions over a snapshot of the store. Each function is declared once, in LIBRARY: its
// name, its parameters as a Go signature reads, and its body, which receives the arguments already
// checked and converted. Knows nothing of any template engine.
import { existsSync } from "node:fs";
import { byteLength, decodeBytes, encodeText, environment } from "./bytes.ts";
import { CatalogQueryError, parseCatalogCall, type CatalogFunc } from "./catalog.ts";
import { CatalogReads, type CatalogAnswers } from "./catalog-values.ts";
import { DnsCache, type DnsAnswers, type SRV } from "./dns.ts";
import { GlobSyntaxError, globMatch } from "./glob.ts";
import { formatValue, sprintf } from "./gofmt.ts";
import { GoTime } from "./gotime.ts";
import type { FuncName } from "./func-names.ts";
import { and, ComparisonError, compareGoStrings, eq, ge, goKind, goTypeName, gt, isTrue, le, lt, ne, or } from "./govalue.ts";

export type { SRV } from "./dns.ts";

// Go field names on purpose: templates write .Key/.Value.
export interface KVPair {
  Key: string;
  Value: string;
}

// Keys like "/database/host", already relative to the resource prefix.
export type Store = ReadonlyMap<string, string>;

export type TemplateFunc = (...args: unknown[]) => unknown;

/**
 * Thrown by a function; the engine adds resource, file and line. Messages are Go's, less any value:
 * what the store holds may be a password, and error lines end up in logs. A message may show an
 * argument's type, a length or a byte position in it, never the argument, and where Go's message
 * quotes its input the quotation is left out (strconv.Atoi: parsing "x": invalid syntax becomes
 * strconv.Atoi: invalid syntax). Which value it was is told by key instead: the key that was read,
 * or for a rejected argument (arg, its index) the key holding that value. Arguments that are keys
 * or patterns are shown, as keys are, except one equal to a value in the store, which a template
 * may have read from it (getv (getv "/db/password")): the message shows "(the value of <key>)" in
 * its place and key is the key holding that value, or "(a value in the store)" and no key when
 * several keys hold it. The Go engine's own errors (gotemplate-exec.ts, gotemplate-builtins.ts)
 * keep to the same rule.
 */
export class FuncError extends Error {
  constructor(
    readonly func: string,
    message: string,
    readonly key?: string,
    readonly arg?: number,
  ) {
    super(message);
    this.name = "FuncError";
  }
}

/** What a body throws; call makes it a FuncError naming the function and, for arg, the key. */
class Failure extends Error {
  constructor(
    message: string,
    readonly arg?: number,
  ) {
    super(message);
  }
}

/** Argument arg (from 0) was rejected for its value, which the message does not show (see FuncError). */
function rejected(arg: number, message: string): Failure {
  return new Failure(message, arg);
}

/**
 * A key or pattern argument failed. The message is worded by say around the key as call decides to
 * show it, since the key may be a value read from the store (see FuncError).
 */
class KeyFailure extends Error {
  constructor(
    readonly key: string,
    readonly say: (shown: string) => string,
  ) {
    super("a key failed");
  }
}

/** What get and getv do with a key the store does not hold: "error" fails the render (confd's way), "empty" gives "". */
export type MissingKey = "error" | "empty";

export interface FuncOptions {
  missingKey?: MissingKey;
  env?: Readonly<Record<string, string | undefined>>;
  now?: () => Date;
  dns?: DnsAnswers;
  catalog?: CatalogAnswers;
  fileExists?: (path: string) => boolean;
}

/** What the bodies run against: the store and surroundings of the render under way. */
interface Context {
  store: Store;
  missingKey: MissingKey;
  env: Readonly<Record<string, string | undefined>>;
  now: () => Date;
  dns: DnsAnswers;
  catalog: CatalogAnswers;
  fileExists: (path: string) => boolean;
}

// --- signatures --------------------------------------------------------------

/**
 * A parameter: "string", "int", "list" or "any"; "name?" may be left out (trailing only) and
 * "...name" takes any number of further arguments (last only), as in a Go signature.
 */
type Param = Type | `${Type}?` | `...${Type}`;
type Type = "string" | "int" | "list" | "any";

/** What an argument is converted to for a body (see convert). */
type Value<T> = T extends "string" ? string : T extends "int" ? bigint : T extends "list" ? unknown[] : unknown;

/** The arguments a body receives for its parameters. */
type Args<P extends readonly Param[]> = P extends readonly [infer First, ...infer Rest extends readonly Param[]]
  ? First extends `...${infer T}`
    ? Value<T>[]
    : First extends `${infer T}?`
      ? [Value<T> | undefined, ...Args<Rest>]
      : [Value<First>, ...Args<Rest>]
  : [];

type Body = (cx: Context, ...args: unknown[]) => unknown;

interface Definition {
  params: readonly Param[];
  body: Body;
}

function fn<const P extends readonly Param[]>(params: P, body: (cx: Context, ...args: Args<P>) => unknown): Definition {
  // The arguments are converted by these same params before the call (see call), so they are Args<P>.
  return { params, body: body as unknown as Body };
}

// --- the library ---------------------------------------------------------------

// Exactly the names func-names.ts lists (satisfies refuses a missing or an extra one), which is what
// the template compilers check calls against without loading this module.
const LIBRARY = {
  get: fn(["string"], (cx, key) => {
    return { Key: key, Value: cx.store.get(key) ?? absent(cx, key) } satisfies KVPair;
  }),
  gets: fn(["string"], (cx, pattern) => matching(cx.store, pattern)),
  getv: fn(["string", "...string"], (cx, key, ...fallback) => {
    const value = cx.store.get(key);
    if (value !== undefined) return value;
    if (fallback.length > 0) return fallback[0];
    return absent(cx, key);
  }),
  getvs: fn(["string"], (cx, pattern) =>
    matching(cx.store, pattern)
      .map((kv) => kv.Value)
      .sort(compareGoStrings),
  ),
  ls: fn(["string"], (cx, path) => children(cx.store, path, false)),
  lsdir: fn(["string"], (cx, path) => children(cx.store, path, true)),
  exists: fn(["string"], (cx, key) => cx.store.has(key)),
  base: fn(["string"], (_, path) => pathBase(path)),
  dir: fn(["string"], (_, path) => cleanPath(path.slice(0, path.lastIndexOf("/") + 1))),
  split: fn(["string", "string"], (_, s, sep) => (sep === "" ? Array.from(s) : s.split(sep))),
  join: fn(["list", "string"], (_, list, sep) => list.map(formatValue).join(sep)),
  json: fn(["string"], (_, text) => decodeJson(text, "map[string]interface {}") ?? {}),
  jsonArray: fn(["string"], (_, text) => decodeJson(text, "[]interface {}") ?? []),
  map: fn(["...any"], (_, ...pairs) => {
    if (pairs.length % 2 !== 0) throw new Failure("invalid map call");
    const entries: Array<[string, unknown]> = [];
    for (let i = 0; i < pairs.length; i += 2) {
      const key = pairs[i];
      if (typeof key !== "string") throw new Failure("map keys must be strings");
      entries.push([key, pairs[i + 1]]);
    }
    // fromEntries defines own properties, so a "__proto__" key stays a key.
    return Object.fromEntries(entries);
  }),
  getenv: fn(["string", "...string"], (cx, name, ...fallback) => {
    const value = cx.env[name];
    if (value !== undefined && value !== "") return value;
    return fallback[0] ?? "";
  }),
  // The layout argument is this project's addition; confd's datetime is time.Now.
  datetime: fn(["string?"], (cx, layout) => {
    const t = new GoTime(cx.now());
    return layout === undefined ? t : t.Format(layout);
  }),
  toUpper: fn(["string"], (_, s) => mapRunes(s, (c) => c.toUpperCase())),
  toLower: fn(["string"], (_, s) => mapRunes(s, (c) => c.toLowerCase())),
  contains: fn(["string", "string"], (_, s, sub) => s.includes(sub)),
  replace: fn(["string", "string", "string", "int"], (_, s, old, replacement, n) => goReplace(s, old, replacement, Number(n))),
  trimSuffix: fn(["string", "string"], (_, s, suffix) => (s.endsWith(suffix) ? s.slice(0, s.length - suffix.length) : s)),
  lookupIP: fn(["string"], (cx, name) => ips(cx.dns, name)),
  lookupIPV4: fn(["string"], (cx, name) => ips(cx.dns, name).filter((ip) => ip.includes("."))),
  lookupIPV6: fn(["string"], (cx, name) => ips(cx.dns, name).filter((ip) => ip.includes(":"))),
  lookupSRV: fn(["string", "string", "string"], (cx, service, proto, name) => {
    const records = cx.dns.srv(service, proto, name) ?? [];
    // confd orders records by Sprintf("%s%d%d%d", Target, Port, Priority, Weight).
    const sortKey = (r: SRV): string => `${r.Target}${r.Port}${r.Priority}${r.Weight}`;
    return [...records].sort((x, y) => compareGoStrings(sortKey(x), sortKey(y))).map(srvRecord);
  }),
  fileExists: fn(["string"], (cx, path) => cx.fileExists(path)),
  // Consul's catalog (catalog.ts): answers the render was given; an empty list until then.
  services: fn(["...string"], (cx, ...args) => catalogList(cx, "services", args)),
  service: fn(["string", "...string"], (cx, query, ...rest) => catalogList(cx, "service", [query, ...rest])),
  nodes: fn(["...string"], (cx, ...args) => catalogList(cx, "nodes", args)),
  checks: fn(["string"], (cx, state) => catalogList(cx, "checks", [state])),
  events: fn(["string?"], (cx, name) => catalogList(cx, "events", name === undefined ? [] : [name])),
  base64Encode: fn(["string"], (_, s) => encodeText(s).toString("base64")),
  base64Decode: fn(["string"], (_, s) => decodeBytes(decodeBase64(s))),
  parseBool: fn(["string"], (_, s) => {
    if (TRUE_WORDS.has(s)) return true;
    if (FALSE_WORDS.has(s)) return false;
    throw rejected(0, "strconv.ParseBool: invalid syntax");
  }),
  // Go's version reverses []string and []KVPair and returns anything else unchanged;
  // every JavaScript array is reversed here, as a copy.
  reverse: fn(["any"], (_, v) => (Array.isArray(v) ? [...(v as unknown[])].reverse() : v)),
  sortByLength: fn(["list"], (_, list) => {
    const values = list.map((v, i) => {
      if (typeof v !== "string") throw new Failure(`element ${i}: expected string, got ${goTypeName(v)}`);
      return v;
    });
    return values.sort((x, y) => byteLength(x) - byteLength(y));
  }),
  sortKVByLength: fn(["list"], (_, list) => {
    const pairs = list.map((v, i) => {
      if (goTypeName(v) !== "memkv.KVPair") throw new Failure(`element ${i}: expected a key/value pair, got ${goTypeName(v)}`);
      return v as KVPair;
    });
    return pairs.sort((x, y) => byteLength(x.Key) - byteLength(y.Key));
  }),
  // Go's int arithmetic: 64 bits, wrapping around silently. BigInt division truncates toward zero and
  // % takes the dividend's sign, as in Go.
  add: fn(["int", "int"], (_, x, y) => BigInt.asIntN(64, x + y)),
  sub: fn(["int", "int"], (_, x, y) => BigInt.asIntN(64, x - y)),
  mul: fn(["int", "int"], (_, x, y) => BigInt.asIntN(64, x * y)),
  div: fn(["int", "int"], (_, x, y) => BigInt.asIntN(64, x / divisor(y))),
  mod: fn(["int", "int"], (_, x, y) => x % divisor(y)),
  seq: fn(["int", "int"], (_, first, last) => {
    if (last - first >= SEQ_LIMIT) throw new Failure(`sequence longer than ${SEQ_LIMIT} numbers`);
    const out: bigint[] = [];
    for (let i = first; i <= last; i++) out.push(i);
    return out;
  }),
  atoi: fn(["string"], (_, s) => {
    if (!/^[+-]?[0-9]+$/.test(s)) throw rejected(0, "strconv.Atoi: invalid syntax");
    const n = BigInt(s);
    if (n !== BigInt.asIntN(64, n)) throw rejected(0, "strconv.Atoi: value out of range");
    return n;
  }),

  eq: fn(["any", "...any"], (_, arg1, ...others) => eq(arg1, ...others)),
  ne: fn(["any", "any"], (_, a, b) => ne(a, b)),
  lt: fn(["any", "any"], (_, a, b) => lt(a, b)),
  le: fn(["any", "any"], (_, a, b) => le(a, b)),
  gt: fn(["any", "any"], (_, a, b) => gt(a, b)),
  ge: fn(["any", "any"], (_, a, b) => ge(a, b)),
  and: fn(["any", "...any"], (_, ...args) => and(args)),
  or: fn(["any", "...any"], (_, ...args) => or(args)),
  not: fn(["any"], (_, v) => !isTrue(v)),
  default: fn(["any", "any"], (_, v, fallback) => (isTrue(v) ? v : fallback)),
  printf: fn(["string", "...any"], (_, format, ...args) => sprintf(format, args)),
  len: fn(["any"], (_, v) => {
    if (typeof v === "string") return BigInt(byteLength(v));
    if (Array.isArray(v)) return BigInt(v.length);
    if (v instanceof Map) return BigInt(v.size);
    if (goKind(v) === "map") return BigInt(Object.keys(v as object).length);
    if (v === null || v === undefined) throw new Failure("len of nil pointer");
    throw new Failure(`len of type ${goTypeName(v)}`);
  }),
} satisfies Record<FuncName, Definition>;

/** The name of every function createFuncs provides (the main thread reads them from func-names.ts instead). */
export function funcNames(): Set<string> {
  return new Set(Object.keys(LIBRARY));
}

export function createFuncs(store: Store, options: FuncOptions = {}): Record<string, TemplateFunc> {
  return library(context(store, options));
}

/**
 * The library for a thread that renders one template over and over (a resource's worker), built once:
 * `run` points it at one render's store and DNS answers for the length of a synchronous render, so that
 * a render makes no new closures and the table keeps no values once it is done.
 */
export interface FuncTable {
  run<T>(store: Store, dns: DnsAnswers, catalog: CatalogAnswers, render: (funcs: Record<string, TemplateFunc>) => T): T;
}

const NO_VALUES: Store = new Map();
const NO_CATALOG: CatalogAnswers = new CatalogReads();

export function createFuncTable(options: Omit<FuncOptions, "dns" | "catalog"> = {}): FuncTable {
  const cx = context(NO_VALUES, options);
  const funcs = library(cx);
  return {
    run(store, dns, catalog, render) {
      cx.store = store;
      cx.dns = dns;
      cx.catalog = catalog;
      try {
        return render(funcs);
      } finally {
        cx.store = NO_VALUES;
        cx.catalog = NO_CATALOG;
      }
    },
  };
}

function context(store: Store, options: FuncOptions): Context {
  return {
    store,
    missingKey: options.missingKey ?? "error",
    env: options.env ?? environment(),
    now: options.now ?? (() => new Date()),
    dns: options.dns ?? new DnsCache(),
    catalog: options.catalog ?? NO_CATALOG,
    fileExists: options.fileExists ?? existsSync,
  };
}

function library(cx: Context): Record<string, TemplateFunc> {
  // No prototype: an engine looking a name up must not find "constructor" or "toString".
  const funcs: Record<string, TemplateFunc> = Object.create(null);
  for (const [name, definition] of Object.entries(LIBRARY)) funcs[name] = (...args) => call(name, definition, cx, args);
  return funcs;
}

// --- calling -------------------------------------------------------------------

function call(name: string, { params, body }: Definition, cx: Context, args: unknown[]): unknown {
  checkArity(name, params, args.length);
  try {
    return body(cx, ...args.map((arg, i) => convert(params[Math.min(i, params.length - 1)]!, arg, i)));
  } catch (err) {
    if (err instanceof ComparisonError) throw new FuncError(name, err.message);
    if (err instanceof KeyFailure) throw keyError(name, err, cx.store);
    if (!(err instanceof Failure)) throw err;
    const holders = err.arg === undefined ? [] : keysHolding(cx.store, args[err.arg]);
    throw new FuncError(name, err.message, holders.length === 1 ? holders[0] : undefined, err.arg);
  }
}

function checkArity(name: string, params: readonly Param[], count: number): void {
  const variadic = params.length > 0 && params[params.length - 1]!.startsWith("...");
  const min = params.filter((p) => !p.startsWith("...") && !p.endsWith("?")).length;
  const max = variadic ? Infinity : params.length;
  if (count >= min && count <= max) return;
  let want = `${min}`;
  if (max === Infinity) want = `at least ${min}`;
  else if (max !== min) want = `${min} or ${max}`;
  throw new FuncError(name, `wrong number of args for ${name}: want ${want} got ${count}`);
}

/** A key or pattern that failed is shown, unless it is a value in the store (see FuncError). */
function keyError(name: string, err: KeyFailure, store: Store): FuncError {
  const holders = keysHolding(store, err.key);
  if (holders.length === 0) return new FuncError(name, err.say(err.key), err.key);
  if (holders.length === 1) return new FuncError(name, err.say(`(the value of ${holders[0]})`), holders[0]);
  return new FuncError(name, err.say("(a value in the store)"));
}

/** The keys whose value this is; an error names the key only when there is one (see FuncError). */
function keysHolding(store: Store, value: unknown): string[] {
  if (typeof value !== "string") return [];
  const keys: string[] = [];
  for (const [key, v] of store) if (v === value) keys.push(key);
  return keys;
}

/** Argument i (from 0) for its parameter: checked, and converted as Value<> says. */
function convert(param: Param, v: unknown, i: number): unknown {
  switch (param.replace(/^\.\.\.|\?$/g, "") as Type) {
    case "string":
      return str(v, i);
    case "int":
      return int(v, i);
    case "list":
      return list(v, i);
    case "any":
      return v;
  }
}

// Numbers and booleans are accepted where Go wants a string because JSON data and
// handlebars literals reach helpers as numbers; they are printed as %v would.
function str(v: unknown, i: number): string {
  if (typeof v === "string") return v;
  if (typeof v === "number" || typeof v === "bigint" || typeof v === "boolean") return formatValue(v);
  throw new Failure(`argument ${i + 1}: expected string, got ${goTypeName(v)}`);
}

// Go ints. A float64 without a fraction and a string of decimal digits (what getv returns, with the
// syntax strconv.Atoi accepts) are accepted too; anything else is an error naming the argument.
function int(v: unknown, i: number): bigint {
  let n: bigint | undefined;
  if (typeof v === "bigint") n = v;
  else if (typeof v === "number" && Number.isInteger(v)) n = BigInt(v);
  else if (typeof v === "string" && /^[+-]?[0-9]+$/.test(v)) n = BigInt(v);
  if (n === undefined) throw rejected(i, `argument ${i + 1}: expected integer, got ${goTypeName(v)}`);
  if (n !== BigInt.asIntN(64, n)) throw rejected(i, `argument ${i + 1}: integer out of range`);
  return n;
}

function list(v: unknown, i: number): unknown[] {
  if (Array.isArray(v)) return [...(v as unknown[])];
  throw new Failure(`argument ${i + 1}: expected list, got ${goTypeName(v)}`);
}

function divisor(y: bigint): bigint {
  if (y === 0n) throw new Failure("integer divide by zero");
  return y;
}

// A typo such as seq 1 1000000000 would exhaust memory; no config file needs more.
const SEQ_LIMIT = 1_000_000;

// --- store and DNS -------------------------------------------------------------

/**
 * get's and getv's answer for a key the store does not hold: the resource's missing_key rule, kept here
 * so that both engines follow it. "error" fails as Go words it: "key does not exist: /app/missing".
 */
function absent(cx: Context, key: string): string {
  if (cx.missingKey === "empty") return "";
  throw new KeyFailure(key, (shown) => `key does not exist: ${shown}`);
}

function matching(store: Store, pattern: string): KVPair[] {
  const found: KVPair[] = [];
  try {
    // Checked even on an empty store, where memkv would not notice a bad pattern.
    globMatch(pattern, "");
    for (const [Key, Value] of store) if (globMatch(pattern, Key)) found.push({ Key, Value });
  } catch (err) {
    // Go's message does not show the pattern; the error's key does.
    if (err instanceof GlobSyntaxError) throw new KeyFailure(pattern, () => err.message);
    throw err;
  }
  return found.sort((a, b) => compareGoStrings(a.Key, b.Key));
}

/**
 * A catalog function's answer, or [] while the render was not given it (the renderer fetches it and
 * renders again). Arguments that are not a dependency are rejected without showing them (see FuncError).
 */
function catalogList(cx: Context, func: CatalogFunc, args: string[]): unknown[] {
  let dep;
  try {
    dep = parseCatalogCall(func, args);
  } catch (err) {
    if (err instanceof CatalogQueryError) throw err.arg === undefined ? new Failure(err.message) : rejected(err.arg, err.message);
    throw err;
  }
  const values = storeValues(cx.store);
  if (args.some((arg) => values.has(arg))) dep.fromStore = true;
  return cx.catalog.read(dep) ?? [];
}

const VALUE_SETS = new WeakMap<Store, Set<string>>();

/** The store's values, as a set made once per store: a template may call `service .Name` for every service. */
function storeValues(store: Store): Set<string> {
  let values = VALUE_SETS.get(store);
  if (!values) VALUE_SETS.set(store, (values = new Set(store.values())));
  return values;
}

function ips(dns: DnsAnswers, name: string): string[] {
  return [...(dns.ip(name) ?? [])].sort(compareGoStrings);
}

/** net.SRV, whose numbers are Go's unsigned ints: ints here. */
export interface SRVRecord {
  Target: string;
  Port: bigint;
  Priority: bigint;
  Weight: bigint;
}

function srvRecord(r: SRV): SRVRecord {
  return { Target: r.Target, Port: BigInt(r.Port), Priority: BigInt(r.Priority), Weight: BigInt(r.Weight) };
}

// --- strings and paths -------------------------------------------------------

// Go maps case rune by rune (unicode.ToUpper); a rune whose full case mapping is
// several runes ("ß" to "SS") is left alone, as Go leaves it. Like strings.Map, a byte that is not
// UTF-8 (held as its escape, bytes.ts) becomes U+FFFD.
function mapRunes(s: string, map: (c: string) => string): string {
  if (/^[\x00-\x7f]*$/.test(s)) return map(s);
  let out = "";
  for (const c of s) {
    if (c >= "\udc80" && c <= "\udcff") {
      out += "\ufffd";
      continue;
    }
    const m = map(c);
    out += Array.from(m).length === 1 ? m : c;
  }
  return out;
}

// strings.Replace: n < 0 replaces all; an empty old inserts at every rune boundary.
function goReplace(s: string, old: string, replacement: string, limit: number): string {
  if (old === replacement || limit === 0) return s;
  let count = 0;
  if (old === "") {
    count = Array.from(s).length + 1;
  } else {
    for (let i = s.indexOf(old); i >= 0; i = s.indexOf(old, i + old.length)) count++;
  }
  if (count === 0) return s;
  const n = limit < 0 || count < limit ? count : limit;
  let out = "";
  let start = 0;
  for (let i = 0; i < n; i++) {
    let j = start;
    if (old === "") {
      if (i > 0) j += (s.codePointAt(start) ?? 0) > 0xffff ? 2 : 1;
    } else {
      j = s.indexOf(old, start);
    }
    out += s.slice(start, j) + replacement;
    start = j + old.length;
  }
  return out + s.slice(start);
}

// path.Clean.
function cleanPath(p: string): string {
  if (p === "") return ".";
  const rooted = p.startsWith("/");
  const parts: string[] = [];
  for (const part of p.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") {
      if (parts.length > 0 && parts[parts.length - 1] !== "..") parts.pop();
      else if (!rooted) parts.push("..");
      continue;
    }
    parts.push(part);
  }
  const joined = parts.join("/");
  if (rooted) return "/" + joined;
  return joined === "" ? "." : joined;
}

// path.Base.
function pathBase(p: string): string {
  if (p === "") return ".";
  const trimmed = p.replace(/\/+$/, "");
  if (trimmed === "") return "/";
  return trimmed.slice(trimmed.lastIndexOf("/") + 1);
}

// ls and lsdir list the direct children of a path. memkv compares only as many path
// segments as the shorter of key and path has, so its ls "/a/b" also returns names
// from "/a/bc" and "/a/x", and ls or lsdir "/" miss nested keys; this is the listing
// it means to give. Like memkv (and ls on a file), ls of a path that is itself a key
// includes that key's own name.
function children(store: Store, path: string, dirsOnly: boolean): string[] {
  const dir = cleanPath(path);
  const prefix = dir === "/" ? "/" : dir + "/";
  const names = new Set<string>();
  for (const key of store.keys()) {
    if (!dirsOnly && (key === path || key === dir)) {
      names.add(pathBase(key));
      continue;
    }
    if (!key.startsWith(prefix)) continue;
    const rest = key.slice(prefix.length);
    const slash = rest.indexOf("/");
    if (dirsOnly) {
      if (slash > 0) names.add(rest.slice(0, slash));
    } else {
      const name = slash < 0 ? rest : rest.slice(0, slash);
      if (name !== "") names.add(name);
    }
  }
  return [...names].sort(compareGoStrings);
}

// --- encodings ---------------------------------------------------------------

/**
 * json.Unmarshal of the text into the target type, checking in Go's order: syntax and depth, the outer
 * type, then the values, where a number beyond float64's range is an error (JSON.parse gives Infinity).
 * Go's strings are UTF-8: each byte that is not (see bytes.ts) and each lone surrogate ("\ud83d")
 * becomes U+FFFD, in keys too. JSON null is returned as null, for the caller's empty value.
 */
function decodeJson(text: string, target: "map[string]interface {}" | "[]interface {}"): unknown {
  let value: unknown;
  try {
    // Bytes first, so that a byte's escape cannot pair with a "\ud83d" before it.
    value = JSON.parse(text.toWellFormed()) as unknown;
  } catch {
    // JSON.parse's message quotes the text.
    throw rejected(0, jsonSyntaxError(text));
  }
  const deep = tooDeep(text);
  if (deep >= 0) throw rejected(0, `invalid character at input byte ${deep} exceeded max depth`);
  if (value === null) return null;
  if (typeof value !== "object" || Array.isArray(value) !== (target === "[]interface {}")) throw unmarshalError(value, target);
  const decoded = goDecode(value as Container);
  if (!decoded.finite) throw rejected(0, "json: cannot unmarshal number into Go value of type float64");
  return decoded.value;
}

type Container = Record<string, unknown> | unknown[];

/**
 * A freshly parsed value as encoding/json decodes it, changed in place where it can be: every string and
 * key made well-formed (lone surrogates become U+FFFD); finite is false if a number is beyond float64's
 * range. A loop, not recursion: JSON may nest 10,000 deep.
 */
function goDecode(root: Container): { value: Container; finite: boolean } {
  let finite = true;
  // The root is held in an array so that it is treated as every other value, and may be replaced too.
  const holder = [root];
  const pending: Container[] = [holder];
  for (let container = pending.pop(); container !== undefined; container = pending.pop()) {
    const entries = container as Record<string, unknown>;
    for (const k of Object.keys(entries)) {
      const v = entries[k];
      if (typeof v === "string") entries[k] = v.toWellFormed();
      else if (typeof v === "number") finite &&= Number.isFinite(v);
      else if (typeof v === "object" && v !== null) pending.push((entries[k] = withWellFormedKeys(v as Container)));
    }
  }
  return { value: holder[0]!, finite };
}

/** The object with its keys made well-formed: rebuilt in order, so that of two keys now equal the last wins, as in Go. */
function withWellFormedKeys(v: Container): Container {
  if (Array.isArray(v) || Object.keys(v).every((k) => k.isWellFormed())) return v;
  // fromEntries defines own properties, so a "__proto__" key stays a key.
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [k.toWellFormed(), x]));
}

/** encoding/json refuses nesting past 10,000 levels; JSON.parse takes any depth. */
const JSON_MAX_DEPTH = 10_000;

/** The byte offset of the bracket that opens level 10,001, or -1. Only called on valid JSON. */
function tooDeep(text: string): number {
  if (text.length <= JSON_MAX_DEPTH) return -1;
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > JSON_MAX_DEPTH) return byteLength(text.slice(0, i));
    } else if (c === 0x5d || c === 0x7d) {
      depth--;
    }
  }
  return -1;
}

function unmarshalError(v: unknown, target: string): Failure {
  const kind = Array.isArray(v) ? "array" : typeof v === "object" ? "object" : typeof v === "boolean" ? "bool" : typeof v;
  return rejected(0, `json: cannot unmarshal ${kind} into Go value of type ${target}`);
}

const JSON_SPACE = new Set([0x20, 0x09, 0x0a, 0x0d]);
const JSON_ESCAPES = new Set([...'"\\/bfnrt'].map((c) => c.charCodeAt(0)));
const isDigit = (c: number | undefined): boolean => c !== undefined && c >= 0x30 && c <= 0x39;
const isHex = (c: number | undefined): boolean => c !== undefined && /[0-9a-fA-F]/.test(String.fromCharCode(c));

/**
 * encoding/json's syntax error for text JSON.parse rejected, with the byte offset of the offending
 * character in place of the character: "invalid character at input byte 0 looking for beginning of value".
 */
function jsonSyntaxError(text: string): string {
  const b = encodeText(text);
  const END = "unexpected end of JSON input";
  let i = 0;
  const invalid = (context: string): string => `invalid character at input byte ${i} ${context}`;
  // What the scanner expects next; "next" is a comma or the end of the innermost array or object.
  type State = "value" | "firstElement" | "key" | "firstKey" | "colon" | "next" | "end";
  let state: State = "value";
  const open: Array<"[" | "{"> = [];
  const afterValue = (): State => (open.length === 0 ? "end" : "next");
  // Scans the string starting at b[i], returning an error or undefined.
  const string = (): string | undefined => {
    for (i++; ; ) {
      const c = b[i];
      if (c === undefined) return END;
      if (c === 0x22) {
        i++;
        return undefined;
      }
      if (c < 0x20) return invalid("in string literal");
      i++;
      if (c !== 0x5c) continue;
      if (i === b.length) return END;
      if (JSON_ESCAPES.has(b[i]!)) {
        i++;
        continue;
      }
      if (b[i] !== 0x75) return invalid("in string escape code");
      i++;
      for (let k = 0; k < 4; k++, i++) {
        if (i === b.length) return END;
        if (!isHex(b[i])) return invalid("in \\u hexadecimal character escape");
      }
    }
  };
  const number = (): string | undefined => {
    if (b[i] === 0x2d) {
      i++;
      if (i === b.length) return END;
      if (!isDigit(b[i])) return invalid("in numeric literal");
    }
    if (b[i] === 0x30) i++;
    else while (isDigit(b[i])) i++;
    if (b[i] === 0x2e) {
      i++;
      if (i === b.length) return END;
      if (!isDigit(b[i])) return invalid("after decimal point in numeric literal");
      while (isDigit(b[i])) i++;
    }
    if (b[i] === 0x65 || b[i] === 0x45) {
      i++;
      if (b[i] === 0x2b || b[i] === 0x2d) i++;
      if (i === b.length) return END;
      if (!isDigit(b[i])) return invalid("in exponent of numeric literal");
      while (isDigit(b[i])) i++;
    }
    return undefined;
  };
  const literal = (word: string): string | undefined => {
    for (let k = 1, i0 = i; k < word.length; k++) {
      i = i0 + k;
      if (i === b.length) return END;
      if (b[i] !== word.charCodeAt(k)) return invalid(`in literal ${word} (expecting '${word[k]}')`);
    }
    i++;
    return undefined;
  };
  for (;;) {
    while (JSON_SPACE.has(b[i]!)) i++;
    const c = b[i];
    // Text that ends where a value may end is valid JSON to both parsers; "invalid JSON" only completes the function.
    if (c === undefined) return state === "end" ? "invalid JSON" : END;
    let err: string | undefined;
    switch (state) {
      case "end":
        return invalid("after top-level value");
      case "firstElement":
      case "value":
        if (state === "firstElement" && c === 0x5d) {
          i++;
          open.pop();
          state = afterValue();
        } else if (c === 0x7b || c === 0x5b) {
          i++;
          open.push(c === 0x7b ? "{" : "[");
          state = c === 0x7b ? "firstKey" : "firstElement";
        } else {
          if (c === 0x22) err = string();
          else if (c === 0x2d || isDigit(c)) err = number();
          else if (c === 0x74) err = literal("true");
          else if (c === 0x66) err = literal("false");
          else if (c === 0x6e) err = literal("null");
          else return invalid("looking for beginning of value");
          state = afterValue();
        }
        break;
      case "firstKey":
      case "key":
        if (state === "firstKey" && c === 0x7d) {
          i++;
          open.pop();
          state = afterValue();
          break;
        }
        if (c !== 0x22) return invalid("looking for beginning of object key string");
        err = string();
        state = "colon";
        break;
      case "colon":
        if (c !== 0x3a) return invalid("after object key");
        i++;
        state = "value";
        break;
      case "next": {
        const inArray = open[open.length - 1] === "[";
        if (c === 0x2c) {
          i++;
          state = inArray ? "value" : "key";
        } else if (c === (inArray ? 0x5d : 0x7d)) {
          i++;
          open.pop();
          state = afterValue();
        } else {
          return invalid(inArray ? "after array element" : "after object key:value pair");
        }
      }
    }
    if (err !== undefined) return err;
  }
}

const TRUE_WORDS = new Set(["1", "t", "T", "TRUE", "true", "True"]);
const FALSE_WORDS = new Set(["0", "f", "F", "FALSE", "false", "False"]);

const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const B64_VALUES = new Map([...B64].map((c, i) => [c.charCodeAt(0), i]));

// base64.StdEncoding.DecodeString: padding required, CR and LF skipped, and errors
// name the offending input byte as Go's CorruptInputError does.
function decodeBase64(text: string): Uint8Array {
  const src = encodeText(text);
  const out: number[] = [];
  const corrupt = (at: number): Failure => rejected(0, `illegal base64 data at input byte ${at}`);
  const skipNewlines = (i: number): number => {
    while (i < src.length && (src[i] === 0x0a || src[i] === 0x0d)) i++;
    return i;
  };
  let si = 0;
  for (;;) {
    const quantum: [number, number, number, number] = [0, 0, 0, 0];
    let length = 4;
    for (let j = 0; j < 4; ) {
      if (si === src.length) {
        if (j === 0) return Uint8Array.from(out);
        throw corrupt(si - j);
      }
      const c = src.readUInt8(si++);
      const value = B64_VALUES.get(c);
      if (value !== undefined) {
        quantum[j++] = value;
        continue;
      }
      if (c === 0x0a || c === 0x0d) continue;
      if (c !== 0x3d || j < 2) throw corrupt(si - 1);
      if (j === 2) {
        si = skipNewlines(si);
        if (si === src.length) throw corrupt(src.length);
        if (src[si] !== 0x3d) throw corrupt(si - 1);
        si++;
      }
      si = skipNewlines(si);
      if (si < src.length) throw corrupt(si);
      length = j;
      break;
    }
    const bits = (quantum[0] << 18) | (quantum[1] << 12) | (quantum[2] << 6) | quantum[3];
    out.push(...[(bits >> 16) & 0xff, (bits >> 8) & 0xff, bits & 0xff].slice(0, length - 1));
  }
}
