// The redis backend. It owns at most two connections to redis, whatever the number of watches: one for
// commands (reads, pipelined) and one subscriber shared by every watch. Watches are driven by keyspace
// notifications, turned on when the server allows it; otherwise the backend polls a fingerprint of the
// values under each watched prefix. Key mapping follows confd: with a separator other than "/", the
// key "/a/b" is stored as "a<sep>b"; a string key is one value, a hash key one value per field
// ("/key/field"); anything else is ignored. Notifications sent while the subscriber is away are lost,
// so when it comes back every watch resolves once and its callers re-read. An unreachable store
// rejects reads and watches within about five seconds; ioredis keeps reconnecting, with backoff,
// behind them.
import { Redis } from "ioredis";
import { existsSync } from "node:fs";
import { decodeBytes, encodeText } from "../bytes.ts";
import { ConfdError } from "../errors.ts";
import { log } from "../log.ts";
import type { Config } from "../options.ts";
import { keyFilter, normalizeKey } from "../keys.ts";
import type { StoreClient } from "../store.ts";

/** How long a read or a watch waits for a connection (or a command) before calling the store unreachable. */
const REACH_TIMEOUT_MS = 5000;
/** Per address tried: short enough that a second node is tried within REACH_TIMEOUT_MS. */
const CONNECT_TIMEOUT_MS = 2000;
const MAX_RECONNECT_DELAY_MS = 2000;
const SCAN_COUNT = 1000;
/**
 * Keyspace events a watch needs: K (the per-key channel), $ strings, h hashes, g generic (del, expire,
 * rename), x expired, e evicted. "A" is redis's alias for g$lshzxet.
 */
const REQUIRED_EVENTS = "K$hgxe";
const ALIAS_A = "g$lshzxet";
const KEYSPACE_CHANNEL = /^__keyspace@\d+__:/;

interface RedisNode {
  /** As the user wrote it: used in messages, and holds no secret. */
  label: string;
  db: number;
  path?: string;
  host?: string;
  port?: number;
}

/**
 * "host:port", "host", "[::1]:6379", any of them followed by "/<db>", or a unix socket path (which
 * exists, or starts with "/"). Like confd, a path that exists is a socket even if it ends in "/<digits>".
 */
function parseNode(text: string): RedisNode {
  let address = text;
  let db = 0;
  const withDb = /^(.+)\/(\d+)$/.exec(text);
  if (withDb && !existsSync(text)) {
    address = withDb[1]!;
    db = Number(withDb[2]);
  }
  if (address.startsWith("/") || existsSync(address)) return { label: text, db, path: address };
  const hostPort = /^(?:\[([^\]]+)\]|([^:/[\]]+))(?::(\d+))?$/.exec(address);
  const port = hostPort?.[3] === undefined ? 6379 : Number(hostPort[3]);
  if (!hostPort || port < 1 || port > 65535) {
    throw new ConfdError(`invalid redis node "${text}": expected host:port, host:port/db or a unix socket path`, { flag: "-node" });
  }
  return { label: text, db, host: hostPort[1] ?? hostPort[2], port };
}

function escapeGlob(s: string): string {
  return s.replace(/[\\*?[\]]/g, "\\$&");
}

/** confd's key mapping between "/a/b" and the stored name, for one separator. */
class KeyMapper {
  constructor(private readonly separator: string) {}

  toRedis(key: string): string {
    return this.separator === "/" ? key : key.replace(/^\//, "").split("/").join(this.separator);
  }

  fromRedis(name: string): string {
    const rooted = name.startsWith("/") ? name : "/" + name;
    return this.separator === "/" ? rooted : rooted.split(this.separator).join("/");
  }

  /** SCAN pattern for the keys strictly below `key`: the separator after it is the "/" boundary. */
  below(key: string): string {
    return key === "/" ? "*" : escapeGlob(this.toRedis(key)) + this.separator + "*";
  }

  /**
   * Channel glob (after "__keyspace@<db>__:") for `prefix` and everything starting with it. It also
   * matches "/application" for "/app": events are checked against the "/" boundary on arrival.
   */
  watched(prefix: string): string {
    return prefix === "/" ? "*" : escapeGlob(this.toRedis(prefix)) + "*";
  }
}

function isReplyError(err: unknown): boolean {
  return err instanceof Error && err.name === "ReplyError";
}

function isWrongType(err: unknown): boolean {
  return isReplyError(err) && (err as Error).message.startsWith("WRONGTYPE");
}

interface Auth {
  username?: string;
  password?: string;
}

/**
 * One ioredis connection that fails over: ioredis reconnects by itself (with backoff), and when an
 * attempt fails before the connection was ever ready, the next attempt goes to the next node.
 * ioredis reads host, port, path and db from its options object on every connect, so we rewrite them.
 */
class Link {
  readonly redis: Redis;
  private cursor = 0;
  private wasReady = false;
  private lastError: Error | undefined;

