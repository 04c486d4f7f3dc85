// The etcd backend (the v3 API, for both -backend etcd and -backend etcdv3): node, TLS and auth
// options; reads as one consistent snapshot, in transactions of at most 128 operations pinned to one
// revision; a change feed per watched prefix (an etcd watch), shared through the watch core
// (../watch-core.ts). All calls and watch streams go over one gRPC connection, which etcd3
// multiplexes (etcd3 makes the -basic-auth token exchange on a channel of its own); with several
// nodes the client talks to one at a time and moves on when it fails; when the last one fails, the nodes
// are looked up again (SRV records, ../srv.ts) and a changed list is used from its first node.
import { readFileSync } from "node:fs";
import { isIP } from "node:net";
import { checkServerIdentity, rootCertificates, type PeerCertificate } from "node:tls";
import { Channel, credentials as grpcCredentials, type ChannelOptions } from "@grpc/grpc-js";
import { Etcd3, EtcdPermissionDeniedError, GRPCDeadlineExceededError, GRPCUnavailableError, type IOptions, type IWatchResponse, type Watcher } from "etcd3";
import { decodeBytes, encodeText } from "../bytes.ts";
import { ConfdError, errnoText } from "../errors.ts";
import { log } from "../log.ts";
import type { Config } from "../options.ts";
import { keyFilter, subtrees } from "../keys.ts";
import { fixedNodes, type NodeOptions, type NodeSource } from "../srv.ts";
import type { StoreClient } from "../store.ts";
import { SharedWatches, type Feed, type FeedEvents } from "../watch-core.ts";

/** The bound on every call, and how long a watch may stay disconnected before its callers hear of it. */
const DEADLINE_MS = 5_000;
/** etcd's default --max-txn-ops: a larger transaction is refused. */
const MAX_TXN_OPS = 128;
/** confd's default node; without a scheme so that TLS options make it https. */
const DEFAULT_NODE = "127.0.0.1:2379";

type Policy = NonNullable<NonNullable<IOptions["faultHandling"]>["global"]>;
type Backoff = NonNullable<NonNullable<IOptions["faultHandling"]>["watchBackoff"]>;

