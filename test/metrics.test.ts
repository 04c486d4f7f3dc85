// -metrics-addr end to end: confd as a process against a real etcd server (test/etcd-server.ts), its
// /metrics scraped and read with a Prometheus text-format parser (parse-prometheus-text-format, the
// prom2json shape), /readyz followed through a store down at start, a first sync, and a store lost and
// back; /healthz, /status, and the flag's errors.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Etcd3 } from "etcd3";
import parsePrometheusTextFormat, { type MetricFamily } from "parse-prometheus-text-format";
import type { Status } from "../src/metrics.ts";
import { startEtcd, type EtcdServer } from "./etcd-server.ts";
import { baseEnv, freePort, Lines, runConfd, spawnConfd, tempDir, writeTree } from "./helpers.ts";

let etcd: EtcdServer;
let client: Etcd3;
const tmp = tempDir("confd-metrics-");

beforeAll(async () => {
  etcd = await startEtcd();
  client = new Etcd3({ hosts: etcd.endpoint });
});

afterAll(async () => {
  client?.close();
  await etcd?.stop();
  tmp.cleanup();
});

/** A confdir with one resource "app" rendering /app/v, with check and reload commands. */
function confdir(name: string): { dir: string; dest: string } {
  const dir = join(tmp.path, name);
  const dest = join(dir, "out", "app.conf");
  writeTree(dir, {
    "out/.keep": "",
    "templates/app.tmpl": 'v={{getv "/app/v"}}\n',
    "conf.d/app.toml": ["[template]", 'src = "app.tmpl"', `dest = ${JSON.stringify(dest)}`, 'keys = ["/app"]', 'check_cmd = "test -s {{.src}}"', 'reload_cmd = "true"'].join("\n"),
  });
  return { dir, dest };
}

async function scrape(base: string): Promise<MetricFamily[]> {
  const response = await fetch(`${base}/metrics`);
  expect(response.status).toBe(200);
  expect(response.headers.get("content-type")).toStartWith("text/plain; version=0.0.4");
  return parsePrometheusTextFormat(await response.text());
}

/**
 * The value of the counter or gauge sample of `name` whose labels include `labels`. Not for histograms:
 * parse-prometheus-text-format 1.1.1 folds a histogram's labelled series into one (its flattenMetrics),
 * so those are checked by `histogram` for their family alone.
 */
function sample(families: MetricFamily[], name: string, labels: Record<string, string> = {}): number {
  const family = families.find((f) => f.name === name);
  if (!family) throw new Error(`no metric ${name}`);
  const match = family.metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v));
  if (!match) throw new Error(`no sample of ${name} with ${JSON.stringify(labels)}`);
  return Number(match.value ?? match.count);
}

/** A histogram family as the parser sees it: typed, with cumulative buckets up to +Inf. */
function histogram(families: MetricFamily[], name: string): void {
  const family = families.find((f) => f.name === name);
  expect(family?.type).toBe("HISTOGRAM");
  expect(Object.keys(family!.metrics[0]?.buckets ?? {})).toContain("+Inf");
}

async function statusOf(base: string): Promise<Status> {
  return (await (await fetch(`${base}/status`)).json()) as Status;
}

async function readyz(base: string): Promise<number> {
  return (await fetch(`${base}/readyz`)).status;
}

