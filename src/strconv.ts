// Go's strconv for printing: quoting strings and runes (Quote, QuoteToASCII, QuoteRune, CanBackquote,
// unicode.IsPrint) and formatting floats (FormatFloat's verbs, shortest and fixed precision). Loaded by
// the template parser for its messages, so it depends on nothing.

/** strconv.Quote, or QuoteToASCII. */
export function goQuote(s: string, asciiOnly = false): string {
  return quoteWith(s, '"', asciiOnly);
}

/** strconv.QuoteRune, or QuoteRuneToASCII, of a valid rune. */
export function goQuoteRune(r: number, asciiOnly: boolean): string {
  return quoteWith(String.fromCodePoint(r), "'", asciiOnly);
}

// --- quoting -----------------------------------------------------------------

const PRINTABLE = /^[\p{L}\p{M}\p{N}\p{P}\p{S}]$/u;

// unicode.IsPrint: letters, marks, numbers, punctuation, symbols and the ASCII space.
export function isPrint(r: number): boolean {
  if (r < 0x80) return r >= 0x20 && r < 0x7f;
  return PRINTABLE.test(String.fromCodePoint(r));
}

export function canBackquote(s: string): boolean {
  for (const ch of s) {
    const r = ch.codePointAt(0) ?? 0;
    if (r === 0xfeff || (r >= 0xd800 && r <= 0xdfff)) return false;
    if ((r < 0x20 && r !== 0x09) || r === 0x60 || r === 0x7f) return false;
  }
  return true;
}

const SHORT_ESCAPES: ReadonlyMap<number, string> = new Map([
  [0x07, "\\a"],
  [0x08, "\\b"],
  [0x0c, "\\f"],
  [0x0a, "\\n"],
  [0x0d, "\\r"],
  [0x09, "\\t"],
  [0x0b, "\\v"],
]);

function hex(n: number, width: number): string {
  return n.toString(16).padStart(width, "0");
}

// strconv's quoting; a lone surrogate (no UTF-8 form) is treated as U+FFFD.
function quoteWith(s: string, quote: '"' | "'", asciiOnly: boolean): string {
  let out = quote;
  for (const ch of s) {
    let r = ch.codePointAt(0) ?? 0;
    // A byte that is not UTF-8 (held as its escape, bytes.ts) is quoted as Go quotes it: \xe9.
    if (r >= 0xdc80 && r <= 0xdcff) {
      out += "\\x" + hex(r - 0xdc00, 2);
      continue;
    }
    if (r >= 0xd800 && r <= 0xdfff) r = 0xfffd;
    const c = String.fromCodePoint(r);
    if (c === quote || c === "\\") {
      out += "\\" + c;
    } else if (asciiOnly ? r < 0x80 && isPrint(r) : isPrint(r)) {
      out += c;
    } else {
      const short = SHORT_ESCAPES.get(r);
      if (short !== undefined) out += short;
      else if (r < 0x20 || r === 0x7f) out += "\\x" + hex(r, 2);
      else if (r < 0x10000) out += "\\u" + hex(r, 4);
      else out += "\\U" + hex(r, 8);
    }
  }
  return out + quote;
}

// --- floats ------------------------------------------------------------------

// A decimal number 0.d × 10^dp with no trailing zeros in d; zero has d = "" and dp = 0.
interface Decimal {
  d: string;
  dp: number;
}

function floatBits(v: number): { mant: bigint; exp2: number } {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, v);
  const hi = view.getUint32(0);
  const lo = view.getUint32(4);
  const biased = (hi >>> 20) & 0x7ff;
  const frac = (BigInt(hi & 0xfffff) << 32n) | BigInt(lo);
  // value = mant × 2^exp2
  if (biased === 0) return { mant: frac, exp2: -1074 };
  return { mant: frac | (1n << 52n), exp2: biased - 1075 };
}

function trimZeros(d: string): string {
  let n = d.length;
  while (n > 0 && d[n - 1] === "0") n--;
  return d.slice(0, n);
}

// The exact decimal expansion of a double: mant × 2^-k = mant × 5^k / 10^k.
function exactDecimal(v: number): Decimal {
  if (v === 0) return { d: "", dp: 0 };
  const { mant, exp2 } = floatBits(v);
  if (exp2 >= 0) {
    const s = (mant << BigInt(exp2)).toString();
    return { d: trimZeros(s), dp: s.length };
  }
  const s = (mant * 5n ** BigInt(-exp2)).toString();
  return { d: trimZeros(s), dp: s.length + exp2 };
}

// JavaScript's shortest round-trip digits are the ones Go's shortest formatting picks.
function shortestDecimal(v: number): Decimal {
  if (v === 0) return { d: "", dp: 0 };
  const text = v.toExponential();
  const e = text.indexOf("e");
  return { d: trimZeros(text.slice(0, e).replace(".", "")), dp: Number(text.slice(e + 1)) + 1 };
}

// Rounds to nd digits, halfway cases to even as strconv does on the exact value.
function roundDecimal(a: Decimal, nd: number): Decimal {
  if (nd < 0 || nd >= a.d.length) return a;
  const next = a.d.charAt(nd);
  const up = next === "5" && nd + 1 === a.d.length ? nd > 0 && (a.d.charCodeAt(nd - 1) - 48) % 2 === 1 : next >= "5";
  if (up) {
    let i = nd - 1;
    while (i >= 0 && a.d[i] === "9") i--;
    if (i < 0) return { d: "1", dp: a.dp + 1 };
    return { d: a.d.slice(0, i) + String.fromCharCode(a.d.charCodeAt(i) + 1), dp: a.dp };
  }
  const d = trimZeros(a.d.slice(0, nd));
  return { d, dp: d === "" ? 0 : a.dp };
}

