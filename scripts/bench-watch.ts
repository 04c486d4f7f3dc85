// Benchmark (not a test): watch mode against real etcd and redis servers (started here, as the tests
// start them), with 1, 10 and 100 resources watching one key. For each: the time from a write to every
// destination file holding the new value (p50/p90/p99 over --writes writes), confd's RSS after the
// first render, its TCP connections to the store, and the CPU seconds it used.
//   bun scripts/bench-watch.ts [--writes 100] [--sizes 1,10,100] [--backends etcd,redis]
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, watch, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { Etcd3 } from "etcd3";
import Redis from "ioredis";
import { startEtcd } from "../test/etcd-server.ts";
import { startRedis } from "../test/redis-server.ts";

const { values: args } = parseArgs({
  options: {
    writes: { type: "string", default: "100" },
    sizes: { type: "string", default: "1,10,100" },
    backends: { type: "string", default: "etcd,redis" },
  },
});
const WRITES = Number(args.writes);
const SIZES = args.sizes.split(",").map(Number);
const CLI = join(import.meta.dir, "..", "src", "cli.ts");
const KEY = "/bench/value";
const CLK_TCK = 100;

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

function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
}

/** Resolves when every file in `dir` named *.conf holds `value`, watching the directory (no polling). */
function allHold(dir: string, files: string[], value: string): Promise<void> {
  return new Promise((resolve) => {
    const pending = new Set(files);
    const check = (file: string) => {
      try {
        if (readFileSync(join(dir, file), "utf8") === value) pending.delete(file);
      } catch {
        // being replaced
      }
      if (pending.size === 0) {
        watcher.close();
        resolve();
      }
    };
    const watcher = watch(dir, (_event, name) => {
      if (name && pending.has(name)) check(name);
    });
    for (const f of [...pending]) check(f);
  });
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

async function run(store: Store, resources: number) {
  const dir = mkdtempSync(join(tmpdir(), "confd-bench-watch-"));
  const out = join(dir, "out");
  mkdirSync(join(dir, "conf.d"), { recursive: true });
  mkdirSync(join(dir, "templates"));
  mkdirSync(out);
  writeFileSync(join(dir, "templates", "v.hbs"), `{{getv "${KEY}"}}`);
  const files: string[] = [];
  for (let i = 0; i < resources; i++) {
    files.push(`r${i}.conf`);
    writeFileSync(join(dir, "conf.d", `r${i}.toml`), `[template]\nsrc = "v.hbs"\ndest = "${join(out, `r${i}.conf`)}"\nkeys = ["${KEY}"]\n`);
  }
  await store.put("initial");
  const child = Bun.spawn([process.execPath, CLI, "-watch", "-confdir", dir, "-config-file", join(dir, "none"), "-log-level", "error", ...store.confdArgs], {
    stdout: "inherit",
    stderr: "inherit",
  });
  await allHold(out, files, "initial");
  const rss = rssMiB(child.pid);
  const connections = connectionsTo(child.pid, store.port);
  const cpuBefore = cpuSeconds(child.pid);

  const latencies: number[] = [];
  for (let i = 0; i < WRITES; i++) {
    const value = `v${i}`;
    const done = allHold(out, files, value);
    const started = performance.now();
    await store.put(value);
    await done;
    latencies.push(performance.now() - started);
  }
  const cpu = cpuSeconds(child.pid) - cpuBefore;
  child.kill("SIGTERM");
  await child.exited;
  rmSync(dir, { recursive: true, force: true });
  latencies.sort((a, b) => a - b);
  return { resources, p50: percentile(latencies, 50), p90: percentile(latencies, 90), p99: percentile(latencies, 99), rss, connections, cpu };
}

const rows: string[] = [];
for (const name of args.backends.split(",")) {
  const store = name === "etcd" ? await etcdStore() : await redisStore();
  try {
    for (const size of SIZES) {
      const r = await run(store, size);
      rows.push(
        `| ${store.name} | ${r.resources} | ${r.p50.toFixed(1)} | ${r.p90.toFixed(1)} | ${r.p99.toFixed(1)} | ${r.rss.toFixed(0)} (target ${60 + 4 * r.resources}) | ${r.connections} | ${r.cpu.toFixed(2)} |`,
      );
      console.error(rows.at(-1));
    }
  } finally {
    await store.close();
  }
}
console.log(`\nwatch mode, ${WRITES} writes per row, from source`);
console.log("| store | resources | p50 ms | p90 ms | p99 ms | RSS MiB after first render | TCP connections to the store | CPU s for the writes |");
console.log("|---|---|---|---|---|---|---|---|");
for (const row of rows) console.log(row);
