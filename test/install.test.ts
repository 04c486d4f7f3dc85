// scripts/install.sh end to end: a release served over HTTP on loopback (the host's binary and a
// SHA256SUMS for it), installed under dash and busybox ash, with the failures a user can meet:
// a tampered binary, a platform without a build, no curl or wget, a download that fails.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readdirSync, symlinkSync } from "node:fs";
import { basename, join } from "node:path";
import { hostTarget, sha256, VERSION } from "../scripts/build.ts";
import { binaryFor } from "./binary.ts";
import { ROOT, tempDir, writeTree } from "./helpers.ts";

const INSTALLER = join(ROOT, "scripts", "install.sh");
const tmp = tempDir("confd-install-");
const requested: string[] = [];
let server: ReturnType<typeof Bun.serve>;
let binary: string;
let tampered: Uint8Array;

beforeAll(async () => {
  binary = await binaryFor();
  const bytes = new Uint8Array(await Bun.file(binary).arrayBuffer());
  tampered = bytes.slice();
  const middle = tampered.length >> 1;
  tampered[middle] = tampered[middle]! ^ 0xff;
  const sums = `${sha256(binary)}  ${basename(binary)}\n`;
  // /ok/ is the release as built; /tampered/ serves a binary one byte off with the same SHA256SUMS;
  // /missing/ has the list but not the binary.
  server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch(req) {
      const [, release, name] = new URL(req.url).pathname.split("/");
      requested.push(`${release}/${name}`);
      if (name === "SHA256SUMS") return new Response(sums);
      if (name !== basename(binary) || release === "missing") return new Response("not found", { status: 404 });
      return new Response(release === "tampered" ? tampered : Bun.file(binary));
    },
  });
});

afterAll(() => {
  server?.stop(true);
  tmp.cleanup();
});

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function install(shell: string[], release: string, prefix: string, env: Record<string, string> = {}): Promise<Run> {
  const child = Bun.spawn([...shell, INSTALLER, "--prefix", prefix], {
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", TMPDIR: tmp.path, CONFD_INSTALL_BASE_URL: `${server.url.origin}/${release}`, ...env },
    stdout: "pipe",
    stderr: "pipe",
  });
  const [stdout, stderr, code] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
  return { code, stdout, stderr };
}

/** A directory of commands: each name links to the host's command (or to busybox, given). */
function toolbox(name: string, commands: string[], busybox?: string): string {
  const dir = join(tmp.path, name);
  mkdirSync(dir, { recursive: true });
  for (const command of commands) {
    const target = busybox ?? Bun.which(command);
    if (!target) throw new Error(`${command} is not installed`);
    symlinkSync(target, join(dir, command));
  }
  return dir;
}

/** What the installer uses besides a downloader and a checksum tool. */
const BASE_TOOLS = ["sh", "uname", "grep", "cut", "mktemp", "rm", "mkdir", "cp", "chmod", "mv", "ls"];

/** Installer temp dirs left behind (there must be none, whatever happened). */
function leftovers(): string[] {
  return readdirSync(tmp.path).filter((f) => f.startsWith("confd-install."));
}

const shells: [string, string[]][] = [
  ["dash", ["dash"]],
  ["busybox ash", ["busybox", "ash"]],
];

