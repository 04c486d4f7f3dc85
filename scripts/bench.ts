// Benchmark (not a test) for the `-onetime` targets of issue 10, ours beside confd master in one run.
// Cases (--cases, default all four):
//   200, 1000   N resources, each with its own prefix of 50 keys, all keys in one YAML file, the file
//               backend, one Go template (.tmpl) rendering the resource's 50 keys; runs alternate between a
//               fresh destination tree (every file written) and an unchanged one (every file compared).
//   fixture     confd's integration fixture as it is (test/fixtures/confd-integration: 5 resources, its Go
//               templates, dests moved to a temp dir), the env backend.
//   version     `--version`.
// Prints one table: wall time, CPU time (user + system) and peak RSS of ours and of confd, the ratio
// ours/confd, the target and whether it is met. Also checks, once per case, that ours and confd wrote
// the same files (bytes and mode).
//   bun scripts/bench.ts --confd /tmp/confd-go                                    ours from source
//   bun scripts/bench.ts --confd /tmp/confd-go --binary dist/confd-0.1.0-linux-x64 ours compiled
//   options: --cases 200,1000,fixture,version  --runs 5 (200)  --big-runs 3 (1000)  --startup-runs 20 (fixture, version)
//            --sizes (also list every binary beside --binary with its xz -6 size; ~45 s of xz each)
// Without --confd only ours runs, and only the absolute targets (peak RSS) are judged.
//
// How it measures, and why:
// - Peak RSS comes from `/usr/bin/time -f %M`: /usr/bin/time forks before it execs the command, whereas a
//   child of Bun.spawn starts with a maximum RSS that already counts this process's (~25-40 MiB), so the
//   child's own rusage overstates small processes such as confd (~40 MiB).
// - CPU time is the rusage of the spawned process. Linux reports a waited-for process's usage including
//   its own waited-for children, so through /usr/bin/time it includes the command (plus ~1 ms of time's
//   own). CPU time hardly moves with the rest of the machine's load; wall time on a shared machine does,
//   so /proc/loadavg is printed with the table, and medians come with their min-max spread.
// - The long cases (200, 1000) are measured through /usr/bin/time in every run (its ~1 ms is nothing
//   beside seconds). The short ones (fixture, version: a few ms for confd) are timed on direct spawns
//   and their RSS taken from separate runs under /usr/bin/time, so the wrapper does not skew the ratio.
// - Ours and confd alternate run by run, and which one goes first alternates too, so a burst of load from
//   elsewhere lands on both.
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join, resolve } from "node:path";
import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: {
    confd: { type: "string" },
    binary: { type: "string" },
    cases: { type: "string", default: "200,1000,fixture,version" },
    keys: { type: "string", default: "50" },
    runs: { type: "string", default: "5" },
    "big-runs": { type: "string", default: "3" },
    "startup-runs": { type: "string", default: "20" },
    sizes: { type: "boolean", default: false },
  },
});
const ROOT = join(import.meta.dir, "..");
const TIME = "/usr/bin/time";
const OURS: string[] = values.binary ? [resolve(values.binary)] : [process.execPath, join(ROOT, "src", "cli.ts")];
const CONFD: string | undefined = values.confd ? resolve(values.confd) : undefined;
const KEYS = Number(values.keys);
const RUNS = Number(values.runs);
/** Runs of a case of 1000 resources or more: one of each takes 1-3 minutes here (confd reads the 50,000-key file once per resource). */
const BIG_RUNS = Number(values["big-runs"]);
const STARTUP_RUNS = Number(values["startup-runs"]);
const MiB = 2 ** 20;

/** Issue 10's targets. `ratio`: ours/confd at most this (on the median wall time); `rss`: our peak RSS at most this many MiB. */
interface Target {
  ratio?: number;
  rss?: number;
}
const TARGETS: Record<string, Target> = {
  "200": { ratio: 0.7, rss: 150 },
  "1000": { ratio: 1.0, rss: 200 },
  fixture: { ratio: 1.5, rss: 50 },
  version: { ratio: 1.0 },
};

interface Sample {
  wallMs: number;
  cpuMs: number;
}
type Who = "ours" | "confd";
interface Measured {
  wall: number[];
  cpu: number[];
  rss: number[];
}

if (!(await Bun.file(TIME).exists())) throw new Error(`${TIME} is needed for peak RSS (Debian package "time")`);

