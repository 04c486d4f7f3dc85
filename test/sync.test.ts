// End-to-end: the CLI as a process, the file backend, one resource, and what a user sees afterwards.
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync, chmodSync } from "node:fs";
import { join } from "node:path";
import { baseEnv, runConfd, tempDir, writeTree } from "./helpers.ts";

const tmp = tempDir();
afterAll(tmp.cleanup);
let counter = 0;

interface Setup {
  dir: string;
  dest: string;
  run: (...extra: string[]) => ReturnType<typeof runConfd>;
}

/** A confdir with one resource "app" rendering `template` from data.yaml into out/app.conf. */
function setup(options: { template?: string; data?: string; resource?: string; keys?: string[] } = {}): Setup {
  const dir = join(tmp.path, `case${++counter}`);
  const dest = join(dir, "out", "app.conf");
  writeTree(dir, {
    "templates/app.conf.hbs": options.template ?? 'port={{getv "/app/port"}}\n',
    "data.yaml": options.data ?? "app:\n  port: 8080\n",
    "conf.d/app.toml": [
      "[template]",
      'src = "app.conf.hbs"',
      `dest = ${JSON.stringify(dest)}`,
      `keys = ${JSON.stringify(options.keys ?? ["/app"])}`,
      options.resource ?? "",
    ].join("\n"),
    "out/.keep": "",
  });
  const run = (...extra: string[]) =>
    runConfd(["-onetime", "-backend", "file", "-file", join(dir, "data.yaml"), "-confdir", dir, "-config-file", join(dir, "none.toml"), ...extra]);
  return { dir, dest, run };
}

/** Dead: no such process, or a zombie waiting for init to reap it. */
function isGone(pid: number): boolean {
  try {
    const state = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.[0];
    return state === "Z" || state === "X";
  } catch {
    return true;
  }
}

const stageFiles = (dir: string) => readdirSync(join(dir, "out")).filter((f) => f.startsWith(".app.conf."));

