// Go's fmt for template values: Sprintf (verbs, flags, width, precision, argument indexes and the
// %!verb(...) error forms) and %v printing, of values as govalue.ts holds them (an int is a bigint, a
// float64 a number).
import { encodeText } from "./bytes.ts";
import { GoTime } from "./gotime.ts";
import { compareGoStrings, goTypeName, structOf } from "./govalue.ts";
import { canBackquote, formatFloat, goQuote, goQuoteRune, isPrint } from "./strconv.ts";

export function formatValue(v: unknown): string {
  return withinStack(() => {
    const p = newPrinter();
    printArg(p, v, "v", 0);
    return p.out;
  });
}

/**
 * Printing recurses once a level, and a value from `json` may be nested up to Go's 10,000 levels,
 * more than a JavaScript stack holds: that is this error, about the value, not the template.
 */
export class PrintDepthError extends Error {
  constructor() {
    super("value nested too deeply to print");
    this.name = "PrintDepthError";
  }
}

function withinStack(print: () => string): string {
  try {
    return print();
  } catch (err) {
    if (err instanceof RangeError && /call stack/i.test(err.message)) throw new PrintDepthError();
    throw err;
  }
}

export function sprintf(format: string, args: readonly unknown[]): string {
  return withinStack(() => sprintfUnguarded(format, args));
}

function sprintfUnguarded(format: string, args: readonly unknown[]): string {
  const p = newPrinter();
  const f = p.f;
  const end = format.length;
  let argNum = 0;
  let afterIndex = false;
  let i = 0;
  while (i < end) {
    p.goodArgNum = true;
    const lasti = i;
    while (i < end && format[i] !== "%") i++;
    if (i > lasti) p.out += format.slice(lasti, i);
    if (i >= end) break;
    i++;

    clearFlags(f);
    flags: for (; i < end; i++) {
      switch (format[i]) {
        case "#":
          f.sharp = true;
          break;
        case "0":
          f.zero = true;
          break;
        case "+":
          f.plus = true;
          break;
        case "-":
          f.minus = true;
          break;
        case " ":
          f.space = true;
          break;
        default:
          break flags;
      }
    }

    [argNum, i, afterIndex] = argNumber(p, argNum, format, i, args.length);

    if (i < end && format[i] === "*") {
      i++;
      [f.wid, f.widPresent, argNum] = intFromArg(args, argNum);
      if (!f.widPresent) p.out += "%!(BADWIDTH)";
      if (f.wid < 0) {
        f.wid = -f.wid;
        f.minus = true;
      }
      afterIndex = false;
    } else {
      [f.wid, f.widPresent, i] = parseNum(format, i, end);
      if (afterIndex && f.widPresent) p.goodArgNum = false;
    }

    if (i + 1 < end && format[i] === ".") {
      i++;
      if (afterIndex) p.goodArgNum = false;
      [argNum, i, afterIndex] = argNumber(p, argNum, format, i, args.length);
      if (i < end && format[i] === "*") {
        i++;
        [f.prec, f.precPresent, argNum] = intFromArg(args, argNum);
        if (f.prec < 0) {
          f.prec = 0;
          f.precPresent = false;
        }
        if (!f.precPresent) p.out += "%!(BADPREC)";
        afterIndex = false;
      } else {
        [f.prec, f.precPresent, i] = parseNum(format, i, end);
        if (!f.precPresent) {
          f.prec = 0;
          f.precPresent = true;
        }
      }
    }

    if (!afterIndex) [argNum, i, afterIndex] = argNumber(p, argNum, format, i, args.length);

    if (i >= end) {
      p.out += "%!(NOVERB)";
      break;
    }

    const verb = String.fromCodePoint(format.codePointAt(i) ?? 0);
    i += verb.length;

    if (verb === "%") {
      p.out += "%";
    } else if (!p.goodArgNum) {
      p.out += `%!${verb}(BADINDEX)`;
    } else if (argNum >= args.length) {
      p.out += `%!${verb}(MISSING)`;
    } else {
      if (verb === "v") {
        f.sharpV = f.sharp;
        f.sharp = false;
        f.plusV = f.plus;
        f.plus = false;
      }
      printArg(p, args[argNum], verb, 0);
      argNum++;
    }
  }

  // Like Go, leftovers are only reported when no explicit index reordered the arguments.
  if (!p.reordered && argNum < args.length) {
    clearFlags(f);
    p.out += "%!(EXTRA ";
    args.slice(argNum).forEach((arg, n) => {
      if (n > 0) p.out += ", ";
      printTypedArg(p, arg);
    });
    p.out += ")";
  }
  return p.out;
}

