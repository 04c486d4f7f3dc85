// The one table of every option: its flag name (confd's), type, default, help text and the confd.toml
// spellings it answers to. The flag parser, the environment reader and the config-file reader all
// derive from this table, so an option cannot exist in one place and be missing from another.

/**
 * "duration" is Go's time.Duration text ("90s", "1h30m"), held as milliseconds; "wait" is a quiescence
 * window, "min:max" or "min" (parseWait), held as its checked text.
 */
export type OptionType = "string" | "boolean" | "number" | "duration" | "list" | "wait";

export interface Config {
  backend: string;
  nodes: string[];
  confdir: string;
  configFile: string;
  onetime: boolean;
  watch: boolean;
  interval: number;
  prefix: string;
  noop: boolean;
  syncOnly: boolean;
  keepStageFile: boolean;
  logLevel: string;
  logFormat: string;
  scheme: string;
  srvDomain: string;
  srvRecord: string;
  clientCert: string;
  clientKey: string;
  clientCaKeys: string;
  clientInsecure: boolean;
  basicAuth: boolean;
  username: string;
  password: string;
  authToken: string;
  authType: string;
  appId: string;
  userId: string;
  roleId: string;
  secretId: string;
  path: string;
  table: string;
  separator: string;
  files: string[];
  filter: string;
  version: boolean;
  help: boolean;
  checkConfig: boolean;
  templateEngine: string;
  color: string;
  /** Milliseconds; 0: workers stay. */
  workerIdle: number;
  /** Quiescence for every resource without its own (fleet.ts): "min:max", "min", or "" for none. */
  wait: string;
  /** Milliseconds; the reload splay window for every resource without its own (fleet.ts). 0: none. */
  splay: number;
  /** host:port for /metrics, /healthz, /readyz and /status; empty: no server. */
  metricsAddr: string;
}

export interface OptionSpec {
  flag: string;
  field: keyof Config;
  type: OptionType;
  default: string | boolean | number | string[];
  description: string;
  /** confd.toml keys besides the flag name and its underscore form. */
  tomlAliases?: string[];
  /** Environment variables besides CONFD_<FLAG_WITH_UNDERSCORES>. */
  envAliases?: string[];
  /** Never printed, never logged. */
  secret?: boolean;
  /** Only meaningful on the command line (not in confd.toml). */
  cliOnly?: boolean;
  /** The backends that read it; set for any other, it is ignored with a warning. Unset: every backend. */
  backends?: readonly string[];
  /** The only values a string option takes; any other is refused where it is given (exit 2 for a flag). */
  choices?: readonly string[];
}

const ETCD = ["etcd", "etcdv3"];
const NETWORKED = [...ETCD, "consul", "redis", "vault", "zookeeper"];
/** The networked backends that take credentials (zookeeper's takes none, as confd's). */
const CREDENTIALED = [...ETCD, "consul", "redis", "vault"];
const VAULT_ONLY = ["vault"];
/** The stores whose nodes SRV records can name (src/srv.ts). */
const SRV_STORES: readonly string[] = NETWORKED;

