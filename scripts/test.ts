// The test command (`npm test`): runs the whole suite with bun test and ends with the line CI reads,
// `N passed, N failed`, counted from bun's JUnit report (bun's own summary is not a recognised format).
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/**
 * The store tests run real etcd and redis servers (Debian's etcd-server and redis-server), started by the
 * tests on spare loopback ports. A machine without them gets them here, when we may install packages.
 */
function ensureServers(): void {
  const missing = [
    ["etcd", "etcd-server"],
    ["redis-server", "redis-server"],
  ].filter(([bin]) => !Bun.which(bin!) && !Bun.which(bin!, { PATH: "/usr/bin:/usr/sbin:/bin:/sbin" }));
  if (missing.length === 0) return;
  const packages = missing.map(([, pkg]) => pkg!);
  if (process.getuid?.() !== 0 || !Bun.which("apt-get")) {
    console.error(`The tests need ${packages.join(" and ")}: install them (Debian: apt-get install ${packages.join(" ")}).`);
    process.exit(1);
  }
  console.error(`Installing ${packages.join(", ")} for the store tests...`);
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  for (const argv of [["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "--no-install-recommends", ...packages]]) {
    const r = Bun.spawnSync(argv, { env, stdout: "inherit", stderr: "inherit" });
    if (r.exitCode !== 0) {
      console.error(`${argv.join(" ")} failed with status ${r.exitCode}`);
      process.exit(1);
    }
  }
}

ensureServers();

const dir = mkdtempSync(join(tmpdir(), "confd-test-report-"));
const report = join(dir, "junit.xml");
// Tests run the CLI and real commands as processes; bun's 5 s default is tight on a loaded 2-core machine.
const child = Bun.spawn([process.execPath, "test", "--timeout=30000", "--reporter=junit", `--reporter-outfile=${report}`, ...process.argv.slice(2)], {
  stdio: ["inherit", "inherit", "inherit"],
});
const code = await child.exited;

let passed = 0;
let failed = 0;
let skipped = 0;
try {
  const xml = readFileSync(report, "utf8");
  const top = /<testsuites\b[^>]*>/.exec(xml)?.[0] ?? "";
  const attr = (name: string) => Number(new RegExp(`\\b${name}="(\\d+)"`).exec(top)?.[1] ?? 0);
  const tests = attr("tests");
  failed = attr("failures") + attr("errors");
  skipped = attr("skipped");
  passed = tests - failed - skipped;
} catch {
  failed = Math.max(failed, 1);
}
rmSync(dir, { recursive: true, force: true });
if (code !== 0 && failed === 0) failed = 1;
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}`);
process.exit(code === 0 && failed === 0 ? 0 : 1);
