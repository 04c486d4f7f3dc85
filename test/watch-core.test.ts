// The watch core against scripted feeds: the test plays the store, reporting through the same events a
// backend's feed uses (FeedEvents) or answering each listing the core asks for. The backends' own
// tests run the core against real etcd and redis servers and the Consul double.
import { describe, expect, test } from "bun:test";
import { ConfdError } from "../src/errors.ts";
import { every, listingWatch, SharedWatches, type FeedEvents, type Listing, type WatchSource } from "../src/watch-core.ts";
import { settlesAtOnce } from "./helpers.ts";

const never = new AbortController().signal;

/** A change-feed source whose feeds the test drives. */
function feeds() {
  const opened: { prefix: string; from: number; events: FeedEvents; cancelled: boolean }[] = [];
  const source: WatchSource = {
    open(prefix, from, events) {
      const feed = { prefix, from, events, cancelled: false };
      opened.push(feed);
      return { cancel: async () => void (feed.cancelled = true) };
    },
  };
  return { opened, watches: new SharedWatches({ store: "test", source, deadlineMs: 1 }) };
}

describe("change feeds", () => {
  test("callers on one prefix share one feed, answered with the index of the change", async () => {
    const { opened, watches } = feeds();
    const first = watches.wait("/app", 0, never);
    opened[0]!.events.start(10);
    expect(await first).toBe(10);
    const callers = [watches.wait("/app", 10, never), watches.wait("/app/", 10, never), watches.wait("/app", 10, never)];
    opened[0]!.events.changed(12);
    expect(await Promise.all(callers)).toEqual([12, 12, 12]);
    expect(opened.map((f) => f.prefix)).toEqual(["/app"]);
  });

  test("a change while nobody waits answers the next call at once; so does an index older than the feed's start", async () => {
    const { opened, watches } = feeds();
    const pending = watches.wait("/app", 5, never);
    expect(opened[0]!.from).toBe(5);
    // A feed that replays after `from` says that a caller holding less cannot be told what came before.
    opened[0]!.events.changed(5);
    opened[0]!.events.changed(7);
    expect(await pending).toBe(7);
    opened[0]!.events.changed(9);
    const next = watches.wait("/app", 7, never);
    expect(await settlesAtOnce(next)).toBe(true);
    expect(await next).toBe(9);
  });

  test("without store indexes a counter stands in; starting over after a gap wakes every caller", async () => {
    const { opened, watches } = feeds();
    const first = watches.wait("/app", 0, never);
    opened[0]!.events.start();
    expect(await first).toBe(1);
    const waiting = watches.wait("/app", 1, never);
    opened[0]!.events.changed();
    expect(await waiting).toBe(2);
    const acrossGap = watches.wait("/app", 2, never);
    opened[0]!.events.disconnected(() => new ConfdError("down"));
    opened[0]!.events.start();
    expect(await acrossGap).toBe(3);
  });

  test("abort rejects at once; the last caller's abort ends the feed, whose bookkeeping answers a caller who comes back", async () => {
    const { opened, watches } = feeds();
    const stop = new AbortController();
    const stays = watches.wait("/app", 3, never);
    const leaves = watches.wait("/app", 3, stop.signal);
    const reason = new Error("stopped");
    stop.abort(reason);
    expect(await settlesAtOnce(leaves)).toBe(true);
    expect(await leaves.catch((e: unknown) => e)).toBe(reason);
    expect(opened[0]!.cancelled).toBe(false);
    opened[0]!.events.changed(4);
    expect(await stays).toBe(4);

    const last = new AbortController();
    const alone = watches.wait("/app", 4, last.signal);
    last.abort(reason);
    await alone.catch(() => {});
    expect(opened[0]!.cancelled).toBe(true);
    // Late reports of a feed let go change nothing.
    opened[0]!.events.changed(99);
    expect(await watches.wait("/app", 3, never)).toBe(4);
    const again = watches.wait("/app", 4, never);
    expect(opened).toHaveLength(2);
    opened[1]!.events.changed(6);
    expect(await again).toBe(6);
  });

  test("a caller on a disconnected feed is told the store cannot be reached after the deadline", async () => {
    const { opened, watches } = feeds();
    const pending = watches.wait("/app", 3, never);
    opened[0]!.events.disconnected(() => new ConfdError("cannot reach the test store"));
    expect(await pending.catch((e: unknown) => (e as Error).message)).toBe("cannot reach the test store");
    // The feed stays: once it reconnects, the caller's retry is answered.
    const retry = watches.wait("/app", 3, never);
    opened[0]!.events.connected();
    opened[0]!.events.changed(5);
    expect(await retry).toBe(5);
    expect(opened).toHaveLength(1);
  });

  test("a feed that fails rejects its callers, and the next call opens a new one", async () => {
    const { opened, watches } = feeds();
    const pending = watches.wait("/app", 3, never);
    opened[0]!.events.failed(new ConfdError("refused"));
    await expect(pending).rejects.toThrow("refused");
    expect(opened[0]!.cancelled).toBe(true);
    const next = watches.wait("/app", 3, never);
    expect(opened).toHaveLength(2);
    opened[1]!.events.changed(4);
    expect(await next).toBe(4);
  });

  test("close rejects waiting and later callers, and ends every feed", async () => {
    const { opened, watches } = feeds();
    const pending = [watches.wait("/a", 1, never), watches.wait("/b", 1, never)];
    await watches.close();
    for (const p of pending) await expect(p).rejects.toThrow("the test client is closed");
    await expect(watches.wait("/a", 1, never)).rejects.toThrow("the test client is closed");
    expect(opened.every((f) => f.cancelled)).toBe(true);
  });
});

