// confd's template functions (memkv's store functions and template_funcs.go) plus the
// text/template builtins every engine needs, as plain synchronous functions over a
// snapshot of the store. Knows nothing of any template engine.
import { existsSync } from "node:fs";
import { byteLength, decodeBytes, encodeText, environment } from "./bytes.ts";
import { DnsCache, type DnsAnswers, type SRV } from "./dns.ts";
import { GlobSyntaxError, globMatch } from "./glob.ts";
import { GoTime } from "./gotime.ts";
import { formatValue, sprintf } from "./gofmt.ts";
import { compareGoStrings, goKind, goTypeName } from "./govalue.ts";

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
 * are shown, as keys are. The Go engine's own errors (gotemplate-exec.ts, gotemplate-builtins.ts)
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

/** Argument arg (from 0) was rejected for its value, which the message does not show (see FuncError). */
function rejected(fn: string, arg: number, message: string): FuncError {
  return new FuncError(fn, message, undefined, arg);
}

export interface FuncOptions {
  env?: Readonly<Record<string, string | undefined>>;
  now?: () => Date;
  dns?: DnsAnswers;
  fileExists?: (path: string) => boolean;
}

// Go's template truth: false, 0, "", nil and empty lists and maps are false; structs
// (pairs, SRV records, times) are always true.
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