const loadBefore = loadavg();
const rows: string[] = [];
const notes: string[] = [];
for (const name of values.cases.split(",").map((s) => s.trim()).filter(Boolean)) {
  const who: Who[] = CONFD ? ["ours", "confd"] : ["ours"];
  const result = /^\d+$/.test(name) ? await benchResources(Number(name), who) : name === "fixture" ? await benchFixture(who) : name === "version" ? await benchVersion(who) : undefined;
  if (!result) throw new Error(`unknown case "${name}" (numbers of resources, "fixture" or "version")`);
  rows.push(...tableRows(result.label, result.measured, TARGETS[name] ?? {}));
  notes.push(...result.notes);
}
const loadAfter = loadavg();

console.log(`\n--onetime and --version; ours: ${values.binary ? basename(OURS[0]!) : "from source (bun src/cli.ts)"}; confd: ${CONFD ?? "not run"}`);
console.log(`load average (1, 5, 15 min) before: ${loadBefore}; after: ${loadAfter}`);
console.log("| case | metric | ours | confd | ours/confd | target | met? |\n|---|---|---|---|---|---|---|");
for (const row of rows) console.log(row);
for (const note of notes) console.log(`- ${note}`);

if (values.sizes) {
  if (!values.binary) throw new Error("--sizes lists the binaries beside --binary");
  const binary = OURS[0]!;
  const files = readdirSync(dirname(binary)).filter((f) => /^confd-.*-(linux|darwin|windows)-/.test(f)).map((f) => join(dirname(binary), f)).sort();
  console.log("\n| binary | size | xz -6 |\n|---|---|---|");
  const mib = (bytes: number) => `${(bytes / MiB).toFixed(1)} MiB`;
  for (const file of files) console.log(`| ${basename(file)} | ${mib(statSync(file).size)} | ${mib(await xzSize(file))} |`);
}

// --- the cases -----------------------------------------------------------------------------------

/**
 * N resources of KEYS keys each, file backend. Each implementation gets its own copy of conf.d (dests
 * differ) and shares templates and data. Values are quoted in the YAML: confd's file backend takes
 * strings as they are, and quoting keeps a value such as "1e3" or "yes" a string for both.
 */