describe("-metrics-addr with -watch and etcd", () => {
  test("/readyz follows the first sync and the store; /metrics counts syncs, commands and reconnects; /status and /healthz", async () => {
    await client.put("/app/v").value("1");
    await etcd.kill();
    const { dir, dest } = confdir("watch");
    const port = freePort();
    const base = `http://127.0.0.1:${port}`;
    const child = spawnConfd(["-watch", "-backend", "etcdv3", "-node", etcd.endpoint, "-confdir", dir, "-config-file", join(dir, "none"), "-log-level", "debug", "-metrics-addr", `127.0.0.1:${port}`]);
    const stderr = new Lines(child.stderr);
    try {
      await stderr.waitFor(new RegExp(`Serving /metrics, /healthz, /readyz and /status on 127\\.0\\.0\\.1:${port}$`));
      expect((await fetch(`${base}/healthz`)).status).toBe(200);
      // Nothing synced yet, and the store down at start.
      expect(await readyz(base)).toBe(503);
      await stderr.waitFor(/store connection lost/);
      expect(await readyz(base)).toBe(503);
      let status = await statusOf(base);
      expect(status).toEqual({
        ready: false,
        storeReachable: false,
        mode: "watch",
        resources: { app: { lastSync: null, lastAttempt: null, lastError: null, nextAction: "retrying the store with backoff" } },
      });

      await etcd.restart();
      await stderr.waitFor(/Metrics recorded a sync of app$/);
      expect(readFileSync(dest, "utf8")).toBe("v=1\n");
      expect(await readyz(base)).toBe(200);
      status = await statusOf(base);
      expect(status.ready).toBe(true);
      expect(status.storeReachable).toBe(true);
      expect(status.resources.app!.lastError).toBeNull();
      expect(status.resources.app!.nextAction).toBe("watching");
      expect(new Date(status.resources.app!.lastSync!).toISOString()).toBe(status.resources.app!.lastSync!);

      let m = await scrape(base);
      expect(sample(m, "confd_syncs_total", { resource: "app", result: "changed" })).toBe(1);
      expect(sample(m, "confd_renders_total", { resource: "app" })).toBe(1);
      expect(sample(m, "confd_commands_total", { resource: "app", command: "check", result: "ok" })).toBe(1);
      expect(sample(m, "confd_commands_total", { resource: "app", command: "reload", result: "ok" })).toBe(1);
      for (const h of ["confd_command_duration_seconds", "confd_render_duration_seconds", "confd_store_read_duration_seconds"]) histogram(m, h);
      expect(sample(m, "confd_store_reachable")).toBe(1);
      expect(sample(m, "confd_watch_reconnects_total")).toBe(1);
      expect(sample(m, "confd_worker_restarts_total", { resource: "app" })).toBe(0);
      expect(sample(m, "confd_last_sync_success_timestamp_seconds", { resource: "app" }) * 1000).toBe(Date.parse(status.resources.app!.lastSync!));

      // A change: one more render, sync, check and reload.
      await client.put("/app/v").value("2");
      await stderr.waitForCount(/Metrics recorded a sync of app$/, 2);
      expect(readFileSync(dest, "utf8")).toBe("v=2\n");
      m = await scrape(base);
      expect(sample(m, "confd_syncs_total", { resource: "app", result: "changed" })).toBe(2);
      expect(sample(m, "confd_renders_total", { resource: "app" })).toBe(2);
      expect(sample(m, "confd_commands_total", { resource: "app", command: "check", result: "ok" })).toBe(2);

      // The store lost mid-run: unready until it is back.
      await etcd.kill();
      await stderr.waitFor(/store connection lost/, stderr.seen.length);
      let from = stderr.seen.length;
      expect(await readyz(base)).toBe(503);
      await stderr.waitFor(/Readiness probe: the store does not answer$/, from);
      expect(sample(await scrape(base), "confd_store_reachable")).toBe(0);
      // etcd's watch resumes by itself and says nothing until a change; /readyz asks the store while it is
      // taken to be down, answering from what it knows meanwhile.
      from = stderr.seen.length;
      await etcd.restart();
      expect(await readyz(base)).toBe(503);
      await stderr.waitFor(/Readiness probe: the store answers$/, from);
      expect(await readyz(base)).toBe(200);
      expect((await statusOf(base)).resources.app!.nextAction).toBe("watching");
      expect(sample(await scrape(base), "confd_watch_reconnects_total")).toBe(2);

      expect((await fetch(`${base}/nowhere`)).status).toBe(404);
      expect((await fetch(`${base}/metrics`, { method: "POST" })).status).toBe(405);
    } finally {
      child.kill("SIGTERM");
      expect(await child.exited).toBe(0);
    }
  });

  test("a failing render counts as a render error and shows in /status; /readyz stays 503", async () => {
    await client.put("/bad/v").value("x");
    const dir = join(tmp.path, "bad");
    writeTree(dir, {
      "out/.keep": "",
      "templates/bad.tmpl": '{{getv "/bad/missing"}}\n',
      "conf.d/bad.toml": ["[template]", 'src = "bad.tmpl"', `dest = ${JSON.stringify(join(dir, "out", "bad"))}`, 'keys = ["/bad"]'].join("\n"),
    });
    const port = freePort();
    const base = `http://127.0.0.1:${port}`;
    const child = spawnConfd(["-watch", "-backend", "etcdv3", "-node", etcd.endpoint, "-confdir", dir, "-config-file", join(dir, "none"), "-log-level", "debug", "-metrics-addr", `127.0.0.1:${port}`]);
    const stderr = new Lines(child.stderr);
    try {
      await stderr.waitFor(/Metrics recorded a failed sync of bad$/);
      expect(await readyz(base)).toBe(503);
      const m = await scrape(base);
      expect(sample(m, "confd_render_errors_total", { resource: "bad" })).toBe(1);
      expect(sample(m, "confd_renders_total", { resource: "bad" })).toBe(0);
      expect(sample(m, "confd_syncs_total", { resource: "bad", result: "error" })).toBe(1);
      const status = await statusOf(base);
      expect(status.resources.bad!.lastSync).toBeNull();
      expect(status.resources.bad!.lastError).toContain("/bad/missing");
    } finally {
      child.kill("SIGTERM");
      expect(await child.exited).toBe(0);
    }
  });
});