export function createFuncs(store: Store, options: FuncOptions = {}): Record<string, TemplateFunc> {
  const env = options.env ?? environment();
  const now = options.now ?? (() => new Date());
  const dns = options.dns ?? new DnsCache();
  const fileExists = options.fileExists ?? existsSync;

  const matching = (fn: string, pattern: string): KVPair[] => {
    const found: KVPair[] = [];
    try {
      // Checked even on an empty store, where memkv would not notice a bad pattern.
      globMatch(pattern, "");
      for (const [Key, Value] of store) if (globMatch(pattern, Key)) found.push({ Key, Value });
    } catch (err) {
      if (err instanceof GlobSyntaxError) throw new FuncError(fn, err.message, pattern);
      throw err;
    }
    return found.sort((a, b) => compareGoStrings(a.Key, b.Key));
  };

  const ips = (name: string): string[] => [...(dns.ip(name) ?? [])].sort(compareGoStrings);

  const arith = (fn: string, op: (a: bigint, b: bigint) => bigint): TemplateFunc => {
    return (...a) => {
      arity(fn, a, 2, 2);
      const x = BigInt(int(fn, a, 0));
      const y = BigInt(int(fn, a, 1));
      if ((fn === "div" || fn === "mod") && y === 0n) throw new FuncError(fn, "integer divide by zero");
      return safe(fn, op(x, y));
    };
  };

  // The key to name for a rejected value, when one key alone holds it.
  const keyHolding = (value: unknown): string | undefined => {
    if (typeof value !== "string") return undefined;
    let found: string | undefined;
    for (const [key, v] of store) {
      if (v !== value) continue;
      if (found !== undefined) return undefined;
      found = key;
    }
    return found;
  };

  const library = {
    get: (...a) => {
      arity("get", a, 1, 1);
      const key = str("get", a, 0);
      const value = store.get(key);
      if (value === undefined) throw new FuncError("get", `key does not exist: ${key}`, key);
      return { Key: key, Value: value } satisfies KVPair;
    },
    gets: (...a) => {
      arity("gets", a, 1, 1);
      return matching("gets", str("gets", a, 0));
    },
    getv: (...a) => {
      arity("getv", a, 1, Infinity);
      const key = str("getv", a, 0);
      const value = store.get(key);
      if (value !== undefined) return value;
      if (a.length > 1) return str("getv", a, 1);
      throw new FuncError("getv", `key does not exist: ${key}`, key);
    },
    getvs: (...a) => {
      arity("getvs", a, 1, 1);
      return matching("getvs", str("getvs", a, 0))
        .map((kv) => kv.Value)
        .sort(compareGoStrings);
    },
    ls: (...a) => {
      arity("ls", a, 1, 1);
      return children(store, str("ls", a, 0), false);
    },
    lsdir: (...a) => {
      arity("lsdir", a, 1, 1);
      return children(store, str("lsdir", a, 0), true);
    },
    exists: (...a) => {
      arity("exists", a, 1, 1);
      return store.has(str("exists", a, 0));
    },
    base: (...a) => {
      arity("base", a, 1, 1);
      return pathBase(str("base", a, 0));
    },
    dir: (...a) => {
      arity("dir", a, 1, 1);
      const p = str("dir", a, 0);
      return cleanPath(p.slice(0, p.lastIndexOf("/") + 1));
    },
    split: (...a) => {
      arity("split", a, 2, 2);
      const s = str("split", a, 0);
      const sep = str("split", a, 1);
      return sep === "" ? Array.from(s) : s.split(sep);
    },
    join: (...a) => {
      arity("join", a, 2, 2);
      return list("join", a, 0).map(formatValue).join(str("join", a, 1));
    },
    json: (...a) => {
      arity("json", a, 1, 1);
      const v = parseJson("json", str("json", a, 0));
      if (v === null) return {};
      if (typeof v !== "object" || Array.isArray(v)) throw unmarshalError("json", v, "map[string]interface {}");
      return v;
    },
    jsonArray: (...a) => {
      arity("jsonArray", a, 1, 1);
      const v = parseJson("jsonArray", str("jsonArray", a, 0));
      if (v === null) return [];
      if (!Array.isArray(v)) throw unmarshalError("jsonArray", v, "[]interface {}");
      return v;
    },
    map: (...a) => {
      if (a.length % 2 !== 0) throw new FuncError("map", "invalid map call");
      const entries: Array<[string, unknown]> = [];
      for (let i = 0; i < a.length; i += 2) {
        const key = a[i];
        if (typeof key !== "string") throw new FuncError("map", "map keys must be strings");
        entries.push([key, a[i + 1]]);
      }
      // fromEntries defines own properties, so a "__proto__" key stays a key.
      return Object.fromEntries(entries);
    },
    getenv: (...a) => {
      arity("getenv", a, 1, Infinity);
      const value = env[str("getenv", a, 0)];
      if (value !== undefined && value !== "") return value;
      return a.length > 1 ? str("getenv", a, 1) : "";
    },
    // The layout argument is this project's addition; confd's datetime is time.Now.
    datetime: (...a) => {
      arity("datetime", a, 0, 1);
      const t = new GoTime(now());
      return a.length === 0 ? t : t.Format(str("datetime", a, 0));
    },
    toUpper: (...a) => {
      arity("toUpper", a, 1, 1);
      return mapRunes(str("toUpper", a, 0), (c) => c.toUpperCase());
    },
    toLower: (...a) => {
      arity("toLower", a, 1, 1);
      return mapRunes(str("toLower", a, 0), (c) => c.toLowerCase());
    },
    contains: (...a) => {
      arity("contains", a, 2, 2);
      return str("contains", a, 0).includes(str("contains", a, 1));
    },
    replace: (...a) => {
      arity("replace", a, 4, 4);
      return goReplace(str("replace", a, 0), str("replace", a, 1), str("replace", a, 2), int("replace", a, 3));
    },
    trimSuffix: (...a) => {
      arity("trimSuffix", a, 2, 2);
      const s = str("trimSuffix", a, 0);
      const suffix = str("trimSuffix", a, 1);
      return s.endsWith(suffix) ? s.slice(0, s.length - suffix.length) : s;
    },
    lookupIP: (...a) => {
      arity("lookupIP", a, 1, 1);
      return ips(str("lookupIP", a, 0));
    },
    lookupIPV4: (...a) => {
      arity("lookupIPV4", a, 1, 1);
      return ips(str("lookupIPV4", a, 0)).filter((ip) => ip.includes("."));
    },
    lookupIPV6: (...a) => {
      arity("lookupIPV6", a, 1, 1);
      return ips(str("lookupIPV6", a, 0)).filter((ip) => ip.includes(":"));
    },
    lookupSRV: (...a) => {
      arity("lookupSRV", a, 3, 3);
      const records = dns.srv(str("lookupSRV", a, 0), str("lookupSRV", a, 1), str("lookupSRV", a, 2)) ?? [];
      // confd orders records by Sprintf("%s%d%d%d", Target, Port, Priority, Weight).
      const sortKey = (r: SRV): string => `${r.Target}${r.Port}${r.Priority}${r.Weight}`;
      return [...records].sort((x, y) => compareGoStrings(sortKey(x), sortKey(y)));
    },
    fileExists: (...a) => {
      arity("fileExists", a, 1, 1);
      return fileExists(str("fileExists", a, 0));
    },
    base64Encode: (...a) => {
      arity("base64Encode", a, 1, 1);
      return encodeText(str("base64Encode", a, 0)).toString("base64");
    },
    base64Decode: (...a) => {
      arity("base64Decode", a, 1, 1);
      return decodeBytes(decodeBase64(str("base64Decode", a, 0)));
    },
    parseBool: (...a) => {
      arity("parseBool", a, 1, 1);
      const s = str("parseBool", a, 0);
      if (TRUE_WORDS.has(s)) return true;
      if (FALSE_WORDS.has(s)) return false;
      throw rejected("parseBool", 0, "strconv.ParseBool: invalid syntax");
    },
    // Go's version reverses []string and []KVPair and returns anything else unchanged;
    // every JavaScript array is reversed here, as a copy.
    reverse: (...a) => {
      arity("reverse", a, 1, 1);
      return Array.isArray(a[0]) ? [...(a[0] as unknown[])].reverse() : a[0];
    },
    sortByLength: (...a) => {
      arity("sortByLength", a, 1, 1);
      const values = list("sortByLength", a, 0).map((v, i) => {
        if (typeof v !== "string") throw new FuncError("sortByLength", `element ${i}: expected string, got ${goTypeName(v)}`);
        return v;
      });
      return values.sort((x, y) => byteLength(x) - byteLength(y));
    },
    sortKVByLength: (...a) => {
      arity("sortKVByLength", a, 1, 1);
      const pairs = list("sortKVByLength", a, 0).map((v, i) => {
        if (goTypeName(v) !== "memkv.KVPair") {
          throw new FuncError("sortKVByLength", `element ${i}: expected a key/value pair, got ${goTypeName(v)}`);
        }
        return v as KVPair;
      });
      return pairs.sort((x, y) => byteLength(x.Key) - byteLength(y.Key));
    },
    add: arith("add", (x, y) => x + y),
    sub: arith("sub", (x, y) => x - y),
    mul: arith("mul", (x, y) => x * y),
    // BigInt division truncates toward zero and % takes the dividend's sign, as in Go.
    div: arith("div", (x, y) => x / y),
    mod: arith("mod", (x, y) => x % y),
    seq: (...a) => {
      arity("seq", a, 2, 2);
      const first = int("seq", a, 0);
      const last = int("seq", a, 1);
      if (last - first >= SEQ_LIMIT) throw new FuncError("seq", `sequence longer than ${SEQ_LIMIT} numbers`);
      const out: number[] = [];
      for (let i = first; i <= last; i++) out.push(i);
      return out;
    },
    atoi: (...a) => {
      arity("atoi", a, 1, 1);
      const s = str("atoi", a, 0);
      if (!/^[+-]?[0-9]+$/.test(s)) throw rejected("atoi", 0, "strconv.Atoi: invalid syntax");
      const n = Number(s);
      if (!Number.isSafeInteger(n)) throw rejected("atoi", 0, "strconv.Atoi: value out of range");
      return n === 0 ? 0 : n;
    },

    eq: (...a) => {
      if (a.length < 2) throw new FuncError("eq", "missing argument for comparison");
      return a.slice(1).some((b) => equal("eq", a[0], b));
    },
    ne: (...a) => {
      arity("ne", a, 2, 2);
      return !equal("ne", a[0], a[1]);
    },
    lt: (...a) => {
      arity("lt", a, 2, 2);
      return less("lt", a[0], a[1]);
    },
    le: (...a) => {
      arity("le", a, 2, 2);
      return less("le", a[0], a[1]) || equal("le", a[0], a[1]);
    },
    gt: (...a) => {
      arity("gt", a, 2, 2);
      return !(less("gt", a[0], a[1]) || equal("gt", a[0], a[1]));
    },
    ge: (...a) => {
      arity("ge", a, 2, 2);
      return !less("ge", a[0], a[1]);
    },
    and: (...a) => {
      arity("and", a, 1, Infinity);
      return a.find((v) => !isTrue(v)) ?? a[a.length - 1];
    },
    or: (...a) => {
      arity("or", a, 1, Infinity);
      return a.find((v) => isTrue(v)) ?? a[a.length - 1];
    },
    not: (...a) => {
      arity("not", a, 1, 1);
      return !isTrue(a[0]);
    },
    default: (...a) => {
      arity("default", a, 2, 2);
      return isTrue(a[0]) ? a[0] : a[1];
    },
    printf: (...a) => {
      arity("printf", a, 1, Infinity);
      return sprintf(str("printf", a, 0), a.slice(1));
    },
    len: (...a) => {
      arity("len", a, 1, 1);
      const v = a[0];
      if (typeof v === "string") return byteLength(v);
      if (Array.isArray(v)) return v.length;
      if (v instanceof Map) return v.size;
      if (goKind(v) === "map") return Object.keys(v as object).length;
      if (v === null || v === undefined) throw new FuncError("len", "len of nil pointer");
      throw new FuncError("len", `len of type ${goTypeName(v)}`);
    },
  } satisfies Record<string, TemplateFunc>;

  // No prototype: an engine looking a name up must not find "constructor" or "toString".
  const funcs: Record<string, TemplateFunc> = Object.create(null);
  for (const [name, fn] of Object.entries(library)) {
    funcs[name] = (...a) => {
      try {
        return fn(...a);
      } catch (err) {
        if (!(err instanceof FuncError) || err.arg === undefined || err.key !== undefined) throw err;
        throw new FuncError(err.func, err.message, keyHolding(a[err.arg]), err.arg);
      }
    };
  }
  return funcs;
}

