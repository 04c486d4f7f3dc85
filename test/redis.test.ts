// The redis backend against a real redis-server: reads (strings, hashes, subtrees, separator, db,
// auth, sockets, failover), watches (events, boundaries, many callers, connection count), the polling
// fallback when CONFIG is refused, and what happens when the server dies and comes back.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { Redis } from "ioredis";
import { connect } from "../src/backends/redis.ts";
import { KeyMapper } from "../src/backends/redis-keys.ts";
import { readValues } from "../src/backends/redis-read.ts";
import type { StoreClient } from "../src/store.ts";
import { ConfdError } from "../src/errors.ts";
import { configureLog } from "../src/log.ts";
import { defaults, type Config } from "../src/options.ts";
import { freePort, settlesAtOnce } from "./helpers.ts";
import { startRedis, type RedisServer } from "./redis-server.ts";

const servers: RedisServer[] = [];
const admins: Redis[] = [];
const clients: StoreClient[] = [];

async function server(options?: Parameters<typeof startRedis>[0]): Promise<RedisServer> {
  const s = await startRedis(options);
  servers.push(s);
  return s;
}

/** A plain ioredis connection for seeding and inspecting, outside the code under test. */
function admin(s: RedisServer, options: { db?: number; password?: string } = {}): Redis {
  const r = new Redis({ host: "127.0.0.1", port: s.port, ...options });
  admins.push(r);
  return r;
}

async function client(overrides: Partial<Config>): Promise<StoreClient> {
  const c = await connect({ ...defaults(), backend: "redis", ...overrides });
  clients.push(c);
  return c;
}

const never = new AbortController().signal;

/** ESTABLISHED TCP sockets (client side) to this port on 127.0.0.1, from /proc/net/tcp. */
function establishedTo(port: number): number {
  const hexPort = port.toString(16).toUpperCase().padStart(4, "0");
  return readFileSync("/proc/net/tcp", "utf8")
    .split("\n")
    .slice(1)
    .filter((line) => {
      const f = line.trim().split(/\s+/);
      return f[2] === `0100007F:${hexPort}` && f[3] === "01";
    }).length;
}

async function clientNames(r: Redis): Promise<string[]> {
  const list = (await r.client("LIST")) as string;
  return [...list.matchAll(/ name=(\S*)/g)].map((m) => m[1]!);
}

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  for (const r of admins) r.disconnect();
  await Promise.all(servers.map((s) => s.stop()));
});

