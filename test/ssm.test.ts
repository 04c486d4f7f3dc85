// The ssm backend against test/ssm-double.ts, a double of Parameter Store's JSON API written from AWS's
// API reference: everything here is verified against the double only, never against SSM itself. confd
// as a process for what a user sees (files, exit codes, log lines), and the store client in process for
// what each read asks and returns. No sleeps: runs are awaited, and a watch through its log.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { endpointOverride } from "../src/backends/aws.ts";
import { connect } from "../src/backends/ssm.ts";
import { ConfdError } from "../src/errors.ts";
import { defaults } from "../src/options.ts";
import type { StoreClient } from "../src/store.ts";
import { awsEnv, TEST_CREDENTIALS, useAwsProcessEnv } from "./aws-env.ts";
import { expectFixtureOutput, FIXTURE_DATA, fixtureConfdir } from "./fixture.ts";
import { freePort, Lines, runConfd, spawnConfd, tempDir, writeTree } from "./helpers.ts";
import { startSsmDouble, type SsmDouble, type SsmDoubleOptions } from "./ssm-double.ts";

const tmp = tempDir();
const doubles: SsmDouble[] = [];
let counter = 0;

afterAll(async () => {
  await Promise.all(doubles.map((d) => d.stop()));
  tmp.cleanup();
});

function double(options: Partial<SsmDoubleOptions> = {}): SsmDouble {
  const d = startSsmDouble({ credentials: { [TEST_CREDENTIALS.AWS_ACCESS_KEY_ID]: TEST_CREDENTIALS.AWS_SECRET_ACCESS_KEY }, ...options });
  doubles.push(d);
  return d;
}

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

const ssmArgs = (dir: string) => ["-backend", "ssm", "-confdir", dir, "-config-file", join(dir, "none")];
const logLines = (stderr: string, level: string) => stderr.split("\n").filter((l) => l.includes(` ${level} `));

