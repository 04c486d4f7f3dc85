// The handlebars engine, compile side (main thread): parse a template and the partials it uses from
// <confdir>/templates, tag every call of a library function with its line and column, and precompile
// to JavaScript. Workers load only the small handlebars runtime (see template-handlebars.ts): the full compiler
// costs each worker about 1.3 MiB more and four times the start-up time.
//
// Every partial a template can reach is found here, at load, so that a missing one, one outside the
// templates directory or one that includes itself is an error naming its file and line before anything
// renders. That is why a partial's name must be written in the template, not computed.
import { existsSync, readFileSync, realpathSync } from "node:fs";
import { isAbsolute, join, relative } from "node:path";
import Handlebars from "handlebars";
import { decodeBytes } from "./bytes.ts";
import { CATALOG_FUNC_SET, type CatalogCall, type CatalogFunc } from "./catalog.ts";
import { catalogCall } from "./catalog-scan.ts";
import { ConfdError, errnoText } from "./errors.ts";
import { FUNC_NAME_SET } from "./func-names.ts";
import { LOCATION_HASH_KEY, type HandlebarsTemplate } from "./protocol.ts";

const COMPILE_OPTIONS = { noEscape: true, strict: false } as const;

/** Where something is in a template, for its error. */
interface Place {
  file: string;
  line: number;
  column: number;
}

/**
 * Partials used by a file, or by a partial it includes, that are neither files nor inline partials
 * defined there: an includer must define them inline (handlebars' layout idiom). By name, where first used.
 */
type Needs = Map<string, Place>;

/** One template's compilation: its partials so far, each compiled once, with what each needs. */
interface Compilation {
  templatesDir: string;
  partials: HandlebarsTemplate["partials"];
  needs: Map<string, Needs>;
  /** Calls of catalog functions in the template and its partials. */
  catalog: CatalogCall[];
}

export function compileHandlebars(file: string, templatesDir: string): HandlebarsTemplate {
  const cx: Compilation = { templatesDir, partials: {}, needs: new Map(), catalog: [] };
  const { spec, needs } = compileFile(file, cx, [file]);
  // A partial still needed here has no includer left to define it.
  const [missing] = needs;
  if (missing) throw notFound(missing[0], templatesDir, missing[1]);
  return { engine: "handlebars", file, spec, partials: cx.partials, catalog: cx.catalog };
}

/** Compiles a file and the partials it uses; stack is the files including it, itself last. */
function compileFile(file: string, cx: Compilation, stack: string[]): { spec: string; needs: Needs } {
  let source: string;
  try {
    source = decodeBytes(readFileSync(file));
  } catch (err) {
    throw new ConfdError(`cannot read template: ${errnoText(err)}`, { file });
  }
  let ast: hbs.AST.Program;
  try {
    ast = Handlebars.parse(source);
  } catch (err) {
    const e = err as { message: string; lineNumber?: number; column?: number };
    const line = e.lineNumber ?? Number(/on line (\d+)/.exec(e.message)?.[1] ?? NaN);
    const first = e.message.split("\n")[0] ?? e.message;
    const detail = e.message.split("\n").slice(-1)[0] ?? "";
    throw new ConfdError(`template syntax error: ${first.replace(/ on line \d+:?$/, "")}${detail && detail !== first ? `: ${detail}` : ""}`, {
      file,
      line: Number.isFinite(line) ? line : undefined,
    });
  }
  const { uses, inlines } = annotate(ast, file, cx.catalog);
  const needs: Needs = new Map();
  const need = (name: string, place: Place) => {
    if (!inlines.has(name) && !needs.has(name)) needs.set(name, place);
  };
  for (const use of uses) {
    if (inlines.has(use.name)) continue;
    const partialFile = findPartial(cx.templatesDir, use.name, use);
    if (partialFile === undefined) {
      // A partial block without its partial renders the block instead, as handlebars does.
      if (!use.optional) need(use.name, use);
      continue;
    }
    const loop = stack.indexOf(partialFile);
    if (loop >= 0) {
      const chain = [...stack.slice(loop), partialFile].map((f) => relative(cx.templatesDir, f)).join(", ");
      throw new ConfdError(`partial "${use.name}" includes itself: ${chain}`, place(use));
    }
    if (!cx.needs.has(use.name)) {
      const compiled = compileFile(partialFile, cx, [...stack, partialFile]);
      cx.partials[use.name] = { file: partialFile, spec: compiled.spec };
      cx.needs.set(use.name, compiled.needs);
    }
    for (const [name, where] of cx.needs.get(use.name)!) need(name, where);
  }
  try {
    return { spec: Handlebars.precompile(ast, COMPILE_OPTIONS) as string, needs };
  } catch (err) {
    throw new ConfdError(`template error: ${(err as Error).message.split("\n")[0]}`, { file });
  }
}

/** Only the place, for an error's context, when given a PartialUse. */
function place({ file, line, column }: Place): Place {
  return { file, line, column };
}

function notFound(name: string, dir: string, where: Place): ConfdError {
  return new ConfdError(`partial "${name}" not found in ${dir} (tried ${name}, ${name}.hbs, ${name}.handlebars, ${name}.tmpl)`, place(where));
}

/**
 * A partial is a file inside the templates directory, and nothing else: a name with ".." or a leading
 * "/" is refused, and so is one whose real path (symlinks resolved) leads outside, since a template
 * must not be a way to read any file on the host into a rendered config.
 */