  constructor(
    private readonly nodes: readonly RedisNode[],
    auth: Auth,
    role: string,
  ) {
    this.redis = new Redis({
      ...addressOf(nodes[0]!),
      ...auth,
      connectionName: `confd-${role}`,
      connectTimeout: CONNECT_TIMEOUT_MS,
      commandTimeout: REACH_TIMEOUT_MS,
      // Fail fast instead of queueing: the caller backs off and retries, and an unreachable store
      // must not pile up commands.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      // Subscriptions are renewed by the client, since the db in the channel name may change on failover.
      autoResubscribe: false,
      retryStrategy: (attempt) => this.nextAttempt(attempt),
    });
    this.redis.on("error", (err: Error) => {
      this.lastError = err;
      log.debug(`redis ${role} connection to ${this.node.label}: ${err.message}`);
    });
    this.redis.on("ready", () => {
      this.wasReady = true;
      this.lastError = undefined;
    });
  }

  get node(): RedisNode {
    return this.nodes[this.cursor]!;
  }

  get ready(): boolean {
    return this.redis.status === "ready";
  }

  private nextAttempt(attempt: number): number {
    if (!this.wasReady && this.nodes.length > 1) {
      this.cursor = (this.cursor + 1) % this.nodes.length;
      Object.assign(this.redis.options, addressOf(this.node));
    }
    this.wasReady = false;
    return Math.min(50 * 2 ** attempt, MAX_RECONNECT_DELAY_MS);
  }

  /** The error a caller sees: which store, and why, never a password. */
  unreachable(detail?: string): ConfdError {
    const where = this.nodes.length === 1 ? `at ${this.nodes[0]!.label}` : `at any of ${this.nodes.map((n) => n.label).join(", ")}`;
    const why = detail ?? this.lastError?.message ?? `no answer within ${REACH_TIMEOUT_MS / 1000}s`;
    return new ConfdError(`cannot reach redis ${where}: ${why}`);
  }

  /** Errors from commands: redis's own replies as they are, anything else as "cannot reach". */
  storeError(err: unknown): ConfdError {
    if (err instanceof ConfdError) return err;
    if (isReplyError(err)) return new ConfdError(`redis: ${(err as Error).message}`);
    return this.unreachable(err instanceof Error ? err.message : String(err));
  }

  whenReady(): Promise<void> {
    if (this.ready) return Promise.resolve();
    if (this.redis.status === "end") return Promise.reject(new ConfdError("the redis client is closed"));
    return new Promise((resolve, reject) => {
      const settle = (outcome: () => void) => {
        clearTimeout(timer);
        this.redis.off("ready", onReady);
        this.redis.off("error", onError);
        outcome();
      };
      const timer = setTimeout(() => settle(() => reject(this.unreachable())), REACH_TIMEOUT_MS);
      const onReady = () => settle(resolve);
      // A refusal from the server itself (wrong password, say) will not go away by waiting.
      const onError = (err: Error) => {
        if (isReplyError(err)) settle(() => reject(this.unreachable(err.message)));
      };
      this.redis.on("ready", onReady);
      this.redis.on("error", onError);
    });
  }

  /** QUIT, then waits (within the reach timeout) for redis to close the connection: gone from its client list. */
  async close(): Promise<void> {
    if (this.ready) {
      const ended = new Promise<void>((resolve) => this.redis.once("end", resolve));
      let timer: ReturnType<typeof setTimeout> | undefined;
      if (await this.redis.quit().then(() => true, () => false)) {
        await Promise.race([ended, new Promise((resolve) => (timer = setTimeout(resolve, REACH_TIMEOUT_MS)))]);
      }
      clearTimeout(timer);
    }
    this.redis.disconnect();
  }
}

function addressOf(node: RedisNode): { host?: string; port?: number; path?: string; db: number } {
  return node.path ? { path: node.path, host: undefined, port: undefined, db: node.db } : { host: node.host, port: node.port, path: undefined, db: node.db };
}

interface Waiter {
  readonly waitIndex: number;
  resolve(index: number): void;
  reject(err: unknown): void;
  /** Set while the connection the watch depends on is down: rejects the waiter if it stays down. */
  deadline?: ReturnType<typeof setTimeout>;
}

/** One watched prefix, shared by every caller watching it. */
class PrefixWatch {
  /** Bumped on every change under the prefix; what watchPrefix returns. */
  counter = 1;
  /** Changes are being tracked: subscribed on the current subscriber connection, or a first poll done. */
  live = false;
  readonly waiters = new Set<Waiter>();
  readonly covers: (key: string) => boolean;
  fingerprint: string | undefined;
  pollTimer: ReturnType<typeof setTimeout> | undefined;
  polling = false;

