// The zookeeper backend against a real ZooKeeper (test/zookeeper-server.ts, started once for the file:
// a JVM is slow to start): confd's integration fixture byte for byte, the key mapping, watches in
// process, and confd as a process with -watch through a change, a delete, a new child, a server
// restart and a session expiry; bad and unreachable nodes.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { encodeText } from "../src/bytes.ts";
import { connect } from "../src/backends/zookeeper.ts";
import { ConfdError } from "../src/errors.ts";
import { defaults } from "../src/options.ts";
import type { StoreClient } from "../src/store.ts";
import { baseEnv, CONFD_FIXTURE, freePort, Lines, runConfd, settlesAtOnce, spawnConfd, tempDir, writeTree } from "./helpers.ts";
import { startZookeeper, zkWriter, type ZkWriter, type ZookeeperServer } from "./zookeeper-server.ts";

const tmp = tempDir("confd-zk-test-");
let server: ZookeeperServer;
let writer: ZkWriter;
const clients: StoreClient[] = [];
const never = new AbortController().signal;

beforeAll(async () => {
  server = await startZookeeper();
  writer = zkWriter(server.node);
});

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await server?.stop();
  tmp.cleanup();
});

async function client(nodes = [server.node]): Promise<StoreClient> {
  const c = await connect({ ...defaults(), backend: "zookeeper", nodes });
  clients.push(c);
  return c;
}

const fixture = Bun.YAML.parse(readFileSync(join(CONFD_FIXTURE, "data.yaml"), "utf8")) as {
  keys: Record<string, string>;
  nested_keys: Record<string, string>;
};

/** The fixture's conf.d with each dest moved into `out`; Go templates as confd ships them, or our handlebars versions. */
function fixtureConfdir(engine: "go" | "handlebars"): { dir: string; out: string } {
  const dir = join(tmp.path, `fixture-${engine}`);
  const out = join(dir, "out");
  const files: Record<string, string> = { "out/.keep": "" };
  for (const f of readdirSync(join(CONFD_FIXTURE, "confdir", "conf.d"))) {
    let text = readFileSync(join(CONFD_FIXTURE, "confdir", "conf.d", f), "utf8").replace(/dest = "\/tmp\/(.*)"/, (_, base: string) => `dest = ${JSON.stringify(join(out, base))}`);
    if (engine === "handlebars") text = text.replace(/src = "(.*)\.tmpl"/, 'src = "$1.hbs"');
    files[`conf.d/${f}`] = text;
  }
  const templates = engine === "handlebars" ? join(CONFD_FIXTURE, "handlebars") : join(CONFD_FIXTURE, "confdir", "templates");
  for (const f of readdirSync(templates)) files[`templates/${f}`] = readFileSync(join(templates, f), "utf8");
  writeTree(dir, files);
  return { dir, out };
}

describe("confd integration fixture", () => {
  for (const engine of ["go", "handlebars"] as const) {
    test(`renders byte-identical from zookeeper holding the same keys (${engine} templates)`, async () => {
      // As confd's suite writes them: parents are nodes without data.
      await writer.putAll(Object.entries({ ...fixture.keys, ...fixture.nested_keys }));
      const { dir, out } = fixtureConfdir(engine);
      const r = await runConfd(["-onetime", "-log-level", "debug", "-confdir", dir, "-backend", "zookeeper", "-node", server.node, "-config-file", join(dir, "none")], {
        env: baseEnv({ HOSTNAME: "localhost" }),
      });
      expect(r.stderr).not.toContain("ERROR");
      expect(r.code).toBe(0);
      for (const [rendered, expected] of [
        ["confd-basic-test.conf", "basic.conf"],
        ["confd-exists-test.conf", "exists-test.conf"],
        ["confd-iteration-test.conf", "iteration.conf"],
        ["confd-manykeys-test.conf", "basic.conf"],
      ]) {
        expect(readFileSync(join(out, rendered!), "utf8")).toBe(readFileSync(join(CONFD_FIXTURE, "expect", expected!), "utf8"));
      }
      // Not compared upstream: "/nested/*" matches no key (the keys are two levels down), in confd as here.
      expect(readFileSync(join(out, "confd-nested-test.conf"), "utf8")).toMatch(/^upstream app {\n\n*}\n/);
      // The debug log names keys, never values.
      expect(r.stderr).toContain("/database/password");
      expect(r.stderr).not.toContain(fixture.keys["/database/password"]!);
    });
  }
});

