// Command-line parsing: confd's Go-style flags (`-backend etcd`, `--backend=etcd`, `-onetime`, `-noop=1`,
// `-node a -node b`, `-watch=false`) into the options explicitly given, and the usage text. Values are
// read as Go's flag package reads them (options.ts parseOptionText), so `-noop=1` is a dry run here too.
import { Parser } from "yargs/helpers";
import { UsageError } from "./errors.ts";
import { invalidValue, OPTIONS, parseOptionText, type Config, type OptionSpec } from "./options.ts";

export type FlagValues = Partial<Config>;

const BY_FLAG = new Map<string, OptionSpec>(OPTIONS.map((o) => [o.flag, o]));
// Go's flag package answers -h as it answers -help.
BY_FLAG.set("h", BY_FLAG.get("help")!);

export function parseFlags(argv: readonly string[]): FlagValues {
  const tokens = goFlagTokens(argv);
  // Every flag reaches yargs as --name=text already checked by goFlagTokens: yargs' parser (not its
  // command builder, which costs the binary some 10 MiB more for nothing used here) collects repeats.
  const parsed = Parser(
    tokens.map((t) => `--${t.name}=${t.value}`),
    {
      configuration: {
        "short-option-groups": false,
        "camel-case-expansion": false,
        "boolean-negation": false,
        "dot-notation": false,
        "parse-numbers": false,
        "parse-positional-numbers": false,
        "duplicate-arguments-array": true,
      },
    },
  ) as Record<string, unknown>;

  const values: Record<string, unknown> = {};
  const last = (raw: unknown) => String(Array.isArray(raw) ? raw[raw.length - 1] : raw);
  for (const o of OPTIONS) {
    const raw = parsed[o.flag];
    if (raw === undefined) continue;
    // Go's flag package keeps the last of repeated flags; -node and -file collect every one.
    values[o.field] = o.type === "list" ? (Array.isArray(raw) ? raw.map(String) : [String(raw)]) : parseOptionText(o, last(raw));
  }
  return values as FlagValues;
}

interface FlagToken {
  name: string;
  value: string;
}

/**
 * Go's flag syntax, checked and made explicit: "-name" or "--name", then "=value", or for a non-boolean
 * flag the next argument whatever it looks like (Go takes "-prefix -x" as prefix "-x"); a boolean flag
 * never takes the next argument. Go stops at the first argument that is not a flag and confd ignores
 * the rest, silently: here any such argument is an error, since what follows it would be lost.
 */
function goFlagTokens(argv: readonly string[]): FlagToken[] {
  const tokens: FlagToken[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--" || !arg.startsWith("-") || arg === "-") {
      const stray = arg === "--" ? argv[i + 1] : arg;
      if (stray === undefined) break;
      throw new UsageError(`unexpected argument ${JSON.stringify(stray)}: confd takes flags only (-name or -name=value)`);
    }
    const body = arg.slice(arg.startsWith("--") ? 2 : 1);
    if (body === "" || body.startsWith("-") || body.startsWith("=")) throw new UsageError(`bad flag syntax: ${arg}`);
    const eq = body.indexOf("=");
    const name = eq < 0 ? body : body.slice(0, eq);
    const option = BY_FLAG.get(name);
    if (!option) throw new UsageError(`flag provided but not defined: -${name}`, { flag: `-${name}` });
    let value: string;
    if (eq >= 0) value = body.slice(eq + 1);
    else if (option.type === "boolean") value = "true";
    else if (i + 1 < argv.length) value = argv[++i]!;
    else throw new UsageError(`flag needs an argument: -${name}`, { flag: `-${name}` });
    if (parseOptionText(option, value) === undefined) throw new UsageError(invalidValue(option, value, `-${name}`), { flag: `-${name}` });
    tokens.push({ name: option.flag, value });
  }
  return tokens;
}

export function usage(): string {
  const lines = ["Usage: confd [flags]", "", "Flags may be written -name value, -name=value, --name value or --name=value.", ""];
  for (const o of OPTIONS) {
    const arg = o.type === "boolean" ? "" : o.type === "number" ? " int" : o.type === "duration" ? " duration" : " string";
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