describe("confd -backend ssm", () => {
  test("confd's integration fixture renders byte-identical, a SecureString decrypted; requests signed; no credential or secret logged", async () => {
    const d = double();
    for (const [name, value] of Object.entries(FIXTURE_DATA)) d.put(name, value, name.endsWith("/password") ? "SecureString" : "String");
    const { dir, out } = fixtureConfdir(join(tmp.path, "fixture"));
    const r = await runConfd(["-onetime", "-log-level", "debug", ...ssmArgs(dir)], { env: awsEnv({ SSM_LOCAL: d.url }) });
    expect(logLines(r.stderr, "ERROR")).toEqual([]);
    expect(r.code).toBe(0);
    expectFixtureOutput(out);
    // Every request passed the double's Signature Version 4 check, asked recursively and with decryption.
    expect(d.requests.filter((q) => q.error !== undefined && q.error !== "ParameterNotFound")).toEqual([]);
    const byPath = d.requests.filter((q) => q.operation === "GetParametersByPath");
    expect(byPath.length).toBeGreaterThan(0);
    for (const q of byPath) expect(q.body).toMatchObject({ Recursive: true, WithDecryption: true });
    for (const q of d.requests) {
      expect(q.headers["content-type"]).toBe("application/x-amz-json-1.1");
      expect(q.headers.authorization).toStartWith(`AWS4-HMAC-SHA256 Credential=${TEST_CREDENTIALS.AWS_ACCESS_KEY_ID}/`);
      expect(q.headers.authorization).toContain("/eu-west-1/ssm/aws4_request");
    }
    expect(r.stderr).not.toContain(TEST_CREDENTIALS.AWS_SECRET_ACCESS_KEY);
    expect(r.stderr).not.toContain(FIXTURE_DATA["/database/password"]!);
  });

  test("more parameters than a page holds: every NextToken is followed, past empty pages too", async () => {
    const d = double({ pageSize: 4, emptyPages: true });
    const names = Array.from({ length: 23 }, (_, i) => `/many/p${String(i).padStart(2, "0")}`);
    for (const [i, name] of names.entries()) d.put(name, String(i));
    d.put("/manyother/x", "not under /many");
    const { dir, out } = confdir('{{range gets "/many/*"}}{{.Key}}={{.Value}}\n{{end}}', ["/many"]);
    const r = await runConfd(["-onetime", ...ssmArgs(dir)], { env: awsEnv({ SSM_LOCAL: d.url }) });
    expect(r.code).toBe(0);
    expect(readFileSync(out, "utf8")).toBe(names.map((n, i) => `${n}=${i}\n`).join(""));
    // One empty page, then ceil(23 / 4) = 6 pages.
    expect(d.requests.filter((q) => q.operation === "GetParametersByPath")).toHaveLength(7);
  });

  test("a single parameter, and a missing one (ParameterNotFound: simply absent)", async () => {
    const d = double();
    d.put("/single/there", "here");
    const { dir, out } = confdir('{{getv "/single/there"}} {{if exists "/single/missing"}}yes{{else}}no{{end}}\n', ["/single/there", "/single/missing"]);
    const r = await runConfd(["-onetime", ...ssmArgs(dir)], { env: awsEnv({ SSM_LOCAL: d.url }) });
    expect(r.stderr).not.toContain("ERROR");
    expect(r.code).toBe(0);
    expect(readFileSync(out, "utf8")).toBe("here no\n");
    expect(d.requests.filter((q) => q.operation === "GetParameter").map((q) => [q.body.Name, q.error])).toEqual(
      expect.arrayContaining([
        ["/single/there", undefined],
        ["/single/missing", "ParameterNotFound"],
      ]),
    );
  });

  test("AccessDenied: one line naming the parameter, never a value, exit 1 (confd drops this error on paths)", async () => {
    const d = double();
    d.put("/secret/token", "t0p-secret-value");
    d.put("/open/x", "1");
    d.deny("/secret");
    const { dir } = confdir('{{getv "/open/x"}}\n', ["/open", "/secret"]);
    const r = await runConfd(["-onetime", ...ssmArgs(dir)], { env: awsEnv({ SSM_LOCAL: d.url }) });
    expect(r.code).toBe(1);
    const errors = logLines(r.stderr, "ERROR");
    expect(errors).toHaveLength(1);
    expect(errors[0]).toContain("ssm denied access to parameter /secret (AccessDeniedException: User: arn:aws:iam::123456789012:user/confd-test is not authorized");
    expect(r.stderr).not.toContain("t0p-secret-value");
  });

  test("a signature AWS does not accept: the first line of its message only, nothing of the canonical request", async () => {
    const d = double();
    d.put("/x", "1");
    const { dir } = confdir('{{getv "/x"}}\n', ["/x"]);
    const r = await runConfd(["-onetime", ...ssmArgs(dir)], { env: awsEnv({ SSM_LOCAL: d.url, AWS_SECRET_ACCESS_KEY: "another-secret-do-not-print" }) });
    expect(r.code).toBe(1);
    expect(logLines(r.stderr, "ERROR")).toEqual([
      expect.stringContaining("ssm refused the request (InvalidSignatureException: The request signature we calculated does not match the signature you provided.)"),
    ]);
    expect(r.stderr).not.toContain("Canonical String");
    expect(r.stderr).not.toContain("another-secret-do-not-print");
  });

  test("-watch polls every -interval, as said once at start: a change reaches the file", async () => {
    const d = double();
    d.put("/w/v", "first", "SecureString");
    const { dir, out } = confdir('v={{getv "/w/v"}}\n', ["/w"]);
    const child = spawnConfd(["-watch", "-interval", "1", ...ssmArgs(dir)], { env: awsEnv({ SSM_LOCAL: d.url }) });
    const stderr = new Lines(child.stderr);
    try {
      await stderr.waitFor(/Target config .* has been updated/);
      expect(readFileSync(out, "utf8")).toBe("v=first\n");
      d.put("/w/v", "second", "SecureString");
      await stderr.waitForCount(/Target config .* has been updated/, 2);
      expect(readFileSync(out, "utf8")).toBe("v=second\n");
      expect(stderr.seen.filter((l) => l.includes("The ssm backend cannot be watched: with -watch confd polls it every 1s (-interval)"))).toHaveLength(1);
    } finally {
      child.kill("SIGTERM");
      expect(await child.exited).toBe(0);
    }
  });

  test("-watch -onetime renders once and exits 0 (confd exits 1)", async () => {
    const d = double();
    d.put("/o/v", "once");
    const { dir, out } = confdir('{{getv "/o/v"}}\n', ["/o"]);
    const r = await runConfd(["-watch", "-onetime", ...ssmArgs(dir)], { env: awsEnv({ SSM_LOCAL: d.url }) });
    expect(r.code).toBe(0);
    expect(readFileSync(out, "utf8")).toBe("once\n");
  });

  test("the SDK's own AWS_ENDPOINT_URL_SSM is honoured when SSM_LOCAL is not set", async () => {
    const d = double();
    d.put("/e/v", "by AWS_ENDPOINT_URL_SSM");
    const { dir, out } = confdir('{{getv "/e/v"}}\n', ["/e"]);
    const r = await runConfd(["-onetime", ...ssmArgs(dir)], { env: awsEnv({ AWS_ENDPOINT_URL_SSM: d.url }) });
    expect(r.code).toBe(0);
    expect(readFileSync(out, "utf8")).toBe("by AWS_ENDPOINT_URL_SSM\n");
  });

  test("an endpoint answering garbage, or paging for ever: one line, exit 1, nothing of the answer in it", async () => {
    let mode: "garbage" | "loop" | "shape" = "garbage";
    // Not SSM: an HTTP server answering every request the same broken way.
    const broken = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch: () => {
        const json = { headers: { "content-type": "application/x-amz-json-1.1" } };
        if (mode === "garbage") return new Response('{"Parameters": [{"Name": "/x", "Value": "hunter2', json);
        if (mode === "loop") return new Response(JSON.stringify({ Parameters: [], NextToken: "again" }), json);
        return new Response(JSON.stringify({ Parameters: 5 }), json);
      },
    });
    try {
      const { dir } = confdir('{{getv "/x"}}\n', ["/x"]);
      const run = () => runConfd(["-onetime", ...ssmArgs(dir)], { env: awsEnv({ SSM_LOCAL: `http://127.0.0.1:${broken.port}` }) });
      const garbage = await run();
      expect(garbage.code).toBe(1);
      expect(logLines(garbage.stderr, "ERROR")).toEqual([expect.stringContaining("the ssm store's answer cannot be read")]);
      expect(garbage.stderr).not.toContain("hunter2");
      mode = "loop";
      const loop = await run();
      expect(loop.code).toBe(1);
      expect(logLines(loop.stderr, "ERROR")).toEqual([expect.stringContaining("a NextToken came back a second time (key /x)")]);
      mode = "shape";
      const shape = await run();
      expect(shape.code).toBe(1);
      expect(logLines(shape.stderr, "ERROR")).toEqual([expect.stringContaining("a GetParametersByPath page without a list of parameters (key /x)")]);
    } finally {
      await broken.stop(true);
    }
  });

  test("an endpoint nobody listens on, or no credentials: one line, exit 1", async () => {
    const dead = `http://127.0.0.1:${freePort()}`;
    const { dir } = confdir('{{getv "/x"}}\n', ["/x"]);
    const r = await runConfd(["-onetime", ...ssmArgs(dir)], { env: awsEnv({ SSM_LOCAL: dead }) });
    expect(r.code).toBe(1);
    expect(logLines(r.stderr, "ERROR")).toEqual([expect.stringContaining(`the ssm store cannot be reached (${dead}): ECONNREFUSED`)]);
    const none = await runConfd(["-onetime", ...ssmArgs(dir)], { env: awsEnv({ SSM_LOCAL: dead, AWS_ACCESS_KEY_ID: undefined, AWS_SECRET_ACCESS_KEY: undefined }) });
    expect(none.code).toBe(1);
    expect(logLines(none.stderr, "FATAL")).toEqual([expect.stringContaining("the ssm backend found no AWS credentials")]);
  });
});

