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
  // Into UTF-16 code units by hand: decoding each valid run between stray bytes separately costs a call
  // and a string per run, which a Latin-1 file has by the hundred thousand.
  const units = new Uint16Array(bytes.length);
  let n = 0;
  for (let i = 0; i < bytes.length; ) {
    const c = bytes[i]!;
    const length = c < 0x80 ? 1 : sequenceLength(bytes, i);
    if (length === 0) {
      units[n++] = ESCAPE_BASE + c;
      i++;
      continue;
    }
    let point = length === 1 ? c : c & (0xff >> (length + 1));
    for (let k = 1; k < length; k++) point = (point << 6) | (bytes[i + k]! & 0x3f);
    if (point >= 0x10000) {
      point -= 0x10000;
      units[n++] = 0xd800 + (point >> 10);
      units[n++] = 0xdc00 + (point & 0x3ff);
    } else {
      units[n++] = point;
    }
    i += length;
  }
  const parts: string[] = [];
  for (let i = 0; i < n; i += CHUNK) parts.push(String.fromCharCode.apply(null, units.subarray(i, Math.min(n, i + CHUNK)) as unknown as number[]));
  return parts.join("");
}

/** Code units per String.fromCharCode call: well under engines' argument limits. */
const CHUNK = 8192;

/** An escape not preceded by a high surrogate (a low surrogate after one is half of a real character). */
const ESCAPES = /(?<![\uD800-\uDBFF])[\uDC80-\uDCFF]/g;

/** The bytes of this text: UTF-8, with escapes turned back into the bytes they stand for. */
export function encodeText(text: string): Buffer {
  ESCAPES.lastIndex = 0;
  if (!ESCAPES.test(text)) return Buffer.from(text, "utf8");
  const out = Buffer.allocUnsafe(byteLength(text));
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    let c = text.charCodeAt(i);
    if (c < 0x80) {
      out[n++] = c;
      continue;
    }
    if (c >= 0xdc80 && c <= 0xdcff) {
      out[n++] = c - ESCAPE_BASE;
      continue;
    }
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      c = 0x10000 + ((c - 0xd800) << 10) + (text.charCodeAt(++i) - 0xdc00);
    } else if (c >= 0xd800 && c <= 0xdfff) {
      c = 0xfffd; // any other lone surrogate, as Buffer.from writes it
    }
    if (c < 0x800) {
      out[n++] = 0xc0 | (c >> 6);
    } else if (c < 0x10000) {
      out[n++] = 0xe0 | (c >> 12);
      out[n++] = 0x80 | ((c >> 6) & 0x3f);
    } else {
      out[n++] = 0xf0 | (c >> 18);
      out[n++] = 0x80 | ((c >> 12) & 0x3f);
      out[n++] = 0x80 | ((c >> 6) & 0x3f);
    }
    out[n++] = 0x80 | (c & 0x3f);
  }
  return out;
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
  const left = b.length - i;
  if (c >= 0xc2 && c <= 0xdf) return left >= 2 && (b[i + 1]! & 0xc0) === 0x80 ? 2 : 0;
  if (c >= 0xe0 && c <= 0xef) {
    if (left < 3) return 0;
    const d = b[i + 1]!;
    const lo = c === 0xe0 ? 0xa0 : 0x80;
    const hi = c === 0xed ? 0x9f : 0xbf;
    return d >= lo && d <= hi && (b[i + 2]! & 0xc0) === 0x80 ? 3 : 0;
  }
  if (c >= 0xf0 && c <= 0xf4) {
    if (left < 4) return 0;
    const d = b[i + 1]!;
    const lo = c === 0xf0 ? 0x90 : 0x80;
    const hi = c === 0xf4 ? 0x8f : 0xbf;
    return d >= lo && d <= hi && (b[i + 2]! & 0xc0) === 0x80 && (b[i + 3]! & 0xc0) === 0x80 ? 4 : 0;
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
