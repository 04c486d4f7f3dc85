// Hostile but realistic input, end to end (and again on the compiled binary): a disk that fills up part way,
// bytes that are not UTF-8 in templates and store values, a destination that is a directory. What must hold:
// the destination is the old file or the complete new one, byte for byte, and the error names where.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Etcd3 } from "etcd3";
import Redis from "ioredis";
import { startEtcd, type EtcdServer } from "./etcd-server.ts";
import { baseEnv, CONFD_COMMAND, runConfd, tempDir, writeTree } from "./helpers.ts";
import { startRedis, type RedisServer } from "./redis-server.ts";

const tmp = tempDir();
afterAll(tmp.cleanup);
let counter = 0;

/** Mounting a small tmpfs takes a private mount namespace: root and unshare (CI runs as root). */
const canMount = process.platform === "linux" && process.getuid?.() === 0 && Bun.which("unshare") !== null;

/** A confdir with one Go-template resource "app" reading /app from data.yaml into `dest`. */
function confdir(dest: string, template: string, data: string, resource = ""): string {
  const dir = join(tmp.path, `case${++counter}`);
  writeTree(dir, {
    "templates/app.tmpl": template,
    "data.yaml": data,
    "conf.d/app.toml": `[template]\nsrc = "app.tmpl"\ndest = ${JSON.stringify(dest)}\nkeys = ["/app"]\n${resource}`,
  });
  return dir;
}

const fileArgs = (dir: string) => ["-onetime", "-backend", "file", "-file", join(dir, "data.yaml"), "-confdir", dir, "-config-file", join(dir, "none.toml")];

/**
 * Runs confd inside a private mount namespace after `setup` (sh, with $d = the case directory) has mounted
 * what it needs there; `after` (sh) copies what the test inspects out of the mounts before they vanish.
 */
