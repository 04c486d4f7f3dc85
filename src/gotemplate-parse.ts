// The parser of Go's text/template (parse/parse.go): a recursive-descent port over the lexer's items,
// building the plain-data tree that gotemplate-exec.ts runs. It owns Go's parse errors (their text and
// line), the checks Go makes at parse time (undefined functions and variables, break outside range,
// empty pipelines, literal commands in pipelines, multiple definitions) and Go's literal syntax
// (strconv's numbers, quoted and raw strings, character constants).
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
import { decodeBytes, encodeText } from "./bytes.ts";
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

// --- literals (strconv) -------------------------------------------------------

type NumberValue = Pick<NumberNode, "value" | "overflows">;

const INT64_MIN = -(1n << 63n);
const INT64_MAX = (1n << 63n) - 1n;
const UINT64_MAX = (1n << 64n) - 1n;

/**
 * Go's newNumber followed by idealConstant: a literal is a float when it is one and is spelled with
 * '.', 'e' or 'p' (hex ints aside), otherwise an int; a value only uint64 holds "overflows int" when
 * executed. Complex numbers have no JavaScript value: they are rejected here.
 */
function numberConstant(text: string, complex: boolean): NumberValue | string {
  // Go's imaginary constants ("4i", "1+2i"): only text that parses as one is complex.
  const imaginary = text.endsWith("i") && parseGoFloat(text.slice(0, -1)) !== undefined;
  if (complex || imaginary) return `complex number ${text} is not supported`;
  const u = parseGoUint(text);
  const i = parseGoInt(text);
  let isInt = i !== undefined;
  let isUint = u !== undefined;
  let int = i ?? (u !== undefined && u <= INT64_MAX ? u : undefined);
  let float: number | undefined;
  if (isInt || isUint) {
    float = Number(i ?? u);
  } else {
    const f = parseGoFloat(text);
    if (f !== undefined) {
      // Parsed as a float but spelled like an integer: a number too large for any int.
      if (!/[.eEpP]/.test(text)) return `integer overflow: ${goQuote(text)}`;
      float = f;
      if (Number.isInteger(f) && f >= -(2 ** 63) && f < 2 ** 63) {
        isInt = true;
        int = BigInt(f);
      }
      if (Number.isInteger(f) && f >= 0 && f < 2 ** 64) isUint = true;
    }
  }
  if (!isInt && !isUint && float === undefined) return `illegal number syntax: ${goQuote(text)}`;
  const hexInt = /^[+-]?0[xX]/.test(text) && !/[pP]/.test(text);
  if (float !== undefined && !hexInt && /[.eEpP]/.test(text)) return { value: float, overflows: false };
  if (isInt && int !== undefined) return { value: intValue(int), overflows: false };
  return { value: 0, overflows: true };
}

