// End to end through the CLI with the file backend: output guards (allow_empty, max_change, format) and
// backup with automatic rollback (backup, health_cmd), as a user sees them: the destination's bytes and
// mode, the .confd-prev and .confd-rejected files beside it, which commands ran, the exit code and the log.
// Two parts call the modules directly: the rollback on the Windows path (the platform injected, renames
// failing as over a file held open), and the scan that places JSON errors, checked against JSON.parse.
import { afterAll, describe, expect, spyOn, test } from "bun:test";
import * as fs from "node:fs";
import { chmodSync, existsSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { jsonSyntaxError } from "../src/guards.ts";
import { loadResources } from "../src/resource.ts";
import { syncFile } from "../src/sync.ts";
import { runConfd, tempDir, writeTree, type RunResult } from "./helpers.ts";

const tmp = tempDir();
afterAll(tmp.cleanup);
let counter = 0;

interface Setup {
  dir: string;
  dest: string;
  toml: string;
  /** A file that each run of a command made with `record` appends a line to. */
  ran: (name: string) => string[];
  record: (name: string, command?: string) => string;
  run: (...extra: string[]) => Promise<RunResult>;
}

/** A confdir with one resource "app" rendering `template` from data.yaml into out/app.conf. */
function setup(options: { template?: string; data?: string; resource?: (s: Pick<Setup, "record">) => string } = {}): Setup {
  const dir = join(tmp.path, `case${++counter}`);
  const dest = join(dir, "out", "app.conf");
  const toml = join(dir, "conf.d", "app.toml");
  const log = (name: string) => join(dir, `${name}.log`);
  // Appends the destination's content (or the command's name) to <name>.log, then runs `command`.
  const record = (name: string, command = "true") => `cat {{.dest}} >> ${log(name)}; echo --- >> ${log(name)}; ${command}`;
  writeTree(dir, {
    "templates/app.conf.hbs": options.template ?? 'port={{getv "/app/port"}}\n',
    "data.yaml": options.data ?? "app:\n  port: 8080\n",
    "conf.d/app.toml": ["[template]", 'src = "app.conf.hbs"', `dest = ${JSON.stringify(dest)}`, 'keys = ["/app"]', options.resource?.({ record }) ?? ""].join("\n"),
    "out/.keep": "",
  });
  const ran = (name: string) => (existsSync(log(name)) ? readFileSync(log(name), "utf8").split("---\n").slice(0, -1) : []);
  const run = (...extra: string[]) =>
    runConfd(["-onetime", "-backend", "file", "-file", join(dir, "data.yaml"), "-confdir", dir, "-config-file", join(dir, "none.toml"), ...extra]);
  return { dir, dest, toml, ran, record, run };
}

/** A destination in place before the run: bytes that are not UTF-8, and a mode of its own. */
const OLD = Buffer.from("port=80\nname=caf\xe9\n", "latin1");
function oldDestination(s: Setup, content: Buffer = OLD, mode = 0o640): void {
  writeFileSync(s.dest, content);
  chmodSync(s.dest, mode);
}

const errorLines = (r: RunResult) => r.stderr.split("\n").filter((l) => / ERROR /.test(l));
const mode = (path: string) => statSync(path).mode & 0o7777;
const outFiles = (s: Setup) => readdirSync(join(s.dir, "out")).sort();

describe("backup and rollback", () => {
  test("a reload that fails: the previous file is back byte for byte with its mode, reload ran again, one error line", async () => {
    const s = setup({ data: "app:\n  port: 9090\n", resource: ({ record }) => `backup = true\nmode = "0600"\nreload_cmd = "${record("reload", "! grep -q 9090 {{.dest}} || { echo bad port; exit 1; }")}"` });
    oldDestination(s);
    const r = await s.run();
    expect(r.code).toBe(1);
    expect(readFileSync(s.dest)).toEqual(OLD);
    expect(mode(s.dest)).toBe(0o640);
    // The first reload saw the new file, the second the previous one put back.
    expect(s.ran("reload")).toEqual(["port=9090\n", OLD.toString("utf8")]);
    expect(errorLines(r)).toEqual([
      expect.stringMatching(
        new RegExp(`ERROR resource app: ${RegExp.escape(s.toml)}: reload_cmd exited with status 1: bad port; rolled back ${RegExp.escape(s.dest)} to the previous version and reloaded again$`),
      ),
    ]);
    expect(r.stderr).not.toContain("has been updated");
    expect(readFileSync(`${s.dest}.confd-prev`)).toEqual(OLD);
    expect(mode(`${s.dest}.confd-prev`)).toBe(0o640);
    expect(readFileSync(`${s.dest}.confd-rejected`, "utf8")).toBe("port=9090\n");
    expect(mode(`${s.dest}.confd-rejected`)).toBe(0o600);
    // No stage file left behind.
    expect(outFiles(s)).toEqual([".keep", "app.conf", "app.conf.confd-prev", "app.conf.confd-rejected"]);
  });

  test("a failing health_cmd, after its retries: rolled back, reload ran again, one error line", async () => {
    const s = setup({
      data: "app:\n  port: 9090\n",
      resource: ({ record }) =>
        `backup = true\nreload_cmd = "${record("reload")}"\nhealth_cmd = "${record("health", "echo unhealthy; exit 2")}"\nhealth_retries = 1\nhealth_timeout = "5s"`,
    });
    oldDestination(s);
    const r = await s.run();
    expect(r.code).toBe(1);
    expect(readFileSync(s.dest)).toEqual(OLD);
    expect(mode(s.dest)).toBe(0o640);
    expect(s.ran("health")).toEqual(["port=9090\n", "port=9090\n"]);
    expect(s.ran("reload")).toEqual(["port=9090\n", OLD.toString("utf8")]);
    expect(errorLines(r)).toEqual([
      expect.stringMatching(/ERROR resource app: .*app\.toml: health_cmd exited with status 2 \(2 attempts\): unhealthy; rolled back .*app\.conf to the previous version and reloaded again$/),
    ]);
    expect(readFileSync(`${s.dest}.confd-rejected`, "utf8")).toBe("port=9090\n");
  });

  test("a health_cmd that passes on its second run: the new file stays, and the previous one is kept as .confd-prev", async () => {
    const flag = join(tmp.path, `up-${counter + 1}`);
    const s = setup({ resource: ({ record }) => `backup = true\nhealth_cmd = "${record("health", `test -e ${flag} || { touch ${flag}; exit 1; }`)}"` });
    oldDestination(s);
    const r = await s.run();
    expect(errorLines(r)).toEqual([]);
    expect(r.code).toBe(0);
    expect(readFileSync(s.dest, "utf8")).toBe("port=8080\n");
    expect(s.ran("health")).toHaveLength(2);
    expect(readFileSync(`${s.dest}.confd-prev`)).toEqual(OLD);
    expect(mode(`${s.dest}.confd-prev`)).toBe(0o640);
    expect(existsSync(`${s.dest}.confd-rejected`)).toBe(false);
  });

  test("the reload after the rollback fails too: both in the one error line", async () => {
    const s = setup({ resource: () => `backup = true\nreload_cmd = "echo down; exit 1"` });
    oldDestination(s);
    const r = await s.run();
    expect(r.code).toBe(1);
    expect(readFileSync(s.dest)).toEqual(OLD);
    expect(errorLines(r)).toEqual([
      expect.stringMatching(/: reload_cmd exited with status 1: down; rolled back .*app\.conf to the previous version, but reloading it failed too: reload_cmd exited with status 1: down$/),
    ]);
  });

  test("health_cmd without reload_cmd: rolled back, nothing to reload", async () => {
    const s = setup({ resource: () => `backup = true\nhealth_cmd = "exit 3"\nhealth_retries = 0` });
    oldDestination(s);
    const r = await s.run();
    expect(r.code).toBe(1);
    expect(readFileSync(s.dest)).toEqual(OLD);
    expect(errorLines(r)).toEqual([expect.stringMatching(/: health_cmd exited with status 3; rolled back .*app\.conf to the previous version$/)]);
  });

  test("without backup: a failing health_cmd leaves the new file, and nothing is kept beside it", async () => {
    const s = setup({ resource: () => `health_cmd = "exit 3"\nhealth_retries = 0` });
    oldDestination(s);
    const r = await s.run();
    expect(r.code).toBe(1);
    expect(readFileSync(s.dest, "utf8")).toBe("port=8080\n");
    expect(errorLines(r)).toEqual([expect.stringMatching(/: health_cmd exited with status 3$/)]);
    expect(outFiles(s)).toEqual([".keep", "app.conf"]);
  });

  test("a new destination has no previous version: a failing reload is reported as without backup", async () => {
    const s = setup({ resource: () => `backup = true\nreload_cmd = "exit 1"` });
    const r = await s.run();
    expect(r.code).toBe(1);
    expect(readFileSync(s.dest, "utf8")).toBe("port=8080\n");
    expect(errorLines(r)).toEqual([expect.stringMatching(/: reload_cmd exited with status 1$/)]);
    expect(outFiles(s)).toEqual([".keep", "app.conf"]);
  });

  test("-sync-only runs no reload, so there is no rollback; the backup is still kept", async () => {
    const s = setup({ resource: ({ record }) => `backup = true\nreload_cmd = "${record("reload", "exit 1")}"\nhealth_cmd = "exit 1"` });
    oldDestination(s);
    const r = await s.run("-sync-only");
    expect(errorLines(r)).toEqual([]);
    expect(r.code).toBe(0);
    expect(readFileSync(s.dest, "utf8")).toBe("port=8080\n");
    expect(readFileSync(`${s.dest}.confd-prev`)).toEqual(OLD);
    expect(s.ran("reload")).toEqual([]);
  });

  test("a backup that cannot be written fails the sync before the destination is touched", async () => {
    const s = setup({ resource: ({ record }) => `backup = true\nreload_cmd = "${record("reload")}"` });
    oldDestination(s);
    // A directory where the backup would go: the rename over it fails.
    writeTree(s.dir, { "out/app.conf.confd-prev/x": "" });
    const r = await s.run();
    expect(r.code).toBe(1);
    expect(readFileSync(s.dest)).toEqual(OLD);
    expect(s.ran("reload")).toEqual([]);
    expect(errorLines(r)).toEqual([
      expect.stringMatching(/: backup = true: cannot keep the previous version as .*app\.conf\.confd-prev: cannot replace destination: EISDIR; destination left unchanged$/),
    ]);
    expect(outFiles(s)).toEqual([".keep", "app.conf", "app.conf.confd-prev"]);
  });
});

test("on the Windows path, the rollback's rename over a destination held open is retried too", async () => {
  const s = setup({ resource: () => 'backup = true\nreload_cmd = "reload"' });
  oldDestination(s, Buffer.from("old\r\n"));
  const spec = loadResources({ confdir: s.dir, prefix: "", platform: "win32" }).resources[0]!;
  // Renames: the backup, the new file, the previous one put back (held open twice), the rejected render.
  const codes = [undefined, undefined, "EBUSY", "EPERM"];
  let renames = 0;
  const realRename = fs.renameSync;
  const rename = spyOn(fs, "renameSync").mockImplementation((from, to) => {
    const code = codes[renames++];
    if (code) throw Object.assign(new Error(`${code}: rename`), { code });
    return realRename(from, to);
  });
  const pauses: number[] = [];
  const sleep = spyOn(Bun, "sleepSync").mockImplementation((ms: number) => void pauses.push(ms));
  try {
    // Here cmd.exe cannot be started: the reload fails, as a reload that fails on Windows would.
    const error = await syncFile(spec, "new\r\n", { noop: false, syncOnly: false, keepStageFile: false, log: () => {}, report: () => {}, platform: "win32" }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(String(error)).toContain(`; rolled back ${s.dest} to the previous version, but reloading it failed too`);
  } finally {
    rename.mockRestore();
    sleep.mockRestore();
  }
  expect(renames).toBe(6);
  expect(pauses).toEqual([10, 20]);
  expect(readFileSync(s.dest, "utf8")).toBe("old\r\n");
  expect(readFileSync(`${s.dest}.confd-prev`, "utf8")).toBe("old\r\n");
  expect(readFileSync(`${s.dest}.confd-rejected`, "utf8")).toBe("new\r\n");
  expect(outFiles(s)).toEqual([".keep", "app.conf", "app.conf.confd-prev", "app.conf.confd-rejected"]);
});

describe("output guards", () => {
  test("an empty render is refused: old file kept, no check, no reload, one error line", async () => {
    const s = setup({
      template: '{{#each (gets "/app/servers/*")}}server {{Value}}\n{{/each}}',
      resource: ({ record }) => `check_cmd = "${record("check")}"\nreload_cmd = "${record("reload")}"`,
    });
    oldDestination(s);
    const r = await s.run();
    expect(r.code).toBe(1);
    expect(readFileSync(s.dest)).toEqual(OLD);
    expect(mode(s.dest)).toBe(0o640);
    expect(s.ran("check")).toEqual([]);
    expect(s.ran("reload")).toEqual([]);
    expect(errorLines(r)).toEqual([
      expect.stringMatching(new RegExp(`ERROR resource app: ${RegExp.escape(s.toml)}: refusing to install an empty render of ${RegExp.escape(s.dest)} \\(allow_empty = false\\)$`)),
    ]);
    expect(outFiles(s)).toEqual([".keep", "app.conf"]);
  });

  test("a render of whitespace only counts as empty; allow_empty = true installs it", async () => {
    const template = '{{#each (gets "/app/servers/*")}}server {{Value}}{{/each}}\n\n';
    const refused = setup({ template });
    const r = await refused.run();
    expect(r.code).toBe(1);
    expect(existsSync(refused.dest)).toBe(false);
    expect(errorLines(r)).toEqual([expect.stringMatching(/refusing to install an empty render of .*app\.conf \(2 bytes of whitespace only; allow_empty = false\)$/)]);

    const allowed = setup({ template, resource: () => "allow_empty = true" });
    const ok = await allowed.run();
    expect(errorLines(ok)).toEqual([]);
    expect(ok.code).toBe(0);
    expect(readFileSync(allowed.dest, "utf8")).toBe("\n\n");
  });

  test("max_change: a render that changes more than that share of lines is refused; a smaller change is installed", async () => {
    const lines = (n: number, port: number) => Array.from({ length: n }, (_, i) => `line${i}=${i < 6 ? port : i}\n`).join("");
    const template = '{{#each (gets "/app/*")}}{{Value}}\n{{/each}}';
    // Ten lines in the store, sorted by key: six of them carry the port.
    const data = (port: number) => "app:\n" + Array.from({ length: 10 }, (_, i) => `  k${i}: line${i}=${i < 6 ? port : i}\n`).join("");
    const s = setup({ template, data: data(9090), resource: ({ record }) => `max_change = "50%"\nreload_cmd = "${record("reload")}"` });
    const before = Buffer.from(lines(10, 80));
    oldDestination(s, before);
    const r = await s.run();
    expect(r.code).toBe(1);
    expect(readFileSync(s.dest)).toEqual(before);
    expect(s.ran("reload")).toEqual([]);
    expect(errorLines(r)).toEqual([
      expect.stringMatching(/: refusing to install a render of .*app\.conf that changes 60% of its lines \(6 removed, 6 added; 10 lines before, 10 after; max_change = "50%"\)$/),
    ]);
    // No value of the render in the log: counts only.
    expect(r.stderr).not.toContain("9090");

    // Five of ten lines is within 50%.
    oldDestination(s, Buffer.from(lines(10, 9090).replace("line0=9090", "line0=80")));
    const small = await s.run();
    expect(errorLines(small)).toEqual([]);
    expect(small.code).toBe(0);
    expect(readFileSync(s.dest, "utf8")).toBe(lines(10, 9090));
  });

  test("max_change: a new destination has no limit", async () => {
    const s = setup({ resource: () => 'max_change = "1%"' });
    const r = await s.run();
    expect(r.code).toBe(0);
    expect(readFileSync(s.dest, "utf8")).toBe("port=8080\n");
  });

  test("format = json: invalid JSON is refused with its line and column and no content, before check_cmd", async () => {
    const s = setup({
      template: '{\n  "password": {{getv "/app/password"}}\n}\n',
      data: "app:\n  password: s3cr3t\n",
      resource: ({ record }) => `format = "json"\ncheck_cmd = "${record("check")}"`,
    });
    oldDestination(s);
    const r = await s.run();
    expect(r.code).toBe(1);
    expect(readFileSync(s.dest)).toEqual(OLD);
    expect(s.ran("check")).toEqual([]);
    expect(errorLines(r)).toEqual([
      expect.stringMatching(/: refusing to install a render of .*app\.conf that is not valid JSON: unexpected character, expected a value at line 2, column 15 \(format = "json"\)$/),
    ]);
    expect(r.stderr).not.toContain("s3cr3t");
  });

  test("format = json: valid JSON is installed", async () => {
    // The space keeps handlebars from reading "}}}" as the end of a triple-stash.
    const s = setup({ template: '{"port": {{getv "/app/port"}} }\n', resource: () => 'format = "json"' });
    const r = await s.run();
    expect(errorLines(r)).toEqual([]);
    expect(r.code).toBe(0);
    expect(readFileSync(s.dest, "utf8")).toBe('{"port": 8080 }\n');
  });

  test("format = yaml and toml: a refusal names the line, and no content", async () => {
    const yaml = setup({ template: 'a: 1\nlist:\n  - {{getv "/app/port"}}\n  key: s3cr3t\n', resource: () => 'format = "yaml"' });
    const y = await yaml.run();
    expect(y.code).toBe(1);
    expect(errorLines(y)).toEqual([expect.stringMatching(/: refusing to install a render of .*app\.conf that is not valid YAML: unexpected token at line 4 \(format = "yaml"\)$/)]);
    expect(y.stderr).not.toContain("s3cr3t");

    const toml = setup({ template: 'port = {{getv "/app/port"}}\nname = s3cr3t\n', resource: () => 'format = "toml"' });
    const t = await toml.run();
    expect(t.code).toBe(1);
    expect(errorLines(t)).toEqual([
      expect.stringMatching(
        /: refusing to install a render of .*app\.conf that is not valid TOML: unexpected character, expecting string, number, datetime, boolean, inline array or inline table at line 2, column 8 \(format = "toml"\)$/,
      ),
    ]);
    expect(t.stderr).not.toContain("s3cr3t");
    expect(existsSync(toml.dest)).toBe(false);
  });

  test("-noop applies the guards: the refusal is what would happen", async () => {
    const s = setup({ template: "", resource: () => "" });
    oldDestination(s);
    const r = await s.run("-noop");
    expect(r.code).toBe(1);
    expect(r.stdout).toBe("");
    expect(readFileSync(s.dest)).toEqual(OLD);
    expect(errorLines(r)).toEqual([expect.stringMatching(/refusing to install an empty render of .*app\.conf \(allow_empty = false\)$/)]);
  });
});

describe("bad values for the new keys", () => {
  const cases: [string, string, string][] = [
    ["allow_empty", 'allow_empty = "yes"', 'key "allow_empty" must be true or false, got "yes"'],
    ["backup", "backup = 1", 'key "backup" must be true or false, got 1'],
    ["max_change", 'max_change = "150%"', 'key "max_change" must be a share of lines like "50%", above 0% and at most 100%, got "150%"'],
    ["max_change", "max_change = 50", 'key "max_change" must be a share of lines like "50%", above 0% and at most 100%, got 50'],
    ["format", 'format = "xml"', 'key "format" must be one of "json", "yaml", "toml", got "xml"'],
    ["health_timeout", 'health_cmd = "true"\nhealth_timeout = "soon"', 'key "health_timeout" must be a duration like "45s" or "2m", got "soon"'],
    ["health_retries", 'health_cmd = "true"\nhealth_retries = -1', 'key "health_retries" must be an integer from 0 to 100, got -1'],
    ["health_cmd", 'health_cmd = "curl {{.url}}"', 'key "health_cmd" uses {{.url}}: only {{.src}} and {{.dest}} exist'],
  ];
  test.each(cases)("%s: %s is refused at start, naming file, line and key, exit 1", async (_key, setting, message) => {
    const s = setup({ resource: () => setting });
    oldDestination(s);
    const r = await s.run();
    expect(r.code).toBe(1);
    // The key's line: after [template], src, dest and keys (health_cmd comes first when both are set).
    const line = setting.split("\n").length === 2 ? 6 : 5;
    expect(errorLines(r)).toEqual([expect.stringContaining(`ERROR resource app: ${s.toml}:${line}: ${message}`)]);
    expect(readFileSync(s.dest)).toEqual(OLD);
  });

  test("health_timeout without health_cmd is named in a warning", async () => {
    const s = setup({ resource: () => 'health_timeout = "5s"' });
    const r = await s.run();
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(`WARNING ${s.toml}: key "health_timeout" ignored: no health_cmd`);
  });
});

describe("where JSON is wrong", () => {
  // The scan that places JSON.parse's refusals must agree with it on what is JSON.
  const texts = [
    "", " ", "{}", "[]", '{"a":1}', '{"a":1,}', "[1,]", "[1 2]", '{"a" 1}', '{"a":}', "{1:2}", "01", "-", "-0", "1.", "1.5e", "1.5e+3",
    "1e5 x", "tru", "true", "null", "nul", '"\\u12G4"', '"\\u1234"', '"\\x"', '"a\tb"', '"abc', "[[[[]]]]", "[[[[]]]", '{"a":[{"b":null}]}',
    '{"a":[{"b":null}]', "\ufeff{}", '"\\/"', "[1,[2,[3,{}]],4]", '{"a":1 "b":2}', "  \n[\n1\n,\n2\n]\n  ", "[-]", "[+1]", "[.5]", "[1e]",
  ];
  test.each(texts)("%p", (text) => {
    let parses = true;
    try {
      JSON.parse(text);
    } catch {
      parses = false;
    }
    expect(jsonSyntaxError(text) === undefined).toBe(parses);
  });

  test("the position is where the text stops being JSON", () => {
    expect(jsonSyntaxError('{\n  "a": 1,\n  "b": x\n}')).toEqual({ offset: 19, reason: "unexpected character, expected a value" });
    expect(jsonSyntaxError('["a", "b"')).toEqual({ offset: 9, reason: "unexpected end of text" });
    expect(jsonSyntaxError('{"a": "\n"}')).toEqual({ offset: 7, reason: "control character in a string" });
    // Deep nesting is scanned without recursion.
    expect(jsonSyntaxError("[".repeat(200_000))).toEqual({ offset: 200_000, reason: "unexpected end of text" });
  });
});
