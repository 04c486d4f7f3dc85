// The unified diff that --noop prints: which lines differ between the destination and the rendered text,
// and the `diff -u` text for them (GNU's hunk headers), capped in size; and how many lines differ, for the
// max_change output guard (guards.ts).
//
// Which lines differ is decided the way GNU diff's analyze.c decides it, so that memory stays linear in the
// input and the time stays bounded on any input: the common prefix and suffix are set aside, the rest is
// interned to integers, lines that occur in only one text are changed outright, and what is left goes to
// Myers' O(ND) algorithm in its linear-space form (divide and conquer on the middle snake). A search that
// costs more than `tooExpensive` edit steps settles for the furthest-reaching diagonal instead: the diff is
// still correct but may not be minimal. GNU's shift_boundaries then slides each ambiguous run of changes to
// where diff -u would show it.

/**
 * Default cap on unifiedDiff's text: a report is for a person reading a log. 1 MiB is thousands of hunks,
 * more than anyone reads, yet bounds what a rewritten multi-megabyte file adds to the log and to memory.
 * The cap is in bytes, not lines, because one line of a rendered file can itself be megabytes long.
 */
export const DEFAULT_MAX_DIFF_BYTES = 1 << 20;

export type DiffOptions = {
  /** Most UTF-8 bytes of the returned text, its truncation note included. */
  maxBytes?: number;
};

/** Room kept under the cap for the note, whatever its line count. */
const NOTE_BYTES = 64;

/** Above any diagonal's x: the backward search's "not reached yet". */
const UNREACHED_BACKWARD = 0x7fffffff;

/**
 * A last line without its newline keeps a "\n" at its end, which no other line can have: it then differs
 * from the same text with a newline, and is printed with diff's "\ No newline at end of file".
 */
const NO_NEWLINE = "\n";

function lines(text: string): string[] {
  if (text === "") return [];
  const parts = text.split("\n");
  if (parts[parts.length - 1] === "") parts.pop();
  else parts[parts.length - 1] += NO_NEWLINE;
  return parts;
}

/**
 * Which lines of each text are changed, as 0/1 flags indexed from 1: index 0 and index length+1 stay 0, so
 * the scans in shiftBoundaries and changeGroups stop at both ends without bounds checks.
 */
type Changed = { a: Uint8Array; b: Uint8Array };

function findChanges(a: string[], b: string[]): Changed {
  const changed = { a: new Uint8Array(a.length + 2), b: new Uint8Array(b.length + 2) };
  let lo = 0;
  while (lo < a.length && lo < b.length && a[lo] === b[lo]) lo++;
  let hiA = a.length;
  let hiB = b.length;
  while (hiA > lo && hiB > lo && a[hiA - 1] === b[hiB - 1]) hiA--, hiB--;

  const ids = new Map<string, number>();
  const intern = (line: string): number => {
    let id = ids.get(line);
    if (id === undefined) ids.set(line, (id = ids.size));
    return id;
  };
  const idsA = Int32Array.from({ length: hiA - lo }, (_, i) => intern(a[lo + i]!));
  const idsB = Int32Array.from({ length: hiB - lo }, (_, i) => intern(b[lo + i]!));

  // A line missing from the other text can be in no common subsequence, so setting it aside keeps the diff
  // minimal and turns texts with little in common (the slow case for Myers) into short sequences.
  const inA = new Uint8Array(ids.size);
  const inB = new Uint8Array(ids.size);
  for (const id of idsA) inA[id] = 1;
  for (const id of idsB) inB[id] = 1;
  const xs = keep(idsA, inB, lo, changed.a);
  const ys = keep(idsB, inA, lo, changed.b);

  compareSeq(xs.ids, ys.ids, (x) => (changed.a[xs.line[x]!] = 1), (y) => (changed.b[ys.line[y]!] = 1));
  shiftBoundaries(changed.a, changed.b, a);
  shiftBoundaries(changed.b, changed.a, b);
  return changed;
}

