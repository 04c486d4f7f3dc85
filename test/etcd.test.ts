// The etcd backend against a real etcd 3.4 (test/etcd-server.ts): snapshot reads, shared watches, one
// connection, outages, compaction, TLS and auth. Data is written with the etcd3 client directly.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, readdirSync, readFileSync, readlinkSync } from "node:fs";
import { join } from "node:path";
import { Etcd3, type IOptions } from "etcd3";
import { connect } from "../src/backends/etcd.ts";
import { createStoreClient } from "../src/backends/index.ts";
import type { StoreClient } from "../src/store.ts";
import { ConfdError } from "../src/errors.ts";
import { defaults, type Config } from "../src/options.ts";
import { createCertificates, startEtcd, type EtcdServer } from "./etcd-server.ts";
import { freePort, CONFD_FIXTURE, settlesAtOnce, tempDir } from "./helpers.ts";

const servers: EtcdServer[] = [];
const writers: Etcd3[] = [];
const clients: StoreClient[] = [];
const tmp = tempDir("confd-etcd-test-");

afterAll(async () => {
  for (const c of clients) await c.close();
  for (const w of writers) w.close();
  for (const s of servers) await s.stop();
  tmp.cleanup();
});

async function server(options?: Parameters<typeof startEtcd>[0]): Promise<EtcdServer> {
  const s = await startEtcd(options);
  servers.push(s);
  return s;
}

function writer(s: EtcdServer, options: Partial<IOptions> = {}): Etcd3 {
  const w = new Etcd3({ hosts: s.endpoint, ...options });
  writers.push(w);
  return w;
}

async function client(config: Partial<Config>): Promise<StoreClient> {
  const c = await connect({ ...defaults(), backend: "etcd", ...config });
  clients.push(c);
  return c;
}

/** The revision a put created. */
async function put(w: Etcd3, key: string, value: string): Promise<number> {
  return Number((await w.put(key).value(value).exec()).header.revision);
}

async function outcome<T>(promise: Promise<T>): Promise<PromiseSettledResult<T>> {
  const [result] = await Promise.allSettled([promise]);
  return result!;
}

/** The message a promise rejects with. (bun 1.4.5's `expect(p).rejects` hung on etcd3's promises.) */
async function failure(promise: Promise<unknown>): Promise<string> {
  return promise.then(
    () => "resolved",
    (err: unknown) => (err instanceof Error ? err.message : String(err)),
  );
}

