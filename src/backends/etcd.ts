// The etcd backend (the v3 API, for both -backend etcd and -backend etcdv3): node, TLS and auth
// options; reads as one consistent snapshot, in transactions of at most 128 operations pinned to one
// revision; watches shared per prefix. All calls and watch streams go over one gRPC connection, which
// etcd3 multiplexes (etcd3 makes the -basic-auth token exchange on a channel of its own); with several
// nodes the client talks to one at a time and moves on when it fails.
import { readFileSync } from "node:fs";
import { isIP } from "node:net";
import { checkServerIdentity, rootCertificates, type PeerCertificate } from "node:tls";
import { Channel, credentials as grpcCredentials, type ChannelOptions } from "@grpc/grpc-js";
import { Etcd3, EtcdPermissionDeniedError, GRPCDeadlineExceededError, GRPCUnavailableError, type IOptions, type IWatchResponse, type Watcher } from "etcd3";
import { decodeBytes, encodeText } from "../bytes.ts";
import { ConfdError, errnoText } from "../errors.ts";
import { log } from "../log.ts";
import type { Config } from "../options.ts";
import { keyFilter, normalizeKey, subtrees } from "../keys.ts";
import type { StoreClient } from "../store.ts";

/** The bound on every call, and how long a watch may stay disconnected before its callers hear of it. */
const DEADLINE_MS = 5_000;
/** etcd's default --max-txn-ops: a larger transaction is refused. */
const MAX_TXN_OPS = 128;
/** confd's default node; without a scheme so that TLS options make it https. */
const DEFAULT_NODE = "127.0.0.1:2379";

type Policy = NonNullable<NonNullable<IOptions["faultHandling"]>["global"]>;
type Backoff = NonNullable<NonNullable<IOptions["faultHandling"]>["watchBackoff"]>;

export async function connect(config: Config): Promise<StoreClient> {
  const tls = readTls(config);
  const endpoints = nodeList(config).map((node) => endpointOf(node, tls !== undefined));
  if (new Set(endpoints.map((e) => e.startsWith("https:"))).size > 1) {
    throw new ConfdError(`etcd nodes mix http and https: ${endpoints.join(", ")}`, { flag: "-node" });
  }
  if (config.basicAuth && !config.username) throw new ConfdError("-basic-auth needs a -username for etcd", { flag: "-username" });
  const options: Omit<IOptions, "hosts"> = {
    // Only etcd3's -basic-auth token exchange uses these: tlsChannels() builds the connection's channels.
    credentials: tls ? { rootCertificate: tls.ca ?? systemRoots(), privateKey: tls.key, certChain: tls.cert } : undefined,
    auth: config.basicAuth ? { username: config.username, password: config.password } : undefined,
    defaultCallOptions: (call) => (call.isStream ? {} : { deadline: Date.now() + DEADLINE_MS }),
    faultHandling: { host: () => tryOnce, global: tryOnce, watchBackoff: backoff(100) },
  };
  const secure = endpoints[0]!.startsWith("https:");
  return new EtcdClient(endpoints, options, secure ? { ...tls, insecure: config.clientInsecure } : undefined);
}

const GRPC_OPTIONS: ChannelOptions = {
  // A watch can be silent for hours: pings find a dead connection (etcd accepts one every 5 s).
  "grpc.keepalive_time_ms": 10_000,
  "grpc.keepalive_timeout_ms": 5_000,
  // grpc-js waits up to 2 minutes between reconnection attempts; a restarted etcd should be used in seconds.
  "grpc.initial_reconnect_backoff_ms": 250,
  "grpc.max_reconnect_backoff_ms": 2_000,
  // A large subtree can exceed grpc-js's 4 MB default; etcd bounds its responses itself.
  "grpc.max_receive_message_length": -1,
};

/**
 * etcd3 retries a failed call three times and then refuses calls to the node for 5 s. The caller
 * already retries with backoff, and a restarted server must be used at once: each call is tried once.
 * (cockatiel's policy type carries a type-only `_altReturn` member, hence the cast.)
 */
