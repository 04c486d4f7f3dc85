// Benchmark (not a test): what one resource's worker thread costs, in CPU time and RSS, so that two builds
// can be compared on a machine shared with others (CPU time and RSS, not wall time). Each confd given runs
// in watch mode with the file backend and N resources of one engine (a small template: getv, gets over
// three keys), then the data file changes --changes times, each change waited for in every destination.
// Per worker thread (threads named "Worker" in /proc/<pid>/task, CPU from their schedstat, in ns):
//   start     CPU of a worker thread from its start through its first sync (median over the N workers)
//   RSS       anonymous RSS per worker, after the first sync and after the changes: the slope between a
//             run with 1 resource and one with N
//   sync      CPU per sync of a worker thread (median over the workers); "all" counts every thread of
//             the process (slope between 1 and N resources), "jit" the JIT compiler threads
// --same makes each change one that no destination shows: every sync finds its file in sync.
// Runs alternate between the commands given, so that they share the machine's load; each figure is the
// median over --runs, with the spread.
//   bun scripts/bench-workers.ts [--runs 6] [--resources 11] [--changes 100] [--engines go,handlebars] [--same]
//       [name=]<binary or path to src/cli.ts> ...
// Linux only (/proc).
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";

const { values: args, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    runs: { type: "string", default: "6" },
    resources: { type: "string", default: "11" },
    changes: { type: "string", default: "100" },
    engines: { type: "string", default: "go,handlebars" },
    same: { type: "boolean", default: false },
  },
});
const RUNS = Number(args.runs);
const RESOURCES = Number(args.resources);
const CHANGES = Number(args.changes);
/** Between changes in --same mode, where no destination shows when a sync is done. */
const SAME_PAUSE_MS = 40;
const TEMPLATES = {
  go: { file: "t.tmpl", text: '# {{getv "/app/name"}}\n{{range gets "/app/servers/*"}}server {{base .Key}} {{.Value}};\n{{end}}value = {{getv "/app/value"}}\n' },
  handlebars: { file: "t.hbs", text: '# {{getv "/app/name"}}\n{{#each (gets "/app/servers/*")}}server {{base Key}} {{Value}};\n{{/each}}value = {{getv "/app/value"}}\n' },
};
type Engine = keyof typeof TEMPLATES;

const commands = positionals.map((p, i) => {
  const [name, path] = p.includes("=") ? (p.split(/=(.*)/s) as [string, string]) : [`#${i + 1}`, p];
  return { name, argv: path.endsWith(".ts") ? [process.execPath, path] : [path] };
});
if (commands.length === 0) throw new Error("name at least one confd: a compiled binary or a path to src/cli.ts");

interface Sample {
  startMs: number;
  rssStartMiB: number;
  rssEndMiB: number;
  syncMs: number;
  allMsPerChange: number;
  jitMsPerChange: number;
}

/** CPU time in ms by thread: the worker threads by id, and totals for the JIT threads and the process. */
function threads(pid: number) {
  const workers = new Map<string, number>();
  let jit = 0;
  let all = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    let name: string;
    let ms: number;
    try {
      name = readFileSync(`/proc/${pid}/task/${tid}/comm`, "utf8").trim();
      ms = Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "utf8").split(" ")[0]) / 1e6;
    } catch {
      continue; // the thread ended meanwhile
    }
    all += ms;
    if (name === "Worker") workers.set(tid, ms);
    if (name === "JITWorker") jit += ms;
  }
  return { workers, jit, all };
}

function rssAnonMiB(pid: number): number {
  return Number(/RssAnon:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]) / 1024;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