async function runMounted(dir: string, setup: string, after: string, args: string[]) {
  const script = `set -e\nd=$1; shift\n${setup}\nset +e\n"$@"\ncode=$?\n${after}\nexit $code`;
  const child = Bun.spawn(["unshare", "--mount", "sh", "-c", script, "sh", dir, ...CONFD_COMMAND, ...args], { env: baseEnv(), stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, code] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
  return { code, stdout, stderr };
}

const errorLines = (stderr: string) => stderr.split("\n").filter((l) => / (ERROR|FATAL) /.test(l));

describe.skipIf(!canMount)("a disk that fills up", () => {
  // 100 kB to render onto a 64 KiB filesystem that the old file and a filler already use part of.
  const big = "x".repeat(100_000);

  test("while staging: the old file stays, no stage file is left, one error names the destination, exit 1", async () => {
    const out = join(tmp.path, `full${++counter}`);
    mkdirSync(out);
    const dest = join(out, "app.conf");
    const dir = confdir(dest, '{{getv "/app/big"}}\n', `app:\n  big: ${big}\n`, 'reload_cmd = "touch reloaded"\n');
    const r = await runMounted(
      dir,
      `mount -t tmpfs -o size=64k confd-test-full ${out}\nprintf 'old\\n' > ${out}/app.conf\nhead -c 16384 /dev/zero > ${out}/filler`,
      `cp ${out}/app.conf $d/after.conf; ls -A ${out} > $d/listing`,
      fileArgs(dir),
    );
    expect(r.code).toBe(1);
    expect(readFileSync(join(dir, "after.conf"), "utf8")).toBe("old\n");
    expect(readFileSync(join(dir, "listing"), "utf8")).toBe("app.conf\nfiller\n");
    expect(r.stderr).not.toContain("has been updated");
    expect(errorLines(r.stderr)).toEqual([expect.stringContaining(`ERROR resource app: ${dest}: cannot write the new file: ENOSPC; destination left unchanged`)]);
    expect(existsSync(join(dir, "reloaded"))).toBe(false);
  });

  /**
   * confd on a destination that is a file of a 64 KiB tmpfs (holding `old` and `filler` bytes of zeros),
   * bind-mounted over dest, so that rename(2) onto it is EBUSY; after.conf is that file afterwards.
   */
  async function bindMounted(template: string, data: string, old: string, filler: number) {
    const small = join(tmp.path, `small${++counter}`);
    const out = join(tmp.path, `bound${counter}`);
    mkdirSync(small);
    mkdirSync(out);
    const dest = join(out, "app.conf");
    writeFileSync(dest, "");
    const dir = confdir(dest, template, data);
    writeFileSync(join(dir, "old.conf"), old);
    const r = await runMounted(
      dir,
      `mount -t tmpfs -o size=64k confd-test-full ${small}\ncp $d/old.conf ${small}/real.conf\nhead -c ${filler} /dev/zero > ${small}/filler\nmount --bind ${small}/real.conf ${dest}`,
      `cp ${small}/real.conf $d/after.conf`,
      fileArgs(dir),
    );
    return { ...r, dest, after: readFileSync(join(dir, "after.conf"), "utf8") };
  }

  test("a bind-mounted destination rewritten in place: the old bytes are put back, exit 1", async () => {
    const old = "old content\n".repeat(100);
    const { code, stderr, dest, after } = await bindMounted('{{getv "/app/big"}}\n', `app:\n  big: ${big}\n`, old, 32768);
    expect(code).toBe(1);
    expect(after).toBe(old);
    expect(errorLines(stderr)).toEqual([
      expect.stringContaining(`ERROR resource app: ${dest}: cannot rewrite bind-mounted destination in place: ENOSPC; old content put back`),
    ]);
  });

  test("a bind-mounted destination with room: rewritten in place, complete", async () => {
    const { code, stderr, after } = await bindMounted('v={{getv "/app/v"}}\n', "app:\n  v: new\n", "a much longer old line than the new one\n", 0);
    expect(stderr).toContain("has been updated");
    expect(code).toBe(0);
    expect(after).toBe("v=new\n");
  });
});

/** Every byte from 0x80 to 0xFF, alone (none of them is UTF-8 by itself), around valid UTF-8. */
const HIGH_BYTES = Buffer.concat([Buffer.from("é ≠ 😀 |"), Buffer.from(Array.from({ length: 128 }, (_, i) => 0x80 + i)), Buffer.from("|\n")]);

describe("bytes that are not UTF-8 pass through unchanged", () => {
  test("in a template (Go and handlebars), and the destination compares by bytes", async () => {
    for (const [name, engine] of [["app.tmpl", "go"], ["app.hbs", "handlebars"]] as const) {
      const dest = join(tmp.path, `bytes${++counter}.conf`);
      const dir = confdir(dest, "", "app:\n  v: 1\n");
      writeFileSync(join(dir, "templates", name), Buffer.concat([HIGH_BYTES, Buffer.from(engine === "go" ? '{{getv "/app/v"}}\n' : '{{getv "/app/v"}}\n')]));
      writeFileSync(join(dir, "conf.d", "app.toml"), `[template]\nsrc = "${name}"\ndest = ${JSON.stringify(dest)}\nkeys = ["/app"]\n`);
      const first = await runConfd(fileArgs(dir));
      expect(first.stderr).toContain("has been updated");
      expect(readFileSync(dest)).toEqual(Buffer.concat([HIGH_BYTES, Buffer.from("1\n")]));
      // Compared as bytes: the second run finds the file in sync.
      const second = await runConfd([...fileArgs(dir), "-log-level", "debug"]);
      expect(second.stderr).toContain(`Target config ${dest} in sync`);
    }
  });

  test("in an environment variable (env backend)", async () => {
    const dest = join(tmp.path, `bytes${++counter}.conf`);
    const dir = confdir(dest, '{{getv "/app/v"}}|{{getenv "APP_V"}}\n', "");
    // Bun.spawn takes the environment as strings: a shell sets the bytes, with no JavaScript string between.
    const value = HIGH_BYTES.subarray(0, HIGH_BYTES.length - 1);
    writeFileSync(join(dir, "value"), value);
    const run = Bun.spawn(["sh", "-c", 'APP_V="$(cat "$1/value")"; export APP_V; shift; exec "$@"', "sh", dir, ...CONFD_COMMAND, "-onetime", "-backend", "env", "-confdir", dir, "-config-file", join(dir, "none.toml")], {
      env: baseEnv(),
      stdout: "pipe",
      stderr: "pipe",
    });
    const stderr = await new Response(run.stderr).text();
    expect(await run.exited).toBe(0);
    expect(stderr).toContain("has been updated");
    expect(readFileSync(dest)).toEqual(Buffer.concat([value, Buffer.from("|"), value, Buffer.from("\n")]));
  });

  test("in a YAML data file they are refused, as confd does, naming the file and line", async () => {
    const dest = join(tmp.path, `bytes${++counter}.conf`);
    const dir = confdir(dest, '{{getv "/app/v"}}\n', "");
    writeFileSync(join(dir, "data.yaml"), Buffer.concat([Buffer.from("app:\n  v: caf"), Buffer.of(0xe9), Buffer.from("\n")]));
    const r = await runConfd(fileArgs(dir));
    expect(r.code).toBe(1);
    expect(errorLines(r.stderr)).toEqual([expect.stringContaining(`${join(dir, "data.yaml")}:2:9: invalid YAML: byte 0xE9 is not UTF-8`)]);
    expect(existsSync(dest)).toBe(false);
  });

  describe("in store values (real etcd and redis)", () => {
    let etcd: EtcdServer;
    let redis: RedisServer;
    beforeAll(async () => {
      [etcd, redis] = await Promise.all([startEtcd(), startRedis()]);
    });
    afterAll(async () => {
      await Promise.all([etcd?.stop(), redis?.stop()]);
    });

    const stores = {
      etcd: {
        args: () => ["-backend", "etcdv3", "-node", etcd.endpoint],
        put: async (key: string, value: Buffer) => {
          const client = new Etcd3({ hosts: etcd.endpoint });
          await client.put(key).value(value);
          client.close();
        },
      },
      redis: {
        args: () => ["-backend", "redis", "-node", `127.0.0.1:${redis.port}`],
        put: async (key: string, value: Buffer) => {
          const client = new Redis({ host: "127.0.0.1", port: redis.port });
          await client.set(key, value);
          await client.hset("/app/h", "f", value);
          client.disconnect();
        },
      },
    };

    for (const [name, store] of Object.entries(stores)) {
      test(name, async () => {
        await store.put("/app/v", HIGH_BYTES);
        const dest = join(tmp.path, `bytes${++counter}.conf`);
        const hash = name === "redis" ? '{{getv "/app/h/f"}}' : "";
        const dir = confdir(dest, `{{getv "/app/v"}}${hash}{{range gets "/app/*"}}{{len .Value}} {{end}}\n`, "");
        const r = await runConfd(["-onetime", ...store.args(), "-confdir", dir, "-config-file", join(dir, "none.toml")]);
        expect(r.stderr).toContain("has been updated");
        expect(r.code).toBe(0);
        // len is Go's: bytes, whatever they are.
        const expected = Buffer.concat([HIGH_BYTES, name === "redis" ? HIGH_BYTES : Buffer.alloc(0), Buffer.from(`${HIGH_BYTES.length} \n`)]);
        expect(readFileSync(dest)).toEqual(expected);
        expect(readdirSync(tmp.path).filter((f) => f.startsWith(".bytes"))).toEqual([]);
      });
    }
  });
});

/**
 * Renders a Go template from the env backend, each variable set from its bytes by a shell (Bun.spawn takes
 * the environment as strings); returns what was written.
 */
async function renderFromEnv(template: string, variables: Record<string, Buffer>): Promise<Buffer> {
  const dest = join(tmp.path, `env${++counter}.conf`);
  const dir = confdir(dest, template, "");
  let exports = "";
  for (const [name, value] of Object.entries(variables)) {
    writeFileSync(join(dir, name), value);
    exports += `${name}="$(cat "$1/${name}")"; export ${name}; `;
  }
  const args = ["-onetime", "-backend", "env", "-confdir", dir, "-config-file", join(dir, "none.toml")];
  const run = Bun.spawn(["sh", "-c", `${exports}shift; exec "$@"`, "sh", dir, ...CONFD_COMMAND, ...args], { env: baseEnv(), stdout: "pipe", stderr: "pipe" });
  const stderr = await new Response(run.stderr).text();
  expect(stderr).toContain("has been updated");
  expect(await run.exited).toBe(0);
  return readFileSync(dest);
}

/** Bytes written as a string of characters U+0000 to U+00FF, one byte each. */
const bytes = (s: string): Buffer => Buffer.from(s, "latin1");

// Each expected output is what confd master writes for the same template and variables.
describe("functions on bytes that are not UTF-8 give confd's bytes", () => {
  test("js, html and urlquery: Go's escapers copy such a byte (js reads it as U+FFFD, which is printable)", async () => {
    const value = bytes("a\xe9b\xff\x80c<\xc3");
    const out = await renderFromEnv('{{js (getv "/app/v")}}|{{html (getv "/app/v")}}|{{urlquery (getv "/app/v")}}\n', { APP_V: value });
    expect(out).toEqual(bytes("a\xe9b\xff\x80c\\u003C\xc3|a\xe9b\xff\x80c&lt;\xc3|a%E9b%FF%80c%3C%C3\n"));
  });

  test("json: encoding/json makes each such byte, and each lone surrogate, U+FFFD", async () => {
    const out = await renderFromEnv('{{with json (getv "/app/j")}}{{.k}}|{{.s}}{{end}}\n', { APP_J: bytes('{"k":"x\xe9\xffy","s":"a\\ud83db"}') });
    expect(out).toEqual(bytes("x\xef\xbf\xbd\xef\xbf\xbdy|a\xef\xbf\xbdb\n"));
  });

  test("lt, getvs and a map's order: strings compare by bytes, such a byte among them", async () => {
    const variables = { APP_A: bytes("\xe9"), APP_B: bytes("\xf0\x9f\x98\x80"), APP_C: bytes("\xff"), APP_D: bytes("\xef\xbf\xbf"), APP_E: bytes("z") };
    const template = '{{lt (getv "/app/a") (getv "/app/b")}} {{range getvs "/app/*"}}{{.}},{{end}} {{map (getv "/app/a") 1 (getv "/app/b") 2 (getv "/app/d") 3}}\n';
    const out = await renderFromEnv(template, variables);
    expect(out).toEqual(bytes("true z,\xe9,\xef\xbf\xbf,\xf0\x9f\x98\x80,\xff, map[\xe9:1 \xef\xbf\xbf:3 \xf0\x9f\x98\x80:2]\n"));
  });
});

test("a destination that is a directory is named as such", async () => {
  const dest = join(tmp.path, `dir${++counter}`);
  mkdirSync(dest);
  const dir = confdir(dest, "x\n", "app:\n  v: 1\n");
  const r = await runConfd(fileArgs(dir));
  expect(r.code).toBe(1);
  expect(errorLines(r.stderr)).toEqual([expect.stringMatching(new RegExp(`ERROR resource app: ${dest}: destination is a directory$`))]);
});

test("deeply nested JSON: too deep to print is said to be about the value; past Go's 10,000 levels json refuses it", async () => {
  const dest = join(tmp.path, `deep${++counter}.conf`);
  const nested = (levels: number) => '{"a":'.repeat(levels) + "1" + "}".repeat(levels);
  const dir = confdir(dest, '{{json (getv "/app/v")}}\n', `app:\n  v: '${nested(9_000)}'\n`);
  const printing = await runConfd(fileArgs(dir));
  expect(printing.code).toBe(1);
  expect(errorLines(printing.stderr)).toEqual([expect.stringMatching(/app\.tmpl:1:2: executing "app\.tmpl" at <\{\{json \(getv "\/app\/v"\)\}\}>: value nested too deeply to print$/)]);
  writeFileSync(join(dir, "data.yaml"), `app:\n  v: '${nested(10_001)}'\n`);
  const parsing = await runConfd(fileArgs(dir));
  expect(parsing.code).toBe(1);
  expect(errorLines(parsing.stderr)).toEqual([expect.stringMatching(/error calling json: invalid character at input byte 50000 exceeded max depth$/)]);
  expect(existsSync(dest)).toBe(false);
});

test("-noop on a 100,000-line file: a diff capped at 1 MiB with a note, in bounded memory, nothing written", async () => {
  const dest = join(tmp.path, `big${++counter}.conf`);
  const line = (i: number, changed: boolean) => `server backend-${i}.example.internal:${changed ? 9090 : 8080} weight=${i % 7}`;
  const old = Array.from({ length: 100_000 }, (_, i) => line(i, false)).join("\n") + "\n";
  const rendered = Array.from({ length: 100_000 }, (_, i) => line(i, i % 10 === 0)).join("\n") + "\n";
  const dir = confdir(dest, rendered, "app:\n  v: 1\n");
  writeFileSync(dest, old);
  // Peak RSS through /usr/bin/time: a child of this process starts with this process's peak as its own.
  const rss = join(dir, "maxrss");
  const child = Bun.spawn(["/usr/bin/time", "-f", "%M", "-o", rss, ...CONFD_COMMAND, ...fileArgs(dir), "-noop"], { env: baseEnv(), stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, code] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
  expect(stderr).toContain("Noop mode enabled");
  expect(code).toBe(0);
  expect(readFileSync(dest, "utf8")).toBe(old);
  expect(stdout.startsWith(`--- ${dest}\n+++ ${dest} (rendered)\n@@ -1,4 +1,4 @@\n-${line(0, false)}\n+${line(0, true)}\n`)).toBe(true);
  expect(stdout).toMatch(/\n\.\.\. diff truncated: \d+ more lines not shown\n$/);
  expect(Buffer.byteLength(stdout)).toBeLessThanOrEqual(1 << 20);
  // Memory, not time: the quadratic diff this replaced needed gigabytes here.
  expect(Number(readFileSync(rss, "utf8").trim()) * 1024).toBeLessThan(200 * 1024 * 1024);
});