describe("reads", () => {
  let s: RedisServer;
  let r: Redis;
  beforeAll(async () => {
    s = await server();
    r = admin(s);
    await r.mset("/app", "root", "/app/db/host", "db.local", "/app/db/port", "5432", "/application/x", "other", "/top", "t");
    await r.hset("/app/cfg", { a: "1", b: "2" });
    await r.rpush("/app/list", "not", "a", "value");
    await r.mset("/g[1]/a", "right", "/g1/a", "wrong", "/w\\in/x", "backslash");
  });

  test("string keys, hash fields and subtrees, on a / boundary", async () => {
    const c = await client({ nodes: [`127.0.0.1:${s.port}`] });
    expect(Object.fromEntries(await c.getValues(["/app"]))).toEqual({
      "/app": "root",
      "/app/db/host": "db.local",
      "/app/db/port": "5432",
      "/app/cfg/a": "1",
      "/app/cfg/b": "2",
    });
    expect(Object.fromEntries(await c.getValues(["/app/db/host"]))).toEqual({ "/app/db/host": "db.local" });
    expect(Object.fromEntries(await c.getValues(["/app/cfg/"]))).toEqual({ "/app/cfg/a": "1", "/app/cfg/b": "2" });
    expect(Object.fromEntries(await c.getValues(["/app/db", "/top", "/missing"]))).toEqual({
      "/app/db/host": "db.local",
      "/app/db/port": "5432",
      "/top": "t",
    });
    const all = await c.getValues(["/"]);
    expect(all.get("/application/x")).toBe("other");
    expect(all.get("/app/cfg/b")).toBe("2");
    expect(all.has("/app/list")).toBe(false);
  });

  test("glob characters in keys are matched literally", async () => {
    const c = await client({ nodes: [`127.0.0.1:${s.port}`] });
    expect(Object.fromEntries(await c.getValues(["/g[1]"]))).toEqual({ "/g[1]/a": "right" });
    expect(Object.fromEntries(await c.getValues(["/w\\in"]))).toEqual({ "/w\\in/x": "backslash" });
  });

  test("192 keys come back in a few round trips, not one per key", async () => {
    const many: Record<string, string> = {};
    for (let i = 0; i < 192; i++) many[`/many/k${i}`] = `v${i}`;
    await r.mset(many);
    // The read is given pipelines only, so that each round trip is a pipeline it asks for.
    const read = async (keys: string[]) => {
      let roundTrips = 0;
      const values = await readValues({ pipeline: () => (roundTrips++, r.pipeline()) }, new KeyMapper("/"), keys);
      return { roundTrips, values };
    };
    const subtree = await read(["/many"]);
    expect(subtree.values.size).toBe(192);
    expect(subtree.values.get("/many/k191")).toBe("v191");
    // As many round trips as for a subtree of two keys.
    const small = await read(["/app/db"]);
    expect(small.values.size).toBe(2);
    expect(subtree.roundTrips).toBe(small.roundTrips);
  });

  test("separator: /a/b is stored as a:b", async () => {
    await r.mset("sep:db:host", "h", "separator:x", "no");
    await r.hset("sep:cfg", { a: "1" });
    const c = await client({ nodes: [`127.0.0.1:${s.port}`], separator: ":" });
    expect(Object.fromEntries(await c.getValues(["/sep"]))).toEqual({ "/sep/db/host": "h", "/sep/cfg/a": "1" });
    expect(Object.fromEntries(await c.getValues(["/sep/db/host"]))).toEqual({ "/sep/db/host": "h" });
  });

  test("host:port/db selects the database", async () => {
    const r3 = admin(s, { db: 3 });
    await r3.set("/dbsel/k", "three");
    await r.set("/dbsel/k", "zero");
    const c = await client({ nodes: [`127.0.0.1:${s.port}/3`] });
    expect(Object.fromEntries(await c.getValues(["/"]))).toEqual({ "/dbsel/k": "three" });
  });

  test("a unix socket path as node", async () => {
    const c = await client({ nodes: [s.socket] });
    expect((await c.getValues(["/top"])).get("/top")).toBe("t");
  });

  test("several nodes: the next one is tried when one cannot be reached", async () => {
    const c = await client({ nodes: [`127.0.0.1:${freePort()}`, `127.0.0.1:${s.port}`] });
    expect((await c.getValues(["/top"])).get("/top")).toBe("t");
  });
});

describe("auth", () => {
  const password = "pa55-w0rd-secret";
  let s: RedisServer;
  beforeAll(async () => {
    s = await server({ password });
    await admin(s, { password }).set("/auth/k", "v");
  });

  test("--password, or --client-key as confd reads it", async () => {
    const c = await client({ nodes: [`127.0.0.1:${s.port}`], password });
    expect(Object.fromEntries(await c.getValues(["/auth"]))).toEqual({ "/auth/k": "v" });
    const legacy = await client({ nodes: [`127.0.0.1:${s.port}`], clientKey: password });
    expect(Object.fromEntries(await legacy.getValues(["/auth"]))).toEqual({ "/auth/k": "v" });
  });

  test("a wrong password is reported with the node, never the password", async () => {
    const wrong = "wrong-" + password;
    const c = await client({ nodes: [`127.0.0.1:${s.port}`], password: wrong });
    const err = await c.getValues(["/auth"]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfdError);
    expect((err as Error).message).toContain(`127.0.0.1:${s.port}`);
    expect((err as Error).message).not.toContain(wrong);
  });
});