async function measure(argv: string[], engine: Engine, resources: number): Promise<Sample> {
  const dir = mkdtempSync(join(tmpdir(), "confd-bench-workers-"));
  try {
    for (const sub of ["conf.d", "templates", "out"]) mkdirSync(join(dir, sub));
    const template = TEMPLATES[engine];
    writeFileSync(join(dir, "templates", template.file), template.text);
    const dests = Array.from({ length: resources }, (_, i) => join(dir, "out", `r${i}.conf`));
    dests.forEach((dest, i) => writeFileSync(join(dir, "conf.d", `r${i}.toml`), `[template]\nsrc = "${template.file}"\ndest = "${dest}"\nkeys = ["/app"]\n`));
    const data = join(dir, "data.yaml");
    // Replaced by rename, so that confd never reads half a file.
    const writeData = (value: number, unused: number) => {
      writeFileSync(`${data}.new`, `app:\n  name: bench\n  value: ${value}\n  unused: ${unused}\n  servers:\n    a: 10.0.0.1\n    b: 10.0.0.2\n    c: 10.0.0.3\n`);
      renameSync(`${data}.new`, data);
    };
    const allHold = async (value: number) => {
      const deadline = Date.now() + 60_000;
      const holds = (dest: string) => {
        try {
          return readFileSync(dest, "utf8").includes(`value = ${value}\n`);
        } catch {
          return false; // not written yet
        }
      };
      while (!dests.every(holds)) {
        if (Date.now() > deadline) throw new Error(`destinations did not get value ${value} within 60 s`);
        await Bun.sleep(2);
      }
    };
    writeData(0, 0);
    const child = Bun.spawn([...argv, "-watch", "-backend", "file", "-file", data, "-confdir", dir, "-config-file", join(dir, "none.toml"), "-log-level", "error"], {
      stdout: "inherit",
      stderr: "inherit",
    });
    try {
      await allHold(0);
      await Bun.sleep(300); // the workers go idle
      const before = threads(child.pid);
      const rssStartMiB = rssAnonMiB(child.pid);
      if (before.workers.size !== resources) throw new Error(`${before.workers.size} worker threads for ${resources} resources`);
      for (let change = 1; change <= CHANGES; change++) {
        if (args.same) {
          writeData(0, change);
          await Bun.sleep(SAME_PAUSE_MS);
        } else {
          writeData(change, 0);
          await allHold(change);
        }
      }
      await Bun.sleep(300);
      const after = threads(child.pid);
      return {
        startMs: median([...before.workers.values()]),
        rssStartMiB,
        rssEndMiB: rssAnonMiB(child.pid),
        syncMs: median([...after.workers].map(([tid, ms]) => (ms - before.workers.get(tid)!) / CHANGES)),
        allMsPerChange: (after.all - before.all) / CHANGES,
        jitMsPerChange: (after.jit - before.jit) / CHANGES,
      };
    } finally {
      child.kill("SIGTERM");
      await child.exited;
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const columns = ["start ms", "RSS MiB", `RSS after ${CHANGES}`, "sync ms", "sync, all threads", "sync, JIT threads"];
const results = new Map<string, number[][]>();
for (let run = 0; run < RUNS; run++) {
  for (const engine of args.engines.split(",") as Engine[]) {
    for (const command of commands) {
      const one = await measure(command.argv, engine, 1);
      const many = await measure(command.argv, engine, RESOURCES);
      const slope = (a: number, b: number) => (b - a) / (RESOURCES - 1);
      const row = [
        many.startMs,
        slope(one.rssStartMiB, many.rssStartMiB),
        slope(one.rssEndMiB, many.rssEndMiB),
        many.syncMs,
        slope(one.allMsPerChange, many.allMsPerChange),
        many.jitMsPerChange / RESOURCES,
      ];
      const key = `${command.name} ${engine}`;
      const samples = results.get(key) ?? columns.map((): number[] => []);
      row.forEach((value, i) => samples[i]!.push(value));
      results.set(key, samples);
    }
  }
}
console.log(`per worker; ${RESOURCES} resources, ${CHANGES} ${args.same ? "changes no destination shows" : "changes"}, median (spread) of ${RUNS} runs`);
console.log(`| | ${columns.join(" | ")} |\n|---|${columns.map(() => "---").join("|")}|`);
for (const [key, samples] of results) {
  const cell = (xs: number[]) => `${median(xs).toFixed(2)} (${Math.min(...xs).toFixed(2)}–${Math.max(...xs).toFixed(2)})`;
  console.log(`| ${key} | ${samples.map(cell).join(" | ")} |`);
}