interface Flags {
  widPresent: boolean;
  precPresent: boolean;
  minus: boolean;
  plus: boolean;
  sharp: boolean;
  space: boolean;
  zero: boolean;
  // %+v and %#v are their own formats: plus and sharp are moved here for the 'v' verb.
  plusV: boolean;
  sharpV: boolean;
  wid: number;
  prec: number;
}

interface Printer {
  out: string;
  f: Flags;
  // The operand being printed, for the %!verb(type=value) form.
  arg: unknown;
  erroring: boolean;
  reordered: boolean;
  goodArgNum: boolean;
}

function newPrinter(): Printer {
  const f: Flags = {
    widPresent: false,
    precPresent: false,
    minus: false,
    plus: false,
    sharp: false,
    space: false,
    zero: false,
    plusV: false,
    sharpV: false,
    wid: 0,
    prec: 0,
  };
  return { out: "", f, arg: undefined, erroring: false, reordered: false, goodArgNum: true };
}

function clearFlags(f: Flags): void {
  f.widPresent = f.precPresent = f.minus = f.plus = f.sharp = f.space = f.zero = f.plusV = f.sharpV = false;
  f.wid = 0;
  f.prec = 0;
}

// Go refuses widths and precisions beyond a million rather than allocating them.
function tooLarge(x: number): boolean {
  return x > 1e6 || x < -1e6;
}

function parseNum(s: string, start: number, end: number): [number, boolean, number] {
  if (start >= end) return [0, false, end];
  let num = 0;
  let isNum = false;
  let i = start;
  for (; i < end && s.charCodeAt(i) >= 48 && s.charCodeAt(i) <= 57; i++) {
    if (tooLarge(num)) return [0, false, end];
    num = num * 10 + (s.charCodeAt(i) - 48);
    isNum = true;
  }
  return [num, isNum, i];
}

/** A width or precision from the arguments: an int, within Go's limit. */
function intFromArg(args: readonly unknown[], argNum: number): [number, boolean, number] {
  if (argNum >= args.length) return [0, false, argNum];
  const a = args[argNum];
  if (typeof a !== "bigint") return [0, false, argNum + 1];
  const num = Number(a);
  if (tooLarge(num)) return [0, false, argNum + 1];
  return [num, true, argNum + 1];
}

function parseArgNumber(format: string): [number, number, boolean] {
  if (format.length < 3) return [0, 1, false];
  for (let i = 1; i < format.length; i++) {
    if (format[i] === "]") {
      const [width, ok, newi] = parseNum(format, 1, i);
      if (!ok || newi !== i) return [0, i + 1, false];
      return [width - 1, i + 1, true];
    }
  }
  return [0, 1, false];
}

function argNumber(p: Printer, argNum: number, format: string, i: number, numArgs: number): [number, number, boolean] {
  if (format.length <= i || format[i] !== "[") return [argNum, i, false];
  p.reordered = true;
  const [index, wid, ok] = parseArgNumber(format.slice(i));
  if (ok && index >= 0 && index < numArgs) return [index, i + wid, true];
  p.goodArgNum = false;
  return [argNum, i + wid, ok];
}

