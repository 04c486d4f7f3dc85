// missing_key per resource, end to end with the file backend and both engines: "error" (the default,
// confd's behaviour) fails the render, exit 1, and the old destination stays; "empty" renders a missing
// key as "" (getv, get's .Value) and a pattern that matches nothing as an empty list; a bad value is one
// line naming the file, line and key.
import { afterAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { baseEnv, runConfd, tempDir, writeTree } from "./helpers.ts";

const tmp = tempDir("confd-missing-key-");
afterAll(() => tmp.cleanup());

const TEMPLATES = {
  go: `host={{getv "/app/host"}}\nport={{getv "/app/port"}}\nuser={{(get "/app/user").Value}}\nextra={{range getvs "/app/extra/*"}}{{.}},{{end}}\n`,
  handlebars: `host={{getv "/app/host"}}\nport={{getv "/app/port"}}\nuser={{lookup (get "/app/user") "Value"}}\nextra={{#each (getvs "/app/extra/*")}}{{this}},{{/each}}\n`,
} as const;

let n = 0;
async function run(engine: keyof typeof TEMPLATES, setting: string | undefined) {
  const dir = join(tmp.path, `run${n++}`);
  const src = engine === "go" ? "app.tmpl" : "app.hbs";
  writeTree(dir, {
    "data.yaml": "app:\n  host: db.local\n",
    [`templates/${src}`]: TEMPLATES[engine],
    "conf.d/app.toml": `[template]\nsrc = "${src}"\ndest = "${dir}/app.conf"\nkeys = ["/app"]\n${setting === undefined ? "" : `missing_key = ${setting}\n`}`,
    "app.conf": "old\n",
  });
  const result = await runConfd(["-onetime", "-backend", "file", "-file", join(dir, "data.yaml"), "-confdir", dir, "-config-file", join(dir, "none.toml")], { env: baseEnv() });
  return { ...result, dir, dest: readFileSync(join(dir, "app.conf"), "utf8") };
}

for (const engine of ["go", "handlebars"] as const) {
  describe(`missing_key, ${engine} engine`, () => {
    test("unset: the render fails on the first missing key, exit 1, the old file stays", async () => {
      const r = await run(engine, undefined);
      expect(r.code).toBe(1);
      expect(r.dest).toBe("old\n");
      expect(r.stderr).toContain("key does not exist: /app/port");
    });

    test('"error" is the same', async () => {
      const r = await run(engine, '"error"');
      expect(r.code).toBe(1);
      expect(r.dest).toBe("old\n");
      expect(r.stderr).toContain("key does not exist: /app/port");
    });

    test('"empty": missing keys render as "", exit 0', async () => {
      const r = await run(engine, '"empty"');
      expect(r.stderr).not.toContain("ERROR");
      expect(r.code).toBe(0);
      expect(r.dest).toBe("host=db.local\nport=\nuser=\nextra=\n");
    });
  });
}

test("a bad value: one line naming the file, line and key; the resource is not run", async () => {
  const r = await run("go", '"ignore"');
  expect(r.stderr).toContain(`resource app: ${r.dir}/conf.d/app.toml:5: key "missing_key" must be "error" or "empty", got "ignore"`);
  expect(r.code).toBe(1);
  expect(r.dest).toBe("old\n");
});
