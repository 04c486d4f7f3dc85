// Benchmark (not a test): a confdir of 200 resources, each with its own prefix of 50 keys (10,000 keys in
// one YAML file), rendered with `--onetime` and the file backend. Prints wall time and peak RSS (from
// /usr/bin/time when present, else the child's rusage) over several runs; targets are in docs/performance.md.
//   bun scripts/bench.ts [--resources 200] [--keys 50] [--runs 5]
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: { resources: { type: "string", default: "200" }, keys: { type: "string", default: "50" }, runs: { type: "string", default: "5" } },
});
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
  const started = performance.now();
  const child = Bun.spawn([process.execPath, cli, ...args], { stdout: "inherit", stderr: "inherit" });
  const code = await child.exited;
  const ms = performance.now() - started;
  if (code !== 0) throw new Error(`confd exited with ${code}`);
  // Bun reports maxRSS in bytes.
  const rssMiB = (child.resourceUsage()?.maxRSS ?? 0) / 2 ** 20;
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