// printArg at depth 0 is Go's printArg; deeper it is printValue on an element.
function printArg(p: Printer, arg: unknown, verb: string, depth: number): void {
  p.arg = arg;
  if (arg === null || arg === undefined) {
    if (depth > 0) {
      p.out += p.f.sharpV ? "interface {}(nil)" : "<nil>";
    } else if (verb === "T" || verb === "v") {
      pad(p, "<nil>");
    } else {
      badVerb(p, verb);
    }
    return;
  }
  if (verb === "T") {
    fmtS(p, goTypeName(arg));
    return;
  }
  switch (typeof arg) {
    case "boolean":
      if (verb === "t" || verb === "v") pad(p, arg ? "true" : "false");
      else badVerb(p, verb);
      return;
    case "number":
      printFloat(p, arg, verb);
      return;
    case "bigint":
      printInteger(p, arg, verb);
      return;
    case "string":
      printString(p, arg, verb);
      return;
    case "function":
    case "symbol":
      p.out += `?${goTypeName(arg)}?`;
      return;
  }
  if (arg instanceof GoTime || arg instanceof Date) {
    printTime(p, arg instanceof GoTime ? arg : new GoTime(arg), verb);
  } else if (Array.isArray(arg)) {
    printSlice(p, arg, verb, depth);
  } else if (arg instanceof Map) {
    printMap(p, [...arg.entries()], verb, depth);
  } else if (typeof arg === "object") {
    const struct = structOf(arg);
    const record = arg as Record<string, unknown>;
    if (struct !== undefined) printStruct(p, struct.type, struct.fields, record, verb, depth);
    else printMap(p, Object.entries(record), verb, depth);
  }
}

function badVerb(p: Printer, verb: string): void {
  p.erroring = true;
  p.out += `%!${verb}(`;
  printTypedArg(p, p.arg);
  p.out += ")";
  p.erroring = false;
}

/** Go's "type=value" inside its error forms, or "<nil>". */
function printTypedArg(p: Printer, arg: unknown): void {
  if (arg === null || arg === undefined) {
    p.out += "<nil>";
  } else {
    p.out += goTypeName(arg) + "=";
    printArg(p, arg, "v", 0);
  }
}

// time.Time is a fmt.Stringer (and GoStringer for %#v); other verbs are errors here,
// where Go would print the struct's private fields.
function printTime(p: Printer, t: GoTime, verb: string): void {
  if (p.f.sharpV && !p.erroring) {
    fmtS(p, t.GoString());
    return;
  }
  switch (verb) {
    case "v":
    case "s":
    case "x":
    case "X":
    case "q":
      printString(p, t.String(), verb);
      return;
    default:
      badVerb(p, verb);
  }
}

function printSlice(p: Printer, list: readonly unknown[], verb: string, depth: number): void {
  const sharpV = p.f.sharpV;
  p.out += sharpV ? "[]interface {}{" : "[";
  list.forEach((el, i) => {
    if (i > 0) p.out += sharpV ? ", " : " ";
    printArg(p, el, verb, depth + 1);
  });
  p.out += sharpV ? "}" : "]";
}

function printMap(p: Printer, entries: Array<[unknown, unknown]>, verb: string, depth: number): void {
  const sharpV = p.f.sharpV;
  const sorted = entries
    .map(([k, v]): [string, unknown, unknown] => [typeof k === "string" ? k : formatValue(k), k, v])
    .sort((a, b) => compareGoStrings(a[0], b[0]));
  p.out += sharpV ? "map[string]interface {}{" : "map[";
  sorted.forEach(([, k, v], i) => {
    if (i > 0) p.out += sharpV ? ", " : " ";
    printArg(p, k, verb, depth + 1);
    p.out += ":";
    printArg(p, v, verb, depth + 1);
  });
  p.out += sharpV ? "}" : "]";
}

function printStruct(
  p: Printer,
  type: string,
  fields: readonly string[],
  value: Record<string, unknown>,
  verb: string,
  depth: number,
): void {
  const { sharpV, plusV } = p.f;
  if (sharpV) p.out += type;
  p.out += "{";
  fields.forEach((name, i) => {
    if (i > 0) p.out += sharpV ? ", " : " ";
    if (plusV || sharpV) p.out += name + ":";
    printArg(p, value[name], verb, depth + 1);
  });
  p.out += "}";
}

// --- padding -----------------------------------------------------------------

function runeCount(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}

function writePadding(p: Printer, n: number): void {
  if (n <= 0) return;
  p.out += (p.f.zero && !p.f.minus ? "0" : " ").repeat(n);
}

// Go pads to a width counted in runes, on the left unless '-' is set.
function pad(p: Printer, s: string): void {
  const f = p.f;
  if (!f.widPresent || f.wid === 0) {
    p.out += s;
    return;
  }
  const width = f.wid - runeCount(s);
  if (f.minus) {
    p.out += s;
    writePadding(p, width);
  } else {
    writePadding(p, width);
    p.out += s;
  }
}