export const OPTIONS: readonly OptionSpec[] = [
  { flag: "backend", field: "backend", type: "string", default: "etcd", description: "backend to use (etcd, etcdv3, consul, redis, zookeeper, vault, dynamodb, ssm, file, env)" },
  { flag: "node", field: "nodes", type: "list", default: [], description: "backend node, host:port or URL (repeatable)", tomlAliases: ["nodes", "backend_nodes"], backends: NETWORKED },
  { flag: "confdir", field: "confdir", type: "string", default: "/etc/confd", description: "confd conf directory (conf.d/ and templates/)" },
  { flag: "config-file", field: "configFile", type: "string", default: "/etc/confd/confd.toml", description: "the confd config file", cliOnly: true },
  { flag: "onetime", field: "onetime", type: "boolean", default: false, description: "run once and exit" },
  { flag: "watch", field: "watch", type: "boolean", default: false, description: "enable watch support" },
  { flag: "interval", field: "interval", type: "number", default: 600, description: "backend polling interval in seconds" },
  { flag: "prefix", field: "prefix", type: "string", default: "", description: "key path prefix" },
  { flag: "noop", field: "noop", type: "boolean", default: false, description: "only show pending changes" },
  { flag: "sync-only", field: "syncOnly", type: "boolean", default: false, description: "sync without check_cmd and reload_cmd" },
  { flag: "keep-stage-file", field: "keepStageFile", type: "boolean", default: false, description: "keep staged files" },
  { flag: "log-level", field: "logLevel", type: "string", default: "info", description: "level which confd should log messages (debug, info, warning, error)" },
  { flag: "log-format", field: "logFormat", type: "string", default: "text", description: "log line format: text (confd's) or json" },
  { flag: "scheme", field: "scheme", type: "string", default: "http", description: "the backend URI scheme for nodes retrieved from DNS SRV records (http or https)", backends: [...ETCD, "consul", "vault"] },
  { flag: "srv-domain", field: "srvDomain", type: "string", default: "", description: "the domain whose SRV record _<backend>._tcp.<domain> lists the backend nodes", backends: SRV_STORES },
  { flag: "srv-record", field: "srvRecord", type: "string", default: "", description: "the SRV record to search for backend nodes, e.g. _etcd-client._tcp.example.com (wins over -srv-domain and -node)", backends: SRV_STORES },
  { flag: "client-cert", field: "clientCert", type: "string", default: "", description: "the client cert", backends: [...ETCD, "consul", "vault"] },
  { flag: "client-key", field: "clientKey", type: "string", default: "", description: "the client key", backends: CREDENTIALED },
  { flag: "client-ca-keys", field: "clientCaKeys", type: "string", default: "", description: "client ca keys", tomlAliases: ["client_cakeys", "client-cakeys"], envAliases: ["CONFD_CLIENT_CAKEYS"], backends: [...ETCD, "consul", "vault"] },
  { flag: "client-insecure", field: "clientInsecure", type: "boolean", default: false, description: "allow connections to TLS servers without verifying their certificates", backends: [...ETCD, "consul", "vault"] },
  { flag: "basic-auth", field: "basicAuth", type: "boolean", default: false, description: "use basic auth to authenticate (consul and etcd)", backends: [...ETCD, "consul"] },
  { flag: "username", field: "username", type: "string", default: "", description: "the username to authenticate as (vault and etcd)", backends: [...ETCD, "consul", "vault"] },
  { flag: "password", field: "password", type: "string", default: "", description: "the password to authenticate with (vault and etcd)", secret: true, backends: CREDENTIALED },
  { flag: "auth-token", field: "authToken", type: "string", default: "", description: "auth bearer token to use", secret: true, backends: ["consul", "vault"] },
  { flag: "auth-type", field: "authType", type: "string", default: "", description: "vault auth backend type to use", backends: VAULT_ONLY },
  { flag: "app-id", field: "appId", type: "string", default: "", description: "vault app-id (auth-type app-id)", backends: VAULT_ONLY },
  { flag: "user-id", field: "userId", type: "string", default: "", description: "vault user-id (auth-type app-id)", secret: true, backends: VAULT_ONLY },
  { flag: "role-id", field: "roleId", type: "string", default: "", description: "vault role-id (auth-type app-role or kubernetes)", backends: VAULT_ONLY },
  { flag: "secret-id", field: "secretId", type: "string", default: "", description: "vault secret-id (auth-type app-role)", secret: true, backends: VAULT_ONLY },
  { flag: "path", field: "path", type: "string", default: "", description: "vault mount path of the auth method", backends: VAULT_ONLY },
  { flag: "table", field: "table", type: "string", default: "", description: "the name of the DynamoDB table", backends: ["dynamodb"] },
  { flag: "separator", field: "separator", type: "string", default: "", description: "the separator to replace '/' with when looking up keys (redis)", backends: ["redis"] },
  { flag: "file", field: "files", type: "list", default: [], description: "the YAML or JSON file or directory to read (file backend, repeatable)", backends: ["file"] },
  { flag: "filter", field: "filter", type: "string", default: "*", description: "file name glob for --file directories (file backend)", backends: ["file"] },
  { flag: "template-engine", field: "templateEngine", type: "string", default: "go", description: "engine for templates whose resource sets no engine and whose name ends neither in .tmpl (go) nor .hbs/.handlebars (handlebars): go or handlebars" },
  { flag: "color", field: "color", type: "string", default: "auto", choices: ["auto", "always", "never"], description: "colour -noop's diff: auto (when stdout is a terminal and NO_COLOR is unset), always or never" },
  {
    flag: "worker-idle",
    field: "workerIdle",
    type: "duration",
    default: 0,
    description: "with -watch or an interval, end a resource's worker thread after this long without work (e.g. 10m); the next change starts it again. 0: workers stay",
  },
  {
    flag: "check-config",
    field: "checkConfig",
    type: "boolean",
    default: false,
    description: "check confd.toml, every template resource and every template, print one line per problem, and exit: 0 when all is valid, 1 when not. Contacts no store, writes nothing, runs no command",
    cliOnly: true,
  },
  { flag: "wait", field: "wait", type: "wait", default: "", description: 'after a change, render once no further change came for min, at the latest max after the first ("2s:10s"; "2s" means "2s:8s")' },
  { flag: "splay", field: "splay", type: "duration", default: 0, description: "delay each reload by a fixed, host-derived share of this window (e.g. 30s), so that a fleet spreads its reloads" },
  { flag: "metrics-addr", field: "metricsAddr", type: "string", default: "", description: "serve Prometheus /metrics, /healthz, /readyz and /status on this host:port (e.g. 127.0.0.1:9100); empty: none" },
  { flag: "version", field: "version", type: "boolean", default: false, description: "print version and exit", cliOnly: true },
  { flag: "help", field: "help", type: "boolean", default: false, description: "print this help and exit (also -h)", cliOnly: true },
];

