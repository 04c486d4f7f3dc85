// Benchmark (not a test) for the watch-mode targets of issue 10, ours beside confd master in one run.
// Real etcd and redis servers are started here, as the tests start them (test/etcd-server.ts,
// test/redis-server.ts); N resources (1, 10, 100) render one key with a Go template both accept. For
// each store, size and implementation: the time from a write to every destination file holding the new
// value (p50/p90/p99 over --writes writes), the CPU time used for those writes, the RSS after the first
// render and the TCP connections to the store. Each row is repeated (--repeats) and reported as the
// median with its min-max spread; then a second table judges issue 10's targets.
//   bun scripts/bench-watch.ts --confd /tmp/confd-go                                    ours from source
//   bun scripts/bench-watch.ts --confd /tmp/confd-go --binary dist/confd-0.1.0-linux-x64 ours compiled
//   options: --writes 100  --repeats 3  --sizes 1,10,100  --backends etcd,redis
//            --timeout-ms 2000 (a write not seen in every file by then is counted lost)
//            --give-up 3 (lost writes after which a row stops: confd on redis loses most writes)
// Without --confd only ours runs, and only the absolute targets (RSS) are judged.
//
// How it measures, and why:
// - CPU time is utime + stime of the process from /proc/<pid>/stat (all threads: workers, and Go's
//   threads) read before the first write and after the last: it hardly moves with the rest of the
//   machine's load, unlike latencies, so prefer it when judging on a shared machine. Its unit is a clock
//   tick (10 ms), which is why it is taken over 100 writes.
// - The latency is measured from before the write request to the moment the last destination holds the
//   new value, seen through a watch on the output directory (no polling).
// - The store runs on the same 2 cores; its CPU is not counted for either implementation.
// - confd on redis: confd's redis WatchPrefix hands each keyspace notification to one of its resources'
//   watches only (they share one channel), so with 2 or more resources most writes never reach every file.
//   Such writes are counted as lost (with how many files did get the value), the row stops after
//   --give-up of them, and the targets for redis at those sizes are judged against confd on etcd.
import { readFileSync, readdirSync, readlinkSync, rmSync, watch } from "node:fs";
import { basename, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { Etcd3 } from "etcd3";
import Redis from "ioredis";
import { KEY, oneKeyConfdir } from "./bench-confdir.ts";
import { startEtcd } from "../test/etcd-server.ts";
import { startRedis } from "../test/redis-server.ts";

const { values: args } = parseArgs({
  options: {
    confd: { type: "string" },
    binary: { type: "string" },
    writes: { type: "string", default: "100" },
    repeats: { type: "string", default: "3" },
    sizes: { type: "string", default: "1,10,100" },
    backends: { type: "string", default: "etcd,redis" },
    "timeout-ms": { type: "string", default: "2000" },
    "give-up": { type: "string", default: "3" },
    "start-timeout-ms": { type: "string", default: "30000" },
  },
});
const WRITES = Number(args.writes);
const REPEATS = Number(args.repeats);
const SIZES = args.sizes.split(",").map(Number);
const TIMEOUT_MS = Number(args["timeout-ms"]);
const GIVE_UP = Number(args["give-up"]);
const OURS: string[] = args.binary ? [resolve(args.binary)] : [process.execPath, join(import.meta.dir, "..", "src", "cli.ts")];
const CONFD: string | undefined = args.confd ? resolve(args.confd) : undefined;
const CLK_TCK = Number(Bun.spawnSync(["getconf", "CLK_TCK"]).stdout.toString().trim()) || 100;
/**
 * How long to wait for the first render of every file. 100 resources from source on a loaded machine take
 * seconds; confd on redis with several resources may never render some files (see above), so not forever.
 */
const START_TIMEOUT_MS = Number(args["start-timeout-ms"]);

type Who = "ours" | "confd";

interface Store {
  name: string;
  port: number;
  confdArgs: string[];
  put(value: string): Promise<void>;
  close(): Promise<void>;
}

async function etcdStore(): Promise<Store> {
  const server = await startEtcd();
  const client = new Etcd3({ hosts: server.endpoint });
  return {
    name: "etcd",
    port: Number(new URL(server.endpoint).port),
    confdArgs: ["-backend", "etcdv3", "-node", server.endpoint],
    put: async (v) => void (await client.put(KEY).value(v)),
    close: async () => {
      client.close();
      await server.stop();
    },
  };
}

async function redisStore(): Promise<Store> {
  // Keyspace notifications on: confd's redis watch needs them (ours falls back to polling without).
  const server = await startRedis({ notifications: true });
  const client = new Redis({ host: "127.0.0.1", port: server.port, lazyConnect: true });
  await client.connect();
  return {
    name: "redis",
    port: server.port,
    confdArgs: ["-backend", "redis", "-node", `127.0.0.1:${server.port}`],
    put: async (v) => void (await client.set(KEY, v)),
    close: async () => {
      client.disconnect();
      await server.stop();
    },
  };
}

/** ESTABLISHED TCP connections from process `pid` to `port` on loopback, from /proc. */
function connectionsTo(pid: number, port: number): number {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.add(m[1]!);
    } catch {
      // fd closed meanwhile
    }
  }
  let count = 0;
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    for (const line of readFileSync(table, "utf8").split("\n").slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10) continue;
      const remotePort = parseInt(f[2]!.split(":")[1]!, 16);
      if (f[3] === "01" && remotePort === port && inodes.has(f[9]!)) count++;
    }
  }
  return count;
}

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return Number(m?.[1] ?? 0) / 1024;
}

