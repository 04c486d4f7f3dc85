// The container image without a container engine: the root filesystem the Dockerfile's glibc image
// gives the binary (the binary as /confd, exactly the libraries ldd lists, passwd and group with the
// non-root user, CA certificates, an empty /tmp) built into a directory, and confd run inside it with
// chroot as that user, in its own mount and PID namespaces with a fresh /proc (as a container has).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, chownSync, copyFileSync, mkdirSync, readFileSync, realpathSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { VERSION } from "../scripts/build.ts";
import { binaryFor } from "./binary.ts";
import { ROOT, tempDir, writeTree } from "./helpers.ts";

/** The distroless images' non-root user, which the Dockerfile runs confd as. */
const NONROOT = 65532;
const canChroot = process.platform === "linux" && process.getuid?.() === 0 && Bun.which("unshare") !== null && Bun.which("ldd") !== null;

const tmp = tempDir("confd-rootfs-");
afterAll(tmp.cleanup);
let root: string;

/** The shared libraries `ldd` says the binary loads, the dynamic loader included. */
function sharedLibraries(binary: string): string[] {
  const out = Bun.spawnSync(["ldd", binary], { stdout: "pipe" }).stdout.toString();
  return [...out.matchAll(/(?:=>\s*)?(\/\S+)\s+\(0x[0-9a-f]+\)/g)].map((m) => m[1]!);
}

function buildRootfs(binary: string): string {
  const dir = join(tmp.path, "rootfs");
  const copy = (from: string, to: string, mode: number) => {
    mkdirSync(dirname(join(dir, to)), { recursive: true });
    copyFileSync(realpathSync(from), join(dir, to));
    chmodSync(join(dir, to), mode);
  };
  copy(binary, "/confd", 0o755);
  for (const lib of sharedLibraries(binary)) copy(lib, lib, 0o755);
  copy("/etc/ssl/certs/ca-certificates.crt", "/etc/ssl/certs/ca-certificates.crt", 0o644);
  writeTree(dir, {
    "etc/passwd": `root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:${NONROOT}:${NONROOT}:nonroot:/home/nonroot:/sbin/nologin\n`,
    "etc/group": `root:x:0:\nnonroot:x:${NONROOT}:\n`,
    // What a user mounts: the confd configuration, and a directory of rendered files confd may write.
    "etc/confd/conf.d/app.toml": '[template]\nsrc = "app.conf.hbs"\ndest = "/out/app.conf"\nkeys = ["/app"]\nmode = "0640"\n',
    "etc/confd/templates/app.conf.hbs": 'port={{getv "/app/port"}}\nhost={{getv "/app/host"}}\n',
    "etc/confd/data.yaml": "app:\n  port: 8080\n  host: db.internal\n",
  });
  for (const empty of ["proc", "tmp", "out", "home/nonroot"]) mkdirSync(join(dir, empty), { recursive: true });
  chmodSync(join(dir, "tmp"), 0o1777);
  chownSync(join(dir, "out"), NONROOT, NONROOT);
  chownSync(join(dir, "home/nonroot"), NONROOT, NONROOT);
  return dir;
}

/** Runs /confd in the root filesystem as the non-root user, with a container's minimal environment. */
async function inContainer(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = Bun.spawn(
    ["unshare", "--mount", "--pid", "--fork", `--mount-proc=${join(root, "proc")}`, "chroot", `--userspec=${NONROOT}:${NONROOT}`, root, "/confd", ...args],
    { env: { PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", HOME: "/home/nonroot" }, stdout: "pipe", stderr: "pipe" },
  );
  const [stdout, stderr, code] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
  return { code, stdout, stderr };
}

describe.skipIf(!canChroot)("the glibc image's root filesystem (chroot, non-root)", () => {
  beforeAll(async () => {
    root = buildRootfs(await binaryFor());
  });

  test("holds nothing but the binary, its libraries, passwd, group and CA certificates", () => {
    const files = Bun.spawnSync(["find", root, "-type", "f"], { stdout: "pipe" }).stdout.toString().trim().split("\n").map((f) => f.slice(root.length)).sort();
    const libraries = sharedLibraries(join(root, "confd"));
    expect(libraries.length).toBeGreaterThan(0);
    expect(files).toEqual(
      ["/confd", ...libraries, "/etc/group", "/etc/passwd", "/etc/ssl/certs/ca-certificates.crt", "/etc/confd/conf.d/app.toml", "/etc/confd/templates/app.conf.hbs", "/etc/confd/data.yaml"].sort(),
    );
  });

  test("--version", async () => {
    const r = await inContainer(["--version"]);
    expect(r.stderr).toBe("");
    expect(r.stdout).toStartWith(`confd ${VERSION} (Git SHA: `);
    expect(r.code).toBe(0);
  });

  test("--onetime renders as the non-root user", async () => {
    const r = await inContainer(["-onetime", "-backend", "file", "-file", "/etc/confd/data.yaml", "-confdir", "/etc/confd", "-config-file", "/etc/confd/confd.toml"]);
    expect(r.stderr).not.toContain("ERROR");
    expect(r.code).toBe(0);
    expect(readFileSync(join(root, "out", "app.conf"), "utf8")).toBe("port=8080\nhost=db.internal\n");
    const written = statSync(join(root, "out", "app.conf"));
    expect([written.uid, written.gid, written.mode & 0o777]).toEqual([NONROOT, NONROOT, 0o640]);
  });
});

test("the Dockerfile runs /confd as the same non-root user, with nothing else in the glibc image", () => {
  const dockerfile = readFileSync(join(ROOT, "Dockerfile"), "utf8");
  expect(dockerfile).toContain('ENTRYPOINT ["/confd"]');
  expect(dockerfile).toMatch(new RegExp(`^USER ${NONROOT}:${NONROOT}$`, "m"));
  expect(dockerfile).toMatch(/^FROM gcr\.io\/distroless\/cc-debian12(:\S+)? AS glibc$/m);
});
