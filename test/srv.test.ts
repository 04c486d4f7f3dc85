// SRV discovery of store nodes (-srv-record, -srv-domain; src/srv.ts). End to end, confd runs with a
// real DNS server as its system resolver (test/dns-server.ts: dnsmasq on a loopback address, and
// /etc/resolv.conf bind-mounted in confd's own mount namespace) in front of real etcd and redis servers
// and the Consul double; what is checked is what a user sees: the file written, the exit status, the
// log. The order of records and the re-lookups are also checked through src/srv.ts with a stand-in
// lookup, where the weighting's random numbers can be chosen.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Etcd3 } from "etcd3";
import Redis from "ioredis";
import { ConfdError } from "../src/errors.ts";
import { configureLog } from "../src/log.ts";
import { defaults, type Config } from "../src/options.ts";
import { nodeSource, orderSrv, type SrvLookup, type SrvRecord } from "../src/srv.ts";
import { startConsulDouble, type ConsulDouble } from "./consul-double.ts";
import { startVaultDouble, type VaultDouble } from "./vault-double.ts";
import { startZookeeper, zkWriter, type ZookeeperServer } from "./zookeeper-server.ts";
import { startDns, unavailable, withResolvConf, ZONE, type DnsServer, type Records, type SrvSpec } from "./dns-server.ts";
import { startEtcd, type EtcdServer } from "./etcd-server.ts";
import { freePort, Lines, runConfd, spawnConfd, tempDir, writeTree } from "./helpers.ts";
import { startRedis, type RedisServer } from "./redis-server.ts";

const record = (name: string, port: number, priority: number, weight: number): SrvRecord => ({ name, port, priority, weight });

/** random() answering from a list, in turn. */
function randoms(...values: number[]): () => number {
  let i = 0;
  return () => values[i++ % values.length]!;
}

describe("record order (RFC 2782, as Go's net.LookupSRV)", () => {
  test("lower priority first, whatever order the server sent them in", () => {
    const records = [record("c.", 3, 30, 5), record("a.", 1, 10, 5), record("b.", 2, 20, 5)];
    expect(orderSrv(records, Math.random).map((r) => r.name)).toEqual(["a.", "b.", "c."]);
  });

  test("within a priority, picked by weight: the random point falls in each record's share", () => {
    // Sorted by weight: x (10), y (30), z (60); running sums 10, 40, 100.
    const group = [record("z.", 1, 5, 60), record("x.", 1, 5, 10), record("y.", 1, 5, 30)];
    expect(orderSrv(group, randoms(0.05, 0)).map((r) => r.name)).toEqual(["x.", "y.", "z."]);
    // 0.5 of 100 falls in z's share; then 0.9 of 40 in y's.
    expect(orderSrv(group, randoms(0.5, 0.9)).map((r) => r.name)).toEqual(["z.", "y.", "x."]);
  });

  test("weight 0 comes after every weighted record of its priority, in name order", () => {
    const group = [record("w0b.", 1, 5, 0), record("w0a.", 1, 5, 0), record("heavy.", 1, 5, 1), record("next.", 1, 9, 0)];
    expect(orderSrv(group, randoms(0.99)).map((r) => r.name)).toEqual(["heavy.", "w0a.", "w0b.", "next."]);
  });
});

/** A config for `backend` with SRV options; -interval is irrelevant here. */
function config(backend: string, extra: Partial<Config>): Config {
  return { ...defaults(), backend, ...extra };
}

