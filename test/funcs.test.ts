// confd's template functions and the builtins in src/funcs.ts, checked against the
// behaviour of confd master (template_funcs.go, memkv) and Go's text/template.
import { describe, expect, test } from "bun:test";
import { DnsCache, type DnsResolver, srvQueryName } from "../src/dns.ts";
import { GoTime } from "../src/gotime.ts";
import { FUNC_NAMES } from "../src/func-names.ts";
import { createFuncs, FuncError, funcNames, type KVPair, type SRVRecord, type TemplateFunc } from "../src/funcs.ts";
import { isTrue } from "../src/govalue.ts";

const store = new Map<string, string>([
  ["/app/upstream/b", "10.0.0.2:80"],
  ["/app/upstream/a", "10.0.0.1:80"],
  ["/app/upstreamz", "sibling leaf"],
  ["/app/upstreamx/c", "cousin"],
  ["/app/config/db/host", "db.local"],
  ["/app/config/db/port", "5432"],
  ["/app/name", "demo"],
  ["/top", "t"],
  ["/v/a", "zeta"],
  ["/v/b", "alpha"],
  ["/v/c", "mid"],
]);

const fixedNow = new Date(Date.UTC(2009, 5, 15, 12, 0, 0));
const f = createFuncs(store, {
  env: { HOME_DIR: "/home/x", EMPTY: "" },
  now: () => fixedNow,
  fileExists: (p) => p === "/etc/present",
  dns: {
    ip: (name) => (name === "multi.test" ? ["10.0.0.2", "::1", "10.0.0.10", "fe80::1"] : undefined),
    srv: (service, proto, name) =>
      service === "etcd" && proto === "tcp" && name === "example.com"
        ? [
            { Target: "b.example.com.", Port: 2379, Priority: 0, Weight: 0 },
            { Target: "a.example.com.", Port: 2380, Priority: 10, Weight: 5 },
            { Target: "a.example.com.", Port: 2379, Priority: 10, Weight: 5 },
          ]
        : undefined,
  },
});

function call(name: string, ...args: unknown[]): unknown {
  const fn: TemplateFunc | undefined = f[name];
  if (fn === undefined) throw new Error(`no function ${name}`);
  return fn(...args);
}

function failure(name: string, ...args: unknown[]): FuncError {
  try {
    call(name, ...args);
  } catch (err) {
    if (err instanceof FuncError) return err;
    throw err;
  }
  throw new Error(`${name} did not fail`);
}