describe("watches with keyspace notifications", () => {
  let s: RedisServer;
  let r: Redis;
  let c: StoreClient;
  beforeAll(async () => {
    s = await server({ notifications: false, allowConfig: true });
    r = admin(s);
    c = await client({ nodes: [`127.0.0.1:${s.port}`] });
  });

  test("notifications off and CONFIG allowed: the backend turns them on", async () => {
    expect(await r.config("GET", "notify-keyspace-events")).toEqual(["notify-keyspace-events", ""]);
    const index = await c.watchPrefix("/on", 0, never);
    const flags = ((await r.config("GET", "notify-keyspace-events")) as string[])[1]!;
    for (const flag of "K$hgxe") expect(flags.replace("A", "g$lshzxet")).toContain(flag);
    const next = c.watchPrefix("/on", index, never);
    await r.set("/on/k", "1");
    expect(await next).toBeGreaterThan(index);
  });

  test("set, hset, hdel, del, expire and expiry each resolve a watch", async () => {
    let index = await c.watchPrefix("/ev", 0, never);
    const steps: [string, () => Promise<unknown>][] = [
      ["set", () => r.set("/ev/a", "1")],
      ["hset", () => r.hset("/ev/h", "f", "1")],
      ["hset update", () => r.hset("/ev/h", "f", "2")],
      ["hset another", () => r.hset("/ev/h", "g", "1")],
      // Not the last field: that would delete the hash too, a second event.
      ["hdel", () => r.hdel("/ev/h", "f")],
      ["del", () => r.del("/ev/a")],
      ["set b", () => r.set("/ev/b", "x")],
      ["pexpire", () => r.pexpire("/ev/b", 100)],
      ["expiry", async () => {}],
    ];
    for (const [name, step] of steps) {
      const next = c.watchPrefix("/ev", index, never);
      await step();
      const got = await next;
      expect(got).toBe(index + 1);
      index = got;
    }
    expect(await r.exists("/ev/b")).toBe(0);
  });

  test("/application does not fire a watch on /app", async () => {
    const index = await c.watchPrefix("/app", 0, never);
    const marker = await c.watchPrefix("/zz", 0, never);
    let fired = false;
    const pending = c.watchPrefix("/app", index, never).then((i) => ((fired = true), i));
    await r.set("/application", "x");
    await r.set("/application/y", "x");
    // Events arrive in order on one connection: once the marker's is in, /application's were too.
    const markerNext = c.watchPrefix("/zz", marker, never);
    await r.set("/zz/m", "1");
    await markerNext;
    expect(fired).toBe(false);
    expect(await c.watchPrefix("/app", 0, never)).toBe(index);
    await r.set("/app", "mine");
    expect(await pending).toBe(index + 1);
  });

  test("separator mode watches the mapped names, on the boundary", async () => {
    const sep = await client({ nodes: [`127.0.0.1:${s.port}`], separator: ":" });
    const index = await sep.watchPrefix("/sw", 0, never);
    const next = sep.watchPrefix("/sw", index, never);
    await r.set("swx:other", "1");
    await r.set("sw:k", "1");
    expect(await next).toBe(index + 1);
  });

  test("a watch in db 2 sees changes in db 2 only", async () => {
    const d2 = await client({ nodes: [`127.0.0.1:${s.port}/2`] });
    const index = await d2.watchPrefix("/d", 0, never);
    const next = d2.watchPrefix("/d", index, never);
    await r.set("/d/k", "db0");
    await admin(s, { db: 2 }).set("/d/k", "db2");
    expect(await next).toBe(index + 1);
  });

  test("a change between two calls resolves the next call at once", async () => {
    const index = await c.watchPrefix("/gap", 0, never);
    const marker = await c.watchPrefix("/gapm", 0, never);
    await r.set("/gap/k", "1");
    const markerNext = c.watchPrefix("/gapm", marker, never);
    await r.set("/gapm/k", "1");
    await markerNext;
    const next = c.watchPrefix("/gap", index, never);
    expect(await settlesAtOnce(next)).toBe(true);
    expect(await next).toBe(index + 1);
  });

  test("10 callers, 5 updates in a row: every caller sees every update", async () => {
    const stop = new AbortController();
    const latest = Array.from({ length: 10 }, () => 0);
    const waiting: (() => void)[] = [];
    const notify = () => waiting.splice(0).forEach((f) => f());
    const loops = latest.map(async (_, n) => {
      let index = 0;
      try {
        for (;;) {
          index = await c.watchPrefix("/many10", index, stop.signal);
          latest[n] = index;
          notify();
        }
      } catch (err) {
        if (!stop.signal.aborted) throw err;
      }
    });
    const allPast = (threshold: number) =>
      new Promise<void>((resolve) => {
        const check = () => (latest.every((i) => i > threshold) ? resolve() : waiting.push(check));
        check();
      });
    await allPast(0);
    for (let update = 1; update <= 5; update++) {
      const before = await c.watchPrefix("/many10", 0, never);
      await r.set("/many10/k", String(update));
      await allPast(before);
    }
    stop.abort();
    await Promise.all(loops);
  });

  test("abort rejects with the signal's reason", async () => {
    const index = await c.watchPrefix("/abort", 0, never);
    const ac = new AbortController();
    const pending = c.watchPrefix("/abort", index, ac.signal);
    const reason = new Error("stopping");
    ac.abort(reason);
    expect(await settlesAtOnce(pending)).toBe(true);
    expect(await pending.catch((e: unknown) => e)).toBe(reason);
  });

  test("2 connections at most, with 50 watches and reads in flight; none after close", async () => {
    const before = establishedTo(s.port);
    const ours = async () => (await clientNames(r)).filter((n) => n.startsWith("confd-")).sort();
    const namesBefore = await ours();
    const own = await connect({ ...defaults(), backend: "redis", nodes: [`127.0.0.1:${s.port}`] });
    const prefixes = Array.from({ length: 50 }, (_, i) => `/conn/p${i}`);
    const ac = new AbortController();
    const indexes = await Promise.all(prefixes.map((p) => own.watchPrefix(p, 0, never)));
    const pending = prefixes.map((p, i) => own.watchPrefix(p, indexes[i]!, ac.signal).catch(() => 0));
    await Promise.all(Array.from({ length: 20 }, () => own.getValues(["/conn"])));
    const during = establishedTo(s.port) - before;
    console.log(`redis connections with 50 watches and 20 reads in flight: ${during}`);
    expect(during).toBe(2);
    expect((await ours()).length - namesBefore.length).toBe(2);
    await r.set("/conn/p7/k", "1");
    expect(await pending[7]!).toBe(indexes[7]! + 1);
    ac.abort();
    await Promise.all(pending);
    // close() returns once redis has closed both connections.
    await own.close();
    expect(await ours()).toEqual(namesBefore);
  });
});