describe("nodes from SRV records (a stand-in lookup)", () => {
  const answers = (records: SrvRecord[]): SrvLookup => async () => records;
  const failing = (code: string): SrvLookup => async () => {
    throw Object.assign(new Error(`querySrv ${code}`), { code });
  };
  const quiet = () => configureLog({ sink: () => {} });
  afterAll(() => configureLog({ sink: (line) => process.stderr.write(line) }));

  test("-srv-domain names _<backend>._tcp.<domain>. ; -srv-record wins over it; each backend's spelling", async () => {
    quiet();
    const asked: string[] = [];
    const lookup: SrvLookup = async (name) => {
      asked.push(name);
      return [record("n1.example.test.", 2379, 1, 1)];
    };
    const nodes = async (c: Config) => (await nodeSource(c, { lookup })).current();
    expect(await nodes(config("etcd", { srvDomain: "example.test" }))).toEqual(["n1.example.test:2379"]);
    expect(await nodes(config("etcdv3", { srvDomain: "example.test.", scheme: "https" }))).toEqual(["https://n1.example.test:2379"]);
    expect(await nodes(config("consul", { srvRecord: "_c._tcp.example.test", srvDomain: "ignored.test" }))).toEqual(["n1.example.test:2379"]);
    expect(await nodes(config("vault", { srvDomain: "example.test" }))).toEqual(["http://n1.example.test:2379"]);
    expect(await nodes(config("redis", { srvDomain: "example.test", scheme: "https" }))).toEqual(["n1.example.test:2379"]);
    expect(asked).toEqual(["_etcd._tcp.example.test.", "_etcdv3._tcp.example.test.", "_c._tcp.example.test", "_vault._tcp.example.test.", "_redis._tcp.example.test."]);
    // Backends without nodes do not look anything up (config.ts warns that they ignore the options).
    expect(await nodes(config("file", { srvDomain: "example.test" }))).toEqual([]);
    expect(asked).toHaveLength(5);
  });

  test("no records, a failed lookup, a target of '.', unusable targets, a bad -scheme, a name that is none: a ConfdError naming the flag", async () => {
    quiet();
    const failure = (c: Config, lookup: SrvLookup) => nodeSource(c, { lookup }).then(() => undefined, (e: unknown) => e as ConfdError);
    const cases: [Config, SrvLookup, string, string][] = [
      [config("etcd", { srvRecord: "_x._tcp.none.test" }), failing("ENOTFOUND"), "-srv-record", "cannot get nodes from the SRV record _x._tcp.none.test: no such name, or no SRV records (ENOTFOUND)"],
      [config("etcd", { srvDomain: "slow.test" }), failing("ETIMEOUT"), "-srv-domain", "cannot get nodes from the SRV record _etcd._tcp.slow.test.: no answer from the DNS server (ETIMEOUT)"],
      [config("redis", { srvDomain: "off.test" }), answers([record(".", 0, 0, 0)]), "-srv-domain", 'the record says the service is not available there (target ".")'],
      [config("redis", { srvDomain: "bad.test" }), answers([record("a b.test.", 1, 0, 0), record("ok.test.", 0, 0, 0)]), "-srv-domain", "no record has a usable target and port"],
      [config("consul", { srvDomain: "x.test", scheme: "ftp" }), answers([]), "-scheme", 'unknown scheme "ftp" (http, https)'],
      // Never looked up, and quoted: a message is one line.
      [config("etcd", { srvRecord: "a\nb.test" }), failing("ENOTFOUND"), "-srv-record", '"a\\nb.test" is not a DNS name'],
      [config("etcd", { srvDomain: "x".repeat(254) }), failing("ENOTFOUND"), "-srv-domain", "is not a DNS name"],
    ];
    for (const [c, lookup, flag, message] of cases) {
      const err = await failure(c, lookup);
      expect(err).toBeInstanceOf(ConfdError);
      expect(err!.context.flag).toBe(flag);
      expect(err!.message).toContain(message);
    }
  });

  test("refresh: a changed answer replaces the list; lookups in flight are shared, none within a second of the last; a failure keeps the nodes", async () => {
    const lines: string[] = [];
    configureLog({ sink: (line) => lines.push(line), level: "info" });
    let answer: SrvRecord[] | Error = [record("a.test.", 1, 1, 0)];
    let lookups = 0;
    let clock = 0;
    const lookup: SrvLookup = async () => {
      lookups++;
      if (answer instanceof Error) throw answer;
      return answer;
    };
    const source = await nodeSource(config("redis", { srvDomain: "test" }), { lookup, now: () => clock });
    const first = source.current();
    expect(first).toEqual(["a.test:1"]);
    expect(await source.refresh()).toBe(false);
    expect(lookups).toBe(1);
    clock += 1_000;
    answer = [record("b.test.", 2, 1, 0)];
    const [x, y] = await Promise.all([source.refresh(), source.refresh()]);
    expect([x, y, lookups]).toEqual([true, true, 2]);
    expect(source.current()).toEqual(["b.test:2"]);
    clock += 1_000;
    expect(await source.refresh()).toBe(false);
    expect(source.current()).toEqual(["b.test:2"]);
    clock += 1_000;
    answer = Object.assign(new Error("querySrv ESERVFAIL"), { code: "ESERVFAIL" });
    expect(await source.refresh()).toBe(false);
    expect(source.current()).toEqual(["b.test:2"]);
    expect(lines.filter((l) => /INFO|WARNING/.test(l)).map((l) => l.trimEnd().replace(/^.*?(INFO|WARNING) /, "$1 "))).toEqual([
      "INFO SRV record _redis._tcp.test. gives the nodes a.test:1",
      "INFO every node failed; SRV record _redis._tcp.test. now gives the nodes b.test:2",
      "WARNING every node failed, and looking the nodes up again did not work: cannot get nodes from the SRV record _redis._tcp.test.: the DNS server failed (ESERVFAIL); keeping b.test:2",
    ]);
  });
});

