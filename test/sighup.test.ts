// SIGHUP reloads confd.toml, conf.d and the templates without a restart (run.ts, reload.ts): a valid new
// set replaces the running one, an invalid one is refused whole and the old set keeps running. The file
// backend is the store here, a real one: its watch fires on the data file's change.
import { afterAll, expect, test } from "bun:test";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Lines, spawnConfd, tempDir, writeTree } from "./helpers.ts";

const tmp = tempDir();
afterAll(tmp.cleanup);

/** A resource reading /app, whose reload_cmd appends its name to a log of reloads. */
function resource(dir: string, name: string): string {
  const dest = join(dir, "out", name);
  return `[template]\nsrc = "${name}.tmpl"\ndest = ${JSON.stringify(dest)}\nkeys = ["/app"]\nreload_cmd = "echo ${name} >> ${join(dir, "reloads")}"\n`;
}

function reloads(dir: string): string[] {
  return existsSync(join(dir, "reloads")) ? readFileSync(join(dir, "reloads"), "utf8").split("\n").filter(Boolean) : [];
}

test("-watch: SIGHUP with no change, add a resource, change a template, break one (refused), remove one", async () => {
  const dir = join(tmp.path, "watch");
  const out = (name: string) => readFileSync(join(dir, "out", name), "utf8");
  writeTree(dir, {
    "templates/a.tmpl": 'a1 {{getv "/app/v"}}\n',
    "conf.d/a.toml": resource(dir, "a"),
    "data.yaml": "app:\n  v: 1\n",
    "out/.keep": "",
  });
  const child = spawnConfd(["-watch", "-backend", "file", "-file", join(dir, "data.yaml"), "-confdir", dir, "-log-level", "debug", "-config-file", join(dir, "none")]);
  const log = new Lines(child.stderr);
  const updated = (name: string) => new RegExp(`Target config ${join(dir, "out", name)} has been updated`);
  const inSync = (name: string) => new RegExp(`Target config ${join(dir, "out", name)} in sync`);
  /** Sends SIGHUP and resolves with the index of the line that ends the reload (its outcome). */
  const hup = async (outcome: RegExp) => {
    const from = log.seen.length;
    child.kill("SIGHUP");
    await log.waitFor(/Received SIGHUP: reloading configuration/, from);
    const line = await log.waitFor(outcome, from);
    return log.seen.indexOf(line, from);
  };
  try {
    await log.waitFor(updated("a"));
    expect(out("a")).toBe("a1 1\n");
    expect(reloads(dir)).toEqual(["a"]);

    // Nothing changed: the new generation renders a, finds it in sync, and neither writes nor reloads it.
    let at = await hup(/configuration reloaded: 0 added, 0 changed, 0 removed, 1 unchanged/);
    await log.waitFor(inSync("a"), at);
    expect(reloads(dir)).toEqual(["a"]);

    // A resource added: rendered at once; a is left alone.
    writeTree(dir, { "templates/b.tmpl": 'b1 {{getv "/app/v"}}\n', "conf.d/b.toml": resource(dir, "b") });
    at = await hup(/configuration reloaded: 1 added, 0 changed, 0 removed, 1 unchanged/);
    await log.waitFor(updated("b"), at);
    await log.waitFor(inSync("a"), at);
    expect(out("b")).toBe("b1 1\n");
    expect(reloads(dir)).toEqual(["a", "b"]);

    // A template changed: its resource renders the new text and reloads.
    writeTree(dir, { "templates/a.tmpl": 'a2 {{getv "/app/v"}}\n' });
    at = await hup(/configuration reloaded: 0 added, 1 changed, 0 removed, 1 unchanged/);
    await log.waitFor(updated("a"), at);
    await log.waitFor(inSync("b"), at);
    expect(out("a")).toBe("a2 1\n");
    expect(reloads(dir)).toEqual(["a", "b", "a"]);

    // A template broken: one line for the problem, one for the refusal, and the old set keeps running.
    writeTree(dir, { "templates/a.tmpl": 'a3 {{getv "/app/v"\n' });
    at = await hup(/configuration reload refused: 1 problem; still running the previous configuration/);
    const lines = log.seen.slice(0, at).filter((l, i) => i >= log.seen.findLastIndex((x) => /Received SIGHUP/.test(x)));
    expect(lines.filter((l) => /ERROR/i.test(l))).toHaveLength(1);
    expect(lines.join("\n")).toContain("a.tmpl");
    writeFileSync(join(dir, "data.yaml"), "app:\n  v: 2\n");
    await log.waitFor(updated("a"), at);
    await log.waitFor(updated("b"), at);
    expect(out("a")).toBe("a2 2\n");
    expect(out("b")).toBe("b1 2\n");

    // b removed (and a's template back as it runs): b's file is no longer updated; a still is.
    writeTree(dir, { "templates/a.tmpl": 'a2 {{getv "/app/v"}}\n' });
    rmSync(join(dir, "conf.d", "b.toml"));
    at = await hup(/configuration reloaded: 0 added, 0 changed, 1 removed, 1 unchanged/);
    // The new generation's watch is in place once it says so (the file backend watches from its second call on).
    await log.waitFor(/Watch on \/app started/, at);
    writeFileSync(join(dir, "data.yaml"), "app:\n  v: 3\n");
    await log.waitFor(updated("a"), at);
    expect(out("a")).toBe("a2 3\n");
    expect(out("b")).toBe("b1 2\n");
    expect(log.seen.slice(at).some((l) => updated("b").test(l) || inSync("b").test(l))).toBe(false);
  } finally {
    child.kill("SIGTERM");
  }
  expect(await child.exited).toBe(0);
});

