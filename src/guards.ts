// Output guards: what a rendered text must be before it may replace its destination. They judge the text
// alone, in memory, before anything is written, so a refused render leaves no file behind, runs no check_cmd
// and no reload, and the destination stays as it was. A store that is empty or half written still renders
// a "valid" file, only an empty or a much shorter one: `allow_empty` (off by default, so an empty render is
// refused) and `max_change` catch those; `format` catches a render that is not the syntax its service reads.
// A refusal names the destination and the guard, with counts and positions only: a render holds store
// values, and no value reaches a log line.
import { decodeBytes } from "./bytes.ts";
import { lineChanges } from "./diff.ts";
import { ConfdError } from "./errors.ts";
import type { ResourceSpec } from "./resource.ts";

export type RenderFormat = "json" | "yaml" | "toml";
const FORMATS: readonly RenderFormat[] = ["json", "yaml", "toml"];

/**
 * Throws the refusal of a render that a guard of `spec` rejects. `old` is the destination's content (absent
 * for a new file). Called only for a render whose content differs from the destination's.
 */
export async function refuseBadRender(spec: ResourceSpec, content: string, old: Buffer | undefined): Promise<void> {
  const { dest } = spec;
  const refuse = (message: string, key: string) => new ConfdError(`refusing to install ${message}`, { file: spec.file, key });

  // Spaces, tabs and line ends only: what a template whose data is missing renders around its loops.
  if (!spec.allowEmpty && !/[^ \t\r\n]/.test(content)) {
    const what = content === "" ? "" : `${content.length} bytes of whitespace only; `;
    throw refuse(`an empty render of ${dest} (${what}allow_empty = false)`, "allow_empty");
  }

  // Against an empty or missing destination any render is a 100% change: there is no limit then.
  if (spec.maxChange !== undefined && old !== undefined && old.length > 0) {
    const c = lineChanges(decodeBytes(old), content);
    // A line edited counts once (one removed, one added), as does a line only added or only removed.
    const changed = Math.max(c.removed, c.added);
    const total = Math.max(c.before, c.after);
    if (changed * 100 > spec.maxChange * total) {
      // Rounded up, so that the share shown is above the limit whenever it was refused, and below 100% unless all changed.
      const share = Math.min(Math.ceil((changed * 1000) / total) / 10, changed < total ? 99.9 : 100);
      throw refuse(
        `a render of ${dest} that changes ${share}% of its lines (${c.removed} removed, ${c.added} added; ${c.before} lines before, ${c.after} after; max_change = "${spec.maxChange}%")`,
        "max_change",
      );
    }
  }

  if (spec.format !== undefined) {
    const error = await syntaxError(spec.format, content);
    if (error !== undefined) throw refuse(`a render of ${dest} that is not valid ${spec.format.toUpperCase()}: ${error} (format = "${spec.format}")`, "format");
  }
}

/** What is wrong with `text` as `format`, and where, in words that quote nothing of it; undefined when it parses. */
async function syntaxError(format: RenderFormat, text: string): Promise<string | undefined> {
  if (format === "json") {
    try {
      JSON.parse(text);
      return undefined;
    } catch (err) {
      // JSON.parse says what (quoting the text) but not where; a scan of our own finds where.
      const found = jsonSyntaxError(text);
      return found ? `${found.reason} at ${position(text, found.offset)}` : bare((err as Error).message);
    }
  }
  if (format === "yaml") {
    const message = yamlError(text);
    if (message === undefined) return undefined;
    if (text.length > YAML_LOCATE_LIMIT) return `${message}; its line is not looked for in a render over ${YAML_LOCATE_LIMIT / 1024} KiB`;
    const line = yamlErrorLine(text, message);
    return `${message} ${line === undefined ? "at the end of the text" : `at line ${line}`}`;
  }
  // Loaded only by a worker whose resource asks for TOML: the others do not pay for the parser.
  const { default: TOML } = await import("@iarna/toml");
  try {
    TOML.parse(text);
    return undefined;
  } catch (err) {
    const e = err as { line?: number; col?: number; message?: string };
    // The parser's message quotes the text it stopped at after "at row …", and two of its messages quote a character.
    const message = String(e.message ?? err)
      .split(" at row ")[0]!
      .replace(/^(Unknown escape character):.*/, "$1")
      .replace(/^Unknown character .*/, "Unknown character")
      .replace(/, use .* instead$/, "");
    const where = e.line !== undefined && e.col !== undefined ? ` at line ${e.line + 1}, column ${e.col + 1}` : "";
    return `${bare(message)}${where}`;
  }
}

/** A parser's message without its "JSON Parse error: " prefix, lower-cased, anything quoted in it masked. */
function bare(message: string): string {
  const text = message.replace(/^(JSON|YAML) Parse error: /, "").replace(/"[^"]*"|'[^']*'/g, "…");
  return text.charAt(0).toLowerCase() + text.slice(1);
}

/** "line L, column C", 1-based, the column in characters. */
function position(text: string, offset: number): string {
  const start = text.lastIndexOf("\n", offset - 1) + 1;
  let line = 1;
  for (let i = text.indexOf("\n"); i !== -1 && i < start; i = text.indexOf("\n", i + 1)) line++;
  return `line ${line}, column ${[...text.slice(start, offset)].length + 1}`;
}

/**
 * The first syntax error in `text` by RFC 8259, for a text JSON.parse refused: where it is (a UTF-16 offset)
 * and what was expected there. Iterative, so that deep nesting cannot overflow the stack.
 */
