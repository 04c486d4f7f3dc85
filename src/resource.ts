// Template resources: every `*.toml` under <confdir>/conf.d (recursively), its `[template]` table read
// and checked into a ResourceSpec, the plain data a worker needs to render and sync one destination.
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join, posix, relative } from "node:path";
import { normalizeKey } from "./keys.ts";
import { parseToml, withKeyLine } from "./config.ts";
import { ConfdError, withContext } from "./errors.ts";
import { K, type GoTemplateTree } from "./gotemplate-node.ts";
import { GoTemplateParseError, parseGoTemplate } from "./gotemplate-parse.ts";
import type { MissingKey } from "./funcs.ts";
import { parseFormat, parseMaxChange, type RenderFormat } from "./guards.ts";
import { readFleetKeys, rejectBadGroups, type FleetSettings } from "./fleet.ts";

/** Its fleet keys (fleet.ts) are set only when the resource or a global option sets them. */
export interface ResourceSpec extends FleetSettings {
  /** The conf.d file's path relative to conf.d, without ".toml": how logs and errors name the resource. */
  name: string;
  /** The conf.d file. */
  file: string;
  /** The template file, <confdir>/templates/<src>. */
  src: string;
  dest: string;
  /** Keys as written in the resource, relative to `prefix`. */
  keys: string[];
  /** Global prefix joined with the resource's own, always starting with "/". */
  prefix: string;
  /** Permission bits; when unset the destination keeps its mode (0644 for a new file), as in confd. */
  mode?: number;
  /** Owner and group; when unset, the process's own (as confd does). */
  uid?: number;
  gid?: number;
  /** confd renders check_cmd as a Go template over {{.src}} (the staged file); reload_cmd too, here. */
  checkCmd: CommandTemplate | null;
  reloadCmd: CommandTemplate | null;
  checkTimeoutMs: number;
  reloadTimeoutMs: number;
  /** Which template language `src` is written in. */
  engine: Engine;
  /** Output guards (guards.ts): install an empty render anyway; most share of lines a render may change, in percent; its syntax. */
  allowEmpty?: boolean;
  maxChange?: number;
  format?: RenderFormat;
  /** Keep the replaced destination as <dest>.confd-prev, and put it back when reload_cmd or health_cmd fails (sync.ts). */
  backup?: boolean;
  health?: HealthCheck;
  /** What get and getv do with a key the store does not hold: fail the render (confd's way, the default) or give "". */
  missingKey?: MissingKey;
}

/** health_cmd: run after reload_cmd (or after the file is replaced, without one), and `retries` more times while it fails. */
export interface HealthCheck {
  cmd: CommandTemplate;
  timeoutMs: number;
  retries: number;
}

export type Engine = "go" | "handlebars";

/** A check_cmd, reload_cmd or health_cmd: its text, and its parse tree for the worker to render. */
export interface CommandTemplate {
  text: string;
  tree: GoTemplateTree;
}

export const DEFAULT_CHECK_TIMEOUT_MS = 30_000;
export const DEFAULT_RELOAD_TIMEOUT_MS = 60_000;
const DEFAULT_HEALTH_TIMEOUT_MS = 10_000;
const DEFAULT_HEALTH_RETRIES = 3;
const MAX_HEALTH_RETRIES = 100;

const KNOWN_KEYS = new Set([
  "src", "dest", "keys", "prefix", "mode", "uid", "gid", "owner", "group",
  "check_cmd", "reload_cmd", "check_timeout", "reload_timeout", "engine",
  "allow_empty", "max_change", "format", "backup", "health_cmd", "health_timeout", "health_retries", "missing_key",
  // fleet.ts reads these.
  "wait", "splay", "reload_group", "min_reload_interval",
]);

export interface LoadedResources {
  resources: ResourceSpec[];
  errors: ConfdError[];
  warnings: string[];
}

export interface LoadOptions {
  confdir: string;
  prefix: string;
  /** The engine for templates whose resource and file name do not say (-template-engine). */
  defaultEngine?: Engine;
  /** Injected by tests to load as on Windows, where files have no uid, gid or mode to set. */
  platform?: NodeJS.Platform;
  /** Platform users and groups, injectable for tests; by default read from /etc/passwd and /etc/group. */
  lookupUser?: (name: string) => number | undefined;
  lookupGroup?: (name: string) => number | undefined;
}

