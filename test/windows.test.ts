// Windows behaviour, tested on Linux by injecting the platform: commands through `cmd /d /s /c "…"`,
// paths with drive letters and backslashes kept as written, no mode or owner handling, the rename over
// a destination another process holds open retried (boundedly), and CRLF left as the template has it.
import { afterAll, afterEach, describe, expect, spyOn, test } from "bun:test";
import * as fs from "node:fs";
import { join } from "node:path";
import { shellArgv } from "../src/command.ts";
import { commandTemplate, loadResources, type ResourceSpec } from "../src/resource.ts";
import { renderCommand, syncFile, type SyncOptions } from "../src/sync.ts";
import type { LogRecord } from "../src/log.ts";
import { runConfd, tempDir, writeTree } from "./helpers.ts";

const tmp = tempDir("confd-windows-");
afterAll(tmp.cleanup);

describe("cmd.exe quoting", () => {
  /** The command line libuv gives CreateProcess with windowsVerbatimArguments: the arguments joined by spaces. */
  const verbatimLine = (argv: string[]) => argv.join(" ");

  /**
   * What cmd.exe runs after `/c`, by `cmd /?`: with /S, "if the first character is a quote character,
   * strip the leading character and remove the last quote character on the command line, preserving
   * any text after the last quote character".
   */
  function cmdRuns(line: string): string {
    const c = /\s\/c\s+/i.exec(line);
    if (!c) throw new Error(`no /c in ${line}`);
    let rest = line.slice(c.index + c[0].length);
    if (/\s\/s\s/i.test(line.slice(0, c.index + 1)) && rest.startsWith('"')) {
      const last = rest.lastIndexOf('"');
      rest = rest.slice(1, last) + rest.slice(last + 1);
    }
    return rest;
  }

  const commands = [
    "nginx -s reload",
    '"C:\\Program Files\\nginx\\nginx.exe" -t -c "C:\\conf d\\.nginx.conf.1a2b3c4d"',
    'findstr /c:"listen 80" C:\\nginx\\conf\\nginx.conf > NUL || exit 1',
    "net stop app & net start app",
    'echo "quoted at the end"',
    '"C:\\tools\\check.cmd"',
    "echo 100%% (done) ^& more",
  ];

  test.each(commands)("cmd runs exactly: %s", (command) => {
    const { argv, verbatim } = shellArgv(command, "win32");
    // Without verbatim arguments libuv would escape the inner quotes as \", which cmd does not understand.
    expect(verbatim).toBe(true);
    expect(argv.slice(0, 4)).toEqual(["cmd.exe", "/d", "/s", "/c"]);
    expect(cmdRuns(verbatimLine(argv))).toBe(command);
  });

  test("{{.src}} and {{.dest}} become Windows paths verbatim (no $ patterns, no slash changes)", async () => {
    const staged = "C:\\ProgramData\\app $&\\.app.conf.0a1b2c3d";
    const dest = "C:\\ProgramData\\app $&\\app.conf";
    const command = commandTemplate('"C:\\bin\\check.exe" {{.src}} --dest {{ .dest }}', "check_cmd", "app.toml")!;
    expect(await renderCommand(command, { src: staged, dest }, "check_cmd", { file: "app.toml" } as ResourceSpec)).toBe(`"C:\\bin\\check.exe" ${staged} --dest ${dest}`);
  });
});

test("a resource's dest with a drive letter and backslashes is kept as written", () => {
  const dir = join(tmp.path, "resource");
  writeTree(dir, {
    "templates/app.tmpl": "x\n",
    "conf.d/app.toml": "[template]\nsrc = 'app.tmpl'\ndest = 'C:\\ProgramData\\app\\app.conf'\nkeys = ['/app']\n",
  });
  const loaded = loadResources({ confdir: dir, prefix: "" });
  expect(loaded.errors).toEqual([]);
  expect(loaded.resources[0]!.dest).toBe("C:\\ProgramData\\app\\app.conf");
});

