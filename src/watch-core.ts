// The watch core: everything a backend's watchPrefix needs besides the store's own protocol. Callers
// on one prefix share one store watch (one etcd watcher, one redis subscription, one consul blocking
// loop, however many callers). Per prefix the core keeps the index bookkeeping and answers each
// caller from it: at once when something changed after the caller's index, else when it does. It
// rejects callers on abort, on close, when the store refuses the watch, and when the store stays
// unreachable past the deadline; the data plane (watch.ts) then retries with backoff, and a watch
// that comes back after missing changes wakes its callers so that they re-read.
//
// A backend supplies one primitive per prefix, a feed, of one of two kinds:
// - a change feed reports changes as they happen (an etcd watch, a redis keyspace subscription);
// - a listing (a consul blocking query, a poll) is read here in a loop while anyone waits, and
//   compared with the previous one: see listingWatch().
import { ConfdError } from "./errors.ts";
import { keyFilter, normalizeKey } from "./keys.ts";

/** What a feed tells the core about its prefix. Reports from a feed the core has let go are ignored. */
export interface FeedEvents {
  /**
   * Tracking starts, or starts over, here: what happened before is unknown, so every caller re-reads,
   * and a caller without an index is given this one. `index` is the store's; a store without
   * indexes leaves it out and a counter stands in. Implies connected.
   */
  start(index?: number): void;
  /**
   * Callers holding an index below `index` have something to read: a change under the prefix at
   * that index, or the point up to which the feed may have missed changes. A store without indexes
   * leaves it out: the counter moves on.
   */
  changed(index?: number): void;
  /** Receiving again, having missed nothing. */
  connected(): void;
  /**
   * Not receiving, or not yet: a caller still waiting after the deadline is rejected with
   * `unreachable()` (called then, so the feed may also move its client to another node).
   */
  disconnected(unreachable: () => ConfdError): void;
  /** The feed cannot go on (the store refused it): callers get `err`, and the next call opens a new feed. */
  failed(err: unknown): void;
}

/** A store's watch on one prefix. It counts as connected until it reports otherwise. */
export interface Feed {
  /** Ends it; resolves once the store confirmed, or cannot. */
  cancel(): Promise<void>;
  /** Whether anyone waits. A listing asks the store only then (a new feed is not wanted until told); a change feed leaves this out. */
  demand?(waiting: boolean): void;
}

export interface WatchSource {
  /** Opens the store's watch on `prefix` for a caller holding `from` (a feed that replays history replays what came after it). */
  open(prefix: string, from: number, events: FeedEvents): Feed;
  /** The store's current index for a caller that has none (index 0), when the store can tell it without a watch. */
  currentIndex?(): Promise<number>;
}

export interface SharedWatchesOptions {
  /** The store's name, for "the etcd client is closed". */
  store: string;
  source: WatchSource;
  /** How long a caller waits on a disconnected feed, and close() on the store's confirmations. */
  deadlineMs: number;
}

/** The watches of one store client, one per prefix, shared by every caller on it. */
export class SharedWatches {
  private readonly watches = new Map<string, PrefixWatch>();
  private closed = false;

  constructor(private readonly options: SharedWatchesOptions) {}

  /** StoreClient.watchPrefix (store.ts), for the client's feeds. */
  wait(prefix: string, waitIndex: number, signal: AbortSignal): Promise<number> {
    if (signal.aborted) return Promise.reject(signal.reason);
    if (this.closed) return Promise.reject(this.closedError());
    if (waitIndex === 0 && this.options.source.currentIndex) return this.options.source.currentIndex();
    const key = normalizeKey(prefix);
    let watch = this.watches.get(key);
    if (!watch) {
      // Kept after its feed ends, so that a caller who comes back is answered from what was seen.
      watch = new PrefixWatch(key, this.options);
      this.watches.set(key, watch);
    }
    return watch.wait(waitIndex, signal);
  }

  /** Replaces every open feed with a new one from the source, which changed how it watches. */
  reopen(): void {
    for (const watch of this.watches.values()) watch.reopen();
  }

  /** The store's connection is down for every open feed (whatever each one last reported). */
  disconnected(unreachable: () => ConfdError): void {
    for (const watch of this.watches.values()) watch.linkDown(unreachable);
  }

  /** The store's connection is back for every open feed, none of which missed anything. */
  connected(): void {
    for (const watch of this.watches.values()) watch.linkUp();
  }