describe("CONFIG refused, notifications off", () => {
  test("one warning, then polling at --interval finds changes", async () => {
    const s = await server({ notifications: false, allowConfig: false });
    const r = admin(s);
    const lines: string[] = [];
    configureLog({ sink: (line) => lines.push(line) });
    try {
      const c = await client({ nodes: [`127.0.0.1:${s.port}`], interval: 1 });
      const [a, b] = await Promise.all([c.watchPrefix("/pa", 0, never), c.watchPrefix("/pb", 0, never)]);
      const next = c.watchPrefix("/pa", a, never);
      const nextB = c.watchPrefix("/pb", b, never);
      await r.set("/pa/k", "1");
      expect(await next).toBe(a + 1);
      await r.hset("/pb/h", "f", "1");
      expect(await nextB).toBe(b + 1);
      const warnings = lines.filter((l) => l.includes("WARNING"));
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toContain("polling every 1s");
      // Polling needs no subscriber: one connection.
      expect((await clientNames(r)).filter((n) => n.startsWith("confd-"))).toEqual(["confd-commands"]);
    } finally {
      configureLog({ sink: (line) => process.stderr.write(line) });
    }
  });
});

describe("server death and restart", () => {
  let s: RedisServer;
  let c: StoreClient;
  beforeAll(async () => {
    s = await server({ notifications: false, allowConfig: true });
    const r = new Redis({ host: "127.0.0.1", port: s.port });
    await r.set("/r/k", "1");
    await r.quit();
    c = await client({ nodes: [`127.0.0.1:${s.port}`] });
  });

  test("after a restart, pending and next calls resolve, and notifications are back on", async () => {
    const index = await c.watchPrefix("/r", 0, never);
    const idle = await c.watchPrefix("/r2", 0, never);
    const pending = c.watchPrefix("/r", index, never);
    await s.kill();
    await s.restart();
    expect(await pending).toBeGreaterThan(index);
    // Nobody waited on /r2 during the outage: its next call resolves at once.
    expect(await c.watchPrefix("/r2", idle, never)).toBeGreaterThan(idle);
    expect((await c.getValues(["/r"])).get("/r/k")).toBe("1");
    // The restarted server forgot the CONFIG SET: the backend set it again.
    const now = await c.watchPrefix("/r", 0, never);
    const next = c.watchPrefix("/r", now, never);
    const r = new Redis({ host: "127.0.0.1", port: s.port });
    await r.set("/r/k", "2");
    await r.quit();
    expect(await next).toBe(now + 1);
  });

  test("a dead server: reads and watches reject (within the ~5 s deadline); back up, the retried watch resolves", async () => {
    const index = await c.watchPrefix("/r", 0, never);
    await s.kill();
    const [watchErr, readErr] = await Promise.all([
      c.watchPrefix("/r", index, never).catch((e: unknown) => e),
      c.getValues(["/r"]).catch((e: unknown) => e),
    ]);
    for (const err of [watchErr, readErr]) {
      expect(err).toBeInstanceOf(ConfdError);
      expect((err as Error).message).toContain(`cannot reach redis at 127.0.0.1:${s.port}`);
    }
    await s.restart();
    expect(await c.watchPrefix("/r", index, never)).toBeGreaterThan(index);
    expect((await c.getValues(["/r"])).get("/r/k")).toBe("2");
  });
});
