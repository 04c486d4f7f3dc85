// What scripts/build.ts produces: binaries that stand alone (etcd3's protos inlined, no .env or
// bunfig.toml read from where they start), say which version and commit they are, have a valid
// SHA256SUMS, and run on other targets (linux-arm64 under qemu-user; the Windows .exe is checked for
// its format only, as nothing here can run it).
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fromJSON, loadSync, type PackageDefinition } from "@grpc/proto-loader";
import { etcdDescriptor, sha256, targetNamed, VERSION } from "../scripts/build.ts";
import { binaryFor } from "./binary.ts";
import { baseEnv, ROOT, tempDir, writeTree } from "./helpers.ts";

const tmp = tempDir("confd-build-");
afterAll(tmp.cleanup);

/** The options etcd3 passes to proto-loader. */
const ETCD_OPTIONS = { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true };

/** A package definition as plain data: every service's methods and every message's descriptor. */
function shape(def: PackageDefinition): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, entry] of Object.entries(def)) {
    if ("format" in entry) out[name] = { format: entry.format, type: entry.type };
    else out[name] = Object.fromEntries(Object.entries(entry).map(([m, d]) => [m, [d.path, d.requestStream, d.responseStream, d.requestType.type, d.responseType.type]]));
  }
  return out;
}

test("etcd3's inlined descriptor gives the gRPC package definition its .proto files give", () => {
  const proto = join(ROOT, "node_modules", "etcd3", "proto", "rpc.proto");
  const inlined = shape(fromJSON(etcdDescriptor(proto), ETCD_OPTIONS));
  expect(Object.keys(inlined)).toContain("etcdserverpb.KV");
  expect(inlined).toEqual(shape(loadSync(proto, ETCD_OPTIONS)));
});

async function run(argv: string[], cwd = tmp.path): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = Bun.spawn(argv, { cwd, env: baseEnv(), stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, code] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
  return { code, stdout, stderr };
}

const VERSION_LINE = new RegExp(`^confd ${VERSION.replace(/\./g, "\\.")} \\(Git SHA: ([0-9a-f]{12}(-dirty)?|unknown), Bun Version: ${Bun.version.replace(/\./g, "\\.")}\\)\n$`);

/** A confdir rendering one file with the file backend. */
function fileBackendCase(name: string): { args: string[]; dest: string } {
  const dir = join(tmp.path, name);
  const dest = join(dir, "out", "app.conf");
  writeTree(dir, {
    "data.yaml": "app:\n  port: 8080\n",
    "templates/app.hbs": 'port={{getv "/app/port"}}\r\nend\r\n',
    "conf.d/app.toml": `[template]\nsrc = "app.hbs"\ndest = ${JSON.stringify(dest)}\nkeys = ["/app"]\n`,
    "out/.keep": "",
  });
  return { args: ["-onetime", "-backend", "file", "-file", join(dir, "data.yaml"), "-confdir", dir, "-config-file", join(dir, "none.toml")], dest };
}

describe("the host binary", () => {
  test("--version names the version, the commit it was built from and the Bun runtime", async () => {
    const r = await run([await binaryFor(), "--version"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(VERSION_LINE);
  });

  test("reads neither .env nor bunfig.toml from the directory it starts in", async () => {
    const binary = await binaryFor();
    const dir = join(tmp.path, "autoload");
    const { args } = fileBackendCase("autoload-case");
    writeTree(dir, {
      ".env": "CONFD_LOG_LEVEL=debug\n",
      "bunfig.toml": 'preload = ["./preload.ts"]\n',
      "preload.ts": 'console.error("PRELOADED");\n',
    });
    const r = await run([binary, ...args], dir);
    expect(r.code).toBe(0);
    expect(r.stderr).not.toContain("PRELOADED");
    expect(r.stderr).not.toContain(" DEBUG ");
  });

  test("SHA256SUMS lists it with its checksum", async () => {
    const binary = await binaryFor();
    const sums = readFileSync(join(dirname(binary), "SHA256SUMS"), "utf8");
    expect(sums).toContain(`${sha256(binary)}  confd-${VERSION}-`);
    for (const line of sums.trim().split("\n")) {
      const [sum, name] = line.split("  ");
      expect(sha256(join(dirname(binary), name!))).toBe(sum!);
    }
  });
});

/** qemu-user and an arm64 C library (Debian: qemu-user, libc6-arm64-cross), which scripts/test.ts installs as root. */
const ARM64_SYSROOT = "/usr/aarch64-linux-gnu";
const qemu = Bun.which("qemu-aarch64");
const canEmulate = process.arch === "x64" && qemu !== null && existsSync(join(ARM64_SYSROOT, "lib", "ld-linux-aarch64.so.1"));

describe.skipIf(!canEmulate)("the linux-arm64 binary under qemu-user", () => {
  const emulated = async (args: string[]) => run([qemu!, "-L", ARM64_SYSROOT, await binaryFor(targetNamed("linux-arm64")), ...args]);

  test("--version", async () => {
    const r = await emulated(["--version"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(VERSION_LINE);
  });

  test("--onetime with the file backend, CRLF kept", async () => {
    const { args, dest } = fileBackendCase("arm64");
    const r = await emulated(args);
    expect(r.stderr).not.toContain("ERROR");
    expect(r.code).toBe(0);
    expect(readFileSync(dest, "utf8")).toBe("port=8080\r\nend\r\n");
  });
});

test("the windows-x64 binary is an x86-64 Windows executable", async () => {
  const exe = await binaryFor(targetNamed("windows-x64"));
  expect(exe).toEndWith(".exe");
  const head = new Uint8Array(await Bun.file(exe).slice(0, 4096).arrayBuffer());
  const view = new DataView(head.buffer);
  expect(String.fromCharCode(head[0]!, head[1]!)).toBe("MZ");
  const pe = view.getUint32(0x3c, true);
  expect(view.getUint32(pe, true)).toBe(0x00004550); // "PE\0\0"
  expect(view.getUint16(pe + 4, true)).toBe(0x8664); // IMAGE_FILE_MACHINE_AMD64
});