describe("reads", () => {
  test("subtrees on a / boundary; leaves are keys, empty data included; a missing key is no key", async () => {
    await writer.putAll([
      ["/r/app/a", "1"],
      ["/r/app/b/c", "2"],
      ["/r/app/empty", ""],
      ["/r/application/x", "other"],
      ["/r/app-x", "dash"],
    ]);
    const c = await client();
    expect(Object.fromEntries(await c.getValues(["/r/app"]))).toEqual({ "/r/app/a": "1", "/r/app/b/c": "2", "/r/app/empty": "" });
    expect(Object.fromEntries(await c.getValues(["/r/app/", "/r/app/b"]))).toEqual({ "/r/app/a": "1", "/r/app/b/c": "2", "/r/app/empty": "" });
    // confd's templates may still name a subtree "/app/*".
    expect(Object.fromEntries(await c.getValues(["/r/app/b/*"]))).toEqual({ "/r/app/b/c": "2" });
    expect(Object.fromEntries(await c.getValues(["/r/app/a", "/r/missing", "/r/app/b/c/deeper"]))).toEqual({ "/r/app/a": "1" });
    expect((await c.getValues([])).size).toBe(0);
    const all = await c.getValues(["/"]);
    expect(all.get("/r/application/x")).toBe("other");
    expect(all.get("/r/app-x")).toBe("dash");
  });

  test("a node with children is a key when it holds data (confd drops that value); a directory without data is not", async () => {
    await writer.putAll([
      ["/d/both", "parent value"],
      ["/d/both/child", "c"],
    ]);
    const c = await client();
    expect(Object.fromEntries(await c.getValues(["/d"]))).toEqual({ "/d/both": "parent value", "/d/both/child": "c" });
  });

  test("values are bytes: not UTF-8, multi-byte, and up to ZooKeeper's 1 MB limit come back as written", async () => {
    const latin1 = Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x00, 0xff]);
    const big = Buffer.alloc(1000 * 1000, "0123456789abcdef");
    await writer.putAll([
      ["/b/latin1", latin1],
      ["/b/utf8", "é ✓ 日本"],
      ["/b/big", big],
    ]);
    const values = await (await client()).getValues(["/b"]);
    expect(encodeText(values.get("/b/latin1")!)).toEqual(latin1);
    expect(values.get("/b/utf8")).toBe("é ✓ 日本");
    expect(encodeText(values.get("/b/big")!)).toEqual(big);
  });

  test("1,000 keys in a subtree, nested two levels, all read; and as 1,000 keys asked for one by one", async () => {
    const entries: [string, string][] = Array.from({ length: 1000 }, (_, i) => [`/many/g${i % 10}/k${i}`, `v${i}`]);
    await writer.putAll(entries);
    const c = await client();
    const values = await c.getValues(["/many"]);
    expect(values.size).toBe(1000);
    expect(values.get("/many/g9/k999")).toBe("v999");
    // As many distinct keys, each its own subtree.
    expect(await c.getValues(entries.map(([key]) => key))).toEqual(values);
  });

  test("a key ZooKeeper cannot name is an error naming the key", async () => {
    const err = await (await client()).getValues(["/bad//name"]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfdError);
    expect((err as ConfdError).message).toContain('"/bad//name"');
  });
});