// strconv.FormatFloat(v, fmt, prec, 64).
export function formatFloat(v: number, fmt: string, precision: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  const neg = v < 0 || Object.is(v, -0);
  if (fmt === "b") return fmtB(v, neg);
  if (fmt === "x" || fmt === "X") return fmtX(v, neg, precision, fmt);

  const abs = Math.abs(v);
  const shortest = precision < 0;
  let prec = precision;
  let d: Decimal;
  if (shortest) {
    d = shortestDecimal(abs);
    if (fmt === "e" || fmt === "E") prec = Math.max(d.d.length - 1, 0);
    else if (fmt === "f") prec = Math.max(d.d.length - d.dp, 0);
    else prec = d.d.length;
  } else {
    d = exactDecimal(abs);
    if (fmt === "e" || fmt === "E") {
      d = roundDecimal(d, prec + 1);
    } else if (fmt === "f") {
      d = roundDecimal(d, d.dp + prec);
    } else {
      if (prec === 0) prec = 1;
      d = roundDecimal(d, prec);
    }
  }

  if (fmt === "e" || fmt === "E") return fmtE(neg, d, prec, fmt);
  if (fmt === "f") return fmtF(neg, d, prec);

  // %g: exponent form when the exponent is < -4 or >= the precision, and for the
  // shortest form (so for %v) when it is >= 6 — fmt.Sprint(1234567.5) is 1.2345675e+06.
  const nd = d.d.length;
  let eprec = prec;
  if (eprec > nd && nd >= d.dp) eprec = nd;
  if (shortest) eprec = 6;
  const exp = d.dp - 1;
  if (exp < -4 || exp >= eprec) {
    return fmtE(neg, d, Math.min(prec, nd) - 1, fmt === "g" ? "e" : "E");
  }
  return fmtF(neg, d, Math.max((prec > d.dp ? nd : prec) - d.dp, 0));
}

function fmtE(neg: boolean, d: Decimal, prec: number, fmt: string): string {
  const nd = d.d.length;
  let s = (neg ? "-" : "") + (nd > 0 ? d.d[0] : "0");
  if (prec > 0) {
    s += "." + d.d.slice(1, Math.min(nd, prec + 1));
    const have = Math.max(Math.min(nd, prec + 1) - 1, 0);
    s += "0".repeat(prec - have);
  }
  let exp = nd === 0 ? 0 : d.dp - 1;
  s += fmt;
  if (exp < 0) {
    s += "-";
    exp = -exp;
  } else {
    s += "+";
  }
  return s + (exp < 10 ? "0" + exp : String(exp));
}

function fmtF(neg: boolean, d: Decimal, prec: number): string {
  const nd = d.d.length;
  let s = neg ? "-" : "";
  if (d.dp > 0) {
    const m = Math.min(nd, d.dp);
    s += d.d.slice(0, m) + "0".repeat(d.dp - m);
  } else {
    s += "0";
  }
  if (prec > 0) {
    s += ".";
    for (let i = 1; i <= prec; i++) {
      const j = d.dp + i - 1;
      s += j >= 0 && j < nd ? d.d[j] : "0";
    }
  }
  return s;
}

// %b: decimal mantissa and binary exponent, -ddddp±ddd.
function fmtB(v: number, neg: boolean): string {
  const { mant, exp2 } = floatBits(Math.abs(v));
  return `${neg ? "-" : ""}${mant}p${exp2 >= 0 ? "+" : ""}${exp2}`;
}

const MASK64 = (1n << 64n) - 1n;
const BIT60 = 1n << 60n;

// %x: -0x1.hhhhp±dd, following strconv's fmtX on a 64-bit mantissa.
function fmtX(v: number, neg: boolean, prec: number, fmt: string): string {
  const bits = floatBits(Math.abs(v));
  let mant = bits.mant;
  let exp = mant === 0n ? 0 : bits.exp2 + 52;
  mant = (mant << 8n) & MASK64;
  while (mant !== 0n && (mant & BIT60) === 0n) {
    mant = (mant << 1n) & MASK64;
    exp--;
  }
  if (prec >= 0 && prec < 15) {
    const shift = BigInt(prec * 4);
    const extra = (mant << shift) & (BIT60 - 1n);
    mant >>= 60n - shift;
    if ((extra | (mant & 1n)) > 1n << 59n) mant++;
    mant = (mant << (60n - shift)) & MASK64;
    if ((mant & (1n << 61n)) !== 0n) {
      mant >>= 1n;
      exp++;
    }
  }
  const digits = fmt === "X" ? "0123456789ABCDEF" : "0123456789abcdef";
  let s = `${neg ? "-" : ""}0${fmt}${(mant >> 60n) & 1n}`;
  mant = (mant << 4n) & MASK64;
  const count = prec < 0 ? (mant === 0n ? 0 : Infinity) : prec;
  if (count > 0) {
    s += ".";
    for (let i = 0; i < count && (prec >= 0 || mant !== 0n); i++) {
      s += digits[Number((mant >> 60n) & 15n)];
      mant = (mant << 4n) & MASK64;
    }
  }
  s += fmt === "X" ? "P" : "p";
  s += exp < 0 ? "-" : "+";
  const e = Math.abs(exp);
  return s + (e < 10 ? "0" + e : String(e));
}