describe("sync", () => {
  test("renders a new file, then reports it in sync without running reload again", async () => {
    const s = setup({ resource: `reload_cmd = "echo reloaded >> ${tmp.path}/reloads-1"` });
    const first = await s.run();
    expect(first.stderr).toContain("Target config " + s.dest + " has been updated");
    expect(first.code).toBe(0);
    expect(readFileSync(s.dest, "utf8")).toBe("port=8080\n");
    expect(statSync(s.dest).mode & 0o777).toBe(0o644);
    const second = await s.run("-log-level", "debug");
    expect(second.code).toBe(0);
    expect(second.stderr).toContain(`Target config ${s.dest} in sync`);
    expect(readFileSync(join(tmp.path, "reloads-1"), "utf8")).toBe("reloaded\n");
    expect(stageFiles(s.dir)).toEqual([]);
  });

  test("check_cmd failure: destination untouched, stage file removed, error with the command's output, exit 1", async () => {
    const s = setup({ resource: `check_cmd = "echo checking {{.src}}; echo bad config >&2; exit 3"\nreload_cmd = "touch ${tmp.path}/reloaded-2"` });
    writeFileSync(s.dest, "old\n");
    const r = await s.run();
    expect(r.code).toBe(1);
    expect(readFileSync(s.dest, "utf8")).toBe("old\n");
    expect(stageFiles(s.dir)).toEqual([]);
    expect(existsSync(join(tmp.path, "reloaded-2"))).toBe(false);
    const line = r.stderr.split("\n").find((l) => l.includes("ERROR"));
    expect(line).toMatch(/ERROR resource app: .*app\.toml: check_cmd exited with status 3: checking .*\.app\.conf\.[0-9a-f]+ \| bad config$/);
  });

  test("check_cmd is a Go template: {{printf \"%q\" .src}} quotes a path with a space, as confd's docs advise", async () => {
    const dir = join(tmp.path, `case${++counter}`, "my app");
    const dest = join(dir, "app.conf");
    writeTree(dir, {
      "templates/app.tmpl": 'port={{getv "/app/port"}}\n',
      "data.yaml": "app:\n  port: 8080\n",
      "conf.d/app.toml": `[template]\nsrc = "app.tmpl"\ndest = ${JSON.stringify(dest)}\nkeys = ["/app"]\ncheck_cmd = 'grep -q port=8080 {{printf "%q" .src}}'\nreload_cmd = 'cp {{printf "%q" .dest}} {{printf "%q" .dest}}.reloaded'\n`,
    });
    const r = await runConfd(["-onetime", "-backend", "file", "-file", join(dir, "data.yaml"), "-confdir", dir, "-config-file", join(dir, "none.toml")]);
    expect(r.stderr).not.toContain("ERROR");
    expect(r.code).toBe(0);
    expect(readFileSync(dest, "utf8")).toBe("port=8080\n");
    expect(readFileSync(`${dest}.reloaded`, "utf8")).toBe("port=8080\n");
  });

  test("a command that is not a valid template is refused at start, naming the file and key", async () => {
    const s = setup({ resource: `check_cmd = "nginx -t -c {{.src"` });
    writeFileSync(s.dest, "old\n");
    const r = await s.run();
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`ERROR resource app: ${join(s.dir, "conf.d", "app.toml")}:5: key "check_cmd" is not a valid template: template: checkcmd:1: unclosed action`);
    expect(readFileSync(s.dest, "utf8")).toBe("old\n");
  });

  test("check_cmd sees the staged file as {{.src}} and the destination as {{.dest}}", async () => {
    const s = setup({ resource: `check_cmd = "grep -q port=8080 {{.src}} && test {{ .dest }} = ${"$"}(dirname {{.src}})/app.conf"` });
    const r = await s.run();
    expect(r.stderr).not.toContain("ERROR");
    expect(r.code).toBe(0);
    expect(readFileSync(s.dest, "utf8")).toBe("port=8080\n");
  });

  test("reload_cmd failure: the new file is in place, the error is reported, exit 1", async () => {
    const s = setup({ resource: 'reload_cmd = "echo cannot reload; exit 1"' });
    const r = await s.run();
    expect(r.code).toBe(1);
    expect(readFileSync(s.dest, "utf8")).toBe("port=8080\n");
    expect(r.stderr).toMatch(/ERROR resource app: .*reload_cmd exited with status 1: cannot reload/);
  });

  test("a reload that outlives its timeout is killed with its children", async () => {
    const pidFile = join(tmp.path, "sleeper.pid");
    const s = setup({ resource: `reload_cmd = "sleep 100 & echo $! > ${pidFile}; wait"\nreload_timeout = "1s"` });
    const r = await s.run();
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/reload_cmd timed out after 1s and was killed/);
    expect(isGone(Number(readFileSync(pidFile, "utf8")))).toBe(true);
  });

  test("noop: the diff goes to stdout, nothing is written", async () => {
    const s = setup();
    writeFileSync(s.dest, "port=80\n");
    const r = await s.run("-noop");
    expect(r.code).toBe(0);
    expect(readFileSync(s.dest, "utf8")).toBe("port=80\n");
    expect(r.stdout).toBe(`--- ${s.dest}\n+++ ${s.dest} (rendered)\n@@ -1 +1 @@\n-port=80\n+port=8080\n`);
    expect(r.stderr).toContain(`Noop mode enabled. ${s.dest} will not be modified`);
    expect(r.stderr).not.toContain("8080");
    expect(stageFiles(s.dir)).toEqual([]);
  });

  // Go's strconv.ParseBool, the whole table, as -noop=<text>.
  const noopTable = [
    ...["1", "t", "T", "TRUE", "true", "True"].map((text) => [text, true] as const),
    ...["0", "f", "F", "FALSE", "false", "False"].map((text) => [text, false] as const),
  ];
  test.each(noopTable)("-noop=%s: dry run %p, as in confd", async (text, dry) => {
    const reloaded = join(tmp.path, `noop-reloaded-${counter + 1}`);
    const s = setup({ resource: `reload_cmd = "touch ${reloaded}"` });
    writeFileSync(s.dest, "port=80\n");
    const r = await s.run(`-noop=${text}`);
    expect(r.code).toBe(0);
    expect(readFileSync(s.dest, "utf8")).toBe(dry ? "port=80\n" : "port=8080\n");
    expect(existsSync(reloaded)).toBe(!dry);
    expect(r.stderr.includes("Noop mode enabled")).toBe(dry);
  });

  test("CONFD_NOOP=1 is a dry run too; -noop=maybe and CONFD_NOOP=yes are refused with exit 2, nothing written", async () => {
    const s = setup();
    writeFileSync(s.dest, "port=80\n");
    const args = ["-onetime", "-backend", "file", "-file", join(s.dir, "data.yaml"), "-confdir", s.dir, "-config-file", join(s.dir, "none.toml")];
    const viaEnv = await runConfd(args, { env: baseEnv({ CONFD_NOOP: "1" }) });
    expect(viaEnv.code).toBe(0);
    expect(readFileSync(s.dest, "utf8")).toBe("port=80\n");
    const maybe = await s.run("-noop=maybe");
    expect(maybe.code).toBe(2);
    expect(maybe.stderr).toBe('confd: invalid boolean value "maybe" for -noop: parse error\nRun \'confd --help\' for usage.\n');
    const yes = await runConfd(args, { env: baseEnv({ CONFD_NOOP: "yes" }) });
    expect(yes.code).toBe(2);
    expect(yes.stderr).toBe('confd: invalid boolean value "yes" for CONFD_NOOP: parse error\nRun \'confd --help\' for usage.\n');
    expect(readFileSync(s.dest, "utf8")).toBe("port=80\n");
  });

  test("sync-only: writes the file without running check_cmd or reload_cmd", async () => {
    const s = setup({ resource: `check_cmd = "exit 1"\nreload_cmd = "touch ${tmp.path}/reloaded-3"` });
    const r = await s.run("-sync-only");
    expect(r.code).toBe(0);
    expect(readFileSync(s.dest, "utf8")).toBe("port=8080\n");
    expect(existsSync(join(tmp.path, "reloaded-3"))).toBe(false);
  });

  test("keep-stage-file: the staged file stays after a failed check", async () => {
    const s = setup({ resource: 'check_cmd = "exit 1"' });
    const r = await s.run("-keep-stage-file");
    expect(r.code).toBe(1);
    expect(existsSync(s.dest)).toBe(false);
    const staged = stageFiles(s.dir);
    expect(staged).toHaveLength(1);
    expect(readFileSync(join(s.dir, "out", staged[0]!), "utf8")).toBe("port=8080\n");
  });

  test("a mode change alone is synced", async () => {
    const s = setup({ resource: 'mode = "0640"' });
    writeFileSync(s.dest, "port=8080\n");
    chmodSync(s.dest, 0o600);
    const r = await s.run();
    expect(r.code).toBe(0);
    expect(r.stderr).toContain("mode 600 should be 640");
    expect(statSync(s.dest).mode & 0o777).toBe(0o640);
  });

  test("without a mode, an existing destination keeps its mode", async () => {
    const s = setup();
    writeFileSync(s.dest, "old\n");
    chmodSync(s.dest, 0o600);
    expect((await s.run()).code).toBe(0);
    expect(statSync(s.dest).mode & 0o777).toBe(0o600);
  });

  test.skipIf(process.getuid?.() !== 0)("setuid and setgid bits are kept when the owner changes too (needs root)", async () => {
    const s = setup({ resource: 'mode = "6755"\nuid = 1\ngid = 2' });
    expect((await s.run()).code).toBe(0);
    expect(statSync(s.dest).mode & 0o7777).toBe(0o6755);
    expect(statSync(s.dest).uid).toBe(1);
    // In sync from then on: chown(2) after chmod would have dropped the bits, and every run rewrote the file.
    const again = await s.run("-log-level", "debug");
    expect(again.stderr).toContain(`Target config ${s.dest} in sync`);
  });

  test("a destination directory that does not exist is named", async () => {
    const s = setup();
    const dest = join(s.dir, "missing", "app.conf");
    writeTree(s.dir, { "conf.d/app.toml": `[template]\nsrc = "app.conf.hbs"\ndest = ${JSON.stringify(dest)}\nkeys = ["/app"]\n` });
    const r = await s.run();
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`ERROR resource app: ${dest}: destination directory ${join(s.dir, "missing")} does not exist`);
  });

  test.skipIf(process.getuid?.() !== 0)("an owner and group change is synced (needs root)", async () => {
    const s = setup({ resource: "uid = 1\ngid = 2" });
    writeFileSync(s.dest, "port=8080\n");
    const r = await s.run();
    expect(r.code).toBe(0);
    expect(r.stderr).toContain("uid 0 should be 1");
    expect(statSync(s.dest).uid).toBe(1);
    expect(statSync(s.dest).gid).toBe(2);
  });
});

