// Compiling a resource's template in the main thread, with the engine the resource uses: handlebars
// (precompiled to JavaScript) or Go's text/template (parsed to a tree). Syntax errors surface here, at
// load time, before any worker starts.
import { readFileSync } from "node:fs";
import { basename } from "node:path";
import { decodeBytes } from "./bytes.ts";
import { ConfdError, errnoText } from "./errors.ts";
import { FUNC_NAME_SET } from "./func-names.ts";
import { GoTemplateParseError, parseGoTemplate } from "./gotemplate-parse.ts";
import { compileHandlebars } from "./handlebars.ts";
import type { CompiledTemplate } from "./protocol.ts";
import type { ResourceSpec } from "./resource.ts";

export function compileTemplate(resource: ResourceSpec, templatesDir: string): CompiledTemplate {
  if (resource.engine === "handlebars") return compileHandlebars(resource.src, templatesDir);
  let source: string;
  try {
    source = decodeBytes(readFileSync(resource.src));
  } catch (err) {
    throw new ConfdError(`cannot read template: ${errnoText(err)}`, { file: resource.src });
  }
  try {
    // Named as confd names it (the file's base name), so error messages read as confd's do.
    return { engine: "go", file: resource.src, tree: parseGoTemplate(basename(resource.src), source, FUNC_NAME_SET) };
  } catch (err) {
    if (err instanceof GoTemplateParseError) throw new ConfdError(err.message, { file: resource.src });
    throw err;
  }
}
