import { afterAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { loadConfig } from "../src/config.ts";
import { ConfdError, UsageError } from "../src/errors.ts";
import { parseFlags, usage } from "../src/flags.ts";
import { OPTIONS } from "../src/options.ts";
import { tempDir, writeTree } from "./helpers.ts";

const tmp = tempDir();
afterAll(tmp.cleanup);

describe("flags", () => {
  test("Go-style spellings parse as confd users type them", () => {
    expect(parseFlags(["-backend", "etcd", "-node", "a:1", "-node", "b:2", "-onetime"])).toEqual({ backend: "etcd", nodes: ["a:1", "b:2"], onetime: true });
    expect(parseFlags(["--backend=etcdv3", "-watch=false", "--interval", "30", "-log-level=debug"])).toEqual({
      backend: "etcdv3",
      watch: false,
      interval: 30,
      logLevel: "debug",
    });
    expect(parseFlags(["-client-ca-keys", "/ca.pem", "-sync-only", "-keep-stage-file"])).toEqual({ clientCaKeys: "/ca.pem", syncOnly: true, keepStageFile: true });
    expect(parseFlags(["-file", "a.yaml", "--file=b/", "-filter", "*.yml"])).toEqual({ files: ["a.yaml", "b/"], filter: "*.yml" });
  });

  test("an unknown flag is named", () => {
    expect(() => parseFlags(["-bogus", "1"])).toThrow(new UsageError("flag provided but not defined: -bogus"));
    expect(() => parseFlags(["--nodes=a"])).toThrow("flag provided but not defined: -nodes");
  });

  test("a flag without its value is named", () => {
    expect(() => parseFlags(["-backend"])).toThrow("flag needs an argument: -backend");
  });

  test("a bad number is named", () => {
    expect(() => parseFlags(["-interval", "soon"])).toThrow('invalid value "soon" for flag -interval: parse error');
    expect(() => parseFlags(["-interval=1.5"])).toThrow('invalid value "1.5" for flag -interval: parse error');
  });

  // Go's strconv.ParseBool, the whole table: what it accepts, and a few it does not.
  const TRUE = ["1", "t", "T", "TRUE", "true", "True"];
  const FALSE = ["0", "f", "F", "FALSE", "false", "False"];
  test.each([...TRUE.map((t) => [t, true] as const), ...FALSE.map((t) => [t, false] as const)])("-noop=%s is %p, for every boolean flag and in CONFD_*", (text, value) => {
    for (const o of OPTIONS.filter((o) => o.type === "boolean")) {
      expect(parseFlags([`-${o.flag}=${text}`])).toEqual({ [o.field]: value });
      expect(parseFlags([`--${o.flag}=${text}`])).toEqual({ [o.field]: value });
      if (!o.cliOnly) expect(loadConfig({ configFile: join(tmp.path, "none.toml") }, { [`CONFD_${o.flag.toUpperCase().replaceAll("-", "_")}`]: text }).config[o.field]).toBe(value);
    }
  });

  test.each(["maybe", "yes", "no", "on", "off", "tRuE", "", " 1", "2"])("-noop=%p is refused as Go refuses it", (text) => {
    expect(() => parseFlags([`-noop=${text}`])).toThrow(new UsageError(`invalid boolean value ${JSON.stringify(text)} for -noop: parse error`));
  });

  test("a boolean flag never takes the next argument; other flags take it whatever it looks like", () => {
    expect(() => parseFlags(["-noop", "1"])).toThrow('unexpected argument "1": confd takes flags only');
    expect(parseFlags(["-prefix", "-odd", "-noop"])).toEqual({ prefix: "-odd", noop: true });
  });

  test("Go's other flag messages: bad flag syntax, value out of range", () => {
    expect(() => parseFlags(["---onetime"])).toThrow(new UsageError("bad flag syntax: ---onetime"));
    expect(() => parseFlags(["-=x"])).toThrow(new UsageError("bad flag syntax: -=x"));
    expect(() => parseFlags(["-interval=99999999999999999999"])).toThrow(new UsageError('invalid value "99999999999999999999" for flag -interval: value out of range'));
  });

  test("interval is checked only where it is used: 0 next to -onetime or -watch is no error", () => {
    const none = join(tmp.path, "none.toml");
    expect(loadConfig({ configFile: none, interval: 0, onetime: true }, {}).config.onetime).toBe(true);
    expect(loadConfig({ configFile: none, interval: 0, watch: true }, {}).config.watch).toBe(true);
    expect(() => loadConfig({ configFile: none, interval: 0 }, {})).toThrow("interval must be a positive number of seconds, got 0");
  });

  test("integers as Go's flag package reads them (strconv.ParseInt base 0)", () => {
    expect(parseFlags(["-interval", "0x1e"])).toEqual({ interval: 30 });
    expect(parseFlags(["-interval=1_000"])).toEqual({ interval: 1000 });
    expect(parseFlags(["-interval=017"])).toEqual({ interval: 15 });
    expect(() => parseFlags(["-interval=08"])).toThrow('invalid value "08" for flag -interval');
  });

  test("durations as Go's time.ParseDuration reads them, in flags, CONFD_* and confd.toml", () => {
    expect(parseFlags(["-worker-idle", "10m"])).toEqual({ workerIdle: 600_000 });
    expect(parseFlags(["-worker-idle=1h30m"])).toEqual({ workerIdle: 5_400_000 });
    expect(parseFlags(["-worker-idle=0"])).toEqual({ workerIdle: 0 });
    expect(() => parseFlags(["-worker-idle", "10"])).toThrow(new UsageError('invalid value "10" for flag -worker-idle: parse error'));
    expect(() => parseFlags(["-worker-idle", "-5s"])).toThrow('invalid value "-5s" for flag -worker-idle');
    const none = join(tmp.path, "none.toml");
    expect(loadConfig({ configFile: none }, { CONFD_WORKER_IDLE: "90s" }).config.workerIdle).toBe(90_000);
    writeTree(tmp.path, { "idle.toml": 'worker_idle = "2m"\n', "idle-bad.toml": "worker_idle = 120\n" });
    expect(loadConfig({ configFile: join(tmp.path, "idle.toml") }, {}).config.workerIdle).toBe(120_000);
    expect(() => loadConfig({ configFile: join(tmp.path, "idle-bad.toml") }, {})).toThrow('key "worker_idle" must be a duration like "90s" or "10m", got 120');
  });

  test("a stray argument is named as one, not as a flag", () => {
    expect(() => parseFlags(["-onetime", "extra"])).toThrow(new UsageError('unexpected argument "extra": confd takes flags only (-name or -name=value)'));
    expect(() => parseFlags(["-onetime", "--", "x"])).toThrow('unexpected argument "x"');
    expect(parseFlags(["-onetime", "--"])).toEqual({ onetime: true });
  });

  test("-h and -help", () => {
    expect(parseFlags(["-h"])).toEqual({ help: true });
    expect(parseFlags(["--help=false"])).toEqual({ help: false });
  });

  test("--help lists every flag", () => {
    const text = usage();
    for (const o of OPTIONS) expect(text).toContain(`-${o.flag}`);
  });
});

describe("precedence: flag > environment > confd.toml > default", () => {
  const file = join(tmp.path, "confd.toml");
  writeTree(tmp.path, {
    "confd.toml": [
      'backend = "file"',
      'nodes = ["toml:1"]',
      'log-level = "warning"',
      'prefix = "/toml"',
      "interval = 42",
      'client_cakeys = "/toml/ca.pem"',
      "sync-only = true",
      'keep_stage_file = true',
      'mystery = "x"',
    ].join("\n"),
  });

  test("confd.toml overrides defaults, with confd's key spellings and their dash/underscore variants", () => {
    const { config, warnings } = loadConfig({ configFile: file }, {});
    expect(config.backend).toBe("file");
    expect(config.nodes).toEqual(["toml:1"]);
    expect(config.logLevel).toBe("warning");
    expect(config.interval).toBe(42);
    expect(config.clientCaKeys).toBe("/toml/ca.pem");
    expect(config.syncOnly).toBe(true);
    expect(config.keepStageFile).toBe(true);
    expect(config.confdir).toBe("/etc/confd");
    expect(warnings).toEqual([
      `${file}: unknown key "mystery" ignored`,
      "-node is read by the etcd, etcdv3, consul, redis, vault, zookeeper backends only; ignored with -backend file",
      "-client-ca-keys is read by the etcd, etcdv3, consul, vault backends only; ignored with -backend file",
    ]);
  });

  test("environment overrides confd.toml; flags override both", () => {
    const env = { CONFD_BACKEND: "env", CONFD_NODE: "e1:1, e2:2", CONFD_PREFIX: "/env", CONFD_CLIENT_CAKEYS: "/env/ca.pem", CONFD_INTERVAL: "7" };
    const fromEnv = loadConfig({ configFile: file }, env).config;
    expect(fromEnv.backend).toBe("env");
    expect(fromEnv.nodes).toEqual(["e1:1", "e2:2"]);
    expect(fromEnv.prefix).toBe("/env");
    expect(fromEnv.clientCaKeys).toBe("/env/ca.pem");
    expect(fromEnv.interval).toBe(7);
    const fromFlags = loadConfig({ configFile: file, backend: "etcd", nodes: ["f:1"], interval: 3 }, env).config;
    expect(fromFlags.backend).toBe("etcd");
    expect(fromFlags.nodes).toEqual(["f:1"]);
    expect(fromFlags.interval).toBe(3);
    expect(fromFlags.prefix).toBe("/env");
  });

  test("CONFD_CONFIG_FILE selects the file", () => {
    expect(loadConfig({}, { CONFD_CONFIG_FILE: file }).config.backend).toBe("file");
  });

  test("a named config file that is missing is a warning; defaults are confd's", () => {
    const { config, warnings } = loadConfig({ configFile: join(tmp.path, "none.toml"), }, {});
    expect(warnings[0]).toContain("does not exist");
    expect(config.backend).toBe("etcd");
    expect(config.interval).toBe(600);
    expect(config.filter).toBe("*");
    expect(config.scheme).toBe("http");
  });

  test("a TOML syntax error names the file, line and column", () => {
    writeTree(tmp.path, { "bad.toml": 'backend = "file"\nnodes = [\n' });
    try {
      loadConfig({ configFile: join(tmp.path, "bad.toml") }, {});
      throw new Error("expected an error");
    } catch (err) {
      expect(err).toBeInstanceOf(ConfdError);
      expect((err as ConfdError).describe()).toMatch(new RegExp(`^${join(tmp.path, "bad.toml")}:3:\\d+: invalid TOML: `));
    }
  });

  test("a value of the wrong type names the file, line and key", () => {
    writeTree(tmp.path, { "typed.toml": '# confd\nbackend = "env"\ninterval = "10"\n', "secret.toml": "password = 12345678\n" });
    const error = (file: string) => {
      try {
        loadConfig({ configFile: join(tmp.path, file) }, {});
      } catch (err) {
        return (err as ConfdError).describe();
      }
    };
    expect(error("typed.toml")).toBe(`${join(tmp.path, "typed.toml")}:3: key "interval" must be a number, got "10"`);
    // A secret's value is not shown, even of the wrong type.
    expect(error("secret.toml")).toBe(`${join(tmp.path, "secret.toml")}:1: key "password" must be a string`);
  });

  test("bad environment values and log levels are named", () => {
    expect(() => loadConfig({ configFile: file }, { CONFD_ONETIME: "maybe" })).toThrow(new UsageError('invalid boolean value "maybe" for CONFD_ONETIME: parse error'));
    expect(() => loadConfig({ configFile: file }, { CONFD_ONETIME: "yes" })).toThrow('invalid boolean value "yes" for CONFD_ONETIME');
    expect(() => loadConfig({ configFile: file }, { CONFD_INTERVAL: "1.5" })).toThrow('invalid value "1.5" for flag CONFD_INTERVAL: parse error');
    expect(() => loadConfig({ configFile: file, logLevel: "loud" }, {})).toThrow('unknown log level "loud"');
  });
});
