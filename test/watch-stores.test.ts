// End-to-end watch mode against real etcd and redis servers: the CLI as a process, files as a user sees them.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Etcd3 } from "etcd3";
import Redis from "ioredis";
import { startEtcd, type EtcdServer } from "./etcd-server.ts";
import { Lines, spawnConfd, tempDir, writeTree } from "./helpers.ts";
import { startRedis, type RedisServer } from "./redis-server.ts";

const tmp = tempDir();
afterAll(tmp.cleanup);

interface StoreUnderTest {
  args(): string[];
  put(key: string, value: string): Promise<void>;
  del(key: string): Promise<void>;
  kill(): Promise<void>;
  restart(): Promise<void>;
}

let etcd: EtcdServer;
let etcdClient: Etcd3;
let redis: RedisServer;
let redisClient: Redis;

beforeAll(async () => {
  [etcd, redis] = await Promise.all([startEtcd(), startRedis()]);
  etcdClient = new Etcd3({ hosts: etcd.endpoint });
  redisClient = new Redis({ host: "127.0.0.1", port: redis.port, maxRetriesPerRequest: 1 });
  // The kill/restart test takes the server away under this client too; it reconnects by itself.
  redisClient.on("error", () => {});
});

afterAll(async () => {
  etcdClient?.close();
  redisClient?.disconnect();
  await Promise.all([etcd?.stop(), redis?.stop()]);
});

const stores: Record<string, () => StoreUnderTest> = {
  etcd: () => ({
    args: () => ["-backend", "etcdv3", "-node", etcd.endpoint],
    put: async (k, v) => void (await etcdClient.put(k).value(v)),
    del: async (k) => void (await etcdClient.delete().key(k)),
    kill: () => etcd.kill(),
    restart: () => etcd.restart(),
  }),
  redis: () => ({
    args: () => ["-backend", "redis", "-node", `127.0.0.1:${redis.port}`],
    put: async (k, v) => void (await redisClient.set(k, v)),
    del: async (k) => void (await redisClient.del(k)),
    kill: () => redis.kill(),
    restart: () => redis.restart(),
  }),
};

let counter = 0;

/** A confdir whose resources each render `keys` of one prefix; returns paths and a running confd. */
function watchSetup(store: StoreUnderTest, prefix: string, resources: { name: string; template: string; keys: string[]; extra?: string }[], flags: string[] = []) {
  const dir = join(tmp.path, `w${++counter}`);
  const files: Record<string, string> = { "out/.keep": "" };
  for (const r of resources) {
    files[`templates/${r.name}.hbs`] = r.template;
    files[`conf.d/${r.name}.toml`] = [
      "[template]",
      `src = "${r.name}.hbs"`,
      `dest = ${JSON.stringify(join(dir, "out", r.name))}`,
      `prefix = "${prefix}"`,
      `keys = ${JSON.stringify(r.keys)}`,
      r.extra ?? "",
    ].join("\n");
  }
  writeTree(dir, files);
  const child = spawnConfd(["-watch", "-confdir", dir, "-config-file", join(dir, "none"), "-log-level", "debug", ...store.args(), ...flags]);
  const stderr = new Lines(child.stderr);
  const out = (name: string) => readFileSync(join(dir, "out", name), "utf8");
  /** Waits until `name` has been updated `times` times in all (counting from the start). */
  const updated = (name: string, times = 1) =>
    stderr.waitForCount(new RegExp(`Target config ${join(dir, "out", name).replace(/[.*+?^${}()|[\]\\]/g, "\\$&")} has been updated`), times);
  /** How many times the watch on `sub` (under the prefix) has woken for a change, from the data plane's debug log. */
  const woke = (sub: string) => stderr.seen.filter((l) => l.includes(`Watch on ${prefix}${sub} woke at index`)).length;
  const stop = async () => {
    child.kill("SIGTERM");
    expect(await child.exited).toBe(0);
  };
  return { dir, out, updated, woke, stop, stderr };
}