export function loadResources(options: LoadOptions): LoadedResources {
  const confDir = join(options.confdir, "conf.d");
  const result: LoadedResources = { resources: [], errors: [], warnings: [] };
  if (!existsSync(confDir)) {
    result.warnings.push(`cannot load template resources: confdir '${confDir}' does not exist`);
    return result;
  }
  for (const file of findToml(confDir)) {
    const name = relative(confDir, file).replace(/\\/g, "/").replace(/\.toml$/, "");
    try {
      result.resources.push(readResource(file, name, options, result.warnings));
    } catch (err) {
      result.errors.push(withContext(withKeyLine(err, "template"), { resource: name, file }));
    }
  }
  rejectDuplicateDestinations(result);
  rejectBadGroups(result);
  if (result.resources.length === 0 && result.errors.length === 0) {
    result.warnings.push(`no template resources found in ${confDir}`);
  }
  return result;
}

function findToml(dir: string): string[] {
  const out: string[] = [];
  const entries = readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const entry of entries) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...findToml(path));
    else if (entry.name.endsWith(".toml")) out.push(path);
  }
  return out;
}

function readResource(file: string, name: string, options: LoadOptions, warnings: string[]): ResourceSpec {
  const doc = parseToml(file);
  const t = doc.template;
  if (t === undefined || t === null || typeof t !== "object" || Array.isArray(t)) {
    throw new ConfdError("missing [template] table", { file });
  }
  const table = t as Record<string, unknown>;
  for (const key of Object.keys(doc)) if (key !== "template") warnings.push(`${file}: unknown table or key "${key}" ignored`);
  for (const key of Object.keys(table)) if (!KNOWN_KEYS.has(key)) warnings.push(`${file}: unknown key "template.${key}" ignored`);

  const str = (key: string, required = false): string => {
    const v = table[key];
    if (v === undefined) {
      if (required) throw new ConfdError(`missing required key "${key}"`, { file, key });
      return "";
    }
    if (typeof v !== "string") throw new ConfdError(`key "${key}" must be a string, got ${JSON.stringify(v)}`, { file, key });
    return v;
  };

  const src = str("src", true);
  const dest = str("dest", true);
  if (src === "") throw new ConfdError(`key "src" is empty`, { file, key: "src" });
  if (dest === "") throw new ConfdError(`key "dest" is empty`, { file, key: "dest" });
  const srcPath = join(options.confdir, "templates", src);
  if (!existsSync(srcPath)) throw new ConfdError(`template ${srcPath} does not exist`, { file, key: "src" });
  const kind = statSync(srcPath);
  if (!kind.isFile()) {
    throw new ConfdError(`template ${srcPath} is ${kind.isDirectory() ? "a directory" : "not a regular file"}`, { file, key: "src" });
  }

  if ((options.platform ?? process.platform) === "win32") {
    for (const key of ["uid", "gid", "owner", "group"]) {
      if (table[key] === undefined) continue;
      warnings.push(`${file}: key "${key}" ignored: Windows files have no owner or group to set`);
      delete table[key];
    }
  }

  const bool = (key: string): boolean => {
    const v = table[key] ?? false;
    if (typeof v !== "boolean") throw new ConfdError(`key "${key}" must be true or false, got ${JSON.stringify(v)}`, { file, key });
    return v;
  };
  const healthCmd = commandTemplate(str("health_cmd"), "health_cmd", file);
  const healthTimeoutMs = parseDuration(table.health_timeout, "health_timeout", file) ?? DEFAULT_HEALTH_TIMEOUT_MS;
  const retries = healthRetries(table.health_retries, file);
  if (!healthCmd) {
    for (const key of ["health_timeout", "health_retries"]) if (table[key] !== undefined) warnings.push(`${file}: key "${key}" ignored: no health_cmd`);
  }

  const keys = table.keys ?? [];
  if (!Array.isArray(keys) || !keys.every((k) => typeof k === "string")) {
    throw new ConfdError(`key "keys" must be a list of strings`, { file, key: "keys" });
  }

  return {
    name,
    file,
    src: srcPath,
    dest,
    keys: [...new Set(keys as string[])],
    prefix: normalizeKey(posix.join("/", options.prefix, str("prefix"))),
    mode: parseMode(str("mode"), file),
    uid: owner(table, "uid", "owner", file, options.lookupUser ?? ((n) => lookupId("/etc/passwd", n))),
    gid: owner(table, "gid", "group", file, options.lookupGroup ?? ((n) => lookupId("/etc/group", n))),
    checkCmd: commandTemplate(str("check_cmd"), "check_cmd", file),
    reloadCmd: commandTemplate(str("reload_cmd"), "reload_cmd", file),
    checkTimeoutMs: parseDuration(table.check_timeout, "check_timeout", file) ?? DEFAULT_CHECK_TIMEOUT_MS,
    reloadTimeoutMs: parseDuration(table.reload_timeout, "reload_timeout", file) ?? DEFAULT_RELOAD_TIMEOUT_MS,
    engine: chooseEngine(src, str("engine"), options.defaultEngine ?? "go", file),
    allowEmpty: bool("allow_empty"),
    maxChange: parseMaxChange(table.max_change, file),
    format: parseFormat(table.format, file),
    backup: bool("backup"),
    health: healthCmd ? { cmd: healthCmd, timeoutMs: healthTimeoutMs, retries } : undefined,
    missingKey: parseMissingKey(str("missing_key"), file),
    ...readFleetKeys(table, file),
  };
}