  constructor(
    readonly prefix: string,
    /** The channel glob, db left out. */
    readonly glob: string,
  ) {
    this.covers = keyFilter([prefix]);
  }
}

export interface RedisClientOptions {
  nodes: readonly string[];
  username?: string;
  password?: string;
  /** confd's --separator: "" or "/" keeps keys as they are. */
  separator?: string;
  /** Seconds between polls when keyspace notifications cannot be turned on. */
  intervalSeconds: number;
}

export class RedisClient implements StoreClient {
  private readonly nodes: readonly RedisNode[];
  private readonly auth: Auth;
  private readonly keys: KeyMapper;
  private readonly intervalMs: number;
  private readonly cmd: Link;
  private sub: Link | undefined;
  private mode: "notify" | "poll" = "notify";
  /** The subscriber is ready, notifications are on, and subscriptions are being made on it. */
  private subUp = false;
  private subWasUp = false;
  /** Bumped whenever the subscriber goes up or down, so that late callbacks from an old connection do nothing. */
  private subEpoch = 0;
  private readonly watches = new Map<string, PrefixWatch>();
  private closed = false;

  constructor(options: RedisClientOptions) {
    this.nodes = (options.nodes.length > 0 ? options.nodes : ["127.0.0.1:6379"]).map(parseNode);
    // A username alone means nothing to redis (AUTH needs a password): only send it with one.
    this.auth = options.password ? { username: options.username || undefined, password: options.password } : {};
    this.keys = new KeyMapper(options.separator || "/");
    this.intervalMs = Math.max(1, options.intervalSeconds) * 1000;
    this.cmd = new Link(this.nodes, this.auth, "commands");
    this.cmd.redis.on("ready", () => this.updateDeadlines());
    this.cmd.redis.on("close", () => this.updateDeadlines());
  }

  async getValues(keys: readonly string[]): Promise<Map<string, string>> {
    if (this.closed) throw new ConfdError("the redis client is closed");
    // confd's templates may still name a subtree "/app/*".
    const wanted = [...new Set(keys.map((k) => normalizeKey(k.replace(/\/\*$/, ""))))];
    await this.cmd.whenReady();
    try {
      return await this.read(wanted);
    } catch (err) {
      throw this.cmd.storeError(err);
    }
  }

  /**
   * Breadth-first, one pipeline per round trip: the keys themselves and a SCAN per subtree, then the
   * values of what the scans found (and the next scan pages), then the hashes among them. A few round
   * trips whatever the number of keys.
   */
  private async read(wanted: readonly string[]): Promise<Map<string, string>> {
    const values = new Map<string, string>();
    const inScope = keyFilter(wanted);
    const add = (name: string, value: string) => {
      const key = this.keys.fromRedis(name);
      if (inScope(key)) values.set(key, value);
    };
    const requested = new Set<string>();
    let strings = [...new Set(wanted.map((k) => this.keys.toRedis(k)))];
    for (const name of strings) requested.add(name);
    let hashes: string[] = [];
    let scans = wanted.map((k) => ({ match: this.keys.below(k), cursor: "0" }));

    while (strings.length + hashes.length + scans.length > 0) {
      // Names and values as bytes (bytes.ts): a value that is not UTF-8 is copied, not replaced by U+FFFD.
      const pipeline = this.cmd.redis.pipeline();
      for (const name of strings) pipeline.getBuffer(encodeText(name));
      for (const name of hashes) pipeline.callBuffer("HGETALL", encodeText(name));
      for (const scan of scans) pipeline.callBuffer("SCAN", scan.cursor, "MATCH", encodeText(scan.match), "COUNT", SCAN_COUNT);
      const replies = await pipeline.exec();
      if (!replies) throw new Error("pipeline discarded");
      let i = 0;
      const nextStrings: string[] = [];
      const nextHashes: string[] = [];
      const nextScans: typeof scans = [];
      for (const name of strings) {
        const [err, value] = replies[i++]!;
        // Not a string: maybe a hash, asked for in the next round.
        if (isWrongType(err)) nextHashes.push(name);
        else if (err) throw err;
        else if (value instanceof Uint8Array) add(name, decodeBytes(value));
      }
      for (const name of hashes) {
        const [err, fields] = replies[i++]!;
        if (isWrongType(err)) continue; // a list, set or other type: not a value
        if (err) throw err;
        const flat = fields as Buffer[];
        for (let f = 0; f + 1 < flat.length; f += 2) add(`${name}/${decodeBytes(flat[f]!)}`, decodeBytes(flat[f + 1]!));
      }
      for (const scan of scans) {
        const [err, page] = replies[i++]!;
        if (err) throw err;
        const [cursorBytes, foundBytes] = page as [Buffer, Buffer[]];
        const cursor = cursorBytes.toString();
        for (const name of foundBytes.map(decodeBytes)) {
          if (requested.has(name)) continue;
          requested.add(name);
          nextStrings.push(name);
        }
        if (cursor !== "0") nextScans.push({ match: scan.match, cursor });
      }
      strings = nextStrings;
      hashes = nextHashes;
      scans = nextScans;
    }
    return values;
  }

