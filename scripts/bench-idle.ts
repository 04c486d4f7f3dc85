// Benchmark (not a test): what -worker-idle buys a watch with many resources that rarely change, on a real
// etcd (started as the tests start it). Ours with `-worker-idle` renders every resource, waits until every
// worker has ended for idleness (the data plane's debug line), and reports the RSS then beside the RSS after
// the first render; then times writes that find every worker ended (each waits for them to end again) and
// writes right after another (workers running): the first change after idle costs the workers' starts.
//   bun scripts/bench-idle.ts [--binary dist/confd-0.1.0-linux-x64] [--resources 100] [--idle 1s] [--writes 10]
import { readFileSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { Etcd3 } from "etcd3";
import { KEY, oneKeyConfdir } from "./bench-confdir.ts";
import { startEtcd } from "../test/etcd-server.ts";
import { Lines } from "../test/helpers.ts";

const { values: args } = parseArgs({
  options: {
    binary: { type: "string" },
    resources: { type: "string", default: "100" },
    idle: { type: "string", default: "1s" },
    writes: { type: "string", default: "10" },
  },
});
const RESOURCES = Number(args.resources);
const WRITES = Number(args.writes);
const OURS = args.binary ? [resolve(args.binary)] : [process.execPath, join(import.meta.dir, "..", "src", "cli.ts")];

const rssMiB = (pid: number) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0) / 1024;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const server = await startEtcd();
const etcd = new Etcd3({ hosts: server.endpoint });
const { dir, configFile } = oneKeyConfdir(RESOURCES, "bench-idle");
try {
  await etcd.put(KEY).value("initial");
  const child = Bun.spawn(
    [...OURS, "-watch", "-confdir", dir, "-config-file", configFile, "-log-level", "debug", "-worker-idle", args.idle!, "-backend", "etcdv3", "-node", server.endpoint],
    { stdout: "ignore", stderr: "pipe" },
  );
  const log = new Lines(child.stderr);
  // Every sync logs "has been updated" once the file is written; every worker ended for idleness, "Worker ended".
  let updated = 0;
  let ended = 0;
  const countUpTo = (pattern: RegExp, total: number) => log.waitForCount(pattern, total);
  updated += RESOURCES;
  await countUpTo(/has been updated/, updated);
  const rssRendered = rssMiB(child.pid);
  ended += RESOURCES;
  await countUpTo(/Worker ended: nothing to sync/, ended);
  const rssIdle = rssMiB(child.pid);

  const afterIdle: number[] = [];
  const warm: number[] = [];
  for (let i = 0; i < WRITES; i++) {
    // Every worker has ended: this write starts them all again.
    let started = performance.now();
    await etcd.put(KEY).value(`idle-${i}`);
    updated += RESOURCES;
    await countUpTo(/has been updated/, updated);
    afterIdle.push(performance.now() - started);
    // Right after: the workers are still there.
    started = performance.now();
    await etcd.put(KEY).value(`warm-${i}`);
    updated += RESOURCES;
    await countUpTo(/has been updated/, updated);
    warm.push(performance.now() - started);
    ended += RESOURCES;
    await countUpTo(/Worker ended: nothing to sync/, ended);
  }
  child.kill("SIGTERM");
  await child.exited;

  console.log(`-worker-idle ${args.idle}, ${RESOURCES} resources on etcd, ${WRITES} writes of each kind; ours: ${args.binary ?? "from source"}`);
  console.log("| figure | value |\n|---|---|");
  console.log(`| RSS after the first render | ${rssRendered.toFixed(0)} MiB |`);
  console.log(`| RSS once every worker has ended | ${rssIdle.toFixed(0)} MiB |`);
  console.log(`| write → all files, first change after idle (workers start), median (min–max) | ${median(afterIdle).toFixed(1)} ms (${Math.min(...afterIdle).toFixed(1)}–${Math.max(...afterIdle).toFixed(1)}) |`);
  console.log(`| write → all files, workers running, median (min–max) | ${median(warm).toFixed(1)} ms (${Math.min(...warm).toFixed(1)}–${Math.max(...warm).toFixed(1)}) |`);
} finally {
  etcd.close();
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
}
