// The vault backend: confd's reads of Vault's secrets, and a watch made of polls, since Vault has none.
// It owns confd's key mapping: a key is a secret's path ("/database/host" is the secret "host" of the
// mount "database"); the key and everything listed below it (LIST, recursively) is read, and a secret
// whose only field is a string "value" is that key's value, while any other secret gives the key its
// fields as JSON (written as confd's Go client writes it) and one key per string field below it
// ("/upstream/app1"), objects flattened further. KV version 2 is found per mount
// (sys/internal/ui/mounts, else sys/mounts) and read through its data/ and metadata/ paths, so that a
// template names the secret without "data/". Under -watch each watched prefix is read every -interval
// (the watch core compares the readings), and sooner when a secret read under it has a lease that ends
// first. The transport is in vault-http.ts, logins and the token's renewal in vault-auth.ts.
import { posix } from "node:path";
import { ConfdError } from "../errors.ts";
import { keyFilter, subtrees } from "../keys.ts";
import { log } from "../log.ts";
import type { Config } from "../options.ts";
import { Slots } from "../slots.ts";
import type { NodeSource } from "../srv.ts";
import type { StoreClient } from "../store.ts";
import { every, ListingFeed, SharedWatches, type Listing, type Pace } from "../watch-core.ts";
import { credentials, KUBERNETES_TOKEN_FILE, VaultSession } from "./vault-auth.ts";
import { isObject, JsonNumber, numberAt, objectAt, statusText, VaultHttp, type Json, type JsonObject, type VaultAnswer, type VaultRequest } from "./vault-http.ts";

/** Requests in flight at once, however large the tree being listed. */
/** Folders below a key that are listed, at most: deeper is a server that nests without end. */
const MAX_LIST_DEPTH = 100;
const MAX_REQUESTS = 16;
/** How long close() waits for listings in flight. */
const CLOSE_DEADLINE_MS = 5_000;

export interface VaultConnectOptions {
  /** Where VAULT_TOKEN and VAULT_NAMESPACE are read (a parameter so that tests need not touch process.env). */
  env?: Readonly<Record<string, string | undefined>>;
  /** The service account token -auth-type kubernetes sends (tests point it elsewhere). */
  kubernetesTokenFile?: string;
  /** Where the nodes come from (SRV records); -node by default. */
  nodes?: NodeSource;
}

/** Logs in (a bad -auth-type or a refused login stops confd here, naming the flag) and returns the client. */
export async function connect(config: Config, options: VaultConnectOptions = {}): Promise<StoreClient> {
  const env = options.env ?? process.env;
  // Polled every -interval under -watch: 0 would poll without pause.
  if (config.watch && !(config.interval > 0)) {
    throw new ConfdError(`with -watch vault is read every -interval, which must be a positive number of seconds, got ${config.interval}`, { flag: "-interval" });
  }
  const login = credentials(config, env, options.kubernetesTokenFile ?? KUBERNETES_TOKEN_FILE);
  const http = VaultHttp.fromConfig(config, env, options.nodes);
  log.info(`Vault authentication backend set to ${login.type}`);
  const session = new VaultSession(http, login);
  await session.login();
  if (config.watch) {
    log.info(`Vault has no watch: with -watch confd reads it every ${config.interval}s (-interval), and sooner where a secret's lease ends first`);
  }
  return new VaultClient(http, session, config.interval, !config.watch && !config.onetime);
}

/** A secrets engine mount: "secret/", and whether it is KV version 2. */
interface Mount {
  path: string;
  version: 1 | 2;
}

/**
 * One read of the store (a getValues call, or one listing of a watched prefix): its signal, the
 * lookup-self answers of the session's 403 checks, and the shortest secret lease it saw.
 */
interface Sweep {
  signal: AbortSignal | undefined;
  checked: Map<string, Promise<boolean>>;
  shortestLease: number;
  /** Secrets with a lease, by key: the interval-mode warning names them. */
  leases: Map<string, number>;
}

class VaultClient implements StoreClient {
  private readonly mounts: Mount[] = [];
  /** The mount table (sys/mounts), read once when sys/internal/ui/mounts is not there. */
  private mountTable: Promise<void> | undefined;
  private readonly slots = new Slots(MAX_REQUESTS);
  /** Per watched prefix: when the shortest lease of the secrets last read under it ends (performance.now() time). */
  private readonly leaseEnds = new Map<string, number>();
  /** Keys already warned about (a type left out, a lease shorter than -interval): once each, not once per read. */
  private readonly warned = new Set<string>();
  private closed = false;
  private readonly watches = new SharedWatches({
    store: "vault",
    source: {
      open: (prefix, _from, events) => new ListingFeed(prefix, { list: (p, _index, signal) => this.listing(p, signal), pace: () => this.pace(prefix) }, events),
    },
    deadlineMs: CLOSE_DEADLINE_MS,
  });