export function defaults(): Config {
  const config: Record<string, unknown> = {};
  for (const o of OPTIONS) config[o.field] = Array.isArray(o.default) ? [...o.default] : o.default;
  return config as unknown as Config;
}

export function envNames(o: OptionSpec): string[] {
  return [`CONFD_${o.flag.toUpperCase().replace(/-/g, "_")}`, ...(o.envAliases ?? [])];
}

/** confd.toml spellings: the flag, its underscore form, and aliases. */
export function tomlNames(o: OptionSpec): string[] {
  const names = [o.flag, o.flag.replace(/-/g, "_"), ...(o.tomlAliases ?? [])];
  for (const a of o.tomlAliases ?? []) names.push(a.replace(/-/g, "_"), a.replace(/_/g, "-"));
  return [...new Set(names)];
}

/**
 * An option's value from text (a flag or an environment variable), by Go's rules, since confd's flags
 * are Go's flag package: booleans as strconv.ParseBool, integers as strconv.ParseInt(s, 0, 64) (so
 * "0x1f", "0o17", "017" and "1_000" too). Undefined when the text is not a value of the type; the
 * caller says where it came from.
 */
export function parseOptionText(o: OptionSpec, text: string): string | boolean | number | string[] | undefined {
  switch (o.type) {
    case "string":
      return o.choices && !o.choices.includes(text) ? undefined : text;
    case "list":
      return [text];
    case "boolean":
      return GO_BOOLEANS.get(text);
    case "number":
      return parseGoInt(text);
    case "duration":
      return parseGoDuration(text);
    case "wait":
      return parseWait(text) === undefined ? undefined : text;
  }
}

/** Go's flag package's wording for a value it cannot read: `invalid boolean value "maybe" for -noop: parse error`. */
export function invalidValue(o: OptionSpec, text: string, where: string): string {
  if (o.type === "boolean") return `invalid boolean value ${JSON.stringify(text)} for ${where}: parse error`;
  if (o.choices) return `invalid value ${JSON.stringify(text)} for flag ${where}: ${choiceList(o.choices)}`;
  // Written as an integer, too big for one: Go says "value out of range" (here past 2^53, where Go's is 2^63).
  const why = o.type === "number" && goIntDigits(text) !== undefined ? "value out of range" : "parse error";
  return `invalid value ${JSON.stringify(text)} for flag ${where}: ${why}`;
}