for (const [name, make] of Object.entries(stores)) {
  describe(`watch with ${name}`, () => {
    test("first render, change, delete, two resources on one prefix, prefix boundary", async () => {
      const store = make();
      const p = `/t${++counter}`;
      await store.put(`${p}/app/a`, "1");
      await store.put(`${p}/app/b`, "x");
      await store.put(`${p}/application/c`, "other");
      const w = watchSetup(store, p, [
        { name: "one", template: '{{#each (gets "/app/*")}}{{Key}}={{Value}}\n{{/each}}', keys: ["/app"] },
        { name: "two", template: 'a={{getv "/app/a" "none"}}\n', keys: ["/app"] },
        { name: "three", template: '{{#each (gets "/application/*")}}{{Value}}{{/each}}\n', keys: ["/application"] },
      ]);
      try {
        await Promise.all([w.updated("one"), w.updated("two"), w.updated("three")]);
        expect(w.out("one")).toBe("/app/a=1\n/app/b=x\n");
        expect(w.out("three")).toBe("other\n");
        expect(w.out("two")).toBe("a=1\n");
        await store.put(`${p}/app/a`, "2");
        await Promise.all([w.updated("one", 2), w.updated("two", 2)]);
        expect(w.out("one")).toBe("/app/a=2\n/app/b=x\n");
        expect(w.out("two")).toBe("a=2\n");
        await store.del(`${p}/app/a`);
        await Promise.all([w.updated("one", 3), w.updated("two", 3)]);
        expect(w.out("one")).toBe("/app/b=x\n");
        expect(w.out("two")).toBe("a=none\n");
        // Each watch wakes for changes under its own prefix only: /app and /application are siblings.
        // A watch hears of changes in the order they were made, so once it has woken for a later
        // change, a wake-up for an earlier one would have been logged already.
        await store.put(`${p}/application/c`, "changed");
        await w.updated("three", 2);
        expect(w.out("three")).toBe("changed\n");
        await store.put(`${p}/app/b`, "y");
        await w.updated("one", 4);
        expect(w.woke("/application")).toBe(1);
        expect(w.woke("/app")).toBe(3);
      } finally {
        await w.stop();
      }
    });

    test("-worker-idle: an idle resource's worker ends, and the next change starts one and renders", async () => {
      const store = make();
      const p = `/t${++counter}`;
      await store.put(`${p}/v`, "1");
      const w = watchSetup(store, p, [{ name: "idle", template: 'v={{getv "/v"}}\n', keys: ["/v"] }], ["-worker-idle", "50ms"]);
      try {
        await w.updated("idle");
        await w.stderr.waitFor(/Worker ended: nothing to sync/);
        await store.put(`${p}/v`, "2");
        await w.updated("idle", 2);
        expect(w.out("idle")).toBe("v=2\n");
        await w.stderr.waitForCount(/Worker ended: nothing to sync/, 2);
      } finally {
        await w.stop();
      }
    });

    test("a resource whose check_cmd fails keeps its old file while the others update", async () => {
      const store = make();
      const p = `/t${++counter}`;
      await store.put(`${p}/v`, "good");
      const w = watchSetup(store, p, [
        { name: "checked", template: '{{getv "/v"}}\n', keys: ["/v"], extra: 'check_cmd = "grep -q good {{.src}}"' },
        { name: "plain", template: '{{getv "/v"}}\n', keys: ["/v"] },
      ]);
      try {
        await Promise.all([w.updated("checked"), w.updated("plain")]);
        await store.put(`${p}/v`, "bad");
        await w.updated("plain", 2);
        await w.stderr.waitFor(/resource checked: .*check_cmd exited with status 1/);
        expect(w.out("plain")).toBe("bad\n");
        expect(w.out("checked")).toBe("good\n");
      } finally {
        await w.stop();
      }
    });

    test("a 192-key resource renders from one consistent read", async () => {
      const store = make();
      const p = `/t${++counter}`;
      const keys = Array.from({ length: 192 }, (_, i) => `/k${i}`);
      for (const [i, k] of keys.entries()) await store.put(`${p}${k}`, String(i));
      const w = watchSetup(store, p, [{ name: "many", template: '{{len (gets "/*")}} {{getv "/k0"}} {{getv "/k191"}}\n', keys }]);
      try {
        await w.updated("many");
        expect(w.out("many")).toBe("192 0 191\n");
      } finally {
        await w.stop();
      }
    });

    test("store down at start: confd waits with backoff, then renders once it is back", async () => {
      const store = make();
      const p = `/t${++counter}`;
      await store.put(`${p}/v`, "late");
      await store.kill();
      const w = watchSetup(store, p, [{ name: "r", template: '{{getv "/v"}}\n', keys: ["/v"] }]);
      try {
        await w.stderr.waitFor(/store connection lost/);
        const back = performance.now();
        await store.restart();
        await w.updated("r");
        expect(w.out("r")).toBe("late\n");
        // Reported, not asserted (shared machines are noisy): how long after the restart the file appeared.
        console.error(`${name}: file rendered ${Math.round(performance.now() - back)} ms after the store was restarted`);
      } finally {
        await w.stop();
      }
    });

    test("server killed and restarted mid-watch: changes made after it returns arrive, with one line each for lost and restored", async () => {
      const store = make();
      const p = `/t${++counter}`;
      await store.put(`${p}/v`, "before");
      const w = watchSetup(store, p, [{ name: "r", template: '{{getv "/v"}}\n', keys: ["/v"] }]);
      try {
        await w.updated("r");
        await store.kill();
        await w.stderr.waitFor(/store connection lost/);
        await store.restart();
        await store.put(`${p}/v`, "after");
        await w.updated("r", 2);
        expect(w.out("r")).toBe("after\n");
        await w.stderr.waitFor(/store connection restored/);
        expect(w.stderr.seen.filter((l) => l.includes("store connection lost"))).toHaveLength(1);
      } finally {
        await w.stop();
      }
    });
  });
}

