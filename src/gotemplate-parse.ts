// The parser of Go's text/template (parse/parse.go): a recursive-descent port over the lexer's items,
// building the plain-data tree that gotemplate-exec.ts runs. It owns Go's parse errors (their text and
// line), the checks Go makes at parse time (undefined functions and variables, break outside range,
// empty pipelines, literal commands in pipelines, multiple definitions); literals are read by
// gotemplate-literal.ts.
import {
  BUILTIN_NAMES,
  K,
  nodeString,
  sourcePosition,
  type ArgNode,
  type BranchNode,
  type CommandNode,
  type GoTemplateTree,
  type ListNode,
  type Node,
  type NumberNode,
  type PipeNode,
  type TemplateNode,
  type VariableNode,
} from "./gotemplate-node.ts";
import { I, Lexer, type Item, type ItemType } from "./gotemplate-lex.ts";
import { charConstant, numberConstant, unquote } from "./gotemplate-literal.ts";
import { goQuote } from "./strconv.ts";

export type { GoTemplateTree } from "./gotemplate-node.ts";

/** `template: <name>:<line>: <what>`; column is the byte column of the item Go stopped at. */
export class GoTemplateParseError extends Error {
  constructor(
    message: string,
    readonly line: number,
    readonly column: number,
  ) {
    super(message);
    this.name = "GoTemplateParseError";
  }
}

export function parseGoTemplate(name: string, source: string, funcNames: ReadonlySet<string>): GoTemplateTree {
  const hasFunction = (fn: string): boolean => BUILTIN.has(fn) || funcNames.has(fn);
  const shared: Shared = {
    lex: new Lexer(source, !hasFunction("break"), !hasFunction("continue")),
    parseName: name,
    text: source,
    hasFunction,
    templates: Object.create(null) as Record<string, ListNode>,
    nesting: 0,
  };
  const top = new Parser(shared, name);
  top.parse();
  top.add();
  // A plain object again: the tree crosses postMessage, which drops the null prototype anyway.
  return { name, text: source, templates: { ...shared.templates } };
}

const BUILTIN: ReadonlySet<string> = new Set(BUILTIN_NAMES);

/**
 * Go limits nested parentheses to 10000 (1000 on wasm); a JavaScript stack holds less, so both
 * parentheses and nested control structures stop at 1000 here.
 */
const MAX_PAREN_DEPTH = 1000;
const MAX_NESTING = 1000;
const MAX_PIPELINE_CMDS = 100000;

interface Shared {
  lex: Lexer;
  parseName: string;
  text: string;
  hasFunction: (name: string) => boolean;
  templates: Record<string, ListNode>;
  /** Depth of control structures and parentheses being parsed, in all templates: bounds the recursion. */
  nesting: number;
}

// {{end}} and {{else}} end an item list; they never enter the tree.
interface EndMarker {
  k: "end";
  pos: number;
}
interface ElseMarker {
  k: "else";
  pos: number;
}
type ListEnd = EndMarker | ElseMarker;
type Parsed = Node | ListEnd;

function isListEnd(n: Parsed): n is ListEnd {
  return n.k === "end" || n.k === "else";
}

function markerString(n: ListEnd): string {
  return n.k === "end" ? "{{end}}" : "{{else}}";
}

const EOF_ITEM: Item = { typ: I.EOF, pos: 0, val: "", line: 1 };

/**
 * One template being parsed (Go's Tree): the file, a {{define}} or a {{block}} body. Each has its own
 * lookahead, variables and range depth; all share the lexer and the set of templates.
 */
class Parser {
  private readonly token: [Item, Item, Item] = [EOF_ITEM, EOF_ITEM, EOF_ITEM];
  private peekCount = 0;
  private vars: string[] = ["$"];
  private rangeDepth = 0;
  private actionLine = 0;
  private parenDepth = 0;
  root: ListNode = { k: K.List, pos: 0, nodes: [] };

  constructor(
    private readonly shared: Shared,
    private name: string,
  ) {}

  // --- lookahead ---

  private next(): Item {
    if (this.peekCount > 0) this.peekCount--;
    else this.token[0] = this.shared.lex.nextItem();
    return this.token[this.peekCount]!;
  }