const tryOnce: Policy = {
  _altReturn: undefined as never,
  onSuccess: () => ({ dispose() {} }),
  onFailure: () => ({ dispose() {} }),
  execute: async (fn, signal = new AbortController().signal) => fn({ signal }),
};

/** How soon etcd3 re-opens a dropped watch stream: quickly at first, then every 2 s at most. */
function backoff(ms: number): Backoff {
  return { duration: ms, next: () => backoff(Math.min(ms * 2, 2_000)) };
}

/** -node values, else $ETCDCTL_PEERS or $ETCDCTL_ENDPOINTS (comma-separated) as confd reads them. */
function nodeList(config: Config): string[] {
  if (config.nodes.length > 0) return config.nodes;
  const fromEnv = (process.env.ETCDCTL_PEERS || process.env.ETCDCTL_ENDPOINTS || "").split(",").map((s) => s.trim()).filter(Boolean);
  return fromEnv.length > 0 ? fromEnv : [DEFAULT_NODE];
}

const NODE = /^(?:(https?):\/\/)?(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(\d{1,5})\/?$/;

/** "host:port" or "http(s)://host:port" as "scheme://host:port"; TLS files make a bare node https. */
function endpointOf(node: string, tls: boolean): string {
  const m = NODE.exec(node.trim());
  const port = Number(m?.[3]);
  if (!m || port < 1 || port > 65535) {
    throw new ConfdError(`invalid etcd node "${node}": expected host:port or http(s)://host:port`, { flag: "-node" });
  }
  const scheme = m[1] ?? (tls ? "https" : "http");
  if (scheme === "http" && tls) throw new ConfdError(`etcd node "${node}" is http:// but TLS files were given`, { flag: "-node" });
  return `${scheme}://${m[2]}:${port}`;
}

interface TlsFiles {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
}

function readTls(config: Config): TlsFiles | undefined {
  if (!config.clientCaKeys && !config.clientCert && !config.clientKey) return undefined;
  if (!config.clientCert !== !config.clientKey) {
    throw new ConfdError("-client-cert and -client-key must be given together", { flag: config.clientCert ? "-client-key" : "-client-cert" });
  }
  const read = (file: string, flag: string) => {
    if (!file) return undefined;
    try {
      return readFileSync(file);
    } catch (err) {
      throw new ConfdError(`cannot read ${flag.slice(1)} file: ${errnoText(err)}`, { file, flag });
    }
  };
  return { ca: read(config.clientCaKeys, "-client-ca-keys"), cert: read(config.clientCert, "-client-cert"), key: read(config.clientKey, "-client-key") };
}

/** A client certificate without -client-ca-keys: the server is checked against the system's roots. */
function systemRoots(): Buffer {
  return Buffer.from(rootCertificates.join("\n"));
}

interface Tls extends TlsFiles {
  insecure: boolean;
}

/** The TLS server name sent to a node addressed by IP, whose certificate is checked against the IP. */
const IP_SERVER_NAME = "ip-address.invalid";

/**
 * The channels to an https node, built here rather than by etcd3, which cannot skip verification
 * (-client-insecure) and leaves grpc-js to send the node's host as the TLS server name, which Bun
 * refuses for an IP address. The channels of etcd3's service clients (KV, Watch) share one
 * credentials object and equal options, so grpc-js gives them one connection, as with etcd3's own.
 */
function tlsChannels(endpoint: string, tls: Tls): ChannelOptions {
  const host = new URL(endpoint).hostname.replace(/^\[(.*)\]$/, "$1");
  const ip = isIP(host) !== 0;
  const verify = tls.insecure
    ? { rejectUnauthorized: false, checkServerIdentity: () => undefined }
    : ip
      ? { checkServerIdentity: (_name: string, cert: PeerCertificate) => checkServerIdentity(host, cert) }
      : {};
  const credentials = grpcCredentials.createSsl(tls.ca ?? null, tls.key ?? null, tls.cert ?? null, verify);
  const options: ChannelOptions = ip ? { ...GRPC_OPTIONS, "grpc.ssl_target_name_override": IP_SERVER_NAME } : GRPC_OPTIONS;
  const factory = (target: string) => new Channel(target, credentials, { ...options });
  return { ...options, channelFactoryOverride: factory };
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Errors that mean "try another node, or again later", as opposed to a refusal by a working server. */
function isUnreachable(err: unknown): boolean {
  return err instanceof GRPCUnavailableError || err instanceof GRPCDeadlineExceededError;
}

/**
 * The keys "/app" covers on a "/" boundary lie in ["/app", "/app0") ("0" follows "/"), along with a
 * few such as "/app-x" that keyFilter drops; "/" covers every key.
 */
function span(key: string): { start: Buffer; end: Buffer } {
  if (key === "/") return { start: Buffer.from([0]), end: Buffer.from([0]) };
  return { start: encodeText(key), end: encodeText(key + "0") };
}

class EtcdClient implements StoreClient {
  /** The client for the node in use; replaced, with its connection, when that node fails. */
  etcd: Etcd3;
  private node = 0;
  private closed = false;
  private readonly watches = new Map<string, PrefixWatch>();

  constructor(
    private readonly endpoints: readonly string[],
    private readonly options: Omit<IOptions, "hosts">,
    private readonly tls: Tls | undefined,
  ) {
    this.etcd = this.open();
  }

  get endpoint(): string {
    return this.endpoints[this.node]!;
  }

  private open(): Etcd3 {
    const endpoint = this.endpoint;
    return new Etcd3({ ...this.options, hosts: endpoint, grpcOptions: this.tls ? tlsChannels(endpoint, this.tls) : GRPC_OPTIONS });
  }

  /** Runs one logical operation against the current node, turning failures into ConfdErrors. */
  async call<T>(operation: (etcd: Etcd3) => Promise<T>): Promise<T> {
    if (this.closed) throw new ConfdError("the etcd client is closed");
    const etcd = this.etcd;
    const endpoint = this.endpoint;
    try {
      return await operation(etcd);
    } catch (err) {
      if (!isUnreachable(err)) throw new ConfdError(`etcd at ${endpoint}: ${describe(err)}`);
      this.failover(etcd);
      throw unreachable(endpoint, describe(err));
    }
  }

  async getValues(keys: readonly string[]): Promise<Map<string, string>> {
    const roots = subtrees(keys);
    const wanted = keyFilter(keys);
    const values = new Map<string, string>();
    if (roots.length === 0) return values;
    await this.call(async (etcd) => {
      // The first batch fixes the revision that the others read at: together, one snapshot.
      let revision: string | undefined;
      for (let i = 0; i < roots.length; i += MAX_TXN_OPS) {
        const success = roots.slice(i, i + MAX_TXN_OPS).map((key) => {
          const { start, end } = span(key);
          return { request_range: { key: start, range_end: end, ...(revision ? { revision } : {}) } };
        });
        const res = await etcd.kv.txn({ success });
        revision ??= res.header.revision;
        for (const op of res.responses) {
          for (const kv of op.response_range.kvs) {
            // Bytes as they are (bytes.ts): a value that is not UTF-8 is copied, not replaced by U+FFFD.
            const key = decodeBytes(kv.key);
            if (wanted(key)) values.set(key, decodeBytes(kv.value));
          }
        }
      }
    });
    return values;
  }

  /** The store's current revision. */
  revision(): Promise<number> {
    return this.call(async (etcd) => Number((await etcd.kv.range({ key: Buffer.from("/"), count_only: true })).header.revision));
  }

  async watchPrefix(prefix: string, waitIndex: number, signal: AbortSignal): Promise<number> {
    signal.throwIfAborted();
    if (this.closed) throw new ConfdError("the etcd client is closed");
    if (waitIndex === 0) return this.revision();
    const key = normalizeKey(prefix);
    let watch = this.watches.get(key);
    if (!watch) {
      watch = new PrefixWatch(this, key, waitIndex);
      this.watches.set(key, watch);
    }
    return watch.wait(waitIndex, signal);
  }

  /** Forgets a watch nobody waits on any more, or that cannot go on; its etcd watch is cancelled. */
  release(watch: PrefixWatch): void {
    if (this.watches.get(watch.prefix) === watch) this.watches.delete(watch.prefix);
    void watch.dispose();
  }

  /** After `failed` could not be reached: the next node, if there is one; watches follow. */
  failover(failed: Etcd3): void {
    if (this.closed || failed !== this.etcd || this.endpoints.length < 2) return;
    this.node = (this.node + 1) % this.endpoints.length;
    this.etcd = this.open();
    log.debug(`etcd: switching to ${this.endpoint}`);
    for (const watch of this.watches.values()) watch.move();
    failed.close();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const cancelled = [...this.watches.values()].map((w) => w.dispose(new ConfdError("the etcd client was closed")));
    this.watches.clear();
    // A cancel needs an answer from etcd, which may be gone: wait for it, but not forever.
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([Promise.all(cancelled), new Promise((r) => (timer = setTimeout(r, DEADLINE_MS)))]);
    clearTimeout(timer);
    this.etcd.close();
  }
}

function unreachable(endpoint: string, reason: string): ConfdError {
  return new ConfdError(`cannot reach the etcd store at ${endpoint}: ${reason}`);
}

interface Waiter {
  after: number;
  timer?: ReturnType<typeof setTimeout>;
  resolve(revision: number): void;
  reject(err: unknown): void;
}

/**
 * One etcd watch on a prefix, shared by every caller waiting on it and kept between their calls, so
 * a change made while nobody waits is still known when the next call comes. It starts at the first
 * caller's index + 1, so etcd replays what happened since. It ends when the last waiter gives up
 * (abort), when it cannot go on, or when the client closes.
 */
class PrefixWatch {
  /** Every change under the prefix from this revision on is accounted for in `changed`. */
  private from: number;
  /** The latest revision callers must hear of: a change under the prefix, or a point up to which changes may have been missed. */
  private changed = 0;
  /** The latest store revision up to which etcd has sent this watch's events. */
  private seen: number;
  private connected = false;
  private lastError = "no answer";
  private disposed = false;
  private watcher: Watcher | undefined;
  /** The client the etcd watch is on: if it cannot be reached, the client moves to another node. */
  private etcd: Etcd3;
  private readonly waiters = new Set<Waiter>();
  private readonly matches: (key: string) => boolean;

  constructor(
    private readonly client: EtcdClient,
    readonly prefix: string,
    after: number,
  ) {
    this.matches = keyFilter([prefix]);
    this.from = after + 1;
    this.seen = after;
    this.etcd = client.etcd;
    this.attach(this.from, false);
  }

  /** What a caller waiting since `after` learns now, if anything. */
  private answer(after: number): number | undefined {
    if (this.changed > after) return this.changed;
    // Older than this watch: whatever happened in between is unknown, so it may have changed.
    if (after < this.from - 1) return this.from - 1;
    return undefined;
  }

  wait(after: number, signal: AbortSignal): Promise<number> {
    const ready = this.answer(after);
    if (ready !== undefined) return Promise.resolve(ready);
    return new Promise((resolve, reject) => {
      const finish = (settle: () => void) => {
        this.waiters.delete(waiter);
        clearTimeout(waiter.timer);
        signal.removeEventListener("abort", onAbort);
        settle();
      };
      const waiter: Waiter = {
        after,
        resolve: (revision) => finish(() => resolve(revision)),
        reject: (err) => finish(() => reject(err)),
      };
      const onAbort = () => {
        waiter.reject(signal.reason);
        if (this.waiters.size === 0) this.client.release(this);
      };
      signal.addEventListener("abort", onAbort, { once: true });
      this.waiters.add(waiter);
      if (!this.connected) this.arm(waiter);
    });
  }

  /** A waiter on a disconnected watch fails after the deadline, unless the watch reconnects first. */
  private arm(waiter: Waiter): void {
    waiter.timer ??= setTimeout(() => {
      waiter.reject(unreachable(this.client.endpoint, this.lastError));
      this.client.failover(this.etcd);
    }, DEADLINE_MS);
  }

  private mark(revision: number): void {
    this.changed = Math.max(this.changed, revision);
    for (const waiter of this.waiters) {
      const ready = this.answer(waiter.after);
      if (ready !== undefined) waiter.resolve(ready);
    }
  }

  /**
   * Opens the etcd watch from `start`. `resumed`: events before it may have been missed (the watch
   * moved to another node), so the first connection counts as a possible change.
   */
  private attach(start: number, resumed: boolean): void {
    const etcd = this.client.etcd;
    const { start: key, end } = span(this.prefix);
    const watcher = etcd.watch().inRange({ start: key, end }).startRevision(String(start)).watcher();
    this.etcd = etcd;
    this.watcher = watcher;
    this.connected = false;
    log.debug(`etcd: watching ${this.prefix} from revision ${start}`);
    // A replaced or cancelled watcher can still report (its cancel waits for etcd): only the current one counts.
    const current = () => this.watcher === watcher;
    watcher.on("connected", (res: IWatchResponse) => {
      if (!current()) return;
      // etcd3 resumes a dropped watch by itself, but from a revision it may have moved past before the
      // events up to it arrived: after a gap, a newer store counts as a possible change.
      const revision = Number(res.header.revision);
      if (resumed && revision > this.seen) {
        this.seen = revision;
        this.mark(revision);
      }
      this.connected = true;
      for (const waiter of this.waiters) {
        clearTimeout(waiter.timer);
        waiter.timer = undefined;
      }
    });
    watcher.on("disconnected", (err: Error) => {
      if (!current()) return;
      resumed = true;
      this.connected = false;
      this.lastError = describe(err);
      for (const waiter of this.waiters) this.arm(waiter);
    });
    watcher.on("data", (res: IWatchResponse) => {
      if (!current()) return;
      let latest = 0;
      for (const event of res.events) if (this.matches(decodeBytes(event.kv.key))) latest = Math.max(latest, Number(event.kv.mod_revision));
      this.seen = Math.max(this.seen, Number(res.header.revision));
      if (latest > 0) this.mark(latest);
    });
    watcher.on("error", (err: Error) => {
      if (current()) void this.cancelled(err);
    });
  }

  /**
   * etcd cancelled the watch. Denied: the callers hear of it. Otherwise the history it needed was
   * compacted away: what changed is unknown, so everyone waiting re-reads, and the watch goes on
   * from now.
   */
  private async cancelled(err: Error): Promise<void> {
    this.watcher = undefined;
    this.connected = false;
    if (err instanceof EtcdPermissionDeniedError) {
      this.fail(new ConfdError(`etcd refused to watch ${this.prefix}: ${describe(err)}`));
      return;
    }
    let revision: number;
    try {
      revision = await this.client.revision();
    } catch (e) {
      this.fail(e);
      return;
    }
    // Meanwhile the watch may have ended, or followed the client to another node.
    if (this.disposed || this.watcher) return;
    log.debug(`etcd: the history of ${this.prefix} was compacted; going on from revision ${revision}`);
    this.from = revision + 1;
    this.seen = revision;
    this.mark(revision);
    this.attach(revision + 1, false);
  }

  private fail(err: unknown): void {
    for (const waiter of this.waiters) waiter.reject(err);
    this.client.release(this);
  }

  /** The client moved to another node: the etcd watch follows, from where this one got to. */
  move(): void {
    void this.watcher?.cancel();
    this.attach(this.seen + 1, true);
  }

  /** Cancels the etcd watch; pending callers get `reason`. Resolves once etcd confirmed (or the stream is gone). */
  async dispose(reason?: Error): Promise<void> {
    this.disposed = true;
    if (reason) for (const waiter of this.waiters) waiter.reject(reason);
    const watcher = this.watcher;
    this.watcher = undefined;
    await watcher?.cancel();
  }
}
