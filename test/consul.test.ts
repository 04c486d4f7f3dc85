// The consul backend against test/consul-double.ts, a double of Consul's KV HTTP API written from
// Consul's documentation: everything here is verified against the double only, never a real Consul
// (docs/consul.md). No fixed sleeps: tests wait for the request the double receives, or for the watch.
import { afterEach, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { blockingPace, connect } from "../src/backends/consul.ts";
import type { StoreClient } from "../src/store.ts";
import { ConfdError } from "../src/errors.ts";
import { defaults, type Config } from "../src/options.ts";
import { startConsulDouble, type ConsulDouble, type ConsulDoubleOptions, type RecordedRequest } from "./consul-double.ts";
import { freePort, tempDir } from "./helpers.ts";

const cleanups: (() => unknown)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function double(options?: ConsulDoubleOptions): ConsulDouble {
  const d = startConsulDouble(options);
  cleanups.push(() => d.stop());
  return d;
}

async function client(nodes: string[], extra: Partial<Config> = {}, env: Record<string, string> = {}): Promise<StoreClient> {
  const c = await connect({ ...defaults(), backend: "consul", nodes, ...extra }, { env });
  cleanups.push(() => c.close());
  return c;
}

/** A promise's outcome, readable without awaiting it, to check that a watch is still pending. */
function track<T>(promise: Promise<T>): { promise: Promise<T>; settled: boolean } {
  const t = { promise, settled: false };
  promise.then(
    () => (t.settled = true),
    () => (t.settled = true),
  );
  return t;
}

/** Resolves when the double receives the request `test` accepts; fails at once if the watch settles first. */
function whilePending<T>(watch: { promise: Promise<T> }, request: Promise<RecordedRequest>): Promise<RecordedRequest> {
  const settled = watch.promise.then(
    () => Promise.reject(new Error("the watch resolved")),
    (err: unknown) => Promise.reject(err),
  );
  return Promise.race([request, settled]);
}

/** The next request from now on that `test` accepts. */
function nextRequest(d: ConsulDouble, test: (r: RecordedRequest) => boolean): Promise<RecordedRequest> {
  const from = d.requests.length;
  return d.waitForRequest((r) => d.requests.indexOf(r) >= from && test(r));
}

const blockingOn = (path: string, index: number) => (r: RecordedRequest) => r.method === "GET" && r.path === path && r.query.index === String(index);

const never = new AbortController().signal;

describe("getValues", () => {
  test("a single key, a prefix on the / boundary, the root, a missing key", async () => {
    const d = double();
    d.set("app/db/host", "db1");
    d.set("app/port", "80");
    d.set("application/name", "not under /app");
    d.set("other", "o");
    const c = await client([d.node]);

    expect(await c.getValues(["/app/db/host"])).toEqual(new Map([["/app/db/host", "db1"]]));
    const app = new Map([
      ["/app/db/host", "db1"],
      ["/app/port", "80"],
    ]);
    expect(await c.getValues(["/app"])).toEqual(app);
    expect(await c.getValues(["/app/"])).toEqual(app);
    expect(await c.getValues(["/missing"])).toEqual(new Map());
    expect(await c.getValues(["/"])).toEqual(new Map([...app, ["/application/name", "not under /app"], ["/other", "o"]]));
    // Keys go to Consul without their leading "/".
    expect(d.requests.some((r) => r.path === "/v1/kv/app" && "recurse" in r.query)).toBe(true);
  });

  test("a key below another asked-for key costs no request of its own", async () => {
    const d = double();
    d.set("app/db/host", "db1");
    const c = await client([d.node]);
    const before = d.requests.length;
    expect(await c.getValues(["/app", "/app/db", "/app/db/host"])).toEqual(new Map([["/app/db/host", "db1"]]));
    expect(d.requests.slice(before).map((r) => r.path)).toEqual(["/v1/kv/app"]);
  });

  test("values are base64-decoded to UTF-8; an empty value or a folder key reads as empty", async () => {
    const d = double();
    d.set("app/text", "héllo ✓ ünïcode\nsecond line");
    d.set("app/empty", "");
    d.set("app/dir/", "");
    const c = await client([d.node]);
    expect(await c.getValues(["/app"])).toEqual(
      new Map([
        ["/app/dir", ""],
        ["/app/empty", ""],
        ["/app/text", "héllo ✓ ünïcode\nsecond line"],
      ]),
    );
  });
});

describe("authentication", () => {
  const token = "t0ken-do-not-print";

  test("without the ACL token the store refuses, and the message says so without any token", async () => {
    const d = double({ token });
    d.set("app/x", "1");
    const c = await client([d.node]);
    const err = await c.getValues(["/app"]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfdError);
    expect((err as ConfdError).message).toMatch(/denied.*ACL token/);
    const wrong = await client([d.node], { authToken: "wrong" });
    const err2 = await wrong.watchPrefix("/app", 0, never).catch((e: unknown) => e);
    expect((err2 as ConfdError).message).toContain("ACL not found");
    expect((err2 as ConfdError).message).not.toContain("wrong");
  });

  test("-auth-token is sent as X-Consul-Token, never in the URL", async () => {
    const d = double({ token });
    d.set("app/x", "1");
    const c = await client([d.node], { authToken: token });
    expect(await c.getValues(["/app"])).toEqual(new Map([["/app/x", "1"]]));
    const last = d.requests.at(-1)!;
    expect(last.headers["x-consul-token"]).toBe(token);
    expect(last.query.token).toBeUndefined();
  });

  test("CONSUL_HTTP_TOKEN is used when no -auth-token is given, and -auth-token wins over it", async () => {
    const d = double({ token });
    d.set("app/x", "1");
    const fromEnv = await client([d.node], {}, { CONSUL_HTTP_TOKEN: token });
    expect(await fromEnv.getValues(["/app"])).toEqual(new Map([["/app/x", "1"]]));
    const both = await client([d.node], { authToken: token }, { CONSUL_HTTP_TOKEN: "stale" });
    expect(await both.getValues(["/app"])).toEqual(new Map([["/app/x", "1"]]));
  });

  test("basic auth only with -basic-auth, as confd", async () => {
    const d = double();
    const plain = await client([d.node], { username: "u", password: "p" });
    await plain.getValues(["/app"]);
    expect(d.requests.at(-1)!.headers.authorization).toBeUndefined();
    const basic = await client([d.node], { basicAuth: true, username: "u", password: "p@ss" });
    await basic.getValues(["/app"]);
    expect(d.requests.at(-1)!.headers.authorization).toBe(`Basic ${Buffer.from("u:p@ss").toString("base64")}`);
  });

  test.skipIf(!Bun.which("openssl"))("https with a CA file, with -client-insecure, and refused without either", async () => {
    const dir = tempDir();
    cleanups.push(dir.cleanup);
    const [cert, key] = [join(dir.path, "cert.pem"), join(dir.path, "key.pem")];
    const made = Bun.spawnSync(
      ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
      { stderr: "pipe" },
    );
    expect(made.exitCode).toBe(0);
    const d = double({ tls: { cert: readFileSync(cert, "utf8"), key: readFileSync(key, "utf8") } });
    d.set("app/x", "1");
    // A TLS file alone selects https, as the scheme flag would.
    const withCa = await client([d.node], { clientCaKeys: cert });
    expect(await withCa.getValues(["/app"])).toEqual(new Map([["/app/x", "1"]]));
    const insecure = await client([d.node], { clientInsecure: true });
    expect(await insecure.getValues(["/app"])).toEqual(new Map([["/app/x", "1"]]));
    const unverified = await client([d.node], { scheme: "https" });
    await expect(unverified.getValues(["/app"])).rejects.toThrow(/cannot be reached.*certificate/);
  });
});

describe("watchPrefix", () => {
  test("waitIndex 0 returns the current index at once, without blocking", async () => {
    const d = double();
    d.set("app/x", "1");
    d.set("other", "1");
    const c = await client([d.node]);
    expect(await c.watchPrefix("/app", 0, never)).toBe(2);
    expect(d.requests.at(-1)!.query.index).toBeUndefined();
  });

  test("a write under the prefix resolves a pending watch", async () => {
    const d = double();
    d.set("app/x", "1");
    const c = await client([d.node]);
    const i0 = await c.watchPrefix("/app", 0, never);
    const watch = c.watchPrefix("/app", i0, never);
    const held = await d.waitForRequest(blockingOn("/v1/kv/app", i0));
    expect(held.query.wait).toBe("60s");
    d.set("app/y", "2");
    expect(await watch).toBe(d.index);
  });

  test("writes to /application and writes that change nothing do not resolve a watch on /app", async () => {
    const d = double();
    d.set("app/x", "1");
    const c = await client([d.node]);
    const i0 = await c.watchPrefix("/app", 0, never);
    const watch = track(c.watchPrefix("/app", i0, never));
    await d.waitForRequest(blockingOn("/v1/kv/app", i0));
    // Consul's recurse is a raw prefix: this moves the index of "app" and answers the held query...
    d.set("application/x", "noise");
    // ...after which the watch asks again (after the rate limit's pause), blocking on the new index, still pending.
    await whilePending(watch, d.waitForRequest(blockingOn("/v1/kv/app", d.index)));
    d.set("app/x", "1");
    await whilePending(watch, d.waitForRequest(blockingOn("/v1/kv/app", d.index)));
    expect(watch.settled).toBe(false);
    d.set("app/x", "2");
    expect(await watch.promise).toBe(d.index);
  });

  test("a change between two calls resolves the next call at once", async () => {
    const d = double();
    d.set("app/x", "1");
    const c = await client([d.node]);
    const i0 = await c.watchPrefix("/app", 0, never);
    d.set("app/x", "2");
    const before = d.requests.length;
    expect(await c.watchPrefix("/app", i0, never)).toBe(d.index);
    // One request, answered at once since the index had moved past i0: nothing was held.
    expect(d.requests.length - before).toBe(1);
    expect(await d.requests.at(-1)!.ended).toBe("answered");
  });

  test("an index that goes backwards resolves at once, and the watch carries on from the new one; 0 becomes 1", async () => {
    const d = double();
    d.set("app/a", "1");
    d.set("app/b", "2");
    const c = await client([d.node]);
    const i0 = await c.watchPrefix("/app", 0, never);
    expect(i0).toBe(3);

    const first = c.watchPrefix("/app", i0, never);
    await d.waitForRequest(blockingOn("/v1/kv/app", i0));
    d.resetIndex(2);
    expect(await first).toBe(2);

    const second = c.watchPrefix("/app", 2, never);
    await d.waitForRequest(blockingOn("/v1/kv/app", 2));
    d.set("app/a", "changed");
    expect(await second).toBe(3);

    const third = c.watchPrefix("/app", 3, never);
    await nextRequest(d, blockingOn("/v1/kv/app", 3));
    d.resetIndex(0);
    expect(await third).toBe(1);
    await expect(c.getValues(["/app"])).resolves.toEqual(
      new Map([
        ["/app/a", "changed"],
        ["/app/b", "2"],
      ]),
    );
  });

  test("blocking queries are rate-limited as Consul asks of loops: a burst of 2, then one a second", () => {
    let now = 0;
    const pace = blockingPace(() => now, () => 0);
    expect([pace(), pace()]).toEqual([0, 0]);
    // The bucket is empty: the third request waits for a token, and the fourth for the next one.
    expect(pace()).toBe(1000);
    expect(pace()).toBe(2000);
    // Quiet for long enough, the bucket is full again (and the debt paid).
    now += 10_000;
    expect([pace(), pace()]).toEqual([0, 0]);
    // Once it runs dry, a random part of up to 2% of the 60 s wait spreads the instances a key woke together.
    expect(blockingPace(() => 0, () => 1)()).toBe(0);
    const spread = blockingPace(() => 0, () => 1);
    spread();
    spread();
    expect(spread()).toBe(1000 + 1200);
  });

  test("20 callers on one prefix share one blocking request", async () => {
    const d = double();
    d.set("app/x", "1");
    const c = await client([d.node]);
    const i0 = await c.watchPrefix("/app", 0, never);
    const watches = Array.from({ length: 20 }, (_, i) => c.watchPrefix("/app/", i0, never));
    await d.waitForRequest(blockingOn("/v1/kv/app", i0));
    d.set("app/x", "2");
    expect(new Set(await Promise.all(watches))).toEqual(new Set([d.index]));
    expect(d.requests.filter((r) => r.query.index !== undefined)).toHaveLength(1);
  });

  test("an abort rejects with its reason; the request is cancelled only when no caller is left", async () => {
    const d = double();
    d.set("app/x", "1");
    const c = await client([d.node]);
    const i0 = await c.watchPrefix("/app", 0, never);
    const [a, b] = [new AbortController(), new AbortController()];
    const first = c.watchPrefix("/app", i0, a.signal);
    const second = c.watchPrefix("/app", i0, b.signal);
    const held = await d.waitForRequest(blockingOn("/v1/kv/app", i0));
    a.abort(new Error("first stops"));
    await expect(first).rejects.toThrow("first stops");
    d.set("app/x", "2");
    expect(await second).toBe(d.index);
    expect(await held.ended).toBe("answered");

    const last = new AbortController();
    const third = c.watchPrefix("/app", d.index, last.signal);
    const lastHeld = await d.waitForRequest(blockingOn("/v1/kv/app", d.index));
    last.abort(new Error("last stops"));
    await expect(third).rejects.toThrow("last stops");
    expect(await lastHeld.ended).toBe("abandoned");
  });

  test("close() rejects pending watches and cancels their request", async () => {
    const d = double();
    const c = await connect({ ...defaults(), backend: "consul", nodes: [d.node] });
    const i0 = await c.watchPrefix("/app", 0, never);
    const watch = c.watchPrefix("/app", i0, never);
    const held = await d.waitForRequest(blockingOn("/v1/kv/app", i0));
    await c.close();
    await expect(watch).rejects.toThrow("closed");
    expect(await held.ended).toBe("abandoned");
    await expect(c.watchPrefix("/app", i0, never)).rejects.toThrow("closed");
  });
});

describe("nodes", () => {
  test("a dead first node fails over to the next one", async () => {
    const d = double();
    d.set("app/x", "1");
    const dead = `127.0.0.1:${freePort()}`;
    const c = await client([dead, d.node]);
    expect(await c.getValues(["/app"])).toEqual(new Map([["/app/x", "1"]]));
    const i0 = await c.watchPrefix("/app", 0, never);
    const watch = c.watchPrefix("/app", i0, never);
    await d.waitForRequest(blockingOn("/v1/kv/app", i0));
    d.set("app/x", "2");
    expect(await watch).toBe(d.index);
  });

  test("failover sticks to the node that answered", async () => {
    const [first, second] = [double(), double()];
    first.set("app/x", "first");
    second.set("app/x", "second");
    const c = await client([first.node, second.node]);
    expect(await c.getValues(["/app"])).toEqual(new Map([["/app/x", "first"]]));
    await first.stop();
    expect(await c.getValues(["/app"])).toEqual(new Map([["/app/x", "second"]]));
    first.restart();
    const asked = first.requests.length;
    expect(await c.getValues(["/app"])).toEqual(new Map([["/app/x", "second"]]));
    expect(first.requests.length).toBe(asked);
  });

  // A listener whose accept queue is full drops new connections' SYNs: the connect hangs, as with a
  // firewalled or vanished host. Python gives a listener that never accepts; Bun's accept at once.
  test.skipIf(!Bun.which("python3"))("a node that never accepts the connection is given up after the 5 s connect timeout", async () => {
    const script = [
      "import socket, time",
      "s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(0)",
      "port = s.getsockname()[1]",
      "fill = [socket.socket() for _ in range(3)]",
      "[f.setblocking(False) or f.connect_ex(('127.0.0.1', port)) for f in fill]",
      "print(port, flush=True)",
      "time.sleep(60)",
    ].join("\n");
    const listener = Bun.spawn(["python3", "-c", script], { stdout: "pipe" });
    cleanups.push(() => listener.kill());
    const { value } = await listener.stdout.getReader().read();
    const node = `127.0.0.1:${Number(new TextDecoder().decode(value).trim())}`;
    const c = await client([node]);
    // Given up by the connect timeout (its message says so), not by the 10 s request timeout.
    const err = await c.getValues(["/app"]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfdError);
    expect((err as ConfdError).message).toContain(`cannot be reached: ${node} (no connection within 5 s)`);
  });

  test("no node reachable: a ConfdError naming every node", async () => {
    const nodes = [`127.0.0.1:${freePort()}`, `127.0.0.1:${freePort()}`];
    const c = await client(nodes);
    const err = await c.getValues(["/app"]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfdError);
    expect((err as ConfdError).message).toContain("cannot be reached");
    for (const node of nodes) expect((err as ConfdError).message).toContain(node);
  });

  test("a store that stops rejects the watch; once back, watching resumes", async () => {
    const token = "t0ken-do-not-print";
    const d = double({ token });
    d.set("app/x", "1");
    const c = await client([d.node], { authToken: token, basicAuth: true, username: "u", password: "pw-do-not-print" });
    const i0 = await c.watchPrefix("/app", 0, never);
    const watch = c.watchPrefix("/app", i0, never);
    await d.waitForRequest(blockingOn("/v1/kv/app", i0));

    await d.stop();
    const err = await watch.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfdError);
    const message = (err as ConfdError).message;
    expect(message).toContain("cannot be reached");
    expect(message).toContain(d.node);
    expect(message).not.toContain(token);
    expect(message).not.toContain("pw-do-not-print");
    // While it is down, a retry fails as fast.
    await expect(c.watchPrefix("/app", i0, never)).rejects.toThrow("cannot be reached");

    d.restart();
    const resumed = c.watchPrefix("/app", i0, never);
    await nextRequest(d, blockingOn("/v1/kv/app", i0));
    d.set("app/x", "2");
    expect(await resumed).toBe(d.index);
    expect(await c.getValues(["/app"])).toEqual(new Map([["/app/x", "2"]]));
  });

  test("a node given as a URL names its own scheme; a bad node is a configuration error", async () => {
    const d = double();
    d.set("app/x", "1");
    const c = await client([d.url]);
    expect(await c.getValues(["/app"])).toEqual(new Map([["/app/x", "1"]]));
    await expect(connect({ ...defaults(), backend: "consul", nodes: ["ftp://x:1"] })).rejects.toThrow("scheme must be http or https");
  });
});