/** ESTABLISHED TCP connections from this process to `port` (its sockets, looked up in /proc/net/tcp*). */
function connectionsTo(port: number): number {
  const mine = new Set<string>();
  for (const fd of readdirSync("/proc/self/fd")) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/self/fd/${fd}`));
      if (m) mine.add(m[1]!);
    } catch {
      // The fd closed while we looked.
    }
  }
  let count = 0;
  for (const table of ["/proc/self/net/tcp", "/proc/self/net/tcp6"]) {
    for (const line of readFileSync(table, "utf8").trim().split("\n").slice(1)) {
      const f = line.trim().split(/\s+/);
      const remotePort = parseInt(f[2]!.split(":")[1]!, 16);
      if (remotePort === port && f[3] === "01" && mine.has(f[9]!)) count++;
    }
  }
  return count;
}

async function metric(s: EtcdServer, name: string): Promise<number> {
  const text = await (await fetch(`${s.metricsUrl}/metrics`)).text();
  const m = new RegExp(`^${name} (\\S+)$`, "m").exec(text);
  if (!m) throw new Error(`no metric ${name}`);
  return Number(m[1]);
}

const port = (endpoint: string) => Number(new URL(endpoint).port);

describe("etcd backend", () => {
  let s: EtcdServer;
  let w: Etcd3;
  let c: StoreClient;
  const signal = new AbortController().signal;

  beforeAll(async () => {
    s = await server();
    w = writer(s);
    c = await client({ nodes: [s.endpoint] });
  });

  test("selected by -backend etcdv3 as well as etcd", async () => {
    await put(w, "/sel/k", "v");
    const v3 = await createStoreClient({ ...defaults(), backend: "etcdv3", nodes: [s.endpoint] });
    clients.push(v3);
    expect(Object.fromEntries(await v3.getValues(["/sel"]))).toEqual({ "/sel/k": "v" });
  });

  test("getValues: single keys and subtrees on a / boundary, UTF-8 values", async () => {
    const data = { "/gv/app": "1", "/gv/app/x": "2", "/gv/app/y/z": "3", "/gv/application": "4", "/gv/app-x": "5", "/gv/other": "é ✓ 日本" };
    for (const [k, v] of Object.entries(data)) await put(w, k, v);
    expect(Object.fromEntries(await c.getValues(["/gv/app"]))).toEqual({ "/gv/app": "1", "/gv/app/x": "2", "/gv/app/y/z": "3" });
    expect(Object.fromEntries(await c.getValues(["/gv/app/"]))).toEqual({ "/gv/app": "1", "/gv/app/x": "2", "/gv/app/y/z": "3" });
    expect(Object.fromEntries(await c.getValues(["/gv/app/x", "/gv/other", "/gv/missing"]))).toEqual({ "/gv/app/x": "2", "/gv/other": "é ✓ 日本" });
    // A subtree and a key inside it: read once, no duplicates.
    expect((await c.getValues(["/gv/app", "/gv/app/y", "/gv/app/y/z"])).size).toBe(3);
    expect((await c.getValues([])).size).toBe(0);
  });

  test("confd's manykeys resource: 192 keys (duplicates included) in one read", async () => {
    const resource = Bun.TOML.parse(readFileSync(join(CONFD_FIXTURE, "confdir", "conf.d", "manykeys.toml"), "utf8")) as { template: { keys: string[] } };
    const keys = resource.template.keys;
    expect(keys.length).toBe(192);
    const data = Bun.YAML.parse(readFileSync(join(CONFD_FIXTURE, "data.yaml"), "utf8")) as { keys: Record<string, string> };
    for (const [k, v] of Object.entries(data.keys)) await put(w, k, v);
    expect(Object.fromEntries(await c.getValues(keys))).toEqual({
      "/database/host": "127.0.0.1",
      "/database/password": "p@sSw0rd",
      "/database/port": "3306",
      "/database/username": "confd",
    });
  });

  test("300 distinct keys: read in transactions of at most 128 operations, all at one revision", async () => {
    const keys = Array.from({ length: 300 }, (_, i) => `/many/k${String(i).padStart(3, "0")}`);
    for (let i = 0; i < keys.length; i += 100) {
      await w.kv.txn({ success: keys.slice(i, i + 100).map((k) => ({ request_put: { key: Buffer.from(k), value: Buffer.from(`v0`) } })) });
    }
    // The server refuses a larger transaction, so a successful read of 300 keys was split.
    const tooMany = keys.slice(0, 129).map((k) => ({ request_range: { key: Buffer.from(k) } }));
    expect(await failure(w.kv.txn({ success: tooMany }))).toContain("too many operations");
    const values = await c.getValues(keys);
    expect(values.size).toBe(300);
    expect(values.get("/many/k299")).toBe("v0");

    // The first and last keys fall in different batches; a writer changes both together, over and
    // over. Every read sees them equal: the batches read one revision.
    let writing = true;
    const churn = (async () => {
      for (let n = 1; writing; n++) {
        await w.kv.txn({ success: ["/many/k000", "/many/k299"].map((k) => ({ request_put: { key: Buffer.from(k), value: Buffer.from(`v${n}`) } })) });
      }
    })();
    for (let i = 0; i < 30; i++) {
      const read = await c.getValues(keys);
      expect(read.get("/many/k000")).toBe(read.get("/many/k299")!);
    }
    writing = false;
    await churn;
  });

  test("watchPrefix with index 0 resolves at once with the current revision", async () => {
    const revision = await put(w, "/w0/k", "v");
    expect(await c.watchPrefix("/w0", 0, signal)).toBe(revision);
  });

  test("a put under the prefix resolves a pending watch; a put to /application does not", async () => {
    const start = await c.watchPrefix("/wp/app", 0, signal);
    const pending = c.watchPrefix("/wp/app", start, signal);
    await put(w, "/wp/application", "x");
    await put(w, "/wp/app-other", "x");
    const revision = await put(w, "/wp/app/x", "1");
    // Had either of the first two puts resolved it, it would carry an older revision.
    expect(await pending).toBe(revision);
  });

  test("a change made between two calls resolves the next call at once", async () => {
    // A watch already open on the prefix: the change is recorded while nobody waits.
    const start = await c.watchPrefix("/wb/app", 0, signal);
    const first = c.watchPrefix("/wb/app", start, signal);
    const r1 = await put(w, "/wb/app/a", "1");
    expect(await first).toBe(r1);
    const r2 = await put(w, "/wb/app/b", "2");
    expect(await c.watchPrefix("/wb/app", r1, signal)).toBe(r2);

    // No watch on the prefix yet: etcd replays what happened after the index.
    const index = await c.watchPrefix("/wb/fresh", 0, signal);
    const r3 = await put(w, "/wb/fresh", "3");
    await put(w, "/wb/freshness", "not under /wb/fresh");
    expect(await c.watchPrefix("/wb/fresh", index, signal)).toBe(r3);
  });

  test("a delete resolves the watch", async () => {
    await put(w, "/wd/k", "v");
    const start = await c.watchPrefix("/wd", 0, signal);
    const pending = c.watchPrefix("/wd", start, signal);
    const deleted = Number((await w.delete().key("/wd/k").exec()).header.revision);
    expect(await pending).toBe(deleted);
  });

  test("50 concurrent watches share one etcd watch on one TCP connection; an abort cleans up", async () => {
    // A server of its own, so that etcd's gauges and this process's connections are this test's alone:
    // the writer's connection, and the backend's.
    const own = await server();
    const ownWriter = writer(own);
    const etcdPort = port(own.endpoint);
    const watchers = () => metric(own, "etcd_debugging_mvcc_watcher_total");
    const streams = () => metric(own, "etcd_debugging_mvcc_watch_stream_total");
    const shared = await client({ nodes: [own.endpoint] });
    const start = await shared.watchPrefix("/share", 0, signal);
    const pending = Array.from({ length: 50 }, () => shared.watchPrefix("/share", start, signal));
    const revision = await put(ownWriter, "/share/k", "v");
    expect(await Promise.all(pending)).toEqual(Array(50).fill(revision));
    expect(await watchers()).toBe(1);
    expect(await streams()).toBe(1);
    expect(connectionsTo(etcdPort)).toBe(2);

    // 50 callers on 50 other prefixes, queued on the same stream behind a /share watch.
    const aborter = new AbortController();
    const spread = Array.from({ length: 50 }, (_, i) => shared.watchPrefix(`/share-${i}`, revision, aborter.signal));
    const sharedAgain = shared.watchPrefix("/share", revision, aborter.signal);
    const r2 = await put(ownWriter, "/share-49/k", "v");
    const r3 = await put(ownWriter, "/share/k2", "v");
    expect(await spread[49]).toBe(r2);
    expect(await sharedAgain).toBe(r3);
    expect(await watchers()).toBe(51);
    expect(await streams()).toBe(1);
    expect(connectionsTo(etcdPort)).toBe(2);

    const reason = new Error("stopped");
    const aborted = Promise.all(spread.slice(0, 49));
    aborter.abort(reason);
    // Rejected from what the client knows, without waiting for etcd to confirm the cancels.
    expect(await settlesAtOnce(aborted)).toBe(true);
    expect(await outcome(aborted)).toEqual({ status: "rejected", reason });
    // The 49 watches nobody waits on any more are cancelled in etcd; /share and /share-49 answered
    // their callers and stay open for the next call. etcd handles the requests of one watch stream in
    // order: once a watch created after the cancels has seen a change, the cancels are done.
    const marker = shared.watchPrefix("/share-marker", r3, signal);
    const r4 = await put(ownWriter, "/share-marker/k", "v");
    expect(await marker).toBe(r4);
    expect(await watchers()).toBe(3);
    // close() returns once etcd has confirmed every cancel.
    await shared.close();
    expect(await watchers()).toBe(0);
    expect(connectionsTo(etcdPort)).toBe(1);
  });

  test("a compacted index resolves at once with the current revision", async () => {
    const index = await c.watchPrefix("/cmp", 0, signal);
    await put(w, "/cmp/a", "1");
    const current = await put(w, "/cmp/a", "2");
    await w.kv.compact({ revision: String(current), physical: true });
    expect(await c.watchPrefix("/cmp", index, signal)).toBe(current);
    // The watch goes on from there.
    const pending = c.watchPrefix("/cmp", current, signal);
    const next = await put(w, "/cmp/b", "3");
    expect(await pending).toBe(next);
  });

  test("-node: a bad node string is an error naming it; $ETCDCTL_PEERS is read when no -node is given", async () => {
    for (const node of ["127.0.0.1", "ftp://127.0.0.1:2379", "http://:2379", "host:99999", "http://h:1/path"]) {
      const err = await connect({ ...defaults(), nodes: [node] }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ConfdError);
      expect((err as ConfdError).message).toContain(`"${node}"`);
      expect((err as ConfdError).context.flag).toBe("-node");
    }
    await put(w, "/env/k", "v");
    const saved = process.env.ETCDCTL_PEERS;
    process.env.ETCDCTL_PEERS = `127.0.0.1:${port(s.endpoint)}`;
    try {
      const fromEnv = await client({ nodes: [] });
      expect(Object.fromEntries(await fromEnv.getValues(["/env"]))).toEqual({ "/env/k": "v" });
    } finally {
      if (saved === undefined) delete process.env.ETCDCTL_PEERS;
      else process.env.ETCDCTL_PEERS = saved;
    }
  });

  test("several nodes: a read goes on to the next when one is dead, and stays there", async () => {
    const dead = `http://127.0.0.1:${freePort()}`;
    await put(w, "/fo/k", "v");
    const multi = await client({ nodes: [dead, s.endpoint] });
    expect(Object.fromEntries(await multi.getValues(["/fo"]))).toEqual({ "/fo/k": "v" });
    expect((multi as unknown as { endpoint: string }).endpoint).toBe(s.endpoint);
    expect(Object.fromEntries(await multi.getValues(["/fo"]))).toEqual({ "/fo/k": "v" });
  });

  test("several nodes, all dead: the read fails naming the last one tried", async () => {
    const dead = [`http://127.0.0.1:${freePort()}`, `http://127.0.0.1:${freePort()}`];
    const multi = await client({ nodes: dead });
    const err = await multi.getValues(["/fo"]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfdError);
    expect((err as Error).message).toContain(`cannot reach the etcd store at ${dead[1]}`);
  });

  test("a watch on a dead node fails after the deadline, then follows the client to the next node", async () => {
    const dead = `http://127.0.0.1:${freePort()}`;
    const index = await c.watchPrefix("/fw", 0, signal);
    const missed = await put(w, "/fw/k", "v");
    const multi = await client({ nodes: [dead, s.endpoint] });
    // Nothing answers: it fails after the deadline (~5 s; the test's timeout bounds it).
    const result = await outcome(multi.watchPrefix("/fw", index, signal));
    expect(result.status).toBe("rejected");
    expect(String(result.status === "rejected" && result.reason.message)).toContain(`cannot reach the etcd store at ${dead}`);
    // The caller retries with the same index: the change made meanwhile is seen.
    expect(await multi.watchPrefix("/fw", index, signal)).toBe(missed);
  });
});

