// No value read from the store appears in an error or a log line, from either engine: a value may be a
// password. Errors name the function, the template position and the key instead (see FuncError).
import { afterAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { ConfdError } from "../src/errors.ts";
import { funcNames } from "../src/funcs.ts";
import { BUILTINS } from "../src/gotemplate-builtins.ts";
import { parseGoTemplate } from "../src/gotemplate-parse.ts";
import { compileHandlebars } from "../src/handlebars.ts";
import { instantiateGo } from "../src/template-go.ts";
import { instantiateHandlebars } from "../src/template-handlebars.ts";
import { runConfd, tempDir, writeTree } from "./helpers.ts";

const SECRET = "s3cr3t-VALUE-9f8e";
// Digits, for the functions that take numbers; too large for atoi.
const SECRET_NUMBER = "98765432109876543210";

const store = new Map([
  ["/password", SECRET],
  ["/number", SECRET_NUMBER],
  ["/object", JSON.stringify({ password: SECRET })],
  ["/list", JSON.stringify([SECRET])],
  ["/truncated", JSON.stringify({ password: SECRET }).slice(0, -1)],
  ["/port", "8080"],
  // JSON numbers too large for a float64.
  ["/huge", `{"n":${SECRET_NUMBER}e400}`],
  ["/hugeList", `[${SECRET_NUMBER}e400]`],
  // A value that is a bad pattern, and one that two keys hold.
  ["/pattern", "s3cr3t-[x"],
  ["/twin/a", "s3cr3t-twin"],
  ["/twin/b", "s3cr3t-twin"],
]);

// Arguments that carry the secret inside a structure, for the functions that only check types.
const OBJECT = '(json (getv "/object"))';
const LIST = '(jsonArray (getv "/list"))';

type Engine = "go" | "handlebars";

interface Failure {
  /** The function or builtin that fails; the error must name it. */
  fn: string;
  /** Template source, valid in both engines unless `engines` says otherwise. */
  src: string;
  /** The key the error must name. */
  key?: string;
  engines?: Engine[];
  /** What the Go engine's message says instead of "error calling <fn>:", where Go reports at an argument. */
  goSays?: string;
  /** What the message must say, in both engines. */
  says?: string;
}

const ONLY_GO: Engine[] = ["go"];

// Every way a library function or builtin can fail on what it is given.
const failures: Failure[] = [
  // Arguments that are keys are named, as keys are.
  { fn: "get", src: '{{get "/missing"}}', key: "/missing" },
  { fn: "getv", src: '{{getv "/missing"}}', key: "/missing" },
  { fn: "gets", src: '{{gets "/["}}', key: "/[" },
  { fn: "getvs", src: '{{getvs "/["}}', key: "/[" },
  // Unless the argument is a value from the store: then the key holding it is named instead.
  { fn: "get", src: '{{get (getv "/password")}}', key: "/password", says: "key does not exist: (the value of /password)" },
  { fn: "getv", src: '{{getv (getv "/password")}}', key: "/password", says: "key does not exist: (the value of /password)" },
  { fn: "getv", src: '{{getv (getv "/twin/a")}}', says: "key does not exist: (a value in the store)" },
  { fn: "gets", src: '{{gets (getv "/pattern")}}', key: "/pattern", says: "syntax error in pattern" },
  { fn: "getvs", src: '{{getvs (getv "/pattern")}}', key: "/pattern", says: "syntax error in pattern" },
  { fn: "ls", src: `{{ls ${OBJECT}}}` },
  { fn: "lsdir", src: `{{lsdir ${OBJECT}}}` },
  { fn: "exists", src: `{{exists ${OBJECT}}}` },

  // Values that do not parse are told by their key.
  { fn: "json", src: '{{json (getv "/password")}}', key: "/password" },
  { fn: "json", src: '{{json (getv "/truncated")}}', key: "/truncated" },
  { fn: "json", src: '{{json (getv "/list")}}', key: "/list" },
  { fn: "jsonArray", src: '{{jsonArray (getv "/password")}}', key: "/password" },
  { fn: "jsonArray", src: '{{jsonArray (getv "/object")}}', key: "/object" },
  { fn: "json", src: '{{json (getv "/huge")}}', key: "/huge" },
  { fn: "jsonArray", src: '{{jsonArray (getv "/hugeList")}}', key: "/hugeList" },
  { fn: "atoi", src: '{{atoi (getv "/password")}}', key: "/password" },
  { fn: "atoi", src: '{{atoi (getv "/number")}}', key: "/number" },
  { fn: "parseBool", src: '{{parseBool (getv "/password")}}', key: "/password" },
  { fn: "base64Decode", src: '{{base64Decode (getv "/password")}}', key: "/password" },
  { fn: "add", src: '{{add (getv "/password") 1}}', key: "/password" },
  { fn: "sub", src: '{{sub 1 (getv "/number")}}', key: "/number" },
  { fn: "mul", src: '{{mul (getv "/password") 2}}', key: "/password" },
  { fn: "div", src: '{{div 1 (getv "/password")}}', key: "/password" },
  { fn: "mod", src: '{{mod (getv "/password") 2}}', key: "/password" },
  { fn: "seq", src: '{{seq 1 (getv "/password")}}', key: "/password" },
  { fn: "replace", src: '{{replace "a" "b" "c" (getv "/password")}}', key: "/password" },

  // Values of the wrong type are told by their type.
  { fn: "base", src: `{{base ${OBJECT}}}` },
  { fn: "dir", src: `{{dir ${LIST}}}` },
  { fn: "split", src: `{{split ${OBJECT} ","}}` },
  { fn: "join", src: '{{join (getv "/password") ","}}' },
  { fn: "map", src: '{{map (getv "/password")}}' },
  { fn: "map", src: `{{map ${LIST} 1}}` },
  { fn: "getenv", src: `{{getenv ${OBJECT}}}` },
  { fn: "datetime", src: `{{datetime ${OBJECT}}}` },
  { fn: "toUpper", src: `{{toUpper ${OBJECT}}}` },
  { fn: "toLower", src: `{{toLower ${LIST}}}` },
  { fn: "contains", src: `{{contains ${OBJECT} "x"}}` },
  { fn: "trimSuffix", src: `{{trimSuffix ${LIST} "x"}}` },
  { fn: "lookupIP", src: `{{lookupIP ${OBJECT}}}` },
  { fn: "lookupIPV4", src: `{{lookupIPV4 ${OBJECT}}}` },
  { fn: "lookupIPV6", src: `{{lookupIPV6 ${OBJECT}}}` },
  { fn: "lookupSRV", src: `{{lookupSRV ${OBJECT} "tcp" "example.com"}}` },
  { fn: "fileExists", src: `{{fileExists ${OBJECT}}}` },
  { fn: "base64Encode", src: `{{base64Encode ${LIST}}}` },
  { fn: "sortByLength", src: '{{sortByLength (getv "/password")}}' },
  { fn: "sortByLength", src: `{{sortByLength (jsonArray "[1]")}}` },
  { fn: "sortKVByLength", src: `{{sortKVByLength ${LIST}}}` },
  { fn: "printf", src: `{{printf ${OBJECT}}}`, goSays: "wrong type for value; expected string; got map[string]interface {}" },
  { fn: "len", src: '{{len (atoi (getv "/port"))}}' },

  // Consul's catalog: a query read from the store that names no dependency is told by its key.
  { fn: "service", src: '{{service (getv "/pattern")}}', key: "/pattern", says: "invalid service query" },
  { fn: "service", src: '{{service "web" (getv "/password")}}', key: "/password", says: "invalid service query" },
  { fn: "services", src: '{{services (getv "/password")}}', key: "/password" },
  { fn: "nodes", src: '{{nodes (getv "/password")}}', key: "/password" },
  { fn: "checks", src: '{{checks (getv "/password")}}', key: "/password" },
  { fn: "events", src: `{{events ${OBJECT}}}` },

  // Comparisons: Go's builtins in the Go engine, the library's in handlebars.
  { fn: "eq", src: '{{eq (getv "/password") 1}}' },
  { fn: "eq", src: `{{eq ${LIST} ${OBJECT}}}` },
  { fn: "eq", src: `{{eq ${OBJECT} ${OBJECT}}}` },
  { fn: "ne", src: `{{ne ${LIST} ${LIST}}}` },
  { fn: "lt", src: '{{lt (getv "/password") 1}}' },
  { fn: "le", src: `{{le ${OBJECT} 1}}` },
  { fn: "gt", src: '{{gt 1 (getv "/password")}}' },
  { fn: "ge", src: `{{ge ${LIST} "x"}}` },

  // Go's builtins that are not library functions.
  { fn: "call", src: '{{getv "/password" | call}}', engines: ONLY_GO },
  { fn: "call", src: '{{call (getv "/password")}}', engines: ONLY_GO },
  { fn: "index", src: '{{index (getv "/password") 99}}', engines: ONLY_GO },
  { fn: "index", src: `{{index ${OBJECT} 1}}`, engines: ONLY_GO },
  { fn: "index", src: '{{index (getv "/password") "x"}}', engines: ONLY_GO },
  { fn: "slice", src: '{{slice (getv "/password") 5 2}}', engines: ONLY_GO },
  { fn: "slice", src: `{{slice ${OBJECT} 1}}`, engines: ONLY_GO },
  { fn: "slice", src: '{{slice (getv "/password") 1 2 3}}', engines: ONLY_GO },
];

// Each fails only on the number of its arguments.
const CANNOT_FAIL_ON_A_VALUE = ["and", "or", "not", "default", "reverse", "html", "js", "urlquery", "print", "println"];

// The engines' own errors about values.
const engineFailures: Array<{ name: string; src: string; engine: Engine; says: string }> = [
  { name: "range over a string", src: '{{range getv "/password"}}{{end}}', engine: "go", says: "range can't iterate over string" },
  { name: "range over a number with two variables", src: '{{range $i, $v := atoi (getv "/port")}}{{end}}', engine: "go", says: "can't use int to iterate" },
  { name: "a partial named by a value", src: '{{> (getv "/password")}}', engine: "handlebars", says: "partial names must be written in the template" },
];

const tmp = tempDir("confd-secrets-");
afterAll(() => tmp.cleanup());
let files = 0;

async function renderError(engine: Engine, src: string): Promise<ConfdError> {
  const file = join(tmp.path, `t${files++}.${engine === "go" ? "tmpl" : "hbs"}`);
  writeFileSync(file, src);
  try {
    const render =
      engine === "go" ? instantiateGo({ engine, file, tree: parseGoTemplate("t.tmpl", src, funcNames()) }) : instantiateHandlebars(compileHandlebars(file, tmp.path));
    await render(store);
  } catch (err) {
    if (err instanceof ConfdError) return err;
    throw err;
  }
  throw new Error(`${src} rendered`);
}

function expectNoSecret(text: string): void {
  for (const fragment of [SECRET, "s3cr3t", "9f8e", SECRET_NUMBER.slice(0, 8)]) expect(text).not.toContain(fragment);
}

describe("errors from template functions show no value", () => {
  test("every library function and Go builtin has a failing case, or cannot fail on a value", () => {
    const covered = new Set([...failures.map((f) => f.fn), ...CANNOT_FAIL_ON_A_VALUE]);
    const missing = [...funcNames(), ...BUILTINS.keys()].filter((name) => !covered.has(name));
    expect(missing).toEqual([]);
    const failing = new Set(failures.map((f) => f.fn));
    expect(CANNOT_FAIL_ON_A_VALUE.filter((name) => failing.has(name))).toEqual([]);
  });

  for (const f of failures) {
    for (const engine of f.engines ?? (["go", "handlebars"] as const)) {
      test(`${engine}: ${f.src}`, async () => {
        const err = await renderError(engine, f.src);
        expectNoSecret(err.message);
        expectNoSecret(err.describe());
        if (engine === "go") expect(err.message).toContain(f.goSays ?? `: error calling ${f.fn}: `);
        else expect(err.message).toStartWith(`${f.fn}: `);
        if (f.says !== undefined) expect(err.message).toContain(f.says);
        expect(err.context.key).toBe(f.key);
        if (f.key !== undefined) expect(err.describe()).toContain(f.key);
        // Where in the template: Go's message carries line and column, handlebars' context does.
        if (engine === "go") expect(err.message).toMatch(/^template: t\.tmpl:1:\d+: /);
        else expect(err.context).toMatchObject({ line: 1, column: expect.any(Number) });
      });
    }
  }

  for (const e of engineFailures) {
    test(`${e.engine}: ${e.name}`, async () => {
      const err = await renderError(e.engine, e.src);
      expectNoSecret(err.describe());
      expect(err.message).toContain(e.says);
    });
  }
});

describe("confd run by a user", () => {
  const templates = {
    go: 'user=admin\n{{with json (getv "/app/password")}}{{.}}{{end}}\n',
    handlebars: 'user=admin\n{{#with (json (getv "/app/password"))}}{{this}}{{/with}}\n',
  };
  for (const format of ["text", "json"]) {
    for (const engine of ["go", "handlebars"] as const) {
      test(`-log-format ${format}, ${engine}: a password that is not JSON fails the resource, unseen`, async () => {
        const dir = join(tmp.path, `cli-${format}-${engine}`);
        const src = engine === "go" ? "app.tmpl" : "app.hbs";
        writeTree(dir, {
          [`templates/${src}`]: templates[engine],
          "data.yaml": `app:\n  password: ${SECRET}\n`,
          "conf.d/app.toml": `[template]\nsrc = "${src}"\ndest = ${JSON.stringify(join(dir, "app.conf"))}\nkeys = ["/app"]\n`,
        });
        const r = await runConfd([
          "-onetime",
          ...(format === "json" ? ["-log-format", "json"] : []),
          "-log-level",
          "debug",
          ...["-backend", "file", "-file", join(dir, "data.yaml"), "-confdir", dir, "-config-file", join(dir, "none")],
        ]);
        expect(r.code).toBe(1);
        expectNoSecret(r.stdout + r.stderr);
        const line = r.stderr.split("\n").find((l) => l.includes("/app/password") && /error/i.test(l));
        expect(line).toMatch(engine === "go" ? /error calling json: invalid character at input byte 0/ : /json: invalid character at input byte 0/);
        if (format === "json") expect(JSON.parse(line!)).toMatchObject({ level: "error", msg: expect.stringMatching(/^resource app: /) });
        else expect(line).toMatch(/ ERROR resource app: /);
      });
    }
  }

  // A key or pattern taken from a value is a value: the error names the key that held it.
  for (const format of ["text", "json"]) {
    for (const engine of ["go", "handlebars"] as const) {
      test(`-log-format ${format}, ${engine}: a key or pattern read from the store is named by its key`, async () => {
        const dir = join(tmp.path, `cli-key-${format}-${engine}`);
        const ext = engine === "go" ? "tmpl" : "hbs";
        const resource = (name: string) =>
          `[template]\nsrc = "${name}.${ext}"\ndest = ${JSON.stringify(join(dir, name))}\nkeys = ["/db"]\n`;
        writeTree(dir, {
          [`templates/getv.${ext}`]: '{{getv (getv "/db/password")}}\n',
          [`templates/gets.${ext}`]: '{{gets (getv "/db/pattern")}}\n',
          "data.yaml": `db:\n  password: ${SECRET}\n  pattern: "${SECRET}["\n`,
          "conf.d/getv.toml": resource("getv"),
          "conf.d/gets.toml": resource("gets"),
        });
        const r = await runConfd([
          "-onetime",
          ...(format === "json" ? ["-log-format", "json"] : []),
          ...["-backend", "file", "-file", join(dir, "data.yaml"), "-confdir", dir, "-config-file", join(dir, "none")],
        ]);
        expect(r.code).toBe(1);
        expectNoSecret(r.stdout + r.stderr);
        const errors = r.stderr.split("\n").filter((l) => /error/i.test(l));
        const getv = errors.find((l) => l.includes("resource getv"));
        const gets = errors.find((l) => l.includes("resource gets"));
        const message = (line: string | undefined) => (format === "json" ? (JSON.parse(line!) as { msg: string }).msg : line);
        expect(message(getv)).toEndWith("getv: key does not exist: (the value of /db/password)");
        // The Go engine's message names the key already, in the action it quotes.
        expect(message(gets)).toEndWith(engine === "go" ? "syntax error in pattern" : "syntax error in pattern (key /db/pattern)");
        expect(message(gets)).toContain("/db/pattern");
      });
    }
  }
});