/** The ids the other text also has, with each one's flag index; the others are flagged changed here. */
function keep(ids: Int32Array, inOther: Uint8Array, lo: number, changed: Uint8Array): { ids: Int32Array; line: Int32Array } {
  const kept = new Int32Array(ids.length);
  const line = new Int32Array(ids.length);
  let k = 0;
  for (let i = 0; i < ids.length; i++) {
    if (inOther[ids[i]!]) (kept[k] = ids[i]!), (line[k++] = lo + i + 1);
    else changed[lo + i + 1] = 1;
  }
  return { ids: kept.subarray(0, k), line: line.subarray(0, k) };
}

type Search = {
  xs: Int32Array;
  ys: Int32Array;
  /** Furthest x reached on each diagonal k = x - y, at index k + offset: forward and backward searches. */
  fd: Int32Array;
  bd: Int32Array;
  offset: number;
  tooExpensive: number;
};

/** Where a subproblem splits, and whether each half must still be solved minimally. */
type Split = { x: number; y: number; loMinimal: boolean; hiMinimal: boolean };

/** GNU diff's compareseq, with a stack instead of recursion: a long heuristic chain would be deep. */
function compareSeq(xs: Int32Array, ys: Int32Array, deleted: (x: number) => void, inserted: (y: number) => void): void {
  const diagonals = xs.length + ys.length + 3;
  // GNU's cost bound, about the square root of the problem size, but at least 1024 where GNU says 4096: a
  // step costs several times more here than in C, and 1024 keeps the worst 100,000-line inputs near a
  // second. The two searches meet after D/2 steps each, so only texts that differ in over 2048 lines of
  // those they share (unshared lines are set aside before) can get a diff that is not minimal.
  let tooExpensive = 1;
  for (let d = diagonals; d !== 0; d >>= 2) tooExpensive <<= 1;
  const search: Search = {
    xs,
    ys,
    fd: new Int32Array(diagonals),
    bd: new Int32Array(diagonals),
    offset: ys.length + 1,
    tooExpensive: Math.max(1024, tooExpensive),
  };
  const stack: [number, number, number, number, boolean][] = [[0, xs.length, 0, ys.length, false]];
  for (let task = stack.pop(); task; task = stack.pop()) {
    let [xoff, xlim, yoff, ylim] = task;
    while (xoff < xlim && yoff < ylim && xs[xoff] === ys[yoff]) xoff++, yoff++;
    while (xoff < xlim && yoff < ylim && xs[xlim - 1] === ys[ylim - 1]) xlim--, ylim--;
    if (xoff === xlim) while (yoff < ylim) inserted(yoff++);
    else if (yoff === ylim) while (xoff < xlim) deleted(xoff++);
    else {
      const split = middleSnake(search, xoff, xlim, yoff, ylim, task[4]);
      stack.push([split.x, xlim, split.y, ylim, split.hiMinimal], [xoff, split.x, yoff, split.y, split.loMinimal]);
    }
  }
}

/**
 * GNU diff's diag: searches forward from (xoff, yoff) and backward from (xlim, ylim) one edit step at a time
 * until the two meet on a diagonal, which halves the edit script; past tooExpensive steps (unless minimal)
 * it splits at whichever search got furthest.
 */
