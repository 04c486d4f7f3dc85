// Command-line parsing: confd's Go-style flags (`-backend etcd`, `--backend=etcd`, `-onetime`,
// `-node a -node b`, `-watch=false`) into the options explicitly given, and the usage text.
import yargs from "yargs";
import { ConfdError } from "./errors.ts";
import { OPTIONS, type Config } from "./options.ts";

export type FlagValues = Partial<Config> & { help?: boolean };

export class UsageError extends ConfdError {}

export function parseFlags(argv: readonly string[]): FlagValues {
  let parser = yargs([...argv])
    .parserConfiguration({
      "short-option-groups": false,
      "camel-case-expansion": false,
      "boolean-negation": false,
      "dot-notation": false,
      "parse-numbers": false,
      "parse-positional-numbers": false,
    })
    // yargs' own help and version handling is switched off first: it would drop our options of those names.
    .help(false)
    .version(false)
    .option("help", { type: "boolean", alias: "h" })
    .strict()
    .exitProcess(false)
    .fail((message: string | null, err: Error | undefined) => {
      throw usageError(message ?? err?.message ?? "invalid arguments");
    });
  for (const o of OPTIONS) {
    // Numbers are parsed here rather than by yargs so that a bad value is named, not turned into NaN.
    const type = o.type === "boolean" ? "boolean" : "string";
    parser = parser.option(o.flag, o.type === "boolean" ? { type } : { type, requiresArg: true });
  }
  const parsed = parser.parseSync() as Record<string, unknown>;

  const values: Record<string, unknown> = {};
  if (parsed.help === true) values.help = true;
  for (const o of OPTIONS) {
    const raw = parsed[o.flag];
    if (raw === undefined) continue;
    const list = Array.isArray(raw) ? raw.map(String) : [String(raw)];
    switch (o.type) {
      case "boolean":
        values[o.field] = Array.isArray(raw) ? raw[raw.length - 1] === true : raw === true;
        break;
      case "list":
        values[o.field] = list;
        break;
      case "number": {
        const text = list[list.length - 1] ?? "";
        const n = Number(text);
        if (!/^\s*-?\d+(\.\d+)?\s*$/.test(text) || !Number.isFinite(n)) {
          throw new UsageError(`invalid value "${text}" for flag -${o.flag}: parse error`, { flag: `-${o.flag}` });
        }
        values[o.field] = n;
        break;
      }
      case "string":
        // Go's flag package keeps the last of repeated string flags.
        values[o.field] = list[list.length - 1];
        break;
    }
  }
  return values as FlagValues;
}

function usageError(message: string): UsageError {
  const unknown = /^Unknown arguments?: (.*)$/.exec(message);
  if (unknown) {
    const name = (unknown[1] ?? "").split(",")[0]?.trim() ?? "";
    return new UsageError(`flag provided but not defined: -${name}`, { flag: `-${name}` });
  }
  const missing = /^Not enough arguments following: (.*)$/.exec(message);
  if (missing) return new UsageError(`flag needs an argument: -${missing[1]}`, { flag: `-${missing[1]}` });
  return new UsageError(message);
}

export function usage(): string {
  const lines = ["Usage: confd [flags]", "", "Flags may be written -name value, -name=value, --name value or --name=value.", ""];
  for (const o of OPTIONS) {
    const arg = o.type === "boolean" ? "" : o.type === "number" ? " int" : " string";
    const def =
      o.type === "boolean" || (Array.isArray(o.default) && o.default.length === 0) || o.default === ""
        ? ""
        : ` (default ${JSON.stringify(o.default)})`;
    lines.push(`  -${o.flag}${arg}`, `        ${o.description}${def}`);
  }
  lines.push(
    "",
    "Every flag can also be set as an environment variable CONFD_<FLAG> (e.g. CONFD_BACKEND, CONFD_NODE=a,b)",
    "or in confd.toml. Precedence: flag > environment > confd.toml > default.",
  );
  return lines.join("\n") + "\n";
}
