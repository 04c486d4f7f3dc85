// The release build (`npm run build`): one self-contained executable per OS/arch, written to
// dist/confd-<version>-<target>[.exe], and dist/SHA256SUMS for every binary of the version there.
//   bun scripts/build.ts                       the host's target
//   bun scripts/build.ts --all                 every target
//   bun scripts/build.ts --target linux-arm64  one target (repeatable); --outdir <dir> instead of dist/
// No network but the npm registry: each target's Bun runtime is the registry package
// @oven/bun-<target> at exactly our Bun version, fetched with `npm pack`, checked against the
// integrity recorded in package-lock.json when it is there, and cached under .cache/bun-runtimes/.
// The binary must not need the build tree at run time: etcd3's .proto files are inlined (below), the
// worker entries (one per template engine) are entrypoints of their own, and .env/bunfig.toml autoloading is off.
import { createHash } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { parseArgs } from "node:util";
import type { BunPlugin } from "bun";
// protobufjs is what @grpc/proto-loader parses .proto files with (one hoisted copy in node_modules).
import protobuf from "protobufjs";

export const ROOT = join(import.meta.dir, "..");
const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string; devDependencies: Record<string, string> };
export const VERSION = pkg.version;
/** The Bun runtime every binary embeds: the exact version the project develops and tests with. */
const BUN_VERSION = pkg.devDependencies.bun!;
const RUNTIME_CACHE = join(ROOT, ".cache", "bun-runtimes");

export interface Target {
  /** The name in the file name and on the command line. */
  name: string;
  compile: Bun.Build.CompileTarget;
  /** The registry package holding this target's Bun runtime. */
  runtime: string;
  exe: "" | ".exe";
}

const TARGETS: readonly Target[] = [
  { name: "linux-x64", compile: "bun-linux-x64", runtime: "@oven/bun-linux-x64", exe: "" },
  { name: "linux-x64-baseline", compile: "bun-linux-x64-baseline", runtime: "@oven/bun-linux-x64-baseline", exe: "" },
  { name: "linux-arm64", compile: "bun-linux-arm64", runtime: "@oven/bun-linux-aarch64", exe: "" },
  { name: "linux-x64-musl", compile: "bun-linux-x64-musl", runtime: "@oven/bun-linux-x64-musl", exe: "" },
  { name: "linux-arm64-musl", compile: "bun-linux-arm64-musl", runtime: "@oven/bun-linux-aarch64-musl", exe: "" },
  { name: "windows-x64", compile: "bun-windows-x64", runtime: "@oven/bun-windows-x64", exe: ".exe" },
  { name: "darwin-x64", compile: "bun-darwin-x64", runtime: "@oven/bun-darwin-x64", exe: "" },
  { name: "darwin-arm64", compile: "bun-darwin-arm64", runtime: "@oven/bun-darwin-aarch64", exe: "" },
];

export function targetNamed(name: string): Target {
  const target = TARGETS.find((t) => t.name === name);
  if (!target) throw new Error(`unknown target "${name}" (targets: ${TARGETS.map((t) => t.name).join(", ")})`);
  return target;
}

/** The target this machine runs: OS, CPU and, on Linux, the C library the running Bun uses. */
export function hostTarget(): Target {
  const os = process.platform === "win32" ? "windows" : process.platform;
  const arch = process.arch;
  // Node's report names the glibc version only when linked against glibc, as Bun's is on glibc hosts.
  const report = process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined;
  const musl = os === "linux" && !report?.header?.glibcVersionRuntime;
  return targetNamed(`${os}-${arch}${musl ? "-musl" : ""}`);
}

export function binaryName(target: Target): string {
  return `confd-${VERSION}-${target.name}${target.exe}`;
}

/** The commit built from ("-dirty" when tracked files differ from it), or "unknown" without git. */
function gitRevision(): string {
  try {
    const head = Bun.spawnSync(["git", "rev-parse", "--short=12", "HEAD"], { cwd: ROOT, stdout: "pipe", stderr: "ignore" });
    if (head.exitCode !== 0) return "unknown";
    // `git diff` compares without rewriting the index (git status may, and may race another git command).
    const clean = Bun.spawnSync(["git", "diff", "--quiet", "HEAD", "--"], { cwd: ROOT, stdout: "ignore", stderr: "ignore" });
    return head.stdout.toString().trim() + (clean.exitCode === 0 ? "" : "-dirty");
  } catch {
    return "unknown";
  }
}

