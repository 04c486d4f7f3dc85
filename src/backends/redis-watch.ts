// How redis is watched: a change feed per prefix made of keyspace notifications, all on one subscriber
// connection, turned on when the server allows it (CONFIG SET notify-keyspace-events); when it refuses,
// polling each prefix at the interval instead, after one warning. Notifications sent while the
// subscriber is away are lost, so when it is back every prefix starts over and its callers re-read.
// Waiters, sharing per prefix and deadlines are the watch core's (../watch-core.ts).
import type { Redis } from "ioredis";
import { ConfdError } from "../errors.ts";
import { keyFilter } from "../keys.ts";
import { log } from "../log.ts";
import { every, ListingFeed, SharedWatches, type Feed, type FeedEvents, type ListingSource } from "../watch-core.ts";
import type { KeyMapper } from "./redis-keys.ts";
import { isReplyError, Link, REACH_TIMEOUT_MS, type Auth, type RedisNodes } from "./redis-link.ts";

/**
 * Keyspace events a watch needs: K (the per-key channel), $ strings, h hashes, g generic (del, expire,
 * rename), x expired, e evicted. "A" is redis's alias for g$lshzxet.
 */
const REQUIRED_EVENTS = "K$hgxe";
const ALIAS_A = "g$lshzxet";
const KEYSPACE_CHANNEL = /^__keyspace@\d+__:/;

/** One prefix's keyspace subscription. */
interface Subscription {
  /** The channel glob, db left out. */
  glob: string;
  covers: (key: string) => boolean;
  events: FeedEvents;
}

export interface RedisWatchOptions {
  nodes: RedisNodes;
  auth: Auth;
  keys: KeyMapper;
  /** The command connection: what polling reads through. */
  cmd: Link;
  /** The values under some keys, read on the command connection. */
  read(keys: readonly string[]): Promise<Map<string, string>>;
  /** Between polls, when keyspace notifications cannot be turned on. */
  intervalMs: number;
}

export class RedisWatch {
  private mode: "notify" | "poll" = "notify";
  private sub: Link | undefined;
  /** The subscriber is ready and notifications are on: subscriptions are being made on it. */
  private subUp = false;
  /** Bumped whenever the subscriber goes up or down, so that late callbacks from an old connection do nothing. */
  private epoch = 0;
  private closed = false;
  private readonly subscriptions = new Set<Subscription>();
  private readonly subUnreachable = (): ConfdError => (this.sub ?? this.options.cmd).unreachable();
  private readonly polling: ListingSource;
  private readonly watches: SharedWatches;

  constructor(private readonly options: RedisWatchOptions) {
    this.polling = {
      list: async (prefix) => ({ values: await options.read([prefix]) }),
      pace: () => every(options.intervalMs),
    };
    this.watches = new SharedWatches({
      store: "redis",
      source: { open: (prefix, _from, events) => this.open(prefix, events) },
      deadlineMs: REACH_TIMEOUT_MS,
    });
    // Polls go through the command connection: while it is down, waiting callers are on the deadline.
    options.cmd.redis.on("close", () => {
      if (this.mode === "poll") this.watches.disconnected(() => options.cmd.unreachable());
    });
    options.cmd.redis.on("ready", () => {
      if (this.mode === "poll") this.watches.connected();
    });
  }

  wait(prefix: string, waitIndex: number, signal: AbortSignal): Promise<number> {
    return this.watches.wait(prefix, waitIndex, signal);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.epoch++;
    await this.watches.close();
    await this.sub?.close();
  }

  private open(prefix: string, events: FeedEvents): Feed {
    if (this.mode === "poll") return new ListingFeed(prefix, this.polling, events);
    const subscription: Subscription = { glob: this.options.keys.watched(prefix), covers: keyFilter([prefix]), events };
    this.subscriptions.add(subscription);
    if (this.subUp && this.sub) this.subscribe(this.sub, subscription, this.epoch);
    else {
      events.disconnected(this.subUnreachable);
      this.startSubscriber();
    }
    return { cancel: async () => this.unsubscribe(subscription) };
  }

  private startSubscriber(): void {
    if (this.sub) return;
    const sub = new Link(this.options.nodes, this.options.auth, "watch");
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
    const epoch = ++this.epoch;
    try {
      await enableNotifications(sub.redis);
    } catch (err) {
      if (epoch !== this.epoch || this.closed) return;
      if (isReplyError(err)) this.fallBackToPolling(err as Error);
      // No answer in time on a connection that looks up: start over on a fresh one.
      else if (sub.ready) sub.redis.disconnect(true);
      return;
    }
    if (epoch !== this.epoch || this.closed) return;
    this.subUp = true;
    for (const subscription of this.subscriptions) this.subscribe(sub, subscription, epoch);
  }

  private onSubscriberDown(): void {
    this.epoch++;
    this.subUp = false;
    for (const subscription of this.subscriptions) subscription.events.disconnected(this.subUnreachable);
  }

  /** Subscribes; once redis confirms, changes are tracked from now on (what came before is unknown). */
  private subscribe(sub: Link, subscription: Subscription, epoch: number): void {
    sub.redis.psubscribe(`__keyspace@${sub.node.db}__:${subscription.glob}`).then(
      () => {
        if (epoch === this.epoch && this.subscriptions.has(subscription)) subscription.events.start();
      },
      // The connection went down; its return subscribes again.
      (err: Error) => log.debug(`redis subscription to ${subscription.glob} failed: ${err.message}`),
    );
  }

  private unsubscribe(subscription: Subscription): void {
    this.subscriptions.delete(subscription);
    const sub = this.sub;
    if (!sub || !this.subUp || [...this.subscriptions].some((s) => s.glob === subscription.glob)) return;
    sub.redis.punsubscribe(`__keyspace@${sub.node.db}__:${subscription.glob}`).catch(() => {});
  }

  private onKeyspaceEvent(pattern: string, channel: string, event: string): void {
    // A read of a missing key (our own reads included, when the server reports them) changes nothing.
    if (event === "keymiss") return;
    const glob = pattern.replace(KEYSPACE_CHANNEL, "");
    const key = this.options.keys.fromRedis(channel.replace(KEYSPACE_CHANNEL, ""));
    for (const subscription of this.subscriptions) if (subscription.glob === glob && subscription.covers(key)) subscription.events.changed();
  }

  private fallBackToPolling(err: Error): void {
    this.mode = "poll";
    log.warning(
      `redis refused to turn on keyspace notifications (${err.message}); watching by polling every ${this.options.intervalMs / 1000}s instead. ` +
        `Set notify-keyspace-events to include ${REQUIRED_EVENTS} on the server, or allow CONFIG, for immediate updates`,
    );
    const sub = this.sub;
    this.sub = undefined;
    this.subUp = false;
    this.epoch++;
    void sub?.close();
    // Every prefix is polled from now on. One whose subscription had started (a subscriber that came
    // back from a failover refusing) missed what changed meanwhile: its first poll wakes its callers.
    this.watches.reopen();
  }
}

/** Adds the event classes a watch needs to the server's notify-keyspace-events, keeping what is there. */
async function enableNotifications(redis: Redis): Promise<void> {
  const reply = (await redis.config("GET", "notify-keyspace-events")) as unknown as string[];
  const current = (reply[1] ?? "").replace("A", ALIAS_A);
  const missing = [...REQUIRED_EVENTS].filter((c) => !current.includes(c));
  if (missing.length === 0) return;
  await redis.config("SET", "notify-keyspace-events", current + missing.join(""));
  log.info(`turned on redis keyspace notifications (notify-keyspace-events now includes ${REQUIRED_EVENTS}) to watch for changes`);
}
