// The parse tree of Go's text/template language, shared by the parser (main thread) and the
// evaluator (workers): node shapes as plain data, so that a tree survives postMessage; the names of
// the builtin functions, which the parser must know to accept them; and the text of a node as Go
// prints it in error messages (parse/node.go's String methods).
import { byteLength } from "./bytes.ts";
import { goQuote } from "./strconv.ts";

/** Node kinds. Numbers rather than strings: the evaluator switches on them for every node it visits. */
export const K = {
  Text: 0,
  Action: 1,
  Bool: 2,
  Chain: 3,
  Command: 4,
  Dot: 5,
  Field: 6,
  Identifier: 7,
  If: 8,
  List: 9,
  Nil: 10,
  Number: 11,
  Pipe: 12,
  Range: 13,
  String: 14,
  Template: 15,
  Variable: 16,
  With: 17,
  Break: 18,
  Continue: 19,
} as const;

// Every node carries pos, its offset (UTF-16 code units) in the source; errors turn it into Go's
// line and byte column.
export interface ListNode {
  k: typeof K.List;
  pos: number;
  nodes: Node[];
}

export interface TextNode {
  k: typeof K.Text;
  pos: number;
  text: string;
}

export interface ActionNode {
  k: typeof K.Action;
  pos: number;
  pipe: PipeNode;
}

export interface BranchNode {
  k: typeof K.If | typeof K.Range | typeof K.With;
  pos: number;
  pipe: PipeNode;
  list: ListNode;
  elseList: ListNode | null;
}

export interface TemplateNode {
  k: typeof K.Template;
  pos: number;
  name: string;
  pipe: PipeNode | null;
}

export interface LoopControlNode {
  k: typeof K.Break | typeof K.Continue;
  pos: number;
}

export type Node = ListNode | TextNode | ActionNode | BranchNode | TemplateNode | LoopControlNode;

export interface PipeNode {
  k: typeof K.Pipe;
  pos: number;
  isAssign: boolean;
  decl: VariableNode[];
  cmds: CommandNode[];
}

export interface CommandNode {
  k: typeof K.Command;
  pos: number;
  args: ArgNode[];
}

export interface IdentifierNode {
  k: typeof K.Identifier;
  pos: number;
  name: string;
}

/** $x.a.b: the variable name first, then the fields. */
export interface VariableNode {
  k: typeof K.Variable;
  pos: number;
  ident: string[];
}

/** .a.b, without the dots. */
export interface FieldNode {
  k: typeof K.Field;
  pos: number;
  ident: string[];
}

/** (pipeline).a.b or function.a.b. */
export interface ChainNode {
  k: typeof K.Chain;
  pos: number;
  node: ArgNode;
  field: string[];
}

export interface DotNode {
  k: typeof K.Dot;
  pos: number;
}

export interface NilNode {
  k: typeof K.Nil;
  pos: number;
}

export interface BoolNode {
  k: typeof K.Bool;
  pos: number;
  value: boolean;
}

/**
 * A number constant, resolved at parse time the way Go's idealConstant resolves it at run time:
 * value is an int (a bigint) or a float64 (a number), as govalue.ts holds them. overflows marks a
 * constant that only fits an unsigned 64-bit int, which executing reports as "overflows int", as Go does.
 */
export interface NumberNode {
  k: typeof K.Number;
  pos: number;
  text: string;
  value: bigint | number;
  overflows: boolean;
}

export interface StringNode {
  k: typeof K.String;
  pos: number;
  quoted: string;
  text: string;
}

export type ArgNode =
  | IdentifierNode
  | VariableNode
  | FieldNode
  | ChainNode
  | DotNode
  | NilNode
  | BoolNode
  | NumberNode
  | StringNode
  | PipeNode;

/**
 * A parsed template file: every template it defines ({{define}}, {{block}} and the file itself, under
 * its name), plus the source, from which errors compute Go's line:column.
 */
export interface GoTemplateTree {
  name: string;
  text: string;
  templates: Record<string, ListNode>;
}

/** text/template's builtin functions, implemented by the evaluator with Go's semantics. */
export const BUILTIN_NAMES = [
  "and",
  "call",
  "eq",
  "ge",
  "gt",
  "html",
  "index",
  "js",
  "le",
  "len",
  "lt",
  "ne",
  "not",
  "or",
  "print",
  "printf",
  "println",
  "slice",
  "urlquery",
] as const;

export type BuiltinName = (typeof BUILTIN_NAMES)[number];

export function nodeString(n: Node | ArgNode | CommandNode): string {
  switch (n.k) {
    case K.List:
      return n.nodes.map(nodeString).join("");
    case K.Text:
      return n.text;
    case K.Action:
      return `{{${nodeString(n.pipe)}}}`;
    case K.If:
    case K.Range:
    case K.With: {
      const name = n.k === K.If ? "if" : n.k === K.Range ? "range" : "with";
      const elsePart = n.elseList ? `{{else}}${nodeString(n.elseList)}` : "";
      return `{{${name} ${nodeString(n.pipe)}}}${nodeString(n.list)}${elsePart}{{end}}`;
    }
    case K.Template:
      return `{{template ${goQuote(n.name)}${n.pipe ? " " + nodeString(n.pipe) : ""}}}`;
    case K.Break:
      return "{{break}}";
    case K.Continue:
      return "{{continue}}";
    case K.Pipe: {
      const decl = n.decl.length > 0 ? n.decl.map(nodeString).join(", ") + (n.isAssign ? " = " : " := ") : "";
      return decl + n.cmds.map(nodeString).join(" | ");
    }
    case K.Command:
      return n.args.map((a) => (a.k === K.Pipe ? `(${nodeString(a)})` : nodeString(a))).join(" ");
    case K.Identifier:
      return n.name;
    case K.Variable:
      return n.ident.join(".");
    case K.Field:
      return n.ident.map((id) => "." + id).join("");
    case K.Chain: {
      const head = n.node.k === K.Pipe ? `(${nodeString(n.node)})` : nodeString(n.node);
      return head + n.field.map((f) => "." + f).join("");
    }
    case K.Dot:
      return ".";
    case K.Nil:
      return "nil";
    case K.Bool:
      return n.value ? "true" : "false";
    case K.Number:
      return n.text;
    case K.String:
      return n.quoted;
  }
}

/**
 * Go's ErrorContext: the 1-based line of a source offset and its column, counted as Go counts it,
 * in bytes from the start of the line (0 for the first byte).
 */
export function sourcePosition(text: string, pos: number): { line: number; column: number } {
  const before = text.slice(0, pos);
  let line = 1;
  for (let i = before.indexOf("\n"); i >= 0; i = before.indexOf("\n", i + 1)) line++;
  const lineStart = before.lastIndexOf("\n") + 1;
  return { line, column: byteLength(before.slice(lineStart)) };
}

