// The handlebars engine, compile side (main thread): parse a template and the partials it uses from
// <confdir>/templates, tag every call of a library function with its line and column, and precompile
// to JavaScript. Workers load only the small handlebars runtime (see template.ts): the full compiler
// costs each worker about 1.3 MiB more and four times the start-up time.
import { existsSync, readFileSync, realpathSync } from "node:fs";
import { isAbsolute, join, relative } from "node:path";
import Handlebars from "handlebars";
import { decodeBytes } from "./bytes.ts";
import { ConfdError, errnoText } from "./errors.ts";
import { funcNames } from "./funcs.ts";
import { LOCATION_HASH_KEY, type HandlebarsTemplate } from "./protocol.ts";

const COMPILE_OPTIONS = { noEscape: true, strict: false } as const;

const FUNC_NAMES = funcNames();

export function compileHandlebars(file: string, templatesDir: string): HandlebarsTemplate {
  const partials: HandlebarsTemplate["partials"] = {};
  const spec = compileFile(file, templatesDir, partials, [file]);
  return { engine: "handlebars", file, spec, partials };
}

function compileFile(file: string, templatesDir: string, partials: HandlebarsTemplate["partials"], stack: string[]): string {
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
  for (const name of annotate(ast, file)) {
    if (partials[name]) continue;
    const partialFile = findPartial(templatesDir, name, file);
    if (!partialFile) {
      throw new ConfdError(`partial "${name}" not found in ${templatesDir} (tried ${name}, ${name}.hbs, ${name}.handlebars, ${name}.tmpl)`, { file });
    }
    if (stack.includes(partialFile)) throw new ConfdError(`partial "${name}" includes itself`, { file: partialFile });
    partials[name] = { file: partialFile, spec: "" };
    partials[name] = { file: partialFile, spec: compileFile(partialFile, templatesDir, partials, [...stack, partialFile]) };
  }
  try {
    return Handlebars.precompile(ast, COMPILE_OPTIONS) as string;
  } catch (err) {
    throw new ConfdError(`template error: ${(err as Error).message.split("\n")[0]}`, { file });
  }
}

/**
 * A partial is a file inside the templates directory, and nothing else: a name with ".." or a leading
 * "/" is refused, and so is one whose real path (symlinks resolved) leads outside, since a template
 * must not be a way to read any file on the host into a rendered config.
 */
function findPartial(dir: string, name: string, file: string): string | undefined {
  if (isAbsolute(name) || name.split(/[\\/]/).includes("..")) {
    throw new ConfdError(`partial "${name}" is outside the templates directory ${dir}`, { file });
  }
  for (const candidate of [name, `${name}.hbs`, `${name}.handlebars`, `${name}.tmpl`]) {
    const path = join(dir, candidate);
    if (!existsSync(path)) continue;
    const real = realpathSync(path);
    const inside = relative(realpathSync(dir), real);
    if (isAbsolute(inside) || inside.split(/[\\/]/)[0] === "..") {
      throw new ConfdError(`partial "${name}" leads outside the templates directory ${dir} (to ${real})`, { file });
    }
    return path;
  }
  return undefined;
}

/** Handlebars' own helpers, which we neither tag nor report as unknown. */
// Not "log": handlebars' log helper prints its arguments (store values) to the console, around our log.
const BUILTIN_HELPERS = new Set(["if", "unless", "each", "with", "lookup", "blockHelperMissing", "helperMissing"]);

/**
 * Walks the AST: adds `confdLoc='["file",line,column]'` to every call of a library function (so that
 * a failing call can say where it is), rejects calls of unknown functions, and returns the names of
 * the partials used.
 */
function annotate(ast: hbs.AST.Program, file: string): Set<string> {
  const partialNames = new Set<string>();
  const visit = (node: unknown): void => {
    if (Array.isArray(node)) {
      node.forEach(visit);
      return;
    }
    if (node === null || typeof node !== "object") return;
    const n = node as Record<string, unknown> & { type?: string };
    if (n.type === "PartialStatement" || n.type === "PartialBlockStatement") {
      const name = n.name as { type: string; original?: unknown; value?: unknown };
      if (name.type === "PathExpression" || name.type === "StringLiteral") partialNames.add(String(name.original ?? name.value));
    }
    if (n.type === "MustacheStatement" || n.type === "SubExpression" || n.type === "BlockStatement") tagCall(n, file);
    for (const value of Object.values(n)) if (value && typeof value === "object") visit(value);
  };
  visit(ast);
  return partialNames;
}

function tagCall(node: Record<string, unknown>, file: string): void {
  const path = node.path as { type: string; original?: string; parts?: string[]; data?: boolean } | undefined;
  if (!path || path.type !== "PathExpression" || path.data || path.parts?.length !== 1) return;
  const name = path.original ?? "";
  const loc = node.loc as { start: { line: number; column: number } } | undefined;
  const hasArguments = (node.params as unknown[] | undefined)?.length || (node.hash as hbs.AST.Hash | undefined)?.pairs.length;
  if (!FUNC_NAMES.has(name)) {
    if (hasArguments && !BUILTIN_HELPERS.has(name)) {
      throw new ConfdError(`unknown function "${name}"`, { file, line: loc?.start.line, column: loc ? loc.start.column + 1 : undefined });
    }
    return;
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