describe("etcd outage", () => {
  test("a killed server: calls reject (within the ~5 s deadline); after a restart the same index resumes", async () => {
    const s = await server();
    const w = writer(s);
    const c = await client({ nodes: [s.endpoint] });
    const signal = new AbortController().signal;

    const index = await c.watchPrefix("/out", 0, signal);
    // A watch that waits through the outage, and a change nobody watches yet, made just before it.
    const pending = c.watchPrefix("/out/pending", index, signal);
    const missed = await put(w, "/out/replay/k", "v");
    await s.kill();

    const message = `cannot reach the etcd store at ${s.endpoint}`;
    const outcomes = await Promise.all([
      outcome(pending),
      outcome(c.getValues(["/out"])),
      outcome(c.watchPrefix("/out/other", index, signal)),
      outcome(c.watchPrefix("/out", 0, signal)),
    ]);
    for (const result of outcomes) {
      expect(result.status).toBe("rejected");
      if (result.status === "rejected") {
        expect(result.reason).toBeInstanceOf(ConfdError);
        expect(result.reason.message).toContain(message);
      }
    }

    await s.restart();
    // Not watched before the outage: etcd replays from the old index.
    expect(await c.watchPrefix("/out/replay", index, signal)).toBe(missed);
    // Watched through the outage: the same watch reconnects and goes on. Having missed the stream for
    // a while, it may first answer early (the store moved on), which the caller answers by re-reading.
    const revision = await put(w, "/out/pending/k", "v");
    let seen = index;
    for (let i = 0; i < 3 && seen < revision; i++) seen = await c.watchPrefix("/out/pending", seen, signal);
    expect(seen).toBe(revision);
    expect(Object.fromEntries(await c.getValues(["/out"]))).toEqual({ "/out/replay/k": "v", "/out/pending/k": "v" });
  }, 30_000);
});