/** utime + stime of the whole process (every thread), in seconds. */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
}

function loadavg(): string {
  return readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(", ");
}

/**
 * Resolves with how many of `files` in `dir` hold `value`: all of them as soon as they do (watching the
 * directory, no polling), or fewer once `timeoutMs` has passed.
 */
function allHold(dir: string, files: string[], value: string, timeoutMs: number): Promise<number> {
  return new Promise((resolve) => {
    const pending = new Set(files);
    let timer: ReturnType<typeof setTimeout> | undefined;
    let finished = false;
    const finish = () => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      watcher.close();
      resolve(files.length - pending.size);
    };
    const check = (file: string) => {
      try {
        if (readFileSync(join(dir, file), "utf8") === value) pending.delete(file);
      } catch {
        // being replaced
      }
    };
    const watcher = watch(dir, (_event, name) => {
      if (name && pending.has(name)) {
        check(name);
        if (pending.size === 0) finish();
      }
    });
    for (const f of [...pending]) check(f);
    if (pending.size === 0) return finish();
    timer = setTimeout(() => {
      // A last look: an event may be queued behind the timer.
      for (const f of [...pending]) check(f);
      finish();
    }, timeoutMs);
  });
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

interface Run {
  p50: number;
  p90: number;
  p99: number;
  /** CPU seconds per 100 writes (scaled when the row stopped early). */
  cpu100: number;
  rss: number;
  connections: number;
  writes: number;
  /** Per lost write: how many files got the value in time. */
  lost: number[];
  /** How many files the first render wrote (all of them, unless something went wrong). */
  initial: number;
  /** What the process wrote to stderr (at -log-level error: its errors). */
  errors: string[];
  /** Set when the process ended before it was stopped. */
  died?: string;
}

function readOr(file: string, otherwise: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch {
    return otherwise;
  }
}

async function run(store: Store, resources: number, who: Who): Promise<Run> {
  const { dir, out, files, configFile } = oneKeyConfdir(resources, "bench-watch");
  await store.put("initial");
  const argv = [...(who === "ours" ? OURS : [CONFD!]), "-watch", "-confdir", dir, "-config-file", configFile, "-log-level", "error", ...store.confdArgs];
  const child = Bun.spawn(argv, { stdout: "inherit", stderr: "pipe" });
  // Drained all the time (a full pipe would block the process), kept for the report.
  let stderr = "";
  const drained = (async () => {
    for await (const chunk of child.stderr) stderr += new TextDecoder().decode(chunk);
  })();
  try {
    // A file missing after the first render is reported (as writes lost) rather than fatal: confd on redis does that.
    // The process may die on its own (confd on redis with several resources sometimes panics): then the
    // wait ends at once with the files as they are, and the row says how it ended.
    const exited = child.exited.then(() => true);
    const holding = (value: string) => files.filter((f) => readOr(join(out, f), "") === value).length;
    const waitFor = (value: string, timeoutMs: number) => Promise.race([allHold(out, files, value, timeoutMs), exited.then(() => holding(value))]);
    const proc = <T,>(read: () => T, otherwise: T): T => {
      try {
        return read();
      } catch {
        return otherwise; // the process is gone
      }
    };

    const initial = await waitFor("initial", START_TIMEOUT_MS);
    const rss = proc(() => rssMiB(child.pid), NaN);
    const connections = proc(() => connectionsTo(child.pid, store.port), NaN);
    const cpuBefore = proc(() => cpuSeconds(child.pid), NaN);

    const latencies: number[] = [];
    const lost: number[] = [];
    let writes = 0;
    for (let i = 0; i < WRITES && lost.length < GIVE_UP && child.exitCode === null && child.signalCode === null; i++) {
      const value = `${who}-${resources}-v${i}`;
      const started = performance.now();
      const done = waitFor(value, TIMEOUT_MS);
      await store.put(value);
      const got = await done;
      writes++;
      if (got === files.length) latencies.push(performance.now() - started);
      else lost.push(got);
    }
    const cpu = proc(() => cpuSeconds(child.pid), NaN) - cpuBefore;
    latencies.sort((a, b) => a - b);
    const p = (q: number) => (latencies.length ? percentile(latencies, q) : NaN);
    const died = child.exitCode !== null || child.signalCode !== null ? `exited by itself (${child.signalCode ?? `code ${child.exitCode}`})` : undefined;
    child.kill("SIGTERM");
    await child.exited;
    await drained;
    const errors = stderr.split("\n").filter(Boolean);
    return { p50: p(50), p90: p(90), p99: p(99), cpu100: writes ? (cpu * 100) / writes : NaN, rss, connections, writes, lost, initial, errors, died };
  } finally {
    child.kill("SIGTERM");
    await child.exited;
    rmSync(dir, { recursive: true, force: true });
  }
}

