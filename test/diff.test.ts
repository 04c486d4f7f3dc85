import { expect, test } from "bun:test";
import { unifiedDiff } from "../src/diff.ts";

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
