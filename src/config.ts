// The effective configuration: defaults < confd.toml < environment (CONFD_*) < command-line flags.
// (confd itself lets confd.toml override flags; that is a bug we do not copy, see docs/migrating-from-confd.md.)
import { existsSync, readFileSync } from "node:fs";
import TOML from "@iarna/toml";
import { ConfdError, UsageError } from "./errors.ts";
import type { FlagValues } from "./flags.ts";
import { parseLogLevel } from "./log.ts";
import { choiceList, defaults, envNames, invalidValue, OPTIONS, parseGoDuration, parseOptionText, parseWait, tomlNames, type Config, type OptionSpec } from "./options.ts";

export interface LoadedConfig {
  config: Config;
  warnings: string[];
  /** Notes for the debug log (which file was read, which was skipped). */
  notes: string[];
}

/**
 * Without `problems`, the first problem is thrown. With it (-check-config), each problem in confd.toml or
 * in the options is added to it and the option is left at what it would be without that setting, so that
 * every problem is found in one pass; a usage error (a CONFD_* variable) is still thrown.
 */
export function loadConfig(flags: FlagValues, env: Readonly<Record<string, string | undefined>>, problems?: ConfdError[]): LoadedConfig {
  const fail = (err: unknown, table: string | null = null) => {
    if (!problems || !(err instanceof ConfdError) || err instanceof UsageError) throw withKeyLine(err, table);
    problems.push(withKeyLine(err, table) as ConfdError);
  };
  const warnings: string[] = [];
  const notes: string[] = [];
  const config = defaults();
  const fromEnv = readEnv(env);

  const configFile = flags.configFile ?? fromEnv.configFile ?? config.configFile;
  const explicit = flags.configFile !== undefined || fromEnv.configFile !== undefined;
  let fromFile: Partial<Config> = {};
  if (existsSync(configFile)) {
    try {
      fromFile = readConfigFile(configFile, warnings, fail);
    } catch (err) {
      fail(err);
    }
    Object.assign(config, fromFile);
    notes.push(`Loaded config file ${configFile}`);
  } else if (explicit) {
    warnings.push(`config file ${configFile} does not exist; using flags, environment and defaults`);
  } else {
    notes.push(`Skipping config file ${configFile}: not found`);
  }
  const fromFlags = stripUndefined(flags);
  Object.assign(config, fromEnv, fromFlags);
  config.configFile = configFile;
  validate(config, fail);
  const given = new Set([...Object.keys(fromFile), ...Object.keys(fromEnv), ...Object.keys(fromFlags)]);
  warnings.push(...checkApplicable(config, given));
  return { config, warnings, notes };
}

/**
 * No option is taken and then ignored in silence: one that the chosen backend does not read is named in a
 * warning (confd ignores it without a word).
 */
function checkApplicable(config: Config, given: ReadonlySet<string>): string[] {
  const warnings: string[] = [];
  for (const o of OPTIONS) {
    if (!given.has(o.field)) continue;
    if (o.backends && !o.backends.includes(config.backend)) {
      warnings.push(`-${o.flag} is read by the ${o.backends.join(", ")} backend${o.backends.length > 1 ? "s" : ""} only; ignored with -backend ${config.backend}`);
    }
  }
  return warnings;
}

function stripUndefined(values: FlagValues): Partial<Config> {
  const out: Record<string, unknown> = {};
  for (const o of OPTIONS) if (values[o.field] !== undefined) out[o.field] = values[o.field];
  return out as Partial<Config>;
}

function readEnv(env: Readonly<Record<string, string | undefined>>): Partial<Config> {
  const out: Record<string, unknown> = {};
  for (const o of OPTIONS) {
    for (const name of envNames(o)) {
      const raw = env[name];
      if (raw === undefined || raw === "") continue;
      // A list is comma-separated here (CONFD_NODE=a:2379,b:2379); other values read as their flag's do.
      const value = o.type === "list" ? raw.split(",").map((s) => s.trim()).filter(Boolean) : parseOptionText(o, raw);
      if (value === undefined) throw new UsageError(invalidValue(o, raw, name), { flag: name });
      out[o.field] = value;
      break;
    }
  }
  return out as Partial<Config>;
}

const byTomlName = new Map<string, OptionSpec>();
for (const o of OPTIONS) if (!o.cliOnly) for (const name of tomlNames(o)) byTomlName.set(name, o);

/** A key whose value is wrong is thrown, or given to `fail` and skipped when there is one. */
export function readConfigFile(file: string, warnings: string[], fail?: (err: unknown) => void): Partial<Config> {
  const doc = parseToml(file);
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(doc)) {
    const o = byTomlName.get(key);
    if (!o) {
      warnings.push(`${file}: unknown key "${key}" ignored`);
      continue;
    }
    try {
      out[o.field] = tomlValue(o, value, file, key);
    } catch (err) {
      if (!fail) throw err;
      fail(err);
    }
  }
  return out as Partial<Config>;
}

