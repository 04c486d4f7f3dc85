// The redis backend. It owns at most two connections to redis, whatever the number of watches: one for
// commands (reads, pipelined: redis-read.ts) and one subscriber shared by every watch; each fails over
// between the nodes (redis-link.ts). Watches are driven by keyspace notifications, turned on when the
// server allows it; otherwise the backend polls a fingerprint of the values under each watched prefix.
// Keys are mapped as confd maps them (redis-keys.ts). Notifications sent while the subscriber is away
// are lost, so when it comes back every watch resolves once and its callers re-read. An unreachable
// store rejects reads and watches within about five seconds; ioredis keeps reconnecting, with
// backoff, behind them.
import type { Redis } from "ioredis";
import { ConfdError } from "../errors.ts";
import { log } from "../log.ts";
import type { Config } from "../options.ts";
import { keyFilter, normalizeKey } from "../keys.ts";
import type { StoreClient } from "../store.ts";
import { KeyMapper } from "./redis-keys.ts";
import { isReplyError, Link, parseNode, REACH_TIMEOUT_MS, type Auth, type RedisNode } from "./redis-link.ts";
import { readValues } from "./redis-read.ts";

/**
 * Keyspace events a watch needs: K (the per-key channel), $ strings, h hashes, g generic (del, expire,
 * rename), x expired, e evicted. "A" is redis's alias for g$lshzxet.
 */
const REQUIRED_EVENTS = "K$hgxe";
const ALIAS_A = "g$lshzxet";
const KEYSPACE_CHANNEL = /^__keyspace@\d+__:/;

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
      return await readValues(this.cmd.redis, this.keys, wanted);
    } catch (err) {
      throw this.cmd.storeError(err);
    }
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
