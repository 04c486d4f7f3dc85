// Bytes that are not UTF-8, carried through JavaScript strings unchanged. confd copies bytes: a Latin-1
// template or store value must come out as it went in, not as U+FFFD. Text is decoded as UTF-8 where it is
// valid, and every byte that is not part of a valid sequence becomes the lone surrogate U+DC80..U+DCFF
// (Python's "surrogateescape"), which valid UTF-8 can never produce; encoding turns them back into the
// bytes. Everything between (templates, functions, workers' messages) handles ordinary strings.

import { readFileSync } from "node:fs";

const strict = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const lenient = new TextDecoder("utf-8", { ignoreBOM: true });

const ESCAPE_BASE = 0xdc00;

/** The text of these bytes: UTF-8 where valid, each other byte as its escape. */
export function decodeBytes(bytes: Uint8Array): string {
  try {
    return strict.decode(bytes);
  } catch {
    // Not valid UTF-8: decode the valid runs, escape the bytes between them.
  }
  let out = "";
  let start = 0;
  let i = 0;
  while (i < bytes.length) {
    const n = sequenceLength(bytes, i);
    if (n > 0) {
      i += n;
      continue;
    }
    out += lenient.decode(bytes.subarray(start, i)) + String.fromCharCode(ESCAPE_BASE + bytes[i]!);
    start = ++i;
  }
  return out + lenient.decode(bytes.subarray(start));
}

/** An escape not preceded by a high surrogate (a low surrogate after one is half of a real character). */
const ESCAPES = /(?<![\uD800-\uDBFF])[\uDC80-\uDCFF]/g;

/** The bytes of this text: UTF-8, with escapes turned back into the bytes they stand for. */
export function encodeText(text: string): Buffer {
  ESCAPES.lastIndex = 0;
  if (!ESCAPES.test(text)) return Buffer.from(text, "utf8");
  const parts: Buffer[] = [];
  let start = 0;
  ESCAPES.lastIndex = 0;
  for (let m = ESCAPES.exec(text); m; m = ESCAPES.exec(text)) {
    parts.push(Buffer.from(text.slice(start, m.index), "utf8"), Buffer.of(text.charCodeAt(m.index) - ESCAPE_BASE));
    start = m.index + 1;
  }
  parts.push(Buffer.from(text.slice(start), "utf8"));
  return Buffer.concat(parts);
}

/** How many bytes encodeText(text) has (Go's len of a string), without encoding it. */
export function byteLength(text: string): number {
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      n += 4;
      i++;
    } else if (c >= 0xdc80 && c <= 0xdcff) {
      n += 1; // an escaped byte
    } else {
      n += 3; // other lone surrogates are written as U+FFFD
    }
  }
  return n;
}

/** The index in decoded text of the first byte that was not UTF-8, or -1 when all of it was. */
export function firstEscape(text: string): number {
  ESCAPES.lastIndex = 0;
  return ESCAPES.exec(text)?.index ?? -1;
}

/** The length of the well-formed UTF-8 sequence at `i` (Unicode's table 3-7), or 0 if there is none. */
function sequenceLength(b: Uint8Array, i: number): number {
  const c = b[i]!;
  if (c < 0x80) return 1;
  const cont = (j: number, lo = 0x80, hi = 0xbf) => i + j < b.length && b[i + j]! >= lo && b[i + j]! <= hi;
  if (c >= 0xc2 && c <= 0xdf) return cont(1) ? 2 : 0;
  if (c >= 0xe0 && c <= 0xef) {
    const [lo, hi] = c === 0xe0 ? [0xa0, 0xbf] : c === 0xed ? [0x80, 0x9f] : [0x80, 0xbf];
    return cont(1, lo, hi) && cont(2) ? 3 : 0;
  }
  if (c >= 0xf0 && c <= 0xf4) {
    const [lo, hi] = c === 0xf0 ? [0x90, 0xbf] : c === 0xf4 ? [0x80, 0x8f] : [0x80, 0xbf];
    return cont(1, lo, hi) && cont(2) && cont(3) ? 4 : 0;
  }
  return 0;
}

let environ: Readonly<Record<string, string>> | undefined;

/**
 * The process's environment with its bytes kept: process.env has already replaced bytes that are not
 * UTF-8 by U+FFFD, so on Linux the variables are read from /proc/self/environ instead (the environment
 * the process started with, which is all confd ever reads).
 */
export function environment(): Readonly<Record<string, string>> {
  if (environ) return environ;
  let raw: Buffer;
  try {
    raw = readFileSync("/proc/self/environ");
  } catch {
    environ = process.env as Record<string, string>;
    return environ;
  }
  const out: Record<string, string> = {};
  for (let start = 0; start < raw.length; ) {
    let end = raw.indexOf(0, start);
    if (end < 0) end = raw.length;
    const entry = decodeBytes(raw.subarray(start, end));
    const eq = entry.indexOf("=");
    if (eq > 0) out[entry.slice(0, eq)] = entry.slice(eq + 1);
    start = end + 1;
  }
  environ = out;
  return environ;
}
