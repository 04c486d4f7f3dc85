// Go's literal syntax in templates, as text/template reads it: numbers (strconv.ParseInt, ParseUint and
// ParseFloat with base prefixes and underscores, resolved as Go's idealConstant resolves them),
// character constants and quoted or raw strings (strconv.Unquote). Messages are Go's parse errors.
import { decodeBytes, encodeText } from "./bytes.ts";
import type { NumberNode } from "./gotemplate-node.ts";
import { goQuote } from "./strconv.ts";

export type NumberValue = Pick<NumberNode, "value" | "overflows">;

const INT64_MIN = -(1n << 63n);
const INT64_MAX = (1n << 63n) - 1n;
const UINT64_MAX = (1n << 64n) - 1n;

/**
 * Go's newNumber followed by idealConstant: a literal is a float when it is one and is spelled with
 * '.', 'e' or 'p' (hex ints aside), otherwise an int; a value only uint64 holds "overflows int" when
 * executed. Complex numbers have no JavaScript value: they are rejected here.
 */
export function numberConstant(text: string, complex: boolean): NumberValue | string {
  // Go's imaginary constants ("4i", "1+2i"): only text that parses as one is complex.
  const imaginary = text.endsWith("i") && parseGoFloat(text.slice(0, -1)) !== undefined;
  if (complex || imaginary) return `complex number ${text} is not supported`;
  const u = parseGoUint(text);
  const i = parseGoInt(text);
  let isInt = i !== undefined;
  let isUint = u !== undefined;
  let int = i ?? (u !== undefined && u <= INT64_MAX ? u : undefined);
  let float: number | undefined;
  if (isInt || isUint) {
    float = Number(i ?? u);
  } else {
    const f = parseGoFloat(text);
    if (f !== undefined) {
      // Parsed as a float but spelled like an integer: a number too large for any int.
      if (!/[.eEpP]/.test(text)) return `integer overflow: ${goQuote(text)}`;
      float = f;
      if (Number.isInteger(f) && f >= -(2 ** 63) && f < 2 ** 63) {
        isInt = true;
        int = BigInt(f);
      }
      if (Number.isInteger(f) && f >= 0 && f < 2 ** 64) isUint = true;
    }
  }
  if (!isInt && !isUint && float === undefined) return `illegal number syntax: ${goQuote(text)}`;
  const hexInt = /^[+-]?0[xX]/.test(text) && !/[pP]/.test(text);
  if (float !== undefined && !hexInt && /[.eEpP]/.test(text)) return { value: float, overflows: false };
  if (isInt && int !== undefined) return { value: int, overflows: false };
  return { value: 0n, overflows: true };
}

export function charConstant(text: string): NumberValue | string {
  const r = unquoteChar(text, 1, 0x27);
  if (r === undefined) return "invalid syntax";
  if (text.slice(r.next) !== "'") return `malformed character constant: ${text}`;
  return { value: BigInt(r.value), overflows: false };
}

const PREFIX_BASES: Readonly<Record<string, number | undefined>> = { b: 2, o: 8, x: 16 };

/** strconv.ParseUint(s, 0, 64). */
function parseGoUint(s: string): bigint | undefined {
  if (s === "") return undefined;
  let base = 10;
  let digits = s;
  if (s[0] === "0") {
    const prefix = s.length >= 3 ? PREFIX_BASES[s[1]!.toLowerCase()] : undefined;
    base = prefix ?? 8;
    digits = s.slice(prefix === undefined ? 1 : 2);
  }
  let n = 0n;
  let underscores = false;
  for (const c of digits) {
    if (c === "_") {
      underscores = true;
      continue;
    }
    const d = parseInt(c, 36);
    if (Number.isNaN(d) || d >= base) return undefined;
    n = n * BigInt(base) + BigInt(d);
  }
  if (underscores && !underscoreOK(s)) return undefined;
  return n <= UINT64_MAX ? n : undefined;
}

/** strconv.ParseInt(s, 0, 64). */
function parseGoInt(s: string): bigint | undefined {
  const neg = s[0] === "-";
  const body = s[0] === "-" || s[0] === "+" ? s.slice(1) : s;
  const u = parseGoUint(body);
  if (u === undefined) return undefined;
  const v = neg ? -u : u;
  return v >= INT64_MIN && v <= INT64_MAX ? v : undefined;
}

