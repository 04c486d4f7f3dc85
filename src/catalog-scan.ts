// Compile-time discovery of catalog dependencies (main thread): where a template calls a catalog
// function, and, when the arguments are written in the template, the dependency itself, so that the
// first render is given its answer instead of asking for it. Go's parse trees are scanned here; handlebars'
// ASTs in handlebars.ts, as it walks them. Also the check that a template calling one has a store that
// can answer.
import { CATALOG_FUNC_SET, CatalogQueryError, parseCatalogCall, type CatalogCall, type CatalogFunc } from "./catalog.ts";
import { ConfdError } from "./errors.ts";
import { K, sourcePosition, type ArgNode, type CommandNode, type GoTemplateTree, type Node, type PipeNode } from "./gotemplate-node.ts";

/** A call at a place in a template file; args undefined when they are not all written as strings. */
export function catalogCall(func: CatalogFunc, args: readonly string[] | undefined, place: { file: string; line: number; column: number }): CatalogCall {
  const { file, line, column } = place;
  if (args === undefined) return { func, file, line, column };
  try {
    return { func, file, line, column, dep: parseCatalogCall(func, args) };
  } catch (err) {
    // Written in the template, so shown: it is no value from the store.
    if (err instanceof CatalogQueryError) throw new ConfdError(`${[func, ...args.map((a) => JSON.stringify(a))].join(" ")}: ${err.message}`, place);
    throw err;
  }
}

/** Every catalog call in a Go template's parse tree, {{define}}d templates included. */
export function scanGoTree(tree: GoTemplateTree, file: string): CatalogCall[] {
  const calls: CatalogCall[] = [];
  const place = (pos: number) => {
    const { line, column } = sourcePosition(tree.text, pos);
    return { file, line, column: column + 1 };
  };
  const visitNode = (node: Node | null): void => {
    if (node === null) return;
    switch (node.k) {
      case K.List:
        node.nodes.forEach(visitNode);
        return;
      case K.Action:
        visitPipe(node.pipe);
        return;
      case K.If:
      case K.Range:
      case K.With:
        visitPipe(node.pipe);
        visitNode(node.list);
        visitNode(node.elseList);
        return;
      case K.Template:
        if (node.pipe) visitPipe(node.pipe);
        return;
    }
  };
  const visitPipe = (pipe: PipeNode): void => pipe.cmds.forEach((cmd, i) => visitCommand(cmd, i > 0));
  // A command after the first in a pipeline is given the previous one's result as a last argument.
  const visitCommand = (cmd: CommandNode, piped: boolean): void => {
    const [head, ...args] = cmd.args;
    if (head?.k === K.Identifier && CATALOG_FUNC_SET.has(head.name)) {
      const literal = !piped && args.every((a) => a.k === K.String);
      calls.push(catalogCall(head.name as CatalogFunc, literal ? args.map((a) => (a.k === K.String ? a.text : "")) : undefined, place(head.pos)));
    } else if (head) {
      visitArg(head);
    }
    args.forEach(visitArg);
  };
  // A function's name as an argument is a call without arguments: {{len services}}.
  const visitArg = (arg: ArgNode): void => {
    if (arg.k === K.Identifier && CATALOG_FUNC_SET.has(arg.name)) calls.push(catalogCall(arg.name as CatalogFunc, [], place(arg.pos)));
    else if (arg.k === K.Pipe) visitPipe(arg);
    else if (arg.k === K.Chain) visitArg(arg.node);
  };
  for (const list of Object.values(tree.templates)) visitNode(list);
  return calls;
}

/** A template that calls a catalog function needs a store that answers them: refused at load otherwise. */
export function checkCatalogSource(calls: readonly CatalogCall[] | undefined, available: boolean): void {
  const [first] = calls ?? [];
  if (first && !available) {
    throw new ConfdError(`${first.func} reads Consul's service catalog: it needs -backend consul`, { file: first.file, line: first.line, column: first.column });
  }
}
