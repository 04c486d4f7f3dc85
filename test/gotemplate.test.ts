// The Go text/template engine (src/gotemplate-*.ts) as a table: cases from Go's documentation and from
// Go's exec_test.go and parse/parse_test.go, adapted to this project's values (JSON-like data, confd's
// functions, GoTime), each with its exact output or exact error message; then confd's own integration
// templates, rendered byte for byte against upstream's expected files.
import { describe, expect, test } from "bun:test";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { createFuncs, type TemplateFunc } from "../src/funcs.ts";
import { executeGoTemplate, GoTemplateExecError } from "../src/gotemplate-exec.ts";
import { GoTemplateParseError, parseGoTemplate } from "../src/gotemplate-parse.ts";
import { GoTime } from "../src/gotime.ts";
import { CONFD_FIXTURE } from "./helpers.ts";

const store = new Map<string, string>([
  ["/app/a", "1"],
  ["/app/b", "2"],
  ["/db/host", "127.0.0.1"],
  ["/db/port", "3306"],
  ["/list", "x,y,z"],
  ["/json", '{"port": 8080, "hosts": ["a", "b"], "nested": {"k": "v"}, "nil": null, "f": 1000000.5, "big": 1e21}'],
  ["/upstream/app1", "10.0.1.10:8080"],
  ["/upstream/app2", "10.0.1.11:8080"],
]);

const library = createFuncs(store, {
  env: { HOSTNAME: "localhost" },
  now: () => new Date(Date.UTC(2009, 10, 10, 23, 4, 5)),
  fileExists: (p) => p === "/etc/hosts",
  dns: {
    ip: () => undefined,
    srv: (service, proto, name) =>
      service === "etcd" && proto === "tcp" && name === "example.com"
        ? [
            { Target: "b.example.com.", Port: 2380, Priority: 10, Weight: 5 },
            { Target: "a.example.com.", Port: 2379, Priority: 0, Weight: 0 },
          ]
        : undefined,
  },
});

// Helpers in the manner of exec_test.go's FuncMap.
const funcs: Record<string, TemplateFunc> = {
  ...library,
  die: () => {
    throw new Error("die");
  },
  echo: (x) => x,
  mapOfThree: () => ({ three: 3 }),
  zeroArgs: () => "zeroArgs",
};
const names = new Set(Object.keys(funcs));

const utc = { offsetMinutes: 0, name: "UTC" };

// exec_test.go's tVal, as JSON-like data with Go's ints as bigints: structs with fields become maps,
// except the shapes this project treats as structs (store pairs) and GoTime.
const tVal = {
  True: true,
  I: 17n,
  X: "x",
  S: "xyz",
  U: { V: "v" },
  FloatZero: 0,
  F: 1.5,
  SI: [3n, 4n, 5n],
  SIEmpty: [],
  SB: [true, false],
  MSI: { one: 1n, two: 2n, three: 3n },
  MSIone: { one: 1n },
  MSIEmpty: {},
  SMSI: [
    { one: 1n, two: 2n },
    { eleven: 11n, twelve: 12n },
  ],
  Empty3: [7n, 8n],
  Empty4: { V: "UinEmpty" },
  Null: null,
  Pair: { Key: "/k", Value: "v" },
  Time: new GoTime(new Date(Date.UTC(2009, 10, 10, 23, 0, 0)), utc),
  Map: new Map<string, bigint>([
    ["b", 2n],
    ["a", 1n],
  ]),
  PlusOne: (n: unknown) => (n as bigint) + 1n,
  Str: "it's",
};

interface Case {
  name: string;
  src: string;
  data?: unknown;
  /** The exact output. */
  out?: string;
  /** The exact message of a GoTemplateExecError. */
  err?: string;
  /** The exact message of a GoTemplateParseError. */
  parseErr?: string;
  /** The key an exec error carries. */
  key?: string;
}

const at = (pos: string, ctx: string, what: string, name = "t"): string => `template: t:${pos}: executing "${name}" at <${ctx}>: ${what}`;
const parseError = (line: number, what: string): string => `template: t:${line}: ${what}`;

