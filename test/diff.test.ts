import { expect, test } from "bun:test";
import { DEFAULT_MAX_DIFF_BYTES, unifiedDiff } from "../src/diff.ts";

const a = Array.from({ length: 20 }, (_, i) => `line ${i + 1}`).join("\n") + "\n";

test("identical texts give no diff", () => {
  expect(unifiedDiff(a, a, "a", "b")).toBe("");
});

test("hunks with three lines of context, as diff -u prints them", () => {
  const b = a.replace("line 2\n", "line two\n").replace("line 15\n", "").replace("line 20\n", "line 20\nline 21\n");
  expect(unifiedDiff(a, b, "old", "new")).toBe(
    [
      "--- old",
      "+++ new",
      "@@ -1,5 +1,5 @@",
      " line 1",
      "-line 2",
      "+line two",
      " line 3",
      " line 4",
      " line 5",
      "@@ -12,9 +12,9 @@",
      " line 12",
      " line 13",
      " line 14",
      "-line 15",
      " line 16",
      " line 17",
      " line 18",
      " line 19",
      " line 20",
      "+line 21",
      "",
    ].join("\n"),
  );
});

test("a new file diffs against nothing", () => {
  expect(unifiedDiff("", "x\ny\n", "old", "new")).toBe("--- old\n+++ new\n@@ -0,0 +1,2 @@\n+x\n+y\n");
});

test("a line that could go in two places goes where diff -u puts it", () => {
  const before = ["listen 80;", "server {", "server {", "", "}"].join("\n") + "\n";
  const after = ["}", "server {", "server {", "", "}", "}"].join("\n") + "\n";
  expect(unifiedDiff(before, after, "old", "new")).toBe(
    ["--- old", "+++ new", "@@ -1,5 +1,6 @@", "-listen 80;", "+}", " server {", " server {", " ", " }", "+}", ""].join("\n"),
  );
});

test("a removed line that could go in two places lines up with the line added in its place, as diff -u shows it", () => {
  const before = ["server {", "server {", "}"].join("\n") + "\n";
  const after = ["listen 80;", "server {", "}", "listen 80;"].join("\n") + "\n";
  expect(unifiedDiff(before, after, "old", "new")).toBe(
    ["--- old", "+++ new", "@@ -1,3 +1,4 @@", "-server {", "+listen 80;", " server {", " }", "+listen 80;", ""].join("\n"),
  );
});

test("past the cap, one note says how many lines were left out", () => {
  const b = a.replaceAll("line", "row");
  expect(unifiedDiff(a, b, "old", "new", 3, { maxBytes: 100 })).toBe(
    "--- old\n+++ new\n@@ -1,20 +1,20 @@\n... diff truncated: 40 more lines not shown\n",
  );
  expect(unifiedDiff(a, b, "old", "new", 3, { maxBytes: 1000 })).toBe(unifiedDiff(a, b, "old", "new"));
});

/** Integers below `bound` from a fixed seed (an LCG, high bits: its low bits repeat soon), so every run checks the same cases. */
function lcg(seed: number): (bound: number) => number {
  let state = seed;
  return (bound) => {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    return Math.floor((state / 2 ** 32) * bound);
  };
}

function split(text: string): string[] {
  const parts = text.split("\n");
  if (parts.at(-1) === "") parts.pop();
  return parts;
}

/** Applies a unified diff to `old`, failing on a header count or a context or removed line that does not match. */
function patch(diff: string, old: string[]): string[] {
  const out: string[] = [];
  const lines = split(diff);
  let at = 0;
  let i = 2;
  while (i < lines.length) {
    const header = /^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@$/.exec(lines[i++]!);
    if (!header) throw new Error(`not a hunk header: ${lines[i - 1]}`);
    const oldLength = Number(header[2] ?? 1);
    const newLength = Number(header[4] ?? 1);
    // An empty range names the line before it.
    const start = Number(header[1]) - (oldLength ? 1 : 0);
    if (start < at) throw new Error(`hunk at ${start} overlaps the one before`);
    while (at < start) out.push(old[at++]!);
    if (out.length !== Number(header[3]) - (newLength ? 1 : 0)) throw new Error(`new start ${header[3]} is off`);
    let removed = 0;
    let added = 0;
    while (i < lines.length && !lines[i]!.startsWith("@@")) {
      const line = lines[i++]!;
      const text = line.slice(1);
      if (line[0] === "+") out.push(text), added++;
      else if (line[0] === "-" || line[0] === " ") {
        if (old[at] !== text) throw new Error(`line ${at + 1} is ${JSON.stringify(old[at])}, the diff says ${JSON.stringify(text)}`);
        at++;
        if (line[0] === "-") removed++;
        else out.push(text), added++, removed++;
      } else throw new Error(`not a diff line: ${line}`);
    }
    if (removed !== oldLength || added !== newLength) throw new Error(`hunk counts ${oldLength},${newLength} are off`);
  }
  while (at < old.length) out.push(old[at++]!);
  return out;
}