function parseMissingKey(text: string, file: string): MissingKey {
  if (text === "" || text === "error") return "error";
  if (text === "empty") return "empty";
  throw new ConfdError(`key "missing_key" must be "error" or "empty", got ${JSON.stringify(text)}`, { file, key: "missing_key" });
}

/** How many times a failing health_cmd is run again. */
function healthRetries(value: unknown, file: string): number {
  if (value === undefined) return DEFAULT_HEALTH_RETRIES;
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0 || value > MAX_HEALTH_RETRIES) {
    throw new ConfdError(`key "health_retries" must be an integer from 0 to ${MAX_HEALTH_RETRIES}, got ${JSON.stringify(value)}`, { file, key: "health_retries" });
  }
  return value;
}

/**
 * The resource's `engine` when set; else the template's extension: confd's ".tmpl" is Go, ".hbs" and
 * ".handlebars" are handlebars; else the global default (Go, since confd directories use any names).
 */
export function chooseEngine(src: string, explicit: string, fallback: Engine, file: string): Engine {
  if (explicit === "go" || explicit === "handlebars") return explicit;
  if (explicit !== "") throw new ConfdError(`key "engine" must be "go" or "handlebars", got "${explicit}"`, { file, key: "engine" });
  if (src.endsWith(".tmpl")) return "go";
  if (src.endsWith(".hbs") || src.endsWith(".handlebars")) return "handlebars";
  return fallback;
}

/** The fields a command template can use. */
export interface CommandData {
  /** check_cmd: the staged file; reload_cmd and health_cmd: the destination, where the staged file now is. */
  src: string;
  dest: string;
}

const COMMAND_FIELDS: ReadonlySet<string> = new Set<keyof CommandData>(["src", "dest"]);

/**
 * Parses a command as confd does (text/template, Go's builtins only, template named "checkcmd"), and
 * refuses fields other than .src and .dest at load: a reload_cmd such as
 * `docker inspect -f '{{.State.Pid}}' web` was plain text in confd and would otherwise render wrong.
 */
export function commandTemplate(text: string, key: "check_cmd" | "reload_cmd" | "health_cmd", file: string): CommandTemplate | null {
  if (text === "") return null;
  let tree: GoTemplateTree;
  try {
    tree = parseGoTemplate(key.replace("_", ""), text, new Set());
  } catch (err) {
    if (err instanceof GoTemplateParseError) throw new ConfdError(`key "${key}" is not a valid template: ${err.message}`, { file, key });
    throw err;
  }
  const unknown = fieldsUsed(tree).find((f) => !COMMAND_FIELDS.has(f));
  if (unknown !== undefined) {
    throw new ConfdError(`key "${key}" uses {{.${unknown}}}: only {{.src}} and {{.dest}} exist (write {{"{{"}} for literal braces)`, { file, key });
  }
  return { text, tree };
}

/** The first field name of every .field and $.field in a tree. */
export function fieldsUsed(node: unknown, out: string[] = []): string[] {
  if (Array.isArray(node)) {
    for (const n of node) fieldsUsed(n, out);
  } else if (node !== null && typeof node === "object") {
    const n = node as { k?: number; ident?: string[] };
    if (n.k === K.Field && n.ident?.[0] !== undefined) out.push(n.ident[0]);
    if (n.k === K.Variable && n.ident?.[0] === "$" && n.ident[1] !== undefined) out.push(n.ident[1]);
    for (const value of Object.values(node)) if (value !== null && typeof value === "object") fieldsUsed(value, out);
  }
  return out;
}