describe("the store client", () => {
  useAwsProcessEnv();
  let d: SsmDouble;
  let client: StoreClient;

  beforeAll(async () => {
    d = double({ pageSize: 3 });
    for (const [name, value] of Object.entries({ "/app/db/host": "db1", "/app/port": "80", "/application/name": "not under /app", "/leaf": "a leaf" })) d.put(name, value);
    client = await connect({ ...defaults(), backend: "ssm" }, { env: { SSM_LOCAL: d.url } });
  });

  afterAll(async () => {
    await client?.close();
  });

  test("a path lists the parameters below it on the / boundary; a parameter is read by its name; the root lists all", async () => {
    const app = new Map([
      ["/app/db/host", "db1"],
      ["/app/port", "80"],
    ]);
    expect(await client.getValues(["/app"])).toEqual(app);
    expect(await client.getValues(["/app/"])).toEqual(app);
    expect(await client.getValues(["/app/db/host"])).toEqual(new Map([["/app/db/host", "db1"]]));
    expect(await client.getValues(["/leaf"])).toEqual(new Map([["/leaf", "a leaf"]]));
    expect(await client.getValues(["/missing"])).toEqual(new Map());
    expect((await client.getValues(["/"])).size).toBe(4);
  });

  test("a key inside another asked-for key costs no request of its own", async () => {
    const before = d.requests.length;
    await client.getValues(["/app", "/app/db", "/app/db/host"]);
    expect(d.requests.slice(before).map((q) => [q.operation, q.body.Path])).toEqual([["GetParametersByPath", "/app"]]);
  });

  test("a path SSM refuses (more than 15 levels) is named in the error", async () => {
    const deep = "/a".repeat(16);
    const err = await client.getValues([deep]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfdError);
    expect((err as ConfdError).message).toStartWith("ssm refused the request (ValidationException:");
    expect((err as ConfdError).context.key).toBe(deep);
  });

  test("DYNAMODB_LOCAL and SSM_LOCAL: confd's local endpoints, or the URL they hold", () => {
    const ssm = { name: "ssm", localVariable: "SSM_LOCAL", localEndpoint: "http://localhost:8001" };
    expect(endpointOverride(ssm, {})).toBeUndefined();
    expect(endpointOverride(ssm, { SSM_LOCAL: "" })).toBeUndefined();
    expect(endpointOverride(ssm, { SSM_LOCAL: "1" })).toBe("http://localhost:8001");
    expect(endpointOverride(ssm, { SSM_LOCAL: "true" })).toBe("http://localhost:8001");
    expect(endpointOverride(ssm, { SSM_LOCAL: "http://127.0.0.1:9000" })).toBe("http://127.0.0.1:9000");
  });
});