export async function connect(config: Config, { nodes = fixedNodes(config.nodes) }: NodeOptions = {}): Promise<StoreClient> {
  const tls = readTls(config);
  const endpointsOf = (list: readonly string[]): string[] => {
    const endpoints = nodeList(list).map((node) => endpointOf(node, tls !== undefined));
    if (new Set(endpoints.map((e) => e.startsWith("https:"))).size > 1) {
      throw new ConfdError(`etcd nodes mix http and https: ${endpoints.join(", ")}`, { flag: "-node" });
    }
    return endpoints;
  };
  const endpoints = endpointsOf(nodes.current());
  if (config.basicAuth && !config.username) throw new ConfdError("-basic-auth needs a -username for etcd", { flag: "-username" });
  const options: Omit<IOptions, "hosts"> = {
    // Only etcd3's -basic-auth token exchange uses these: tlsChannels() builds the connection's channels.
    credentials: tls ? { rootCertificate: tls.ca ?? systemRoots(), privateKey: tls.key, certChain: tls.cert } : undefined,
    auth: config.basicAuth ? { username: config.username, password: config.password } : undefined,
    defaultCallOptions: (call) => (call.isStream ? {} : { deadline: Date.now() + DEADLINE_MS }),
    faultHandling: { host: () => tryOnce, global: tryOnce, watchBackoff: backoff(100) },
  };
  const secure = endpoints[0]!.startsWith("https:");
  return new EtcdClient({ source: nodes, endpointsOf }, endpoints, options, secure ? { ...tls, insecure: config.clientInsecure } : undefined);
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

/** The nodes given (-node, SRV records), else $ETCDCTL_PEERS or $ETCDCTL_ENDPOINTS (comma-separated) as confd reads them. */
function nodeList(nodes: readonly string[]): readonly string[] {
  if (nodes.length > 0) return nodes;
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

/** Where the endpoints come from: the source's nodes, checked and spelt as endpoints. */
interface EtcdNodes {
  source: NodeSource;
  endpointsOf(nodes: readonly string[]): string[];
}

class EtcdClient implements StoreClient {
  /** The client for the node in use; replaced, with its connection, when that node fails. */
  etcd: Etcd3;
  private node = 0;
  private closed = false;
  /** The source's list the endpoints were made from. */
  private listed: readonly string[];
  /** A lookup of the nodes in progress, after the last one failed. */
  private refreshing: Promise<void> | undefined;
  /**
   * Watch indexes are revisions plus this. Nodes from a new lookup may be another cluster, whose
   * revisions say nothing of the last one's: their indexes are counted on from the highest handed out.
   */
  private base = 0;
  private highest = 0;
  /** The feeds open on the node in use, which follow the client to the next one. */
  readonly feeds = new Set<EtcdFeed>();
  private readonly watches = new SharedWatches({
    store: "etcd",
    source: {
      open: (prefix, from, events) => new EtcdFeed(this, prefix, from, events),
      currentIndex: async () => this.index(await this.revision()),
    },
    deadlineMs: DEADLINE_MS,
  });

  constructor(
    private readonly nodes: EtcdNodes,
    private endpoints: readonly string[],
    private readonly options: Omit<IOptions, "hosts">,
    private readonly tls: Tls | undefined,
  ) {
    this.listed = nodes.source.current();
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
      // The caller's next attempt goes to the nodes found by a lookup this failure started.
      await this.refreshing;
      throw unreachable(endpoint, describe(err));
    }
  }

  async getValues(keys: readonly string[]): Promise<Map<string, string>> {
    const roots = subtrees(keys);
    if (roots.length === 0) return new Map();
    // A read goes on to the next node at once, as confd's client does, so that -onetime with a dead
    // first node still renders; each node is tried once.
    for (let tried = 1; ; tried++) {
      try {
        return await this.call((etcd) => readAll(etcd, roots, keyFilter(keys)));
      } catch (err) {
        if (!(err instanceof UnreachableError) || tried >= this.endpoints.length) throw err;
      }
    }
  }

  /** The watch index, for callers, of a revision of the nodes in use. */
  index(revision: number): number {
    const index = revision + this.base;
    this.highest = Math.max(this.highest, index);
    return index;
  }

  /** The revision of the nodes in use a caller's index stands for (0 for one from before them). */
  revisionOf(index: number): number {
    return Math.max(0, index - this.base);
  }

  /** The store's current revision. */
  revision(): Promise<number> {
    return this.call(async (etcd) => Number((await etcd.kv.range({ key: Buffer.from("/"), count_only: true })).header.revision));
  }

  watchPrefix(prefix: string, waitIndex: number, signal: AbortSignal): Promise<number> {
    return this.watches.wait(prefix, waitIndex, signal);
  }

  /**
   * After `failed` could not be reached: the next node, if there is one; feeds follow. The last node
   * failing (the others failed before it) has the nodes looked up again.
   */
  failover(failed: Etcd3): void {
    if (this.closed || failed !== this.etcd) return;
    if (this.node === this.endpoints.length - 1) this.lookUpAgain();
    if (this.endpoints.length > 1) this.switchTo((this.node + 1) % this.endpoints.length, this.endpoints);
  }

  /** Moves the client, and the feeds, to endpoints[node]: another node of the list, or the first of a new one. */
  private switchTo(node: number, endpoints: readonly string[]): void {
    const failed = this.etcd;
    const newList = endpoints !== this.endpoints;
    this.endpoints = endpoints;
    this.node = node;
    this.etcd = this.open();
    log.debug(`etcd: switching to ${this.endpoint}`);
    for (const feed of this.feeds) {
      if (newList) feed.moveElsewhere();
      else feed.move();
    }
    failed.close();
  }

  /** Asks the source for the nodes again; a changed list is used from its first node. */
  private lookUpAgain(): void {
    this.refreshing ??= this.nodes.source.refresh().then((changed) => {
      this.refreshing = undefined;
      const listed = this.nodes.source.current();
      if (!changed || this.closed || listed === this.listed) return;
      let endpoints: string[];
      try {
        endpoints = this.nodes.endpointsOf(listed);
      } catch (err) {
        // Not thrown from here (nobody would catch it): the nodes in use stay.
        log.warning(`etcd: keeping ${this.endpoints.join(", ")}: ${describe(err)}`);
        return;
      }
      this.listed = listed;
      this.base = this.highest;
      this.switchTo(0, endpoints);
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // The watches' cancels need the connection: they go first.
    await this.watches.close();
    this.etcd.close();
  }
}

/** Every key under `roots` that `wanted` keeps, read in one snapshot. */
async function readAll(etcd: Etcd3, roots: readonly string[], wanted: (key: string) => boolean): Promise<Map<string, string>> {
  const values = new Map<string, string>();
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
  return values;
}

/** A node that cannot be reached, as opposed to one that refused: the next node may answer. */
class UnreachableError extends ConfdError {}

function unreachable(endpoint: string, reason: string): ConfdError {
  return new UnreachableError(`cannot reach the etcd store at ${endpoint}: ${reason}`);
}

/**
 * etcd's change feed on one prefix: an etcd watch from the first caller's index on, so that etcd
 * replays what happened since. It reports the revision of each change under the prefix (as the
 * client's index), follows the client to another node, and starts over from the current revision when
 * etcd compacted the history it needed or the client moved to nodes from a new lookup.
 */
class EtcdFeed implements Feed {
  /** The latest store revision up to which etcd has sent this watch's events: where a moved watch resumes. */
  private seen: number;
  private watcher: Watcher | undefined;
  /** The client the etcd watch is on: if it cannot be reached, the client moves to another node. */
  private etcd: Etcd3;
  private lastError = "no answer";
  private cancelled = false;
  private readonly matches: (key: string) => boolean;

  constructor(
    private readonly client: EtcdClient,
    private readonly prefix: string,
    from: number,
    private readonly events: FeedEvents,
  ) {
    this.matches = keyFilter([prefix]);
    this.seen = client.revisionOf(from);
    this.etcd = client.etcd;
    client.feeds.add(this);
    // What happened up to `from` is not replayed: a caller holding an older index re-reads.
    events.changed(from);
    this.attach(this.seen + 1, false);
  }

  /** The error for callers who waited out the deadline; the client moves on to the next node. */
  private readonly unreachable = (): ConfdError => {
    const err = unreachable(this.client.endpoint, this.lastError);
    this.client.failover(this.etcd);
    return err;
  };

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
    this.events.disconnected(this.unreachable);
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
        this.events.changed(this.client.index(revision));
      }
      this.events.connected();
    });
    watcher.on("disconnected", (err: Error) => {
      if (!current()) return;
      resumed = true;
      this.lastError = describe(err);
      this.events.disconnected(this.unreachable);
    });
    watcher.on("data", (res: IWatchResponse) => {
      if (!current()) return;
      let latest = 0;
      for (const event of res.events) if (this.matches(decodeBytes(event.kv.key))) latest = Math.max(latest, Number(event.kv.mod_revision));
      this.seen = Math.max(this.seen, Number(res.header.revision));
      if (latest > 0) this.events.changed(this.client.index(latest));
    });
    watcher.on("error", (err: Error) => {
      if (current()) void this.restart(err);
    });
  }

  /**
   * etcd cancelled the watch. Denied: the callers hear of it. Otherwise the history it needed was
   * compacted away: what changed is unknown, so everyone waiting re-reads, and the watch goes on
   * from now.
   */
  private async restart(err: Error): Promise<void> {
    this.watcher = undefined;
    if (err instanceof EtcdPermissionDeniedError) {
      this.events.failed(new ConfdError(`etcd refused to watch ${this.prefix}: ${describe(err)}`));
      return;
    }
    await this.startOver(`the history of ${this.prefix} was compacted`);
  }

  /** What happened before is unknown: everyone waiting re-reads, and the watch goes on from the current revision. */
  private async startOver(why: string): Promise<void> {
    this.events.disconnected(this.unreachable);
    let revision: number;
    try {
      revision = await this.client.revision();
    } catch (e) {
      this.events.failed(e);
      return;
    }
    // Meanwhile the feed may have been cancelled, or followed the client to another node.
    if (this.cancelled || this.watcher) return;
    log.debug(`etcd: ${why}; going on from revision ${revision}`);
    this.seen = revision;
    this.events.start(this.client.index(revision));
    this.attach(revision + 1, false);
  }

  /** The client moved to another node: the etcd watch follows, from where this one got to. */
  move(): void {
    void this.watcher?.cancel();
    this.attach(this.seen + 1, true);
  }

  /**
   * The client moved to nodes from a new lookup, which may be another cluster, whose revisions say
   * nothing of this one's: the watch starts over there.
   */
  moveElsewhere(): void {
    const watcher = this.watcher;
    this.watcher = undefined;
    void watcher?.cancel();
    void this.startOver(`the nodes were looked up again`);
  }

  async cancel(): Promise<void> {
    this.cancelled = true;
    this.client.feeds.delete(this);
    const watcher = this.watcher;
    this.watcher = undefined;
    await watcher?.cancel();
  }
}