/**
 * Modes are octal whether or not they start with 0: "644" and "0644" both mean rw-r--r--.
 * (confd parses "644" as decimal 644, i.e. 01204: a bug we do not copy.)
 */
export function parseMode(text: string, file: string): number | undefined {
  if (text === "") return undefined;
  const m = /^(?:0o?)?([0-7]{1,4})$/i.exec(text.trim());
  if (!m) throw new ConfdError(`key "mode" must be an octal file mode like "0644", got "${text}"`, { file, key: "mode" });
  return parseInt(m[1]!, 8);
}

function owner(
  table: Record<string, unknown>,
  idKey: string,
  nameKey: string,
  file: string,
  lookup: (name: string) => number | undefined,
): number | undefined {
  const id = table[idKey];
  const name = table[nameKey];
  if (id !== undefined && name !== undefined) {
    throw new ConfdError(`set either "${idKey}" or "${nameKey}", not both`, { file, key: nameKey });
  }
  if (id !== undefined) {
    if (typeof id !== "number" || !Number.isInteger(id) || id < -1 || id > MAX_ID) {
      throw new ConfdError(`key "${idKey}" must be an integer from 0 to ${MAX_ID}, got ${JSON.stringify(id)}`, { file, key: idKey });
    }
    return id === -1 ? undefined : id;
  }
  if (name === undefined) return undefined;
  if (typeof name !== "string") throw new ConfdError(`key "${nameKey}" must be a string`, { file, key: nameKey });
  if (/^\d+$/.test(name)) {
    if (Number(name) > MAX_ID) throw new ConfdError(`key "${nameKey}" must name an id from 0 to ${MAX_ID}, got ${name}`, { file, key: nameKey });
    return Number(name);
  }
  const resolved = lookup(name);
  if (resolved === undefined) throw new ConfdError(`unknown ${nameKey} "${name}"`, { file, key: nameKey });
  return resolved;
}

/** uid_t and gid_t are 32 bits; 2^32-1 is "no change" to chown(2). */
const MAX_ID = 2 ** 32 - 2;

/** Looks a user or group name up in a passwd-format file (name:x:id:...). */
function lookupId(db: string, name: string): number | undefined {
  let text: string;
  try {
    text = readFileSync(db, "utf8");
  } catch {
    return undefined;
  }
  for (const line of text.split("\n")) {
    const [entry, , id] = line.split(":");
    if (entry === name && id !== undefined && /^\d+$/.test(id)) return Number(id);
  }
  return undefined;
}

/** "45s", "2m", "1h30m", "500ms" or a number of seconds. */
export function parseDuration(value: unknown, key: string, file: string): number | undefined {
  if (value === undefined) return undefined;
  const fail = () => new ConfdError(`key "${key}" must be a duration like "45s" or "2m", got ${JSON.stringify(value)}`, { file, key });
  if (typeof value === "number") {
    if (!(value > 0)) throw fail();
    return value * 1000;
  }
  if (typeof value !== "string") throw fail();
  const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  const text = value.trim();
  if (/^\d+(\.\d+)?$/.test(text)) return Number(text) * 1000;
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/gy;
  let total = 0;
  let matched = 0;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    total += Number(m[1]) * units[m[2]!]!;
    matched = re.lastIndex;
  }
  if (matched !== text.length || total <= 0) throw fail();
  return total;
}

function rejectDuplicateDestinations(result: LoadedResources): void {
  const byDest = new Map<string, ResourceSpec[]>();
  for (const r of result.resources) byDest.set(r.dest, [...(byDest.get(r.dest) ?? []), r]);
  for (const [dest, owners] of byDest) {
    if (owners.length < 2) continue;
    const files = owners.map((r) => r.file).join(" and ");
    for (const r of owners) {
      result.errors.push(new ConfdError(`destination ${dest} is also written by another resource (${files})`, { resource: r.name, file: r.file, key: "dest" }));
    }
    result.resources = result.resources.filter((r) => r.dest !== dest);
  }
}

/** The store keys a resource reads: its keys joined to its prefix. */
export function storeKeys(r: ResourceSpec): string[] {
  return r.keys.map((k) => posix.join(r.prefix, k));
}