  /** Rejects every caller and ends every feed, waiting for the store's confirmations up to the deadline. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const cancels = [...this.watches.values()].map((w) => w.close(this.closedError()));
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([Promise.all(cancels), new Promise((resolve) => (timer = setTimeout(resolve, this.options.deadlineMs)))]);
    clearTimeout(timer);
  }

  private closedError(): ConfdError {
    return new ConfdError(`the ${this.options.store} client is closed`);
  }
}

interface Waiter {
  after: number;
  timer?: ReturnType<typeof setTimeout>;
  resolve(index: number): void;
  reject(err: unknown): void;
}

/**
 * One prefix: its callers, its feed, and what callers are told. The feed stays open between calls
 * (a change made while nobody waits is still seen) until the last caller gives up (abort), it fails,
 * or the client closes; the bookkeeping stays after it, for callers who come back.
 */
class PrefixWatch {
  /** Callers holding an index below this one have something to read. */
  private changedAt = 0;
  /** The store's last index (or the counter, for a store without indexes). */
  private latest = 0;
  /** The feed has started: `latest` is where the store is, and a caller ahead of it holds an index from before the store went back. */
  private live = false;
  /** Set while the feed is not receiving: the error for callers once their deadline passes. */
  private down: (() => ConfdError) | undefined;
  private feed: Feed | undefined;
  /** Bumped whenever a feed is let go, so that its late reports are ignored. */
  private generation = 0;
  private readonly waiters = new Set<Waiter>();

  constructor(
    private readonly prefix: string,
    private readonly options: SharedWatchesOptions,
  ) {}

  /** What a caller holding `after` is told now, if anything. */
  private answer(after: number): number | undefined {
    if (after === 0) return this.live && !this.down ? this.latest : undefined;
    if (this.changedAt > after) return Math.max(this.changedAt, this.latest);
    // The store's index went back below the caller's (a snapshot restored): what it read may be gone.
    if (this.live && after > this.latest) return this.latest;
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
        if (this.waiters.size === 0) this.feed?.demand?.(false);
        settle();
      };
      const waiter: Waiter = {
        after,
        resolve: (index) => finish(() => resolve(index)),
        reject: (err) => finish(() => reject(err)),
      };
      const onAbort = () => {
        waiter.reject(signal.reason);
        if (this.waiters.size === 0) void this.letGo();
      };
      signal.addEventListener("abort", onAbort, { once: true });
      this.waiters.add(waiter);
      if (!this.feed) this.open(after);
      // The feed may have answered, or failed, as it opened.
      if (!this.waiters.has(waiter)) return;
      if (this.waiters.size === 1) this.feed?.demand?.(true);
      this.arm(waiter);
    });
  }

  private open(from: number): void {
    const generation = ++this.generation;
    const mine = () => this.generation === generation;
    const events: FeedEvents = {
      start: (index) => {
        if (mine()) this.start(index);
      },
      changed: (index) => {
        if (mine()) this.changed(index);
      },
      connected: () => {
        if (mine()) this.connected();
      },
      disconnected: (unreachable) => {
        if (mine()) this.disconnected(unreachable);
      },
      failed: (err) => {
        if (mine()) this.fail(err);
      },
    };
    let feed: Feed;
    try {
      feed = this.options.source.open(this.prefix, from, events);
    } catch (err) {
      this.fail(err);
      return;
    }
    if (mine()) this.feed = feed;
    else void feed.cancel();
  }

  linkDown(unreachable: () => ConfdError): void {
    if (this.feed) this.disconnected(unreachable);
  }

  linkUp(): void {
    if (this.feed) this.connected();
  }

  private start(index?: number): void {
    this.latest = index ?? this.latest + 1;
    this.changedAt = this.latest;
    this.live = true;
    this.connected();
  }

  private changed(index?: number): void {
    if (index === undefined) this.latest = this.changedAt = this.latest + 1;
    else {
      this.changedAt = Math.max(this.changedAt, index);
      this.latest = Math.max(this.latest, index);
    }
    this.settle();
  }

  private connected(): void {
    this.down = undefined;
    this.disarm();
    this.settle();
  }

  private disconnected(unreachable: () => ConfdError): void {
    this.down = unreachable;
    for (const waiter of this.waiters) this.arm(waiter);
  }

  /** A caller on a disconnected feed is told the store cannot be reached after the deadline, unless the feed comes back first. */
  private arm(waiter: Waiter): void {
    if (this.down && !waiter.timer) waiter.timer = setTimeout(() => this.expire(waiter), this.options.deadlineMs);
  }

  private expire(waiter: Waiter): void {
    if (this.down) waiter.reject(this.down());
  }

  private disarm(): void {
    for (const waiter of this.waiters) {
      clearTimeout(waiter.timer);
      waiter.timer = undefined;
    }
  }

  /** Answers every caller that can be. */
  private settle(): void {
    for (const waiter of this.waiters) {
      const ready = this.answer(waiter.after);
      if (ready !== undefined) waiter.resolve(ready);
    }
  }

  private fail(err: unknown): void {
    void this.letGo();
    for (const waiter of this.waiters) waiter.reject(err);
  }

  /** Ends the feed; the bookkeeping stays. */
  private letGo(): Promise<void> {
    this.generation++;
    const feed = this.feed;
    this.feed = undefined;
    this.live = false;
    this.down = undefined;
    this.disarm();
    return feed ? feed.cancel() : Promise.resolve();
  }

  reopen(): void {
    if (!this.feed) return;
    void this.letGo();
    this.open(this.changedAt);
    if (this.waiters.size > 0) this.feed?.demand?.(true);
  }

  close(reason: ConfdError): Promise<void> {
    for (const waiter of this.waiters) waiter.reject(reason);
    return this.letGo();
  }
}

