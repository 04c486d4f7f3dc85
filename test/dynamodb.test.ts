// The dynamodb backend against dynalite (test/dynamo-server.ts), a DynamoDB emulator run on loopback by
// the tests: confd as a process for what a user sees (files, exit codes, log lines), and the store
// client in process for what each read returns. No sleeps: runs are awaited, and a watch through its log.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { CreateTableCommand, PutItemCommand, ScanCommand, type AttributeValue } from "@aws-sdk/client-dynamodb";
import { connect } from "../src/backends/dynamodb.ts";
import { configureLog } from "../src/log.ts";
import { defaults } from "../src/options.ts";
import type { StoreClient } from "../src/store.ts";
import { awsEnv, TEST_CREDENTIALS, useAwsProcessEnv } from "./aws-env.ts";
import { startDynalite, type DynamoServer } from "./dynamo-server.ts";
import { expectFixtureOutput, FIXTURE_DATA, fixtureConfdir } from "./fixture.ts";
import { freePort, Lines, runConfd, spawnConfd, tempDir, writeTree } from "./helpers.ts";

const tmp = tempDir();
let server: DynamoServer;
let counter = 0;

beforeAll(async () => {
  server = await startDynalite();
  await server.putMany(Object.entries(FIXTURE_DATA));
  // As confd's own integration test: a value that is not a string is skipped.
  await server.put("/upstream/broken", { N: "4711" });
});

afterAll(async () => {
  await server?.stop();
  tmp.cleanup();
});

/** A confdir of one resource rendering `template` from `keys`. */
function confdir(template: string, keys: string[]): { dir: string; out: string } {
  const dir = join(tmp.path, `c${++counter}`);
  const out = join(dir, "out", "r.conf");
  writeTree(dir, {
    "templates/r.tmpl": template,
    "conf.d/r.toml": `[template]\nsrc = "r.tmpl"\ndest = ${JSON.stringify(out)}\nkeys = ${JSON.stringify(keys)}\n`,
    "out/.keep": "",
  });
  return { dir, out };
}

const dynamoArgs = (dir: string, table = server.table) => ["-backend", "dynamodb", "-table", table, "-confdir", dir, "-config-file", join(dir, "none")];
const env = (extra: Record<string, string | undefined> = {}) => awsEnv({ DYNAMODB_LOCAL: server.endpoint, ...extra });
const logLines = (stderr: string, level: string) => stderr.split("\n").filter((l) => l.includes(` ${level} `));

