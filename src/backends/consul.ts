// The consul backend: confd's reads of Consul's KV store, through the consul package, and watches built
// on Consul's blocking queries. It owns the connection settings (nodes and failover between them,
// scheme, TLS, basic auth, ACL token; nodes looked up again when every one failed), the listing of a prefix (a blocking query when given an index)
// and the rate limit Consul's blocking-query documentation asks of loops; the watch core
// (../watch-core.ts) runs the loop, shared per prefix, and tells a change under the prefix from an
// index that moved for other keys or went backwards. The service catalog, which templates read too,
// is consul-catalog.ts's, over the same nodes.
import { EventEmitter } from "node:events";
import http, { type IncomingMessage } from "node:http";
import https from "node:https";
import net from "node:net";
import { posix } from "node:path";
import type { Duplex } from "node:stream";
import Consul from "consul";
import type { CatalogCapable } from "../catalog.ts";
import { ConfdError, type ErrorContext } from "../errors.ts";
import type { Config } from "../options.ts";
import { decodeBytes } from "../bytes.ts";
import { keyFilter, normalizeKey, subtrees } from "../keys.ts";
import { fixedNodes, type NodeOptions, type NodeSource } from "../srv.ts";
import type { StoreClient } from "../store.ts";
import { listingWatch, SharedWatches, type Listing, type Pace } from "../watch-core.ts";
import { ConsulCatalog } from "./consul-catalog.ts";
import { tlsSettings, type TlsSettings } from "./tls.ts";

const DEFAULT_NODE = "127.0.0.1:8500";
/** A node that has not accepted the connection by then is taken as down, and the next one is tried. */
const CONNECT_TIMEOUT_MS = 5_000;
/** For a request that is not a blocking query, which Consul answers in milliseconds. */
const REQUEST_TIMEOUT_MS = 10_000;
/** How long one blocking query may be held. Consul adds up to wait/16 of its own to spread wake-ups. */
const WAIT_MS = 60_000;
const BLOCKING_TIMEOUT_MS = WAIT_MS + WAIT_MS / 16 + REQUEST_TIMEOUT_MS;
/** blockingPace(): a burst of 2 requests, then one a second, with up to 2% of the blocking wait of jitter. */
const RATE_BURST = 2;
const RATE_REFILL_MS = 1_000;
const RATE_JITTER_MS = WAIT_MS / 50;

/**
 * Connection settings beyond Config: where the nodes come from (SRV records), and the environment
 * CONSUL_HTTP_TOKEN is read from (a parameter so that tests need not touch process.env).
 */
export interface ConsulConnectOptions extends NodeOptions {
  env?: Readonly<Record<string, string | undefined>>;
}

export async function connect(config: Config, options: ConsulConnectOptions = {}): Promise<StoreClient> {
  const env = options.env ?? process.env;
  const tls = tlsSettings(config);
  const scheme = config.scheme === "https" || tls !== undefined ? "https" : "http";
  const headers: Record<string, string> = {};
  // As confd: basic auth only when asked for with -basic-auth, for a proxy in front of Consul.
  if (config.basicAuth) headers.authorization = `Basic ${Buffer.from(`${config.username}:${config.password}`).toString("base64")}`;
  const token = config.authToken || env.CONSUL_HTTP_TOKEN || undefined;
  const makeNode = (node: string) => new ConsulNode(nodeUrl(node, scheme), headers, token, tls);
  return new ConsulClient(options.nodes ?? fixedNodes(config.nodes), makeNode);
}

interface KvPair {
  Key: string;
  /** Base64-decoded to bytes by the consul package (`buffer: true`); null for a key without a value. */
  Value: Buffer | null;
}

/** Options the consul package passes on to papi, its HTTP layer; its .d.ts declares only a few. */
interface ClientOptions {
  baseUrl: string;
  agent: http.Agent;
  headers: Record<string, string>;
  defaults?: { token: string };
  ca?: string;
  cert?: string;
  key?: string;
  rejectUnauthorized?: boolean;
}

/**
 * What every request is given: the context that cancels it, its timeout, and for a blocking query the
 * index it waits to see passed and for how long.
 */