/** "must be auto, always or never". */
export function choiceList(choices: readonly string[]): string {
  return `must be ${choices.slice(0, -1).join(", ")} or ${choices[choices.length - 1]}`;
}

const DURATION_UNITS_MS: Readonly<Record<string, number>> = { ns: 1e-6, us: 1e-3, "µs": 1e-3, "μs": 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/**
 * Go's time.ParseDuration, in milliseconds: "300ms", "1.5h", "2h45m"; a bare "0" is zero, other bare
 * numbers are not durations. Negative durations are refused (none of ours can be negative).
 */
export function parseGoDuration(text: string): number | undefined {
  if (text === "0" || text === "+0") return 0;
  const body = text.startsWith("+") ? text.slice(1) : text;
  const re = /(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)/y;
  let total = 0;
  let at = 0;
  for (let m = re.exec(body); m; m = re.exec(body)) {
    total += Number(m[1]) * DURATION_UNITS_MS[m[2]!]!;
    at = re.lastIndex;
  }
  return at > 0 && at === body.length ? total : undefined;
}

export interface WaitWindow {
  minMs: number;
  maxMs: number;
}

/**
 * A quiescence window, as consul-template writes it: "min:max" in Go durations, min > 0, max >= min; a
 * lone "min" means max = 4 × min (consul-template's rule). Undefined when the text is not one.
 */
export function parseWait(text: string): WaitWindow | undefined {
  const parts = text.trim().split(":");
  if (parts.length > 2) return undefined;
  const minMs = parseGoDuration(parts[0]!.trim());
  const maxMs = parts.length === 2 ? parseGoDuration(parts[1]!.trim()) : minMs === undefined ? undefined : 4 * minMs;
  if (minMs === undefined || maxMs === undefined || minMs <= 0 || maxMs < minMs) return undefined;
  return { minMs, maxMs };
}

/** Go's strconv.ParseBool, exactly: "yes" and "on" are not booleans to Go. */
const GO_BOOLEANS: ReadonlyMap<string, boolean> = new Map([
  ...["1", "t", "T", "TRUE", "true", "True"].map((s) => [s, true] as const),
  ...["0", "f", "F", "FALSE", "false", "False"].map((s) => [s, false] as const),
]);

/** strconv.ParseInt(s, 0, 64), limited to what a JavaScript number holds exactly. */
export function parseGoInt(text: string): number | undefined {
  const parts = goIntDigits(text);
  if (!parts) return undefined;
  const { sign, digits } = parts;
  let value: number;
  if (/^0[xX]/.test(digits)) value = parseInt(digits.slice(2), 16);
  else if (/^0[oO]/.test(digits)) value = parseInt(digits.slice(2), 8);
  else if (/^0[bB]/.test(digits)) value = parseInt(digits.slice(2), 2);
  else if (digits.length > 1 && digits.startsWith("0")) value = parseInt(digits.slice(1), 8);
  else value = parseInt(digits, 10);
  if (!Number.isSafeInteger(value)) return undefined;
  return sign === "-" ? -value || 0 : value;
}

/** The sign and the digits (base prefix kept, underscores dropped) of text in Go's integer syntax. */
function goIntDigits(text: string): { sign: string; digits: string } | undefined {
  const m = /^([+-]?)(0[xX][0-9a-fA-F_]+|0[oO][0-7_]+|0[bB][01_]+|0[0-7_]*|[1-9][0-9_]*)$/.exec(text);
  // Underscores only between digits or after a base prefix (Go's underscoreOK); the pattern already
  // keeps them from leading.
  if (!m || /__|_$/.test(m[2]!)) return undefined;
  return { sign: m[1]!, digits: m[2]!.replaceAll("_", "") };
}
