// Benchmark (not a test): a confdir of 200 resources, each with its own prefix of 50 keys (10,000 keys in
// one YAML file), rendered with `--onetime` and the file backend. Prints wall time and peak RSS (from
// /usr/bin/time when present, else the child's rusage) over several runs; targets are in docs/performance.md.
//   bun scripts/bench.ts [--resources 200] [--keys 50] [--runs 5]
// With --binary, a compiled confd instead (scripts/build.ts): `--version` start-up, `--onetime` on confd's
// integration fixture (test/fixtures/confd-integration) with the env backend and its peak RSS, and the
// binary's size, xz-compressed too; --sizes lists every binary of its directory that way (about 45 s of
// xz per binary on 2 cores).
//   bun scripts/bench.ts --binary dist/confd-0.1.0-linux-x64 [--startup-runs 20] [--sizes]
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { envName } from "../src/backends/env.ts";

const { values } = parseArgs({
  options: {
    resources: { type: "string", default: "200" },
    keys: { type: "string", default: "50" },
    runs: { type: "string", default: "5" },
    binary: { type: "string" },
    "startup-runs": { type: "string", default: "20" },
    sizes: { type: "boolean", default: false },
  },
});
if (values.binary) {
  await benchBinary(resolve(values.binary), Number(values["startup-runs"]), values.sizes);
  process.exit(0);
}
const resources = Number(values.resources);
const keysPer = Number(values.keys);
const runs = Number(values.runs);
const cli = join(import.meta.dir, "..", "src", "cli.ts");

const dir = mkdtempSync(join(tmpdir(), "confd-bench-"));
mkdirSync(join(dir, "conf.d"));
mkdirSync(join(dir, "templates"));
mkdirSync(join(dir, "out"));
writeFileSync(
  join(dir, "templates", "app.hbs"),
  '# {{getv "/name"}}\n{{#each (gets "/settings/*")}}{{base Key}} = {{Value}}\n{{/each}}',
);
const data: string[] = [];
for (let r = 0; r < resources; r++) {
  data.push(`app${r}:`, `  name: app${r}`, "  settings:");
  for (let k = 0; k < keysPer - 1; k++) data.push(`    key${k}: value-${r}-${k}`);
  writeFileSync(
    join(dir, "conf.d", `app${r}.toml`),
    `[template]\nsrc = "app.hbs"\ndest = "${join(dir, "out", `app${r}.conf`)}"\nprefix = "/app${r}"\nkeys = ["/name", "/settings"]\nmode = "0644"\n`,
  );
}
writeFileSync(join(dir, "data.yaml"), data.join("\n") + "\n");

const args = ["-onetime", "-backend", "file", "-file", join(dir, "data.yaml"), "-confdir", dir, "-config-file", join(dir, "none.toml"), "-log-level", "error"];
const samples: { ms: number; rssMiB: number }[] = [];
for (let i = 0; i < runs; i++) {
  // Alternate between a fresh destination tree (every file written) and an unchanged one (every file compared).
  if (i % 2 === 0) {
    rmSync(join(dir, "out"), { recursive: true, force: true });
    mkdirSync(join(dir, "out"));
  }
  // Through /usr/bin/time where there is one: a child of Bun.spawn reports a peak RSS that already
  // counts this process's (see peakRss below).
  const time = Bun.which("time", { PATH: "/usr/bin" });
  const started = performance.now();
  const child = Bun.spawn([...(time ? [time, "-f", "%M"] : []), process.execPath, cli, ...args], { stdout: "inherit", stderr: "pipe" });
  const stderr = await new Response(child.stderr).text();
  const code = await child.exited;
  const ms = performance.now() - started;
  if (code !== 0) throw new Error(`confd exited with ${code}: ${stderr}`);
  // /usr/bin/time prints KiB on its last line; Bun's rusage is in bytes.
  const rssMiB = time ? Number(stderr.trim().split("\n").at(-1)) / 1024 : (child.resourceUsage()?.maxRSS ?? 0) / 2 ** 20;
  samples.push({ ms, rssMiB });
  console.log(`run ${i + 1}: ${ms.toFixed(0)} ms, peak RSS ${rssMiB.toFixed(1)} MiB (${i % 2 === 0 ? "fresh files" : "unchanged files"})`);
}
rmSync(dir, { recursive: true, force: true });

const sorted = samples.map((s) => s.ms).sort((a, b) => a - b);
const median = sorted[Math.floor(sorted.length / 2)]!;
const rss = Math.max(...samples.map((s) => s.rssMiB));
const rssTarget = 60 + 3 * resources;
console.log(`\n${resources} resources x ${keysPer} keys, --onetime, file backend, ${runs} runs`);
console.log(`| metric | measured | target |\n|---|---|---|`);
console.log(`| wall time (median) | ${median.toFixed(0)} ms | <= 1500 ms |`);
console.log(`| peak RSS (max) | ${rss.toFixed(0)} MiB | <= ${rssTarget} MiB |`);

/** Wall and CPU (user + system) times of `runs` runs, in ms, each sorted; one unmeasured run first, for the page cache. */
async function times(argv: string[], env: Record<string, string>, runs: number): Promise<{ wall: number[]; cpu: number[] }> {
  const wall: number[] = [];
  const cpu: number[] = [];
  for (let i = 0; i <= runs; i++) {
    const started = performance.now();
    const child = Bun.spawn(argv, { env, stdout: "ignore", stderr: "ignore" });
    const code = await child.exited;
    if (code !== 0) throw new Error(`${argv.join(" ")} exited with ${code}`);
    if (i === 0) continue;
    wall.push(performance.now() - started);
    const usage = child.resourceUsage();
    cpu.push(Number((usage?.cpuTime.user ?? 0n) + (usage?.cpuTime.system ?? 0n)) / 1000);
  }
  const sort = (xs: number[]) => xs.sort((x, y) => x - y);
  return { wall: sort(wall), cpu: sort(cpu) };
}

