// The two engines agree wherever handlebars can say what a Go template says: one table of cases, each
// written in both languages, rendered through each engine's real compile and run sides (the Go parser
// or handlebars.ts, then template-go.ts or template-handlebars.ts) over one store, with one expected
// output or one error. The Go engine answers with text/template's builtins (eq, len, printf...),
// handlebars with the function library, so the table also holds the two to the same rules (govalue.ts).
import { afterAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { ConfdError } from "../src/errors.ts";
import { funcNames } from "../src/funcs.ts";
import { parseGoTemplate } from "../src/gotemplate-parse.ts";
import { compileHandlebars } from "../src/handlebars.ts";
import { instantiateGo } from "../src/template-go.ts";
import { instantiateHandlebars } from "../src/template-handlebars.ts";
import { tempDir } from "./helpers.ts";

const store = new Map([
  ["/db/host", "db.local"],
  ["/db/port", "5432"],
  ["/up/a", "10.0.0.1"],
  ["/up/b", "10.0.0.2"],
  ["/svc/web/port", "80"],
  ["/list", "c,a,b"],
  ["/j", '{"port": 8080, "ratio": 1.5, "tags": ["x", "y"], "none": null}'],
  ["/arr", '[1.5, "a", null]'],
  ["/b64", "aGVsbG8="],
  ["/flag", "true"],
]);

interface Case {
  name: string;
  go: string;
  /** The same template in handlebars; the Go source when it reads the same in both. */
  hbs?: string;
  /** The output of both. */
  out?: string;
  /** The function's error message, which both errors end with. */
  err?: string;
}

const cases: Case[] = [
  // Store and strings.
  { name: "getv and its default", go: '{{getv "/db/host"}} {{getv "/nope" "dflt"}}', out: "db.local dflt" },
  {
    name: "gets",
    go: '{{range gets "/up/*"}}{{.Key}}={{.Value}} {{end}}',
    hbs: '{{#each (gets "/up/*")}}{{Key}}={{Value}} {{/each}}',
    out: "/up/a=10.0.0.1 /up/b=10.0.0.2 ",
  },
  { name: "getvs and join", go: '{{join (getvs "/up/*") ","}}', out: "10.0.0.1,10.0.0.2" },
  { name: "exists", go: '{{exists "/db/host"}} {{exists "/nope"}}', out: "true false" },
  { name: "ls and lsdir", go: '{{join (ls "/svc/web") ","}}|{{join (lsdir "/") ","}}', out: "port|db,svc,up" },
  { name: "base and dir", go: '{{base "/a/b/"}} {{dir "/a/b/c"}}', out: "b /a/b" },
  {
    name: "string functions",
    go: '{{join (split (getv "/list") ",") "-"}} {{toUpper "straße"}} {{replace "a-b-c" "-" "_" -1}} {{trimSuffix "x.example." "."}} {{contains "abc" "b"}}',
    out: "c-a-b STRAßE a_b_c x.example true",
  },
  { name: "getenv default", go: '{{getenv "CONFD_TEST_SURELY_UNSET" "d"}}', out: "d" },
  { name: "base64 and parseBool", go: '{{base64Decode (getv "/b64")}} {{base64Encode "hello"}} {{parseBool (getv "/flag")}}', out: "hello aGVsbG8= true" },
  // Data.
  {
    name: "a JSON object's fields",
    go: '{{$j := json (getv "/j")}}{{join $j.tags "+"}} {{len $j.tags}} {{printf "%v %T" $j.ratio $j.ratio}}',
    hbs: '{{#with (json (getv "/j"))}}{{join tags "+"}} {{len tags}} {{printf "%v %T" ratio ratio}}{{/with}}',
    out: "x+y 2 1.5 float64",
  },
  { name: "a JSON array", go: '{{printf "%v|%T" (jsonArray (getv "/arr")) (jsonArray (getv "/arr"))}}', out: "[1.5 a <nil>]|[]interface {}" },
  { name: "map", go: '{{printf "%v" (map "b" 2 "a" "x")}}', out: "map[a:x b:2]" },
  {
    name: "reverse and sortByLength",
    go: '{{join (reverse (split "a,b,c" ",")) ""}} {{join (sortByLength (split "ccc,a,bb" ",")) ","}}',
    out: "cba a,bb,ccc",
  },
  { name: "a pair prints as Go's struct", go: '{{printf "%v|%+v" (get "/db/host") (get "/db/host")}}', out: "{/db/host db.local}|{Key:/db/host Value:db.local}" },
  // Numbers: ints from constants and functions, float64s from fractions and JSON.
  { name: "arithmetic", go: '{{add 1 2}} {{sub 1 5}} {{mul 3 4}} {{div 7 2}} {{mod -7 2}} {{add (getv "/db/port") 1}}', out: "3 -4 12 3 -1 5433" },
  { name: "seq", go: "{{range seq 1 3}}{{.}}{{end}}", hbs: "{{#each (seq 1 3)}}{{this}}{{/each}}", out: "123" },
  { name: "ints print and are ints", go: '{{printf "%v %T %05d %x" (add 40 2) (len "héllo") 42 255}}', out: "42 int 00042 ff" },
  { name: "atoi", go: '{{printf "%d %T" (atoi "-7") (atoi "7")}}', out: "-7 int" },
  { name: "float64s print as Go's", go: '{{printf "%v %T %.2f %g" 1.5 2.5 0.125 0.0000001}}', out: "1.5 float64 0.12 1e-07" },
  { name: "printf's verbs and errors", go: '{{printf "%-6s|%q|%v|%d|%!"  "db" "a" (split "a,b" ",") "x"}}', out: 'db    |"a"|[a b]|%!d(string=x)|%!!(MISSING)' },
  // Truth and comparison.
  {
    name: "eq, ne, lt, le, gt, ge",
    go: '{{eq (getv "/db/host") "x" "db.local"}} {{ne 1 2}} {{lt "10" "9"}} {{le 2 2}} {{gt 3 2}} {{ge 1 2}} {{lt 1.5 2.5}}',
    out: "true true true true true false true",
  },
  { name: "eq of an int result and a constant", go: '{{eq (len (getvs "/up/*")) 2}}', out: "true" },
  { name: "eq of a pair and a pair", go: '{{eq (get "/db/host") (get "/db/host")}} {{eq (get "/db/host") (get "/db/port")}}', out: "true false" },
  { name: "and, or, not, default", go: '{{and 1 0 2}} {{or "" 0 "x"}} {{not ""}} {{default "" "fb"}} {{default "v" "fb"}}', out: "0 x true fb v" },
  { name: "Go's truth of empty and non-empty values", go: '{{not (json "{}")}} {{not (split "a" ",")}} {{not 0.0}} {{not (get "/db/host")}}', out: "true false true false" },
  // Errors, with the same message from both.
  { name: "an int and a string", go: '{{eq 1 "1"}}', err: "incompatible types for comparison: int and string" },
  { name: "a store value and an int", go: '{{eq (getv "/db/port") 5432}}', err: "incompatible types for comparison: string and int" },
  { name: "an int and a float64", go: "{{eq 1 1.5}}", err: "incompatible types for comparison: int and float64" },
  { name: "ordering booleans", go: "{{lt true false}}", err: "invalid type for comparison" },
  { name: "lists do not compare", go: '{{eq (split "a" ",") (split "a" ",")}}', err: "non-comparable type []interface {}" },
  { name: "len of an int", go: "{{len 3}}", err: "len of type int" },
  { name: "a missing key", go: '{{getv "/nope"}}', err: "key does not exist: /nope" },
  { name: "a non-integer for add", go: '{{add 1 "x"}}', err: "argument 2: expected integer, got string" },
  { name: "atoi of a word", go: '{{atoi "x"}}', err: "strconv.Atoi: invalid syntax" },
  { name: "division by zero", go: "{{div 1 0}}", err: "integer divide by zero" },
  { name: "json of an array", go: '{{json (getv "/arr")}}', err: "json: cannot unmarshal array into Go value of type map[string]interface {}" },
];

const tmp = tempDir("confd-engines-");
afterAll(() => tmp.cleanup());
let files = 0;

type Outcome = { out: string } | { err: string };

async function render(engine: "go" | "handlebars", src: string): Promise<Outcome> {
  const file = join(tmp.path, `t${files++}.${engine === "go" ? "tmpl" : "hbs"}`);
  writeFileSync(file, src);
  const render =
    engine === "go" ? instantiateGo({ engine, file, tree: parseGoTemplate("t.tmpl", src, funcNames()) }) : instantiateHandlebars(compileHandlebars(file, tmp.path));
  try {
    return { out: await render(store) };
  } catch (err) {
    if (err instanceof ConfdError) return { err: err.message };
    throw err;
  }
}

describe("both engines render the same", () => {
  for (const c of cases) {
    test(c.name, async () => {
      const go = await render("go", c.go);
      const hbs = await render("handlebars", c.hbs ?? c.go);
      if (c.out !== undefined) {
        expect(go).toEqual({ out: c.out });
        expect(hbs).toEqual({ out: c.out });
        return;
      }
      // Go's message says where and what it executed; handlebars' names the function.
      expect(go).toEqual({ err: expect.stringMatching(/^template: t\.tmpl:1:\d+: executing "t\.tmpl" at <.*>: error calling \w+: /) });
      expect(hbs).toEqual({ err: expect.stringMatching(/^\w+: /) });
      expect((go as { err: string }).err).toEndWith(`: ${c.err}`);
      expect((hbs as { err: string }).err).toEndWith(`: ${c.err}`);
    });
  }
});

describe("where handlebars cannot say the same", () => {
  // Handlebars reads 12345678 and 12345678.0 alike, so a whole JSON number reaches a helper as an int
  // (docs/templates.md, printf); in Go it stays the float64 encoding/json made it, as confd prints it.
  test("a whole JSON number is a float64 in Go, an int when handlebars passes it", async () => {
    const go = await render("go", '{{$v := json "{\\"f\\": 12345678}"}}{{printf "%v %T" $v.f $v.f}} {{$v.f}}');
    const hbs = await render("handlebars", '{{#with (json "{\\"f\\": 12345678}")}}{{printf "%v %T" f f}}{{/with}}');
    expect(go).toEqual({ out: "1.2345678e+07 float64 1.2345678e+07" });
    expect(hbs).toEqual({ out: "12345678 int" });
  });
});