  constructor(
    private readonly http: VaultHttp,
    private readonly session: VaultSession,
    private readonly intervalSeconds: number,
    /** Interval mode (neither -watch nor -onetime): a lease shorter than -interval is worth a warning. */
    private readonly warnShortLeases: boolean,
  ) {}

  async getValues(keys: readonly string[]): Promise<Map<string, string>> {
    if (this.closed) throw closedError();
    const sweep = newSweep(undefined);
    const trees = await Promise.all(subtrees(keys).map((key) => this.readTree(key, sweep)));
    const wanted = keyFilter(keys);
    const values = new Map<string, string>();
    for (const tree of trees) for (const [key, value] of tree) if (wanted(key)) values.set(key, value);
    if (this.warnShortLeases) {
      for (const [key, seconds] of sweep.leases) {
        if (seconds < this.intervalSeconds) {
          this.warnOnce(`lease ${key}`, `vault: the lease of ${key} (${seconds}s) is shorter than -interval ${this.intervalSeconds}s; with -watch confd reads it again when its lease ends`);
        }
      }
    }
    return values;
  }

  watchPrefix(prefix: string, waitIndex: number, signal: AbortSignal): Promise<number> {
    return this.watches.wait(prefix, waitIndex, signal);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.session.close();
    await this.watches.close();
  }

  /** One poll of a watched prefix; it also sets when the next one is due, if a lease ends before -interval. */
  private async listing(prefix: string, signal: AbortSignal): Promise<Listing> {
    const sweep = newSweep(signal);
    const values = await this.readTree(prefix, sweep);
    if (sweep.shortestLease < Infinity) this.leaseEnds.set(prefix, performance.now() + sweep.shortestLease * 1000);
    else this.leaseEnds.delete(prefix);
    return { values };
  }

  /** Every -interval, or at the end of the shortest lease read in the last poll when that comes first. */
  private pace(prefix: string): Pace {
    const regular = every(this.intervalSeconds * 1000);
    return () => {
      const wait = regular();
      const end = this.leaseEnds.get(prefix);
      return end === undefined ? wait : Math.min(wait, Math.max(0, end - performance.now()));
    };
  }

  /** The values of `key` and of every secret listed below it, as confd maps them. */
  private async readTree(key: string, sweep: Sweep): Promise<Map<string, string>> {
    const root = key === "/" ? "/" : key.replace(/\/+$/, "");
    let mount = await this.mountOf(vaultPath(root), sweep);
    if (mount?.version === 2 && /^(data|metadata)\//.test(`${vaultPath(root)}/`.slice(mount.path.length))) {
      // A KV v2 API path, as confd users had to write (it reads the version's data and metadata as
      // fields): read as confd reads it, so that their templates keep working.
      this.warnOnce(`api ${key}`, `vault: ${key} is a KV v2 API path, read as confd reads it; name the secret without data/ to get its own fields as keys`);
      mount = undefined;
    }
    const branches = new Set<string>();
    await this.walk(root, mount, branches, sweep, root);
    const secrets = await Promise.all([...branches].sort().map((branch) => this.read(branch, mount, sweep)));
    const values = new Map<string, string>();
    for (const secret of secrets) if (secret) this.add(values, secret.key, secret.data);
    return values;
  }

  /** confd's walkTree: the key and, recursively, what LIST gives below it. A LIST refused is not an error (a read-only policy). */
  private async walk(key: string, mount: Mount | undefined, branches: Set<string>, sweep: Sweep, root: string, depth = 0): Promise<void> {
    if (branches.has(key)) return;
    // A server that lists a folder inside every folder would be walked for ever.
    if (depth > MAX_LIST_DEPTH) throw new ConfdError(`vault lists folders more than ${MAX_LIST_DEPTH} levels deep below this key; not walking further`, { key: root });
    branches.add(key);
    const answer = await this.send({ method: "GET", path: apiPath(vaultPath(key), mount, "metadata"), list: true }, sweep);
    if (answer.status !== 200) {
      if (answer.status !== 404) log.debug(`vault: cannot list ${key} (${statusText(answer)}); reading it alone`);
      return;
    }
    const listed = objectAt(answer.body, "data")?.keys;
    if (!Array.isArray(listed)) {
      if (listed !== undefined) this.warnOnce(`list ${key}`, `vault: the key list of ${key} is not a list (${goTypeName(listed)}); reading it alone`);
      return;
    }
    const children: string[] = [];
    for (const name of listed) {
      if (typeof name === "string") children.push(goJoin(key, name));
      else this.warnOnce(`list ${key}`, `vault: the key list of ${key} holds a ${goTypeName(name)}, which is left out`);
    }
    await Promise.all(children.map((child) => this.walk(child, mount, branches, sweep, root, depth + 1)));
  }

