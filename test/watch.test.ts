// The watch data plane against an in-memory store that keeps the StoreClient contract (a stand-in for
// our own interface, not for any real store: those are tested in etcd/redis/consul tests).
import { afterEach, describe, expect, test } from "bun:test";
import { keyFilter } from "../src/keys.ts";
import type { StoreClient } from "../src/store.ts";
import { configureLog } from "../src/log.ts";
import type { Job } from "../src/processor.ts";
import type { ResourceSpec } from "../src/resource.ts";
import { planWatches, runWatch } from "../src/watch.ts";

class MemoryStore implements StoreClient {
  readonly data = new Map<string, string>();
  revision = 1;
  down = false;
  watchCalls = 0;
  inflightWatches = 0;
  maxInflightWatches = 0;
  private changed: { key: string; rev: number }[] = [];
  private waiters = new Set<() => void>();

  set(key: string, value: string) {
    this.data.set(key, value);
    this.changed.push({ key, rev: ++this.revision });
    for (const w of this.waiters) w();
  }

  setDown(down: boolean) {
    this.down = down;
    for (const w of this.waiters) w();
  }

  async getValues(keys: readonly string[]) {
    if (this.down) throw new Error("connection refused");
    const wanted = keyFilter(keys);
    return new Map([...this.data].filter(([k]) => wanted(k)));
  }

  async watchPrefix(prefix: string, waitIndex: number, signal: AbortSignal): Promise<number> {
    this.watchCalls++;
    this.inflightWatches++;
    this.maxInflightWatches = Math.max(this.maxInflightWatches, this.inflightWatches);
    try {
      const under = keyFilter([prefix]);
      for (;;) {
        if (signal.aborted) throw signal.reason;
        if (this.down) throw new Error("connection refused");
        if (waitIndex === 0) return this.revision;
        const hit = this.changed.find((c) => c.rev > waitIndex && under(c.key));
        if (hit) return this.revision;
        await new Promise<void>((resolve) => {
          const wake = () => (this.waiters.delete(wake), signal.removeEventListener("abort", wake), resolve());
          this.waiters.add(wake);
          signal.addEventListener("abort", wake, { once: true });
        });
      }
    } finally {
      this.inflightWatches--;
    }
  }

  async close() {}
}

function resource(name: string, keys: string[], prefix = "/"): ResourceSpec {
  return { name, file: `${name}.toml`, src: "", dest: `/out/${name}`, keys, prefix, checkCmd: null, reloadCmd: null, checkTimeoutMs: 1, reloadTimeoutMs: 1, engine: "handlebars" };
}

/** A stand-in worker recording what it was asked to sync; `gate` can hold a sync open. */
function recordingJob(r: ResourceSpec) {
  const syncs: Record<string, string>[] = [];
  const events = new EventTarget();
  let gate: Promise<void> | undefined;
  const job: Job = {
    resource: r,
    worker: {
      async sync(values) {
        syncs.push(Object.fromEntries(values));
        events.dispatchEvent(new Event("sync"));
        if (gate) await gate;
        return { changed: true, outOfSync: true };
      },
    },
  };
  const nextSync = (count: number) =>
    new Promise<void>((resolve) => {
      if (syncs.length >= count) return resolve();
      const on = () => syncs.length >= count && (events.removeEventListener("sync", on), resolve());
      events.addEventListener("sync", on);
    });
  return { job, syncs, nextSync, hold: (p: Promise<void> | undefined) => (gate = p) };
}

const logs: string[] = [];
const logged = new EventTarget();
configureLog({
  level: "info",
  sink: (line) => {
    logs.push(line);
    logged.dispatchEvent(new Event("line"));
  },
});
const waitForLog = (text: string) =>
  new Promise<void>((resolve) => {
    const check = () => logs.some((l) => l.includes(text)) && (logged.removeEventListener("line", check), resolve());
    logged.addEventListener("line", check);
    check();
  });
afterEach(() => {
  logs.length = 0;
});

describe("planning", () => {
  test("one watch per subtree, shared; nested keys covered; a path boundary between /app and /application", () => {
    const a = recordingJob(resource("a", ["/app"])).job;
    const b = recordingJob(resource("b", ["/app"])).job;
    const c = recordingJob(resource("c", ["/x"], "/app")).job;
    const d = recordingJob(resource("d", ["/application/y"])).job;
    const plan = planWatches([a, b, c, d]);
    expect(plan.map((w) => w.prefix)).toEqual(["/app", "/application/y"]);
    expect(plan[0]!.jobs).toEqual([a, b, c]);
    expect(plan[1]!.jobs).toEqual([d]);
  });
});

describe("runWatch", () => {
  test("first render at start; a change reaches the resources that read it; one watch for ten resources", async () => {
    const store = new MemoryStore();
    store.set("/app/v", "1");
    store.set("/other/v", "x");
    const readers = Array.from({ length: 10 }, (_, i) => recordingJob(resource(`r${i}`, ["/app"])));
    const other = recordingJob(resource("other", ["/v"], "/other"));
    const stop = new AbortController();
    const running = runWatch(store, [...readers.map((r) => r.job), other.job], stop.signal);
    await Promise.all([...readers.map((r) => r.nextSync(1)), other.nextSync(1)]);
    expect(readers[0]!.syncs[0]).toEqual({ "/app/v": "1" });
    expect(other.syncs[0]).toEqual({ "/v": "x" });

    store.set("/app/v", "2");
    await Promise.all(readers.map((r) => r.nextSync(2)));
    for (const r of readers) expect(r.syncs.at(-1)).toEqual({ "/app/v": "2" });
    expect(other.syncs).toHaveLength(1);
    expect(store.maxInflightWatches).toBe(2);
    stop.abort();
    await running;
  });

  test("a burst of changes during a sync is coalesced into one more sync with the latest values", async () => {
    const store = new MemoryStore();
    store.set("/app/v", "0");
    const r = recordingJob(resource("r", ["/app"]));
    const stop = new AbortController();
    const running = runWatch(store, [r.job], stop.signal);
    await r.nextSync(1);
    const release = Promise.withResolvers<void>();
    r.hold(release.promise);
    store.set("/app/v", "1");
    await r.nextSync(2);
    for (let i = 2; i <= 6; i++) store.set("/app/v", String(i));
    r.hold(undefined);
    release.resolve();
    await r.nextSync(3);
    expect(r.syncs[2]).toEqual({ "/app/v": "6" });
    stop.abort();
    await running;
    expect(r.syncs).toHaveLength(3);
  });

  test("store down: one line when lost, one when restored, and the files converge to what changed meanwhile", async () => {
    const store = new MemoryStore();
    store.set("/app/v", "1");
    const r = recordingJob(resource("r", ["/app"]));
    const stop = new AbortController();
    const running = runWatch(store, [r.job], stop.signal);
    await r.nextSync(1);
    store.setDown(true);
    await waitForLog("store connection lost");
    store.data.set("/app/v", "2");
    store.set("/app/v", "3");
    store.setDown(false);
    await waitForLog("store connection restored");
    await r.nextSync(2);
    expect(r.syncs.at(-1)).toEqual({ "/app/v": "3" });
    stop.abort();
    await running;
    expect(logs.filter((l) => l.includes("store connection lost"))).toHaveLength(1);
    expect(logs.filter((l) => l.includes("store connection restored"))).toHaveLength(1);
  });
});
