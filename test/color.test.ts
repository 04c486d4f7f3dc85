// -color for -noop's diff, end to end through the CLI with the env backend: byte-exact escape sequences
// with always, none with never, none with auto when stdout is a pipe (as here); whether auto colours a
// terminal and honours NO_COLOR, through useColor; and a bad value refused as Go's flag package would.
import { afterAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { useColor } from "../src/color.ts";
import { baseEnv, runConfd, tempDir, writeTree } from "./helpers.ts";

const tmp = tempDir("confd-color-");
afterAll(() => tmp.cleanup());

let n = 0;
function setup(extra: Record<string, string> = {}) {
  const dir = join(tmp.path, `run${n++}`);
  const dest = join(dir, "app.conf");
  writeTree(dir, {
    "templates/app.tmpl": `port={{getv "/port"}}\n`,
    "conf.d/app.toml": `[template]\nsrc = "app.tmpl"\ndest = "${dest}"\nkeys = ["/port"]\n`,
    // A removed line that starts with "--" is still a removed line, not a header.
    "app.conf": "-- comment\nport=80\n",
    ...extra,
  });
  const run = (args: string[], env: Record<string, string> = {}) =>
    runConfd(["-onetime", "-noop", "-backend", "env", "-confdir", dir, "-config-file", join(dir, "confd.toml"), ...args], { env: baseEnv({ PORT: "8080", ...env }) });
  return { dir, dest, run };
}

const plain = (dest: string) => `--- ${dest}\n+++ ${dest} (rendered)\n@@ -1,2 +1 @@\n--- comment\n-port=80\n+port=8080\n`;

describe("-color", () => {
  test("always: headers bold, hunk cyan, removed red, added green, each reset at its line's end", async () => {
    const s = setup();
    const r = await s.run(["-color", "always"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(
      `\x1b[1m--- ${s.dest}\x1b[0m\n\x1b[1m+++ ${s.dest} (rendered)\x1b[0m\n\x1b[36m@@ -1,2 +1 @@\x1b[0m\n` +
        `\x1b[31m--- comment\x1b[0m\n\x1b[31m-port=80\x1b[0m\n\x1b[32m+port=8080\x1b[0m\n`,
    );
    expect(readFileSync(s.dest, "utf8")).toBe("-- comment\nport=80\n");
  });

  test("never, and auto on a pipe (the default): no escape sequence", async () => {
    const s = setup();
    expect((await s.run(["-color=never"], { NO_COLOR: "" })).stdout).toBe(plain(s.dest));
    expect((await s.run([])).stdout).toBe(plain(s.dest));
    expect((await s.run(["-color", "auto"])).stdout).toBe(plain(s.dest));
  });

  test("CONFD_COLOR and confd.toml's color set it too; the flag wins", async () => {
    const s = setup({ "confd.toml": `color = "always"\n` });
    expect((await s.run([])).stdout).toContain("\x1b[32m+port=8080\x1b[0m\n");
    expect((await s.run([], { CONFD_COLOR: "never" })).stdout).toBe(plain(s.dest));
    expect((await s.run(["-color", "never"])).stdout).toBe(plain(s.dest));
  });

  test("auto: colour only on a terminal, and not when NO_COLOR is set (and not empty)", () => {
    expect(useColor("auto", {}, true)).toBe(true);
    expect(useColor("auto", {}, false)).toBe(false);
    expect(useColor("auto", { NO_COLOR: "1" }, true)).toBe(false);
    expect(useColor("auto", { NO_COLOR: "" }, true)).toBe(true);
    expect(useColor("always", { NO_COLOR: "1" }, false)).toBe(true);
    expect(useColor("never", {}, true)).toBe(false);
  });

  test("a bad value: Go's flag error and exit 2 (flag, environment); a file and line from confd.toml, exit 1", async () => {
    const s = setup();
    const flag = await s.run(["-color", "rainbow"]);
    expect(flag.stderr).toBe('confd: invalid value "rainbow" for flag -color: must be auto, always or never\nRun \'confd --help\' for usage.\n');
    expect(flag.code).toBe(2);
    const env = await s.run([], { CONFD_COLOR: "yes" });
    expect(env.stderr).toBe('confd: invalid value "yes" for flag CONFD_COLOR: must be auto, always or never\nRun \'confd --help\' for usage.\n');
    expect(env.code).toBe(2);
    writeTree(s.dir, { "confd.toml": `\ncolor = "on"\n` });
    const file = await s.run([]);
    expect(file.stderr).toContain(`${s.dir}/confd.toml:2: key "color" must be auto, always or never, got "on"`);
    expect(file.code).toBe(1);
    expect(flag.stdout + env.stdout + file.stdout).toBe("");
  });
});
