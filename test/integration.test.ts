// confd's own integration fixture (test/fixtures/confd-integration) must give byte-identical files, per
// backend: with its Go templates unchanged, and with our handlebars versions of them
// (test/fixtures/confd-integration/handlebars).
import { afterAll, describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { baseEnv, freePort, runConfd, CONFD_FIXTURE, tempDir, writeTree } from "./helpers.ts";
import { Etcd3 } from "etcd3";
import Redis from "ioredis";
import { envName } from "../src/backends/env.ts";
import { startConsulDouble } from "./consul-double.ts";
import { startEtcd } from "./etcd-server.ts";
import { startRedis } from "./redis-server.ts";

const tmp = tempDir();
afterAll(tmp.cleanup);

const fixture = Bun.YAML.parse(readFileSync(join(CONFD_FIXTURE, "data.yaml"), "utf8")) as {
  keys: Record<string, string>;
  nested_keys: Record<string, string>;
};
const data = { ...fixture.keys, ...fixture.nested_keys };

type Engine = "go" | "handlebars";

/**
 * The fixture's conf.d with each dest moved into `out` (tests must not write /tmp/confd-*.conf); for
 * handlebars each src points at our version of the template, for Go the templates are confd's own.
 */
function confdir(name: string, engine: Engine): { dir: string; out: string } {
  const dir = join(tmp.path, `${name}-${engine}`);
  const out = join(dir, "out");
  const files: Record<string, string> = { "out/.keep": "" };
  for (const f of readdirSync(join(CONFD_FIXTURE, "confdir", "conf.d"))) {
    let text = readFileSync(join(CONFD_FIXTURE, "confdir", "conf.d", f), "utf8").replace(
      /dest = "\/tmp\/(.*)"/,
      (_, base: string) => `dest = ${JSON.stringify(join(out, base))}`,
    );
    if (engine === "handlebars") text = text.replace(/src = "(.*)\.tmpl"/, 'src = "$1.hbs"');
    files[`conf.d/${f}`] = text;
  }
  const templates = engine === "handlebars" ? join(CONFD_FIXTURE, "handlebars") : join(CONFD_FIXTURE, "confdir", "templates");
  for (const f of readdirSync(templates)) files[`templates/${f}`] = readFileSync(join(templates, f), "utf8");
  writeTree(dir, files);
  return { dir, out };
}

const expected: [string, string][] = [
  ["confd-basic-test.conf", "basic.conf"],
  ["confd-exists-test.conf", "exists-test.conf"],
  ["confd-iteration-test.conf", "iteration.conf"],
  ["confd-manykeys-test.conf", "basic.conf"],
];

function expectFixtureOutput(out: string): void {
  for (const [rendered, expect_] of expected) {
    expect(readFileSync(join(out, rendered), "utf8")).toBe(readFileSync(join(CONFD_FIXTURE, "expect", expect_), "utf8"));
  }
  // Not compared upstream: "/nested/*" matches no key (the keys are two levels down), in confd as here.
  expect(readFileSync(join(out, "confd-nested-test.conf"), "utf8")).toMatch(/^upstream app {\n\n*}\n/);
}

for (const engine of ["go", "handlebars"] as const)
describe(`confd integration fixture, ${engine} templates`, () => {
  test("file backend", async () => {
    const { dir, out } = confdir("file", engine);
    // As upstream does: the data split over two directories, with a filter that skips other files.
    writeTree(dir, {
      "data1/main.yaml": Bun.YAML.stringify(fixture.keys),
      "data2/deeper/nested.yml": Bun.YAML.stringify(fixture.nested_keys),
      "data2/README.txt": "not data: the filter skips it",
    });
    const r = await runConfd(
      ["--onetime", "--log-level", "debug", "--confdir", dir, "--backend", "file", "--file", join(dir, "data1"), "--file", join(dir, "data2") + "/", "--filter", "*.y*ml", "--config-file", join(dir, "none")],
      { env: baseEnv({ HOSTNAME: "localhost" }) },
    );
    expect(r.stderr).not.toContain("ERROR");
    expect(r.code).toBe(0);
    expectFixtureOutput(out);
    // debug lists keys, never values
    expect(r.stderr).toContain("/database/password");
    expect(r.stderr).not.toContain(data["/database/password"]!);
  });

  test("env backend", async () => {
    const { dir, out } = confdir("env", engine);
    const env: Record<string, string> = { HOSTNAME: "localhost" };
    for (const [k, v] of Object.entries(data)) env[envName(k)] = v;
    const r = await runConfd(["-onetime", "-confdir", dir, "-backend", "env", "-config-file", join(dir, "none")], { env: baseEnv(env) });
    expect(r.stderr).not.toContain("ERROR");
    expect(r.code).toBe(0);
    expectFixtureOutput(out);
  });

  test("etcd backend (real server; the manykeys resource reads 192 keys; a dead first node, passed over as confd does)", async () => {
    const server = await startEtcd();
    const client = new Etcd3({ hosts: server.endpoint });
    try {
      for (const [k, v] of Object.entries(data)) await client.put(k).value(v);
      const { dir, out } = confdir("etcd", engine);
      const r = await runConfd(["-onetime", "-confdir", dir, "-backend", "etcdv3", "-node", `http://127.0.0.1:${freePort()}`, "-node", server.endpoint, "-config-file", join(dir, "none")], {
        env: baseEnv({ HOSTNAME: "localhost" }),
      });
      expect(r.stderr).not.toContain("ERROR");
      expect(r.code).toBe(0);
      expectFixtureOutput(out);
    } finally {
      client.close();
      await server.stop();
    }
  });

  test("redis backend (real server; a dead first node, passed over as confd does)", async () => {
    const server = await startRedis();
    const client = new Redis({ host: "127.0.0.1", port: server.port });
    try {
      for (const [k, v] of Object.entries(data)) await client.set(k, v);
      const { dir, out } = confdir("redis", engine);
      const r = await runConfd(["-onetime", "-confdir", dir, "-backend", "redis", "-node", `127.0.0.1:${freePort()}`, "-node", `127.0.0.1:${server.port}`, "-config-file", join(dir, "none")], {
        env: baseEnv({ HOSTNAME: "localhost" }),
      });
      expect(r.stderr).not.toContain("ERROR");
      expect(r.code).toBe(0);
      expectFixtureOutput(out);
    } finally {
      client.disconnect();
      await server.stop();
    }
  });

  test("consul backend (against test/consul-double.ts, an HTTP double of Consul's KV API)", async () => {
    const consul = startConsulDouble();
    try {
      for (const [k, v] of Object.entries(data)) consul.set(k, v);
      const { dir, out } = confdir("consul", engine);
      const r = await runConfd(["-onetime", "-confdir", dir, "-backend", "consul", "-node", consul.node, "-config-file", join(dir, "none")], {
        env: baseEnv({ HOSTNAME: "localhost" }),
      });
      expect(r.stderr).not.toContain("ERROR");
      expect(r.code).toBe(0);
      expectFixtureOutput(out);
    } finally {
      await consul.stop();
    }
  });
});
