// End to end against a real etcd: quiescence (wait), splay, min_reload_interval and reload groups, as a
// user sees them: how many times a reload_cmd ran (it appends a line to a file), the files, the log lines
// and exit codes. Nothing here reads a clock: the order of log lines and counts say what happened.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { Etcd3 } from "etcd3";
import { startEtcd, type EtcdServer } from "./etcd-server.ts";
import { baseEnv, Lines, runConfd, spawnConfd, tempDir, writeTree } from "./helpers.ts";
import { splayOffset } from "../src/fleet.ts";

const tmp = tempDir();
afterAll(tmp.cleanup);

let etcd: EtcdServer;
let client: Etcd3;

beforeAll(async () => {
  etcd = await startEtcd();
  client = new Etcd3({ hosts: etcd.endpoint });
});

afterAll(async () => {
  client?.close();
  await etcd?.stop();
});

const put = async (k: string, v: string) => void (await client.put(k).value(v));
let counter = 0;

interface Res {
  name: string;
  template: string;
  keys: string[];
  extra?: string[];
}

/** A confdir under a fresh directory: its resources write to out/<name>; reload commands append to `reloads`. */
function confdir(prefix: string, resources: Res[]) {
  const dir = join(tmp.path, `d${++counter}`);
  const reloads = join(dir, "reloads");
  const files: Record<string, string> = { "out/.keep": "" };
  for (const r of resources) {
    files[`templates/${r.name}.hbs`] = r.template;
    files[`conf.d/${r.name}.toml`] = [
      "[template]",
      `src = "${r.name}.hbs"`,
      `dest = ${JSON.stringify(join(dir, "out", r.name))}`,
      `prefix = "${prefix}"`,
      `keys = ${JSON.stringify(r.keys)}`,
      ...(r.extra ?? []).map((line) => line.replaceAll("RELOADS", reloads)),
    ].join("\n");
  }
  writeTree(dir, files);
  const reloadCount = () => (existsSync(reloads) ? readFileSync(reloads, "utf8").split("\n").filter(Boolean).length : 0);
  const args = (...more: string[]) => ["-confdir", dir, "-config-file", join(dir, "none"), "-log-level", "debug", "-backend", "etcdv3", "-node", etcd.endpoint, ...more];
  return { dir, reloads, reloadCount, args, out: (name: string) => join(dir, "out", name) };
}