export interface CallOptions {
  ctx: EventEmitter & { includeResponse: true };
  timeout: number;
  index?: string;
  wait?: string;
}

/**
 * A method of the consul package as it behaves with `ctx.includeResponse` (so that the X-Consul-Index
 * header can be read): it resolves with the response and the body, absent on a 404. Its .d.ts describes
 * neither that nor the index, wait, timeout and ctx options.
 */
type Method<O> = (options: O & CallOptions) => Promise<[IncomingMessage, unknown?]>;

/** The parts of the consul package this backend calls (for KV here, for the catalog in consul-catalog.ts). */
export interface ConsulApi {
  kv: { get: Method<{ key: string; recurse: true; buffer: true }> };
  health: {
    service: Method<{ service: string; tag?: string; passing?: boolean; dc?: string }>;
    state: Method<{ state: string }>;
  };
  catalog: {
    service: { list: Method<{ dc?: string }> };
    node: { list: Method<{ dc?: string }> };
  };
  event: { list: Method<{ name?: string }> };
}

/** One request, made of the package's API and the options every request is given. */
export type NodeCall = (api: ConsulApi, options: CallOptions) => Promise<[IncomingMessage, unknown?]>;

/** An answer: its X-Consul-Index as sent (it may not fit a double: event indexes are 64-bit hashes), and its body. */
export interface NodeAnswer {
  index: string;
  body: unknown;
}

/** One Consul agent or server, with its own keep-alive connections. */
class ConsulNode {
  /** host:port, for messages: never the credentials. */
  readonly label: string;
  private readonly agent: http.Agent;
  private readonly api: ConsulApi;

  constructor(url: URL, headers: Record<string, string>, token: string | undefined, tls: TlsSettings | undefined) {
    this.label = url.host;
    this.agent = url.protocol === "https:" ? new GuardedHttpsAgent({ keepAlive: true }) : new GuardedHttpAgent({ keepAlive: true });
    const options: ClientOptions = { baseUrl: `${url.protocol}//${url.host}/v1`, agent: this.agent, headers, ...tls };
    if (token) options.defaults = { token };
    this.api = new Consul(options) as unknown as ConsulApi;
  }

  /** The answer to `call` and its X-Consul-Index; given an index, a blocking query that waits for it to be passed. */
  async get(call: NodeCall, index: string | undefined, signal: AbortSignal): Promise<NodeAnswer> {
    signal.throwIfAborted();
    // papi aborts the request when its context emits "cancel".
    const ctx = Object.assign(new EventEmitter(), { includeResponse: true as const });
    const cancel = () => ctx.emit("cancel");
    signal.addEventListener("abort", cancel, { once: true });
    try {
      const blocking = index !== undefined ? { index, wait: `${WAIT_MS / 1000}s`, timeout: BLOCKING_TIMEOUT_MS } : { timeout: REQUEST_TIMEOUT_MS };
      const [res, body] = await call(this.api, { ctx, ...blocking });
      const header = res.headers["x-consul-index"];
      return { index: (Array.isArray(header) ? header[0] : header) ?? "", body };
    } finally {
      signal.removeEventListener("abort", cancel);
    }
  }

  close(): void {
    this.agent.destroy();
  }
}

class ConsulClient implements StoreClient, CatalogCapable {
  /** The node that answered last, tried first: failover sticks instead of retrying a dead node each time. */
  private preferred = 0;
  private closed = false;
  readonly catalog = new ConsulCatalog((call, index, signal) => this.request(call, index, signal, {}), CONNECT_TIMEOUT_MS);
  /** The source's list the nodes were made from, and the nodes. */
  private listed: readonly string[];
  private nodes: readonly ConsulNode[];
  /**
   * Listing indexes are Consul's plus this. Nodes from a new lookup may be another datacenter, whose
   * indexes say nothing of the last one's: their indexes are counted on from the highest handed out.
   */
  private base = 0;
  private highest = 0;
  private readonly watches = new SharedWatches({
    store: "consul",
    source: listingWatch({ list: (prefix, index, signal) => this.list(prefix, index, signal), pace: blockingPace }),
    // Listings report their own failures (a node that does not connect in time among them): the
    // deadline only bounds close().
    deadlineMs: CONNECT_TIMEOUT_MS,
  });