describe("-metrics-addr in interval mode, file backend", () => {
  test("one run: ready, counted, and /status names the next run", async () => {
    const { dir, dest } = confdir("interval");
    const values = join(dir, "values.yaml");
    writeTree(dir, { "values.yaml": "app:\n  v: \"3\"\n" });
    const port = freePort();
    const base = `http://127.0.0.1:${port}`;
    const child = spawnConfd(["-interval", "3600", "-backend", "file", "-file", values, "-confdir", dir, "-config-file", join(dir, "none"), "-log-level", "debug", "-metrics-addr", `127.0.0.1:${port}`]);
    const stderr = new Lines(child.stderr);
    try {
      await stderr.waitFor(/Metrics recorded a sync of app$/);
      expect(readFileSync(dest, "utf8")).toBe("v=3\n");
      expect(await readyz(base)).toBe(200);
      const m = await scrape(base);
      expect(sample(m, "confd_syncs_total", { resource: "app", result: "changed" })).toBe(1);
      expect(sample(m, "confd_store_reachable")).toBe(1);
      const status = await statusOf(base);
      expect(status.mode).toBe("interval");
      // Set as the run ends, a moment after its sync is counted.
      expect(status.resources.app!.nextAction).toMatch(/^(running|next run at \d{4}-\d\d-\d\dT)/);
    } finally {
      child.kill("SIGTERM");
      expect(await child.exited).toBe(0);
    }
  });
});

describe("bad -metrics-addr", () => {
  const { dir } = confdir("flags");
  const run = (addr: string) => runConfd(["-onetime", "-backend", "env", "-confdir", dir, "-config-file", join(dir, "none"), "-metrics-addr", addr]);

  test("not host:port: one line naming the flag, exit 1", async () => {
    for (const addr of ["9100", "localhost", "127.0.0.1:65536", "127.0.0.1:http"]) {
      const r = await run(addr);
      expect(r.code).toBe(1);
      const fatal = r.stderr.split("\n").filter((l) => l.includes("FATAL"));
      expect(fatal).toHaveLength(1);
      expect(fatal[0]).toContain(`flag metrics-addr: invalid address ${JSON.stringify(addr)}`);
    }
  });

  test("port in use: one line naming the flag, exit 1", async () => {
    const busy = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    try {
      const r = await run(`127.0.0.1:${busy.port}`);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`FATAL flag metrics-addr: cannot listen on 127.0.0.1:${busy.port}: EADDRINUSE`);
    } finally {
      busy.stop(true);
    }
  });

  test("-onetime serves during the run only, and says so", async () => {
    const port = freePort();
    const r = await runConfd(["-onetime", "-backend", "env", "-confdir", dir, "-config-file", join(dir, "none"), "-metrics-addr", `127.0.0.1:${port}`], {
      env: baseEnv({ APP_V: "7" }),
    });
    expect(r.stderr).toContain(`Serving /metrics, /healthz, /readyz and /status on 127.0.0.1:${port} during this run only (-onetime)`);
    expect(r.code).toBe(0);
    await expect(fetch(`http://127.0.0.1:${port}/healthz`)).rejects.toThrow();
  });
});