describe("etcd TLS and auth", () => {
  test("client certificates: -client-ca-keys, -client-cert, -client-key (https implied)", async () => {
    const certs = createCertificates(tmp.path);
    const s = await server({ tls: certs.server });
    const files = certs.client;
    const w = writer(s, {
      credentials: { rootCertificate: readFileSync(files.caFile), certChain: readFileSync(files.certFile), privateKey: readFileSync(files.keyFile) },
      // Bun refuses an IP address as the TLS server name; the certificate also names localhost.
      grpcOptions: { "grpc.ssl_target_name_override": "localhost" },
    });
    await put(w, "/tls/k", "secret-free");
    const bare = `127.0.0.1:${port(s.endpoint)}`;
    const tls = { clientCaKeys: files.caFile, clientCert: files.certFile, clientKey: files.keyFile };
    const c = await client({ nodes: [bare], ...tls });
    expect(Object.fromEntries(await c.getValues(["/tls"]))).toEqual({ "/tls/k": "secret-free" });
    const index = await c.watchPrefix("/tls", 0, new AbortController().signal);
    const pending = c.watchPrefix("/tls", index, new AbortController().signal);
    const revision = await put(w, "/tls/k2", "v");
    expect(await pending).toBe(revision);

    // -client-insecure: no CA, the server's certificate is not checked.
    const insecure = await client({ nodes: [s.endpoint], clientCert: files.certFile, clientKey: files.keyFile, clientInsecure: true });
    expect((await insecure.getValues(["/tls"])).size).toBe(2);

    // Without a client certificate the server refuses the connection.
    const anonymous = await client({ nodes: [bare], clientCaKeys: files.caFile });
    expect(await failure(anonymous.getValues(["/tls"]))).toContain(`cannot reach the etcd store at ${s.endpoint}`);

    // Verification is on: a server whose certificate does not name 127.0.0.1 is refused, and so is a
    // certificate from another CA.
    const otherDir = join(tmp.path, "other");
    mkdirSync(otherDir);
    const other = createCertificates(otherDir, "DNS:elsewhere.invalid");
    const misnamed = await server({ tls: other.server });
    const otherTls = { clientCaKeys: other.client.caFile, clientCert: other.client.certFile, clientKey: other.client.keyFile };
    expect(await failure((await client({ nodes: [misnamed.endpoint], ...otherTls })).getValues(["/tls"]))).toMatch(/cannot reach the etcd store at .*altnames/);
    expect(await failure((await client({ nodes: [bare], ...otherTls })).getValues(["/tls"]))).toContain("cannot reach the etcd store");

    const missing = await connect({ ...defaults(), ...tls, clientKey: join(tmp.path, "nope.key") }).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(ConfdError);
    expect((missing as ConfdError).context.flag).toBe("-client-key");
  });

  test("-basic-auth with -username and -password (etcd v3 auth)", async () => {
    const s = await server();
    const w = writer(s);
    await put(w, "/auth/k", "v");
    await w.role("root").create();
    await w.user("root").create("r00t-pass");
    await w.user("root").addRole("root");
    await w.auth.authEnable({});
    const c = await client({ nodes: [s.endpoint], basicAuth: true, username: "root", password: "r00t-pass" });
    expect(Object.fromEntries(await c.getValues(["/auth"]))).toEqual({ "/auth/k": "v" });

    const wrong = await client({ nodes: [s.endpoint], basicAuth: true, username: "root", password: "wrong-pass" });
    const err = await wrong.getValues(["/auth"]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfdError);
    expect((err as Error).message).toContain("authentication failed");
    expect((err as Error).message).not.toContain("wrong-pass");
  });
});