  constructor(
    private readonly source: NodeSource,
    private readonly makeNode: (node: string) => ConsulNode,
  ) {
    this.listed = source.current();
    this.nodes = (this.listed.length > 0 ? this.listed : [DEFAULT_NODE]).map(makeNode);
  }

  async getValues(keys: readonly string[]): Promise<Map<string, string>> {
    if (this.closed) throw closedError();
    // A key below another asked-for key is in that one's listing already.
    const queries = subtrees(keys);
    const listings = await Promise.all(queries.map((k) => this.list(k, 0, new AbortController().signal)));
    // Consul's recurse is a raw string prefix ("app" lists "application"): keep the "/" boundary.
    const wanted = keyFilter(keys);
    const values = new Map<string, string>();
    for (const listing of listings) for (const [key, value] of listing.values) if (wanted(key)) values.set(key, value);
    return values;
  }

  watchPrefix(prefix: string, waitIndex: number, signal: AbortSignal): Promise<number> {
    return this.watches.wait(prefix, waitIndex, signal);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([this.watches.close(), this.catalog.close()]);
    for (const node of this.nodes) node.close();
  }

  /**
   * The pairs under `key` (absolute; Consul's recurse is a raw prefix: "app" lists "application" too) and
   * the X-Consul-Index of the answer; with an index above 0, a blocking query that waits for it to be passed.
   */
  private async list(key: string, index: number, signal: AbortSignal): Promise<Listing & { index: number }> {
    // confd strips the leading "/" for Consul, whose keys have none, and adds it back on results.
    const consulKey = key.replace(/^\/+/, "");
    const kvGet: NodeCall = (api, options) => api.kv.get({ key: consulKey, recurse: true, buffer: true, ...options });
    const { base } = this;
    // An index from before these nodes is none of theirs: a plain listing, not a blocking query.
    const consulIndex = Math.max(0, index - base);
    const { index: at, body } = await this.request(kvGet, consulIndex > 0 ? String(consulIndex) : undefined, signal, { key });
    if (body !== undefined && !Array.isArray(body)) throw new ConfdError("the answer is not a KV listing", { key });
    const pairs = (body ?? []) as KvPair[];
    // 0 stays 0: the watch core starts over on it, as Consul's documentation asks. request() went round
    // the nodes of this snapshot, so the answer is theirs.
    const consul = Number(at) || 0;
    const ours = consul > 0 ? consul + base : 0;
    this.highest = Math.max(this.highest, ours);
    return { index: ours, values: new Map(pairs.map((pair) => [storeKey(pair.Key), pair.Value ? decodeBytes(pair.Value) : ""])) };
  }

  /** Makes a request, trying each node in turn from the preferred one while they cannot be reached. */
  private async request(call: NodeCall, index: string | undefined, signal: AbortSignal, what: ErrorContext): Promise<NodeAnswer> {
    if (this.closed) throw closedError();
    const failures: string[] = [];
    // The nodes may be replaced meanwhile (by another request's refresh): this one goes round these.
    const { nodes } = this;
    for (let i = 0; i < nodes.length; i++) {
      const n = (this.preferred + i) % nodes.length;
      const node = nodes[n]!;
      try {
        const answer = await node.get(call, index, signal);
        if (nodes === this.nodes) this.preferred = n;
        return answer;
      } catch (err) {
        if (signal.aborted) throw signal.reason;
        const status = statusOf(err);
        // A 4xx is Consul's answer, the same from every node; a 5xx (no leader, say) may be one node's.
        if (status !== undefined && status < 500) throw refusal(status, err, what);
        failures.push(`${node.label} (${reasonOf(err)})`);
      }
    }
    // Every node failed: the next attempt goes to the nodes SRV records name now, if they changed.
    if (await this.source.refresh()) this.adopt();
    throw new ConfdError(`the consul store cannot be reached: ${failures.join(", ")}`, what);
  }