describe("redis with keyspace notifications off and CONFIG refused", () => {
  let locked: RedisServer;
  let client: Redis;
  beforeAll(async () => {
    locked = await startRedis({ notifications: false, allowConfig: false });
    client = new Redis({ host: "127.0.0.1", port: locked.port, maxRetriesPerRequest: 1 });
  });
  afterAll(async () => {
    client?.disconnect();
    await locked?.stop();
  });

  test("one warning, then changes are found by polling at -interval", async () => {
    await client.set("/poll/v", "1");
    const dir = join(tmp.path, "poll");
    writeTree(dir, {
      "templates/v.hbs": '{{getv "/poll/v"}}\n',
      "conf.d/v.toml": `[template]\nsrc = "v.hbs"\ndest = ${JSON.stringify(join(dir, "out", "v"))}\nkeys = ["/poll"]\n`,
      "out/.keep": "",
    });
    const child = spawnConfd(["-watch", "-interval", "1", "-backend", "redis", "-node", `127.0.0.1:${locked.port}`, "-confdir", dir, "-config-file", join(dir, "none")]);
    const stderr = new Lines(child.stderr);
    try {
      await stderr.waitFor(/has been updated/);
      await client.set("/poll/v", "2");
      await stderr.waitFor(/has been updated/, stderr.seen.findIndex((l) => l.includes("has been updated")) + 1);
      expect(readFileSync(join(dir, "out", "v"), "utf8")).toBe("2\n");
      expect(stderr.seen.filter((l) => l.includes("WARNING") && /notification/i.test(l))).toHaveLength(1);
    } finally {
      child.kill("SIGTERM");
    }
    expect(await child.exited).toBe(0);
  });
});
