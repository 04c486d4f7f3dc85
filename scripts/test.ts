// The test command. `npm test`: builds the release binaries the suite checks (the host's, linux-arm64
// for qemu-user, windows-x64), runs the whole suite from source, then runs the end-to-end files again
// against the host binary with the build tree hidden, and ends with the one line CI reads,
// `N passed, N failed`, summing both runs (counted from bun's JUnit reports: bun's own summary is
// not a recognised format).
//   npm test                       everything, as CI runs it
//   npm test -- <bun test args>    the source run only, with those arguments (files, -t name)
//   npm run test:binary            build the host binary; the end-to-end files against it, build tree hidden
//   CONFD_BIN=<binary> npm test    the source run only, every CLI run going to that binary instead
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join, relative, sep } from "node:path";
import { binaryName, build, hostTarget, ROOT, targetNamed, type Target } from "./build.ts";

interface Counts {
  passed: number;
  failed: number;
  skipped: number;
}

/** Debian packages the tests use, each checked by a command or file it provides. */
const PACKAGES: { provides: string; pkg: string; required: boolean }[] = [
  // The store tests run real servers, started by the tests on spare loopback ports.
  { provides: "etcd", pkg: "etcd-server", required: true },
  { provides: "redis-server", pkg: "redis-server", required: true },
  // SRV discovery: a real DNS server, started by the tests on a spare loopback address.
  { provides: "/usr/sbin/dnsmasq", pkg: "dnsmasq", required: true },
  // ZooKeeper, started by the tests on a spare loopback port.
  { provides: "/usr/share/java/zookeeper.jar", pkg: "zookeeper", required: true },
  // Peak memory of a confd run, where a test bounds it.
  { provides: "/usr/bin/time", pkg: "time", required: true },
  // The linux-arm64 binary's smoke test: qemu-user, and an arm64 C library for it to load.
  { provides: "qemu-aarch64", pkg: "qemu-user", required: false },
  { provides: "/usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1", pkg: "libc6-arm64-cross", required: false },
  // The installer runs under dash and busybox ash.
  { provides: "busybox", pkg: "busybox", required: false },
];

function present(provides: string): boolean {
  if (provides.startsWith("/")) return existsSync(provides);
  return Bun.which(provides) !== null || Bun.which(provides, { PATH: "/usr/bin:/usr/sbin:/bin:/sbin" }) !== null;
}