const cases: Case[] = [
  // Trivial cases.
  { name: "empty", src: "", out: "" },
  { name: "text", src: "some text", out: "some text" },
  { name: "nil action", src: "{{nil}}", err: at("1:2", "nil", "nil is not a command") },

  // Fields of maps and structs.
  { name: ".X", src: "-{{.X}}-", data: tVal, out: "-x-" },
  { name: ".U.V", src: "-{{.U.V}}-", data: tVal, out: "-v-" },
  { name: "map .one", src: "{{.MSI.one}}", data: tVal, out: "1" },
  { name: "map .NO", src: "{{.MSI.NO}}", data: tVal, out: "<no value>" },
  { name: "map .WRONG args", src: "{{.MSI.one 1}}", data: tVal, err: at("1:6", ".MSI.one", "one is not a method but has arguments") },
  { name: "Map instance", src: "{{.Map.a}}{{.Map.zz}}", data: tVal, out: "1<no value>" },
  { name: "struct field", src: "{{.Pair.Key}}={{.Pair.Value}}", data: tVal, out: "/k=v" },
  { name: "struct missing field", src: "{{.Pair.Nope}}", data: tVal, err: at("1:7", ".Pair.Nope", "can't evaluate field Nope in type memkv.KVPair") },
  { name: "struct field with args", src: "{{.Pair.Key 1}}", data: tVal, err: at("1:7", ".Pair.Key", "Key has arguments but cannot be invoked as function") },
  { name: "field of a string", src: "{{.X.Y}}", data: tVal, err: at("1:4", ".X.Y", "can't evaluate field Y in type string") },
  { name: "field of int data", src: "hello, {{.X.Y}}", data: 0n, err: at("1:11", ".X.Y", "can't evaluate field X in type int") },
  { name: "field of null", src: "{{.Null.x}}", data: tVal, err: at("1:7", ".Null.x", "nil pointer evaluating interface {}.x") },

  // Dots of all kinds.
  { name: "dot int", src: "<{{.}}>", data: 13n, out: "<13>" },
  { name: "dot float", src: "<{{.}}>", data: 15.1, out: "<15.1>" },
  { name: "dot bool", src: "<{{.}}>", data: true, out: "<true>" },
  { name: "dot string", src: "<{{.}}>", data: "hello", out: "<hello>" },
  { name: "dot slice", src: "<{{.}}>", data: [-1n, -2n, -3n], out: "<[-1 -2 -3]>" },
  { name: "dot map", src: "<{{.}}>", data: { two: 22n }, out: "<map[two:22]>" },
  { name: "dot struct", src: "<{{.}}>", data: { Key: "a", Value: "b" }, out: "<{a b}>" },
  { name: "nil data", src: "{{.}} {{.foo}} {{(.).foo}}", out: "<no value> <no value> <no value>" },

  // Variables.
  { name: "$ int", src: "{{$}}", data: 123n, out: "123" },
  { name: "$.I", src: "{{$.I}}", data: tVal, out: "17" },
  { name: "$.U.V", src: "{{$.U.V}}", data: tVal, out: "v" },
  { name: "declare in action", src: "{{$x := $.U.V}}{{$x}}", data: tVal, out: "v" },
  { name: "simple assignment", src: "{{$x := 2}}{{$x = 3}}{{$x}}", out: "3" },
  { name: "nested assignment", src: "{{$x := 2}}{{if true}}{{$x = 3}}{{end}}{{$x}}", out: "3" },
  {
    name: "nested assignment changes the last declaration",
    src: "{{$x := 1}}{{if true}}{{$x := 2}}{{if true}}{{$x = 3}}{{end}}{{end}}{{$x}}",
    out: "1",
  },
  { name: "declaration ends with its block", src: "{{if true}}{{$y := 1}}{{end}}{{$y}}", parseErr: parseError(1, 'undefined variable "$y"') },
  { name: "variable with fields", src: "{{$x := .U}}{{$x.V}}", data: tVal, out: "v" },
  { name: "variable chain position", src: "{{$x := .}}{{$x.U.Nope.Deeper}}", data: tVal, out: "<no value>" },
  { name: "root in range", src: "{{range .SI}}{{$.X}}{{end}}", data: tVal, out: "xxx" },

  // Null and missing values.
  { name: "empty nil", src: "{{.Null}}", data: tVal, out: "<no value>" },
  { name: "empty with slice", src: "{{.Empty3}}", data: tVal, out: "[7 8]" },
  { name: "empty with map, field", src: "{{.Empty4.V}}", data: tVal, out: "UinEmpty" },
  { name: "unparenthesized non-function", src: "{{1 2}}", err: at("1:2", "1", "can't give argument to non-function 1") },
  { name: "parenthesized non-function", src: "{{(1) 2}}", err: at("1:2", "(1) 2", "can't give argument to non-function 1") },
  { name: "parenthesized non-function with no args", src: "{{(1)}}", out: "1" },

  // Methods of values (GoTime).
  { name: "method without args", src: "{{.Time.Year}}-{{.Time.Month}}-{{.Time.Day}}", data: tVal, out: "2009-November-10" },
  { name: "method with args", src: '{{.Time.Format "2006-01-02 15:04"}}', data: tVal, out: "2009-11-10 23:00" },
  { name: "chained methods", src: "{{.Time.UTC.Unix}}", data: tVal, out: "1257894000" },
  { name: "method on function result", src: '{{datetime.Format "Jan 2, 2006"}}', out: "Nov 10, 2009" },
  { name: "method on parenthesized result", src: '{{(datetime).UTC.Format "15:04:05"}}', out: "23:04:05" },
  { name: "method in pipeline", src: '{{"2006" | .Time.Format}}', data: tVal, out: "2009" },
  { name: "method wrong arity", src: "{{.Time.Format}}", data: tVal, err: at("1:7", ".Time.Format", "wrong number of args for Format: want 1 got 0") },
  { name: "unknown method", src: "{{.Time.Nope}}", data: tVal, err: at("1:7", ".Time.Nope", "can't evaluate field Nope in type time.Time") },
  { name: "lower-case name is no method", src: "{{.Time.format}}", data: tVal, err: at("1:7", ".Time.format", "can't evaluate field format in type time.Time") },
  { name: "printing a time", src: "{{.Time}}", data: tVal, out: "2009-11-10 23:00:00 +0000 UTC" },

  // Function calls and pipelines.
  { name: "zero-arg function", src: "{{zeroArgs}}", out: "zeroArgs" },
  { name: "pipeline", src: '{{"x" | printf "%s!"}}', out: "x!" },
  { name: "pipeline last arg", src: '{{"b" | printf "%s%s" "a"}}', out: "ab" },
  { name: "pipeline chain", src: '{{getv "/db/host" | printf "[%s]" | printf "<%s>"}}', out: "<[127.0.0.1]>" },
  { name: "parens in pipeline", src: "{{printf `%d %d %d` (1) (2 | add 3) (add 4 (add 5 6))}}", out: "1 5 15" },
  { name: "parens: $ in paren", src: "{{($).X}}", data: tVal, out: "x" },
  { name: "parens: $ in paren in pipe", src: "{{($ | echo).X}}", data: tVal, out: "x" },
  { name: "parens: spaces and args", src: '{{(map "up" "down" "left" "right").left}}', out: "right" },
  { name: "field chain on function", src: "{{mapOfThree.three}}-{{(mapOfThree).three}}", out: "3-3" },
  { name: "chain through explicit nil", src: "{{(nil).True}}", err: at("1:3", "nil", "nil is not a command") },
  { name: "declare nil", src: "{{$x := nil}}{{$x.anything}}", err: at("1:8", "nil", "nil is not a command") },
  { name: "pipelined wrong type", src: "{{true|printf}}", err: at("1:7", "printf", "wrong type for value; expected string; got bool") },
  { name: "pipelined int to printf", src: "{{1|printf}}", err: at("1:4", "printf", "wrong type for value; expected string; got int") },
  { name: "pipelined string to printf", src: '{{"aaa"|printf }}', out: "aaa" },
  { name: "literal of wrong type", src: "{{printf 1}}", err: at("1:9", "1", "expected string; found 1") },

  // confd's functions.
  { name: "getv", src: '{{getv "/db/host"}}:{{getv "/db/port"}}', out: "127.0.0.1:3306" },
  { name: "getv default", src: '{{getv "/nope" "fallback"}}', out: "fallback" },
  {
    name: "getv missing key",
    src: '{{getv "/x"}}',
    err: 'template: t:1:2: executing "t" at <getv "/x">: error calling getv: key does not exist: /x',
    key: "/x",
  },
  {
    name: "getv missing key on a later line",
    src: 'line1\n  é{{getv "/nope"}}',
    err: at("2:6", 'getv "/nope"', "error calling getv: key does not exist: /nope"),
    key: "/nope",
  },
  { name: "getv as argument", src: '{{printf "%s" (getv "/nope")}}', err: at("1:15", 'getv "/nope"', "error calling getv: key does not exist: /nope"), key: "/nope" },
  { name: "library arity", src: "{{getv}}", err: at("1:2", "getv", "wrong number of args for getv: want at least 1 got 0") },
  { name: "gets printed", src: '{{gets "/app/*"}}', out: "[{/app/a 1} {/app/b 2}]" },
  { name: "range gets with index", src: '{{range $i, $kv := gets "/app/*"}}{{$i}}:{{$kv.Key}}={{$kv.Value}};{{end}}', out: "0:/app/a=1;1:/app/b=2;" },
  { name: "range getvs", src: '{{range getvs "/upstream/*"}}server {{.}};{{end}}', out: "server 10.0.1.10:8080;server 10.0.1.11:8080;" },
  { name: "exists", src: '{{if exists "/db/host"}}yes{{end}}{{if not (exists "/nope")}}no{{end}}', out: "yesno" },
  { name: "ls and base", src: '{{range ls "/app"}}{{.}} {{end}}{{base "/a/b/c"}}', out: "a b c" },
  { name: "split and join", src: '{{join (split (getv "/list") ",") "-"}}', out: "x-y-z" },
  { name: "json fields", src: '{{$x := json (getv "/json")}}{{$x.port}} {{$x.nested.k}} {{index $x.hosts 1}} {{$x.nil}} {{$x.none}}', out: "8080 v b <no value> <no value>" },
  { name: "json floats print as Go floats", src: '{{$x := json (getv "/json")}}{{$x.f}} {{$x.big}}', out: "1.0000005e+06 1e+21" },
  { name: "range over json map", src: '{{range $k, $v := (json (getv "/json")).nested}}{{$k}}={{$v}}{{end}}', out: "k=v" },
  { name: "getenv", src: '{{getenv "HOSTNAME"}} {{getenv "NOPE" "dflt"}}', out: "localhost dflt" },
  { name: "lookupSRV fields", src: '{{range lookupSRV "etcd" "tcp" "example.com"}}{{.Target}}:{{.Port}}/{{.Priority}}/{{.Weight}} {{end}}', out: "a.example.com.:2379/0/0 b.example.com.:2380/10/5 " },
  { name: "default", src: '{{default .Missing "d"}} {{default "v" "d"}}', data: {}, out: "d v" },
  { name: "toUpper in pipeline", src: '{{"abc" | toUpper}}', out: "ABC" },
  { name: "arithmetic", src: "{{add 1 2}} {{sub 5 7}} {{mul 3 4}} {{div 7 2}} {{mod 7 3}}", out: "3 -2 12 3 1" },
  { name: "seq", src: "{{range seq 1 3}}{{.}}{{end}}", out: "123" },

  // If.
  { name: "if true", src: "{{if true}}TRUE{{end}}", out: "TRUE" },
  { name: "if false", src: "{{if false}}TRUE{{else}}FALSE{{end}}", out: "FALSE" },
  { name: "if nil", src: "{{if nil}}TRUE{{end}}", err: at("1:5", "nil", "nil is not a command") },
  { name: "if 1", src: "{{if 1}}NON-ZERO{{else}}ZERO{{end}}", out: "NON-ZERO" },
  { name: "if 0", src: "{{if 0}}NON-ZERO{{else}}ZERO{{end}}", out: "ZERO" },
  { name: "if 1.5", src: "{{if 1.5}}NON-ZERO{{else}}ZERO{{end}}", out: "NON-ZERO" },
  { name: "if 0.0", src: "{{if .FloatZero}}NON-ZERO{{else}}ZERO{{end}}", data: tVal, out: "ZERO" },
  { name: "if emptystring", src: "{{if ``}}NON-EMPTY{{else}}EMPTY{{end}}", out: "EMPTY" },
  { name: "if string", src: "{{if `notempty`}}NON-EMPTY{{else}}EMPTY{{end}}", out: "NON-EMPTY" },
  { name: "if emptyslice", src: "{{if .SIEmpty}}NON-EMPTY{{else}}EMPTY{{end}}", data: tVal, out: "EMPTY" },
  { name: "if slice", src: "{{if .SI}}NON-EMPTY{{else}}EMPTY{{end}}", data: tVal, out: "NON-EMPTY" },
  { name: "if emptymap", src: "{{if .MSIEmpty}}NON-EMPTY{{else}}EMPTY{{end}}", data: tVal, out: "EMPTY" },
  { name: "if map", src: "{{if .MSI}}NON-EMPTY{{else}}EMPTY{{end}}", data: tVal, out: "NON-EMPTY" },
  { name: "if map unset", src: "{{if .MSI.none}}NON-ZERO{{else}}ZERO{{end}}", data: tVal, out: "ZERO" },
  { name: "if struct", src: "{{if .Pair}}STRUCT{{end}}", data: tVal, out: "STRUCT" },
  { name: "if $x with $y int", src: "{{if $x := true}}{{with $y := .I}}{{$x}},{{$y}}{{end}}{{end}}", data: tVal, out: "true,17" },
  { name: "if $x with $x int", src: "{{if $x := true}}{{with $x := .I}}{{$x}},{{end}}{{$x}}{{end}}", data: tVal, out: "17,true" },
  { name: "if else if", src: "{{if false}}FALSE{{else if true}}TRUE{{end}}", out: "TRUE" },
  { name: "if else chain", src: "{{if eq 1 3}}1{{else if eq 2 3}}2{{else if eq 3 3}}3{{end}}", out: "3" },
  { name: "if else chain falls to else", src: "{{if eq 1 3}}1{{else if eq 2 3}}2{{else}}none{{end}}", out: "none" },

  // Print.
  { name: "print", src: '{{print "hello, print"}}', out: "hello, print" },
  { name: "print 123", src: "{{print 1 2 3}}", out: "1 2 3" },
  { name: "print spacing", src: '{{print 1 2 "a" 3 nil}}', out: "1 2a3 <nil>" },
  { name: "print nil", src: "{{print nil}}", out: "<nil>" },
  { name: "println", src: "{{println 1 2 3}}", out: "1 2 3\n" },
  { name: "printf int", src: '{{printf "%04x" 127}}', out: "007f" },
  { name: "printf float", src: '{{printf "%g" 3.5}}', out: "3.5" },
  { name: "printf string", src: '{{printf "%s" "hello"}}', out: "hello" },
  { name: "printf function", src: '{{printf "%#q" zeroArgs}}', out: "`zeroArgs`" },
  { name: "printf field", src: '{{printf "%s" .U.V}}', data: tVal, out: "v" },
  { name: "printf dot", src: '{{with .I}}{{printf "%d" .}}{{end}}', data: tVal, out: "17" },
  { name: "printf var", src: '{{with $x := .I}}{{printf "%d" $x}}{{end}}', data: tVal, out: "17" },
  { name: "printf widths", src: '{{printf "[%5d|%-5d|%05d|%8.3f|%-6s|%6s|%.2s]" 42 42 42 3.14159 "ab" "ab" "abcdef"}}', out: "[   42|42   |00042|   3.142|ab    |    ab|ab]" },
  { name: "printf %v of values", src: '{{printf "%v %v %v %+v" .SI .MSIone .Pair .Pair}}', data: tVal, out: "[3 4 5] map[one:1] {/k v} {Key:/k Value:v}" },
  { name: "printf missing", src: '{{printf "%s %s" "a"}}', out: "a %!s(MISSING)" },
  { name: "printf char", src: "{{printf `%c%c` 'G' 'o'}}", out: "Go" },
  { name: "printf no args", src: "{{printf}}", err: at("1:2", "printf", "wrong number of args for printf: want at least 1 got 0") },

  // HTML, JavaScript, URL query.
  { name: "html", src: '{{html "<script>alert(\\"XSS\\");</script>"}}', out: "&lt;script&gt;alert(&#34;XSS&#34;);&lt;/script&gt;" },
  { name: "html pipeline", src: '{{printf "<script>alert(\\"XSS\\");</script>" | html}}', out: "&lt;script&gt;alert(&#34;XSS&#34;);&lt;/script&gt;" },
  { name: "html untyped nil", src: "{{html .Null}}", data: tVal, out: "&lt;no value&gt;" },
  { name: "js", src: "{{js .}}", data: "It'd be nice.", out: "It\\'d be nice." },
  { name: "js specials", src: '{{js "<html> = & \\"q\\" \\\\ \\x01 今日"}}', out: '\\u003Chtml\\u003E \\u003D \\u0026 \\"q\\" \\\\ \\u0001 今日' },
  // JSEscape decodes a byte that is not UTF-8 as U+FFFD, which is printable, so writes the byte as it is.
  { name: "js bytes that are not UTF-8", src: '{{js "a\\xe9b\\xff\\x80c\\xc3<"}}', out: "a\udce9b\udcff\udc80c\udcc3\\u003C" },
  { name: "html bytes that are not UTF-8", src: '{{html "a\\xe9<"}}', out: "a\udce9&lt;" },
  { name: "urlquery bytes that are not UTF-8", src: '{{urlquery "a\\xe9"}}', out: "a%E9" },
  { name: "urlquery", src: '{{"http://www.example.org/"|urlquery}}', out: "http%3A%2F%2Fwww.example.org%2F" },
  { name: "urlquery space", src: '{{urlquery "a b" "c~é"}}', out: "a+bc~%C3%A9" },

  // Booleans.
  { name: "not", src: "{{not true}} {{not false}}", out: "false true" },
  { name: "and", src: "{{and false 0}} {{and 1 0}} {{and 0 true}} {{and 1 1}}", out: "false 0 0 1" },
  { name: "or", src: "{{or 0 0}} {{or 1 0}} {{or 0 true}} {{or 1 1}}", out: "0 1 true 1" },
  { name: "or short-circuit", src: "{{or 0 1 (die)}}", out: "1" },
  { name: "and short-circuit", src: "{{and 1 0 (die)}}", out: "0" },
  { name: "or short-circuit2", src: "{{or 0 0 (die)}}", err: at("1:10", "die", "error calling die: die") },
  { name: "and short-circuit2", src: "{{and 1 1 (die)}}", err: at("1:11", "die", "error calling die: die") },
  { name: "and short-circuits a failing getv", src: '{{and (exists "/nope") (getv "/nope")}}', out: "false" },
  { name: "or as getv fallback", src: '{{or (exists "/nope") "fallback"}}', out: "fallback" },
  { name: "and pipe-true", src: "{{1 | and 1}}", out: "1" },
  { name: "and pipe-false", src: "{{0 | and 1}}", out: "0" },
  { name: "or pipe-true", src: "{{1 | or 0}}", out: "1" },
  { name: "or pipe-false", src: "{{0 | or 0}}", out: "0" },
  { name: "and undef", src: "{{and 1 .Unknown}}", out: "<no value>" },
  { name: "or undef", src: "{{or 0 .Unknown}}", out: "<no value>" },
  { name: "boolean if", src: "{{if and true 1 `hi`}}TRUE{{else}}FALSE{{end}}", out: "TRUE" },
  { name: "boolean if not", src: "{{if and true 1 `hi` | not}}TRUE{{else}}FALSE{{end}}", out: "FALSE" },
  { name: "boolean if pipe", src: "{{if true | not | and 1}}TRUE{{else}}FALSE{{end}}", out: "FALSE" },
  { name: "or as if true", src: '{{or .SI "slice is empty"}}', data: tVal, out: "[3 4 5]" },
  { name: "or as if false", src: '{{or .SIEmpty "slice is empty"}}', data: tVal, out: "slice is empty" },
  { name: "and without arguments", src: "{{and}}", err: at("1:2", "and", "wrong number of args for and: want at least 1 got 0") },
  { name: "not arity", src: "{{not 1 2}}", err: at("1:2", "not", "wrong number of args for not: want 1 got 2") },

  // Comparisons.
  { name: "eq several", src: "{{eq 3 4 5 6 3}} {{eq 3 4 5 6 7}}", out: "true false" },
  { name: "eq strings", src: "{{eq `xy` `xy`}} {{eq `xy` `xyz`}} {{ne `xy` `xyz`}}", out: "true false true" },
  { name: "eq getv", src: '{{if eq (getv "/db/port") "3306"}}mysql{{end}}', out: "mysql" },
  { name: "lt le gt ge", src: "{{lt 1 2}} {{le 2 2}} {{gt 1 2}} {{ge 2 1}} {{lt 1.5 2.5}} {{lt `a` `b`}}", out: "true true false true true true" },
  { name: "an int and a float64 do not compare", src: "{{eq 2 2.0}}", err: at("1:2", "eq 2 2.0", "error calling eq: incompatible types for comparison: int and float64") },
  { name: "float64s compare with float64s", src: "{{eq 2.0 2.0}} {{lt 1.0 1.5}} {{gt 2.5 2e0}}", out: "true true true" },
  { name: "eq nil", src: "{{eq .Null nil}} {{eq nil 0}} {{eq .Unknown .Null}}", data: tVal, out: "true false true" },
  { name: "eq structs", src: "{{eq .Pair .Pair}} {{eq (index .Pairs 0) (index .Pairs 1)}}", data: { ...tVal, Pairs: [{ Key: "a", Value: "1" }, { Key: "a", Value: "2" }] }, out: "true false" },
  { name: "eq char", src: "{{eq . '.'}}", data: 46n, out: "true" },
  { name: "eq index of string", src: "{{eq (index `x` 0) 'x'}}", out: "true" },
  { name: "eq incompatible", src: "{{eq `xy` 1}}", err: at("1:2", "eq `xy` 1", "error calling eq: incompatible types for comparison: string and int") },
  { name: "eq missing argument", src: "{{eq 1}}", err: at("1:2", "eq 1", "error calling eq: missing argument for comparison") },
  { name: "eq non-comparable", src: "{{eq .SI .SI}}", data: tVal, err: at("1:2", "eq .SI .SI", "error calling eq: non-comparable type []interface {}") },
  // Go prints the values here; ours never shows a value.
  { name: "eq non-comparable types", src: "{{eq .SI .MSI}}", data: tVal, err: at("1:2", "eq .SI .MSI", "error calling eq: non-comparable types []interface {} and map[string]interface {}") },
  { name: "lt bools", src: "{{lt true true}}", err: at("1:2", "lt true true", "error calling lt: invalid type for comparison") },
  { name: "lt slices", src: "{{lt .SI 1}}", data: tVal, err: at("1:2", "lt .SI 1", "error calling lt: invalid type for comparison") },
  { name: "lt string and int", src: '{{lt "1" 2}}', err: at("1:2", 'lt "1" 2', "error calling lt: incompatible types for comparison: string and int") },

  // Indexing.
  { name: "slice[0]", src: "{{index .SI 0}}", data: tVal, out: "3" },
  { name: "slice[1]", src: "{{index .SI 1}}", data: tVal, out: "4" },
  { name: "slice[HUGE]", src: "{{index .SI 10}}", data: tVal, err: at("1:2", "index .SI 10", "error calling index: index out of range: 10") },
  { name: "slice[WRONG]", src: "{{index .SI `hello`}}", data: tVal, err: at("1:2", "index .SI `hello`", "error calling index: cannot index slice/array with type string") },
  { name: "slice[nil]", src: "{{index .SI nil}}", data: tVal, err: at("1:2", "index .SI nil", "error calling index: cannot index slice/array with nil") },
  { name: "map[one]", src: "{{index .MSI `one`}}", data: tVal, out: "1" },
  { name: "map[NO]", src: "{{index .MSI `XXX`}}", data: tVal, out: "<no value>" },
  { name: "map[nil]", src: "{{index .MSI nil}}", data: tVal, err: at("1:2", "index .MSI nil", "error calling index: value is nil; should be of type string") },
  { name: "map[WRONG]", src: "{{index .MSI 10}}", data: tVal, err: at("1:2", "index .MSI 10", "error calling index: value has type int; should be string") },
  { name: "double index", src: "{{index .SMSI 1 `eleven`}}", data: tVal, out: "11" },
  { name: "nil[1]", src: "{{index nil 1}}", err: at("1:2", "index nil 1", "error calling index: index of untyped nil") },
  { name: "index of a struct", src: "{{index .Pair 0}}", data: tVal, err: at("1:2", "index .Pair 0", "error calling index: can't index item of type memkv.KVPair") },
  { name: "index of a string", src: "{{index .S 1}} {{index `é` 1}}", data: tVal, out: "121 169" },

  // Slicing.
  { name: "slice[:]", src: "{{slice .SI}}", data: tVal, out: "[3 4 5]" },
  { name: "slice[1:]", src: "{{slice .SI 1}}", data: tVal, out: "[4 5]" },
  { name: "slice[1:2]", src: "{{slice .SI 1 2}}", data: tVal, out: "[4]" },
  { name: "slice[1:2:3]", src: "{{slice .SI 1 2 3}}", data: tVal, out: "[4]" },
  { name: "slice[-1:]", src: "{{slice .SI -1}}", data: tVal, err: at("1:2", "slice .SI -1", "error calling slice: index out of range: -1") },
  { name: "slice[2:1]", src: "{{slice .SI 2 1}}", data: tVal, err: at("1:2", "slice .SI 2 1", "error calling slice: invalid slice index: 2 > 1") },
  { name: "slice[2:2:1]", src: "{{slice .SI 2 2 1}}", data: tVal, err: at("1:2", "slice .SI 2 2 1", "error calling slice: invalid slice index: 2 > 1") },
  { name: "slice out of range", src: "{{slice .SI 4 5}}", data: tVal, err: at("1:2", "slice .SI 4 5", "error calling slice: index out of range: 4") },
  { name: "string[:]", src: "{{slice .S}}", data: tVal, out: "xyz" },
  { name: "string[1:2]", src: "{{slice .S 1 2}}", data: tVal, out: "y" },
  { name: "3-index slice of string", src: "{{slice .S 1 2 2}}", data: tVal, err: at("1:2", "slice .S 1 2 2", "error calling slice: cannot 3-index slice a string") },
  { name: "slice of a map", src: "{{slice .MSI 1}}", data: tVal, err: at("1:2", "slice .MSI 1", "error calling slice: can't slice item of type map[string]interface {}") },

  // Len.
  { name: "len slice", src: "{{len .SI}}", data: tVal, out: "3" },
  { name: "len map", src: "{{len .MSI }}", data: tVal, out: "3" },
  { name: "len string in bytes", src: "{{len `héllo`}}", out: "6" },
  { name: "len of int", src: "{{len 3}}", err: at("1:2", "len 3", "error calling len: len of type int") },
  { name: "len of null", src: "{{len .Null}}", data: tVal, err: at("1:2", "len .Null", "error calling len: len of nil pointer") },
  { name: "len of gets", src: '{{len (gets "/app/*")}}', out: "2" },

  // With.
  { name: "with true", src: "{{with true}}{{.}}{{end}}", out: "true" },
  { name: "with false", src: "{{with false}}{{.}}{{else}}FALSE{{end}}", out: "FALSE" },
  { name: "with 1", src: "{{with 1}}{{.}}{{else}}ZERO{{end}}", out: "1" },
  { name: "with 0", src: "{{with 0}}{{.}}{{else}}ZERO{{end}}", out: "ZERO" },
  { name: "with 1.5", src: "{{with 1.5}}{{.}}{{else}}ZERO{{end}}", out: "1.5" },
  { name: "with emptystring", src: "{{with ``}}{{.}}{{else}}EMPTY{{end}}", out: "EMPTY" },
  { name: "with slice", src: "{{with .SI}}{{.}}{{else}}EMPTY{{end}}", data: tVal, out: "[3 4 5]" },
  { name: "with emptymap", src: "{{with .MSIEmpty}}{{.}}{{else}}EMPTY{{end}}", data: tVal, out: "EMPTY" },
  { name: "with map", src: "{{with .MSIone}}{{.}}{{else}}EMPTY{{end}}", data: tVal, out: "map[one:1]" },
  { name: "with $x int", src: "{{with $x := .I}}{{$x}}{{end}}", data: tVal, out: "17" },
  { name: "with $x struct.U.V", src: "{{with $x := $}}{{$x.U.V}}{{end}}", data: tVal, out: "v" },
  { name: "with variable and action", src: "{{with $x := $}}{{$y := $.U.V}}{{$y}}{{end}}", data: tVal, out: "v" },
  { name: "with else with", src: "{{with 0}}{{.}}{{else with true}}{{.}}{{end}}", out: "true" },
  { name: "with else with chain", src: "{{with 0}}{{.}}{{else with false}}{{.}}{{else with `notempty`}}{{.}}{{end}}", out: "notempty" },
  { name: "with getv", src: '{{with getv "/db/host"}}host={{.}}{{else}}none{{end}}', out: "host=127.0.0.1" },

  // Range.
  { name: "range []int", src: "{{range .SI}}-{{.}}-{{end}}", data: tVal, out: "-3--4--5-" },
  { name: "range empty no else", src: "{{range .SIEmpty}}-{{.}}-{{end}}", data: tVal, out: "" },
  { name: "range []int else", src: "{{range .SI}}-{{.}}-{{else}}EMPTY{{end}}", data: tVal, out: "-3--4--5-" },
  { name: "range empty else", src: "{{range .SIEmpty}}-{{.}}-{{else}}EMPTY{{end}}", data: tVal, out: "EMPTY" },
  { name: "range []int break else", src: "{{range .SI}}-{{.}}-{{break}}NOTREACHED{{else}}EMPTY{{end}}", data: tVal, out: "-3-" },
  { name: "range []int continue else", src: "{{range .SI}}-{{.}}-{{continue}}NOTREACHED{{else}}EMPTY{{end}}", data: tVal, out: "-3--4--5-" },
  { name: "range break in if", src: "{{range .SI}}{{if eq . 5}}{{break}}{{end}}{{.}}{{end}}", data: tVal, out: "34" },
  { name: "range continue in if", src: "{{range .SI}}{{if eq . 4}}{{continue}}{{end}}{{.}}{{end}}", data: tVal, out: "35" },
  { name: "break ends the inner range only", src: "{{range .SI}}{{range $.SB}}{{break}}{{end}}{{.}}{{end}}", data: tVal, out: "345" },
  { name: "range []bool", src: "{{range .SB}}-{{.}}-{{end}}", data: tVal, out: "-true--false-" },
  { name: "range map sorted", src: "{{range .MSI}}-{{.}}-{{end}}", data: tVal, out: "-1--3--2-" },
  { name: "range map keys and values", src: "{{range $k, $v := .MSI}}{{$k}}={{$v}} {{end}}", data: tVal, out: "one=1 three=3 two=2 " },
  { name: "range Map instance", src: "{{range $k, $v := .Map}}{{$k}}={{$v}} {{end}}", data: tVal, out: "a=1 b=2 " },
  { name: "range empty map else", src: "{{range .MSIEmpty}}-{{.}}-{{else}}EMPTY{{end}}", data: tVal, out: "EMPTY" },
  { name: "range empty nil", src: "{{range .Null}}-{{.}}-{{end}}", data: tVal, out: "" },
  { name: "range $x SI", src: "{{range $x := .SI}}<{{$x}}>{{end}}", data: tVal, out: "<3><4><5>" },
  { name: "range $x $y SI", src: "{{range $x, $y := .SI}}<{{$x}}={{$y}}>{{end}}", data: tVal, out: "<0=3><1=4><2=5>" },
  { name: "range $x MSIone", src: "{{range $x := .MSIone}}<{{$x}}>{{end}}", data: tVal, out: "<1>" },
  { name: "range $x $y MSIone", src: "{{range $x, $y := .MSIone}}<{{$x}}={{$y}}>{{end}}", data: tVal, out: "<one=1>" },
  { name: "declare in range", src: "{{range $x := .SI}}<{{$foo:=$x}}{{$x}}>{{end}}", data: tVal, out: "<3><4><5>" },
  { name: "range 5", src: '{{range $v := 5}}{{printf "%T%d" $v $v}}{{end}}', out: "int0int1int2int3int4" },
  { name: "range 0 else", src: "{{range 0}}x{{else}}none{{end}}", out: "none" },
  { name: "range int with two variables", src: "{{range $i, $v := 3}}{{end}}", err: at("1:18", "3", "can't use int to iterate over more than one variable") },
  { name: "range over a string", src: "{{range .S}}{{.}}{{end}}", data: tVal, err: at("1:8", ".S", "range can't iterate over string") },
  { name: "range over a struct", src: "{{range .Pair}}{{.}}{{end}}", data: tVal, err: at("1:8", ".Pair", "range can't iterate over memkv.KVPair") },
  { name: "range over true", src: "{{range true}}{{end}}", err: at("1:8", "true", "range can't iterate over bool") },
  { name: "assign in range", src: "{{$i := 0}}{{$x := 0}}{{range $i = .SI}}{{end}}{{$i}}", data: tVal, out: "5" },
  { name: "assign two in range", src: "{{$k := 0}}{{$v := 0}}{{range $k, $v = .SI}}{{$k}}={{$v}} {{end}}", data: tVal, out: "0=3 1=4 2=5 " },
  {
    name: "nested range with variables",
    src: '{{range $i, $kv := gets "/upstream/*"}}{{range $j, $part := split $kv.Value ":"}}{{$i}}.{{$j}}={{$part}} {{end}}{{end}}',
    out: "0.0=10.0.1.10 0.1=8080 1.0=10.0.1.11 1.1=8080 ",
  },
  { name: "range pipeline variable in else", src: "{{range $x := .SIEmpty}}x{{else}}{{len $x}}{{end}}", data: tVal, out: "0" },

  // Templates.
  { name: "define and template", src: '{{define "a"}}A{{.}}{{end}}{{template "a" "x"}}', out: "Ax" },
  { name: "template without pipeline has nil dot", src: '{{define "a"}}[{{.}}]{{end}}{{template "a"}}', out: "[<no value>]" },
  { name: "template gets its own $", src: '{{define "a"}}{{$}}{{end}}{{template "a" 5}}{{$}}', data: "top", out: "5top" },
  { name: "template variables are not inherited", src: '{{$x := 1}}{{define "a"}}{{$x}}{{end}}', parseErr: parseError(1, 'undefined variable "$x"') },
  { name: "template pipeline declares", src: '{{define "a"}}{{.}}{{end}}{{template "a" $v := 3}}{{$v}}', out: "33" },
  { name: "block", src: 'a({{block "inner" .}}bar({{.}})baz{{end}})b', data: "hello", out: "a(bar(hello)baz)b" },
  { name: "block overridden by define", src: '{{define "inner"}}foo({{.}}){{end}}a({{block "inner" .}}bar{{end}})b', data: "x", parseErr: parseError(1, 'template: multiple definition of template "inner"') },
  {
    name: "recursive template",
    src: '{{define "tree"}}[{{.Val}}{{with .Left}}{{template "tree" .}}{{end}}{{with .Right}}{{template "tree" .}}{{end}}]{{end}}{{template "tree" .}}',
    data: { Val: 1, Left: { Val: 2, Left: { Val: 3 } }, Right: { Val: 4 } },
    out: "[1[2[3]][4]]",
  },
  { name: "undefined template", src: '{{template "nope"}}', err: at("1:11", '{{template "nope"}}', 'template "nope" not defined') },
  {
    name: "recursion limit",
    src: '{{define "r"}}{{template "r" .}}{{end}}{{template "r"}}',
    err: at("1:25", '{{template "r" .}}', "exceeded maximum template depth (1000)", "r"),
  },
  {
    name: "error in a nested template",
    src: 'line 1\nline 2\nline 3\n{{template "one" .}}\n{{define "one"}}{{template "two" .}}{{end}}\n{{define "two"}}{{template "three" .}}{{end}}\n{{define "three"}}{{index "hi" $}}{{end}}',
    data: 5n,
    err: 'template: t:7:20: executing "three" at <index "hi" $>: error calling index: index out of range: 5',
  },
  { name: "multiple definition", src: "{{define `a`}}a{{end}}{{define `a`}}b{{end}}", parseErr: parseError(1, 'template: multiple definition of template "a"') },
  { name: "empty redefinition is allowed", src: "{{define `a`}}a{{end}}{{define `a`}} {{end}}{{template `a`}}", out: "a" },
  { name: "define named like the file", src: '{{define "t"}}from define{{end}}', out: "from define" },

  // Trim markers, comments, white space in actions.
  { name: "trim left", src: "x \r\n\t{{- 3}}", out: "x3" },
  { name: "trim right", src: "{{3 -}}\n\n\ty", out: "3y" },
  { name: "trim left and right", src: "x \r\n\t{{- 3 -}}\n\n\ty", out: "x3y" },
  { name: "trim with extra spaces", src: "x\n{{-  3   -}}\ny", out: "x3y" },
  { name: "negative number is no trim marker", src: "{{-3}}", out: "-3" },
  { name: "comment", src: "a{{/* c\nd */}}b", out: "ab" },
  { name: "comment trim left", src: "x \r\n\t{{- /* hi */}}", out: "x" },
  { name: "comment trim right", src: "{{/* hi */ -}}\n\n\ty", out: "y" },
  { name: "comment trim left and right", src: "x \r\n\t{{- /* */ -}}\n\n\ty", out: "xy" },
  { name: "trimmed range lines", src: "list:\n{{- range .SI}}\n  - {{.}}\n{{- end}}\n", data: tVal, out: "list:\n  - 3\n  - 4\n  - 5\n" },
  { name: "newline in assignment", src: "{{ $x \n := \n 1 \n }}{{$x}}", out: "1" },
  { name: "newline in pipeline", src: '{{\n"x"\n|\nprintf\n}}', out: "x" },

  // Literals.
  { name: "raw string", src: "{{`a\\nb`}}", out: "a\\nb" },
  { name: "raw string drops carriage returns", src: "{{`a\r\nb`}}", out: "a\nb" },
  { name: "quoted escapes", src: '{{"a\\tb\\u00e9\\x41\\101\\""}}', out: 'a\tbéAA"' },
  { name: "char constants", src: "{{'a'}} {{'\\n'}} {{'\\\\'}} {{'\\''}} {{'\\xFF'}} {{'パ'}} {{'\\u30d1'}}", out: "97 10 92 39 255 12497 12497" },
  { name: "decimal", src: "{{print 1234}}", out: "1234" },
  { name: "decimal _", src: "{{print 12_34}}", out: "1234" },
  { name: "binary", src: "{{print 0b101}} {{print 0b_1_0_1}} {{print 0B101}}", out: "5 5 5" },
  { name: "octal", src: "{{print 0377}} {{print 0o377}} {{print 0o_3_7_7}} {{print 0O377}}", out: "255 255 255 255" },
  { name: "hex", src: "{{print 0x123}} {{print 0x1_23}} {{print 0X123ABC}}", out: "291 291 1194684" },
  { name: "float", src: "{{print 123.4}} {{print 0_0_1_2_3.4}} {{print -1.5e3}}", out: "123.4 123.4 -1500" },
  { name: "hex float", src: "{{print +0x1.ep+2}} {{print +0x_1.e_0p+0_2}} {{print +0X1.EP+2}}", out: "7.5 7.5 7.5" },
  { name: "print multi", src: "{{print 1_2_3_4 7.5_00_00_00}}", out: "1234 7.5" },
  { name: "hex int has type int", src: "{{printf `%T` 0xef}}", out: "int" },
  { name: "big float", src: "{{print 1e19}}", out: "1e+19" },
  { name: "int beyond 2^53", src: "{{print 0x7fffffffffffffff}}", out: "9223372036854775807" },
  { name: "uint only overflows int", src: "{{print 0x8000000000000000}}", err: at("1:8", "0x8000000000000000", "0x8000000000000000 overflows int") },
  { name: "bool and nil literals", src: "{{true}} {{false}} {{print nil}}", out: "true false <nil>" },

  // call.
  { name: "call a data function", src: "{{call .PlusOne 1}} {{call .PlusOne .I}}", data: tVal, out: "2 18" },
  { name: "call nil", src: "{{call nil}}", err: at("1:2", "call nil", "error calling call: call of nil") },
  { name: "empty call", src: "{{call}}", err: at("1:2", "call", "wrong number of args for call: want at least 1 got 0") },
  { name: "call non-function", src: "{{call .True}}", data: tVal, err: at("1:2", "call .True", "error calling call: non-function .True of type bool") },
  { name: "call pipeline", src: '{{call (len "test")}}', err: at("1:2", 'call (len "test")', 'error calling call: non-function len "test" of type int') },
  // Go names a piped string by its value.
  { name: "call a piped string", src: '{{"pw" | call}}', err: at("1:9", "call", "error calling call: non-function <string Value> of type string") },

  // Printing.
  { name: "prints lists, maps and pairs as Go", src: "{{.SI}} {{.MSI}} {{.Pair}} {{.SMSI}}", data: tVal, out: "[3 4 5] map[one:1 three:3 two:2] {/k v} [map[one:1 two:2] map[eleven:11 twelve:12]]" },
  { name: "can't print a function", src: "{{.PlusOne}}", data: tVal, err: at("1:2", "{{.PlusOne}}", "can't print {{.PlusOne}} of type func()") },

  // Parse errors.
  { name: "unclosed action", src: "hello{{range", parseErr: parseError(1, "unclosed action") },
  { name: "unmatched end", src: "{{end}}", parseErr: parseError(1, "unexpected {{end}}") },
  { name: "unmatched else", src: "{{else}}", parseErr: parseError(1, "unexpected {{else}}") },
  { name: "unmatched else after if", src: "{{if .X}}hello{{end}}{{else}}", parseErr: parseError(1, "unexpected {{else}}") },
  { name: "multiple else", src: "{{if .X}}1{{else}}2{{else}}3{{end}}", parseErr: parseError(1, "expected end; found {{else}}") },
  { name: "missing end", src: "hello{{range .x}}", parseErr: parseError(1, "unexpected EOF") },
  { name: "missing end after else", src: "hello{{range .x}}{{else}}", parseErr: parseError(1, "unexpected EOF") },
  { name: "undefined function", src: "hello{{undefined}}", parseErr: parseError(1, 'function "undefined" not defined') },
  { name: "undefined variable", src: "{{$x}}", parseErr: parseError(1, 'undefined variable "$x"') },
  { name: "variable undefined after end", src: "{{with $x := 4}}{{end}}{{$x}}", parseErr: parseError(1, 'undefined variable "$x"') },
  { name: "template with field ref", src: "{{template .X}}", parseErr: parseError(1, 'unexpected ".X" in template clause') },
  { name: "invalid punctuation", src: "{{printf 3, 4}}", parseErr: parseError(1, 'unexpected "," in operand') },
  { name: "multidecl outside range", src: "{{with $v, $u := 3}}{{end}}", parseErr: parseError(1, "too many declarations in with") },
  { name: "too many decls in range", src: "{{range $u, $v, $w := 3}}{{end}}", parseErr: parseError(1, "too many declarations in range") },
  { name: "dot applied to parentheses", src: "{{printf (printf .).}}", parseErr: parseError(1, "unexpected <.> in operand") },
  { name: "adjacent args", src: "{{printf 3`x`}}", parseErr: parseError(1, 'unexpected "`x`" in operand') },
  { name: "extra end after if", src: "{{if .X}}a{{else if .Y}}b{{end}}{{end}}", parseErr: parseError(1, "unexpected {{end}}") },
  { name: "break outside range", src: "{{range .}}{{end}} {{break}}", parseErr: parseError(1, "{{break}} outside {{range}}") },
  { name: "continue outside range", src: "{{range .}}{{end}} {{continue}}", parseErr: parseError(1, "{{continue}} outside {{range}}") },
  { name: "break in range else", src: "{{range .}}{{else}}{{break}}{{end}}", parseErr: parseError(1, "{{break}} outside {{range}}") },
  { name: "break with argument", src: "{{range .}}{{break 1}}{{end}}", parseErr: parseError(1, 'unexpected "1" in {{break}}') },
  { name: "+= is no operator", src: "{{$x := 0}}{{$x += 1}}{{$x}}", parseErr: parseError(1, 'illegal number syntax: "+"') },
  { name: "bad character after variable", src: "{{$x:=.}}{{$x!2}}", parseErr: parseError(1, "bad character U+0021 '!'") },
  { name: "$x+2 is no arithmetic", src: "{{$x:=.}}{{$x+2}}", parseErr: parseError(1, "bad character U+002B '+'") },
  { name: "$x +2 is two arguments", src: "{{$x:=.}}{{$x +2}}", err: at("1:11", "$x", "can't give argument to non-function $x") },
  { name: "dot after integer", src: "{{1.E}}", parseErr: parseError(1, 'illegal number syntax: "1.E"') },
  { name: "dot after boolean", src: "{{true.E}}", parseErr: parseError(1, 'unexpected . after term "true"') },
  { name: "dot after char", src: "{{'a'.any}}", parseErr: parseError(1, "unexpected . after term \"'a'\"") },
  { name: "dot after string", src: '{{"hello".guys}}', parseErr: parseError(1, 'unexpected . after term "\\"hello\\""') },
  { name: "dot after dot", src: "{{..E}}", parseErr: parseError(1, 'unexpected . after term "."') },
  { name: "dot after nil", src: "{{nil.E}}", parseErr: parseError(1, 'unexpected . after term "nil"') },
  { name: "wrong pipeline dot", src: "{{12|.}}", parseErr: parseError(1, "non executable command in pipeline stage 2") },
  { name: "wrong pipeline string", src: '{{.|printf|"error"}}', parseErr: parseError(1, "non executable command in pipeline stage 3") },
  { name: "empty pipeline", src: '{{printf "%d" ( ) }}', parseErr: parseError(1, "missing value for parenthesized pipeline") },
  { name: "block without pipeline", src: '{{block "foo"}}hello{{end}}', parseErr: parseError(1, "missing value for block clause") },
  { name: "empty action", src: "{{}}", parseErr: parseError(1, "missing value for command") },
  { name: "unclosed on line 2", src: "line1\n{{", parseErr: parseError(2, "unclosed action") },
  { name: "unclosed in define", src: "line1\n{{define `x`}}line2\n{{", parseErr: parseError(3, "unclosed action") },
  { name: "unclosed multi-line action", src: 'line1\n{{"x"\n"y"\n', parseErr: parseError(4, "unclosed action started at t:2") },
  { name: "unclosed empty multi-line action", src: "{{\n\n\n\n\n", parseErr: parseError(6, "unclosed action started at t:1") },
  { name: "undefined function on line 3", src: "line1\n{{\nx\n}}", parseErr: parseError(3, 'function "x" not defined') },
  { name: "unclosed comment", src: "{{/*}}", parseErr: parseError(1, "unclosed comment") },
  { name: "comment before delimiter", src: "{{/* c */ x}}", parseErr: parseError(1, "comment ends before closing delimiter") },
  { name: "unclosed left paren", src: "{{.X (1 2 3}}", parseErr: parseError(1, "unclosed left paren") },
  { name: "unexpected right paren", src: "{{.X 1 2 3 ) }}", parseErr: parseError(1, "unexpected right paren") },
  { name: "unclosed paren at EOF", src: "{{(.X 1 2 3", parseErr: parseError(1, "unclosed action") },
  { name: "no space between operands", src: "{{`x`3}}", parseErr: parseError(1, 'unexpected "3" in operand') },
  { name: "bad identifier character", src: "{{a#}}", parseErr: parseError(1, "bad character U+0023 '#'") },
  { name: "unrecognized character", src: "{{\u0001}}", parseErr: parseError(1, "unrecognized character in action: U+0001") },
  { name: "unterminated char", src: "{{'a}}", parseErr: parseError(1, "unterminated character constant") },
  { name: "unterminated string", src: '{{"a}}', parseErr: parseError(1, "unterminated quoted string") },
  { name: "unterminated raw string", src: "{{`a}}", parseErr: parseError(1, "unterminated raw quoted string") },
  { name: "unterminated raw string line", src: "hello\n\n{{`unterminated\n\n\n\n}}\n some more\n\n", parseErr: parseError(3, "unterminated raw quoted string") },
  { name: "bad number", src: "{{0xi}}", parseErr: parseError(1, 'illegal number syntax: "0xi"') },
  { name: "bad number syntax", src: "{{3k}}", parseErr: parseError(1, 'bad number syntax: "3k"') },
  { name: "integer overflow", src: "{{99999999999999999999}}", parseErr: parseError(1, 'integer overflow: "99999999999999999999"') },
  { name: "octal that is not", src: "{{089}}", parseErr: parseError(1, 'integer overflow: "089"') },
  { name: "bad escape", src: '{{"\\q"}}', parseErr: parseError(1, "invalid syntax") },
  { name: "malformed char", src: "{{'ab'}}", parseErr: parseError(1, "malformed character constant: 'ab'") },
  { name: "declaration with field", src: "{{$x := 23}}{{with $x.y := 3}}{{$x 23}}{{end}}", parseErr: parseError(1, 'unexpected ":=" in operand') },
  { name: "too many declarations", src: "{{$a,$b,$c := 23}}", parseErr: parseError(1, "too many declarations in command") },
  { name: "range undefined variable", src: "{{range $k}}{{end}}", parseErr: parseError(1, 'undefined variable "$k"') },
  { name: "range missing value", src: "{{range $k,}}{{end}}", parseErr: parseError(1, "missing value for range") },
  { name: "range missing value after :=", src: "{{range $k, $v := }}{{end}}", parseErr: parseError(1, "missing value for range") },
  { name: "range not a variable", src: "{{range $k, .}}{{end}}", parseErr: parseError(1, "range can only initialize variables") },
  { name: "range literal declared", src: "{{range $k, 123 := .}}{{end}}", parseErr: parseError(1, "range can only initialize variables") },
  { name: "raw string across lines", src: "{{ $v := `\n` }} {{", parseErr: parseError(2, "unclosed action") },
  { name: "max expression depth", src: `{{${"(".repeat(1001)}1${")".repeat(1001)}}}`, parseErr: parseError(1, "max expression depth exceeded") },
  { name: "paren nesting within the limit", src: '{{ ((( "1" ))) | printf }}', out: "1" },
  // Go's number kinds, each checked against confd built with Go: ints and float64s print and compare as Go's.
  { name: "a JSON number is a float64", src: '{{$v := json "{\\"f\\": 12345678}"}}{{$v.f}} {{printf "%T %v" $v.f $v.f}}', out: "1.2345678e+07 float64 1.2345678e+07" },
  { name: "float constants are float64s", src: "{{1e6}} {{3.0}} {{0.1}} {{printf \"%T %T %T\" 1e6 1 'a'}}", out: "1e+06 3 0.1 float64 int int" },
  { name: "functions return Go's ints", src: '{{printf "%T %T %T %T" (add 1 2) (len "ab") (atoi "3") (index (seq 1 2) 0)}}', out: "int int int int" },
  { name: "range indexes are ints", src: '{{range $i, $e := .SI}}{{printf "%T" $i}}{{end}}', data: tVal, out: "intintint" },
  { name: "print and println of float64s", src: '{{print 1.5 2 "a" 3e6}}|{{println 1e6 1e21 1e20}}', out: "1.5 2a3e+06|1e+06 1e+21 1e+20\n" },
  { name: "printf of a float64 with other verbs", src: '{{printf "%s|%g|%d|%v|%.1f" 1e6 1e6 1e6 1e-7 80}}', out: "%!s(float64=1e+06)|1e+06|%!d(float64=1e+06)|1e-07|%!f(int=80)" },
  { name: "index with a float64", src: "{{index .SI 1.0}}", data: tVal, err: at("1:2", "index .SI 1.0", "error calling index: cannot index slice/array with type float64") },
  { name: "int arithmetic wraps at 64 bits", src: "{{add 9223372036854775807 1}}", out: "-9223372036854775808" },
  { name: "complex numbers", src: "{{1+2i}}", parseErr: parseError(1, "complex number 1+2i is not supported") },
];