function watch(d: ReturnType<typeof confdir>, env?: Record<string, string>) {
  const child = spawnConfd(d.args("-watch"), { env: baseEnv(env) });
  const stderr = new Lines(child.stderr);
  const updated = (name: string, times = 1) => stderr.waitForCount(new RegExp(`Target config ${escape(d.out(name))} has been updated`), times);
  const count = (pattern: RegExp) => stderr.seen.filter((l) => pattern.test(l)).length;
  const stop = async () => {
    child.kill("SIGTERM");
    expect(await child.exited).toBe(0);
  };
  return { stderr, updated, count, stop };
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

describe("quiescence (wait)", () => {
  test("first render at once; a burst of 50 writes inside min gives one render and one reload", async () => {
    const p = `/q${++counter}`;
    await put(`${p}/n/0`, "start");
    const d = confdir(p, [{ name: "burst", template: '{{#each (gets "/n/*")}}{{Value}}\n{{/each}}', keys: ["/n"], extra: ['wait = "3s:60s"', 'reload_cmd = "echo r >> RELOADS"'] }]);
    const w = watch(d);
    try {
      await w.updated("burst");
      // Not held: nothing said it waited for quiet before the first file was written.
      expect(w.count(/rendering after/)).toBe(0);
      expect(d.reloadCount()).toBe(1);
      for (let i = 1; i <= 50; i++) await put(`${p}/n/${i}`, `v${i}`);
      await w.stderr.waitFor(/Resource burst: no change for 3s; rendering/);
      await w.updated("burst", 2);
      expect(readFileSync(d.out("burst"), "utf8").split("\n").filter(Boolean)).toHaveLength(51);
      expect(w.count(/Resource burst changed; rendering after 3s without changes, at the latest in 60s/)).toBe(1);
      expect(w.count(/has been updated/)).toBe(2);
      expect(d.reloadCount()).toBe(2);
    } finally {
      await w.stop();
    }
  });

  test("a steady stream of changes still renders every max", async () => {
    const p = `/q${++counter}`;
    await put(`${p}/v`, "0");
    const d = confdir(p, [{ name: "stream", template: 'v={{getv "/v"}}\n', keys: ["/v"], extra: ['wait = "2s:3s"'] }]);
    const w = watch(d);
    try {
      await w.updated("stream");
      // Writes every 200 ms (well inside min) until two renders forced by max have happened.
      const forced = /Resource stream: still changing after 3s; rendering/;
      for (let i = 1; w.count(forced) < 2; i++) {
        expect(i).toBeLessThan(200);
        await put(`${p}/v`, String(i));
        await Bun.sleep(200);
      }
      await w.updated("stream", 3);
    } finally {
      await w.stop();
    }
  });

  test("the global -wait applies to resources without their own", async () => {
    const p = `/q${++counter}`;
    await put(`${p}/v`, "0");
    const d = confdir(p, [{ name: "g", template: 'v={{getv "/v"}}\n', keys: ["/v"] }]);
    const child = spawnConfd([...d.args("-watch"), "-wait", "1s:5s"]);
    const stderr = new Lines(child.stderr);
    try {
      await stderr.waitFor(new RegExp(`Target config ${escape(d.out("g"))} has been updated`));
      await put(`${p}/v`, "1");
      await stderr.waitFor(/Resource g changed; rendering after 1s without changes, at the latest in 5s/);
      await stderr.waitFor(/Resource g: no change for 1s; rendering/);
      await stderr.waitForCount(new RegExp(`Target config ${escape(d.out("g"))} has been updated`), 2);
      expect(readFileSync(d.out("g"), "utf8")).toBe("v=1\n");
    } finally {
      child.kill("SIGTERM");
      expect(await child.exited).toBe(0);
    }
  });
});

describe("splay", () => {
  const delayOf = (stderr: string, dest: string) => new RegExp(`Reload of ${escape(dest)} delayed (\\d+) ms \\(splay 2s\\)`).exec(stderr)?.[1];

  test("each host waits its own fixed share of the window, the same on every run", async () => {
    const p = `/s${++counter}`;
    await put(`${p}/v`, "1");
    const d = confdir(p, [{ name: "web", template: 'v={{getv "/v"}}\n', keys: ["/v"], extra: ['splay = "2s"', 'reload_cmd = "echo r >> RELOADS"'] }]);
    const run = async (host: string, ...flags: string[]) => {
      rmSync(d.out("web"), { force: true });
      const r = await runConfd([...d.args("-onetime"), ...flags], { env: baseEnv({ HOSTNAME: host }) });
      expect(r.code).toBe(0);
      return delayOf(r.stderr, d.out("web"));
    };
    const alpha = await run("alpha");
    const beta = await run("beta");
    expect(alpha).toBe(String(splayOffset("alpha", "web", 2000)));
    expect(beta).toBe(String(splayOffset("beta", "web", 2000)));
    expect(alpha).not.toBe(beta);
    expect(await run("alpha")).toBe(alpha);
    expect(d.reloadCount()).toBe(3);
  });

  test("the global -splay applies to resources without their own", async () => {
    const p = `/s${++counter}`;
    await put(`${p}/v`, "1");
    const d = confdir(p, [{ name: "api", template: 'v={{getv "/v"}}\n', keys: ["/v"], extra: ['reload_cmd = "echo r >> RELOADS"'] }]);
    const r = await runConfd([...d.args("-onetime"), "-splay", "2s"], { env: baseEnv({ HOSTNAME: "gamma" }) });
    expect(r.code).toBe(0);
    expect(delayOf(r.stderr, d.out("api"))).toBe(String(splayOffset("gamma", "api", 2000)));
  });
});

describe("min_reload_interval", () => {
  test("a reload due sooner than the interval after the last one waits for the rest of it", async () => {
    const p = `/m${++counter}`;
    await put(`${p}/v`, "0");
    const d = confdir(p, [{ name: "rl", template: 'v={{getv "/v"}}\n', keys: ["/v"], extra: ['min_reload_interval = "3s"', 'reload_cmd = "echo r >> RELOADS"'] }]);
    const w = watch(d);
    try {
      await w.updated("rl");
      expect(d.reloadCount()).toBe(1);
      await put(`${p}/v`, "1");
      await w.stderr.waitFor(/Reload of .* delayed \d+ ms \(min_reload_interval 3s\)/);
      // The file is already in place; its reload waits for the rest of the interval, then runs.
      expect(readFileSync(d.out("rl"), "utf8")).toBe("v=1\n");
      expect(d.reloadCount()).toBe(1);
      await w.updated("rl", 2);
      expect(d.reloadCount()).toBe(2);
    } finally {
      await w.stop();
    }
  });

  test("shutdown does not leave a replaced file unreloaded: a delayed reload runs at once", async () => {
    const p = `/m${++counter}`;
    await put(`${p}/v`, "0");
    const d = confdir(p, [{ name: "sd", template: 'v={{getv "/v"}}\n', keys: ["/v"], extra: ['min_reload_interval = "1h"', 'reload_cmd = "echo r >> RELOADS"'] }]);
    const w = watch(d);
    await w.updated("sd");
    await put(`${p}/v`, "1");
    await w.stderr.waitFor(/Reload of .* delayed \d+ ms \(min_reload_interval 3600s\)/);
    expect(d.reloadCount()).toBe(1);
    await w.stop();
    expect(w.count(/Reload of .* no longer delayed: shutting down/)).toBe(1);
    expect(d.reloadCount()).toBe(2);
  });
});

describe("reload groups", () => {
  const group = (p: string, reloadCmd = "echo r >> RELOADS") =>
    [1, 2, 3, 4, 5].map((i) => ({
      name: `vhost${i}`,
      template: `host${i} {{getv "/shared"}}\n`,
      keys: ["/shared"],
      extra: ['reload_group = "nginx"', `reload_cmd = "${reloadCmd}"`],
    }));

  test("-onetime: five changed members, one reload; nothing changed, no reload", async () => {
    const p = `/g${++counter}`;
    await put(`${p}/shared`, "a");
    const d = confdir(p, group(p));
    const r = await runConfd(d.args("-onetime"));
    expect(r.code).toBe(0);
    for (let i = 1; i <= 5; i++) expect(readFileSync(d.out(`vhost${i}`), "utf8")).toBe(`host${i} a\n`);
    expect(r.stderr).toContain("Reloading group nginx once for 5 changed resources of 5");
    expect(d.reloadCount()).toBe(1);
    const again = await runConfd(d.args("-onetime"));
    expect(again.code).toBe(0);
    expect(d.reloadCount()).toBe(1);
  });

  test("-watch: one write touching all five members, one reload", async () => {
    const p = `/g${++counter}`;
    await put(`${p}/shared`, "a");
    const d = confdir(p, group(p));
    const w = watch(d);
    try {
      await w.stderr.waitFor(/Group nginx has been reloaded/);
      expect(d.reloadCount()).toBe(1);
      await put(`${p}/shared`, "b");
      await w.stderr.waitForCount(/Group nginx has been reloaded/, 2);
      for (let i = 1; i <= 5; i++) expect(readFileSync(d.out(`vhost${i}`), "utf8")).toBe(`host${i} b\n`);
      expect(w.count(/Reloading group nginx once for 5 changed resources of 5/)).toBe(2);
      expect(d.reloadCount()).toBe(2);
    } finally {
      await w.stop();
    }
  });

  test("-watch: a batch synced while the group reloads waits for that reload before its own", async () => {
    const p = `/g${++counter}`;
    await put(`${p}/shared`, "a");
    const d = confdir(p, group(p, "echo start >> RELOADS; sleep 1; echo end >> RELOADS"));
    const w = watch(d);
    try {
      await w.stderr.waitFor(/Group nginx has been reloaded/);
      await put(`${p}/shared`, "b");
      await w.stderr.waitForCount(/Reloading group nginx once/, 2);
      // The reload for "b" is running (it sleeps): "c" is synced meanwhile, and its reload must not overlap.
      await put(`${p}/shared`, "c");
      await w.stderr.waitForCount(/Group nginx has been reloaded/, 3);
      expect(readFileSync(d.reloads, "utf8")).toBe("start\nend\n".repeat(3));
    } finally {
      await w.stop();
    }
  });

  test("-watch with wait: a burst of writes to each member's own key, one render each and one reload", async () => {
    const p = `/g${++counter}`;
    const members = [1, 2, 3, 4, 5].map((i) => ({
      name: `site${i}`,
      template: `site${i} {{getv "/site${i}" "none"}}\n`,
      keys: [`/site${i}`],
      extra: ['reload_group = "web"', 'reload_cmd = "echo r >> RELOADS"', 'wait = "2s:60s"'],
    }));
    const d = confdir(p, members);
    const w = watch(d);
    try {
      await w.stderr.waitFor(/Group web has been reloaded/);
      for (let round = 1; round <= 4; round++) for (let i = 1; i <= 5; i++) await put(`${p}/site${i}`, `r${round}`);
      await w.stderr.waitForCount(/Group web has been reloaded/, 2);
      for (let i = 1; i <= 5; i++) expect(readFileSync(d.out(`site${i}`), "utf8")).toBe(`site${i} r4\n`);
      for (let i = 1; i <= 5; i++) expect(w.count(new RegExp(`Target config ${escape(d.out(`site${i}`))} has been updated`))).toBe(2);
      expect(w.count(/Reloading group web once for 5 changed resources of 5/)).toBe(2);
      expect(d.reloadCount()).toBe(2);
    } finally {
      await w.stop();
    }
  });

  test("shutdown runs a group reload waiting for its min_reload_interval at once", async () => {
    const p = `/g${++counter}`;
    await put(`${p}/shared`, "a");
    const members = group(p).map((m) => ({ ...m, extra: [...m.extra, 'min_reload_interval = "1h"'] }));
    const d = confdir(p, members);
    const w = watch(d);
    await w.stderr.waitFor(/Group nginx has been reloaded/);
    await put(`${p}/shared`, "b");
    await w.stderr.waitFor(/Reload of group nginx delayed \d+ ms \(min_reload_interval 3600s\)/);
    expect(d.reloadCount()).toBe(1);
    await w.stop();
    expect(w.count(/Reload of group nginx no longer delayed: shutting down/)).toBe(1);
    expect(d.reloadCount()).toBe(2);
  });

  test("a failed group reload fails every member", async () => {
    const p = `/g${++counter}`;
    await put(`${p}/shared`, "a");
    const d = confdir(p, group(p, "exit 3"));
    const r = await runConfd(d.args("-onetime"));
    expect(r.code).toBe(1);
    for (let i = 1; i <= 5; i++) expect(r.stderr).toMatch(new RegExp(`resource vhost${i}: .*reload_group "nginx": reload_cmd exited with status 3`));
  });

  test("members disagreeing on reload_cmd: a load error naming each file", async () => {
    const p = `/g${++counter}`;
    await put(`${p}/shared`, "a");
    const members = group(p);
    members[4]!.extra = ['reload_group = "nginx"', 'reload_cmd = "other"'];
    const d = confdir(p, members);
    const r = await runConfd(d.args("-onetime"));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/vhost5\.toml:7: reload_group "nginx": members disagree on reload_cmd/);
    expect(existsSync(d.out("vhost1"))).toBe(false);
  });
});

describe("bad values", () => {
  for (const [line, key] of [
    ['wait = "10s:2s"', "wait"],
    ['splay = "soon"', "splay"],
    ['min_reload_interval = "-1s"', "min_reload_interval"],
    ["reload_group = 3", "reload_group"],
  ] as const) {
    test(line, async () => {
      const d = confdir("/bad", [{ name: "bad", template: "x\n", keys: ["/v"], extra: [line] }]);
      const r = await runConfd(d.args("-onetime"));
      expect(r.code).toBe(1);
      const errors = r.stderr.split("\n").filter((l) => l.includes("ERROR"));
      expect(errors).toHaveLength(1);
      expect(errors[0]).toContain(`${join(d.dir, "conf.d", "bad.toml")}:6: key "${key}"`);
    });
  }

  test("-wait 10s:2s is a usage error", async () => {
    const d = confdir("/bad", []);
    const r = await runConfd([...d.args("-onetime"), "-wait", "10s:2s"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('invalid value "10s:2s" for flag -wait');
  });
});