// ---- End to end, with dnsmasq as confd's resolver ----

const skip = unavailable();
if (skip) console.error(`srv.test.ts: the tests with a DNS server are skipped: ${skip}`);

const tmp = tempDir("confd-srv-");
afterAll(tmp.cleanup);

const LOCALHOST = "127.0.0.1";
const host = (name: string) => `${name}.${ZONE}`;
const portOf = (url: string) => Number(new URL(url).port);

let dns: DnsServer;
let etcd: EtcdServer;
let etcdClient: Etcd3;
let redis: RedisServer;
let consulA: ConsulDouble;
let consulB: ConsulDouble;
/** Nothing listens there. */
const deadPort = freePort();

function srv(name: string, target: string, port: number, priority: number, weight = 10): SrvSpec {
  return { name, target: host(target), port, priority, weight };
}

/** The records every test starts from; the re-lookup test adds its own. */
function baseRecords(extra: SrvSpec[] = []): Records {
  const hosts: Record<string, string> = {};
  for (const name of ["etcd-a", "moved-from", "dead", "redis-a", "consul-a", "consul-b", "vault-a", "zookeeper-a"]) hosts[host(name)] = LOCALHOST;
  return {
    hosts,
    srv: [
      srv(`_etcd-client._tcp.${ZONE}`, "etcd-a", portOf(etcd.endpoint), 10),
      srv(`_etcd._tcp.${ZONE}`, "etcd-a", portOf(etcd.endpoint), 10),
      srv(`_etcd._tcp.prio.${ZONE}`, "dead", deadPort, 10),
      srv(`_etcd._tcp.prio.${ZONE}`, "etcd-a", portOf(etcd.endpoint), 20),
      srv(`_redis._tcp.${ZONE}`, "dead", deadPort, 10),
      srv(`_redis._tcp.${ZONE}`, "redis-a", redis.port, 20),
      srv(`_consul._tcp.${ZONE}`, "consul-b", consulB.port, 30),
      srv(`_consul._tcp.${ZONE}`, "dead", deadPort, 10),
      srv(`_consul._tcp.${ZONE}`, "consul-a", consulA.port, 20),
      ...extra,
    ],
  };
}

beforeAll(async () => {
  if (skip) return;
  [etcd, redis] = await Promise.all([startEtcd(), startRedis()]);
  etcdClient = new Etcd3({ hosts: etcd.endpoint });
  consulA = startConsulDouble();
  consulB = startConsulDouble();
  dns = await startDns(baseRecords());
});

afterAll(async () => {
  etcdClient?.close();
  consulA?.stop();
  consulB?.stop();
  await Promise.all([etcd?.stop(), redis?.stop(), dns?.stop()]);
});

let counter = 0;

/** A confdir with one resource rendering the key /srv/v; returns its args and output file. */
function confdir(): { args: string[]; out: string } {
  const dir = join(tmp.path, `c${++counter}`);
  const out = join(dir, "out.txt");
  writeTree(dir, {
    "templates/v.tmpl": 'v={{getv "/srv/v"}}\n',
    "conf.d/v.toml": `[template]\nsrc = "v.tmpl"\ndest = ${JSON.stringify(out)}\nkeys = ["/srv/v"]\n`,
    "confd.toml": "",
  });
  return { args: ["-confdir", dir, "-config-file", join(dir, "confd.toml")], out };
}

async function redisPut(port: number, value: string): Promise<void> {
  const client = new Redis({ host: LOCALHOST, port });
  try {
    await client.set("/srv/v", value);
  } finally {
    client.disconnect();
  }
}

const updated = (out: string) => new RegExp(`Target config ${RegExp.escape(out)} has been updated`);