  /** Takes the source's new list, keeping the nodes (and their connections) still in it; the first is tried first. */
  private adopt(): void {
    const listed = this.source.current();
    if (this.closed || listed === this.listed) return;
    const kept = new Map(this.listed.map((text, i) => [text, this.nodes[i]!]));
    // SRV targets are checked host names with ports: makeNode accepts them.
    const nodes = listed.map((text) => kept.get(text) ?? this.makeNode(text));
    for (const node of this.nodes) if (!nodes.includes(node)) node.close();
    this.listed = listed;
    this.nodes = nodes;
    this.preferred = 0;
    this.base = this.highest;
  }
}

/**
 * Consul's advice for blocking loops: no pause in the happy case, but degrade to polling when results
 * churn. A token bucket with a burst of 2, refilled one request a second; once it runs dry the wait
 * also gets a random part (2% of the blocking wait) so that the instances a churning key woke
 * together do not come back together. Each request takes its token when it is paced: the debt
 * carries over.
 */
export function blockingPace(now: () => number = () => performance.now(), random: () => number = Math.random): Pace {
  let tokens = RATE_BURST;
  let at = now();
  return () => {
    const t = now();
    tokens = Math.min(RATE_BURST, tokens + (t - at) / RATE_REFILL_MS) - 1;
    at = t;
    return tokens >= 0 ? 0 : -tokens * RATE_REFILL_MS + random() * RATE_JITTER_MS;
  };
}

/** Consul's "app/db/" as confd names it: "/app/db" (Go's path.Join("/", key)). */
function storeKey(consulKey: string): string {
  return normalizeKey(posix.join("/", consulKey));
}

/**
 * A blocking query is held open for a minute, so no request timeout can tell a dead node from a quiet
 * one quickly; a connection that is not up within CONNECT_TIMEOUT_MS can.
 */
function guardConnect(socket: Duplex | null | undefined): Duplex | null | undefined {
  if (socket instanceof net.Socket && socket.connecting) {
    const timer = setTimeout(() => socket.destroy(new Error(`no connection within ${CONNECT_TIMEOUT_MS / 1000} s`)), CONNECT_TIMEOUT_MS);
    socket.once("connect", () => clearTimeout(timer));
    socket.once("close", () => clearTimeout(timer));
  }
  return socket;
}

class GuardedHttpAgent extends http.Agent {
  override createConnection(options: http.ClientRequestArgs, callback?: (err: Error | null, stream: Duplex) => void) {
    return guardConnect(super.createConnection(options, callback));
  }
}

class GuardedHttpsAgent extends https.Agent {
  override createConnection(options: https.RequestOptions, callback?: (err: Error | null, stream: Duplex) => void) {
    return guardConnect(super.createConnection(options, callback));
  }
}

/** "host:port" in the configured scheme, or a URL that names its own. */
function nodeUrl(node: string, scheme: string): URL {
  const text = /^[a-z][a-z0-9+.-]*:\/\//i.test(node) ? node : `${scheme}://${node}`;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new ConfdError(`invalid consul node "${node}": expected host:port or a URL`, { flag: "-node" });
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new ConfdError(`invalid consul node "${node}": the scheme must be http or https`, { flag: "-node" });
  }
  return url;
}


function statusOf(err: unknown): number | undefined {
  const status = (err as { statusCode?: unknown } | null)?.statusCode;
  return typeof status === "number" ? status : undefined;
}

/** The error's own words, without the "consul: kv.get: " papi puts first. */
function reasonOf(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return message.replace(/^consul: [\w.]+: /, "");
}

function refusal(status: number, err: unknown, what: ErrorContext): ConfdError {
  const reason = reasonOf(err);
  if (status === 403) {
    return new ConfdError(`consul denied access (403 ${reason}): check the ACL token (-auth-token or CONSUL_HTTP_TOKEN)`, what);
  }
  return new ConfdError(`consul refused the request (${status} ${reason})`, what);
}

function closedError(): ConfdError {
  return new ConfdError("the consul client is closed");
}
