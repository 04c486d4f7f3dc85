// -color for -noop's diff: whether to colour it (auto: only for a terminal, and never when NO_COLOR is
// set, as https://no-color.org asks), and the colouring, git's: file headers bold, hunk headers cyan,
// removed lines red, added lines green, each line reset before its end.

import { isatty } from "node:tty";

/** -color's value, one of its choices in options.ts. */
export function useColor(setting: string, env: Readonly<Record<string, string | undefined>>, stdoutIsTty = isatty(1)): boolean {
  if (setting !== "auto") return setting === "always";
  // no-color.org: set and not empty.
  return stdoutIsTty && !env.NO_COLOR;
}

const BOLD = "\x1b[1m";
const CYAN = "\x1b[36m";
const RED = "\x1b[31m";
const GREEN = "\x1b[32m";
const RESET = "\x1b[0m";

/**
 * One unifiedDiff text (diff.ts), coloured. Its first two lines are the file headers, then each line's
 * first character says what it is: "@@" a hunk, "-" removed, "+" added; " ", "\" (no newline at end of
 * file) and the truncation note stay plain. A removed line reading "-- x" is not mistaken for a header.
 */
export function colorDiff(text: string): string {
  const lines = text.split("\n");
  const last = lines.pop();
  const out = lines.map((line, i) => {
    const color = i < 2 ? BOLD : line.startsWith("@@") ? CYAN : line.startsWith("-") ? RED : line.startsWith("+") ? GREEN : undefined;
    return color ? `${color}${line}${RESET}` : line;
  });
  return [...out, last].join("\n");
}
