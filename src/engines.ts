// Compiling a resource's template in the main thread, with the engine the resource uses: handlebars
// (precompiled to JavaScript) or Go's text/template (parsed to a tree). Syntax errors surface here, at
// load time, before any worker starts. Each engine's compiler is loaded on first use: a confdir of Go
// templates never loads the handlebars compiler (about 1.5 MiB and 4 ms in a compiled binary).
import { readFileSync } from "node:fs";
import { basename } from "node:path";
import { decodeBytes } from "./bytes.ts";
import { scanGoTree } from "./catalog-scan.ts";
import { ConfdError, errnoText } from "./errors.ts";
import { FUNC_NAME_SET } from "./func-names.ts";
import type { CompiledTemplate } from "./protocol.ts";
import type { ResourceSpec } from "./resource.ts";

export async function compileTemplate(resource: ResourceSpec, templatesDir: string): Promise<CompiledTemplate> {
  if (resource.engine === "handlebars") {
    const { compileHandlebars } = await import("./handlebars.ts");
    return compileHandlebars(resource.src, templatesDir);
  }
  const { GoTemplateParseError, parseGoTemplate } = await import("./gotemplate-parse.ts");
  let source: string;
  try {
    source = decodeBytes(readFileSync(resource.src));
  } catch (err) {
    throw new ConfdError(`cannot read template: ${errnoText(err)}`, { file: resource.src });
  }
  try {
    // Named as confd names it (the file's base name), so error messages read as confd's do.
    const tree = parseGoTemplate(basename(resource.src), source, FUNC_NAME_SET);
    return { engine: "go", file: resource.src, tree, catalog: scanGoTree(tree, resource.src) };
  } catch (err) {
    if (err instanceof GoTemplateParseError) throw new ConfdError(err.message, { file: resource.src });
    throw err;
  }
}