/** A listing source whose answers the test gives, one request at a time. */
function listings() {
  const requests: { index: number; answer(listing: Listing): void; signal: AbortSignal }[] = [];
  const arrived = new EventTarget();
  const watches = new SharedWatches({
    store: "test",
    source: listingWatch({
      list: (_prefix, index, signal) =>
        new Promise((resolve) => {
          requests.push({ index, answer: resolve, signal });
          arrived.dispatchEvent(new Event("request"));
        }),
      pace: () => () => 0,
    }),
    deadlineMs: 1,
  });
  /** The request number `n` (from 1), once the core has made it. */
  const request = (n: number) =>
    new Promise<(typeof requests)[number]>((resolve) => {
      const check = () => requests.length >= n && (arrived.removeEventListener("request", check), resolve(requests[n - 1]!));
      arrived.addEventListener("request", check);
      check();
    });
  return { watches, requests, request };
}

const values = (entries: Record<string, string>) => new Map(Object.entries(entries));

describe("listings", () => {
  test("callers wake when the values under the prefix differ, not when the index moved for other keys", async () => {
    const { watches, request } = listings();
    const first = watches.wait("/app", 0, never);
    (await request(1)).answer({ index: 3, values: values({ "/app/x": "1" }) });
    expect(await first).toBe(3);
    const pending = watches.wait("/app", 3, never);
    const blocking = await request(2);
    expect(blocking.index).toBe(3);
    // "/application" is no key under "/app", and "/app/x" kept its value.
    blocking.answer({ index: 4, values: values({ "/app/x": "1", "/application/y": "2" }) });
    const again = await request(3);
    expect(again.index).toBe(4);
    again.answer({ index: 5, values: values({ "/app/x": "2" }) });
    expect(await pending).toBe(5);
  });

  test("an index that went backwards wakes every caller, a later one still holding the old index too; 0 counts as 1", async () => {
    const { watches, request } = listings();
    const first = watches.wait("/app", 0, never);
    (await request(1)).answer({ index: 9, values: values({ "/app/x": "1" }) });
    expect(await first).toBe(9);
    const pending = watches.wait("/app", 9, never);
    (await request(2)).answer({ index: 4, values: values({ "/app/x": "1" }) });
    expect(await pending).toBe(4);
    expect(await watches.wait("/app", 9, never)).toBe(4);
    const next = watches.wait("/app", 4, never);
    (await request(3)).answer({ index: 0, values: values({ "/app/x": "1" }) });
    expect(await next).toBe(1);
  });

  test("without store indexes a counter stands in", async () => {
    const { watches, request } = listings();
    const first = watches.wait("/app", 0, never);
    (await request(1)).answer({ values: values({ "/app/x": "1" }) });
    expect(await first).toBe(1);
    const pending = watches.wait("/app", 1, never);
    (await request(2)).answer({ values: values({ "/app/x": "1" }) });
    (await request(3)).answer({ values: values({ "/app/x": "2" }) });
    expect(await pending).toBe(2);
  });

  test("it lists only while someone waits: the last caller's abort cancels the request in flight", async () => {
    const { watches, requests, request } = listings();
    const first = watches.wait("/app", 0, never);
    (await request(1)).answer({ index: 2, values: values({}) });
    await first;
    // Answered, nobody waits: no further request, though the pace would allow one at once (a loop
    // going on would have asked before the event loop turns).
    await new Promise((resolve) => setImmediate(resolve));
    expect(requests).toHaveLength(1);
    const stop = new AbortController();
    const pending = watches.wait("/app", 2, stop.signal);
    const held = await request(2);
    stop.abort(new Error("stopped"));
    await expect(pending).rejects.toThrow("stopped");
    expect(held.signal.aborted).toBe(true);
  });
});

test("every(): the first listing at once, then one an interval after the last one started", () => {
  let now = 0;
  const pace = every(1000, () => now);
  expect(pace()).toBe(0);
  now = 300;
  expect(pace()).toBe(700);
  now = 5000;
  expect(pace()).toBe(0);
});