function findPartial(dir: string, name: string, where: Place): string | undefined {
  if (isAbsolute(name) || name.split(/[\\/]/).includes("..")) {
    throw new ConfdError(`partial "${name}" is outside the templates directory ${dir}`, place(where));
  }
  for (const candidate of [name, `${name}.hbs`, `${name}.handlebars`, `${name}.tmpl`]) {
    const path = join(dir, candidate);
    if (!existsSync(path)) continue;
    const real = realpathSync(path);
    const inside = relative(realpathSync(dir), real);
    if (isAbsolute(inside) || inside.split(/[\\/]/)[0] === "..") {
      throw new ConfdError(`partial "${name}" leads outside the templates directory ${dir} (to ${real})`, place(where));
    }
    return path;
  }
  return undefined;
}

/** Handlebars' own helpers, which we neither tag nor report as unknown. */
// Not "log": handlebars' log helper prints its arguments (store values) to the console, around our log.
const BUILTIN_HELPERS = new Set(["if", "unless", "each", "with", "lookup", "blockHelperMissing", "helperMissing"]);

/** A partial used by name; optional for a partial block, whose block renders if there is no such partial. */
interface PartialUse extends Place {
  name: string;
  optional: boolean;
}

/**
 * Walks the AST: adds `confdLoc='["file",line,column]'` to every call of a library function (so that
 * a failing call can say where it is), rejects calls of unknown functions, and returns the partials
 * used and the names of the inline partials defined ({{#*inline "name"}}), which are used by name
 * like files and so are not looked for as files. A partial named by a subexpression is refused: which
 * file it reads could not be checked until it rendered. {{> @partial-block}} is the block a partial
 * was given, at run time.
 */
function annotate(ast: hbs.AST.Program, file: string, catalog: CatalogCall[]): { uses: PartialUse[]; inlines: Set<string> } {
  const uses: PartialUse[] = [];
  const inlines = new Set<string>();
  const visit = (node: unknown): void => {
    if (Array.isArray(node)) {
      node.forEach(visit);
      return;
    }
    if (node === null || typeof node !== "object") return;
    const n = node as Record<string, unknown> & { type?: string };
    if (n.type === "PartialStatement" || n.type === "PartialBlockStatement") {
      const where = { file, ...position(n) };
      const name = n.name as { type: string; original?: unknown; data?: boolean };
      if (name.type === "SubExpression") {
        throw new ConfdError("partial names must be written in the template, not computed: {{> (...)}} cannot be checked when the template is loaded", where);
      }
      if (!name.data) uses.push({ name: String(name.original), optional: n.type === "PartialBlockStatement", ...where });
    }
    if (n.type === "DecoratorBlock") {
      const [label] = (n.params as Array<{ type: string; value?: unknown }> | undefined) ?? [];
      if ((n.path as { original?: unknown }).original === "inline" && label?.type === "StringLiteral") inlines.add(String(label.value));
    }
    if (n.type === "MustacheStatement" || n.type === "SubExpression" || n.type === "BlockStatement") tagCall(n, file, catalog);
    for (const value of Object.values(n)) if (value && typeof value === "object") visit(value);
  };
  visit(ast);
  return { uses, inlines };
}

/** A node's line and column (from 1), as errors give them. */
function position(node: Record<string, unknown>): { line: number; column: number } {
  const loc = node.loc as { start: { line: number; column: number } } | undefined;
  return { line: loc?.start.line ?? 1, column: (loc?.start.column ?? 0) + 1 };
}

function tagCall(node: Record<string, unknown>, file: string, catalog: CatalogCall[]): void {
  const path = node.path as { type: string; original?: string; parts?: string[]; data?: boolean } | undefined;
  if (!path || path.type !== "PathExpression" || path.data || path.parts?.length !== 1) return;
  const name = path.original ?? "";
  const loc = node.loc as { start: { line: number; column: number } } | undefined;
  const params = (node.params as unknown[] | undefined)?.length ?? 0;
  const hasArguments = params > 0 || (node.hash as hbs.AST.Hash | undefined)?.pairs.length;
  // Handlebars' lookup reads its last argument as the options it is passed: any other count fails
  // inside the runtime, with a JavaScript error.
  if (name === "lookup" && params !== 2) {
    throw new ConfdError(`lookup takes 2 arguments (an object and a field), got ${params}`, { file, ...position(node) });
  }
  if (!FUNC_NAME_SET.has(name)) {
    if (hasArguments && !BUILTIN_HELPERS.has(name)) throw new ConfdError(`unknown function "${name}"`, { file, ...position(node) });
    return;
  }
  if (CATALOG_FUNC_SET.has(name)) {
    // A catalog call whose arguments are all written as strings names its dependency (catalog-scan.ts).
    const args = (node.params as Array<{ type: string; value?: unknown }> | undefined) ?? [];
    const literal = args.every((a) => a.type === "StringLiteral") ? args.map((a) => String(a.value)) : undefined;
    catalog.push(catalogCall(name as CatalogFunc, literal, { file, ...position(node) }));
  }
  if (!loc) return;
  const value = JSON.stringify([file, loc.start.line, loc.start.column + 1]);
  const hash = (node.hash as hbs.AST.Hash | undefined) ?? ({ type: "Hash", pairs: [], loc: node.loc } as unknown as hbs.AST.Hash);
  hash.pairs.push({
    type: "HashPair",
    key: LOCATION_HASH_KEY,
    value: { type: "StringLiteral", value, original: value, loc: node.loc } as unknown as hbs.AST.StringLiteral,
    loc: node.loc,
  } as unknown as hbs.AST.HashPair);
  node.hash = hash;
}
