import { afterAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { chooseEngine, loadResources, parseDuration, parseMode, storeKeys } from "../src/resource.ts";
import { tempDir, writeTree } from "./helpers.ts";

const tmp = tempDir();
afterAll(tmp.cleanup);

function confdir(files: Record<string, string>): string {
  const dir = join(tmp.path, `c${Math.random().toString(36).slice(2)}`);
  writeTree(dir, { "templates/t.hbs": "x", ...files });
  return dir;
}

describe("loading conf.d", () => {
  test("every *.toml under conf.d, recursively, with prefixes joined global + resource + key", () => {
    const dir = confdir({
      "conf.d/a.toml": '[template]\nsrc = "t.hbs"\ndest = "/tmp/a"\nkeys = ["/db/host", "/db/host", "/x"]\nprefix = "app"\n',
      "conf.d/sub/b.toml": '[template]\nsrc = "t.hbs"\ndest = "/tmp/b"\nkeys = ["/y"]\n',
      "conf.d/notes.txt": "ignored",
    });
    const { resources, errors, warnings } = loadResources({ confdir: dir, prefix: "/global" });
    expect(errors).toEqual([]);
    expect(warnings).toEqual([]);
    expect(resources.map((r) => r.name)).toEqual(["a", "sub/b"]);
    expect(resources[0]!.prefix).toBe("/global/app");
    expect(storeKeys(resources[0]!)).toEqual(["/global/app/db/host", "/global/app/x"]);
    expect(storeKeys(resources[1]!)).toEqual(["/global/y"]);
    expect(resources[0]!.src).toBe(join(dir, "templates", "t.hbs"));
    expect(resources[0]!.checkTimeoutMs).toBe(30_000);
    expect(resources[0]!.reloadTimeoutMs).toBe(60_000);
  });

  test("mode, owner, group, timeouts", () => {
    const dir = confdir({
      "conf.d/a.toml": '[template]\nsrc = "t.hbs"\ndest = "/tmp/a"\nmode = "644"\nowner = "alice"\ngroup = "staff"\ncheck_timeout = "45s"\nreload_timeout = 90\n',
    });
    const { resources, errors } = loadResources({
      confdir: dir,
      prefix: "",
      lookupUser: (n) => (n === "alice" ? 1001 : undefined),
      lookupGroup: (n) => (n === "staff" ? 50 : undefined),
    });
    expect(errors).toEqual([]);
    expect(resources[0]).toMatchObject({ mode: 0o644, uid: 1001, gid: 50, checkTimeoutMs: 45_000, reloadTimeoutMs: 90_000 });
  });

  test("bad input is one error naming the file, the line and the key; other resources still load", () => {
    const dir = confdir({
      "conf.d/good.toml": '[template]\nsrc = "t.hbs"\ndest = "/tmp/good"\n',
      "conf.d/mode.toml": '[template]\nsrc = "t.hbs"\ndest = "/tmp/m"\nmode = "rw-r--r--"\n',
      "conf.d/nosrc.toml": '[template]\ndest = "/tmp/n"\n',
      "conf.d/missing.toml": '[template]\nsrc = "nope.hbs"\ndest = "/tmp/x"\n',
      "conf.d/owner.toml": '[template]\nsrc = "t.hbs"\ndest = "/tmp/o"\nowner = "nobody-such-user"\n',
      "conf.d/syntax.toml": '[template]\nsrc = "t.hbs"\ndest = \n',
      "conf.d/keys.toml": '[template]\nsrc = "t.hbs"\ndest = "/tmp/k"\nkeys = "/a"\n',
      "conf.d/timeout.toml": '[template]\nsrc = "t.hbs"\ndest = "/tmp/t"\ncheck_timeout = "soon"\n',
    });
    const { resources, errors } = loadResources({ confdir: dir, prefix: "", lookupUser: () => undefined });
    expect(resources.map((r) => r.name)).toEqual(["good"]);
    const lines = errors.map((e) => e.describe());
    const f = (n: string) => join(dir, "conf.d", `${n}.toml`);
    expect(lines).toEqual([
      `resource keys: ${f("keys")}:4: key "keys" must be a list of strings`,
      `resource missing: ${f("missing")}:2: template ${join(dir, "templates", "nope.hbs")} does not exist (key src)`,
      `resource mode: ${f("mode")}:4: key "mode" must be an octal file mode like "0644", got "rw-r--r--"`,
      `resource nosrc: ${f("nosrc")}: missing required key "src"`,
      `resource owner: ${f("owner")}:4: unknown owner "nobody-such-user"`,
      expect.stringMatching(new RegExp(`^resource syntax: ${f("syntax")}:3:\\d+: invalid TOML: `)) as unknown as string,
      `resource timeout: ${f("timeout")}:4: key "check_timeout" must be a duration like "45s" or "2m", got "soon"`,
    ]);
  });

  test("a template that is a directory is named as one; an id beyond 32 bits is refused at load", () => {
    const dir = confdir({
      "templates/sub/x.hbs": "x",
      "conf.d/dir.toml": '[template]\nsrc = "sub"\ndest = "/tmp/d"\n',
      "conf.d/uid.toml": '[template]\nsrc = "t.hbs"\ndest = "/tmp/u"\nuid = 99999999999\n',
      "conf.d/owner.toml": '[template]\nsrc = "t.hbs"\ndest = "/tmp/o"\nowner = "99999999999"\n',
    });
    const lines = loadResources({ confdir: dir, prefix: "" }).errors.map((e) => e.describe());
    const f = (n: string) => join(dir, "conf.d", `${n}.toml`);
    expect(lines).toEqual([
      `resource dir: ${f("dir")}:2: template ${join(dir, "templates", "sub")} is a directory (key src)`,
      `resource owner: ${f("owner")}:4: key "owner" must name an id from 0 to 4294967294, got 99999999999`,
      `resource uid: ${f("uid")}:4: key "uid" must be an integer from 0 to 4294967294, got 99999999999`,
    ]);
  });

  test("the line is found for quoted and dotted keys too", () => {
    const dir = confdir({
      "conf.d/quoted.toml": '# comment\n[template]\nsrc = "t.hbs"\ndest = "/tmp/q"\n\n"mode" = 644\n',
      "conf.d/dotted.toml": 'template.src = "t.hbs"\ntemplate.dest = "/tmp/d"\ntemplate.keys = 3\n',
    });
    const lines = loadResources({ confdir: dir, prefix: "" }).errors.map((e) => e.describe());
    expect(lines).toEqual([
      `resource dotted: ${join(dir, "conf.d", "dotted.toml")}:3: key "keys" must be a list of strings`,
      `resource quoted: ${join(dir, "conf.d", "quoted.toml")}:6: key "mode" must be a string, got 644`,
    ]);
  });

  test("two resources with the same dest: an error naming both files", () => {
    const dir = confdir({
      "conf.d/one.toml": '[template]\nsrc = "t.hbs"\ndest = "/tmp/same"\n',
      "conf.d/two.toml": '[template]\nsrc = "t.hbs"\ndest = "/tmp/same"\n',
    });
    const { resources, errors } = loadResources({ confdir: dir, prefix: "" });
    expect(resources).toEqual([]);
    expect(errors).toHaveLength(2);
    for (const e of errors) expect(e.message).toContain(`${join(dir, "conf.d", "one.toml")} and ${join(dir, "conf.d", "two.toml")}`);
  });

  test("unknown keys are warnings naming the key and file", () => {
    const dir = confdir({ "conf.d/a.toml": '[template]\nsrc = "t.hbs"\ndest = "/tmp/a"\nrelaod_cmd = "x"\n' });
    const { warnings } = loadResources({ confdir: dir, prefix: "" });
    expect(warnings).toEqual([`${join(dir, "conf.d", "a.toml")}: unknown key "template.relaod_cmd" ignored`]);
  });
});

describe("values", () => {
  test("modes are octal with or without a leading 0", () => {
    expect(parseMode("0644", "f")).toBe(0o644);
    expect(parseMode("644", "f")).toBe(0o644);
    expect(parseMode("0600", "f")).toBe(0o600);
    expect(parseMode("4755", "f")).toBe(0o4755);
    expect(parseMode("", "f")).toBeUndefined();
    expect(() => parseMode("999", "f")).toThrow();
  });

  test("durations", () => {
    expect(parseDuration("45s", "k", "f")).toBe(45_000);
    expect(parseDuration("2m", "k", "f")).toBe(120_000);
    expect(parseDuration("1m30s", "k", "f")).toBe(90_000);
    expect(parseDuration("500ms", "k", "f")).toBe(500);
    expect(parseDuration(5, "k", "f")).toBe(5000);
    expect(parseDuration("5", "k", "f")).toBe(5000);
    expect(() => parseDuration("5x", "k", "f")).toThrow();
    expect(() => parseDuration(0, "k", "f")).toThrow();
  });
});

describe("engine choice", () => {
  test("the resource's engine key, else the extension, else the global default", () => {
    expect(chooseEngine("a.tmpl", "", "handlebars", "f")).toBe("go");
    expect(chooseEngine("a.hbs", "", "go", "f")).toBe("handlebars");
    expect(chooseEngine("a.handlebars", "", "go", "f")).toBe("handlebars");
    expect(chooseEngine("nginx.conf", "", "go", "f")).toBe("go");
    expect(chooseEngine("nginx.conf", "", "handlebars", "f")).toBe("handlebars");
    expect(chooseEngine("a.tmpl", "handlebars", "go", "f")).toBe("handlebars");
    expect(() => chooseEngine("a.tmpl", "jinja", "go", "f")).toThrow('key "engine" must be "go" or "handlebars", got "jinja"');
  });
});

describe("Windows", () => {
  test("owner, group, uid and gid are ignored with a warning, not looked up", () => {
    const dir = confdir({ "conf.d/a.toml": '[template]\nsrc = "t.hbs"\ndest = "C:\\\\app\\\\a.conf"\nowner = "nobody-such-user"\ngid = 5\n' });
    const { resources, errors, warnings } = loadResources({ confdir: dir, prefix: "", platform: "win32", lookupUser: () => undefined });
    expect(errors).toEqual([]);
    expect(resources[0]).toMatchObject({ dest: "C:\\app\\a.conf", uid: undefined, gid: undefined });
    expect(warnings).toEqual([
      `${join(dir, "conf.d", "a.toml")}: key "gid" ignored: Windows files have no owner or group to set`,
      `${join(dir, "conf.d", "a.toml")}: key "owner" ignored: Windows files have no owner or group to set`,
    ]);
  });
});