describe.each(shells)("under %s", (name, shell) => {
  const available = Bun.which(shell[0]!) !== null;

  test.skipIf(!available)("installs the binary for this machine and runs --version", async () => {
    const prefix = join(tmp.path, `${name.replace(" ", "-")}-ok`);
    const r = await install(shell, "ok", prefix);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const installed = join(prefix, "bin", "confd");
    expect(sha256(installed)).toBe(sha256(binary));
    expect(r.stdout).toContain(`Installed ${installed}`);
    expect(r.stdout).toContain(`confd ${VERSION} (Git SHA: `);
    expect(requested).toContain(`ok/${basename(binary)}`);
    expect(leftovers()).toEqual([]);
  });

  test.skipIf(!available)("refuses a binary whose checksum does not match, and deletes it", async () => {
    const prefix = join(tmp.path, `${name.replace(" ", "-")}-tampered`);
    const r = await install(shell, "tampered", prefix);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`confd install: checksum mismatch for ${basename(binary)}`);
    expect(r.stderr).toContain("nothing was installed");
    expect(existsSync(join(prefix, "bin", "confd"))).toBe(false);
    expect(leftovers()).toEqual([]);
  });

  test.skipIf(!available)("a failed download is named", async () => {
    const r = await install(shell, "missing", join(tmp.path, `${name.replace(" ", "-")}-missing`));
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`confd install: could not download ${server.url.origin}/missing/${basename(binary)}`);
    expect(leftovers()).toEqual([]);
  });
});

test.skipIf(!Bun.which("busybox"))("busybox alone: its own wget and sha256sum", async () => {
  const applets = [...BASE_TOOLS.filter((t) => t !== "sh"), "ash", "sh", "wget", "sha256sum"];
  const path = toolbox("busybox-only", applets, Bun.which("busybox")!);
  const prefix = join(tmp.path, "busybox-only-prefix");
  const r = await install([join(path, "sh")], "ok", prefix, { PATH: path });
  expect(r.stderr).toBe("");
  expect(r.code).toBe(0);
  expect(sha256(join(prefix, "bin", "confd"))).toBe(sha256(binary));
});

test("without curl or wget: says so", async () => {
  const path = toolbox("no-downloader", [...BASE_TOOLS, "sha256sum"]);
  const r = await install(["sh"], "ok", join(tmp.path, "no-downloader-prefix"), { PATH: path });
  expect(r.code).toBe(1);
  expect(r.stderr).toBe("confd install: neither curl nor wget is installed; install one of them and run this again\n");
});

describe("platform detection (uname and ldd answered by stand-ins)", () => {
  /** PATH with stand-in `uname` and `ldd` scripts in front of the real tools. */
  function fakePlatform(name: string, unameS: string, unameM: string, lddOutput: string): string {
    const dir = join(tmp.path, name);
    writeTree(dir, {
      uname: `#!/bin/sh\ncase "$1" in -s) echo ${unameS} ;; -m) echo ${unameM} ;; esac\n`,
      ldd: `#!/bin/sh\necho '${lddOutput}' >&2\nexit 1\n`,
    });
    Bun.spawnSync(["chmod", "+x", join(dir, "uname"), join(dir, "ldd")]);
    return `${dir}:${process.env.PATH}`;
  }

  test("an unsupported OS", async () => {
    const r = await install(["sh"], "ok", join(tmp.path, "sunos"), { PATH: fakePlatform("sunos", "SunOS", "i86pc", "") });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe("confd install: unsupported operating system: SunOS (builds exist for Linux, macOS and Windows)\n");
  });

  test("an unsupported CPU", async () => {
    const r = await install(["sh"], "ok", join(tmp.path, "riscv"), { PATH: fakePlatform("riscv", "Linux", "riscv64", "") });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe("confd install: unsupported CPU: riscv64 (builds exist for x86_64 and arm64)\n");
  });

  test("musl on arm64 asks for the linux-arm64-musl build", async () => {
    const r = await install(["sh"], "ok", join(tmp.path, "alpine-arm"), {
      PATH: fakePlatform("alpine-arm", "Linux", "aarch64", "musl libc (aarch64)\nVersion 1.2.5"),
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("has no build for linux-arm64-musl");
  });

  test.skipIf(hostTarget().name !== "linux-x64")("glibc on x86_64 picks the linux-x64 build", async () => {
    const r = await install(["sh"], "ok", join(tmp.path, "glibc-x64"), {
      PATH: fakePlatform("glibc-x64", "Linux", "x86_64", "ldd (Debian GLIBC 2.36-9+deb12u9) 2.36"),
    });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`Downloading confd-${VERSION}-linux-x64 from`);
  });
});