describe("function set", () => {
  test("has every confd function and the builtins, and no index", () => {
    const confd = [
      "get", "gets", "getv", "getvs", "ls", "lsdir", "exists", "base", "dir", "split", "join", "json", "jsonArray",
      "map", "getenv", "datetime", "toUpper", "toLower", "contains", "replace", "trimSuffix", "lookupIP",
      "lookupIPV4", "lookupIPV6", "lookupSRV", "fileExists", "base64Encode", "base64Decode", "parseBool", "reverse",
      "sortByLength", "sortKVByLength", "add", "sub", "mul", "div", "mod", "seq", "atoi",
    ];
    const builtins = ["eq", "ne", "lt", "le", "gt", "ge", "and", "or", "not", "default", "printf", "len"];
    // Consul's catalog, as consul-template names it (test/catalog.test.ts).
    const catalog = ["services", "service", "nodes", "checks", "events"];
    expect(Object.keys(f).sort()).toEqual([...confd, ...builtins, ...catalog].sort());
    expect(f.index).toBeUndefined();
    expect(f.constructor).toBeUndefined();
    expect("toString" in f).toBe(false);
  });

  test("func-names.ts lists exactly the library's functions, which the compilers check calls against", () => {
    expect([...funcNames()].sort()).toEqual([...FUNC_NAMES].sort());
  });

  test("FuncError carries the function, Go's message and the key", () => {
    const err = failure("getv", "/missing");
    expect(err).toBeInstanceOf(Error);
    expect(err.name).toBe("FuncError");
    expect([err.func, err.message, err.key]).toEqual(["getv", "key does not exist: /missing", "/missing"]);
  });

  test("a key that is a value in the store is shown as the key holding it, if only one key does", () => {
    const secrets = createFuncs(new Map([["/db/password", "pw[x"], ["/a", "twin"], ["/b", "twin"]]));
    const thrown = (run: () => unknown): unknown => {
      try {
        run();
      } catch (err) {
        return err;
      }
      throw new Error("did not fail");
    };
    expect(thrown(() => secrets.getv!("pw[x"))).toMatchObject({ message: "key does not exist: (the value of /db/password)", key: "/db/password" });
    expect(thrown(() => secrets.get!("pw[x"))).toMatchObject({ message: "key does not exist: (the value of /db/password)", key: "/db/password" });
    expect(thrown(() => secrets.gets!("pw[x"))).toMatchObject({ message: "syntax error in pattern", key: "/db/password" });
    expect(thrown(() => secrets.getvs!("pw[x"))).toMatchObject({ message: "syntax error in pattern", key: "/db/password" });
    expect(thrown(() => secrets.getv!("twin"))).toMatchObject({ message: "key does not exist: (a value in the store)", key: undefined });
    expect(thrown(() => secrets.getv!("/nope"))).toMatchObject({ message: "key does not exist: /nope", key: "/nope" });
  });

  test("a rejected value is named by the key holding it, if only one key does", () => {
    expect(failure("atoi", call("getv", "/app/name")).key).toBe("/app/name");
    expect(failure("sub", 1, call("getv", "/v/b")).key).toBe("/v/b");
    expect(failure("json", "demo")).toMatchObject({ func: "json", key: "/app/name", arg: 0 });
    const twice = createFuncs(new Map([["/a", "x"], ["/b", "x"]]));
    let thrown: unknown;
    try {
      twice.atoi!("x");
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toMatchObject({ func: "atoi", key: undefined });
    expect(failure("atoi", "not in the store").key).toBeUndefined();
  });

  test("wrong argument counts and types are errors", () => {
    expect(failure("getv").message).toBe("wrong number of args for getv: want at least 1 got 0");
    expect(failure("base", "a", "b").message).toBe("wrong number of args for base: want 1 got 2");
    expect(failure("toUpper", null).message).toBe("argument 1: expected string, got <nil>");
    expect(failure("join", "a,b", ",").message).toBe("argument 1: expected list, got string");
    expect(call("toUpper", 5)).toBe("5");
  });
});

describe("store functions", () => {
  test("get returns the pair or fails naming the key", () => {
    expect(call("get", "/app/name")).toEqual({ Key: "/app/name", Value: "demo" });
    const err = failure("get", "/nope");
    expect([err.func, err.message, err.key]).toEqual(["get", "key does not exist: /nope", "/nope"]);
  });

  test("getv returns the value, the default for a missing key, or fails", () => {
    expect(call("getv", "/app/name")).toBe("demo");
    expect(call("getv", "/app/name", "fallback")).toBe("demo");
    expect(call("getv", "/x", "fallback")).toBe("fallback");
    expect(call("getv", "/x", "")).toBe("");
    expect(failure("getv", "/x").message).toBe("key does not exist: /x");
  });

  test("exists", () => {
    expect(call("exists", "/top")).toBe(true);
    expect(call("exists", "/app")).toBe(false);
  });

  test("gets matches a glob and sorts by key; * does not cross /", () => {
    expect(call("gets", "/app/upstream/*")).toEqual([
      { Key: "/app/upstream/a", Value: "10.0.0.1:80" },
      { Key: "/app/upstream/b", Value: "10.0.0.2:80" },
    ]);
    expect((call("gets", "/app/*") as KVPair[]).map((kv) => kv.Key)).toEqual(["/app/name", "/app/upstreamz"]);
    expect(call("gets", "/app/*/db/*")).toEqual([
      { Key: "/app/config/db/host", Value: "db.local" },
      { Key: "/app/config/db/port", Value: "5432" },
    ]);
    expect(call("gets", "/nothing/*")).toEqual([]);
  });

  test("getvs sorts the values, not the keys", () => {
    expect(call("gets", "/v/*")).toEqual([
      { Key: "/v/a", Value: "zeta" },
      { Key: "/v/b", Value: "alpha" },
      { Key: "/v/c", Value: "mid" },
    ]);
    expect(call("getvs", "/v/*")).toEqual(["alpha", "mid", "zeta"]);
    expect(call("getvs", "/none/*")).toEqual([]);
  });

  test("a malformed pattern is Go's error, naming the pattern", () => {
    for (const fn of ["gets", "getvs"]) {
      const err = failure(fn, "/app/[");
      expect([err.func, err.message, err.key]).toEqual([fn, "syntax error in pattern", "/app/["]);
    }
    expect(() => createFuncs(new Map()).gets?.("[")).toThrow("syntax error in pattern");
  });

  test("ls lists direct children, without memkv's sibling leak", () => {
    // memkv returns [a app b z] here: names from /app/upstreamz and /app/name leak in.
    expect(call("ls", "/app/upstream")).toEqual(["a", "b"]);
    expect(call("ls", "/app/upstream/")).toEqual(["a", "b"]);
    expect(call("ls", "/app")).toEqual(["config", "name", "upstream", "upstreamx", "upstreamz"]);
    expect(call("ls", "/app/config/db")).toEqual(["host", "port"]);
    expect(call("ls", "/")).toEqual(["app", "top", "v"]);
    expect(call("ls", "/missing")).toEqual([]);
    // A key lists itself, as memkv (and ls on a file) does.
    expect(call("ls", "/app/name")).toEqual(["name"]);
  });

  test("lsdir lists only children with keys below them", () => {
    expect(call("lsdir", "/")).toEqual(["app", "v"]);
    expect(call("lsdir", "/app")).toEqual(["config", "upstream", "upstreamx"]);
    expect(call("lsdir", "/app/")).toEqual(["config", "upstream", "upstreamx"]);
    expect(call("lsdir", "/app/config")).toEqual(["db"]);
    expect(call("lsdir", "/app/config/db")).toEqual([]);
    expect(call("lsdir", "/app/name")).toEqual([]);
  });
});

describe("path and string functions", () => {
  test.each([
    ["", "."],
    ["/", "/"],
    ["//", "/"],
    ["/a/b", "b"],
    ["/a/b/", "b"],
    ["/a//", "a"],
    ["a", "a"],
  ])("base(%p) = %p", (p, want) => {
    expect(call("base", p)).toBe(want);
  });

  test.each([
    ["", "."],
    ["/", "/"],
    ["a", "."],
    ["a/b", "a"],
    ["/a/b", "/a"],
    ["/a/b/", "/a/b"],
    ["//a", "/"],
    ["/a/../b/c", "/b"],
    ["../../a/b", "../../a"],
  ])("dir(%p) = %p", (p, want) => {
    expect(call("dir", p)).toBe(want);
  });

  test("split is strings.Split", () => {
    expect(call("split", "a,b,c", ",")).toEqual(["a", "b", "c"]);
    expect(call("split", "a,b,", ",")).toEqual(["a", "b", ""]);
    expect(call("split", "", ",")).toEqual([""]);
    expect(call("split", "héllo😀", "")).toEqual(["h", "é", "l", "l", "o", "😀"]);
    expect(call("split", "", "")).toEqual([]);
    expect(call("split", "a::b", "::")).toEqual(["a", "b"]);
  });

  test("join formats non-strings as %v would", () => {
    expect(call("join", ["a", "b"], ",")).toBe("a,b");
    expect(call("join", [], ",")).toBe("");
    expect(call("join", call("seq", 1, 3), "-")).toBe("1-2-3");
  });

  test("toUpper and toLower map rune by rune", () => {
    expect(call("toUpper", "héllo")).toBe("HÉLLO");
    expect(call("toLower", "ÀB")).toBe("àb");
    // Go's unicode.ToUpper has no single-rune uppercase for ß; JavaScript's gives "SS".
    expect(call("toUpper", "straße")).toBe("STRAßE");
    expect(call("toLower", "ΟΔΟΣ")).toBe("οδοσ");
  });

  test("contains and trimSuffix", () => {
    expect(call("contains", "seafood", "foo")).toBe(true);
    expect(call("contains", "seafood", "bar")).toBe(false);
    expect(call("contains", "seafood", "")).toBe(true);
    expect(call("trimSuffix", "host.example.com.", ".")).toBe("host.example.com");
    expect(call("trimSuffix", "abc", "x")).toBe("abc");
  });

  test("replace is strings.Replace with its count", () => {
    expect(call("replace", "oink oink oink", "k", "ky", 2)).toBe("oinky oinky oink");
    expect(call("replace", "oink oink oink", "oink", "moo", -1)).toBe("moo moo moo");
    expect(call("replace", "oink oink oink", "oink", "moo", 0)).toBe("oink oink oink");
    expect(call("replace", "abc", "", "-", -1)).toBe("-a-b-c-");
    expect(call("replace", "a😀", "", "-", 2)).toBe("-a-😀");
    expect(call("replace", "aaa", "a", "b", "2")).toBe("bba");
    expect(failure("replace", "a", "a", "b", 1.5).message).toBe("argument 4: expected integer, got float64");
  });

  test("map builds an object from pairs", () => {
    expect(call("map", "a", 1, "b", ["x"])).toEqual({ a: 1, b: ["x"] });
    expect(call("map")).toEqual({});
    expect(failure("map", "a").message).toBe("invalid map call");
    expect(failure("map", 1, 2).message).toBe("map keys must be strings");
    const m = call("map", "__proto__", 1) as Record<string, unknown>;
    expect(Object.getPrototypeOf(m)).toBe(Object.prototype);
    expect(Object.keys(m)).toEqual(["__proto__"]);
  });

  test("getenv falls back to the default when unset or empty", () => {
    expect(call("getenv", "HOME_DIR")).toBe("/home/x");
    expect(call("getenv", "HOME_DIR", "d")).toBe("/home/x");
    expect(call("getenv", "EMPTY", "d")).toBe("d");
    expect(call("getenv", "UNSET", "d")).toBe("d");
    expect(call("getenv", "UNSET")).toBe("");
  });

  test("fileExists uses the injected check, fs by default", () => {
    expect(call("fileExists", "/etc/present")).toBe(true);
    expect(call("fileExists", "/etc/absent")).toBe(false);
    const real = createFuncs(new Map());
    expect(real.fileExists?.(import.meta.path)).toBe(true);
    expect(real.fileExists?.("/definitely/not/here")).toBe(false);
  });
});

describe("encodings", () => {
  test("json parses an object; other JSON is Go's unmarshal error", () => {
    expect(call("json", '{"port": 8080, "hosts": ["a", "b"]}')).toEqual({ port: 8080, hosts: ["a", "b"] });
    expect(call("json", "null")).toEqual({});
    expect(failure("json", "[1]").message).toBe("json: cannot unmarshal array into Go value of type map[string]interface {}");
    expect(failure("json", "3").message).toBe("json: cannot unmarshal number into Go value of type map[string]interface {}");
    const bad = failure("json", "{");
    expect([bad.func, bad.message]).toEqual(["json", "unexpected end of JSON input"]);
  });

  // encoding/json's messages, with the offending character's byte offset where Go quotes the character.
  test.each([
    ["", "unexpected end of JSON input"],
    ['{"a":1', "unexpected end of JSON input"],
    ['"\\u12', "unexpected end of JSON input"],
    ["tru", "unexpected end of JSON input"],
    ["secret", "invalid character at input byte 0 looking for beginning of value"],
    ["é", "invalid character at input byte 0 looking for beginning of value"],
    ['{"a" 1}', "invalid character at input byte 5 after object key"],
    ['{"a":1 2}', "invalid character at input byte 7 after object key:value pair"],
    ['{"a":1,}', "invalid character at input byte 7 looking for beginning of object key string"],
    ["[1 2]", "invalid character at input byte 3 after array element"],
    ["[1,]", "invalid character at input byte 3 looking for beginning of value"],
    ['["é\x01"]', "invalid character at input byte 4 in string literal"],
    ['"\\x"', "invalid character at input byte 2 in string escape code"],
    ['"\\u12g4"', "invalid character at input byte 5 in \\u hexadecimal character escape"],
    ["trux", "invalid character at input byte 3 in literal true (expecting 'e')"],
    ["-a", "invalid character at input byte 1 in numeric literal"],
    ["1.x", "invalid character at input byte 2 after decimal point in numeric literal"],
    ["1e+x", "invalid character at input byte 3 in exponent of numeric literal"],
    ["01", "invalid character at input byte 1 after top-level value"],
    ["{} {}", "invalid character at input byte 3 after top-level value"],
  ])("json(%p) fails with %p, without the text", (input, message) => {
    expect(failure("json", input).message).toBe(message);
  });

  test("json and jsonArray decode text as encoding/json: bytes that are not UTF-8 and lone surrogates become U+FFFD", () => {
    // \udce9 here is the escape of the byte 0xE9 (see bytes.ts); "\\ud83d" is JSON's escape of a lone surrogate.
    expect(call("json", '{"k":"x\udce9y","s":"a\\ud83db","u":"\\udce9","pair":"\\ud83d\\ude00","k\udcff":1}')).toEqual({
      k: "x\ufffdy",
      s: "a\ufffdb",
      u: "\ufffd",
      pair: "\u{1F600}",
      "k\ufffd": 1,
    });
    // Of two keys that are equal once decoded, the last wins, as in Go.
    expect(call("json", '{"\\ud800":1,"\\ufffd":2,"o":{"\\udfff":3}}')).toEqual({ "\ufffd": 2, o: { "\ufffd": 3 } });
    // A surrogate's escape next to a byte that is not UTF-8 does not pair with the byte's escape.
    expect(call("json", '{"k":"\\ud83d\udce9"}')).toEqual({ k: "\ufffd\ufffd" });
    expect(call("jsonArray", '["\udcff", {"a":["\\udc00"]}]')).toEqual(["\ufffd", { a: ["\ufffd"] }]);
  });

  test("a number too large for a float64 is Go's unmarshal error, without the number", () => {
    const message = "json: cannot unmarshal number into Go value of type float64";
    expect(failure("json", '{"n":1e400}').message).toBe(message);
    expect(failure("json", '{"a":[1,{"n":-1e309}]}').message).toBe(message);
    expect(failure("jsonArray", "[1.7976931348623159e308]").message).toBe(message);
    expect(call("json", '{"max":1.7976931348623157e308,"tiny":1e-400}')).toEqual({ max: Number.MAX_VALUE, tiny: 0 });
    // Go checks the outer type first.
    expect(failure("json", "[1e400]").message).toBe("json: cannot unmarshal array into Go value of type map[string]interface {}");
  });

  test("json takes Go's 10,000 levels of nesting, and refuses one more", () => {
    const nested = (levels: number) => '{"a":'.repeat(levels) + '"\udce9"' + "}".repeat(levels);
    let v = call("json", nested(10_000));
    for (let i = 1; i < 10_000; i++) v = (v as { a: unknown }).a;
    expect(v).toEqual({ a: "\ufffd" });
    expect(failure("json", nested(10_001)).message).toBe("invalid character at input byte 50000 exceeded max depth");
  });

  test("jsonArray parses an array", () => {
    expect(call("jsonArray", '[1, "a", {"b": null}]')).toEqual([1, "a", { b: null }]);
    expect(call("jsonArray", "null")).toEqual([]);
    expect(failure("jsonArray", "{}").message).toBe("json: cannot unmarshal object into Go value of type []interface {}");
    expect(failure("jsonArray", '"s"').message).toBe("json: cannot unmarshal string into Go value of type []interface {}");
    expect(failure("jsonArray", "[1,").func).toBe("jsonArray");
  });

  test("base64 round trip of UTF-8", () => {
    expect(call("base64Encode", "hello, 世界")).toBe("aGVsbG8sIOS4lueVjA==");
    expect(call("base64Decode", "aGVsbG8sIOS4lueVjA==")).toBe("hello, 世界");
    expect(call("base64Encode", "")).toBe("");
    expect(call("base64Decode", "")).toBe("");
    expect(call("base64Decode", "aGVs\r\nbG8=\n")).toBe("hello");
  });

  test.each([
    ["aGVsbG8", 4],
    ["aGVs!G8=", 4],
    ["aGVsbG8=x", 8],
    ["====", 0],
    ["aG==bG8=", 4],
    ["aGVsb===", 5],
    ["aGVsbA=", 7],
  ])("base64Decode(%p) fails at byte %p, as StdEncoding does", (input, at) => {
    const err = failure("base64Decode", input);
    expect(err.message).toBe(`illegal base64 data at input byte ${at}`);
  });

  test("parseBool is strconv.ParseBool", () => {
    for (const s of ["1", "t", "T", "TRUE", "true", "True"]) expect(call("parseBool", s)).toBe(true);
    for (const s of ["0", "f", "F", "FALSE", "false", "False"]) expect(call("parseBool", s)).toBe(false);
    for (const s of ["yes", "tRUE", "", " true"]) {
      expect(failure("parseBool", s).message).toBe("strconv.ParseBool: invalid syntax");
    }
  });
});

describe("lists", () => {
  test("reverse returns a reversed copy", () => {
    const list = ["a", "b", "c"];
    expect(call("reverse", list)).toEqual(["c", "b", "a"]);
    expect(list).toEqual(["a", "b", "c"]);
    const pairs = call("gets", "/app/upstream/*") as KVPair[];
    expect((call("reverse", pairs) as KVPair[]).map((kv) => kv.Key)).toEqual(["/app/upstream/b", "/app/upstream/a"]);
    expect(call("reverse", "abc")).toBe("abc");
  });

  test("sortByLength and sortKVByLength are stable, by UTF-8 length, on a copy", () => {
    const list = ["ccc", "a", "bb", "d", "é"];
    expect(call("sortByLength", list)).toEqual(["a", "d", "bb", "é", "ccc"]);
    expect(list[0]).toBe("ccc");
    const pairs = [
      { Key: "/long/key", Value: "1" },
      { Key: "/k", Value: "2" },
      { Key: "/j", Value: "3" },
    ];
    expect((call("sortKVByLength", pairs) as KVPair[]).map((kv) => kv.Value)).toEqual(["2", "3", "1"]);
    expect(failure("sortByLength", ["a", 1n]).message).toBe("element 1: expected string, got int");
    expect(failure("sortKVByLength", ["a"]).message).toBe("element 0: expected a key/value pair, got string");
  });

  test("seq is inclusive and empty when first > last; its numbers are Go ints", () => {
    expect(call("seq", 3n, 5n)).toEqual([3n, 4n, 5n]);
    expect(call("seq", 1n, 1n)).toEqual([1n]);
    expect(call("seq", 5n, 3n)).toEqual([]);
    expect(call("seq", "-1", "1")).toEqual([-1n, 0n, 1n]);
    expect(failure("seq", 1n, 10_000_001n).message).toBe("sequence longer than 1000000 numbers");
  });
});

describe("arithmetic", () => {
  test("Go int arithmetic, on 64 bits", () => {
    expect(call("add", 1n, 2n)).toBe(3n);
    expect(call("sub", 1n, 5n)).toBe(-4n);
    expect(call("mul", -3n, 4n)).toBe(-12n);
    expect(call("div", 7n, 2n)).toBe(3n);
    expect(call("div", -7n, 2n)).toBe(-3n);
    expect(call("mod", -7n, 2n)).toBe(-1n);
    expect(call("mod", 7n, -2n)).toBe(1n);
    expect(call("mod", -4n, 2n)).toBe(0n);
    // Wrapping around as Go's int does, as confd prints it.
    expect(call("add", 2n ** 63n - 1n, 1n)).toBe(-(2n ** 63n));
    expect(call("mul", 2n ** 32n, 2n ** 32n)).toBe(0n);
    expect(call("div", -(2n ** 63n), -1n)).toBe(-(2n ** 63n));
  });

  test("numeric strings (what getv returns) and float64s without a fraction are integers too", () => {
    expect(call("add", "2", 3n)).toBe(5n);
    expect(call("mul", call("getv", "/app/config/db/port"), "2")).toBe(10864n);
    expect(call("add", "+1", "-1")).toBe(0n);
    expect(call("add", 1.0, 2n)).toBe(3n);
  });

  test("division by zero, non-integers and values beyond int64 are errors", () => {
    expect(failure("div", 1n, 0n).message).toBe("integer divide by zero");
    expect(failure("mod", 1n, "0").message).toBe("integer divide by zero");
    expect(failure("add", 1.5, 1n).message).toBe("argument 1: expected integer, got float64");
    expect(failure("sub", 1n, "x").message).toBe("argument 2: expected integer, got string");
    expect(failure("add", 1n, " 2").message).toBe("argument 2: expected integer, got string");
    expect(failure("mul", true, 1n).message).toBe("argument 1: expected integer, got bool");
    expect(failure("mul", "99999999999999999999", 1n).message).toBe("argument 1: integer out of range");
    expect(failure("mul", 1n, 2n ** 63n).message).toBe("argument 2: integer out of range");
    expect(failure("mul", 1n, 2 ** 63).message).toBe("argument 2: integer out of range");
  });

  test("atoi is strconv.Atoi", () => {
    expect(call("atoi", "42")).toBe(42n);
    expect(call("atoi", "-7")).toBe(-7n);
    expect(call("atoi", "+3")).toBe(3n);
    expect(call("atoi", "007")).toBe(7n);
    expect(call("atoi", "9223372036854775807")).toBe(2n ** 63n - 1n);
    for (const s of ["", "1.5", " 1", "1_000", "0x10", "+"]) {
      expect(failure("atoi", s).message).toBe("strconv.Atoi: invalid syntax");
    }
    expect(failure("atoi", "9223372036854775808").message).toBe("strconv.Atoi: value out of range");
  });
});

describe("datetime", () => {
  test("without a layout it is a time.Time for now", () => {
    const t = call("datetime");
    expect(t).toBeInstanceOf(GoTime);
    expect((t as GoTime).UnixMilli()).toBe(BigInt(fixedNow.getTime()));
    expect((t as GoTime).UTC().String()).toBe("2009-06-15 12:00:00 +0000 UTC");
  });

  test("with a layout it is the formatted string", () => {
    expect(call("datetime", "2006")).toBe("2009");
    expect(call("datetime", "Jan 2006")).toBe("Jun 2009");
  });
});

describe("DNS functions", () => {
  test("lookupIP sorts as strings; V4 and V6 filter on . and :", () => {
    expect(call("lookupIP", "multi.test")).toEqual(["10.0.0.10", "10.0.0.2", "::1", "fe80::1"]);
    expect(call("lookupIPV4", "multi.test")).toEqual(["10.0.0.10", "10.0.0.2"]);
    expect(call("lookupIPV6", "multi.test")).toEqual(["::1", "fe80::1"]);
    expect(call("lookupIP", "unknown.test")).toEqual([]);
  });

  test("lookupSRV sorts by Target, Port, Priority and Weight run together", () => {
    const records = call("lookupSRV", "etcd", "tcp", "example.com") as SRVRecord[];
    expect(records.map((r) => `${r.Target}:${r.Port}`)).toEqual([
      "a.example.com.:2379",
      "a.example.com.:2380",
      "b.example.com.:2379",
    ]);
    // net.SRV's numbers are Go ints.
    expect(records[0]).toEqual({ Target: "a.example.com.", Port: 2379n, Priority: 10n, Weight: 5n });
    expect(call("lookupSRV", "x", "udp", "example.com")).toEqual([]);
  });

  test("a DnsCache miss is recorded, resolved once, then answered", async () => {
    const asked: string[] = [];
    const resolver: DnsResolver = {
      lookupIP: async (name) => {
        asked.push(name);
        return ["192.0.2.1"];
      },
      lookupSRV: async (fqdn) => {
        asked.push(fqdn);
        throw new Error("NXDOMAIN");
      },
    };
    const cache = new DnsCache(resolver);
    const funcs = createFuncs(new Map(), { dns: cache });
    expect(funcs.lookupIP?.("svc.test")).toEqual([]);
    expect(funcs.lookupIPV4?.("svc.test")).toEqual([]);
    expect(funcs.lookupSRV?.("etcd", "tcp", "svc.test")).toEqual([]);
    expect(cache.pending).toBe(2);
    await cache.resolvePending();
    expect(cache.pending).toBe(0);
    expect(asked.sort()).toEqual(["_etcd._tcp.svc.test", "svc.test"]);
    expect(funcs.lookupIP?.("svc.test")).toEqual(["192.0.2.1"]);
    // A failed lookup is cached as no records, like confd.
    expect(cache.srv("etcd", "tcp", "svc.test")).toEqual([]);
    expect(cache.pending).toBe(0);
  });

  test("the system resolver answers localhost and caches [] for an unresolvable SRV name", async () => {
    const cache = new DnsCache();
    expect(cache.ip("localhost")).toBeUndefined();
    expect(cache.srv("etcd-client", "tcp", "nonexistent.invalid")).toBeUndefined();
    expect(cache.pending).toBe(2);
    await cache.resolvePending();
    expect(cache.ip("localhost")).toContain("127.0.0.1");
    expect(cache.srv("etcd-client", "tcp", "nonexistent.invalid")).toEqual([]);
    expect(cache.pending).toBe(0);
  });

  test("SRV query names follow net.LookupSRV", () => {
    expect(srvQueryName("etcd", "tcp", "example.com")).toBe("_etcd._tcp.example.com");
    expect(srvQueryName("", "", "_x._udp.example.com")).toBe("_x._udp.example.com");
  });
});

describe("comparisons", () => {
  test("eq compares basic values and is true if any later argument matches", () => {
    expect(call("eq", 1n, 1n)).toBe(true);
    expect(call("eq", 1n, 2n, 3n, 1n)).toBe(true);
    expect(call("eq", "a", "b", "c")).toBe(false);
    expect(call("eq", true, true)).toBe(true);
    expect(call("eq", 1.5, 1.5)).toBe(true);
    expect(call("eq", 2, 2)).toBe(true);
    expect(call("eq", null, undefined)).toBe(true);
    expect(call("eq", null, "x")).toBe(false);
    expect(call("eq", { Key: "k", Value: "v" }, { Key: "k", Value: "v" })).toBe(true);
    expect(failure("eq", 1n).message).toBe("missing argument for comparison");
  });

  test("a number and a string are incompatible, as in Go, even when the string spells the number", () => {
    expect(failure("eq", call("getv", "/app/config/db/port"), 5432n).message).toBe("incompatible types for comparison: string and int");
    expect(failure("lt", "10", 9n).message).toBe("incompatible types for comparison: string and int");
    expect(call("eq", "80", "80.0")).toBe(false);
    expect(call("lt", "10", "9")).toBe(true);
  });

  test("an int and a float64 are incompatible, as in Go, even when their values are equal", () => {
    expect(failure("eq", 1n, 1).message).toBe("incompatible types for comparison: int and float64");
    expect(failure("lt", 1.5, 2n).message).toBe("incompatible types for comparison: float64 and int");
    expect(call("eq", (call("json", '{"port": 80}') as { port: unknown }).port, 80.0)).toBe(true);
  });

  test("incompatible and non-comparable operands are errors", () => {
    expect(failure("eq", 80n, "http").message).toBe("incompatible types for comparison: int and string");
    expect(failure("eq", true, 1n).message).toBe("incompatible types for comparison: bool and int");
    expect(failure("eq", "a", ["a"]).message).toBe("incompatible types for comparison: string and []interface {}");
    expect(failure("eq", [1], [1]).message).toBe("non-comparable type []interface {}");
    expect(failure("eq", [1], {}).message).toBe("non-comparable types []interface {} and map[string]interface {}");
    expect(failure("lt", true, false).message).toBe("invalid type for comparison");
    expect(failure("lt", null, 1n).message).toBe("invalid type for comparison");
    expect(failure("gt", 1n, "x").message).toBe("incompatible types for comparison: int and string");
    expect(failure("eq").message).toBe("wrong number of args for eq: want at least 1 got 0");
  });

  test("ne, lt, le, gt, ge", () => {
    expect(call("ne", "a", "b")).toBe(true);
    expect(call("ne", 1, 1)).toBe(false);
    expect(call("lt", 1, 2)).toBe(true);
    expect(call("lt", "b", "a")).toBe(false);
    expect(call("le", 2, 2)).toBe(true);
    expect(call("le", 3, 2)).toBe(false);
    expect(call("gt", 3, 2)).toBe(true);
    expect(call("gt", 2, 2)).toBe(false);
    expect(call("ge", 2, 2)).toBe(true);
    expect(call("ge", "a", "b")).toBe(false);
    expect(failure("ne", 1, 2, 3).message).toBe("wrong number of args for ne: want 2 got 3");
  });
});

describe("logic and builtins", () => {
  test("Go truth", () => {
    for (const v of [false, 0, 0n, "", null, undefined, [], {}, new Map()]) expect(isTrue(v)).toBe(false);
    for (const v of [true, 1, -1, NaN, "0", [0], { a: 0 }, { Key: "", Value: "" }, new GoTime(new Date(0))]) {
      expect(isTrue(v)).toBe(true);
    }
  });

  test("and returns the first false argument or the last; or the first true or the last", () => {
    expect(call("and", 1, 0, 2)).toBe(0);
    expect(call("and", 1, "x")).toBe("x");
    expect(call("or", 0, "", "x", "y")).toBe("x");
    expect(call("or", 0, "")).toBe("");
    expect(call("and", "only")).toBe("only");
    expect(call("and", null, "x")).toBe(null);
    expect(call("or", "x", undefined)).toBe("x");
    expect(failure("or").message).toBe("wrong number of args for or: want at least 1 got 0");
  });

  test("not and default", () => {
    expect(call("not", 0)).toBe(true);
    expect(call("not", [])).toBe(true);
    expect(call("not", "x")).toBe(false);
    expect(call("default", "", "fallback")).toBe("fallback");
    expect(call("default", "set", "fallback")).toBe("set");
    expect(call("default", 0, 5)).toBe(5);
    expect(call("default", [], ["x"])).toEqual(["x"]);
  });

  test("len counts UTF-8 bytes of strings, elements and keys", () => {
    expect(call("len", "héllo")).toBe(6n);
    expect(call("len", "")).toBe(0n);
    expect(call("len", [1, 2])).toBe(2n);
    expect(call("len", { a: 1, b: 2 })).toBe(2n);
    expect(call("len", new Map([[1, 2]]))).toBe(1n);
    expect(failure("len", 5n).message).toBe("len of type int");
    expect(failure("len", { Key: "k", Value: "v" }).message).toBe("len of type memkv.KVPair");
    expect(failure("len", null).message).toBe("len of nil pointer");
  });

  test("printf is Go's Sprintf", () => {
    expect(call("printf", "%-10s|%05d|%v", "db", 42n, ["a"])).toBe("db        |00042|[a]");
    expect(call("printf", "%s:%d", call("getv", "/app/config/db/host"), 5432n)).toBe("db.local:5432");
    expect(call("printf", "%v %T", call("add", 1n, 2n), (call("json", '{"f": 12345678}') as { f: unknown }).f)).toBe("3 float64");
    expect(call("printf", "plain")).toBe("plain");
  });
});