test("interval mode: a changed template is rendered on SIGHUP; a change to the store's options is refused as needing a restart", async () => {
  const dir = join(tmp.path, "interval");
  const config = join(dir, "confd.toml");
  writeTree(dir, {
    "confd.toml": 'filter = "*.yaml"\n',
    "templates/a.tmpl": 'a1 {{getv "/app/v"}}\n',
    "conf.d/a.toml": resource(dir, "a"),
    "data.yaml": "app:\n  v: 1\n",
    "out/.keep": "",
  });
  const child = spawnConfd(["-interval", "3600", "-backend", "file", "-file", join(dir, "data.yaml"), "-confdir", dir, "-config-file", config]);
  const log = new Lines(child.stderr);
  try {
    await log.waitFor(/Target config .*out\/a has been updated/);
    writeTree(dir, { "templates/a.tmpl": 'a2 {{getv "/app/v"}}\n' });
    let from = log.seen.length;
    child.kill("SIGHUP");
    await log.waitFor(/configuration reloaded: 0 added, 1 changed, 0 removed, 0 unchanged/, from);
    await log.waitFor(/Target config .*out\/a has been updated/, from);
    expect(readFileSync(join(dir, "out", "a"), "utf8")).toBe("a2 1\n");

    writeTree(dir, { "confd.toml": 'filter = "*.yml"\n', "templates/a.tmpl": 'a3 {{getv "/app/v"}}\n' });
    from = log.seen.length;
    child.kill("SIGHUP");
    await log.waitFor(/configuration reload refused: 1 problem; still running the previous configuration/, from);
    expect(log.seen.slice(from).join("\n")).toContain("-filter changed; it takes effect only on a restart");
    expect(readFileSync(join(dir, "out", "a"), "utf8")).toBe("a2 1\n");
  } finally {
    child.kill("SIGTERM");
  }
  expect(await child.exited).toBe(0);
  expect(reloads(dir)).toEqual(["a", "a"]);
});

test("-onetime ignores SIGHUP: the run in progress finishes and exits 0", async () => {
  const dir = join(tmp.path, "onetime");
  const gate = join(dir, "gate");
  writeTree(dir, {
    "templates/a.tmpl": 'a {{getv "/app/v"}}\n',
    "conf.d/a.toml": `[template]\nsrc = "a.tmpl"\ndest = ${JSON.stringify(join(dir, "out", "a"))}\nkeys = ["/app"]\nreload_cmd = "cat ${gate}"\n`,
    "data.yaml": "app:\n  v: 1\n",
    "out/.keep": "",
  });
  expect(Bun.spawnSync(["mkfifo", gate]).exitCode).toBe(0);
  const child = spawnConfd(["-onetime", "-backend", "file", "-file", join(dir, "data.yaml"), "-confdir", dir, "-log-level", "debug", "-config-file", join(dir, "none")]);
  const log = new Lines(child.stderr);
  // The reload command waits on the FIFO: the run is in progress until the test writes to it.
  await log.waitFor(/Running reload command/);
  child.kill("SIGHUP");
  await log.waitFor(/Received SIGHUP: ignored with -onetime/);
  writeFileSync(gate, "go\n");
  expect(await child.exited).toBe(0);
  expect(readFileSync(join(dir, "out", "a"), "utf8")).toBe("a 1\n");
});

test("a reload waits for the sync in flight; a SIGHUP during it brings one more reload", async () => {
  const dir = join(tmp.path, "inflight");
  const gate = join(dir, "gate");
  const released = join(dir, "released");
  const running = join(dir, "running");
  writeTree(dir, {
    "templates/a.tmpl": 'a1 {{getv "/app/v"}}\n',
    // The first reload says it runs through one FIFO, then blocks on another until the test writes to it; later ones pass.
    "conf.d/a.toml": `[template]\nsrc = "a.tmpl"\ndest = ${JSON.stringify(join(dir, "out", "a"))}\nkeys = ["/app"]\nreload_cmd = "test -e ${released} || { echo > ${running}; cat ${gate}; }"\n`,
    "data.yaml": "app:\n  v: 1\n",
    "out/.keep": "",
  });
  expect(Bun.spawnSync(["mkfifo", gate, running]).exitCode).toBe(0);
  const child = spawnConfd(["-watch", "-backend", "file", "-file", join(dir, "data.yaml"), "-confdir", dir, "-log-level", "debug", "-config-file", join(dir, "none")]);
  const log = new Lines(child.stderr);
  try {
    await Bun.file(running).text();
    writeTree(dir, { "templates/a.tmpl": 'a2 {{getv "/app/v"}}\n' });
    child.kill("SIGHUP");
    await log.waitFor(/Received SIGHUP: reloading configuration/);
    child.kill("SIGHUP");
    await log.waitFor(/Received SIGHUP during a reload: reloading once more when it is done/);
    // Until the reload command ends, the old set is still running: no switch yet.
    expect(log.text()).not.toContain("configuration reloaded");
    writeFileSync(released, "");
    writeFileSync(gate, "go\n");
    const first = await log.waitFor(/configuration reloaded: 0 added, 1 changed, 0 removed, 0 unchanged/);
    await log.waitFor(/configuration reloaded: 0 added, 0 changed, 0 removed, 1 unchanged/, log.seen.indexOf(first) + 1);
    await log.waitFor(/Target config .*out\/a has been updated/, log.seen.indexOf(first));
    expect(readFileSync(join(dir, "out", "a"), "utf8")).toBe("a2 1\n");
  } finally {
    child.kill("SIGTERM");
  }
  expect(await child.exited).toBe(0);
});