function intValue(v: bigint): number | bigint {
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

function charConstant(text: string): NumberValue | string {
  const r = unquoteChar(text, 1, 0x27);
  if (r === undefined) return "invalid syntax";
  if (text.slice(r.next) !== "'") return `malformed character constant: ${text}`;
  return { value: r.value, overflows: false };
}

const PREFIX_BASES: Readonly<Record<string, number | undefined>> = { b: 2, o: 8, x: 16 };

/** strconv.ParseUint(s, 0, 64). */
function parseGoUint(s: string): bigint | undefined {
  if (s === "") return undefined;
  let base = 10;
  let digits = s;
  if (s[0] === "0") {
    const prefix = s.length >= 3 ? PREFIX_BASES[s[1]!.toLowerCase()] : undefined;
    base = prefix ?? 8;
    digits = s.slice(prefix === undefined ? 1 : 2);
  }
  let n = 0n;
  let underscores = false;
  for (const c of digits) {
    if (c === "_") {
      underscores = true;
      continue;
    }
    const d = parseInt(c, 36);
    if (Number.isNaN(d) || d >= base) return undefined;
    n = n * BigInt(base) + BigInt(d);
  }
  if (underscores && !underscoreOK(s)) return undefined;
  return n <= UINT64_MAX ? n : undefined;
}

/** strconv.ParseInt(s, 0, 64). */
function parseGoInt(s: string): bigint | undefined {
  const neg = s[0] === "-";
  const body = s[0] === "-" || s[0] === "+" ? s.slice(1) : s;
  const u = parseGoUint(body);
  if (u === undefined) return undefined;
  const v = neg ? -u : u;
  return v >= INT64_MIN && v <= INT64_MAX ? v : undefined;
}

const DECIMAL_FLOAT = /^[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$/;
const HEX_FLOAT = /^([+-]?)0[xX]((?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+))[pP]([+-]?[0-9]+)$/;

/** strconv.ParseFloat(s, 64) for what the lexer lets through; out of range is an error, as in Go. */
function parseGoFloat(s: string): number | undefined {
  if (s.includes("_") && !underscoreOK(s)) return undefined;
  const t = s.replaceAll("_", "");
  let v: number;
  const hex = HEX_FLOAT.exec(t);
  if (hex !== null) {
    const [, sign, mantissa, exp] = hex as unknown as [string, string, string, string];
    const dot = mantissa.indexOf(".");
    const digits = mantissa.replace(".", "");
    const fractionBits = dot < 0 ? 0 : (mantissa.length - dot - 1) * 4;
    v = Number(BigInt("0x" + (digits === "" ? "0" : digits))) * 2 ** (Number(exp) - fractionBits);
    if (sign === "-") v = -v;
  } else if (DECIMAL_FLOAT.test(t)) {
    v = Number(t);
  } else {
    return undefined;
  }
  return Number.isFinite(v) ? v : undefined;
}

/** strconv's rule: underscores only between digits, or between a base prefix and a digit. */
function underscoreOK(str: string): boolean {
  let s = str;
  let saw = "^";
  let i = 0;
  if (s.length >= 1 && (s[0] === "-" || s[0] === "+")) s = s.slice(1);
  let hex = false;
  const p = s[1]?.toLowerCase();
  if (s.length >= 2 && s[0] === "0" && (p === "b" || p === "o" || p === "x")) {
    i = 2;
    saw = "0";
    hex = p === "x";
  }
  for (; i < s.length; i++) {
    const c = s[i]!;
    const lower = c.toLowerCase();
    if ((c >= "0" && c <= "9") || (hex && lower >= "a" && lower <= "f")) {
      saw = "0";
      continue;
    }
    if (c === "_") {
      if (saw !== "0") return false;
      saw = "_";
      continue;
    }
    if (saw === "_") return false;
    saw = "!";
  }
  return saw !== "_";
}

const SIMPLE_ESCAPES: Readonly<Record<string, number>> = { a: 7, b: 8, f: 12, n: 10, r: 13, t: 9, v: 11, "\\": 0x5c };

/**
 * strconv.UnquoteChar on s from index i: the value, whether it is a character (not a byte from \x or
 * octal) and where the rest starts; undefined is ErrSyntax.
 */
function unquoteChar(s: string, i: number, quote: number): { value: number; multibyte: boolean; next: number } | undefined {
  if (i >= s.length) return undefined;
  const c = s.codePointAt(i)!;
  if (c === quote && (quote === 0x27 || quote === 0x22)) return undefined;
  if (c >= 0x80) return { value: c, multibyte: true, next: i + (c > 0xffff ? 2 : 1) };
  if (c !== 0x5c) return { value: c, multibyte: false, next: i + 1 };
  if (i + 1 >= s.length) return undefined;
  const e = s[i + 1]!;
  let next = i + 2;
  const simple = SIMPLE_ESCAPES[e];
  if (simple !== undefined && Object.hasOwn(SIMPLE_ESCAPES, e)) return { value: simple, multibyte: false, next };
  switch (e) {
    case "x":
    case "u":
    case "U": {
      const n = e === "x" ? 2 : e === "u" ? 4 : 8;
      const hex = s.slice(next, next + n);
      if (hex.length < n || !/^[0-9a-fA-F]+$/.test(hex)) return undefined;
      const v = parseInt(hex, 16);
      next += n;
      if (e === "x") return { value: v, multibyte: false, next };
      if (v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff)) return undefined;
      return { value: v, multibyte: true, next };
    }
    case "0":
    case "1":
    case "2":
    case "3":
    case "4":
    case "5":
    case "6":
    case "7": {
      const oct = s.slice(i + 1, i + 4);
      if (!/^[0-7]{3}$/.test(oct)) return undefined;
      const v = parseInt(oct, 8);
      if (v > 255) return undefined;
      return { value: v, multibyte: false, next: i + 4 };
    }
    case "'":
    case '"':
      if (e.charCodeAt(0) !== quote) return undefined;
      return { value: quote, multibyte: false, next };
  }
  return undefined;
}

/**
 * strconv.Unquote for "..." and `...`; undefined is ErrSyntax. Raw strings lose their carriage
 * returns, as in Go. Bytes from \x and octal escapes are decoded as UTF-8 with the rest: a JavaScript
 * string cannot hold bytes that are not UTF-8, which become U+FFFD.
 */
function unquote(quoted: string): string | undefined {
  const q = quoted[0];
  if (quoted.length < 2 || quoted[quoted.length - 1] !== q) return undefined;
  const body = quoted.slice(1, -1);
  if (q === "`") return body.includes("`") ? undefined : body.replaceAll("\r", "");
  if (q !== '"') return undefined;
  if (!body.includes("\\") && !body.includes("\n") && !body.includes('"')) return body;
  const bytes: number[] = [];
  let i = 0;
  while (i < body.length) {
    if (body[i] === "\n") return undefined;
    const r = unquoteChar(body, i, 0x22);
    if (r === undefined) return undefined;
    if (r.value < 0x80 || !r.multibyte) bytes.push(r.value);
    else bytes.push(...encodeText(String.fromCodePoint(r.value)));
    i = r.next;
  }
  // "\xe9" is the byte 0xE9, as in Go: kept as its escape (bytes.ts), not replaced by U+FFFD.
  return decodeBytes(Uint8Array.from(bytes));
}