describe("watches in process", () => {
  let c: StoreClient;
  beforeAll(async () => {
    c = await client();
  });

  test("index 0 resolves once the watches are set; a data change resolves the next call", async () => {
    await writer.put("/w1/k", "1");
    const index = await c.watchPrefix("/w1", 0, never);
    const next = c.watchPrefix("/w1", index, never);
    await writer.put("/w1/k", "2");
    expect(await next).toBe(index + 1);
    // confd's "/app/*" names the same subtree.
    const again = c.watchPrefix("/w1/*", index + 1, never);
    await writer.put("/w1/k", "3");
    expect(await again).toBe(index + 2);
  });

  test("a new child, a change below it, and a delete each resolve the watch once", async () => {
    await writer.put("/w2/k", "1");
    let index = await c.watchPrefix("/w2", 0, never);
    for (const step of [() => writer.put("/w2/new/deep", "x"), () => writer.put("/w2/new/deep", "y"), () => writer.del("/w2/new")]) {
      const next = c.watchPrefix("/w2", index, never);
      await step();
      const got = await next;
      expect(got).toBe(index + 1);
      index = got;
    }
  });

  test("a prefix that does not exist yet: its creation resolves the watch", async () => {
    const index = await c.watchPrefix("/w3", 0, never);
    const next = c.watchPrefix("/w3", index, never);
    await writer.put("/w3/later", "v");
    expect(await next).toBe(index + 1);
    expect(Object.fromEntries(await c.getValues(["/w3"]))).toEqual({ "/w3/later": "v" });
  });

  test("/application does not fire a watch on /app; a change between two calls resolves the next at once", async () => {
    await writer.putAll([
      ["/w4/app/k", "1"],
      ["/w4/application/k", "1"],
      ["/w4/marker/k", "1"],
    ]);
    const index = await c.watchPrefix("/w4/app", 0, never);
    const marker = await c.watchPrefix("/w4/marker", 0, never);
    let fired = false;
    const pending = c.watchPrefix("/w4/app", index, never).then((i) => ((fired = true), i));
    await writer.put("/w4/application/k", "2");
    await writer.put("/w4/application/new", "x");
    // Notifications come in order on the one connection: once the marker's is in, /application's were too.
    const markerNext = c.watchPrefix("/w4/marker", marker, never);
    await writer.put("/w4/marker/k", "2");
    await markerNext;
    expect(fired).toBe(false);
    await writer.put("/w4/app/k", "2");
    expect(await pending).toBe(index + 1);
    // Nobody waits on /w4/app now; a change comes meanwhile, and the next call resolves without waiting.
    const seen = index + 1;
    const markerAgain = c.watchPrefix("/w4/marker", marker + 1, never);
    await writer.put("/w4/app/k", "3");
    await writer.put("/w4/marker/k", "3");
    await markerAgain;
    const next = c.watchPrefix("/w4/app", seen, never);
    expect(await settlesAtOnce(next)).toBe(true);
    expect(await next).toBe(seen + 1);
  });
});

let counter = 0;

/** A confdir whose resources each render some keys, and confd running on it with -watch. */
function watchSetup(resources: { name: string; template: string; keys: string[] }[]) {
  const dir = join(tmp.path, `watch${++counter}`);
  const files: Record<string, string> = { "out/.keep": "" };
  for (const r of resources) {
    files[`templates/${r.name}.hbs`] = r.template;
    files[`conf.d/${r.name}.toml`] = `[template]\nsrc = "${r.name}.hbs"\ndest = ${JSON.stringify(join(dir, "out", r.name))}\nkeys = ${JSON.stringify(r.keys)}\n`;
  }
  writeTree(dir, files);
  const child = spawnConfd(["-watch", "-confdir", dir, "-config-file", join(dir, "none"), "-log-level", "debug", "-backend", "zookeeper", "-node", server.node]);
  const stderr = new Lines(child.stderr);
  const out = (name: string) => readFileSync(join(dir, "out", name), "utf8");
  const escaped = (name: string) => join(dir, "out", name).replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  /** Waits until `name` has been updated `times` times in all. */
  const updated = (name: string, times = 1) => stderr.waitForCount(new RegExp(`Target config ${escaped(name)} has been updated`), times);
  const count = (text: string) => stderr.seen.filter((l) => l.includes(text)).length;
  const stop = async () => {
    if (child.exitCode === null) child.kill("SIGTERM");
    expect(await child.exited).toBe(0);
  };
  return { child, out, updated, count, stop, stderr };
}