describe("syncing on Windows", () => {
  const realRename = fs.renameSync;
  let spies: { mockRestore(): void }[] = [];
  afterEach(() => {
    for (const spy of spies) spy.mockRestore();
    spies = [];
  });

  /** The resource loaded from a confdir (mode and owner set, which Windows ignores) and sync options for `platform`. */
  function setup(name: string, platform: NodeJS.Platform) {
    const dir = join(tmp.path, name);
    const dest = join(dir, "out", "app.conf");
    writeTree(dir, {
      "templates/app.tmpl": "unused\n",
      "conf.d/app.toml": `[template]\nsrc = "app.tmpl"\ndest = ${JSON.stringify(dest)}\nkeys = ["/app"]\nmode = "0600"\nuid = 4321\ngid = 4321\n`,
      "out/app.conf": "old\n",
    });
    const spec = loadResources({ confdir: dir, prefix: "" }).resources[0]!;
    const logs: LogRecord[] = [];
    const options: SyncOptions = { noop: false, syncOnly: false, keepStageFile: false, log: (r) => logs.push(r), report: () => {}, platform };
    const stageFiles = () => fs.readdirSync(join(dir, "out")).filter((f) => f.startsWith("."));
    return { spec, dest, options, logs, stageFiles };
  }

  /** renameSync fails with these codes, in turn, then works. */
  function failRenames(codes: string[]): () => number {
    let calls = 0;
    const spy = spyOn(fs, "renameSync").mockImplementation((from, to) => {
      const code = codes[calls++];
      if (code) throw Object.assign(new Error(`${code}: rename`), { code });
      return realRename(from, to);
    });
    spies.push(spy);
    return () => calls;
  }

  /** The pauses between rename attempts, recorded instead of slept. */
  function recordPauses(): number[] {
    const pauses: number[] = [];
    spies.push(spyOn(Bun, "sleepSync").mockImplementation((ms: number) => void pauses.push(ms)));
    return pauses;
  }

  test("the destination held open (EBUSY, EPERM, EACCES) is replaced once it is let go", async () => {
    const s = setup("retry", "win32");
    const calls = failRenames(["EBUSY", "EPERM", "EACCES"]);
    const pauses = recordPauses();
    const outcome = await syncFile(s.spec, "new\r\n", s.options);
    expect(outcome).toEqual({ changed: true, outOfSync: true });
    expect(calls()).toBe(4);
    expect(pauses).toEqual([10, 20, 40]);
    expect(fs.readFileSync(s.dest, "utf8")).toBe("new\r\n");
    expect(s.stageFiles()).toEqual([]);
  });

  test("held open for good: the sync fails after a bounded wait, destination untouched, stage file removed", async () => {
    const s = setup("held", "win32");
    const calls = failRenames(Array(20).fill("EBUSY"));
    const pauses = recordPauses();
    const error = await syncFile(s.spec, "new\n", s.options).then(() => undefined, (e: unknown) => e);
    expect(String(error)).toContain("cannot replace destination: EBUSY (9 attempts)");
    expect(calls()).toBe(9);
    // 8 pauses, 2.27 s in all.
    expect(pauses).toEqual([10, 20, 40, 80, 160, 320, 640, 1000]);
    expect(fs.readFileSync(s.dest, "utf8")).toBe("old\n");
    expect(s.stageFiles()).toEqual([]);
  });

  test("other errors are not retried", async () => {
    const s = setup("enospc", "win32");
    const calls = failRenames(["ENOSPC"]);
    const error = await syncFile(s.spec, "new\n", s.options).then(() => undefined, (e: unknown) => e);
    expect(String(error)).toContain("cannot replace destination: ENOSPC");
    expect(String(error)).not.toContain("attempts");
    expect(calls()).toBe(1);
  });

  test("on Linux, EBUSY still means a bind-mounted file, rewritten in place at once", async () => {
    const s = setup("linux-ebusy", "linux");
    const calls = failRenames(["EBUSY"]);
    // Owners are set on open descriptors: recorded by the file's inode, not applied (that needs root).
    const chowned: { ino: number; uid: number; gid: number }[] = [];
    spies.push(spyOn(fs, "fchownSync").mockImplementation((fd, uid, gid) => void chowned.push({ ino: fs.fstatSync(fd).ino, uid, gid })));
    expect(await syncFile(s.spec, "new\n", s.options)).toEqual({ changed: true, outOfSync: true });
    expect(calls()).toBe(1);
    expect(fs.readFileSync(s.dest, "utf8")).toBe("new\n");
    expect(chowned).toContainEqual({ ino: fs.statSync(s.dest).ino, uid: 4321, gid: 4321 });
  });

  test("no mode or owner: nothing is chmod-ed or chown-ed, and a mode difference alone is no change", async () => {
    const s = setup("mode", "win32");
    fs.chmodSync(s.dest, 0o644);
    const calls = ["chmodSync", "fchmodSync", "chownSync", "fchownSync"] as const;
    const changers = calls.map((name) => spyOn(fs, name));
    spies.push(...changers);
    expect(await syncFile(s.spec, "old\n", s.options)).toEqual({ changed: false, outOfSync: false });
    expect(await syncFile(s.spec, "new\n", s.options)).toEqual({ changed: true, outOfSync: true });
    for (const changer of changers) expect(changer).not.toHaveBeenCalled();
    expect(s.logs.map((r) => r.message).join("\n")).not.toContain("should be");
  });

  test("CRLF is written as given, byte for byte", async () => {
    const s = setup("crlf-sync", "win32");
    await syncFile(s.spec, "a\r\nb\nc\r\n", s.options);
    expect(fs.readFileSync(s.dest).toString("latin1")).toBe("a\r\nb\nc\r\n");
  });
});

test("end to end: a CRLF template renders CRLF, an LF template LF", async () => {
  const dir = join(tmp.path, "crlf-e2e");
  writeTree(dir, {
    "data.yaml": "app:\n  port: 8080\n",
    "templates/crlf.hbs": 'port={{getv "/app/port"}}\r\nend\r\n',
    "templates/lf.hbs": 'port={{getv "/app/port"}}\nend\n',
    "conf.d/crlf.toml": `[template]\nsrc = "crlf.hbs"\ndest = ${JSON.stringify(join(dir, "out", "crlf.conf"))}\nkeys = ["/app"]\n`,
    "conf.d/lf.toml": `[template]\nsrc = "lf.hbs"\ndest = ${JSON.stringify(join(dir, "out", "lf.conf"))}\nkeys = ["/app"]\n`,
    "out/.keep": "",
  });
  const r = await runConfd(["-onetime", "-backend", "file", "-file", join(dir, "data.yaml"), "-confdir", dir, "-config-file", join(dir, "none")]);
  expect(r.code).toBe(0);
  expect(fs.readFileSync(join(dir, "out", "crlf.conf"), "latin1")).toBe("port=8080\r\nend\r\n");
  expect(fs.readFileSync(join(dir, "out", "lf.conf"), "latin1")).toBe("port=8080\nend\n");
});