describe("confd -backend dynamodb", () => {
  test("confd's integration fixture renders byte-identical; a number value is skipped with a warning; no credential is logged", async () => {
    const { dir, out } = fixtureConfdir(join(tmp.path, "fixture"));
    const r = await runConfd(["-onetime", "-log-level", "debug", ...dynamoArgs(dir)], { env: env() });
    expect(logLines(r.stderr, "ERROR")).toEqual([]);
    expect(r.code).toBe(0);
    expectFixtureOutput(out);
    expect(r.stderr).toContain("DynamoDB table set to confd");
    expect(logLines(r.stderr, "WARNING").filter((l) => l.includes("/upstream/broken"))).toHaveLength(1);
    expect(r.stderr).toContain('Skipping key /upstream/broken: its "value" is of DynamoDB type N, not a string');
    expect(r.stderr).not.toContain(TEST_CREDENTIALS.AWS_SECRET_ACCESS_KEY);
    expect(r.stderr).not.toContain(FIXTURE_DATA["/database/password"]!);
  });

  test("more than 1 MB of items: the Scan is followed to its last page", async () => {
    const big = await startDynalite({ table: "confd-big" });
    try {
      // 300 items of 8 KB: about 2.4 MB, where a Scan returns 1 MB a page.
      const keys = Array.from({ length: 300 }, (_, i) => `/big/k${String(i).padStart(3, "0")}`);
      await big.putMany(keys.map((k, i) => [k, `${i}`.padEnd(8192, ".")]));
      await big.put("/bigger/not-under-big", "x");
      // The pages a Scan of the table returns, as DynamoDB (here dynalite) splits them.
      const pages: string[][] = [];
      let start: Record<string, AttributeValue> | undefined;
      do {
        const page = await big.client.send(new ScanCommand({ TableName: big.table, ExclusiveStartKey: start }));
        pages.push((page.Items ?? []).map((item) => item.key!.S!));
        start = page.LastEvaluatedKey;
      } while (start);
      const onLastPage = pages.findLast((p) => p.some((k) => k.startsWith("/big/")))!.find((k) => k.startsWith("/big/"))!;
      expect(pages.length).toBeGreaterThanOrEqual(3);
      expect(pages[0]).not.toContain(onLastPage);

      const { dir, out } = confdir('{{range gets "/big/*"}}{{.Key}} {{len .Value}}\n{{end}}', ["/big"]);
      const r = await runConfd(["-onetime", ...dynamoArgs(dir, big.table)], { env: awsEnv({ DYNAMODB_LOCAL: big.endpoint }) });
      expect(r.code).toBe(0);
      const lines = readFileSync(out, "utf8").trimEnd().split("\n");
      expect(lines).toEqual(keys.map((k) => `${k} 8192`));
      expect(lines).toContain(`${onLastPage} 8192`);
    } finally {
      await big.stop();
    }
  });

  test("-watch polls every -interval, as said once at start: a change reaches the file", async () => {
    await server.put("/w1/v", "first");
    const { dir, out } = confdir('v={{getv "/w1/v"}}\n', ["/w1"]);
    const child = spawnConfd(["-watch", "-interval", "1", ...dynamoArgs(dir)], { env: env() });
    const stderr = new Lines(child.stderr);
    try {
      await stderr.waitFor(/Target config .* has been updated/);
      expect(readFileSync(out, "utf8")).toBe("v=first\n");
      await server.put("/w1/v", "second");
      await stderr.waitForCount(/Target config .* has been updated/, 2);
      expect(readFileSync(out, "utf8")).toBe("v=second\n");
      expect(stderr.seen.filter((l) => l.includes("The dynamodb backend cannot be watched: with -watch confd polls it every 1s (-interval)"))).toHaveLength(1);
    } finally {
      child.kill("SIGTERM");
      expect(await child.exited).toBe(0);
    }
  });

  test("-watch -onetime renders once and exits 0 (confd exits 1: watch is not supported)", async () => {
    await server.put("/w2/v", "once");
    const { dir, out } = confdir('{{getv "/w2/v"}}\n', ["/w2/v"]);
    const r = await runConfd(["-watch", "-onetime", ...dynamoArgs(dir)], { env: env() });
    expect(r.code).toBe(0);
    expect(readFileSync(out, "utf8")).toBe("once\n");
    expect(r.stderr).not.toContain("polls it");
  });

  test("-watch with -interval 0 is refused, naming the flag", async () => {
    const { dir } = confdir("x\n", ["/x"]);
    const r = await runConfd(["-watch", "-interval", "0", ...dynamoArgs(dir)], { env: env() });
    expect(r.code).toBe(1);
    expect(logLines(r.stderr, "FATAL")).toEqual([expect.stringContaining("flag -interval: interval must be a positive number of seconds, got 0")]);
  });

  test("no -table, or an invalid one: one line naming the flag, exit 1", async () => {
    const { dir } = confdir("x\n", ["/x"]);
    const missing = await runConfd(["-onetime", "-backend", "dynamodb", "-confdir", dir, "-config-file", join(dir, "none")], { env: env() });
    expect(missing.code).toBe(1);
    expect(logLines(missing.stderr, "FATAL")).toEqual([expect.stringContaining("flag -table: the dynamodb backend needs the name of a table: set -table")]);
    const invalid = await runConfd(["-onetime", ...dynamoArgs(dir, "a b")], { env: env() });
    expect(invalid.code).toBe(1);
    expect(logLines(invalid.stderr, "FATAL")).toEqual([expect.stringContaining('flag -table: invalid DynamoDB table name "a b"')]);
  });

  test("a table that does not exist, or is not in confd's shape: one line naming -table, exit 1", async () => {
    const { dir } = confdir('{{getv "/x"}}\n', ["/x"]);
    const r = await runConfd(["-onetime", ...dynamoArgs(dir, "no-such-table")], { env: env() });
    expect(r.code).toBe(1);
    expect(logLines(r.stderr, "ERROR")).toEqual([expect.stringContaining(`flag -table: DynamoDB table "no-such-table" not found (${server.endpoint})`)]);
    await server.client.send(
      new CreateTableCommand({
        TableName: "other-shape",
        AttributeDefinitions: [{ AttributeName: "id", AttributeType: "S" }],
        KeySchema: [{ AttributeName: "id", KeyType: "HASH" }],
        BillingMode: "PAY_PER_REQUEST",
      }),
    );
    const shape = await runConfd(["-onetime", ...dynamoArgs(dir, "other-shape")], { env: env() });
    expect(shape.code).toBe(1);
    expect(logLines(shape.stderr, "ERROR")).toEqual([expect.stringContaining(`flag -table: DynamoDB table "other-shape" is not in confd's shape`)]);
  });

  test("an endpoint nobody listens on: one line, exit 1, and no credential in it", async () => {
    const dead = `http://127.0.0.1:${freePort()}`;
    const { dir } = confdir('{{getv "/x"}}\n', ["/x"]);
    const r = await runConfd(["-onetime", "-log-level", "debug", ...dynamoArgs(dir)], { env: env({ DYNAMODB_LOCAL: dead }) });
    expect(r.code).toBe(1);
    expect(logLines(r.stderr, "ERROR")).toEqual([expect.stringContaining(`the dynamodb store cannot be reached (${dead}): ECONNREFUSED`)]);
    expect(r.stderr).not.toContain(TEST_CREDENTIALS.AWS_SECRET_ACCESS_KEY);
  });

  test("an endpoint answering garbage, or paging for ever: one line, exit 1, nothing of the answer in it", async () => {
    let mode: "garbage" | "loop" = "garbage";
    // Not DynamoDB: an HTTP server answering every request the same broken way.
    const broken = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch: () =>
        mode === "garbage"
          ? new Response('not json: "hunter2"', { status: 200 })
          : new Response(JSON.stringify({ Items: [], LastEvaluatedKey: { key: { S: "/same" } } }), { headers: { "content-type": "application/x-amz-json-1.0" } }),
    });
    try {
      const { dir } = confdir('{{getv "/x"}}\n', ["/x"]);
      const garbage = await runConfd(["-onetime", ...dynamoArgs(dir)], { env: env({ DYNAMODB_LOCAL: `http://127.0.0.1:${broken.port}` }) });
      expect(garbage.code).toBe(1);
      expect(logLines(garbage.stderr, "ERROR")).toEqual([expect.stringContaining("the dynamodb store's answer cannot be read")]);
      expect(garbage.stderr).not.toContain("hunter2");
      mode = "loop";
      const loop = await runConfd(["-onetime", ...dynamoArgs(dir)], { env: env({ DYNAMODB_LOCAL: `http://127.0.0.1:${broken.port}` }) });
      expect(loop.code).toBe(1);
      expect(logLines(loop.stderr, "ERROR")).toEqual([expect.stringContaining("a Scan page continues from where an earlier one did")]);
    } finally {
      await broken.stop(true);
    }
  });

  test("no credentials, or no region: one line saying what to set, exit 1", async () => {
    const { dir } = confdir("x\n", ["/x"]);
    const noCredentials = await runConfd(["-onetime", ...dynamoArgs(dir)], { env: env({ AWS_ACCESS_KEY_ID: undefined, AWS_SECRET_ACCESS_KEY: undefined }) });
    expect(noCredentials.code).toBe(1);
    expect(logLines(noCredentials.stderr, "FATAL")).toEqual([expect.stringContaining("the dynamodb backend found no AWS credentials")]);
    const noRegion = await runConfd(["-onetime", ...dynamoArgs(dir)], { env: env({ AWS_REGION: undefined }) });
    expect(noRegion.code).toBe(1);
    expect(logLines(noRegion.stderr, "FATAL")).toEqual([expect.stringContaining("the dynamodb backend needs an AWS region: set AWS_REGION")]);
  });

  test("credentials and region from an AWS profile (AWS_PROFILE, shared files)", async () => {
    const dir = join(tmp.path, "profile");
    writeTree(dir, {
      "aws/credentials": `[confd-test]\naws_access_key_id = ${TEST_CREDENTIALS.AWS_ACCESS_KEY_ID}\naws_secret_access_key = ${TEST_CREDENTIALS.AWS_SECRET_ACCESS_KEY}\n`,
      "aws/config": "[profile confd-test]\nregion = eu-west-1\n",
    });
    await server.put("/p/v", "from a profile");
    const { dir: confd, out } = confdir('{{getv "/p/v"}}\n', ["/p"]);
    const r = await runConfd(["-onetime", ...dynamoArgs(confd)], {
      env: env({
        AWS_ACCESS_KEY_ID: undefined,
        AWS_SECRET_ACCESS_KEY: undefined,
        AWS_REGION: undefined,
        AWS_PROFILE: "confd-test",
        AWS_CONFIG_FILE: join(dir, "aws", "config"),
        AWS_SHARED_CREDENTIALS_FILE: join(dir, "aws", "credentials"),
      }),
    });
    expect(r.stderr).not.toContain("ERROR");
    expect(r.code).toBe(0);
    expect(readFileSync(out, "utf8")).toBe("from a profile\n");
  });

  test("the store dies while watched: the loss and the return are logged once each, and the file follows", async () => {
    const own = await startDynalite();
    try {
      await own.put("/d/v", "before");
      const { dir, out } = confdir('{{getv "/d/v"}}\n', ["/d"]);
      const child = spawnConfd(["-watch", "-interval", "1", ...dynamoArgs(dir, own.table)], { env: awsEnv({ DYNAMODB_LOCAL: own.endpoint }) });
      const stderr = new Lines(child.stderr);
      try {
        await stderr.waitFor(/has been updated/);
        await own.kill();
        await stderr.waitFor(/store connection lost: .*the dynamodb store cannot be reached/);
        // dynalite keeps its data in memory: it comes back with an empty table.
        await own.restart();
        await own.put("/d/v", "after");
        await stderr.waitForCount(/has been updated/, 2);
        expect(readFileSync(out, "utf8")).toBe("after\n");
        await stderr.waitFor(/store connection restored/);
        expect(stderr.seen.filter((l) => l.includes("store connection lost"))).toHaveLength(1);
      } finally {
        child.kill("SIGTERM");
        expect(await child.exited).toBe(0);
      }
    } finally {
      await own.stop();
    }
  });
});