function tomlValue(o: OptionSpec, value: unknown, file: string, key: string): unknown {
  // A secret option's value is not shown even when it is of the wrong type.
  const got = o.secret ? "" : `, got ${JSON.stringify(value)}`;
  const fail = (expected: string) => new ConfdError(`key "${key}" must be ${expected}${got}`, { file, key });
  switch (o.type) {
    case "string":
      if (typeof value !== "string") throw fail("a string");
      if (o.choices && !o.choices.includes(value)) throw new ConfdError(`key "${key}" ${choiceList(o.choices)}, got ${JSON.stringify(value)}`, { file, key });
      return value;
    case "boolean":
      if (typeof value !== "boolean") throw fail("true or false");
      return value;
    case "number":
      if (typeof value !== "number") throw fail("a number");
      return value;
    case "duration": {
      const ms = typeof value === "string" ? parseGoDuration(value) : undefined;
      if (ms === undefined) throw fail('a duration like "90s" or "10m"');
      return ms;
    }
    case "wait":
      if (typeof value !== "string" || parseWait(value) === undefined) throw fail('a window "min:max" like "2s:10s" (min > 0, max >= min)');
      return value;
    case "list":
      if (typeof value === "string") return [value];
      if (!Array.isArray(value) || !value.every((v) => typeof v === "string")) throw fail("a list of strings");
      return value;
  }
}

/** Parses a TOML file; a syntax error names the file, line and column. */
export function parseToml(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new ConfdError(`cannot read: ${(err as Error).message}`, { file });
  }
  try {
    return TOML.parse(text) as Record<string, unknown>;
  } catch (err) {
    const e = err as { line?: number; col?: number; message?: string };
    const message = String(e.message ?? err).split("\n")[0]!.replace(/ at row \d+, col \d+, pos \d+:?$/, "");
    throw new ConfdError(`invalid TOML: ${message}`, {
      file,
      line: e.line !== undefined ? e.line + 1 : undefined,
      column: e.col !== undefined ? e.col + 1 : undefined,
    });
  }
}

/**
 * Adds the line where the error's key is set in its TOML file (under `[table]`, or as `table.key`;
 * top level when table is null), as confd's messages give it: the parsed document does not say where a
 * value came from, so the file is read again, only when there is an error to report.
 */
export function withKeyLine(err: unknown, table: string | null): unknown {
  if (!(err instanceof ConfdError)) return err;
  const { file, key, line } = err.context;
  if (!file || !key || line !== undefined) return err;
  const found = keyLine(file, table, key);
  return found === undefined ? err : new ConfdError(err.message, { ...err.context, line: found });
}

function keyLine(file: string, table: string | null, key: string): number | undefined {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch {
    return undefined;
  }
  const quoted = (name: string) => `(?:${RegExp.escape(name)}|"${RegExp.escape(name)}"|'${RegExp.escape(name)}')`;
  const plain = new RegExp(`^\\s*${quoted(key)}\\s*=`);
  const dotted = table === null ? undefined : new RegExp(`^\\s*${quoted(table)}\\s*\\.\\s*${quoted(key)}\\s*=`);
  let current: string | null = null;
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const header = /^\s*\[\s*"?([^\]"]*?)"?\s*\]/.exec(lines[i]!);
    if (header) current = header[1]!;
    else if (current === table && plain.test(lines[i]!)) return i + 1;
    else if (current === null && dotted?.test(lines[i]!)) return i + 1;
  }
  return undefined;
}

function validate(config: Config, fail: (err: ConfdError) => void): void {
  const level = parseLogLevel(config.logLevel);
  // After a problem (only -check-config gets past fail), the option is left at its default.
  const initial = defaults();
  if (level) config.logLevel = level;
  else {
    fail(new ConfdError(`unknown log level "${config.logLevel}" (debug, info, warning, error)`, { flag: "-log-level" }));
    config.logLevel = initial.logLevel;
  }
  if (config.logFormat !== "text" && config.logFormat !== "json") {
    fail(new ConfdError(`unknown log format "${config.logFormat}" (text, json)`, { flag: "-log-format" }));
    config.logFormat = initial.logFormat;
  }
  if (config.templateEngine !== "go" && config.templateEngine !== "handlebars") {
    fail(new ConfdError(`unknown template engine "${config.templateEngine}" (go, handlebars)`, { flag: "-template-engine" }));
    config.templateEngine = initial.templateEngine;
  }
  // Only where it is used: confd.toml's interval = 0 next to -onetime stops neither confd nor this.
  if (!config.onetime && !config.watch && !(config.interval > 0)) {
    fail(new ConfdError(`interval must be a positive number of seconds, got ${config.interval}`, { flag: "-interval" }));
  }
}
