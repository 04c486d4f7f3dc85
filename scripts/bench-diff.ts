// Benchmark (not a test) for src/diff.ts, the --noop diff: wall time and peak RSS of one unifiedDiff call on
// two 100,000-line texts, each case in its own process so the peak is that case's alone (from /usr/bin/time
// when present, else the process's own rusage). Target: under 200 MB for the whole process.
//   bun scripts/bench-diff.ts [--lines 100000]
import { parseArgs } from "node:util";
import { unifiedDiff } from "../src/diff.ts";

const { values } = parseArgs({ options: { lines: { type: "string", default: "100000" }, case: { type: "string" } } });
const n = Number(values.lines);

/** Deterministic pseudo-random integers below `bound` (an LCG), so every run diffs the same texts. */
function lcg(seed: number): (bound: number) => number {
  let state = seed;
  return (bound) => {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    // From the high bits: an LCG's low bits repeat with a short period.
    return Math.floor((state / 2 ** 32) * bound);
  };
}

// About 16 bytes a line: 1.6 MB for 100,000 lines.
const numbered = (prefix: string) => Array.from({ length: n }, (_, i) => `${prefix}${i}=v${i}`);
const cases: Record<string, { describe: string; texts: () => [string[], string[]]; maxBytes?: number }> = {
  tenth: {
    describe: "every 10th line changed, default cap",
    texts: () => [numbered("key"), numbered("key").map((l, i) => (i % 10 === 0 ? `${l} changed` : l))],
  },
  "tenth-uncapped": {
    describe: "every 10th line changed, no cap",
    texts: () => [numbered("key"), numbered("key").map((l, i) => (i % 10 === 0 ? `${l} changed` : l))],
    maxBytes: Infinity,
  },
  disjoint: { describe: "no line in common", texts: () => [numbered("old"), numbered("new")] },
  reversed: { describe: "same lines in reverse order", texts: () => [numbered("key"), numbered("key").reverse()] },
  shuffled: {
    describe: "same lines, even ones first then odd ones",
    texts: () => {
      const a = numbered("key");
      return [a, [...a.filter((_, i) => i % 2 === 0), ...a.filter((_, i) => i % 2 === 1)]];
    },
  },
  "four-lines": {
    describe: "random sequences of 4 distinct lines",
    texts: () => {
      const pick = lcg(42);
      const vocabulary = ["}", "", "{", "  x;"];
      const random = () => Array.from({ length: n }, () => vocabulary[pick(vocabulary.length)]!);
      return [random(), random()];
    },
  },
};

if (values.case) {
  const c = cases[values.case]!;
  const [a, b] = c.texts();
  const before = a.join("\n") + "\n";
  const after = b.join("\n") + "\n";
  const started = performance.now();
  const diff = unifiedDiff(before, after, "old", "new", 3, { maxBytes: c.maxBytes });
  const ms = performance.now() - started;
  console.log(JSON.stringify({ ms, inputBytes: before.length, diffBytes: diff.length, ownMaxRssKiB: process.resourceUsage().maxRSS }));
} else {
  const time = Bun.which("time", { PATH: "/usr/bin" });
  console.log(`${n}-line texts; peak RSS from ${time ? "/usr/bin/time" : "the process's own rusage"}`);
  console.log("| case | both texts | diff | diff time | peak RSS |\n|---|---|---|---|---|");
  for (const [name, c] of Object.entries(cases)) {
    const argv = [process.execPath, import.meta.path, "--lines", String(n), "--case", name];
    const child = Bun.spawn([...(time ? [time, "-f", "%M"] : []), ...argv], { stdout: "pipe", stderr: "pipe" });
    const [stdout, stderr, code] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
    if (code !== 0) throw new Error(`${name} exited with ${code}: ${stderr}`);
    const r = JSON.parse(stdout) as { ms: number; inputBytes: number; diffBytes: number; ownMaxRssKiB: number };
    // /usr/bin/time prints KiB on its last line.
    const kib = time ? Number(stderr.trim().split("\n").at(-1)) : r.ownMaxRssKiB;
    const mb = (bytes: number) => `${(bytes / 1e6).toFixed(1)} MB`;
    console.log(`| ${c.describe} | ${mb(2 * r.inputBytes)} | ${mb(r.diffBytes)} | ${r.ms.toFixed(0)} ms | ${mb(kib * 1024)} |`);
  }
}