describe("confd -watch", () => {
  test("a change, a new child node and a delete reach the file", async () => {
    await writer.putAll([
      ["/e1/app/a", "1"],
      ["/e1/app/b", "x"],
    ]);
    const w = watchSetup([{ name: "list", template: '{{#each (gets "/e1/app/*")}}{{Key}}={{Value}}\n{{/each}}', keys: ["/e1/app"] }]);
    try {
      await w.updated("list");
      expect(w.out("list")).toBe("/e1/app/a=1\n/e1/app/b=x\n");
      await writer.put("/e1/app/a", "2");
      await w.updated("list", 2);
      expect(w.out("list")).toBe("/e1/app/a=2\n/e1/app/b=x\n");
      await writer.put("/e1/app/c", "new");
      await w.updated("list", 3);
      expect(w.out("list")).toBe("/e1/app/a=2\n/e1/app/b=x\n/e1/app/c=new\n");
      await writer.del("/e1/app/a");
      await w.updated("list", 4);
      expect(w.out("list")).toBe("/e1/app/b=x\n/e1/app/c=new\n");
    } finally {
      await w.stop();
    }
  });

  test("server killed and restarted mid-watch: one line for lost, one for restored, and a change made after it reaches the file", async () => {
    await writer.put("/e2/v", "before");
    const w = watchSetup([{ name: "r", template: '{{getv "/e2/v"}}\n', keys: ["/e2"] }]);
    try {
      await w.updated("r");
      await server.kill();
      await w.stderr.waitFor(/store connection lost/);
      await server.restart();
      await writer.put("/e2/v", "after");
      await w.updated("r", 2);
      expect(w.out("r")).toBe("after\n");
      await w.stderr.waitFor(/store connection restored/);
      expect(w.count("store connection lost")).toBe(1);
      expect(w.count("store connection restored")).toBe(1);

    } finally {
      await w.stop();
    }
  });

  test("server restarted with its data lost: confd gives up the session the server refuses, and renders what the new server holds", async () => {
    await writer.put("/e5/v", "before");
    const w = watchSetup([{ name: "r", template: '{{getv "/e5/v"}}\n', keys: ["/e5"] }]);
    try {
      await w.updated("r");
      await server.kill();
      await w.stderr.waitFor(/store connection lost/);
      // The new server's history is behind what confd has seen: it refuses confd's session for ever.
      await server.restart({ wipe: true });
      await writer.put("/e5/v", "rebuilt");
      await w.updated("r", 2);
      expect(w.out("r")).toBe("rebuilt\n");
      await w.stderr.waitFor(/store connection restored/);
      expect(w.count("store connection lost")).toBe(1);
      expect(w.count("store connection restored")).toBe(1);
    } finally {
      await w.stop();
    }
  });

  test("a server that stops answering, its connections open: confd drops the connection, reports the loss, and recovers when it answers again", async () => {
    await writer.put("/e4/v", "before");
    const w = watchSetup([{ name: "r", template: '{{getv "/e4/v"}}\n', keys: ["/e4"] }]);
    try {
      await w.updated("r");
      server.pause();
      try {
        // The library alone would wait on the open connection for ever: no loss would be seen.
        await w.stderr.waitFor(/store connection lost/);
      } finally {
        server.resume();
      }
      await writer.put("/e4/v", "after");
      await w.updated("r", 2);
      expect(w.out("r")).toBe("after\n");
      await w.stderr.waitFor(/store connection restored/);
      expect(w.count("store connection lost")).toBe(1);
      expect(w.count("store connection restored")).toBe(1);
    } finally {
      await w.stop();
    }
  });

  test("a session the server expired (confd stopped past its timeout): one full re-read on a new session, one lost and one restored line", async () => {
    await writer.putAll([
      ["/e3/v", "before"],
      ["/e3/other", "o"],
    ]);
    const w = watchSetup([{ name: "r", template: '{{getv "/e3/v"}} {{getv "/e3/other"}}\n', keys: ["/e3"] }]);
    try {
      await w.updated("r");
      // confd's session, as its debug log names it (other tests leave sessions to expire too).
      const session = /zookeeper: connected \(session (0x[0-9a-f]+),/.exec(w.stderr.seen.find((l) => l.includes("zookeeper: connected"))!)![1]!;
      const from = server.log.seen.length;
      process.kill(w.child.pid, "SIGSTOP");
      try {
        await server.log.waitFor(new RegExp(`Expiring session ${session}, timeout of \\d+ms exceeded`), from);
        // The session and its watches are gone: no notification of this change is sent to anyone.
        await writer.put("/e3/v", "during");
      } finally {
        process.kill(w.child.pid, "SIGCONT");
      }
      await w.updated("r", 2);
      expect(w.out("r")).toBe("during o\n");
      await w.stderr.waitFor(/store connection restored/);
      const lost = w.stderr.seen.filter((l) => l.includes("store connection lost"));
      expect(lost).toHaveLength(1);
      expect(lost[0]).toContain(`zookeeper at ${server.node}: the session expired`);
      expect(w.count("store connection restored")).toBe(1);
      // One watch, woken once: the one re-read.
      expect(w.count("Watch on /e3 woke at index")).toBe(1);
      // Watching goes on, on the new session.
      await writer.put("/e3/other", "p");
      await w.updated("r", 3);
      expect(w.out("r")).toBe("during p\n");
    } finally {
      await w.stop();
    }
  });
});

describe("nodes", () => {
  test("an unreachable node at -onetime: exit 1, one error line naming the node", async () => {
    const dead = `127.0.0.1:${freePort()}`;
    const dir = join(tmp.path, "unreachable");
    writeTree(dir, {
      "conf.d/a.toml": `[template]\nsrc = "a.tmpl"\ndest = ${JSON.stringify(join(dir, "a.out"))}\nkeys = ["/a"]\n`,
      "templates/a.tmpl": '{{getv "/a/b"}}\n',
    });
    const r = await runConfd(["-onetime", "-confdir", dir, "-backend", "zookeeper", "-node", dead, "-config-file", join(dir, "none")]);
    expect(r.code).toBe(1);
    const errors = r.stderr.split("\n").filter((l) => / (ERROR|FATAL) /.test(l));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toContain(`cannot reach zookeeper at ${dead}`);
  });

  test("a server that answers garbage: exit 1, one error line naming the node, no stack trace", async () => {
    const answers = [Buffer.from("HTTP/1.1 400 Bad Request\r\n\r\n"), Buffer.from([0, 0, 0, 4, 1, 2, 3, 4])];
    const servers = answers.map((answer) => Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { open: (socket) => void socket.write(answer), data() {} } }));
    try {
      const dir = join(tmp.path, "garbage");
      writeTree(dir, {
        "conf.d/a.toml": `[template]\nsrc = "a.tmpl"\ndest = ${JSON.stringify(join(dir, "a.out"))}\nkeys = ["/a"]\n`,
        "templates/a.tmpl": '{{getv "/a/b"}}\n',
      });
      const runs = await Promise.all(
        servers.map((s) => runConfd(["-onetime", "-confdir", dir, "-backend", "zookeeper", "-node", `127.0.0.1:${s.port}`, "-config-file", join(dir, "none")])),
      );
      for (const [i, r] of runs.entries()) {
        expect(r.code).toBe(1);
        const lines = r.stderr.trim().split("\n");
        const errors = lines.filter((l) => / (ERROR|FATAL) /.test(l));
        expect(errors).toHaveLength(1);
        expect(errors[0]).toContain(`cannot reach zookeeper at 127.0.0.1:${servers[i]!.port}`);
        // Every line is a log line: nothing thrown past the backend.
        expect(lines.every((l) => / confd\[\d+\]: [A-Z]+ /.test(l))).toBe(true);
      }
    } finally {
      for (const s of servers) s.stop(true);
    }
  });

  test("a bad -node is refused at start, naming the flag and the value", async () => {
    for (const bad of ["no spaces:1", "host:99999", "[::1]:2181", "zk://host:2181"]) {
      const r = await runConfd(["-onetime", "-confdir", tmp.path, "-backend", "zookeeper", "-node", bad, "-config-file", join(tmp.path, "none")]);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain(`flag -node: invalid zookeeper node "${bad}"`);
    }
  });

  test("several nodes: one down, the other serves; -password is named as ignored, never shown", async () => {
    await writer.put("/n/k", "v");
    const c = await client([`127.0.0.1:${freePort()}`, server.node]);
    expect(Object.fromEntries(await c.getValues(["/n"]))).toEqual({ "/n/k": "v" });
    const dir = join(tmp.path, "password");
    writeTree(dir, {
      "conf.d/a.toml": `[template]\nsrc = "a.tmpl"\ndest = ${JSON.stringify(join(dir, "a.out"))}\nkeys = ["/n"]\n`,
      "templates/a.tmpl": '{{getv "/n/k"}}\n',
    });
    const secret = "s3cret-pass";
    const r = await runConfd(["-onetime", "-confdir", dir, "-backend", "zookeeper", "-node", server.node, "-password", secret, "-config-file", join(dir, "none")]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain("-password is read by the etcd, etcdv3, consul, redis, vault backends only; ignored with -backend zookeeper");
    expect(r.stderr).not.toContain(secret);
    expect(readFileSync(join(dir, "a.out"), "utf8")).toBe("v\n");
  });
});