function middleSnake(s: Search, xoff: number, xlim: number, yoff: number, ylim: number, minimal: boolean): Split {
  const { xs, ys, fd, bd, offset: o } = s;
  const dmin = xoff - ylim;
  const dmax = xlim - yoff;
  const fmid = xoff - yoff;
  const bmid = xlim - ylim;
  let fmin = fmid;
  let fmax = fmid;
  let bmin = bmid;
  let bmax = bmid;
  // With an odd difference between the centres the searches can only meet after a forward step.
  const odd = ((fmid - bmid) & 1) !== 0;
  fd[o + fmid] = xoff;
  bd[o + bmid] = xlim;
  for (let c = 1; ; c++) {
    // Widen each search by a diagonal on either side, or narrow it where it hits the edge of the box; the
    // new outermost neighbours get a value that never wins the comparison below.
    if (fmin > dmin) fd[o + --fmin - 1] = -1;
    else fmin++;
    if (fmax < dmax) fd[o + ++fmax + 1] = -1;
    else fmax--;
    for (let d = fmax; d >= fmin; d -= 2) {
      const lo = fd[o + d - 1]!;
      const hi = fd[o + d + 1]!;
      let x = lo < hi ? hi : lo + 1;
      let y = x - d;
      while (x < xlim && y < ylim && xs[x] === ys[y]) x++, y++;
      fd[o + d] = x;
      if (odd && bmin <= d && d <= bmax && bd[o + d]! <= x) return { x, y, loMinimal: true, hiMinimal: true };
    }

    if (bmin > dmin) bd[o + --bmin - 1] = UNREACHED_BACKWARD;
    else bmin++;
    if (bmax < dmax) bd[o + ++bmax + 1] = UNREACHED_BACKWARD;
    else bmax--;
    for (let d = bmax; d >= bmin; d -= 2) {
      const lo = bd[o + d - 1]!;
      const hi = bd[o + d + 1]!;
      let x = lo < hi ? lo : hi - 1;
      let y = x - d;
      while (x > xoff && y > yoff && xs[x - 1] === ys[y - 1]) x--, y--;
      bd[o + d] = x;
      if (!odd && fmin <= d && d <= fmax && x <= fd[o + d]!) return { x, y, loMinimal: true, hiMinimal: true };
    }

    if (minimal || c < s.tooExpensive) continue;

    // Give up on a minimal script here: take the point nearest the far corner that either search reached.
    // The half that search covered needs no more than c steps, so it is solved minimally.
    let fxyBest = -1;
    let fxBest = 0;
    for (let d = fmax; d >= fmin; d -= 2) {
      let x = Math.min(fd[o + d]!, xlim);
      let y = x - d;
      if (y > ylim) (x = ylim + d), (y = ylim);
      if (x + y > fxyBest) (fxyBest = x + y), (fxBest = x);
    }
    let bxyBest = UNREACHED_BACKWARD;
    let bxBest = 0;
    for (let d = bmax; d >= bmin; d -= 2) {
      let x = Math.max(xoff, bd[o + d]!);
      let y = x - d;
      if (y < yoff) (x = yoff + d), (y = yoff);
      if (x + y < bxyBest) (bxyBest = x + y), (bxBest = x);
    }
    return xlim + ylim - bxyBest < fxyBest - (xoff + yoff)
      ? { x: fxBest, y: fxyBest - fxBest, loMinimal: true, hiMinimal: false }
      : { x: bxBest, y: bxyBest - bxBest, loMinimal: false, hiMinimal: true };
  }
}

/**
 * GNU diff's shift_boundaries, for one text: a run of changes that could equally sit a line earlier or later
 * (the line before it equals its last line, or the line after equals its first) is moved to merge with
 * neighbouring runs, then as far down as it goes, unless it can line up with a run in the other text.
 */
function shiftBoundaries(changed: Uint8Array, other: Uint8Array, text: string[]): void {
  const end = text.length + 1;
  // line(i) is the text of flag index i.
  const line = (i: number) => text[i - 1];
  let i = 1;
  let j = 1;
  for (;;) {
    // j follows i: the unchanged line of the other text that corresponds.
    while (i < end && !changed[i]) {
      while (other[j++]);
      i++;
    }
    if (i === end) return;
    let start = i;
    while (changed[++i]);
    while (other[j]) j++;

    let runLength: number;
    let corresponding: number;
    do {
      runLength = i - start;
      while (start > 1 && line(start - 1) === line(i - 1)) {
        changed[--start] = 1;
        changed[--i] = 0;
        while (changed[start - 1]) start--;
        while (other[--j]);
      }
      // The end of this run at the last place it lined up with a run of the other text (end: nowhere).
      corresponding = other[j - 1] ? i : end;
      while (i !== end && line(start) === line(i)) {
        changed[start++] = 0;
        changed[i++] = 1;
        while (changed[i]) i++;
        while (other[++j]) corresponding = i;
      }
    } while (runLength !== i - start);

    while (corresponding < i) {
      changed[--start] = 1;
      changed[--i] = 0;
      while (other[--j]);
    }
  }
}