function run(c: Case): string {
  const tree = parseGoTemplate("t", c.src, names);
  return executeGoTemplate(tree, c.data, funcs);
}

describe("Go text/template language", () => {
  test("the table has at least 120 cases", () => {
    expect(cases.length).toBeGreaterThanOrEqual(120);
  });

  for (const c of cases) {
    test(c.name, () => {
      if (c.out !== undefined) {
        expect(run(c)).toBe(c.out);
        return;
      }
      let thrown: unknown;
      try {
        run(c);
      } catch (err) {
        thrown = err;
      }
      if (c.parseErr !== undefined) {
        expect(thrown).toBeInstanceOf(GoTemplateParseError);
        expect((thrown as Error).message).toBe(c.parseErr);
      } else {
        expect(thrown).toBeInstanceOf(GoTemplateExecError);
        expect((thrown as Error).message).toBe(c.err!);
        expect((thrown as GoTemplateExecError).key).toBe(c.key);
      }
    });
  }
});

describe("Go text/template engine", () => {
  test("errors carry Go's line and byte column", () => {
    const tree = parseGoTemplate("t", 'a\n  é{{getv "/nope"}}', names);
    let thrown: unknown;
    try {
      executeGoTemplate(tree, undefined, funcs);
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toMatchObject({ line: 2, column: 6, key: "/nope" });

    let parseThrown: unknown;
    try {
      parseGoTemplate("t", "ok\n  {{foo}}", names);
    } catch (err) {
      parseThrown = err;
    }
    expect(parseThrown).toBeInstanceOf(GoTemplateParseError);
    expect(parseThrown).toMatchObject({ line: 2, column: 4 });
  });

  test("a tree survives structured cloning", () => {
    const tree = parseGoTemplate("t", '{{define "d"}}<{{.}}>{{end}}{{range $i, $e := .SI}}{{template "d" $e}}{{end}} {{0x7fffffffffffffff}}', names);
    expect(executeGoTemplate(structuredClone(tree), tVal, funcs)).toBe("<3><4><5> 9223372036854775807");
  });

  test("a function the parser knew but execution lacks", () => {
    const tree = parseGoTemplate("t", "{{ghost 1}}", new Set([...names, "ghost"]));
    expect(() => executeGoTemplate(tree, undefined, funcs)).toThrow('template: t:1:2: executing "t" at <ghost>: "ghost" is not a defined function');
  });

  test("break and continue are functions where the library defines them", () => {
    const withBreak = { ...funcs, break: (x: unknown) => x };
    const tree = parseGoTemplate("t", "{{range .SI}}{{break 20}}{{end}}", new Set(Object.keys(withBreak)));
    expect(executeGoTemplate(tree, tVal, withBreak)).toBe("202020");
    expect(() => parseGoTemplate("t", "{{range .SI}}{{break 20}}{{end}}", names)).toThrow(GoTemplateParseError);
  });

  test("the evaluator does not load the parser or the lexer", () => {
    const source = readFileSync(join(import.meta.dir, "..", "src", "gotemplate-exec.ts"), "utf8");
    const imports = [...source.matchAll(/^import .* from "(.*)";$/gm)].map((m) => m[1]);
    expect(imports.some((path) => path?.includes("parse") || path?.includes("lex"))).toBe(false);
  });
});

describe("confd's integration fixture", () => {
  const fixture = CONFD_FIXTURE;
  const data = Bun.YAML.parse(readFileSync(join(fixture, "data.yaml"), "utf8")) as {
    env: Record<string, string>;
    keys: Record<string, string>;
    nested_keys: Record<string, string>;
  };
  const render = (file: string, keys: Record<string, string>): string => {
    const fixtureFuncs = createFuncs(new Map(Object.entries(keys)), { env: { HOSTNAME: "localhost" } });
    const source = readFileSync(join(fixture, "confdir", "templates", file), "utf8");
    // confd names a template after its file and executes it with nil data.
    const tree = parseGoTemplate(file, source, new Set(Object.keys(fixtureFuncs)));
    return executeGoTemplate(tree, undefined, fixtureFuncs);
  };

  const expected: Record<string, string> = {
    "basic.conf.tmpl": "basic.conf",
    "exists-test.conf.tmpl": "exists-test.conf",
    "iteration.conf.tmpl": "iteration.conf",
  };

  test("covers every template of the fixture", () => {
    expect(readdirSync(join(fixture, "confdir", "templates")).sort()).toEqual([...Object.keys(expected), "nested.conf.tmpl"].sort());
  });

  for (const [template, output] of Object.entries(expected)) {
    test(`${template} renders ${output} byte for byte`, () => {
      expect(render(template, data.keys)).toBe(readFileSync(join(fixture, "expect", output), "utf8"));
    });
  }

  test("nested.conf.tmpl renders", () => {
    expect(render("nested.conf.tmpl", data.keys)).toContain("upstream app {");
    expect(render("nested.conf.tmpl", { ...data.keys, ...data.nested_keys })).toContain("server_name  www.example.com;");
  });
});