  private backup(): void {
    this.peekCount++;
  }

  private backup2(t1: Item): void {
    this.token[1] = t1;
    this.peekCount = 2;
  }

  private backup3(t2: Item, t1: Item): void {
    this.token[1] = t1;
    this.token[2] = t2;
    this.peekCount = 3;
  }

  private peek(): Item {
    if (this.peekCount > 0) return this.token[this.peekCount - 1]!;
    this.peekCount = 1;
    this.token[0] = this.shared.lex.nextItem();
    return this.token[0];
  }

  private nextNonSpace(): Item {
    let token: Item;
    do token = this.next();
    while (token.typ === I.Space);
    return token;
  }

  private peekNonSpace(): Item {
    const token = this.nextNonSpace();
    this.backup();
    return token;
  }

  // --- errors ---

  /** Go reports the line of the last item read from the lexer. */
  private errorf(what: string): never {
    const { line, pos } = this.token[0];
    const { shared } = this;
    const at = sourcePosition(shared.text, Math.min(pos, shared.text.length));
    const column = at.line === line ? at.column : 0;
    throw new GoTemplateParseError(`template: ${shared.parseName}:${line}: ${what}`, line, column);
  }

  private expect(expected: ItemType, context: string): Item {
    const token = this.nextNonSpace();
    if (token.typ !== expected) this.unexpected(token, context);
    return token;
  }

  private unexpected(token: Item, context: string): never {
    if (token.typ === I.Error) {
      let extra = "";
      if (this.actionLine !== 0 && this.actionLine !== token.line) {
        extra = ` in action started at ${this.shared.parseName}:${this.actionLine}`;
        // Avoid "unclosed action in action started at".
        if (token.val.endsWith(" action")) extra = extra.slice(" in action".length);
      }
      this.errorf(`${token.val}${extra}`);
    }
    this.errorf(`unexpected ${itemString(token)} in ${context}`);
  }

  // --- templates ---

  /** The file itself: text and actions, plus {{define}} at the top level. */
  parse(): void {
    this.root = { k: K.List, pos: this.peek().pos, nodes: [] };
    while (this.peek().typ !== I.EOF) {
      if (this.peek().typ === I.LeftDelim) {
        const delim = this.next();
        if (this.nextNonSpace().typ === I.Define) {
          new Parser(this.shared, "definition").parseDefinition();
          continue;
        }
        this.backup2(delim);
      }
      const n = this.textOrAction();
      if (isListEnd(n)) this.errorf(`unexpected ${markerString(n)}`);
      this.root.nodes.push(n);
    }
  }

  private parseDefinition(): void {
    const context = "define clause";
    const name = this.expectOneOf(I.String, I.RawString, context);
    this.name = this.unquote(name.val);
    this.expect(I.RightDelim, context);
    const [root, end] = this.nested(() => this.itemList());
    this.root = root;
    if (end.k !== "end") this.errorf(`unexpected ${markerString(end)} in ${context}`);
    this.add();
  }

  private expectOneOf(a: ItemType, b: ItemType, context: string): Item {
    const token = this.nextNonSpace();
    if (token.typ !== a && token.typ !== b) this.unexpected(token, context);
    return token;
  }

  /** Adds this template to the set; an empty one never replaces a non-empty one. */
  add(): void {
    const { templates } = this.shared;
    const existing = Object.hasOwn(templates, this.name) ? templates[this.name] : undefined;
    if (existing === undefined || isEmptyTree(existing)) {
      templates[this.name] = this.root;
      return;
    }
    if (!isEmptyTree(this.root)) this.errorf(`template: multiple definition of template ${goQuote(this.name)}`);
  }

  /** textOrAction* up to {{end}} or {{else}}, which is returned separately. */
  private itemList(): [ListNode, ListEnd] {
    const list: ListNode = { k: K.List, pos: this.peekNonSpace().pos, nodes: [] };
    while (this.peekNonSpace().typ !== I.EOF) {
      const n = this.textOrAction();
      if (isListEnd(n)) return [list, n];
      list.nodes.push(n);
    }
    this.errorf("unexpected EOF");
  }