describe("the store client", () => {
  useAwsProcessEnv();
  let client: StoreClient;

  beforeAll(async () => {
    client = await connect({ ...defaults(), backend: "dynamodb", table: server.table }, { env: { DYNAMODB_LOCAL: server.endpoint } });
    await server.putMany([
      ["/app/db/host", "db1"],
      ["/app/port", "80"],
      ["/application/name", "not under /app"],
      ["/leaf", "a leaf"],
      ["/leaf/below", "confd reads an item alone"],
    ]);
  });

  afterAll(async () => {
    await client?.close();
  });

  test("an item by GetItem; the keys below a key that is no item by a Scan, on the / boundary", async () => {
    expect(await client.getValues(["/app/db/host"])).toEqual(new Map([["/app/db/host", "db1"]]));
    const app = new Map([
      ["/app/db/host", "db1"],
      ["/app/port", "80"],
    ]);
    expect(await client.getValues(["/app"])).toEqual(app);
    expect(await client.getValues(["/app/"])).toEqual(app);
    expect(await client.getValues(["/missing"])).toEqual(new Map());
    // As confd: a key that is an item is read alone, even with keys below it.
    expect(await client.getValues(["/leaf"])).toEqual(new Map([["/leaf", "a leaf"]]));
    expect(await client.getValues(["/leaf/below"])).toEqual(new Map([["/leaf/below", "confd reads an item alone"]]));
  });

  test("reads that start together are answered each for its own keys", async () => {
    const [app, leaf, both] = await Promise.all([client.getValues(["/app"]), client.getValues(["/leaf"]), client.getValues(["/app/port", "/application"])]);
    expect(app).toEqual(
      new Map([
        ["/app/db/host", "db1"],
        ["/app/port", "80"],
      ]),
    );
    expect(leaf).toEqual(new Map([["/leaf", "a leaf"]]));
    expect(both).toEqual(
      new Map([
        ["/app/port", "80"],
        ["/application/name", "not under /app"],
      ]),
    );
  });

  test("value types: a string as it is, binary as its bytes; others skipped with one warning each; no value attribute: looked below", async () => {
    await server.putMany([
      ["/types/s", "text ✓"],
      ["/types/b", { B: new Uint8Array([0x63, 0x61, 0x66, 0xe9]) }],
      ["/types/n", { N: "42" }],
      ["/types/bool", { BOOL: true }],
      ["/types/m", { M: { a: { S: "nested" } } }],
      ["/types/forged\n2026-01-01T00:00:00Z host confd[1]: INFO forged", { N: "1" }],
    ]);
    // An item without a value attribute: confd looks below it.
    await server.client.send(new PutItemCommand({ TableName: server.table, Item: { key: { S: "/novalue" } } }));
    await server.put("/novalue/below", "found below");
    const lines: string[] = [];
    configureLog({ sink: (line) => lines.push(line) });
    try {
      const values = await client.getValues(["/types"]);
      expect([...values.keys()].sort()).toEqual(["/types/b", "/types/s"]);
      expect(values.get("/types/s")).toBe("text ✓");
      // "caf" and the Latin-1 byte 0xE9, which is not UTF-8: kept as the byte's escape (src/bytes.ts).
      expect(values.get("/types/b")).toBe("caf\udce9");
      expect(await client.getValues(["/types/n"])).toEqual(new Map());
      const warnings = lines.filter((l) => l.includes(" WARNING "));
      expect(warnings.filter((w) => w.includes("/types/n"))).toHaveLength(1);
      expect(warnings.some((w) => w.includes("Skipping key /types/bool") && w.includes("type BOOL"))).toBe(true);
      expect(warnings.some((w) => w.includes("Skipping key /types/m") && w.includes("type M"))).toBe(true);
      // The value 42 in no message (the timestamp before " WARNING " may hold a 42 of its own: 19:05:42).
      expect(warnings.map((w) => w.slice(w.indexOf(" WARNING "))).join("\n")).not.toContain("42");
      // A key is the store's text: a newline in it cannot start a log line of its own.
      expect(warnings.some((w) => w.includes("Skipping key /types/forged\\x0a2026-01-01T00:00:00Z host confd[1]: INFO forged:"))).toBe(true);
      expect(await client.getValues(["/novalue"])).toEqual(new Map([["/novalue/below", "found below"]]));
    } finally {
      configureLog({ sink: (line) => process.stderr.write(line) });
    }
  });

  test("the root reads every key that starts with /", async () => {
    const all = await client.getValues(["/"]);
    expect(all.get("/app/port")).toBe("80");
    expect(all.get("/key")).toBe("foobar");
    expect(all.has("/upstream/broken")).toBe(false);
  });

  test("watchPrefix: polled, and resolved when the values under the prefix differ", async () => {
    const poll = await connect({ ...defaults(), backend: "dynamodb", table: server.table, watch: true, interval: 1 }, { env: { DYNAMODB_LOCAL: server.endpoint } });
    try {
      await server.put("/poll/v", "1");
      const never = new AbortController().signal;
      const i0 = await poll.watchPrefix("/poll", 0, never);
      const next = poll.watchPrefix("/poll", i0, never);
      await server.put("/poll/v", "2");
      expect(await next).toBeGreaterThan(i0);
      expect(await poll.getValues(["/poll"])).toEqual(new Map([["/poll/v", "2"]]));
    } finally {
      await poll.close();
    }
  });
});