// --- arguments ---------------------------------------------------------------

function arity(fn: string, args: readonly unknown[], min: number, max: number): void {
  if (args.length >= min && args.length <= max) return;
  let want = `${min}`;
  if (max === Infinity) want = `at least ${min}`;
  else if (max !== min) want = `${min} or ${max}`;
  throw new FuncError(fn, `wrong number of args for ${fn}: want ${want} got ${args.length}`);
}

// Numbers and booleans are accepted where Go wants a string because JSON data and
// handlebars literals reach helpers as numbers; they are printed as %v would.
function str(fn: string, args: readonly unknown[], i: number): string {
  const v = args[i];
  if (typeof v === "string") return v;
  if (typeof v === "number" || typeof v === "bigint" || typeof v === "boolean") return formatValue(v);
  throw new FuncError(fn, `argument ${i + 1}: expected string, got ${goTypeName(v)}`);
}

// Go ints. A string of decimal digits (what getv returns) is accepted too, with the
// syntax strconv.Atoi accepts; anything else is an error naming the argument.
function int(fn: string, args: readonly unknown[], i: number): number {
  const v = args[i];
  if (typeof v === "number" && Number.isSafeInteger(v)) return v === 0 ? 0 : v;
  if (typeof v === "bigint" && v >= MIN_SAFE && v <= MAX_SAFE) return Number(v);
  const digits = typeof v === "string" && /^[+-]?[0-9]+$/.test(v);
  if (digits && Number.isSafeInteger(Number(v))) return Number(v) || 0;
  const integral = digits || typeof v === "bigint" || Number.isInteger(v);
  throw rejected(fn, i, integral ? `argument ${i + 1}: integer out of range` : `argument ${i + 1}: expected integer, got ${goTypeName(v)}`);
}