async function benchResources(resources: number, who: Who[]) {
  const dir = mkdtempSync(join(tmpdir(), "confd-bench-"));
  try {
    mkdirSync(join(dir, "templates"));
    // Valid Go text/template, so confd and our Go engine render the same text.
    writeFileSync(join(dir, "templates", "app.tmpl"), '# {{getv "/name"}}\n{{range gets "/settings/*"}}{{base .Key}} = {{.Value}}\n{{end}}');
    writeFileSync(join(dir, "confd.toml"), "");
    const data: string[] = [];
    for (let r = 0; r < resources; r++) {
      data.push(`app${r}:`, `  name: "app${r}"`, "  settings:");
      for (let k = 0; k < KEYS - 1; k++) data.push(`    key${k}: "value-${r}-${k}"`);
    }
    writeFileSync(join(dir, "data.yaml"), data.join("\n") + "\n");
    const argv: Record<string, string[]> = {};
    for (const w of who) {
      const confdir = join(dir, w);
      mkdirSync(join(confdir, "conf.d"), { recursive: true });
      cpSync(join(dir, "templates"), join(confdir, "templates"), { recursive: true });
      for (let r = 0; r < resources; r++) {
        writeFileSync(
          join(confdir, "conf.d", `app${r}.toml`),
          `[template]\nsrc = "app.tmpl"\ndest = "${join(dir, `out-${w}`, `app${r}.conf`)}"\nprefix = "/app${r}"\nkeys = ["/name", "/settings"]\nmode = "0644"\n`,
        );
      }
      argv[w] = [...command(w), "-onetime", "-backend", "file", "-file", join(dir, "data.yaml"), "-confdir", confdir, "-config-file", join(dir, "confd.toml"), "-log-level", "error"];
    }
    const measured: Partial<Record<Who, Measured>> = {};
    let compared: string | undefined;
    const runs = resources >= 1000 ? BIG_RUNS : RUNS;
    for (let i = 0; i < runs; i++) {
      for (const w of i % 2 === 0 ? who : [...who].reverse()) {
        // Alternate between a fresh destination tree (every file written) and an unchanged one (every file compared).
        if (i % 2 === 0) {
          rmSync(join(dir, `out-${w}`), { recursive: true, force: true });
          mkdirSync(join(dir, `out-${w}`));
        }
        const s = await timed(argv[w]!, process.env as Record<string, string>, true);
        const m = (measured[w] ??= { wall: [], cpu: [], rss: [] });
        m.wall.push(s.wallMs);
        m.cpu.push(s.cpuMs);
        m.rss.push(s.rssMiB!);
        console.error(`${resources} resources, run ${i + 1}/${runs}, ${w}: ${s.wallMs.toFixed(0)} ms wall, ${s.cpuMs.toFixed(0)} ms CPU, ${s.rssMiB!.toFixed(1)} MiB (${i % 2 === 0 ? "fresh" : "unchanged"} files); load ${loadavg()}`);
      }
      if (i === 0 && who.length === 2) compared = compareTrees(join(dir, "out-ours"), join(dir, "out-confd"));
    }
    return {
      label: `${resources} resources × ${KEYS} keys, file backend`,
      measured,
      notes: compared ? [`${resources} resources: files written by ours and by confd ${compared}`] : [],
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** confd's integration fixture as it is (its Go templates), each dest moved into a temp dir, env backend. */
async function benchFixture(who: Who[]) {
  const dir = mkdtempSync(join(tmpdir(), "confd-bench-fixture-"));
  try {
    const shared = join(ROOT, "test", "fixtures", "confd-integration");
    writeFileSync(join(dir, "confd.toml"), "");
    const argv: Record<string, string[]> = {};
    for (const w of who) {
      const confdir = join(dir, w);
      mkdirSync(join(confdir, "conf.d"), { recursive: true });
      mkdirSync(join(dir, `out-${w}`));
      cpSync(join(shared, "confdir", "templates"), join(confdir, "templates"), { recursive: true });
      for (const f of readdirSync(join(shared, "confdir", "conf.d"))) {
        const text = readFileSync(join(shared, "confdir", "conf.d", f), "utf8");
        writeFileSync(join(confdir, "conf.d", f), text.replace(/dest = "\/tmp\/(.*)"/, (_, base: string) => `dest = ${JSON.stringify(join(dir, `out-${w}`, base))}`));
      }
      argv[w] = [...command(w), "-onetime", "-backend", "env", "-confdir", confdir, "-config-file", join(dir, "confd.toml"), "-log-level", "error"];
    }
    const fixture = Bun.YAML.parse(readFileSync(join(shared, "data.yaml"), "utf8")) as { keys: Record<string, string>; nested_keys: Record<string, string> };
    // confd's env backend maps "/database/host" to DATABASE_HOST.
    const env: Record<string, string> = { PATH: process.env.PATH ?? "/usr/bin:/bin", HOSTNAME: "localhost" };
    for (const [k, v] of Object.entries({ ...fixture.keys, ...fixture.nested_keys })) env[k.replace(/^\/+/, "").replace(/\//g, "_").toUpperCase()] = v;
    const measured = await startupRuns(argv, env, who);
    const notes: string[] = [];
    if (who.length === 2) notes.push(`integration fixture: files written by ours and by confd ${compareTrees(join(dir, "out-ours"), join(dir, "out-confd"))}`);
    return { label: "confd's integration fixture (5 resources), env backend", measured, notes };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function benchVersion(who: Who[]) {
  const argv: Record<string, string[]> = {};
  for (const w of who) argv[w] = [...command(w), "--version"];
  const measured = await startupRuns(argv, { PATH: process.env.PATH ?? "/usr/bin:/bin" }, who);
  return { label: "`--version`", measured, notes: [] as string[] };
}

/** STARTUP_RUNS timed runs each (direct spawns, after one unmeasured run each for the page cache), then 5 under /usr/bin/time for peak RSS. */
async function startupRuns(argv: Record<string, string[]>, env: Record<string, string>, who: Who[]): Promise<Partial<Record<Who, Measured>>> {
  const measured: Partial<Record<Who, Measured>> = {};
  for (const w of who) await timed(argv[w]!, env, false);
  for (let i = 0; i < STARTUP_RUNS; i++) {
    for (const w of i % 2 === 0 ? who : [...who].reverse()) {
      const s = await timed(argv[w]!, env, false);
      const m = (measured[w] ??= { wall: [], cpu: [], rss: [] });
      m.wall.push(s.wallMs);
      m.cpu.push(s.cpuMs);
    }
  }
  for (let i = 0; i < 5; i++) for (const w of who) measured[w]!.rss.push((await timed(argv[w]!, env, true)).rssMiB!);
  return measured;
}

// --- measuring -----------------------------------------------------------------------------------

function command(w: Who): string[] {
  return w === "ours" ? OURS : [CONFD!];
}

/** One run: wall and CPU time, and with `underTime` the peak RSS from /usr/bin/time. Throws on a failure exit. */
async function timed(argv: string[], env: Record<string, string>, underTime: boolean): Promise<Sample & { rssMiB?: number }> {
  const full = underTime ? [TIME, "-f", "%M", ...argv] : argv;
  const started = performance.now();
  const child = Bun.spawn(full, { env, stdout: "ignore", stderr: "pipe" });
  const stderr = await new Response(child.stderr).text();
  const code = await child.exited;
  const wallMs = performance.now() - started;
  if (code !== 0) throw new Error(`${argv.join(" ")} exited with ${code}:\n${stderr}`);
  const usage = child.resourceUsage();
  const cpuMs = Number((usage?.cpuTime.user ?? 0n) + (usage?.cpuTime.system ?? 0n)) / 1000;
  // /usr/bin/time prints KiB on its last line.
  const rssMiB = underTime ? Number(stderr.trim().split("\n").at(-1)) / 1024 : undefined;
  return { wallMs, cpuMs, rssMiB };
}

/** "identical (N files, bytes and mode)", or what differs. */
function compareTrees(a: string, b: string): string {
  const names = [...new Set([...readdirSync(a), ...readdirSync(b)])].sort();
  const differ: string[] = [];
  for (const n of names) {
    try {
      const [sa, sb] = [statSync(join(a, n)), statSync(join(b, n))];
      if (sa.mode !== sb.mode || !readFileSync(join(a, n)).equals(readFileSync(join(b, n)))) differ.push(n);
    } catch {
      differ.push(`${n} (missing on one side)`);
    }
  }
  return differ.length === 0 ? `are identical (${names.length} files, bytes and mode)` : `DIFFER: ${differ.length} of ${names.length} files (${differ.slice(0, 5).join(", ")}${differ.length > 5 ? ", …" : ""})`;
}

function loadavg(): string {
  return readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(", ");
}

function median(xs: number[]): number {
  const s = [...xs].sort((x, y) => x - y);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

/** "median (min–max)". */
function spread(xs: number[], unit: string, digits: number): string {
  const f = (x: number) => x.toFixed(digits);
  return `${f(median(xs))} ${unit} (${f(Math.min(...xs))}–${f(Math.max(...xs))})`;
}

/**
 * Rows for one case. Wall time is judged on medians against the ratio target; CPU time gets its ratio
 * beside it (two cores: ours may use more CPU than wall time, confd's onetime mostly one core) but no
 * verdict of its own. Peak RSS is judged on the largest run: a peak should hold in every run.
 */
function tableRows(label: string, m: Partial<Record<Who, Measured>>, target: Target): string[] {
  const o = m.ours!;
  const c = m.confd;
  const digits = median(o.wall) < 100 ? 1 : 0;
  const ratio = (f: (x: Measured) => number) => (c ? `${(f(o) / f(c)).toFixed(2)}×` : "—");
  const verdict = (ok: boolean) => (ok ? "met" : "**missed**");
  const wallRatio = c ? median(o.wall) / median(c.wall) : undefined;
  const maxRss = (x: Measured) => Math.max(...x.rss);
  const runs = `${o.wall.length} runs`;
  return [
    `| ${label} | wall time, median (min–max) of ${runs} | ${spread(o.wall, "ms", digits)} | ${c ? spread(c.wall, "ms", digits) : "—"} | ${ratio((x) => median(x.wall))} | ${target.ratio !== undefined ? `≤ ${target.ratio.toFixed(1)}× confd` : ""} | ${target.ratio !== undefined && wallRatio !== undefined ? verdict(wallRatio <= target.ratio) : ""} |`,
    `| | CPU time (user + system) | ${spread(o.cpu, "ms", digits)} | ${c ? spread(c.cpu, "ms", digits) : "—"} | ${ratio((x) => median(x.cpu))} | | |`,
    `| | peak RSS, largest (smallest) of ${o.rss.length} | ${maxRss(o).toFixed(1)} MiB (${Math.min(...o.rss).toFixed(1)}) | ${c ? `${maxRss(c).toFixed(1)} MiB (${Math.min(...c.rss).toFixed(1)})` : "—"} | ${ratio(maxRss)} | ${target.rss !== undefined ? `≤ ${target.rss} MiB` : ""} | ${target.rss !== undefined ? verdict(maxRss(o) <= target.rss) : ""} |`,
  ];
}

/** Bytes of `file` compressed as a release would be: xz -6, in 32 MiB blocks on every core. */
async function xzSize(file: string): Promise<number> {
  const xz = Bun.spawn(["xz", "-c", "-6", "-T0", "--block-size=32MiB", file], { stdout: "pipe", stderr: "inherit" });
  let bytes = 0;
  for await (const chunk of xz.stdout) bytes += chunk.length;
  if ((await xz.exited) !== 0) throw new Error(`xz ${file} failed`);
  return bytes;
}