  private textOrAction(): Parsed {
    const token = this.nextNonSpace();
    switch (token.typ) {
      case I.Text:
        return { k: K.Text, pos: token.pos, text: token.val };
      case I.LeftDelim:
        this.actionLine = token.line;
        try {
          return this.action();
        } finally {
          this.actionLine = 0;
        }
      default:
        this.unexpected(token, "input");
    }
  }

  /** After the left delimiter: a control keyword, or a pipeline to print. */
  private action(): Parsed {
    const token = this.nextNonSpace();
    switch (token.typ) {
      case I.Block:
        return this.blockControl();
      case I.Break:
        return this.loopControl(K.Break, token, "{{break}}");
      case I.Continue:
        return this.loopControl(K.Continue, token, "{{continue}}");
      case I.Else:
        return this.elseControl();
      case I.End:
        return { k: "end", pos: this.expect(I.RightDelim, "end").pos };
      case I.If:
        return this.ifControl();
      case I.Range:
        return this.branch(K.Range, "range");
      case I.Template:
        return this.templateControl();
      case I.With:
        return this.withControl();
    }
    this.backup();
    const pos = this.peek().pos;
    // Variables declared here are not popped: they live until the enclosing {{end}}.
    return { k: K.Action, pos, pipe: this.pipeline("command", I.RightDelim) };
  }

  private loopControl(k: typeof K.Break | typeof K.Continue, keyword: Item, context: string): Node {
    const token = this.nextNonSpace();
    if (token.typ !== I.RightDelim) this.unexpected(token, context);
    if (this.rangeDepth === 0) this.errorf(`${context} outside {{range}}`);
    return { k, pos: keyword.pos };
  }

  private elseControl(): ElseMarker {
    // "{{else if" and "{{else with" leave the keyword pending for branch().
    const peek = this.peekNonSpace();
    if (peek.typ === I.If || peek.typ === I.With) return { k: "else", pos: peek.pos };
    return { k: "else", pos: this.expect(I.RightDelim, "else").pos };
  }

  private ifControl(): BranchNode {
    return this.branch(K.If, "if");
  }

  private withControl(): BranchNode {
    return this.branch(K.With, "with");
  }

  /** if, range and with: pipeline, list, optional else list; the pipeline's variables end with them. */
  private branch(k: BranchNode["k"], context: "if" | "range" | "with"): BranchNode {
    const varsBefore = this.vars.length;
    const node = this.nested(() => {
      const pipe = this.pipeline(context, I.RightDelim);
      if (context === "range") this.rangeDepth++;
      const [list, end] = this.itemList();
      if (context === "range") this.rangeDepth--;
      let elseList: ListNode | null = null;
      if (end.k === "else") {
        // {{if a}}x{{else if b}}y{{end}} is {{if a}}x{{else}}{{if b}}y{{end}}{{end}}, with one {{end}}.
        if (context === "if" && this.peek().typ === I.If) {
          this.next();
          elseList = { k: K.List, pos: end.pos, nodes: [this.ifControl()] };
        } else if (context === "with" && this.peek().typ === I.With) {
          this.next();
          elseList = { k: K.List, pos: end.pos, nodes: [this.withControl()] };
        } else {
          const [rest, last] = this.itemList();
          if (last.k !== "end") this.errorf(`expected end; found ${markerString(last)}`);
          elseList = rest;
        }
      }
      return { k, pos: pipe.pos, pipe, list, elseList };
    });
    this.vars.length = varsBefore;
    return node;
  }

  private nested<T>(parse: () => T): T {
    if (this.shared.nesting >= MAX_NESTING) this.errorf("max nesting depth exceeded");
    this.shared.nesting++;
    try {
      return parse();
    } finally {
      this.shared.nesting--;
    }
  }

