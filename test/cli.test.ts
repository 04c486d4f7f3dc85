// The command line as a user meets it: usage errors, help, version, log formats, modes, secrets.
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, readFileSync, renameSync, symlinkSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { OPTIONS } from "../src/options.ts";
import { baseEnv, CLI, Lines, ROOT, runConfd, spawnConfd, tempDir, writeTree } from "./helpers.ts";

const tmp = tempDir();
afterAll(tmp.cleanup);

describe("usage", () => {
  test("an unknown flag: one line naming it, a usage hint, exit 2", async () => {
    const r = await runConfd(["-onetime", "-bakend", "file"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe("confd: flag provided but not defined: -bakend\nRun 'confd --help' for usage.\n");
  });

  test("a stray argument is named as such, exit 2, and nothing runs", async () => {
    const { dest, args } = appConfdir("stray", "app:\n  v: 1\n");
    const r = await runConfd(["-onetime", ...args, "extra", "-noop"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe("confd: unexpected argument \"extra\": confd takes flags only (-name or -name=value)\nRun 'confd --help' for usage.\n");
    expect(existsSync(dest)).toBe(false);
  });

  test("--help lists every flag and exits 0", async () => {
    const r = await runConfd(["--help"]);
    expect(r.code).toBe(0);
    for (const o of OPTIONS) expect(r.stdout).toContain(`  -${o.flag}`);
  });

  test("-version prints the version", async () => {
    const r = await runConfd(["-version"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^confd \d+\.\d+\.\d+/);
  });

  test("a bad confd.toml: one fatal line naming file and line, exit 1", async () => {
    writeTree(tmp.path, { "bad.toml": 'backend = "file"\ninterval = \n' });
    const r = await runConfd(["-onetime", "-config-file", join(tmp.path, "bad.toml")]);
    expect(r.code).toBe(1);
    const lines = r.stderr.trim().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(new RegExp(`FATAL ${join(tmp.path, "bad.toml")}:2:\\d+: invalid TOML: `));
  });

  test("an unknown backend is named", async () => {
    const r = await runConfd(["-onetime", "-backend", "nosuch", "-config-file", join(tmp.path, "none")]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('FATAL flag -backend: backend "nosuch" is not available');
  });
});

function appConfdir(name: string, data: string, template = 'v={{getv "/app/v"}}\n') {
  const dir = join(tmp.path, name);
  const dest = join(dir, "out", "app.conf");
  writeTree(dir, {
    "templates/app.hbs": template,
    "data.yaml": data,
    "conf.d/app.toml": `[template]\nsrc = "app.hbs"\ndest = ${JSON.stringify(dest)}\nkeys = ["/app"]\n`,
    "out/.keep": "",
  });
  const args = ["-backend", "file", "-file", join(dir, "data.yaml"), "-confdir", dir, "-config-file", join(dir, "none")];
  return { dir, dest, args };
}

describe("logging", () => {
  test("confd's line format by default", async () => {
    const { args } = appConfdir("fmt", "app:\n  v: 1\n");
    const r = await runConfd(["-onetime", ...args]);
    expect(r.stderr.split("\n")[0]).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d) \S+ confd\[\d+\]: (INFO|WARNING) /);
  });

  test("--log-format json: one JSON object a line", async () => {
    const { args } = appConfdir("json", "app:\n  v: 1\n");
    const r = await runConfd(["-onetime", "-log-format", "json", ...args]);
    const records = r.stderr.trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(records.length).toBeGreaterThan(1);
    expect(records.find((x) => String(x.msg).includes("has been updated"))).toMatchObject({ level: "info", resource: "app" });
  });

  test("--log-format json holds for a configuration error too", async () => {
    const { args } = appConfdir("jsonfatal", "app:\n  v: 1\n");
    const r = await runConfd(["-log-format", "json", "-interval=-5", ...args]);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stderr.trim())).toMatchObject({ level: "fatal", msg: "flag -interval: interval must be a positive number of seconds, got -5" });
  });

  test("secrets never reach the log, at any level", async () => {
    const { args } = appConfdir("secret", "app:\n  v: s3cr3t-value\n");
    const r = await runConfd(["-onetime", "-log-level", "debug", "-password", "hunter2-pw", "-auth-token", "tok-123456", ...args], {
      env: baseEnv({ CONFD_SECRET_ID: "sid-98765" }),
    });
    expect(r.code).toBe(0);
    for (const secret of ["hunter2-pw", "tok-123456", "sid-98765", "s3cr3t-value"]) expect(r.stderr).not.toContain(secret);
  });
});

describe("no silent options", () => {
  test("an option the chosen backend does not read is named in a warning, from a flag, the environment or confd.toml", async () => {
    const { dir, args } = appConfdir("unread", "app:\n  v: 1\n");
    writeFileSync(join(dir, "confd.toml"), 'table = "confd"\n');
    const r = await runConfd(["-onetime", ...args, "-config-file", join(dir, "confd.toml"), "-separator", ":"], { env: baseEnv({ CONFD_AUTH_TOKEN: "tok-1234567" }) });
    expect(r.code).toBe(0);
    const warnings = r.stderr.split("\n").filter((l) => l.includes("WARNING"));
    expect(warnings.map((l) => l.replace(/^.*WARNING /, ""))).toEqual([
      "-auth-token is read by the consul, vault backends only; ignored with -backend file",
      "-table is read by the dynamodb backend only; ignored with -backend file",
      "-separator is read by the redis backend only; ignored with -backend file",
    ]);
    expect(r.stderr).not.toContain("tok-1234567");
  });
});

describe("templates", () => {
  test("no HTML escaping, partials from <confdir>/templates", async () => {
    const { dir, dest, args } = appConfdir("partials", 'app:\n  v: "<a href=\'x\'>&amp;</a>"\n', '{{> header}}\nv={{getv "/app/v"}}\n');
    writeTree(dir, { "templates/header.hbs": "# generated for {{getv \"/app/v\"}}\n" });
    const r = await runConfd(["-onetime", ...args]);
    expect(r.code).toBe(0);
    expect(readFileSync(dest, "utf8")).toBe("# generated for <a href='x'>&amp;</a>\nv=<a href='x'>&amp;</a>\n");
  });

  test("a missing partial is named", async () => {
    const { args } = appConfdir("nopartial", "app:\n  v: 1\n", "{{> footer}}\n");
    const r = await runConfd(["-onetime", ...args]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('partial "footer" not found');
  });

  test("a partial outside the templates directory is refused: by .., by an absolute name, by a symlink", async () => {
    const { dir, dest, args } = appConfdir("traversal", "app:\n  v: 1\n");
    writeTree(join(tmp.path, "outside"), { "secret.hbs": "host secret\n" });
    symlinkSync(join(tmp.path, "outside", "secret.hbs"), join(dir, "templates", "linked.hbs"));
    const cases: [string, string][] = [
      ["{{> ../../outside/secret}}\n", 'partial "../../outside/secret" is outside the templates directory'],
      ["{{> ../../../../../../../../etc/hostname}}\n", 'partial "../../../../../../../../etc/hostname" is outside the templates directory'],
      [`{{> [${join(tmp.path, "outside", "secret")}]}}\n`, "is outside the templates directory"],
      ["{{> linked}}\n", 'partial "linked" leads outside the templates directory'],
    ];
    for (const [template, message] of cases) {
      writeFileSync(join(dir, "templates", "app.hbs"), template);
      const r = await runConfd(["-onetime", ...args]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(message);
      expect(r.stderr).not.toContain("host secret");
      expect(existsSync(dest)).toBe(false);
    }
  });

  test("handlebars' log helper is not available: it would print store values past the log", async () => {
    const { args } = appConfdir("loghelper", "app:\n  v: s3cr3t-logged\n", '{{log (getv "/app/v")}}\n');
    const r = await runConfd(["-onetime", ...args]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('unknown function "log"');
    expect(r.stdout + r.stderr).not.toContain("s3cr3t-logged");
  });

  test("prototype access stays disabled", async () => {
    const { dest, args } = appConfdir("proto", "app:\n  v: 1\n", "[{{#with (json \"{}\")}}{{constructor}}{{__proto__}}{{/with}}]\n");
    const r = await runConfd(["-onetime", ...args]);
    expect(r.code).toBe(0);
    expect(readFileSync(dest, "utf8")).toBe("[]\n");
  });
});

describe("modes", () => {
  test("interval: renders at once, then picks up a change at the next interval", async () => {
    const { dir, dest, args } = appConfdir("interval", "app:\n  v: 1\n");
    const child = spawnConfd(["-interval", "1", ...args]);
    const stderr = new Lines(child.stderr);
    try {
      await stderr.waitFor(/has been updated/);
      expect(readFileSync(dest, "utf8")).toBe("v=1\n");
      const seen = stderr.seen.length;
      writeFileSync(join(dir, "data.yaml"), "app:\n  v: 2\n");
      await stderr.waitFor(/has been updated/, seen);
      expect(readFileSync(dest, "utf8")).toBe("v=2\n");
    } finally {
      child.kill("SIGTERM");
    }
    expect(await child.exited).toBe(0);
  });

  test("onetime: every resource is attempted, exit 1 if any failed", async () => {
    const { dir, args } = appConfdir("onetime", "app:\n  v: 1\n");
    writeTree(dir, { "conf.d/broken.toml": "[template]\nsrc = \"missing.hbs\"\ndest = \"/nonexistent/x\"\n" });
    const r = await runConfd(["-onetime", ...args]);
    expect(r.code).toBe(1);
    expect(readFileSync(join(dir, "out", "app.conf"), "utf8")).toBe("v=1\n");
    expect(r.stderr).toContain("ERROR resource broken: ");
  });

  test("-watch with the file backend: renders at once, then follows edits, including replace-by-rename", async () => {
    const { dir, dest, args } = appConfdir("watch", "app:\n  v: 1\n");
    const child = spawnConfd(["-watch", ...args]);
    const stderr = new Lines(child.stderr);
    try {
      await stderr.waitFor(/has been updated/);
      expect(readFileSync(dest, "utf8")).toBe("v=1\n");
      let seen = stderr.seen.length;
      writeFileSync(join(dir, "data.yaml"), "app:\n  v: 2\n");
      await stderr.waitFor(/has been updated/, seen);
      expect(readFileSync(dest, "utf8")).toBe("v=2\n");
      seen = stderr.seen.length;
      writeFileSync(join(dir, "data.yaml.new"), "app:\n  v: 3\n");
      renameSync(join(dir, "data.yaml.new"), join(dir, "data.yaml"));
      await stderr.waitFor(/has been updated/, seen);
      expect(readFileSync(dest, "utf8")).toBe("v=3\n");
    } finally {
      child.kill("SIGTERM");
    }
    expect(await child.exited).toBe(0);
  });

  test("-watch with the env backend renders once and says why", async () => {
    const dir = join(tmp.path, "envwatch");
    const dest = join(dir, "out", "app.conf");
    writeTree(dir, {
      "templates/app.hbs": 'v={{getv "/app/v"}}\n',
      "conf.d/app.toml": `[template]\nsrc = "app.hbs"\ndest = ${JSON.stringify(dest)}\nkeys = ["/app"]\n`,
      "out/.keep": "",
    });
    const child = spawnConfd(["-watch", "-backend", "env", "-confdir", dir, "-config-file", join(dir, "none")], { env: baseEnv({ APP_V: "42" }) });
    const stderr = new Lines(child.stderr);
    try {
      await stderr.waitFor(/has been updated/);
      expect(readFileSync(dest, "utf8")).toBe("v=42\n");
      expect(stderr.text()).toContain("The env backend cannot change while confd runs");
    } finally {
      child.kill("SIGTERM");
    }
    expect(await child.exited).toBe(0);
  });
});

describe("start-up: the main thread loads only what the run needs", () => {
  let runs = 0;

  /**
   * The modules `bun src/cli.ts <args>` loaded in its main thread (workers are threads of their own):
   * files under src/ by their path, packages by name. A compiled binary splits its bundle along the
   * same dynamic imports, so what is not loaded here is not loaded there.
   */
  async function modulesLoaded(args: string[], env = baseEnv()): Promise<Set<string>> {
    const out = join(tmp.path, `modules-${++runs}.txt`);
    const preload = join(tmp.path, `record-modules-${runs}.ts`);
    writeFileSync(preload, `process.on("exit", () => require("node:fs").writeFileSync(${JSON.stringify(out)}, Object.keys(require.cache).join("\\n")));\n`);
    const child = Bun.spawn([process.execPath, "--preload", preload, CLI, ...args], { env, stdout: "ignore", stderr: "pipe" });
    const [stderr, code] = await Promise.all([new Response(child.stderr).text(), child.exited]);
    expect({ code, stderr }).toEqual({ code: 0, stderr: "" });
    const names = readFileSync(out, "utf8").split("\n").map((path) => /.*\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(path)?.[1] ?? relative(ROOT, path));
    return new Set(names);
  }

  /** A confdir of one resource in the given engine, run once with the env backend. */
  function onetimeArgs(engine: "go" | "handlebars"): string[] {
    const dir = join(tmp.path, `startup-${engine}`);
    const src = engine === "go" ? "app.tmpl" : "app.hbs";
    writeTree(dir, {
      [`templates/${src}`]: 'v={{getv "/app/v"}}\n',
      "conf.d/app.toml": `[template]\nsrc = "${src}"\ndest = ${JSON.stringify(join(dir, "out", "app.conf"))}\nkeys = ["/app"]\n`,
      "out/.keep": "",
    });
    return ["-onetime", "-backend", "env", "-confdir", dir, "-config-file", join(dir, "none"), "-log-level", "error"];
  }

  const BACKEND_LIBRARIES = ["etcd3", "@grpc/grpc-js", "protobufjs", "ioredis", "consul", "@aws-sdk/client-dynamodb", "@aws-sdk/client-ssm", "@smithy/core", "node-zookeeper-client"];
  // The function library runs in the workers; the compilers need only its names (func-names.ts).
  const WORKER_ONLY = ["src/funcs.ts", "src/gotime.ts", "src/template.ts", "src/sync.ts"];

  test("Go templates and the env backend: no handlebars compiler, no function library, no other backend, no watch", async () => {
    const loaded = await modulesLoaded(onetimeArgs("go"), baseEnv({ APP_V: "1" }));
    expect(loaded).toContain("src/gotemplate-parse.ts");
    expect(loaded).toContain("src/backends/env.ts");
    const unwanted = ["handlebars", "src/handlebars.ts", ...WORKER_ONLY, ...BACKEND_LIBRARIES, "src/backends/file.ts", "src/watch.ts"];
    expect(unwanted.filter((name) => loaded.has(name))).toEqual([]);
  });

  test("handlebars templates: the handlebars compiler, still no function library", async () => {
    const loaded = await modulesLoaded(onetimeArgs("handlebars"), baseEnv({ APP_V: "1" }));
    expect(loaded).toContain("src/handlebars.ts");
    expect(loaded).toContain("handlebars");
    expect([...WORKER_ONLY, ...BACKEND_LIBRARIES].filter((name) => loaded.has(name))).toEqual([]);
  });

  test("--version: neither yargs nor the TOML parser", async () => {
    const loaded = await modulesLoaded(["--version"]);
    expect(["yargs", "@iarna/toml", "src/config.ts", "src/engines.ts"].filter((name) => loaded.has(name))).toEqual([]);
  });
});
