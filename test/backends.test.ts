import { afterAll, describe, expect, test } from "bun:test";
import { readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { EnvClient, envName } from "../src/backends/env.ts";
import { FileClient } from "../src/backends/file.ts";
import { ancestors, keyFilter } from "../src/keys.ts";
import type { ConfdError } from "../src/errors.ts";
import { runConfd, tempDir, writeTree } from "./helpers.ts";

const tmp = tempDir();
afterAll(tmp.cleanup);

describe("key matching", () => {
  test("ancestors, nearest first", () => {
    expect(ancestors("/a/b/c")).toEqual(["/a/b/c", "/a/b", "/a", "/"]);
    expect(ancestors("/")).toEqual(["/"]);
  });

  test("a key covers itself and what lies below it on a / boundary", () => {
    const wanted = keyFilter(["/app", "/db/"]);
    expect(["/app", "/app/x", "/db", "/db/host"].every(wanted)).toBe(true);
    expect(["/application", "/ap", "/dbx", "/"].some(wanted)).toBe(false);
    expect(keyFilter(["/"])("/anything/at/all")).toBe(true);
  });
});

/** Six lines that expand to a million keys; confd (yaml.v2) refuses them with the same words as we do. */
const ALIAS_BOMB = ["a", "b", "c", "d", "e", "f"]
  .map((name, i) => `${name}: &${name} [${Array(10).fill(i === 0 ? "secret" : `*${"abcde"[i - 1]}`).join(", ")}]\n`)
  .join("");

describe("file backend", () => {
  test("YAML and JSON flattened as confd does", async () => {
    writeTree(tmp.path, {
      "data/a.yaml": "app:\n  name: web\n  port: 8080\n  ratio: 0.5\n  big: 1e21\n  on: true\n  empty: null\n  hosts:\n    - h1\n    - h2\n  nested:\n    - k: v\n",
      "data/sub/b.json": '{"db": {"host": "127.0.0.1"}, "application": {"x": "1"}}',
      "data/skip.txt": "not: data",
    });
    // The filter applies to file names in directories: skip.txt is left out.
    const client = new FileClient([join(tmp.path, "data")], "*.[jy]*");
    const values = await client.getValues(["/app", "/db"]);
    expect(Object.fromEntries(values)).toEqual({
      "/app/name": "web",
      "/app/port": "8080",
      "/app/ratio": "0.5",
      "/app/big": "1000000000000000000000",
      "/app/on": "true",
      "/app/hosts/0": "h1",
      "/app/hosts/1": "h2",
      "/app/nested/0/k": "v",
      "/db/host": "127.0.0.1",
    });
  });

  test("a parse error names the file", async () => {
    writeTree(tmp.path, { "bad/x.yaml": "a: [1,\n" });
    const client = new FileClient([join(tmp.path, "bad", "x.yaml")], "*");
    await expect(client.getValues(["/"])).rejects.toThrow("invalid YAML");
    await expect(client.getValues(["/"])).rejects.toMatchObject({ context: { file: join(tmp.path, "bad", "x.yaml") } });
    // Bun's parsers know no position in the document, so no line is claimed.
    const err = (await client.getValues(["/"]).catch((e: ConfdError) => e)) as ConfdError;
    expect(err.describe()).toBe(`${join(tmp.path, "bad", "x.yaml")}: invalid YAML: Unexpected token`);
  });

  test("a JSON parse error does not repeat the text it stumbled on, which may be a secret", async () => {
    writeTree(tmp.path, { "bad/unquoted.json": '{"password": hunter2}' });
    const file = join(tmp.path, "bad", "unquoted.json");
    const err = (await new FileClient([file], "*").getValues(["/"]).catch((e: ConfdError) => e)) as ConfdError;
    expect(err.describe()).toBe(`${file}: invalid JSON: Unexpected identifier "…"`);
  });

  test("anchors and merge keys, as real files use them, flatten to copies", async () => {
    writeTree(tmp.path, {
      "anchors/db.yaml": [
        "defaults: &defaults",
        "  adapter: postgres",
        "  pool: &pool",
        "    min: 1",
        "    max: 5",
        "development:",
        "  <<: *defaults",
        "  database: dev",
        "production:",
        "  <<: *defaults",
        "  database: prod",
        "  pool:",
        "    <<: *pool",
        "    max: 50",
        "replicas:",
        "  - *pool",
        "  - *pool",
        "",
      ].join("\n"),
    });
    const client = new FileClient([join(tmp.path, "anchors", "db.yaml")], "*");
    expect(Object.fromEntries(await client.getValues(["/development", "/production", "/replicas"]))).toEqual({
      "/development/adapter": "postgres",
      "/development/database": "dev",
      "/development/pool/min": "1",
      "/development/pool/max": "5",
      "/production/adapter": "postgres",
      "/production/database": "prod",
      "/production/pool/min": "1",
      "/production/pool/max": "50",
      "/replicas/0/min": "1",
      "/replicas/0/max": "5",
      "/replicas/1/min": "1",
      "/replicas/1/max": "5",
    });
  });

  test("an alias bomb is refused, naming the file", async () => {
    writeTree(tmp.path, { "hostile/bomb.yaml": ALIAS_BOMB });
    const file = join(tmp.path, "hostile", "bomb.yaml");
    await expect(new FileClient([file], "*").getValues(["/"])).rejects.toMatchObject({
      message: "invalid YAML: document contains excessive aliasing",
      context: { file },
    });
  });

  test("the CLI run on an alias bomb: exit 1, one error line naming the file, the destination untouched", async () => {
    const dir = join(tmp.path, "bomb-cli");
    const dest = join(dir, "out", "app.conf");
    writeTree(dir, {
      "data.yaml": ALIAS_BOMB,
      "templates/app.hbs": 'v={{getv "/a/0"}}\n',
      "conf.d/app.toml": `[template]\nsrc = "app.hbs"\ndest = ${JSON.stringify(dest)}\nkeys = ["/a"]\n`,
      "out/app.conf": "before\n",
    });
    const r = await runConfd(["-onetime", "-backend", "file", "-file", join(dir, "data.yaml"), "-confdir", dir, "-config-file", join(dir, "none")]);
    expect(r.code).toBe(1);
    const errors = r.stderr.split("\n").filter((line) => / (ERROR|FATAL) /.test(line));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toEndWith(`${join(dir, "data.yaml")}: invalid YAML: document contains excessive aliasing`);
    expect(r.stderr).not.toContain("secret");
    expect(readFileSync(dest, "utf8")).toBe("before\n");
  });

  test("an anchor that contains itself is refused, naming the file and the key where it loops", async () => {
    writeTree(tmp.path, { "hostile/self.yaml": "a: &a\n  b: *a\n" });
    const file = join(tmp.path, "hostile", "self.yaml");
    await expect(new FileClient([file], "*").getValues(["/"])).rejects.toMatchObject({
      message: "invalid YAML: anchor refers to itself",
      context: { file, key: "/a/b" },
    });
  });

  test("nesting is limited to 1000 levels, in JSON and YAML", async () => {
    // A map at the top (confd refuses anything else there), then lists.
    const nested = (levels: number) => '{"k":' + "[".repeat(levels - 1) + '"v"' + "]".repeat(levels - 1) + "}";
    writeTree(tmp.path, {
      "deep/ok.json": nested(1000),
      "deep/over.json": nested(1001),
      "deep/huge.json": nested(100_000),
      "deep/over.yaml": nested(2000),
      "deep/huge.yaml": nested(100_000),
    });
    const values = await new FileClient([join(tmp.path, "deep", "ok.json")], "*").getValues(["/"]);
    expect([...values.keys()]).toEqual(["/k" + "/0".repeat(999)]);
    for (const name of ["over.json", "huge.json", "over.yaml"]) {
      const file = join(tmp.path, "deep", name);
      await expect(new FileClient([file], "*").getValues(["/"])).rejects.toMatchObject({
        message: `invalid ${name.endsWith(".json") ? "JSON" : "YAML"}: nested more than 1000 levels deep`,
        context: { file },
      });
    }
    // Far beyond the limit, Bun.YAML.parse runs out of stack before the walk can count.
    const file = join(tmp.path, "deep", "huge.yaml");
    await expect(new FileClient([file], "*").getValues(["/"])).rejects.toMatchObject({ message: "invalid YAML: nested too deeply to parse", context: { file } });
  });

  test("many plain aliases of one block are allowed, as yaml.v2 counts them (keys and alias nodes included)", async () => {
    const lines = ["base: &base {p: 1, q: 2}", ...Array.from({ length: 2000 }, (_, i) => `n${i}: *base`)];
    writeTree(tmp.path, { "aliases/many.yaml": lines.join("\n") + "\n" });
    const values = await new FileClient([join(tmp.path, "aliases", "many.yaml")], "*").getValues(["/n1999"]);
    expect(values).toEqual(new Map([["/n1999/p", "1"], ["/n1999/q", "2"]]));
  });

  test("as confd reads YAML: the first document only, a mapping at the top, infinities as Go prints them", async () => {
    writeTree(tmp.path, {
      "docs/multi.yaml": "a: 1\n---\nb: 2\n",
      "docs/inf.yaml": "p: .inf\nn: -.inf\nx: .nan\n",
      "docs/list.yaml": "- a\n- b\n",
      "docs/scalar.yaml": "just text\n",
      "docs/list.json": '["a"]',
    });
    const read = (name: string) => new FileClient([join(tmp.path, "docs", name)], "*").getValues(["/"]);
    expect(await read("multi.yaml")).toEqual(new Map([["/a", "1"]]));
    expect(await read("inf.yaml")).toEqual(new Map([["/p", "+Inf"], ["/n", "-Inf"], ["/x", "NaN"]]));
    await expect(read("list.yaml")).rejects.toThrow("invalid YAML: the top level is a list, not a mapping of keys (confd refuses it too)");
    await expect(read("scalar.yaml")).rejects.toThrow("invalid YAML: the top level is a single value, not a mapping of keys");
    await expect(read("list.json")).rejects.toThrow("invalid JSON: the top level is a list, not a mapping of keys");
  });

  test("a missing file names the file", async () => {
    const client = new FileClient([join(tmp.path, "nope.yaml")], "*");
    await expect(client.getValues(["/"])).rejects.toMatchObject({ message: "cannot read data file: ENOENT", context: { file: join(tmp.path, "nope.yaml") } });
  });

  test("watch resolves when a file is replaced by rename, as editors do", async () => {
    writeTree(tmp.path, { "w/data.yaml": "a: 1\n" });
    const dir = join(tmp.path, "w");
    const client = new FileClient([dir], "*");
    const controller = new AbortController();
    expect(await client.watchPrefix("/", 0, controller.signal)).toBe(1);
    const changed = client.watchPrefix("/", 1, controller.signal);
    writeFileSync(join(dir, ".data.yaml.tmp"), "a: 2\n");
    renameSync(join(dir, ".data.yaml.tmp"), join(dir, "data.yaml"));
    expect(await changed).toBe(2);
  });
});

describe("env backend", () => {
  test("confd's mapping, on a _ boundary", async () => {
    expect(envName("/database/host")).toBe("DATABASE_HOST");
    const client = new EnvClient({ DATABASE_HOST: "h", DATABASE_PORT: "1", DATABASEX: "no", OTHER: "no" });
    expect(Object.fromEntries(await client.getValues(["/database"]))).toEqual({ "/database/host": "h", "/database/port": "1" });
  });

  test("a watch never fires; it ends when stopped", async () => {
    const client = new EnvClient({});
    const controller = new AbortController();
    const watch = client.watchPrefix("/", 1, controller.signal);
    controller.abort(new Error("stopped"));
    await expect(watch).rejects.toThrow("stopped");
  });
});
