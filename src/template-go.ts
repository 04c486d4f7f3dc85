// Rendering, run side (worker), Go's text/template: the tree parsed in the main thread, executed.
import { ConfdError } from "./errors.ts";
import { executeGoTemplate, GoTemplateExecError } from "./gotemplate-exec.ts";
import type { GoTemplate } from "./protocol.ts";
import { renderWith, type Render, type RenderOptions } from "./template.ts";

export function instantiateGo(compiled: GoTemplate, options: RenderOptions = {}): Render {
  return renderWith((funcs) => {
    try {
      return executeGoTemplate(compiled.tree, null, funcs);
    } catch (err) {
      // Go's message already says where (template: name:line:col: executing ...), as confd users know it.
      if (err instanceof GoTemplateExecError) throw new ConfdError(err.message, { file: compiled.file, key: err.key });
      throw new ConfdError(`template error: ${(err as Error).message}`, { file: compiled.file });
    }
  }, options);
}