describe("template errors", () => {
  test("a missing key names the resource, template file, line and key; destination untouched", async () => {
    const s = setup({ template: 'a={{getv "/app/port"}}\nb={{getv "/app/missing"}}\n' });
    writeFileSync(s.dest, "old\n");
    const r = await s.run();
    expect(r.code).toBe(1);
    expect(readFileSync(s.dest, "utf8")).toBe("old\n");
    const line = r.stderr.split("\n").find((l) => l.includes("ERROR"))!;
    expect(line).toEndWith(`ERROR resource app: ${join(s.dir, "templates", "app.conf.hbs")}:2:3: getv: key does not exist: /app/missing`);
    expect(stageFiles(s.dir)).toEqual([]);
  });

  test("a syntax error names the template file and line", async () => {
    const s = setup({ template: "ok\n{{#each (gets \"/app/*\")}}\nno end\n" });
    const r = await s.run();
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`ERROR resource app: ${join(s.dir, "templates", "app.conf.hbs")}:\\d+: template syntax error`));
    expect(existsSync(s.dest)).toBe(false);
  });

  test("a bad pattern names the pattern", async () => {
    const s = setup({ template: '{{#each (gets "/app/[")}}{{/each}}' });
    const r = await s.run();
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/app\.conf\.hbs:1:\d+: gets: .*\/app\/\[/);
  });

  test("an unknown function is named with its line", async () => {
    const s = setup({ template: "x\n{{getvv \"/app/port\"}}\n" });
    const r = await s.run();
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`app.conf.hbs:2:1: unknown function "getvv"`);
  });

  test("a Go template (confd's syntax): a missing key is reported as Go reports it, with the resource", async () => {
    const s = setup({ template: "", resource: "" });
    writeTree(s.dir, {
      "templates/go.tmpl": 'ok={{getv "/app/port"}}\n{{range gets "/app/*"}}{{.Key}} {{end}}\n{{getv "/app/missing"}}\n',
      "conf.d/app.toml": `[template]\nsrc = "go.tmpl"\ndest = ${JSON.stringify(s.dest)}\nkeys = ["/app"]\n`,
    });
    writeFileSync(s.dest, "old\n");
    const r = await s.run();
    expect(r.code).toBe(1);
    expect(readFileSync(s.dest, "utf8")).toBe("old\n");
    const line = r.stderr.split("\n").find((l) => l.includes("ERROR"))!;
    expect(line).toEndWith(
      `ERROR resource app: ${join(s.dir, "templates", "go.tmpl")}: template: go.tmpl:3:2: executing "go.tmpl" at <getv "/app/missing">: error calling getv: key does not exist: /app/missing`,
    );
  });

  test("one resource's failure does not stop the others", async () => {
    const s = setup({ template: '{{getv "/app/nope"}}' });
    writeTree(s.dir, {
      "templates/ok.hbs": 'ok {{getv "/app/port"}}\n',
      "conf.d/ok.toml": `[template]\nsrc = "ok.hbs"\ndest = ${JSON.stringify(join(s.dir, "out", "ok.conf"))}\nkeys = ["/app"]\n`,
    });
    const r = await s.run();
    expect(r.code).toBe(1);
    expect(readFileSync(join(s.dir, "out", "ok.conf"), "utf8")).toBe("ok 8080\n");
  });
});
