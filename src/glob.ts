// Go's path.Match (and filepath.Match on "/"-separated systems) for store keys:
// pattern syntax, matching algorithm and error behaviour, with compiled patterns cached.

export class GlobSyntaxError extends Error {
  constructor(readonly pattern: string) {
    super("syntax error in pattern");
    this.name = "GlobSyntaxError";
  }
}

type Item =
  | { kind: "literal"; text: string }
  | { kind: "any" }
  | { kind: "class"; negated: boolean; ranges: Array<[number, number]> };

interface Chunk {
  star: boolean;
  items: Item[];
}

// A render calls gets/getvs with a handful of patterns against every key, so each
// pattern is parsed once. The cap only guards against unbounded growth.
const compiled = new Map<string, Chunk[]>();
const CACHE_LIMIT = 1000;

export function globMatch(pattern: string, name: string): boolean {
  let chunks = compiled.get(pattern);
  if (chunks === undefined) {
    chunks = compile(pattern);
    if (compiled.size >= CACHE_LIMIT) compiled.clear();
    compiled.set(pattern, chunks);
  }
  return matchChunks(chunks, name);
}

// Go's matcher walks every chunk to the end even after a mismatch, so a malformed
// pattern is reported whatever the name; validating all of it up front is the same.
function compile(pattern: string): Chunk[] {
  const chunks: Chunk[] = [];
  let rest = pattern;
  while (rest.length > 0) {
    let star = false;
    while (rest.startsWith("*")) {
      rest = rest.slice(1);
      star = true;
    }
    const end = chunkEnd(rest);
    chunks.push({ star, items: parseChunk(rest.slice(0, end), pattern) });
    rest = rest.slice(end);
  }
  return chunks;
}

// Mirrors Go's scanChunk: a chunk ends at a '*' outside a character class.
function chunkEnd(s: string): number {
  let inRange = false;
  let i = 0;
  for (; i < s.length; i++) {
    const c = s[i];
    if (c === "\\") {
      if (i + 1 < s.length) i++;
    } else if (c === "[") {
      inRange = true;
    } else if (c === "]") {
      inRange = false;
    } else if (c === "*" && !inRange) {
      break;
    }
  }
  return i;
}

function parseChunk(chunk: string, pattern: string): Item[] {
  const items: Item[] = [];
  let i = 0;
  while (i < chunk.length) {
    const c = chunk[i];
    if (c === "[") {
      i++;
      let negated = false;
      if (chunk[i] === "^") {
        negated = true;
        i++;
      }
      const ranges: Array<[number, number]> = [];
      for (;;) {
        if (chunk[i] === "]" && ranges.length > 0) {
          i++;
          break;
        }
        const lo = classChar(chunk, i, pattern);
        i = lo.next;
        let hi = lo.code;
        if (chunk[i] === "-") {
          const h = classChar(chunk, i + 1, pattern);
          hi = h.code;
          i = h.next;
        }
        ranges.push([lo.code, hi]);
      }
      items.push({ kind: "class", negated, ranges });
    } else if (c === "?") {
      items.push({ kind: "any" });
      i++;
    } else {
      if (c === "\\") {
        i++;
        if (i >= chunk.length) throw new GlobSyntaxError(pattern);
      }
      const code = chunk.codePointAt(i) ?? 0;
      const text = String.fromCodePoint(code);
      const last = items[items.length - 1];
      if (last !== undefined && last.kind === "literal") last.text += text;
      else items.push({ kind: "literal", text });
      i += text.length;
    }
  }
  return items;
}

// Go's getEsc: one possibly escaped class character, which must be followed by more
// of the class; '-' and ']' are only allowed escaped.
function classChar(chunk: string, start: number, pattern: string): { code: number; next: number } {
  let i = start;
  if (i >= chunk.length || chunk[i] === "-" || chunk[i] === "]") throw new GlobSyntaxError(pattern);
  if (chunk[i] === "\\") {
    i++;
    if (i >= chunk.length) throw new GlobSyntaxError(pattern);
  }
  const code = chunk.codePointAt(i) ?? 0;
  const next = i + (code > 0xffff ? 2 : 1);
  if (next >= chunk.length) throw new GlobSyntaxError(pattern);
  return { code, next };
}

// Go's Match loop: a star chunk takes the leftmost position where its chunk matches
// (never skipping a '/'), except that the last chunk must consume the whole name.
// This is not the same as a regular expression with backtracking, so it is kept as is.
function matchChunks(chunks: Chunk[], name: string): boolean {
  let pos = 0;
  next: for (const [c, { star, items }] of chunks.entries()) {
    const last = c === chunks.length - 1;
    if (star && items.length === 0) return name.indexOf("/", pos) < 0;
    const here = matchItems(items, name, pos);
    if (here >= 0 && (here === name.length || !last)) {
      pos = here;
      continue;
    }
    if (star) {
      for (let i = pos; i < name.length && name[i] !== "/"; i++) {
        const t = matchItems(items, name, i + 1);
        if (t >= 0) {
          if (last && t < name.length) continue;
          pos = t;
          continue next;
        }
      }
    }
    return false;
  }
  return pos === name.length;
}

// Returns the position after the match, or -1. '?' and classes consume one code point.
function matchItems(items: Item[], s: string, start: number): number {
  let pos = start;
  for (const item of items) {
    if (item.kind === "literal") {
      if (!s.startsWith(item.text, pos)) return -1;
      pos += item.text.length;
      continue;
    }
    if (pos >= s.length) return -1;
    const code = s.codePointAt(pos) ?? 0;
    if (item.kind === "any") {
      if (code === 0x2f) return -1;
    } else {
      const inClass = item.ranges.some(([lo, hi]) => lo <= code && code <= hi);
      if (inClass === item.negated) return -1;
    }
    pos += code > 0xffff ? 2 : 1;
  }
  return pos;
}