function list(fn: string, args: readonly unknown[], i: number): unknown[] {
  const v = args[i];
  if (Array.isArray(v)) return [...(v as unknown[])];
  throw new FuncError(fn, `argument ${i + 1}: expected list, got ${goTypeName(v)}`);
}

const MIN_SAFE = BigInt(Number.MIN_SAFE_INTEGER);
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

// Go's int wraps around silently; a JavaScript number cannot hold the wrapped value
// exactly, so leaving the safe integer range is an error instead.
function safe(fn: string, v: bigint): number {
  if (v < MIN_SAFE || v > MAX_SAFE) throw new FuncError(fn, "integer overflow");
  return Number(v);
}

// A typo such as seq 1 1000000000 would exhaust memory; no config file needs more.
const SEQ_LIMIT = 1_000_000;

// --- comparisons (text/template's eq, lt and friends) ------------------------

const NUMERIC = /^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$/;

// Go compares an int only with an int. Here every number is comparable with every
// number, and a number with a string that spells a decimal number, since getv
// returns strings: eq (getv "/port") 80 compares 80 with 80.
function asNumber(v: unknown): number | bigint | undefined {
  if (typeof v === "number" || typeof v === "bigint") return v;
  if (typeof v === "string" && NUMERIC.test(v)) return Number(v);
  return undefined;
}