  /** The secret at `key`: its fields (KV v2: those of its current version), or undefined when there is none. */
  private async read(key: string, mount: Mount | undefined, sweep: Sweep): Promise<{ key: string; data: JsonObject } | undefined> {
    // A KV v2 mount's root is no secret's path (and data/ alone is no path to read).
    if (mount?.version === 2 && `${vaultPath(key)}/` === mount.path) return undefined;
    const answer = await this.send({ method: "GET", path: apiPath(vaultPath(key), mount, "data") }, sweep);
    // Also a KV v2 secret whose current version is deleted.
    if (answer.status === 404) return undefined;
    if (answer.status !== 200) {
      const verb = answer.status === 403 ? "denied reading" : "refused to read";
      throw new ConfdError(`vault ${verb} ${key} (${statusText(answer)})`, { key });
    }
    const lease = numberAt(answer.body, "lease_duration");
    if (lease > 0) {
      sweep.shortestLease = Math.min(sweep.shortestLease, lease);
      sweep.leases.set(key, lease);
    }
    const data = mount?.version === 2 ? objectAt(objectAt(answer.body, "data"), "data") : objectAt(answer.body, "data");
    return data ? { key, data } : undefined;
  }

  /** confd's mapping of one secret: a lone string "value" field is the key's value; else JSON, and the fields below the key. */
  private add(values: Map<string, string>, key: string, data: JsonObject): void {
    const fields = Object.keys(data);
    const value = data.value;
    if (fields.length === 1 && typeof value === "string") {
      values.set(key, value);
      return;
    }
    values.set(key, goJson(data));
    this.flatten(values, key, data);
  }

  private flatten(values: Map<string, string>, key: string, value: Json): void {
    if (typeof value === "string") values.set(key, value);
    else if (isObject(value)) for (const [field, inner] of Object.entries(value)) this.flatten(values, goJoin(key, field), inner);
    else this.warnOnce(`type ${key}`, `vault: the type of ${key} is not supported (${goTypeName(value)}): only strings and objects become keys`);
  }

  /**
   * The mount `path` is in, from the mounts seen so far or Vault's preflight endpoint (what the vault
   * CLI asks before a kv command). Undefined when no mount shows there: the path is read as it is, as
   * confd reads every path.
   */
  private async mountOf(path: string, sweep: Sweep): Promise<Mount | undefined> {
    if (path === "") return undefined;
    const known = this.mountFor(path);
    if (known) return known;
    const answer = await this.send({ method: "GET", path: `sys/internal/ui/mounts/${path}` }, sweep);
    if (answer.status === 200) {
      const data = objectAt(answer.body, "data");
      const at = data?.path;
      if (typeof at !== "string" || at === "") return undefined;
      return this.remember(at, data);
    }
    // 403: no mount there that the token may see. Anything else: the endpoint is missing (a Vault
    // before 0.10, a proxy that filters sys/internal), and the mount table may tell.
    if (answer.status === 403) return undefined;
    this.mountTable ??= this.readMountTable(sweep).catch((err: unknown) => {
      this.mountTable = undefined;
      throw err;
    });
    await this.mountTable;
    return this.mountFor(path);
  }

  private async readMountTable(sweep: Sweep): Promise<void> {
    const answer = await this.send({ method: "GET", path: "sys/mounts" }, { ...sweep, signal: undefined });
    const table = objectAt(answer.body, "data") ?? answer.body;
    if (answer.status !== 200 || !table) {
      log.debug(`vault: cannot read the mount table (${statusText(answer)}); paths are read without a KV version`);
      return;
    }
    for (const [path, entry] of Object.entries(table)) if (path.endsWith("/") && isObject(entry) && typeof entry.type === "string") this.remember(path, entry);
  }

  private remember(path: string, entry: JsonObject | undefined): Mount {
    const mount: Mount = { path: path.endsWith("/") ? path : `${path}/`, version: objectAt(entry, "options")?.version === "2" ? 2 : 1 };
    if (!this.mounts.some((m) => m.path === mount.path)) {
      this.mounts.push(mount);
      log.debug(`vault: ${mount.path} is a ${mount.version === 2 ? "KV version 2" : "version 1"} mount`);
    }
    return mount;
  }