/** etcd3's protocol as a JSON descriptor, parsed as proto-loader parses it for etcd3 (keepCase). */
export function etcdDescriptor(protoFile: string): protobuf.INamespace {
  return new protobuf.Root().loadSync(protoFile, { keepCase: true }).toJSON();
}

const ETCD_PROTO_CALL = "(0, proto_loader_1.loadSync)(`${__dirname}/../proto/rpc.proto`,";

/**
 * etcd3 loads its .proto files from beside its own code when imported; in a binary that path is the
 * build machine's. This rewrites that one call to build the same gRPC package definition from the
 * descriptor, parsed at build time.
 */
const inlineEtcdProtos: BunPlugin = {
  name: "inline-etcd3-protos",
  setup(build) {
    build.onLoad({ filter: /[\\/]etcd3[\\/]lib[\\/]connection-pool\.js$/ }, async (args) => {
      const source = await Bun.file(args.path).text();
      // A new etcd3 that loads its protos another way must fail the build, not the binary at run time.
      if (!source.includes(ETCD_PROTO_CALL)) throw new Error(`${args.path}: etcd3's proto loading changed; update inlineEtcdProtos`);
      const descriptor = JSON.stringify(etcdDescriptor(join(dirname(args.path), "..", "proto", "rpc.proto")));
      return { contents: source.replace(ETCD_PROTO_CALL, `(0, proto_loader_1.fromJSON)(${descriptor},`), loader: "js" };
    });
  },
};

/** The integrity package-lock.json records for a registry package, if it lists it. */
function lockedIntegrity(name: string, version: string): string | undefined {
  const lock = JSON.parse(readFileSync(join(ROOT, "package-lock.json"), "utf8")) as { packages?: Record<string, { version?: string; integrity?: string }> };
  const entry = lock.packages?.[`node_modules/${name}`];
  return entry?.version === version ? entry.integrity : undefined;
}

/**
 * The Bun runtime to embed for a target: the running Bun for the host target when it is our exact
 * version (npm installed it from the same registry package), else the registry package, cached.
 */
