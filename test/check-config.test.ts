// -check-config end to end through the CLI: a valid confdir (confd's integration fixture, plus a
// handlebars resource) passes with exit 0; a confdir with one problem of each kind gets one line per
// problem naming its file (and line where there is one) and exit 1. Either way nothing is written, no
// command runs and the store named by -backend/-node is never contacted: a listener on that port
// counts the connections it gets.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fixtureConfdir } from "./fixture.ts";
import { baseEnv, CONFD_FIXTURE, runConfd, tempDir, writeTree } from "./helpers.ts";

const tmp = tempDir("confd-check-");
let connections = 0;
let store: Bun.TCPSocketListener | undefined;

beforeAll(() => {
  // Where -node points: anything that connects here is counted.
  store = Bun.listen({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      open(socket) {
        connections++;
        socket.end();
      },
      data() {},
    },
  });
});

afterAll(() => {
  store?.stop(true);
  tmp.cleanup();
});

/** The flags every run gets: a store that must not matter, and no /etc/confd/confd.toml. */
function storeFlags(): string[] {
  return ["-backend", "etcd", "-node", `127.0.0.1:${store!.port}`];
}

describe("-check-config", () => {
  test("a valid confdir: a summary, exit 0, nothing written, no store contacted", async () => {
    const { dir, out } = fixtureConfdir(join(tmp.path, "good"));
    writeTree(dir, {
      "templates/basic.conf.hbs": readFileSync(join(CONFD_FIXTURE, "handlebars", "basic.conf.hbs"), "utf8"),
      "conf.d/hbs.toml": `[template]\nsrc = "basic.conf.hbs"\ndest = "${join(out, "hbs.conf")}"\nkeys = ["/database"]\nreload_cmd = "touch ${join(out, "reloaded")}"\n`,
      "confd.toml": `confdir = "${dir}"\nlog-level = "debug"\n`,
    });
    const result = await runConfd(["-check-config", "-config-file", join(dir, "confd.toml"), ...storeFlags()], { env: baseEnv() });
    expect(result.stdout).toBe("6 resources, 5 templates: configuration OK\n");
    expect(result.code).toBe(0);
    expect(readdirSync(out)).toEqual([".keep"]);
    expect(connections).toBe(0);
  });

  test("every problem on a line of its own naming its file and line, exit 1, nothing written or run", async () => {
    const dir = join(tmp.path, "bad");
    writeTree(dir, {
      // Line 4: a missing comma.
      "confd.toml": `backend = "etcd"\nlog-level = "info"\nnodes = [\n  "a" "b"\n]\n`,
      "templates/ok.tmpl": `a={{getv "/a"}}\n`,
      "templates/bad.tmpl": `line 1\n{{range .x}\n`,
      "templates/bad.hbs": `line 1\n{{#each a}}\n{{/if}}\n`,
      "conf.d/1-nodest.toml": `[template]\nsrc = "ok.tmpl"\nkeys = ["/a"]\n`,
      "conf.d/2-go.toml": `[template]\nsrc = "bad.tmpl"\ndest = "${dir}/go.out"\nkeys = ["/a"]\n`,
      "conf.d/3-hbs.toml": `[template]\nsrc = "bad.hbs"\ndest = "${dir}/hbs.out"\nkeys = ["/a"]\n`,
      "conf.d/4-engine.toml": `[template]\nsrc = "ok.tmpl"\ndest = "${dir}/engine.out"\nkeys = ["/a"]\nengine = "jinja"\n`,
      "conf.d/5-good.toml": `[template]\nsrc = "ok.tmpl"\ndest = "${dir}/good.out"\nkeys = ["/a"]\nreload_cmd = "touch ${dir}/reloaded"\n`,
    });
    const before = readdirSync(dir).sort();
    const result = await runConfd(["-check-config", "-confdir", dir, "-config-file", join(dir, "confd.toml"), ...storeFlags()], { env: baseEnv() });
    expect(result.stdout.split("\n")).toEqual([
      `${dir}/confd.toml:4:7: invalid TOML: Invalid character, expected whitespace, comma (,) or close bracket (])`,
      `resource 1-nodest: ${dir}/conf.d/1-nodest.toml: missing required key "dest"`,
      `resource 4-engine: ${dir}/conf.d/4-engine.toml:5: key "engine" must be "go" or "handlebars", got "jinja"`,
      `resource 2-go: ${dir}/templates/bad.tmpl: template: bad.tmpl:2: bad character U+007D '}'`,
      `resource 3-hbs: ${dir}/templates/bad.hbs:2: template syntax error: each doesn't match if - 2:3`,
      "5 problems: configuration not valid",
      "",
    ]);
    expect(result.code).toBe(1);
    expect(readdirSync(dir).sort()).toEqual(before);
    expect(existsSync(join(dir, "good.out"))).toBe(false);
    expect(connections).toBe(0);
  });

  test("several bad settings in confd.toml and on the command line are all reported", async () => {
    const dir = join(tmp.path, "settings");
    writeTree(dir, {
      "confd.toml": `interval = "often"\nlog-level = "loud"\nwatch = "yes"\n`,
      "conf.d/.keep": "",
    });
    const result = await runConfd(["-check-config", "-confdir", dir, "-config-file", join(dir, "confd.toml"), "-template-engine", "jinja"], { env: baseEnv() });
    expect(result.stdout.split("\n")).toEqual([
      `${dir}/confd.toml:1: key "interval" must be a number, got "often"`,
      `${dir}/confd.toml:3: key "watch" must be true or false, got "yes"`,
      'flag -log-level: unknown log level "loud" (debug, info, warning, error)',
      'flag -template-engine: unknown template engine "jinja" (go, handlebars)',
      `flag -confdir: nothing to check: no template resources in ${dir}/conf.d`,
      `warning: no template resources found in ${dir}/conf.d`,
      "5 problems: configuration not valid",
      "",
    ]);
    expect(result.code).toBe(1);
  });

  test("a confdir that does not exist is a problem, not a pass", async () => {
    const missing = join(tmp.path, "no-such-dir");
    const result = await runConfd(["-check-config", "-confdir", missing, "-config-file", join(tmp.path, "none.toml")], { env: baseEnv() });
    expect(result.stdout).toContain(`flag -confdir: nothing to check: no template resources in ${missing}/conf.d\n`);
    expect(result.stdout).toEndWith("1 problem: configuration not valid\n");
    expect(result.code).toBe(1);
  });

  test("a start with the same bad resource still runs the others, as before", async () => {
    const dir = join(tmp.path, "start");
    writeTree(dir, {
      "templates/ok.tmpl": `a={{getv "/a"}}\n`,
      "conf.d/bad.toml": `[template]\nsrc = "ok.tmpl"\nkeys = ["/a"]\n`,
      "conf.d/good.toml": `[template]\nsrc = "ok.tmpl"\ndest = "${dir}/good.out"\nkeys = ["/a"]\n`,
    });
    const result = await runConfd(["-onetime", "-backend", "env", "-confdir", dir, "-config-file", join(dir, "none.toml")], { env: baseEnv({ A: "1" }) });
    expect(result.stderr).toContain(`resource bad: ${dir}/conf.d/bad.toml: missing required key "dest"`);
    expect(readFileSync(join(dir, "good.out"), "utf8")).toBe("a=1\n");
    expect(result.code).toBe(1);
  });
});