/** Installs what is missing when we may (root with apt-get); otherwise says what to install. */
function ensurePackages(): void {
  const missing = PACKAGES.filter((p) => !present(p.provides));
  if (missing.length === 0) return;
  const names = missing.map((p) => p.pkg);
  if (process.getuid?.() !== 0 || !Bun.which("apt-get")) {
    const required = missing.filter((p) => p.required).map((p) => p.pkg);
    const optional = missing.filter((p) => !p.required).map((p) => p.pkg);
    if (optional.length > 0) console.error(`Without ${optional.join(", ")}, the tests that need them are skipped (Debian: apt-get install ${optional.join(" ")}).`);
    if (required.length === 0) return;
    console.error(`The tests need ${required.join(" and ")}: install them (Debian: apt-get install ${required.join(" ")}).`);
    process.exit(1);
  }
  console.error(`Installing ${names.join(", ")} for the tests...`);
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  for (const argv of [["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "--no-install-recommends", ...names]]) {
    const r = Bun.spawnSync(argv, { env, stdout: "inherit", stderr: "inherit" });
    if (r.exitCode !== 0) {
      console.error(`${argv.join(" ")} failed with status ${r.exitCode}`);
      process.exit(1);
    }
  }
}

/** Runs bun test (argv after `bun`, possibly wrapped) and counts its JUnit report. */
async function bunTest(argv: (report: string) => string[], options: { cwd?: string; env?: Record<string, string | undefined> } = {}): Promise<Counts> {
  const dir = mkdtempSync(join(tmpdir(), "confd-test-report-"));
  const report = join(dir, "junit.xml");
  const child = Bun.spawn(argv(report), { cwd: options.cwd ?? ROOT, env: options.env ?? process.env, stdio: ["inherit", "inherit", "inherit"] });
  const code = await child.exited;
  const counts: Counts = { passed: 0, failed: 0, skipped: 0 };
  try {
    const xml = readFileSync(report, "utf8");
    const top = /<testsuites\b[^>]*>/.exec(xml)?.[0] ?? "";
    const attr = (name: string) => Number(new RegExp(`\\b${name}="(\\d+)"`).exec(top)?.[1] ?? 0);
    counts.failed = attr("failures") + attr("errors");
    counts.skipped = attr("skipped");
    counts.passed = attr("tests") - counts.failed - counts.skipped;
  } catch {
    counts.failed = 1;
  }
  rmSync(dir, { recursive: true, force: true });
  if (code !== 0 && counts.failed === 0) counts.failed = 1;
  return counts;
}

/** Tests run the CLI and real commands as processes; bun's 5 s default is tight on a loaded 2-core machine. */
const BUN_TEST = ["test", "--timeout=30000"];

/** The end-to-end files: those that run confd as a process (through test/helpers.ts). */
function endToEndFiles(): string[] {
  return readdirSync(join(ROOT, "test"))
    .filter((f) => f.endsWith(".test.ts") && /\b(runConfd|spawnConfd)\b/.test(readFileSync(join(ROOT, "test", f), "utf8")))
    .map((f) => join("test", f))
    .sort();
}

/**
 * The end-to-end files against `binary`, with the build tree hidden: a binary that still read a file
 * of the tree (a module, etcd3's .proto files) at its baked-in path would fail here.
 *
 * The tests, their fixtures, the few sources they import and the examples they render are copied to a
 * temporary directory, laid out as the repository is (main/test, main/src, main/examples), with the binary
 * beside them in bin/. In a private mount namespace, the repository's node_modules is bind-mounted
 * read-only at main/node_modules (bun itself and the test side's etcd and redis clients), and then an
 * empty read-only tmpfs is mounted over the repository: at the paths the build used nothing is left,
 * while the test side finds what it needs under other paths the binary has never seen. The binary
 * runs from its own directory (test/helpers.ts), away from the copied tree.
 */
async function hiddenTreeRun(binary: string): Promise<Counts> {
  const work = mkdtempSync(join(tmpdir(), "confd-binary-run-"));
  try {
    const main = join(work, "main");
    // examples/: test/catalog.test.ts renders examples/service-discovery with the binary.
    for (const dir of ["test", "src", "examples"]) cpSync(join(ROOT, dir), join(main, dir), { recursive: true });
    for (const file of ["package.json", "bunfig.toml", "tsconfig.json"]) cpSync(join(ROOT, file), join(main, file));
    const bin = join(work, "bin", basename(binary));
    cpSync(binary, bin);
    chmodSync(bin, 0o755);
    const { CONFD_DIST: _, ...inherited } = process.env;
    const env = { ...inherited, CONFD_BIN: bin };
    const files = endToEndFiles();

    if (process.getuid?.() !== 0 || !Bun.which("unshare")) {
      console.error("Not root: the build tree stays visible in this run (hiding it takes `unshare --mount`).");
      symlinkSync(join(ROOT, "node_modules"), join(main, "node_modules"));
      return await bunTest((report) => [process.execPath, ...BUN_TEST, "--reporter=junit", `--reporter-outfile=${report}`, ...files], { cwd: main, env });
    }

    mkdirSync(join(main, "node_modules"));
    const bun = process.execPath.startsWith(ROOT + sep) ? join(main, relative(ROOT, process.execPath)) : process.execPath;
    const hide = [
      'root=$1 main=$2; shift 2',
      'mount --bind "$root/node_modules" "$main/node_modules"',
      'mount -o remount,bind,ro "$main/node_modules"',
      'mount -t tmpfs -o ro,size=4k confd-build-tree-hidden "$root"',
      'exec "$@"',
    ].join("\n");
    return await bunTest(
      (report) => ["unshare", "--mount", "sh", "-ec", hide, "sh", ROOT, main, bun, ...BUN_TEST, "--reporter=junit", `--reporter-outfile=${report}`, ...files],
      { cwd: main, env },
    );
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** Builds `targets` into dist/; false (after saying why) when the build fails. */
async function buildForTests(targets: Target[]): Promise<boolean> {
  const started = performance.now();
  try {
    const built = await build(targets);
    console.error(`Built ${built.map((b) => basename(b.path)).join(", ")} in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    return true;
  } catch (err) {
    console.error(`Build failed: ${err instanceof Error ? err.message : String(err)}`);
    return false;
  }
}

function add(a: Counts, b: Counts): Counts {
  return { passed: a.passed + b.passed, failed: a.failed + b.failed, skipped: a.skipped + b.skipped };
}

const args = process.argv.slice(2);
const host = hostTarget();
const hostBinary = join(ROOT, "dist", binaryName(host));
/** A failed build counts as one failure; the binary run is then skipped rather than run on an old binary. */
const BUILD_FAILED: Counts = { passed: 0, failed: 1, skipped: 0 };
let total: Counts = { passed: 0, failed: 0, skipped: 0 };
ensurePackages();

if (args[0] === "--binary") {
  total = (await buildForTests([host])) ? await hiddenTreeRun(hostBinary) : BUILD_FAILED;
} else if (process.env.CONFD_BIN || args.length > 0) {
  total = await bunTest((report) => [process.execPath, ...BUN_TEST, "--reporter=junit", `--reporter-outfile=${report}`, ...args]);
} else {
  const targets = [...new Map([host, targetNamed("linux-arm64"), targetNamed("windows-x64")].map((t) => [t.name, t])).values()];
  const built = await buildForTests(targets);
  // The packaging tests take the binaries from dist/; after a failed build they build their own and fail there.
  const env = built ? { ...process.env, CONFD_DIST: join(ROOT, "dist") } : process.env;
  total = await bunTest((report) => [process.execPath, ...BUN_TEST, "--reporter=junit", `--reporter-outfile=${report}`], { env });
  if (built) {
    console.error(`\nThe end-to-end files again, against ${relative(ROOT, hostBinary)} with the build tree hidden:`);
    total = add(total, await hiddenTreeRun(hostBinary));
  } else {
    total = add(total, BUILD_FAILED);
  }
}

console.log(`${total.passed} passed, ${total.failed} failed${total.skipped ? `, ${total.skipped} skipped` : ""}`);
process.exit(total.failed === 0 ? 0 : 1);