/** A listing of the values under a prefix. */
export interface Listing {
  /** The store's index for it; a store without indexes leaves it out. */
  index?: number;
  /** The keys under the prefix with their values; others may come along (filtered here on the "/" boundary). */
  values: ReadonlyMap<string, string>;
}

/** Milliseconds to wait before the next listing; each call counts as one listing. */
export type Pace = () => number;

export interface ListingSource {
  /** The values under `prefix`. With an index above 0, a store that can holds the answer until its index passes it. */
  list(prefix: string, index: number, signal: AbortSignal): Promise<Listing>;
  /** A new pace for one prefix's loop: a rate limit, or the poll interval. */
  pace(): Pace;
}

/** A watch made of listings, for stores that can be read but not subscribed to. */
export function listingWatch(source: ListingSource): WatchSource {
  return { open: (prefix, _from, events) => new ListingFeed(prefix, source, events) };
}

/**
 * The listing loop of one prefix: it lists while anyone waits, paced by the source, and compares each
 * listing with the previous one, so that callers wake when the values under the prefix differ, not
 * whenever the store's index moved (other keys moved it, or a write stored the value already there).
 * An index that went backwards (a snapshot restored) or is 0 (a store bug Consul's documentation
 * asks clients to survive, as 1) starts over.
 */
export class ListingFeed implements Feed {
  private index = 0;
  /** A hash of the values under the prefix at the last listing; undefined before the first. */
  private fingerprint: string | undefined;
  private wanted = false;
  private running = false;
  private cancelled = false;
  /** Stops the pause or request in progress when nobody waits any more. */
  private controller: AbortController | undefined;
  private readonly within: (key: string) => boolean;
  private readonly pace: Pace;

  constructor(
    private readonly prefix: string,
    private readonly source: ListingSource,
    private readonly events: FeedEvents,
  ) {
    this.within = keyFilter([prefix]);
    this.pace = source.pace();
  }

  demand(waiting: boolean): void {
    this.wanted = waiting;
    if (!waiting) this.controller?.abort();
    else if (!this.running && !this.cancelled) void this.run();
  }

  async cancel(): Promise<void> {
    this.cancelled = true;
    this.demand(false);
  }

  private async run(): Promise<void> {
    this.running = true;
    while (this.wanted && !this.cancelled) {
      const controller = new AbortController();
      this.controller = controller;
      try {
        await pause(this.pace(), controller.signal);
        this.update(await this.source.list(this.prefix, this.index, controller.signal));
      } catch (err) {
        // Aborted: nobody waits any more (or someone came back meanwhile, and the loop goes on).
        if (!controller.signal.aborted) this.events.failed(err);
      }
    }
    this.controller = undefined;
    this.running = false;
  }

  private update(listing: Listing): void {
    const first = this.fingerprint === undefined;
    const fingerprint = fingerprintOf([...listing.values].filter(([key]) => this.within(key)));
    const differs = fingerprint !== this.fingerprint;
    this.fingerprint = fingerprint;
    if (listing.index === undefined) {
      if (first) this.events.start();
      else if (differs) this.events.changed();
      return;
    }
    const reset = listing.index < this.index || listing.index <= 0;
    this.index = Math.max(listing.index, 1);
    if (first || reset) this.events.start(this.index);
    else if (differs) this.events.changed(this.index);
  }
}

/** A pace for polling: one listing every `ms`, counted from the start of the previous one; the first at once. */
export function every(ms: number, now: () => number = () => performance.now()): Pace {
  let next = -Infinity;
  return () => {
    const at = now();
    const wait = Math.max(0, next - at);
    next = at + wait + ms;
    return wait;
  };
}

function pause(ms: number, signal: AbortSignal): Promise<void> {
  signal.throwIfAborted();
  if (ms <= 0) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

/** A hash of entries, sorted by key: equal values give equal fingerprints, whatever the order they were listed in. */
function fingerprintOf(entries: [string, string][]): string {
  entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return String(Bun.hash(JSON.stringify(entries)));
}