export function jsonSyntaxError(text: string): { offset: number; reason: string } | undefined {
  const n = text.length;
  let i = 0;
  /** The open arrays and objects, innermost last: "]" or "}". */
  const closers: string[] = [];
  const skipSpace = () => {
    while (i < n && (text[i] === " " || text[i] === "\t" || text[i] === "\n" || text[i] === "\r")) i++;
  };
  const at = (what: string) => (i >= n ? "unexpected end of text" : `unexpected character, expected ${what}`);
  const fail = (reason: string) => ({ offset: i, reason });
  // A string at i; undefined when it is well formed (i is then past its closing quote).
  const string = (): string | undefined => {
    for (i++; i < n; i++) {
      const c = text.charCodeAt(i);
      if (c === 0x22) {
        i++;
        return undefined;
      }
      if (c < 0x20) return "control character in a string";
      if (c === 0x5c) {
        i++;
        if (i < n && '"\\/bfnrt'.includes(text[i]!)) continue;
        if (text[i] !== "u") return i >= n ? "unexpected end of text" : "invalid escape in a string";
        for (let k = 0; k < 4; k++) if (!/[0-9a-fA-F]/.test(text[++i] ?? "")) return "invalid \\u escape in a string";
      }
    }
    return "unterminated string";
  };
  // An object member's name and colon at i, after "{" or ",".
  const name = (): string | undefined => {
    skipSpace();
    if (text[i] !== '"') return at("a string naming a member");
    const bad = string();
    if (bad) return bad;
    skipSpace();
    if (text[i] !== ":") return at(":");
    i++;
    return undefined;
  };
  const number = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;

  for (;;) {
    // A value starts here.
    skipSpace();
    const c = text[i];
    if (c === "{" || c === "[") {
      i++;
      skipSpace();
      const closer = c === "{" ? "}" : "]";
      if (text[i] === closer) i++;
      else {
        closers.push(closer);
        if (closer === "}") {
          const bad = name();
          if (bad) return fail(bad);
        }
        continue;
      }
    } else if (c === '"') {
      const bad = string();
      if (bad) return fail(bad);
    } else if (text.startsWith("true", i) || text.startsWith("null", i)) i += 4;
    else if (text.startsWith("false", i)) i += 5;
    else {
      number.lastIndex = i;
      if (!number.test(text)) return fail(at("a value"));
      i = number.lastIndex;
    }
    // After a value: the end of the text, or of arrays and objects, or a comma and the next value.
    for (;;) {
      skipSpace();
      const closer = closers.at(-1);
      if (closer === undefined) return i < n ? fail("unexpected text after the value") : undefined;
      if (text[i] === closer) {
        i++;
        closers.pop();
        continue;
      }
      if (text[i] !== ",") return fail(at(`, or ${closer}`));
      i++;
      if (closer === "}") {
        const bad = name();
        if (bad) return fail(bad);
      }
      break;
    }
  }
}

/** Bun.YAML's refusal of `text`, without its prefix; undefined when it parses. */
function yamlError(text: string): string | undefined {
  try {
    Bun.YAML.parse(text);
    return undefined;
  } catch (err) {
    // Deep nesting overflows the parser's stack (RangeError).
    return err instanceof RangeError ? "nested too deeply" : bare((err as Error).message);
  }
}

/** Past this many characters, the bisection's parses would take seconds (Bun.YAML reads ~3 MB a second). */
const YAML_LOCATE_LIMIT = 256 * 1024;

/**
 * Bun.YAML says what is wrong but not where. The line is found by bisection over prefixes of whole lines:
 * the shortest that fails with the same message as the whole text, in a dozen or so parses however long
 * it is. Undefined when only the whole text fails that way (the error is its end: an unclosed bracket).
 */
function yamlErrorLine(text: string, message: string): number | undefined {
  const ends: number[] = [];
  for (let i = text.indexOf("\n"); i !== -1; i = text.indexOf("\n", i + 1)) ends.push(i + 1);
  if (ends.at(-1) !== text.length) ends.push(text.length);
  const fails = (lines: number) => yamlError(text.slice(0, ends[lines - 1])) === message;
  let lo = 1;
  let hi = ends.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (fails(mid)) hi = mid;
    else lo = mid + 1;
  }
  return lo < ends.length || message !== "unexpected EOF" ? lo : undefined;
}

/** `max_change = "50%"`: the most a render may change of its destination's lines, in percent (0 < p ≤ 100). */
export function parseMaxChange(value: unknown, file: string): number | undefined {
  if (value === undefined) return undefined;
  const m = typeof value === "string" ? /^\s*(\d+(?:\.\d+)?)\s*%\s*$/.exec(value) : null;
  const percent = m ? Number(m[1]) : NaN;
  if (!(percent > 0 && percent <= 100)) {
    throw new ConfdError(`key "max_change" must be a share of lines like "50%", above 0% and at most 100%, got ${JSON.stringify(value)}`, { file, key: "max_change" });
  }
  return percent;
}

/** `format = "json" | "yaml" | "toml"`: the syntax a render must parse as. */
export function parseFormat(value: unknown, file: string): RenderFormat | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "string" || !(FORMATS as readonly string[]).includes(value)) {
    throw new ConfdError(`key "format" must be one of ${FORMATS.map((f) => `"${f}"`).join(", ")}, got ${JSON.stringify(value)}`, { file, key: "format" });
  }
  return value as RenderFormat;
}