function withoutZero(p: Printer, write: () => void): void {
  const old = p.f.zero;
  p.f.zero = false;
  write();
  p.f.zero = old;
}

// --- integers ----------------------------------------------------------------

const MAX_RUNE = 0x10ffff;

function printInteger(p: Printer, v: bigint, verb: string): void {
  switch (verb) {
    case "v":
    case "d":
      fmtInteger(p, v, 10, verb, false);
      return;
    case "b":
      fmtInteger(p, v, 2, verb, false);
      return;
    case "o":
    case "O":
      fmtInteger(p, v, 8, verb, false);
      return;
    case "x":
      fmtInteger(p, v, 16, verb, false);
      return;
    case "X":
      fmtInteger(p, v, 16, verb, true);
      return;
    case "c":
      pad(p, String.fromCodePoint(validRune(BigInt.asUintN(64, v))));
      return;
    case "q":
      if (BigInt.asUintN(64, v) <= BigInt(MAX_RUNE)) {
        pad(p, goQuoteRune(validRune(v), p.f.plus));
      } else {
        badVerb(p, verb);
      }
      return;
    case "U":
      fmtUnicode(p, BigInt.asUintN(64, v));
      return;
    default:
      badVerb(p, verb);
  }
}

function validRune(u: bigint): number {
  if (u > BigInt(MAX_RUNE)) return 0xfffd;
  const r = Number(u);
  return r >= 0xd800 && r <= 0xdfff ? 0xfffd : r;
}

function fmtInteger(p: Printer, v: bigint, base: number, verb: string, upper: boolean): void {
  const f = p.f;
  const negative = v < 0n;
  const u = negative ? -v : v;

  // %.3d and %03d both ask for leading zeros; with both, the zero flag is ignored.
  let prec = 0;
  if (f.precPresent) {
    prec = f.prec;
    if (prec === 0 && u === 0n) {
      withoutZero(p, () => writePadding(p, f.wid));
      return;
    }
  } else if (f.zero && !f.minus && f.widPresent) {
    prec = f.wid;
    if (negative || f.plus || f.space) prec--;
  }

  let s = u.toString(base);
  if (upper) s = s.toUpperCase();
  if (s.length < prec) s = "0".repeat(prec - s.length) + s;

  if (f.sharp) {
    if (base === 2) s = "0b" + s;
    else if (base === 8 && s[0] !== "0") s = "0" + s;
    else if (base === 16) s = (upper ? "0X" : "0x") + s;
  }
  if (verb === "O") s = "0o" + s;

  if (negative) s = "-" + s;
  else if (f.plus) s = "+" + s;
  else if (f.space) s = " " + s;

  withoutZero(p, () => pad(p, s));
}

function fmtUnicode(p: Printer, u: bigint): void {
  const f = p.f;
  const prec = f.precPresent && f.prec > 4 ? f.prec : 4;
  let s = "U+" + u.toString(16).toUpperCase().padStart(prec, "0");
  if (f.sharp && u <= BigInt(MAX_RUNE) && isPrint(Number(u))) s += ` '${String.fromCodePoint(Number(u))}'`;
  withoutZero(p, () => pad(p, s));
}

// --- strings -----------------------------------------------------------------

function printString(p: Printer, s: string, verb: string): void {
  switch (verb) {
    case "v":
      if (p.f.sharpV) fmtQ(p, s);
      else fmtS(p, s);
      return;
    case "s":
      fmtS(p, s);
      return;
    case "x":
      fmtSx(p, s, false);
      return;
    case "X":
      fmtSx(p, s, true);
      return;
    case "q":
      fmtQ(p, s);
      return;
    default:
      badVerb(p, verb);
  }
}

// Precision on a string counts runes.
function truncate(p: Printer, s: string): string {
  if (!p.f.precPresent) return s;
  let n = p.f.prec;
  let i = 0;
  for (const ch of s) {
    if (n-- <= 0) return s.slice(0, i);
    i += ch.length;
  }
  return s;
}