async function runtimeFor(target: Target): Promise<string> {
  if (target.name === hostTarget().name && Bun.version === BUN_VERSION) return process.execPath;
  const dir = join(RUNTIME_CACHE, `${target.runtime.replace("@oven/", "")}-${BUN_VERSION}`);
  const binary = join(dir, "package", "bin", `bun${target.exe}`);
  if (existsSync(binary)) return binary;

  mkdirSync(RUNTIME_CACHE, { recursive: true });
  const work = mkdtempSync(join(RUNTIME_CACHE, ".download-"));
  try {
    const npm = Bun.which("npm");
    if (!npm) throw new Error("npm is needed to fetch the Bun runtime for other targets");
    const spec = `${target.runtime}@${BUN_VERSION}`;
    const pack = Bun.spawnSync([npm, "pack", spec, "--pack-destination", work, "--silent"], { cwd: work, stdout: "pipe", stderr: "pipe" });
    const tgz = join(work, pack.stdout.toString().trim().split("\n").pop() ?? "");
    if (pack.exitCode !== 0 || !existsSync(tgz) || !statSync(tgz).isFile()) {
      throw new Error(`npm pack ${spec} failed (${pack.exitCode}): ${pack.stderr.toString().trim()}`);
    }
    const bytes = readFileSync(tgz);
    const locked = lockedIntegrity(target.runtime, BUN_VERSION);
    const actual = `sha512-${createHash("sha512").update(bytes).digest("base64")}`;
    if (locked && locked !== actual) throw new Error(`${spec}: integrity ${actual} differs from package-lock.json's ${locked}`);
    const unpacked = join(work, "unpacked");
    await new Bun.Archive(bytes).extract(unpacked, { glob: "package/**" });
    chmodSync(join(unpacked, "package", "bin", `bun${target.exe}`), 0o755);
    // Renamed into place whole, so that an interrupted or concurrent download never leaves half a runtime.
    try {
      renameSync(unpacked, dir);
    } catch (err) {
      if (!existsSync(binary)) throw err;
    }
    return binary;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

export interface Built {
  target: Target;
  path: string;
  bytes: number;
}

export interface BuildOptions {
  outdir?: string;
  revision?: string;
}

/**
 * Compiles one target into `outdir`. The binary is written in a directory of its own beside it and
 * renamed into place, so that a running copy is never half-written; under its final name, because
 * the binary embeds that name (a temporary one would make two builds of one commit differ).
 */
async function buildTarget(target: Target, outdir: string, revision: string): Promise<Built> {
  mkdirSync(outdir, { recursive: true });
  const path = join(outdir, binaryName(target));
  const scratch = mkdtempSync(join(outdir, ".partial-"));
  const partial = join(scratch, binaryName(target));
  try {
    const result = await Bun.build({
      entrypoints: [join(ROOT, "src", "cli.ts"), join(ROOT, "src", "worker-go.ts"), join(ROOT, "src", "worker-handlebars.ts")],
      target: "bun",
      // Bytecode needs ESM here. Splitting keeps each backend's libraries in chunks of their own, loaded
      // only by the backend's dynamic import: in one chunk, etcd3, gRPC and ioredis cost every start,
      // whatever the backend, about 13 MiB and 7 ms.
      format: "esm",
      splitting: true,
      minify: true,
      bytecode: true,
      define: { CONFD_REVISION: JSON.stringify(revision) },
      plugins: [inlineEtcdProtos],
      compile: {
        target: target.compile,
        executablePath: await runtimeFor(target),
        outfile: partial,
        // A daemon must not read .env or bunfig.toml from whatever directory it is started in.
        autoloadDotenv: false,
        autoloadBunfig: false,
        autoloadTsconfig: false,
        autoloadPackageJson: false,
      },
    });
    if (!result.success) throw new AggregateError(result.logs, `build of ${target.name} failed:\n${result.logs.join("\n")}`);
    renameSync(partial, path);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  return { target, path, bytes: statSync(path).size };
}

export function sha256(path: string): string {
  return createHash("sha256").update(readFileSync(path)).digest("hex");
}

/**
 * SHA256SUMS (`sha256sum -c` format) for every binary of this version in `outdir`, so that building
 * one more target later keeps the others listed; a checksum is of the file as it is, never stale.
 */
function writeChecksums(outdir: string): void {
  const names = readdirSync(outdir).filter((name) => name.startsWith(`confd-${VERSION}-`)).sort();
  writeFileSync(join(outdir, "SHA256SUMS"), names.map((name) => `${sha256(join(outdir, name))}  ${name}\n`).join(""));
}

export async function build(targets: readonly Target[], options: BuildOptions = {}): Promise<Built[]> {
  const outdir = options.outdir ?? join(ROOT, "dist");
  const revision = options.revision ?? gitRevision();
  const built: Built[] = [];
  // One at a time: each compile holds a ~110 MB runtime in memory and uses every core for bytecode.
  for (const target of targets) built.push(await buildTarget(target, outdir, revision));
  writeChecksums(outdir);
  return built;
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      all: { type: "boolean", default: false },
      target: { type: "string", multiple: true },
      outdir: { type: "string" },
    },
  });
  const targets = values.all ? TARGETS : values.target?.length ? values.target.map(targetNamed) : [hostTarget()];
  const outdir = values.outdir ?? join(ROOT, "dist");
  const revision = gitRevision();
  console.log(`confd ${VERSION} (${revision}), Bun ${BUN_VERSION}: ${targets.map((t) => t.name).join(", ")}`);
  const started = performance.now();
  const built = await build(targets, { outdir, revision });
  for (const b of built) console.log(`${(b.bytes / 2 ** 20).toFixed(1).padStart(6)} MiB  ${b.path}`);
  console.log(`${join(outdir, "SHA256SUMS")} in ${((performance.now() - started) / 1000).toFixed(1)} s`);
}