function isNumber(v: unknown): boolean {
  return typeof v === "number" || typeof v === "bigint";
}

function numbersEqual(x: number | bigint, y: number | bigint): boolean {
  if (typeof x === "number" && typeof y === "number") return x === y;
  if (typeof x === "bigint" && typeof y === "bigint") return x === y;
  const n = typeof x === "number" ? x : (y as number);
  const b = typeof x === "bigint" ? x : (y as bigint);
  return Number.isInteger(n) && BigInt(n) === b;
}

function equal(fn: string, a: unknown, b: unknown): boolean {
  const ka = goKind(a);
  const kb = goKind(b);
  if (ka === "nil" || kb === "nil") return ka === kb;
  if (isNumber(a) || isNumber(b)) {
    const x = asNumber(a);
    const y = asNumber(b);
    if (x === undefined || y === undefined) throw incompatible(fn);
    return numbersEqual(x, y);
  }
  if (ka !== kb) throw incompatible(fn);
  if (ka === "string" || ka === "bool") return a === b;
  if (ka === "struct") return structsEqual(fn, a, b);
  throw new FuncError(fn, `non-comparable type ${goTypeName(a)}`);
}

function structsEqual(fn: string, a: unknown, b: unknown): boolean {
  if (goTypeName(a) !== goTypeName(b)) throw incompatible(fn);
  const ta = a instanceof Date ? new GoTime(a) : a;
  const tb = b instanceof Date ? new GoTime(b) : b;
  if (ta instanceof GoTime && tb instanceof GoTime) return ta.UnixMilli() === tb.UnixMilli() && ta.String() === tb.String();
  const ra = a as Record<string, unknown>;
  const rb = b as Record<string, unknown>;
  return Object.keys(ra).every((k) => ra[k] === rb[k]);
}

function less(fn: string, a: unknown, b: unknown): boolean {
  for (const v of [a, b]) {
    const k = goKind(v);
    if (k !== "int" && k !== "float" && k !== "string") throw new FuncError(fn, "invalid type for comparison");
  }
  if (typeof a === "string" && typeof b === "string") return compareGoStrings(a, b) < 0;
  const x = asNumber(a);
  const y = asNumber(b);
  if (x === undefined || y === undefined) throw incompatible(fn);
  return x < y;
}

function incompatible(fn: string): FuncError {
  return new FuncError(fn, "incompatible types for comparison");
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

function parseJson(fn: string, s: string): unknown {
  let value: unknown;
  try {
    value = JSON.parse(s) as unknown;
  } catch {
    // JSON.parse's message quotes the text.
    throw rejected(fn, 0, jsonSyntaxError(s));
  }
  const deep = tooDeep(s);
  if (deep >= 0) throw rejected(fn, 0, `invalid character at input byte ${deep} exceeded max depth`);
  return value;
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

function unmarshalError(fn: string, v: unknown, target: string): FuncError {
  const kind = Array.isArray(v) ? "array" : typeof v === "object" ? "object" : typeof v === "boolean" ? "bool" : typeof v;
  return rejected(fn, 0, `json: cannot unmarshal ${kind} into Go value of type ${target}`);
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
  const corrupt = (at: number): FuncError => rejected("base64Decode", 0, `illegal base64 data at input byte ${at}`);
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

/** The name of every function createFuncs provides, for the template compilers' "unknown function" checks. */
export function funcNames(): Set<string> {
  return new Set(Object.keys(createFuncs(new Map())));
}