function fmtS(p: Printer, s: string): void {
  pad(p, truncate(p, s));
}

// Hex of the UTF-8 bytes; precision limits the bytes, ' ' separates them and '#' adds 0x.
function fmtSx(p: Printer, s: string, upper: boolean): void {
  const f = p.f;
  const bytes = encodeText(s);
  const digits = upper ? "0123456789ABCDEFX" : "0123456789abcdefx";
  let length = bytes.length;
  if (f.precPresent && f.prec < length) length = f.prec;
  let width = 2 * length;
  if (width > 0) {
    if (f.space) {
      if (f.sharp) width *= 2;
      width += length - 1;
    } else if (f.sharp) {
      width += 2;
    }
  } else {
    if (f.widPresent) writePadding(p, f.wid);
    return;
  }
  if (f.widPresent && f.wid > width && !f.minus) writePadding(p, f.wid - width);
  let out = f.sharp ? "0" + digits[16] : "";
  bytes.subarray(0, length).forEach((b, i) => {
    if (f.space && i > 0) {
      out += " ";
      if (f.sharp) out += "0" + digits[16];
    }
    out += digits.charAt(b >> 4) + digits.charAt(b & 0xf);
  });
  p.out += out;
  if (f.widPresent && f.wid > width && f.minus) writePadding(p, f.wid - width);
}

function fmtQ(p: Printer, str: string): void {
  const s = truncate(p, str);
  if (p.f.sharp && canBackquote(s)) pad(p, "`" + s + "`");
  else pad(p, goQuote(s, p.f.plus));
}

// --- floats ------------------------------------------------------------------

function printFloat(p: Printer, v: number, verb: string): void {
  switch (verb) {
    case "v":
      fmtFloat(p, v, "g", -1);
      return;
    case "b":
    case "g":
    case "G":
    case "x":
    case "X":
      fmtFloat(p, v, verb, -1);
      return;
    case "f":
    case "e":
    case "E":
      fmtFloat(p, v, verb, 6);
      return;
    case "F":
      fmtFloat(p, v, "f", 6);
      return;
    default:
      badVerb(p, verb);
  }
}

function fmtFloat(p: Printer, v: number, verb: string, defaultPrec: number): void {
  const f = p.f;
  const prec = f.precPresent ? f.prec : defaultPrec;
  // num always starts with a sign so that sign and zero padding can be arranged.
  let num = formatFloat(v, verb, prec);
  if (num[0] !== "-" && num[0] !== "+") num = "+" + num;
  if (f.space && num[0] === "+" && !f.plus) num = " " + num.slice(1);

  // Infinities and NaN are never zero padded, and NaN only shows a sign when asked.
  if (num[1] === "I" || num[1] === "N") {
    if (num[1] === "N" && !f.space && !f.plus) num = num.slice(1);
    withoutZero(p, () => pad(p, num));
    return;
  }

  // '#' keeps a decimal point and, for %g, the trailing zeros up to the precision.
  if (f.sharp && verb !== "b") {
    let digits = 0;
    if (verb === "v" || verb === "g" || verb === "G" || verb === "x") digits = prec === -1 ? 6 : prec;
    let tail = "";
    let hasDot = false;
    let sawNonzero = false;
    for (let i = 1; i < num.length; i++) {
      const ch = num[i];
      if (ch === ".") {
        hasDot = true;
      } else if (ch === "p" || ch === "P" || ((ch === "e" || ch === "E") && verb !== "x" && verb !== "X")) {
        tail = num.slice(i);
        num = num.slice(0, i);
        break;
      } else {
        if (ch !== "0") sawNonzero = true;
        if (sawNonzero) digits--;
      }
    }
    if (!hasDot) {
      if (num.length === 2 && num[1] === "0") digits--;
      num += ".";
    }
    if (digits > 0) num += "0".repeat(digits);
    num += tail;
  }

  if (f.plus || num[0] !== "+") {
    if (f.zero && !f.minus && f.widPresent && f.wid > num.length) {
      p.out += num[0];
      writePadding(p, f.wid - num.length);
      p.out += num.slice(1);
      return;
    }
    pad(p, num);
    return;
  }
  pad(p, num.slice(1));
}
