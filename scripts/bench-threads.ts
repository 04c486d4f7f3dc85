// Benchmark (not a test): where a watch's CPU goes, thread by thread. Starts a real etcd (as the tests do),
// runs ours with -watch over N resources reading one key, writes the key W times (each write waits until
// every file holds it), and reads utime + stime of every thread from /proc/<pid>/task/*/stat before and
// after: the main thread (named after the executable), the resources' workers ("Worker"), JIT compiler
// threads ("JITWorker") and the rest, as milliseconds of CPU per write.
//   bun scripts/bench-threads.ts [--binary dist/confd-0.1.0-linux-x64] [--resources 1,10] [--writes 200]
import { readdirSync, readFileSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { Etcd3 } from "etcd3";
import { KEY, oneKeyConfdir } from "./bench-confdir.ts";
import { startEtcd } from "../test/etcd-server.ts";
import { Lines } from "../test/helpers.ts";

const { values: args } = parseArgs({
  options: { binary: { type: "string" }, resources: { type: "string", default: "1,10" }, writes: { type: "string", default: "200" } },
});
const WRITES = Number(args.writes);
const OURS = args.binary ? [resolve(args.binary)] : [process.execPath, join(import.meta.dir, "..", "src", "cli.ts")];
const CLK_TCK = Number(Bun.spawnSync(["getconf", "CLK_TCK"]).stdout.toString().trim()) || 100;

/** CPU seconds by thread name, summed over the threads of that name. */
function threadCpu(pid: number): Map<string, number> {
  const out = new Map<string, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const name = readFileSync(`/proc/${pid}/task/${tid}/comm`, "utf8").trim();
      const fields = readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8").split(") ")[1]!.split(" ");
      out.set(name, (out.get(name) ?? 0) + (Number(fields[11]) + Number(fields[12])) / CLK_TCK);
    } catch {
      // the thread ended meanwhile
    }
  }
  return out;
}

const server = await startEtcd();
const etcd = new Etcd3({ hosts: server.endpoint });
try {
  console.log(`CPU ms per write by thread, ${WRITES} writes; ours: ${args.binary ?? "from source"}`);
  console.log("| resources | thread | ms per write |\n|---|---|---|");
  for (const resources of args.resources!.split(",").map(Number)) {
    const { dir, configFile } = oneKeyConfdir(resources, "bench-threads");
    try {
      await etcd.put(KEY).value("initial");
      const child = Bun.spawn([...OURS, "-watch", "-confdir", dir, "-config-file", configFile, "-log-level", "info", "-backend", "etcdv3", "-node", server.endpoint], {
        stdout: "ignore",
        stderr: "pipe",
      });
      const log = new Lines(child.stderr);
      let updated = resources;
      await log.waitForCount(/has been updated/, updated);
      const before = threadCpu(child.pid);
      for (let i = 0; i < WRITES; i++) {
        await etcd.put(KEY).value(`v${i}`);
        updated += resources;
        await log.waitForCount(/has been updated/, updated);
      }
      const after = threadCpu(child.pid);
      child.kill("SIGTERM");
      await child.exited;
      let total = 0;
      for (const [name, cpu] of [...after].sort((a, b) => b[1] - a[1])) {
        const ms = ((cpu - (before.get(name) ?? 0)) * 1000) / WRITES;
        total += ms;
        if (ms >= 0.01) console.log(`| ${resources} | ${name} | ${ms.toFixed(2)} |`);
      }
      console.log(`| ${resources} | all threads | ${total.toFixed(2)} |`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
} finally {
  etcd.close();
  await server.stop();
}