  /** {{block "name" pipeline}} body {{end}}: defines the template and executes it in place. */
  private blockControl(): TemplateNode {
    const context = "block clause";
    const token = this.nextNonSpace();
    const name = this.templateName(token, context);
    const pipe = this.pipeline(context, I.RightDelim);
    const block = new Parser(this.shared, name);
    const [root, end] = this.nested(() => block.itemList());
    block.root = root;
    if (end.k !== "end") this.errorf(`unexpected ${markerString(end)} in ${context}`);
    block.add();
    return { k: K.Template, pos: token.pos, name, pipe };
  }

  private templateControl(): TemplateNode {
    const context = "template clause";
    const token = this.nextNonSpace();
    const name = this.templateName(token, context);
    let pipe: PipeNode | null = null;
    if (this.nextNonSpace().typ !== I.RightDelim) {
      this.backup();
      pipe = this.pipeline(context, I.RightDelim);
    }
    return { k: K.Template, pos: token.pos, name, pipe };
  }

  private templateName(token: Item, context: string): string {
    if (token.typ !== I.String && token.typ !== I.RawString) this.unexpected(token, context);
    return this.unquote(token.val);
  }

  // --- pipelines ---

  /** declarations? command ('|' command)* */
  private pipeline(context: string, end: ItemType): PipeNode {
    const pipe: PipeNode = { k: K.Pipe, pos: this.peekNonSpace().pos, isAssign: false, decl: [], cmds: [] };
    this.declarations(pipe, context);
    for (;;) {
      const token = this.nextNonSpace();
      if (token.typ === end) {
        this.checkPipeline(pipe, context);
        return pipe;
      }
      switch (token.typ) {
        case I.Bool:
        case I.CharConstant:
        case I.Complex:
        case I.Dot:
        case I.Field:
        case I.Identifier:
        case I.Number:
        case I.Nil:
        case I.RawString:
        case I.String:
        case I.Variable:
        case I.LeftParen:
          this.backup();
          pipe.cmds.push(this.command());
          if (pipe.cmds.length > MAX_PIPELINE_CMDS) this.errorf("pipeline too long");
          break;
        default:
          this.unexpected(token, context);
      }
    }
  }

  // "$x := ", "$x = " or, in range, "$i, $e := ". Telling "$x foo" from "$x :=" takes three items of
  // lookahead, since spaces are items.
  private declarations(pipe: PipeNode, context: string): void {
    for (;;) {
      const v = this.peekNonSpace();
      if (v.typ !== I.Variable) return;
      this.next();
      const tokenAfterVariable = this.peek();
      const next = this.peekNonSpace();
      if (next.typ === I.Assign || next.typ === I.Declare) {
        pipe.isAssign = next.typ === I.Assign;
        this.nextNonSpace();
        pipe.decl.push(variableNode(v.pos, [v.val]));
        this.vars.push(v.val);
        return;
      }
      if (next.typ === I.Char && next.val === ",") {
        this.nextNonSpace();
        pipe.decl.push(variableNode(v.pos, [v.val]));
        this.vars.push(v.val);
        if (context === "range" && pipe.decl.length < 2) {
          const t = this.peekNonSpace().typ;
          if (t === I.Variable || t === I.RightDelim || t === I.RightParen) continue;
          this.errorf("range can only initialize variables");
        }
        this.errorf(`too many declarations in ${context}`);
      }
      if (tokenAfterVariable.typ === I.Space) this.backup3(v, tokenAfterVariable);
      else this.backup2(v);
      return;
    }
  }

  private checkPipeline(pipe: PipeNode, context: string): void {
    if (pipe.cmds.length === 0) this.errorf(`missing value for ${context}`);
    // Only the first command may start with a value rather than something executable.
    for (let i = 1; i < pipe.cmds.length; i++) {
      switch (pipe.cmds[i]!.args[0]!.k) {
        case K.Bool:
        case K.Dot:
        case K.Nil:
        case K.Number:
        case K.String:
          this.errorf(`non executable command in pipeline stage ${i + 1}`);
      }
    }
  }