describe.skipIf(skip !== undefined)("SRV discovery against a real DNS server", () => {
  test("etcd via -srv-record: the record's target is the node", async () => {
    await etcdClient.put("/srv/v").value("from-etcd");
    const { args, out } = confdir();
    const r = await runConfd(["-onetime", ...args, "-backend", "etcdv3", "-srv-record", `_etcd-client._tcp.${ZONE}`], { wrap: dns.wrap });
    expect(r.stderr).toContain(`SRV record _etcd-client._tcp.${ZONE} gives the nodes ${host("etcd-a")}:${portOf(etcd.endpoint)}\n`);
    expect(r.code).toBe(0);
    expect(readFileSync(out, "utf8")).toBe("v=from-etcd\n");
  });

  test("etcd via -srv-domain: confd's name _etcd._tcp.<domain>., and a -node beside it is ignored with a warning", async () => {
    await etcdClient.put("/srv/v").value("by-domain");
    const { args, out } = confdir();
    const r = await runConfd(["-onetime", ...args, "-backend", "etcd", "-srv-domain", ZONE, "-node", `127.0.0.1:${deadPort}`], { wrap: dns.wrap });
    expect(r.stderr).toContain(`WARNING -node is ignored: the nodes come from the SRV record _etcd._tcp.${ZONE}. (-srv-domain)\n`);
    expect(r.code).toBe(0);
    expect(readFileSync(out, "utf8")).toBe("v=by-domain\n");
  });

  test("etcd: the lower priority is tried first; while it is dead, the next one is used", async () => {
    await etcdClient.put("/srv/v").value("second-choice");
    const { args, out } = confdir();
    const child = spawnConfd(["-watch", ...args, "-backend", "etcd", "-srv-domain", `prio.${ZONE}`], { wrap: dns.wrap });
    const log = new Lines(child.stderr);
    try {
      await log.waitFor(new RegExp(`gives the nodes ${host("dead")}:${deadPort}, ${host("etcd-a")}:${portOf(etcd.endpoint)}$`));
      await log.waitFor(updated(out));
      expect(readFileSync(out, "utf8")).toBe("v=second-choice\n");
      // The first read went to the dead node: it was tried first.
      expect(log.text()).toContain(`cannot reach the etcd store at http://${host("dead")}:${deadPort}`);
    } finally {
      child.kill("SIGTERM");
      expect(await child.exited).toBe(0);
    }
  });

  /** A store server of its own for the re-lookup test, which takes it away. */
  interface MovingStore {
    backend: string;
    port: number;
    /** Writes /srv/v on it. */
    put(value: string): Promise<void>;
    /** Takes it away as a crash would. */
    kill(): Promise<void>;
    stop(): Promise<void>;
  }

  /** A vault double holding /srv/v as KV v1, logged into with userpass (a token is one double's own). */
  const vaultDouble = (value: string): VaultDouble => {
    const double = startVaultDouble();
    double.mount("srv", 1);
    double.enableAuth({ type: "userpass", username: "confd", password: "srv-test-password" });
    double.write("srv/v", { value });
    return double;
  };
  let vaultB: VaultDouble | undefined;
  let zookeeperB: ZookeeperServer | undefined;

  const movingStores: Record<string, { start(): Promise<MovingStore>; put(value: string): Promise<void>; shared(): number; flags?: string[] }> = {
    etcd: {
      async start() {
        const server = await startEtcd();
        const client = new Etcd3({ hosts: server.endpoint });
        return {
          backend: "etcd",
          port: portOf(server.endpoint),
          put: async (value) => void (await client.put("/srv/v").value(value)),
          kill: () => server.kill(),
          stop: async () => {
            client.close();
            await server.stop();
          },
        };
      },
      put: async (value) => void (await etcdClient.put("/srv/v").value(value)),
      shared: () => portOf(etcd.endpoint),
    },
    redis: {
      async start() {
        const server = await startRedis();
        return { backend: "redis", port: server.port, put: (value) => redisPut(server.port, value), kill: () => server.kill(), stop: () => server.stop() };
      },
      put: (value) => redisPut(redis.port, value),
      shared: () => redis.port,
    },
    consul: {
      async start() {
        const double = startConsulDouble();
        return { backend: "consul", port: double.port, put: async (value) => double.set("srv/v", value), kill: () => double.stop(), stop: async () => {} };
      },
      put: async (value) => consulA.set("srv/v", value),
      shared: () => consulA.port,
    },
    vault: {
      async start() {
        const double = vaultDouble("");
        return { backend: "vault", port: double.port, put: async (value) => double.write("srv/v", { value }), kill: () => double.stop(), stop: async () => {} };
      },
      put: async (value) => void (vaultB ??= vaultDouble(value)).write("srv/v", { value }),
      shared: () => vaultB!.port,
      // Vault has no watch: read every second.
      flags: ["-interval", "1", "-auth-type", "userpass", "-username", "confd", "-password", "srv-test-password"],
    },
    zookeeper: {
      async start() {
        const server = await startZookeeper();
        return { backend: "zookeeper", port: server.port, put: (value) => zkWriter(server.node).putAll([["/srv/v", value]]), kill: () => server.kill(), stop: () => server.stop() };
      },
      async put(value) {
        zookeeperB ??= await startZookeeper();
        await zkWriter(zookeeperB.node).putAll([["/srv/v", value]]);
      },
      shared: () => zookeeperB!.port,
    },
  };
  afterAll(async () => {
    await vaultB?.stop();
    await zookeeperB?.stop();
  });

  for (const [name, store] of Object.entries(movingStores)) {
    test(`${name}: when every node has failed, the records are looked up again and the next attempt reaches the new node`, async () => {
      const moving = `_${name}._tcp.move.${ZONE}`;
      const old = await store.start();
      const target = `${name}-a`;
      try {
        await old.put("old-node");
        await store.put("new-node");
        await dns.serve(baseRecords([srv(moving, "moved-from", old.port, 10)]));
        const { args, out } = confdir();
        const child = spawnConfd(["-watch", "-log-level", "debug", ...args, "-backend", old.backend, "-srv-domain", `move.${ZONE}`, ...(store.flags ?? [])], { wrap: dns.wrap });
        const log = new Lines(child.stderr);
        try {
          await log.waitFor(updated(out));
          expect(readFileSync(out, "utf8")).toBe("v=old-node\n");
          await old.kill();
          await log.waitFor(/store connection lost/);
          // The service moved: its record now names the other server.
          await dns.serve(baseRecords([srv(moving, target, store.shared(), 10)]));
          await log.waitFor(new RegExp(`every node failed; SRV record ${RegExp.escape(moving)}\\. now gives the nodes (http://)?${host(target)}:${store.shared()}$`));
          await log.waitForCount(updated(out), 2);
          expect(readFileSync(out, "utf8")).toBe("v=new-node\n");
        } finally {
          child.kill("SIGTERM");
          expect(await child.exited).toBe(0);
        }
      } finally {
        await old.stop();
        await dns.serve(baseRecords());
      }
    });
  }

  test("redis via -srv-domain: the dead first node is passed over", async () => {
    await redisPut(redis.port, "from-redis");
    const { args, out } = confdir();
    const r = await runConfd(["-onetime", ...args, "-backend", "redis", "-srv-domain", ZONE], { wrap: dns.wrap });
    expect(r.stderr).toContain(`SRV record _redis._tcp.${ZONE}. gives the nodes ${host("dead")}:${deadPort}, ${host("redis-a")}:${redis.port}\n`);
    expect(r.code).toBe(0);
    expect(readFileSync(out, "utf8")).toBe("v=from-redis\n");
  });

  test("consul via -srv-domain: nodes in priority order, the dead first one passed over, the third never asked", async () => {
    consulA.set("srv/v", "consul-a");
    consulB.set("srv/v", "consul-b");
    const { args, out } = confdir();
    const r = await runConfd(["-onetime", ...args, "-backend", "consul", "-srv-domain", ZONE], { wrap: dns.wrap });
    expect(r.stderr).toContain(`gives the nodes ${host("dead")}:${deadPort}, ${host("consul-a")}:${consulA.port}, ${host("consul-b")}:${consulB.port}\n`);
    expect(r.code).toBe(0);
    expect(readFileSync(out, "utf8")).toBe("v=consul-a\n");
    expect(consulB.requests).toHaveLength(0);
  });

  test("an SRV name with no records: one line naming the flag and the name, exit 1", async () => {
    const { args } = confdir();
    for (const [flag, value, name] of [["-srv-record", `_none._tcp.${ZONE}`, `_none._tcp.${ZONE}`], ["-srv-domain", `nothing.${ZONE}`, `_etcd._tcp.nothing.${ZONE}.`]]) {
      const r = await runConfd(["-onetime", ...args, "-log-level", "warning", "-backend", "etcd", flag!, value!], { wrap: dns.wrap });
      expect(r.code).toBe(1);
      const lines = r.stderr.trim().split("\n");
      expect(lines).toHaveLength(1);
      expect(lines[0]).toEndWith(`FATAL flag ${flag}: cannot get nodes from the SRV record ${name}: no such name, or no SRV records (ENOTFOUND)`);
    }
  });

  test("a DNS server that does not answer: one line saying so, exit 1", async () => {
    const resolvConf = join(tmp.path, "silent-resolv.conf");
    // A loopback address nothing listens on.
    writeFileSync(resolvConf, "nameserver 127.53.255.254\n");
    const { args } = confdir();
    const r = await runConfd(["-onetime", ...args, "-log-level", "warning", "-backend", "etcd", "-srv-domain", ZONE], { wrap: withResolvConf(resolvConf) });
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toEndWith(`FATAL flag -srv-domain: cannot get nodes from the SRV record _etcd._tcp.${ZONE}.: no answer from the DNS server (ETIMEOUT)`);
  });
});
