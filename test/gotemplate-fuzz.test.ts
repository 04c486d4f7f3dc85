// Fuzzing the Go text/template engine with a seeded generator: templates built from a grammar of
// fragments, valid and then mutated (unbalanced braces, stray ends, random characters, deep nesting).
// Parsing must return or throw GoTemplateParseError; executing what parsed must return or throw
// GoTemplateExecError; nothing may hang (each input is small, each run a fixed number of cases).
// The seed is fixed, so a run fails only for a fault in the engine, and the same fault every time;
// FUZZ_SEED=<n> replays a seed, FUZZ_SEED=random draws a fresh one (printed, and in the test's name)
// to widen the search. A failure names its seed, case and input.
import { expect, test } from "bun:test";
import { createFuncs } from "../src/funcs.ts";
import { executeGoTemplate, GoTemplateExecError } from "../src/gotemplate-exec.ts";
import { GoTemplateParseError, parseGoTemplate } from "../src/gotemplate-parse.ts";
import { GoTime } from "../src/gotime.ts";

type Rand = () => number;

/** mulberry32: a small, seedable, good-enough 32-bit generator. */
function mulberry32(seed: number): Rand {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const store = new Map<string, string>([
  ["/a", "1"],
  ["/b/c", "2"],
  ["/json", '{"port": 80, "list": [1, 2], "nil": null}'],
]);
const funcs = createFuncs(store, {
  env: { HOSTNAME: "fuzz" },
  now: () => new Date(Date.UTC(2020, 0, 2, 3, 4, 5)),
  dns: { ip: () => undefined, srv: () => undefined },
  fileExists: () => false,
});
const names = new Set(Object.keys(funcs));
const data = {
  SI: [1n, 2n, 3n],
  One: ["only"],
  M: { a: 1n, b: "x", n: null },
  Key: "k",
  Nested: { x: { y: "deep" } },
  Pairs: [{ Key: "/a", Value: "1" }],
  T: new GoTime(new Date(Date.UTC(2020, 0, 2)), { offsetMinutes: 0, name: "UTC" }),
};

// --- the grammar ---------------------------------------------------------------

const TEXTS = ["", "text", " ", "\n", "a\tb", "é", "{ ", "}", "x}y", "💡", "-", "  \n  "];
const LITERALS = ["0", "1", "-2", "3.5", "0x1F", "1e3", "'a'", "0b11", "1_000", '"s"', '"/a"', "`raw`", '"%v"', '""', "true", "false", "nil"];
const FIELDS = [".", ".SI", ".One", ".M", ".M.a", ".M.n", ".M.nope", ".Key", ".Nested.x.y", ".Pairs", ".T", ".T.Year", "$", "$.SI"];
const FUNCTIONS = [
  'printf "%v|%d"',
  "print",
  "println",
  "len",
  "index",
  "slice",
  "eq",
  "ne",
  "lt",
  "le",
  "and",
  "or",
  "not",
  "html",
  "js",
  "urlquery",
  "getv",
  "gets",
  "getvs",
  "exists",
  "json",
  "split",
  "join",
  "base",
  "toUpper",
  "add",
  "default",
  "call",
  "seq 1",
  "datetime",
];
const TEMPLATE_NAMES = ["a", "b", "c"];
const MUTATION_TOKENS = ["{{", "}}", "{{end}}", "{{else}}", "{{-", "-}}", "(", ")", "|", "$", ".", '"', "'", "`", ":=", "=", ",", " ", "\n", "/*", "*/", "\u2028", "\ud800", "é", "😀"];

interface Context {
  rand: Rand;
  vars: string[];
  inRange: boolean;
  /** Inside {{define "x"}}: only templates named after x may be called, so that calls cannot recurse. */
  definition: string | null;
}

function pick<T>(rand: Rand, items: readonly T[]): T {
  return items[Math.floor(rand() * items.length)]!;
}

function operand(c: Context, depth: number): string {
  const r = c.rand();
  if (r < 0.3) return pick(c.rand, LITERALS);
  if (r < 0.6) return pick(c.rand, FIELDS);
  if (r < 0.75 && c.vars.length > 0) return pick(c.rand, c.vars) + (c.rand() < 0.3 ? ".a" : "");
  if (depth < 3) return `(${pipeline(c, depth + 1, false)})`;
  return pick(c.rand, LITERALS);
}

/** Only the first command of a pipeline may be a bare operand: Go rejects literals later on. */
function command(c: Context, depth: number, first: boolean): string {
  if (first && c.rand() < 0.3) return operand(c, depth);
  const args: string[] = [];
  const count = Math.floor(c.rand() * 4);
  for (let i = 0; i < count; i++) args.push(operand(c, depth));
  return [pick(c.rand, FUNCTIONS), ...args].join(" ");
}

function pipeline(c: Context, depth: number, declare: boolean): string {
  let decl = "";
  if (declare && c.rand() < 0.2) {
    const name = pick(c.rand, ["$x", "$y"]);
    decl = c.vars.includes(name) && c.rand() < 0.5 ? `${name} = ` : `${name} := `;
    c.vars.push(name);
  }
  const cmds = [command(c, depth, true)];
  while (cmds.length < 3 && c.rand() < 0.25) cmds.push(command(c, depth, false));
  return decl + cmds.join(" | ");
}

function action(c: Context): string {
  const left = c.rand() < 0.2 ? "{{- " : "{{";
  const right = c.rand() < 0.2 ? " -}}" : "}}";
  return left + pipeline(c, 0, true) + right;
}

/** A block body whose variables end with it, as they do in Go. */
function body(c: Context, depth: number, inRange: boolean): string {
  const saved = { vars: c.vars.length, inRange: c.inRange };
  c.inRange = inRange;
  const out = nodes(c, depth + 1);
  c.vars.length = saved.vars;
  c.inRange = saved.inRange;
  return out;
}

function control(c: Context, depth: number): string {
  const r = c.rand();
  const mark = c.vars.length;
  let out: string;
  if (r < 0.3) {
    out = `{{if ${pipeline(c, 0, true)}}}${body(c, depth, c.inRange)}`;
    if (c.rand() < 0.3) out += `{{else if ${pipeline(c, 0, false)}}}${body(c, depth, c.inRange)}`;
    if (c.rand() < 0.4) out += `{{else}}${body(c, depth, c.inRange)}`;
  } else if (r < 0.5) {
    out = `{{with ${pipeline(c, 0, true)}}}${body(c, depth, c.inRange)}`;
    if (c.rand() < 0.3) out += `{{else with ${pipeline(c, 0, false)}}}${body(c, depth, c.inRange)}`;
    if (c.rand() < 0.3) out += `{{else}}${body(c, depth, c.inRange)}`;
  } else if (r < 0.8) {
    // Inside definitions ranges see one element only, so that no input can take exponential time.
    const list = c.definition !== null ? ".One" : pick(c.rand, [".SI", ".One", ".M", "5", "0", ".Nested", "gets \"/*\""]);
    const vars = pick(c.rand, ["", "$e := ", "$i, $e := "]);
    c.vars.push(...(vars.includes("$i") ? ["$i", "$e"] : vars ? ["$e"] : []));
    out = `{{range ${vars}${list}}}${body(c, depth, true)}`;
    if (c.rand() < 0.3) out += `{{else}}${body(c, depth, c.inRange)}`;
  } else {
    const callable = TEMPLATE_NAMES.filter((n) => c.definition === null || n > c.definition);
    if (callable.length === 0) return action(c);
    const name = pick(c.rand, callable);
    return c.rand() < 0.7 ? `{{template "${name}" ${pick(c.rand, FIELDS)}}}` : `{{template "${name}"}}`;
  }
  c.vars.length = mark;
  return out + "{{end}}";
}

function nodes(c: Context, depth: number): string {
  let out = "";
  const count = 1 + Math.floor(c.rand() * 4);
  for (let i = 0; i < count; i++) {
    const r = c.rand();
    if (r < 0.3) out += pick(c.rand, TEXTS);
    else if (r < 0.6) out += action(c);
    else if (r < 0.65) out += "{{/* comment */}}";
    else if (r < 0.72 && c.inRange) out += pick(c.rand, ["{{break}}", "{{continue}}"]);
    else if (depth < 4) out += control(c, depth);
    else out += action(c);
  }
  return out;
}

function template(rand: Rand): string {
  const c: Context = { rand, vars: [], inRange: false, definition: null };
  // Deep nesting, past the parser's limits now and then.
  if (rand() < 0.04) {
    const n = Math.floor(rand() * 1100);
    return rand() < 0.5 ? `${"{{if 1}}".repeat(n)}x${"{{end}}".repeat(n)}` : `{{${"(".repeat(n)}1${")".repeat(n)}}}`;
  }
  let out = "";
  for (const name of TEMPLATE_NAMES) {
    if (rand() < 0.3) {
      c.definition = name;
      out += `{{define "${name}"}}${nodes(c, 2)}{{end}}`;
    }
  }
  c.definition = null;
  return out + nodes(c, 0);
}

function mutate(rand: Rand, source: string): string {
  let s = source;
  const count = Math.floor(rand() * 4);
  for (let i = 0; i < count; i++) {
    const at = Math.floor(rand() * (s.length + 1));
    const r = rand();
    if (r < 0.4) s = s.slice(0, at) + pick(rand, MUTATION_TOKENS) + s.slice(at);
    else if (r < 0.6) s = s.slice(0, at) + String.fromCharCode(Math.floor(rand() * 128)) + s.slice(at);
    else if (r < 0.9) s = s.slice(0, at) + s.slice(at + 1);
    else s = s.slice(0, at);
  }
  return s;
}

// --- the runs ------------------------------------------------------------------

// A number of six or more digits could make a legitimate range over a huge int: not executed.
const BIG_NUMBER = /[0-9a-fA-F](?:_?[0-9a-fA-F]){5}/;

function fuzz(seed: number, cases: number): number {
  const rand = mulberry32(seed);
  let i = 0;
  for (; i < cases; i++) {
    const valid = template(rand);
    const source = rand() < 0.5 ? mutate(rand, valid) : valid;
    let tree;
    try {
      tree = parseGoTemplate("fuzz", source, names);
    } catch (err) {
      if (err instanceof GoTemplateParseError) continue;
      throw new Error(`seed ${seed}, case ${i}: parsing ${JSON.stringify(source)} threw ${String(err)}`);
    }
    if (BIG_NUMBER.test(source)) continue;
    try {
      executeGoTemplate(tree, rand() < 0.8 ? data : undefined, funcs);
    } catch (err) {
      if (err instanceof GoTemplateExecError) continue;
      throw new Error(`seed ${seed}, case ${i}: executing ${JSON.stringify(source)} threw ${String(err)}`);
    }
  }
  return i;
}

const CASES = 3000;

function chooseSeed(setting: string | undefined): number {
  if (setting === undefined || setting === "") return 0x5eed;
  if (setting !== "random") return Number(setting) >>> 0;
  const seed = (Date.now() ^ (Math.random() * 0x100000000)) >>> 0;
  console.log(`FUZZ_SEED=${seed}`);
  return seed;
}

const seed = chooseSeed(process.env.FUZZ_SEED);

// The time limit only stops a hang: the cases take well under a second.
test(`fuzz the parser and evaluator with seed ${seed}`, () => {
  expect(fuzz(seed, CASES)).toBe(CASES);
}, 120_000);