  watchPrefix(prefix: string, waitIndex: number, signal: AbortSignal): Promise<number> {
    if (signal.aborted) return Promise.reject(signal.reason);
    if (this.closed) return Promise.reject(new ConfdError("the redis client is closed"));
    const watch = this.watchFor(normalizeKey(prefix));
    return new Promise((resolve, reject) => {
      const settle = () => {
        watch.waiters.delete(waiter);
        clearTimeout(waiter.deadline);
        signal.removeEventListener("abort", onAbort);
      };
      const waiter: Waiter = {
        waitIndex,
        resolve: (index) => (settle(), resolve(index)),
        reject: (err) => (settle(), reject(err)),
      };
      const onAbort = () => waiter.reject(signal.reason);
      signal.addEventListener("abort", onAbort, { once: true });
      watch.waiters.add(waiter);
      this.check(watch);
      if (!watch.waiters.has(waiter)) return;
      if (!this.linkUp()) this.arm(waiter);
      // Polling, and no poll has succeeded yet: try now rather than an interval later.
      if (this.mode === "poll" && !watch.live) void this.poll(watch);
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.subEpoch++;
    for (const watch of this.watches.values()) {
      clearTimeout(watch.pollTimer);
      for (const waiter of watch.waiters) waiter.reject(new ConfdError("the redis client is closed"));
    }
    await Promise.all([this.cmd.close(), this.sub?.close()]);
  }

  private watchFor(prefix: string): PrefixWatch {
    let watch = this.watches.get(prefix);
    if (watch) return watch;
    watch = new PrefixWatch(prefix, this.keys.watched(prefix));
    this.watches.set(prefix, watch);
    if (this.mode === "poll") void this.poll(watch);
    else if (this.subUp) this.subscribe(watch, this.subEpoch, false);
    else this.startSubscriber();
    return watch;
  }

  /** Resolves the waiters that can be: a change after their index, or a first index once the watch is live. */
  private check(watch: PrefixWatch): void {
    for (const waiter of watch.waiters) {
      if (waiter.waitIndex === 0 ? watch.live : watch.counter > waiter.waitIndex) waiter.resolve(watch.counter);
    }
  }

  /** Whether the connection watches depend on (the subscriber, or the command one when polling) is up. */
  private linkUp(): boolean {
    return this.mode === "poll" ? this.cmd.ready : this.subUp;
  }

  private arm(waiter: Waiter): void {
    if (waiter.deadline !== undefined) return;
    const link = this.mode === "notify" && this.sub ? this.sub : this.cmd;
    waiter.deadline = setTimeout(() => waiter.reject(link.unreachable()), REACH_TIMEOUT_MS);
  }

  private updateDeadlines(): void {
    if (this.closed) return;
    const up = this.linkUp();
    for (const watch of this.watches.values()) {
      for (const waiter of watch.waiters) {
        if (!up) this.arm(waiter);
        else if (waiter.deadline !== undefined) {
          clearTimeout(waiter.deadline);
          waiter.deadline = undefined;
        }
      }
    }
  }

  private startSubscriber(): void {
    if (this.sub) return;
    const sub = new Link(this.nodes, this.auth, "watch");
    this.sub = sub;
    // Events from a subscriber dropped for polling (its close, above all) must not touch the watches.
    const current = () => this.sub === sub;
    sub.redis.on("ready", () => {
      if (current()) void this.onSubscriberReady(sub);
    });
    sub.redis.on("close", () => {
      if (current()) this.onSubscriberDown();
    });
    sub.redis.on("pmessage", (pattern: string, channel: string, event: string) => {
      if (current()) this.onKeyspaceEvent(pattern, channel, event);
    });
  }

  private async onSubscriberReady(sub: Link): Promise<void> {
    const epoch = ++this.subEpoch;
    try {
      await this.enableNotifications(sub.redis);
    } catch (err) {
      if (epoch !== this.subEpoch || this.closed) return;
      if (isReplyError(err)) this.fallBackToPolling(err as Error);
      // No answer in time on a connection that looks up: start over on a fresh one.
      else if (sub.ready) sub.redis.disconnect(true);
      return;
    }
    if (epoch !== this.subEpoch || this.closed) return;
    // Notifications sent while the subscriber was away are lost: every watch resolves once it is back.
    const reconnected = this.subWasUp;
    this.subUp = this.subWasUp = true;
    this.updateDeadlines();
    for (const watch of this.watches.values()) this.subscribe(watch, epoch, reconnected);
  }

  private onSubscriberDown(): void {
    this.subEpoch++;
    this.subUp = false;
    for (const watch of this.watches.values()) watch.live = false;
    this.updateDeadlines();
  }

  private subscribe(watch: PrefixWatch, epoch: number, reconnected: boolean): void {
    const sub = this.sub!;
    sub.redis.psubscribe(`__keyspace@${sub.node.db}__:${watch.glob}`).then(
      () => {
        if (epoch !== this.subEpoch) return;
        watch.live = true;
        if (reconnected) watch.counter++;
        this.check(watch);
      },
      // The connection went down; its return subscribes again.
      (err: Error) => log.debug(`redis subscription for ${watch.prefix} failed: ${err.message}`),
    );
  }

  private onKeyspaceEvent(pattern: string, channel: string, event: string): void {
    // A read of a missing key (our own reads included, when the server reports them) changes nothing.
    if (event === "keymiss") return;
    const glob = pattern.replace(KEYSPACE_CHANNEL, "");
    const key = this.keys.fromRedis(channel.replace(KEYSPACE_CHANNEL, ""));
    for (const watch of this.watches.values()) {
      if (watch.glob !== glob || !watch.covers(key)) continue;
      watch.counter++;
      this.check(watch);
    }
  }

  /** Adds the event classes a watch needs to the server's notify-keyspace-events, keeping what is there. */
  private async enableNotifications(redis: Redis): Promise<void> {
    const reply = (await redis.config("GET", "notify-keyspace-events")) as unknown as string[];
    const current = (reply[1] ?? "").replace("A", ALIAS_A);
    const missing = [...REQUIRED_EVENTS].filter((c) => !current.includes(c));
    if (missing.length === 0) return;
    await redis.config("SET", "notify-keyspace-events", current + missing.join(""));
    log.info(`turned on redis keyspace notifications (notify-keyspace-events now includes ${REQUIRED_EVENTS}) to watch for changes`);
  }

  private fallBackToPolling(err: Error): void {
    this.mode = "poll";
    log.warning(
      `redis refused to turn on keyspace notifications (${err.message}); watching by polling every ${this.intervalMs / 1000}s instead. ` +
        `Set notify-keyspace-events to include ${REQUIRED_EVENTS} on the server, or allow CONFIG, for immediate updates`,
    );
    const sub = this.sub;
    this.sub = undefined;
    this.subUp = false;
    this.subEpoch++;
    void sub?.close();
    this.updateDeadlines();
    for (const watch of this.watches.values()) {
      // A subscriber that was up and came back refusing (failover to another node): what changed
      // while it was away went unseen, so every watch resolves once, as after a reconnect.
      if (this.subWasUp) watch.counter++;
      void this.poll(watch);
    }
  }

  /** One poll of a prefix, then the next one interval seconds later. */
  private async poll(watch: PrefixWatch): Promise<void> {
    if (watch.polling || this.closed) return;
    watch.polling = true;
    clearTimeout(watch.pollTimer);
    try {
      const fingerprint = fingerprintOf(await this.getValues([watch.prefix]));
      if (watch.live && fingerprint !== watch.fingerprint) watch.counter++;
      watch.fingerprint = fingerprint;
      watch.live = true;
      this.check(watch);
    } catch (err) {
      for (const waiter of watch.waiters) waiter.reject(err);
    } finally {
      watch.polling = false;
      if (!this.closed) watch.pollTimer = setTimeout(() => void this.poll(watch), this.intervalMs);
    }
  }
}

function fingerprintOf(values: Map<string, string>): string {
  const entries = [...values].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return String(Bun.hash(JSON.stringify(entries)));
}

export async function connect(config: Config): Promise<StoreClient> {
  return new RedisClient({
    nodes: config.nodes,
    username: config.username,
    // confd hands redis its --client-key as the password; --password is the clearer spelling.
    password: config.password || config.clientKey,
    separator: config.separator,
    intervalSeconds: config.interval,
  });
}