const DECIMAL_FLOAT = /^[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$/;
const HEX_FLOAT = /^([+-]?)0[xX]((?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+))[pP]([+-]?[0-9]+)$/;

/** strconv.ParseFloat(s, 64) for what the lexer lets through; out of range is an error, as in Go. */
function parseGoFloat(s: string): number | undefined {
  if (s.includes("_") && !underscoreOK(s)) return undefined;
  const t = s.replaceAll("_", "");
  let v: number;
  const hex = HEX_FLOAT.exec(t);
  if (hex !== null) {
    const [, sign, mantissa, exp] = hex as unknown as [string, string, string, string];
    const dot = mantissa.indexOf(".");
    const digits = mantissa.replace(".", "");
    const fractionBits = dot < 0 ? 0 : (mantissa.length - dot - 1) * 4;
    v = Number(BigInt("0x" + (digits === "" ? "0" : digits))) * 2 ** (Number(exp) - fractionBits);
    if (sign === "-") v = -v;
  } else if (DECIMAL_FLOAT.test(t)) {
    v = Number(t);
  } else {
    return undefined;
  }
  return Number.isFinite(v) ? v : undefined;
}

/** strconv's rule: underscores only between digits, or between a base prefix and a digit. */
function underscoreOK(str: string): boolean {
  let s = str;
  let saw = "^";
  let i = 0;
  if (s.length >= 1 && (s[0] === "-" || s[0] === "+")) s = s.slice(1);
  let hex = false;
  const p = s[1]?.toLowerCase();
  if (s.length >= 2 && s[0] === "0" && (p === "b" || p === "o" || p === "x")) {
    i = 2;
    saw = "0";
    hex = p === "x";
  }
  for (; i < s.length; i++) {
    const c = s[i]!;
    const lower = c.toLowerCase();
    if ((c >= "0" && c <= "9") || (hex && lower >= "a" && lower <= "f")) {
      saw = "0";
      continue;
    }
    if (c === "_") {
      if (saw !== "0") return false;
      saw = "_";
      continue;
    }
    if (saw === "_") return false;
    saw = "!";
  }
  return saw !== "_";
}

const SIMPLE_ESCAPES: Readonly<Record<string, number>> = { a: 7, b: 8, f: 12, n: 10, r: 13, t: 9, v: 11, "\\": 0x5c };

/**
 * strconv.UnquoteChar on s from index i: the value, whether it is a character (not a byte from \x or
 * octal) and where the rest starts; undefined is ErrSyntax.
 */
function unquoteChar(s: string, i: number, quote: number): { value: number; multibyte: boolean; next: number } | undefined {
  if (i >= s.length) return undefined;
  const c = s.codePointAt(i)!;
  if (c === quote && (quote === 0x27 || quote === 0x22)) return undefined;
  if (c >= 0x80) return { value: c, multibyte: true, next: i + (c > 0xffff ? 2 : 1) };
  if (c !== 0x5c) return { value: c, multibyte: false, next: i + 1 };
  if (i + 1 >= s.length) return undefined;
  const e = s[i + 1]!;
  let next = i + 2;
  const simple = SIMPLE_ESCAPES[e];
  if (simple !== undefined && Object.hasOwn(SIMPLE_ESCAPES, e)) return { value: simple, multibyte: false, next };
  switch (e) {
    case "x":
    case "u":
    case "U": {
      const n = e === "x" ? 2 : e === "u" ? 4 : 8;
      const hex = s.slice(next, next + n);
      if (hex.length < n || !/^[0-9a-fA-F]+$/.test(hex)) return undefined;
      const v = parseInt(hex, 16);
      next += n;
      if (e === "x") return { value: v, multibyte: false, next };
      if (v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff)) return undefined;
      return { value: v, multibyte: true, next };
    }
    case "0":
    case "1":
    case "2":
    case "3":
    case "4":
    case "5":
    case "6":
    case "7": {
      const oct = s.slice(i + 1, i + 4);
      if (!/^[0-7]{3}$/.test(oct)) return undefined;
      const v = parseInt(oct, 8);
      if (v > 255) return undefined;
      return { value: v, multibyte: false, next: i + 4 };
    }
    case "'":
    case '"':
      if (e.charCodeAt(0) !== quote) return undefined;
      return { value: quote, multibyte: false, next };
  }
  return undefined;
}

/**
 * strconv.Unquote for "..." and `...`; undefined is ErrSyntax. Raw strings lose their carriage
 * returns, as in Go. Bytes from \x and octal escapes are decoded as UTF-8 with the rest: a JavaScript
 * string cannot hold bytes that are not UTF-8, which become U+FFFD.
 */
export function unquote(quoted: string): string | undefined {
  const q = quoted[0];
  if (quoted.length < 2 || quoted[quoted.length - 1] !== q) return undefined;
  const body = quoted.slice(1, -1);
  if (q === "`") return body.includes("`") ? undefined : body.replaceAll("\r", "");
  if (q !== '"') return undefined;
  if (!body.includes("\\") && !body.includes("\n") && !body.includes('"')) return body;
  const bytes: number[] = [];
  let i = 0;
  while (i < body.length) {
    if (body[i] === "\n") return undefined;
    const r = unquoteChar(body, i, 0x22);
    if (r === undefined) return undefined;
    if (r.value < 0x80 || !r.multibyte) bytes.push(r.value);
    else bytes.push(...encodeText(String.fromCodePoint(r.value)));
    i = r.next;
  }
  // "\xe9" is the byte 0xE9, as in Go: kept as its escape (bytes.ts), not replaced by U+FFFD.
  return decodeBytes(Uint8Array.from(bytes));
}