/**
 * Peak RSS in MiB, the largest of `runs` runs. /usr/bin/time forks before it execs the command; a
 * child of Bun.spawn starts with a maximum RSS that already counts this process's (~25 MiB), so
 * without /usr/bin/time the figure is an upper bound.
 */
async function peakRss(argv: string[], env: Record<string, string>, runs: number): Promise<{ mib: number; source: string }> {
  const time = Bun.which("time", { PATH: "/usr/bin" });
  let kib = 0;
  for (let i = 0; i < runs; i++) {
    if (time) {
      const child = Bun.spawn([time, "-f", "%M", ...argv], { env, stdout: "ignore", stderr: "pipe" });
      kib = Math.max(kib, Number((await new Response(child.stderr).text()).trim().split("\n").at(-1)));
      await child.exited;
    } else {
      const child = Bun.spawn(argv, { env, stdout: "ignore", stderr: "ignore" });
      await child.exited;
      kib = Math.max(kib, (child.resourceUsage()?.maxRSS ?? 0) / 1024);
    }
  }
  return { mib: kib / 1024, source: time ? "/usr/bin/time" : "rusage, an upper bound" };
}

/** Bytes of `file` compressed as a release would be: xz -6, in 32 MiB blocks on every core. */
async function xzSize(file: string): Promise<number> {
  const xz = Bun.spawn(["xz", "-c", "-6", "-T0", "--block-size=32MiB", file], { stdout: "pipe", stderr: "inherit" });
  let bytes = 0;
  for await (const chunk of xz.stdout) bytes += chunk.length;
  if ((await xz.exited) !== 0) throw new Error(`xz ${file} failed`);
  return bytes;
}

/** confd's integration fixture as it is (its Go templates), with each dest moved into a temp dir. */
function integrationFixture(dir: string): { args: string[]; env: Record<string, string> } {
  const shared = join(import.meta.dir, "..", "test", "fixtures", "confd-integration");
  mkdirSync(join(dir, "conf.d"), { recursive: true });
  mkdirSync(join(dir, "templates"));
  mkdirSync(join(dir, "out"));
  for (const f of readdirSync(join(shared, "confdir", "conf.d"))) {
    const text = readFileSync(join(shared, "confdir", "conf.d", f), "utf8");
    writeFileSync(join(dir, "conf.d", f), text.replace(/dest = "\/tmp\/(.*)"/, (_, base: string) => `dest = ${JSON.stringify(join(dir, "out", base))}`));
  }
  for (const f of readdirSync(join(shared, "confdir", "templates"))) {
    writeFileSync(join(dir, "templates", f), readFileSync(join(shared, "confdir", "templates", f)));
  }
  const fixture = Bun.YAML.parse(readFileSync(join(shared, "data.yaml"), "utf8")) as { keys: Record<string, string>; nested_keys: Record<string, string> };
  const env: Record<string, string> = { PATH: process.env.PATH ?? "/usr/bin:/bin", HOSTNAME: "localhost" };
  for (const [k, v] of Object.entries({ ...fixture.keys, ...fixture.nested_keys })) env[envName(k)] = v;
  return { args: ["-onetime", "-backend", "env", "-confdir", dir, "-config-file", join(dir, "none.toml"), "-log-level", "error"], env };
}

async function benchBinary(binary: string, runs: number, allSizes: boolean): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "confd-bench-binary-"));
  try {
    const { args, env } = integrationFixture(dir);
    const median = (sorted: number[]) => sorted[Math.floor(sorted.length / 2)]!;
    const range = (sorted: number[]) => `${sorted[0]!.toFixed(1)}–${sorted.at(-1)!.toFixed(1)}`;
    const version = await times([binary, "--version"], env, runs);
    const onetime = await times([binary, ...args], env, runs);
    const versionRss = await peakRss([binary, "--version"], env, 5);
    const onetimeRss = await peakRss([binary, ...args], env, 5);
    // CPU time hardly depends on what else the machine is doing; wall time on a shared machine does.
    console.log(`${basename(binary)}: times are medians (and ranges) of ${runs} runs; peak RSS the largest of 5, from ${onetimeRss.source}`);
    console.log("| metric | measured | target |\n|---|---|---|");
    console.log(`| \`--version\`: wall time | ${median(version.wall).toFixed(1)} ms (${range(version.wall)}) | <= 25 ms |`);
    console.log(`| \`--version\`: CPU time, peak RSS | ${median(version.cpu).toFixed(1)} ms, ${versionRss.mib.toFixed(1)} MiB | |`);
    console.log(`| \`--onetime\`, integration fixture (5 resources), env backend: wall time | ${median(onetime.wall).toFixed(1)} ms (${range(onetime.wall)}) | <= 60 ms |`);
    console.log(`| same run: CPU time | ${median(onetime.cpu).toFixed(1)} ms (${range(onetime.cpu)}) | |`);
    console.log(`| same run: peak RSS | ${onetimeRss.mib.toFixed(1)} MiB | <= 60 MiB |`);

    const files = allSizes
      ? readdirSync(dirname(binary)).filter((f) => /^confd-.*-(linux|darwin|windows)-/.test(f)).map((f) => join(dirname(binary), f)).sort()
      : [binary];
    console.log("\n| binary | size | xz -6 |\n|---|---|---|");
    const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;
    for (const file of files) console.log(`| ${basename(file)} | ${mib(statSync(file).size)} | ${mib(await xzSize(file))} |`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