  /** The longest known mount `path` is in. */
  private mountFor(path: string): Mount | undefined {
    let best: Mount | undefined;
    for (const m of this.mounts) if (`${path}/`.startsWith(m.path) && (!best || m.path.length > best.path.length)) best = m;
    return best;
  }

  /** A request with the session's token; refused with 403, it goes once more if the session found the token stale and replaced it. */
  private async send(request: Omit<VaultRequest, "token" | "signal">, sweep: Sweep): Promise<VaultAnswer> {
    for (let attempt = 0; ; attempt++) {
      const token = this.session.token;
      const slot = await this.slots.acquire();
      let answer: VaultAnswer;
      try {
        answer = await this.http.call({ ...request, token, signal: sweep.signal });
      } finally {
        slot.release();
      }
      if (answer.status !== 403 || attempt > 0 || !(await this.session.refused(token, sweep.checked))) return answer;
    }
  }

  private warnOnce(what: string, message: string): void {
    if (this.warned.has(what)) return;
    this.warned.add(what);
    log.warning(message);
  }
}

function newSweep(signal: AbortSignal | undefined): Sweep {
  return { signal, checked: new Map(), shortestLease: Infinity, leases: new Map() };
}

/** "/database/host" → "database/host": Vault's path for a key. */
function vaultPath(key: string): string {
  return key.replace(/^\/+/, "");
}

/** The API path of a secret: as it is, or for KV v2 under the mount's data/ (reads) or metadata/ (lists). */
function apiPath(path: string, mount: Mount | undefined, kind: "data" | "metadata"): string {
  if (mount?.version !== 2) return path;
  return `${mount.path}${kind}/${`${path}/`.slice(mount.path.length).replace(/\/$/, "")}`;
}

/** Go's path.Join(key, "/", name), as confd builds keys: cleaned, without a trailing "/". */
function goJoin(key: string, name: string): string {
  const joined = posix.normalize(`${key}/${name}`);
  return joined.length > 1 ? joined.replace(/\/+$/, "") : joined;
}

/** Go's %T of a decoded JSON value, for the warning confd gives about it. */
function goTypeName(value: Json): string {
  if (value === null) return "<nil>";
  if (value instanceof JsonNumber) return "json.Number";
  if (Array.isArray(value)) return "[]interface {}";
  if (typeof value === "boolean") return "bool";
  return typeof value === "string" ? "string" : "map[string]interface {}";
}

/**
 * JSON as Go's json.Marshal writes it, byte for byte what confd puts in a secret's key: object keys
 * sorted, no spaces, numbers as Vault wrote them, and "<", ">", "&", U+2028 and U+2029 escaped.
 */
function goJson(value: Json): string {
  if (value === null) return "null";
  if (typeof value === "boolean") return value ? "true" : "false";
  if (typeof value === "string") return goString(value);
  if (value instanceof JsonNumber) return value.text;
  if (Array.isArray(value)) return `[${value.map(goJson).join(",")}]`;
  const keys = Object.keys(value).sort(byCodePoint);
  return `{${keys.map((k) => `${goString(k)}:${goJson(value[k]!)}`).join(",")}}`;
}

const GO_ESCAPES: Readonly<Record<string, string>> = { '"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t" };

/** A string as Go 1.19's encoding/json writes it (what confd master is built with). */
function goString(s: string): string {
  let out = '"';
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    const escape = GO_ESCAPES[ch];
    if (escape) out += escape;
    else if (c < 0x20 || ch === "<" || ch === ">" || ch === "&" || c === 0x2028 || c === 0x2029) out += `\\u${c.toString(16).padStart(4, "0")}`;
    // A lone surrogate (Go decodes a bad \u escape to U+FFFD).
    else if (c >= 0xd800 && c <= 0xdfff) out += "\ufffd";
    else out += ch;
  }
  return `${out}"`;
}

/** Go sorts map keys by their UTF-8 bytes, which is code point order (UTF-16 order differs above U+FFFF). */
function byCodePoint(a: string, b: string): number {
  const x = [...a];
  const y = [...b];
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const d = x[i]!.codePointAt(0)! - y[i]!.codePointAt(0)!;
    if (d !== 0) return d;
  }
  return x.length - y.length;
}

function closedError(): ConfdError {
  return new ConfdError("the vault client is closed");
}