/** Runs of changes as 0-based [a0, a1, b0, b1] quadruples: a[a0..a1) becomes b[b0..b1). */
function changeGroups(changed: Changed): number[] {
  const groups: number[] = [];
  const n = changed.a.length - 2;
  const m = changed.b.length - 2;
  let i = 1;
  let j = 1;
  while (i <= n || j <= m) {
    if (!changed.a[i] && !changed.b[j]) {
      i++, j++;
      continue;
    }
    const a0 = i;
    const b0 = j;
    while (changed.a[i]) i++;
    while (changed.b[j]) j++;
    groups.push(a0 - 1, i - 1, b0 - 1, j - 1);
  }
  return groups;
}

/** How many lines each text has, and how many of them a diff removes and adds: output guards' max_change. */
export function lineChanges(before: string, after: string): { before: number; after: number; removed: number; added: number } {
  const a = lines(before);
  const b = lines(after);
  const changed = findChanges(a, b);
  let removed = 0;
  let added = 0;
  for (const flag of changed.a) removed += flag;
  for (const flag of changed.b) added += flag;
  return { before: a.length, after: b.length, removed, added };
}

/** GNU diff's hunk ranges: "start,length", just "start" for one line, "start-1,0" for none. */
function range(start: number, length: number): string {
  if (length === 1) return String(start);
  return `${length ? start : start - 1},${length}`;
}

export function unifiedDiff(
  before: string,
  after: string,
  fromName: string,
  toName: string,
  context = 3,
  options: DiffOptions = {},
): string {
  const a = lines(before);
  const b = lines(after);
  const groups = changeGroups(findChanges(a, b));
  if (groups.length === 0) return "";

  const budget = (options.maxBytes ?? DEFAULT_MAX_DIFF_BYTES) - NOTE_BYTES;
  const out: string[] = [];
  let bytes = 0;
  let dropped = 0;
  // Lines past the budget are only counted, so a huge diff costs no more memory than the cap.
  const emit = (prefix: string, text: string) => {
    if (dropped === 0) {
      const size = prefix.length + Buffer.byteLength(text) + 1;
      if (bytes + size <= budget) {
        out.push(prefix + text);
        bytes += size;
        return;
      }
    }
    dropped++;
  };
  const line = (prefix: string, text: string) => {
    if (!text.endsWith(NO_NEWLINE)) return emit(prefix, text);
    emit(prefix, text.slice(0, -NO_NEWLINE.length));
    emit("", "\\ No newline at end of file");
  };
  emit("--- ", fromName);
  emit("+++ ", toName);

  const at = (g: number, field: number) => groups[4 * g + field]!;
  const count = groups.length / 4;
  for (let g = 0; g < count; ) {
    // A hunk takes in every following change within 2 * context unchanged lines of the previous one.
    let h = g + 1;
    while (h < count && at(h, 0) - at(h - 1, 1) <= 2 * context) h++;
    const lead = Math.min(context, at(g, 0) - (g > 0 ? at(g - 1, 1) : 0));
    const trail = Math.min(context, (h < count ? at(h, 0) : a.length) - at(h - 1, 1));
    const aStart = at(g, 0) - lead;
    const bStart = at(g, 2) - lead;
    const aLength = at(h - 1, 1) + trail - aStart;
    const bLength = at(h - 1, 3) + trail - bStart;
    emit("", `@@ -${range(aStart + 1, aLength)} +${range(bStart + 1, bLength)} @@`);
    for (let x = aStart; x < at(g, 0); x++) line(" ", a[x]!);
    for (let k = g; k < h; k++) {
      for (let x = at(k, 0); x < at(k, 1); x++) line("-", a[x]!);
      for (let y = at(k, 2); y < at(k, 3); y++) line("+", b[y]!);
      const next = k + 1 < h ? at(k + 1, 0) : at(k, 1) + trail;
      for (let x = at(k, 1); x < next; x++) line(" ", a[x]!);
    }
    g = h;
  }
  if (dropped > 0) out.push(`... diff truncated: ${dropped} more lines not shown`);
  return out.join("\n") + "\n";
}