/** The fewest lines removed plus added that turn a into b: the old implementation's forward search, without its trace. */
function editDistance(a: string[], b: string[]): number {
  const max = a.length + b.length;
  const v = new Int32Array(2 * max + 2);
  for (let d = 0; ; d++) {
    for (let k = -d; k <= d; k += 2) {
      let x = k === -d || (k !== d && v[max + k - 1]! < v[max + k + 1]!) ? v[max + k + 1]! : v[max + k - 1]! + 1;
      let y = x - k;
      while (x < a.length && y < b.length && a[x] === b[y]) x++, y++;
      v[max + k] = x;
      if (x >= a.length && y >= b.length) return d;
    }
  }
}

const changedLines = (diff: string) => split(diff).slice(2).filter((l) => l[0] === "-" || l[0] === "+").length;

test("generated cases: the diff turns the old text into the new one, with the fewest changed lines", () => {
  const random = lcg(20240611);
  // Small vocabularies make many equally short diffs, so shifting and tie-breaking get exercised.
  const vocabularies = [
    ["}", "", "server {", "  listen 80;", "# comment"],
    ["a", "b"],
    ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l"],
  ];
  for (let c = 0; c < 600; c++) {
    const vocabulary = vocabularies[c % vocabularies.length]!;
    const line = () => (random(4) === 0 ? `unique ${random(1000)}` : vocabulary[random(vocabulary.length)]!);
    const before = Array.from({ length: random(50) }, line);
    const after = before.slice();
    for (let edits = random(8); edits > 0; edits--) {
      const at = random(after.length + 1);
      after.splice(at, random(4), ...Array.from({ length: random(4) }, line));
    }
    const context = c % 5 === 4 ? random(3) : 3;
    const diff = unifiedDiff(before.map((l) => l + "\n").join(""), after.map((l) => l + "\n").join(""), "old", "new", context);
    const label = `case ${c}: ${JSON.stringify(before)} -> ${JSON.stringify(after)}\n${diff}`;
    expect(patch(diff, before), label).toEqual(after);
    expect(changedLines(diff), label).toBe(editDistance(before, after));
  }
});

const numbered = (length: number, name = "key") => Array.from({ length }, (_, i) => `${name}${i} = value-${i}`);

test("100,000 lines with every 10th changed: a correct, minimal diff, and capped by default", () => {
  const before = numbered(100_000);
  const after = before.map((l, i) => (i % 10 === 0 ? `${l} changed` : l));
  const [oldText, newText] = [before.join("\n") + "\n", after.join("\n") + "\n"];
  const full = unifiedDiff(oldText, newText, "old", "new", 3, { maxBytes: Infinity });
  expect(patch(full, before)).toEqual(after);
  expect(changedLines(full)).toBe(20_000);

  const capped = unifiedDiff(oldText, newText, "old", "new");
  expect(Buffer.byteLength(capped)).toBeLessThanOrEqual(DEFAULT_MAX_DIFF_BYTES);
  const shown = split(capped);
  const note = /^\.\.\. diff truncated: (\d+) more lines not shown$/.exec(shown.pop()!);
  expect(note).not.toBeNull();
  const all = split(full);
  expect(shown).toEqual(all.slice(0, shown.length));
  expect(Number(note![1])).toBe(all.length - shown.length);
});

test("100,000 lines with none in common: every line removed and added, in one hunk", () => {
  const diff = unifiedDiff(numbered(100_000, "old").join("\n"), numbered(100_000, "new").join("\n"), "old", "new", 3, { maxBytes: Infinity });
  expect(split(diff).slice(0, 4)).toEqual(["--- old", "+++ new", "@@ -1,100000 +1,100000 @@", "-old0 = value-0"]);
  expect(changedLines(diff)).toBe(200_000);
});

test("inputs past the search's cost bound still get a correct diff", () => {
  const random = lcg(7);
  const vocabulary = ["}", "", "{", "  x;"];
  const noise = () => Array.from({ length: 20_000 }, () => vocabulary[random(vocabulary.length)]!);
  const keys = numbered(20_000);
  for (const [before, after] of [[noise(), noise()], [keys, keys.toReversed()]] as const) {
    const diff = unifiedDiff(before.join("\n") + "\n", after.join("\n") + "\n", "old", "new", 3, { maxBytes: Infinity });
    expect(patch(diff, before)).toEqual(after);
  }
});

test("a missing newline at the end is a difference, shown as diff -u shows it", () => {
  expect(unifiedDiff("a\nb\nNEW\n", "a\nb\nNEW", "old", "new")).toBe(
    "--- old\n+++ new\n@@ -1,3 +1,3 @@\n a\n b\n-NEW\n+NEW\n\\ No newline at end of file\n",
  );
  expect(unifiedDiff("x\ny", "w\nx\ny", "old", "new")).toBe("--- old\n+++ new\n@@ -1,2 +1,3 @@\n+w\n x\n y\n\\ No newline at end of file\n");
});