  /** Space-separated operands up to '|' (consumed) or a right delimiter or paren (left for the caller). */
  private command(): CommandNode {
    const cmd: CommandNode = { k: K.Command, pos: this.peekNonSpace().pos, args: [] };
    for (;;) {
      this.peekNonSpace();
      const operand = this.operand();
      if (operand !== null) cmd.args.push(operand);
      const token = this.next();
      if (token.typ === I.Space) continue;
      if (token.typ === I.RightDelim || token.typ === I.RightParen) this.backup();
      else if (token.typ !== I.Pipe) this.unexpected(token, "operand");
      break;
    }
    if (cmd.args.length === 0) this.errorf("empty command");
    return cmd;
  }

  /** A term followed by .Field accesses. */
  private operand(): ArgNode | null {
    const node = this.term();
    if (node === null) return null;
    if (this.peek().typ !== I.Field) return node;
    const pos = this.peek().pos;
    const fields: string[] = [];
    while (this.peek().typ === I.Field) fields.push(this.next().val.slice(1));
    switch (node.k) {
      // Go keeps .X.Y and $x.Y as one node, placed at the first chained field.
      case K.Field:
        return { k: K.Field, pos, ident: [...node.ident, ...fields] };
      case K.Variable:
        return variableNode(pos, [...node.ident, ...fields]);
      case K.Bool:
      case K.String:
      case K.Number:
      case K.Nil:
      case K.Dot:
        this.errorf(`unexpected . after term ${goQuote(nodeString(node))}`);
    }
    return { k: K.Chain, pos, node, field: fields };
  }

  private term(): ArgNode | null {
    const token = this.nextNonSpace();
    switch (token.typ) {
      case I.Identifier:
        if (!this.shared.hasFunction(token.val)) this.errorf(`function ${goQuote(token.val)} not defined`);
        return { k: K.Identifier, pos: token.pos, name: token.val };
      case I.Dot:
        return { k: K.Dot, pos: token.pos };
      case I.Nil:
        return { k: K.Nil, pos: token.pos };
      case I.Variable:
        if (!this.vars.includes(token.val)) this.errorf(`undefined variable ${goQuote(token.val)}`);
        return variableNode(token.pos, [token.val]);
      case I.Field:
        return { k: K.Field, pos: token.pos, ident: token.val.slice(1).split(".") };
      case I.Bool:
        return { k: K.Bool, pos: token.pos, value: token.val === "true" };
      case I.CharConstant:
      case I.Complex:
      case I.Number:
        return this.number(token);
      case I.LeftParen: {
        if (this.parenDepth >= MAX_PAREN_DEPTH) this.errorf("max expression depth exceeded");
        this.parenDepth++;
        try {
          return this.nested(() => this.pipeline("parenthesized pipeline", I.RightParen));
        } finally {
          this.parenDepth--;
        }
      }
      case I.String:
      case I.RawString:
        return { k: K.String, pos: token.pos, quoted: token.val, text: this.unquote(token.val) };
    }
    this.backup();
    return null;
  }

  private number(token: Item): NumberNode {
    const result = token.typ === I.CharConstant ? charConstant(token.val) : numberConstant(token.val, token.typ === I.Complex);
    if (typeof result === "string") this.errorf(result);
    return { k: K.Number, pos: token.pos, text: token.val, ...result };
  }

  private unquote(quoted: string): string {
    const s = unquote(quoted);
    if (s === undefined) this.errorf("invalid syntax");
    return s;
  }
}

function variableNode(pos: number, ident: string[]): VariableNode {
  return { k: K.Variable, pos, ident };
}

/** Go's item String(), as "unexpected" errors print it. */
function itemString(item: Item): string {
  if (item.typ === I.EOF) return "EOF";
  if (item.typ === I.Error) return item.val;
  if (item.typ > I.Keyword) return `<${item.val}>`;
  // %.10q... : the first ten runes, quoted.
  if (new TextEncoder().encode(item.val).length > 10) return goQuote(Array.from(item.val).slice(0, 10).join("")) + "...";
  return goQuote(item.val);
}

/** Whether a template holds nothing but white space (Go's IsEmptyTree). */
function isEmptyTree(list: ListNode): boolean {
  return list.nodes.every((n) => n.k === K.List ? isEmptyTree(n) : n.k === K.Text && GO_SPACE.test(n.text));
}

// bytes.TrimSpace's white space: unicode.IsSpace.
const GO_SPACE = /^[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$/;