function median(xs: number[]): number {
  const s = xs.filter((x) => !Number.isNaN(x)).sort((x, y) => x - y);
  if (s.length === 0) return NaN;
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

/** "median (min–max)" over the repeats. */
function spread(xs: number[], digits: number): string {
  const ok = xs.filter((x) => !Number.isNaN(x));
  if (ok.length === 0) return "—";
  const f = (x: number) => x.toFixed(digits);
  return ok.length === 1 ? f(ok[0]!) : `${f(median(ok))} (${f(Math.min(...ok))}–${f(Math.max(...ok))})`;
}

// --- measuring: for each store, size and repeat, ours and confd one after the other (alternating who goes first) ---

const whos: Who[] = CONFD ? ["ours", "confd"] : ["ours"];
const results = new Map<string, Run[]>();
const keyOf = (store: string, size: number, who: Who) => `${store}/${size}/${who}`;
const loadBefore = loadavg();
for (const name of args.backends.split(",")) {
  const store = name === "etcd" ? await etcdStore() : name === "redis" ? await redisStore() : undefined;
  if (!store) throw new Error(`unknown backend "${name}" (etcd, redis)`);
  try {
    for (const size of SIZES) {
      for (let rep = 0; rep < REPEATS; rep++) {
        for (const who of rep % 2 === 0 ? whos : [...whos].reverse()) {
          const r = await run(store, size, who);
          const list = results.get(keyOf(store.name, size, who)) ?? [];
          list.push(r);
          results.set(keyOf(store.name, size, who), list);
          console.error(
            `${store.name} ${size} ${who} #${rep + 1}: p50 ${r.p50.toFixed(1)} p99 ${r.p99.toFixed(1)} ms, ${r.cpu100.toFixed(2)} s CPU/100 writes, ${r.rss.toFixed(0)} MiB, ${r.connections} conn` +
              (r.initial < size ? `, first render wrote ${r.initial} of ${size} files` : "") +
              (r.lost.length ? `, ${r.lost.length} of ${r.writes} writes lost (files updated: ${r.lost.join(", ")} of ${size})` : "") +
              (r.errors.length ? `, ${r.errors.length} lines on stderr` : "") +
              (r.died ? `, ${r.died}` : "") +
              `; load ${loadavg()}`,
          );
        }
      }
    }
  } finally {
    await store.close();
  }
}
const loadAfter = loadavg();

// --- the measurements table ---

console.log(`\nwatch mode; ours: ${args.binary ? basename(OURS[0]!) : "from source (bun src/cli.ts)"}; confd: ${CONFD ?? "not run"}; ${WRITES} writes per row, ${REPEATS} repeats (median (min–max) over the repeats)`);
console.log(`load average (1, 5, 15 min) before: ${loadBefore}; after: ${loadAfter}`);
console.log("| store | resources | who | p50 ms | p99 ms | CPU s per 100 writes | RSS MiB after first render | connections | writes lost |");
console.log("|---|---|---|---|---|---|---|---|---|");
for (const name of args.backends.split(",")) {
  for (const size of SIZES) {
    for (const who of whos) {
      const rs = results.get(keyOf(name, size, who)) ?? [];
      const lost = rs.reduce((n, r) => n + r.lost.length, 0);
      const writes = rs.reduce((n, r) => n + r.writes, 0);
      const partial = rs.filter((r) => r.initial < size).map((r) => r.initial);
      const lostText =
        (lost ? `${lost} of ${writes} (files updated per lost write: ${[...new Set(rs.flatMap((r) => r.lost))].sort((a, b) => a - b).join(", ")} of ${size})` : "0") +
        (partial.length ? `; first render wrote only ${partial.join(", ")} of ${size} files in ${partial.length} of ${rs.length} runs` : "") +
        (rs.some((r) => r.died) ? `; ${rs.filter((r) => r.died).length} of ${rs.length} runs ${[...new Set(rs.flatMap((r) => (r.died ? [r.died] : [])))].join(", ")}` : "");
      console.log(
        `| ${name} | ${size} | ${who} | ${spread(rs.map((r) => r.p50), 1)} | ${spread(rs.map((r) => r.p99), 1)} | ${spread(rs.map((r) => r.cpu100), 2)} | ${spread(rs.map((r) => r.rss), 0)} | ${spread(rs.map((r) => r.connections), 0)} | ${lostText} |`,
      );
    }
  }
}

// What each wrote on stderr at -log-level error, by distinct message (timestamps and pids stripped).
for (const [key, rs] of results) {
  const lines = rs.flatMap((r) => r.errors).map((l) => l.replace(/^\S+ \S+ \S+\[\d+\]: /, "").replace(/\d+\.\d+\.\d+\.\d+:\d+/g, "ADDR"));
  if (lines.length === 0) continue;
  const counts = new Map<string, number>();
  for (const l of lines) counts.set(l, (counts.get(l) ?? 0) + 1);
  const top = [...counts].filter(([l]) => !/^\s|^goroutine |^\[signal |^created by |^github\.com\//.test(l)).sort((a, b) => b[1] - a[1]).slice(0, 4);
  // A Go panic's stack trace is many lines: counted once, by its first line.
  const panics = lines.filter((l) => l.startsWith("panic:")).length;
  console.log(`- ${key}: ${lines.length} lines on stderr${panics ? `, ${panics} Go panic(s)` : ""}, most frequent: ${top.map(([l, n]) => `${n}× "${l.slice(0, 160)}"`).join("; ")}`);
}

// --- the targets table ---

const med = (store: string, size: number, who: Who, f: (r: Run) => number) => median((results.get(keyOf(store, size, who)) ?? []).map(f));
const lostAny = (store: string, size: number, who: Who) => (results.get(keyOf(store, size, who)) ?? []).some((r) => r.lost.length > 0 || r.initial < size || r.died);
const verdict = (ok: boolean) => (ok ? "met" : "**missed**");
const rows: string[] = [];
for (const name of args.backends.split(",")) {
  for (const size of SIZES) {
    // confd's own figure on this store, or confd on etcd when confd lost writes here (its figures then describe a confd that skips work).
    let ref = name;
    let refNote = "";
    if (CONFD && lostAny(name, size, "confd")) {
      ref = "etcd";
      refNote = ` (vs confd on etcd: confd on ${name} lost writes)`;
    }
    const ratioRow = (metric: string, f: (r: Run) => number, limit: number, digits: number) => {
      const o = med(name, size, "ours", f);
      const c = CONFD ? med(ref, size, "confd", f) : NaN;
      const ratio = o / c;
      rows.push(`| ${name}, ${size} resource${size === 1 ? "" : "s"}: ${metric}${refNote} | ${o.toFixed(digits)} | ${Number.isNaN(c) ? "—" : c.toFixed(digits)} | ${Number.isNaN(ratio) ? "—" : `${ratio.toFixed(2)}×`} | ≤ ${limit.toFixed(1)}× confd | ${Number.isNaN(ratio) ? "" : verdict(ratio <= limit)} |`);
    };
    if (size >= 10) ratioRow("CPU s per 100 writes", (r) => r.cpu100, 1.0, 2);
    ratioRow("write→all files p99 ms", (r) => r.p99, size === 1 ? 1.2 : 1.0, 1);
  }
}
// RSS after the first render, on etcd: a fixed part (1 resource) and a part per further resource.
if (args.backends.split(",").includes("etcd")) {
  const rss = (size: number, who: Who) => med("etcd", size, who, (r) => r.rss);
  const c = (size: number) => (CONFD ? `${rss(size, "confd").toFixed(0)}` : "—");
  if (SIZES.includes(1)) {
    rows.push(`| etcd, RSS after first render, 1 resource, MiB | ${rss(1, "ours").toFixed(0)} | ${c(1)} | | ≤ 55 MiB | ${verdict(rss(1, "ours") <= 55)} |`);
    for (const size of SIZES.filter((s) => s > 1)) {
      const per = (who: Who) => (rss(size, who) - rss(1, who)) / (size - 1);
      rows.push(`| etcd, RSS per further resource (${size} vs 1), MiB | ${per("ours").toFixed(2)} | ${CONFD ? per("confd").toFixed(2) : "—"} | | ≤ 2.2 MiB | ${verdict(per("ours") <= 2.2)} |`);
    }
  }
  if (SIZES.includes(100)) rows.push(`| etcd, RSS after first render, 100 resources, MiB | ${rss(100, "ours").toFixed(0)} | ${c(100)} | | ≤ 280 MiB | ${verdict(rss(100, "ours") <= 280)} |`);
}
console.log(`\nissue 10's watch targets (medians over the repeats)`);
console.log("| target | ours | confd | ours/confd | target | met? |\n|---|---|---|---|---|---|");
for (const row of rows) console.log(row);
