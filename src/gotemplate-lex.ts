// The lexer of Go's text/template (parse/lex.go): turns a template source into items on demand, with
// Go's trim markers, comments, line counting and error messages. It works on the JavaScript string
// (positions are UTF-16 offsets) and decodes code points where Go decodes runes.
import { goQuote } from "./strconv.ts";

export const I = {
  Error: 0,
  Bool: 1,
  Char: 2,
  CharConstant: 3,
  Complex: 4,
  Assign: 5,
  Declare: 6,
  EOF: 7,
  Field: 8,
  Identifier: 9,
  LeftDelim: 10,
  LeftParen: 11,
  Number: 12,
  Pipe: 13,
  RawString: 14,
  RightDelim: 15,
  RightParen: 16,
  Space: 17,
  String: 18,
  Text: 19,
  Variable: 20,
  // Keywords come after Keyword: Go prints them as <name> in "unexpected" errors.
  Keyword: 21,
  Block: 22,
  Break: 23,
  Continue: 24,
  Dot: 25,
  Define: 26,
  Else: 27,
  End: 28,
  If: 29,
  Nil: 30,
  Range: 31,
  Template: 32,
  With: 33,
} as const;

export type ItemType = (typeof I)[keyof typeof I];

export interface Item {
  typ: ItemType;
  /** Offset of the item in the source. */
  pos: number;
  val: string;
  /** Line of the start of the item. */
  line: number;
}

const KEYWORDS: ReadonlyMap<string, ItemType> = new Map<string, ItemType>([
  [".", I.Dot],
  ["block", I.Block],
  ["break", I.Break],
  ["continue", I.Continue],
  ["define", I.Define],
  ["else", I.Else],
  ["end", I.End],
  ["if", I.If],
  ["range", I.Range],
  ["nil", I.Nil],
  ["template", I.Template],
  ["with", I.With],
]);

const EOF = -1;
const LEFT_DELIM = "{{";
const RIGHT_DELIM = "}}";
const LEFT_COMMENT = "/*";
const RIGHT_COMMENT = "*/";
// A trim marker is '-' plus one space character, so "{{-3}}" stays the number -3.
const TRIM_MARKER_LEN = 2;

type State = ((l: Lexer) => State) | null;

// The cursor is Go's lexer struct; the state functions below it read and move it.
export class Lexer {
  pos = 0;
  start = 0;
  atEOF = false;
  parenDepth = 0;
  line = 1;
  startLine = 1;
  item: Item = { typ: I.EOF, pos: 0, val: "EOF", line: 1 };
  insideAction = false;

  constructor(
    public input: string,
    // break and continue are keywords only where no function of that name exists.
    readonly breakOK: boolean,
    readonly continueOK: boolean,
  ) {}

  nextItem(): Item {
    this.item = { typ: I.EOF, pos: this.pos, val: "EOF", line: this.startLine };
    let state: State = this.insideAction ? lexInsideAction : lexText;
    while (state !== null) state = state(this);
    return this.item;
  }

  // --- cursor (Go's next/peek/backup, on code points) ---

  next(): number {
    if (this.pos >= this.input.length) {
      this.atEOF = true;
      return EOF;
    }
    const r = this.input.codePointAt(this.pos) ?? EOF;
    this.pos += r > 0xffff ? 2 : 1;
    if (r === 0x0a) this.line++;
    return r;
  }

  peek(): number {
    const r = this.next();
    this.backup();
    return r;
  }

  backup(): void {
    if (this.atEOF || this.pos === 0) return;
    const low = this.input.charCodeAt(this.pos - 1);
    const pair = low >= 0xdc00 && low <= 0xdfff && this.pos >= 2 && isHighSurrogate(this.input.charCodeAt(this.pos - 2));
    this.pos -= pair ? 2 : 1;
    if (low === 0x0a) this.line--;
  }

  accept(valid: string): boolean {
    const r = this.next();
    if (r !== EOF && valid.includes(String.fromCodePoint(r))) return true;
    this.backup();
    return false;
  }

  acceptRun(valid: string): void {
    for (;;) {
      const r = this.next();
      if (r === EOF || !valid.includes(String.fromCodePoint(r))) break;
    }
    this.backup();
  }

  thisItem(typ: ItemType): Item {
    const item: Item = { typ, pos: this.start, val: this.input.slice(this.start, this.pos), line: this.startLine };
    this.start = this.pos;
    this.startLine = this.line;
    return item;
  }

  emit(typ: ItemType): State {
    return this.emitItem(this.thisItem(typ));
  }

  emitItem(item: Item): State {
    this.item = item;
    return null;
  }

  /** Skips the pending input; counts its newlines, so use it only for text not read with next. */
  ignore(): void {
    this.line += countNewlines(this.input, this.start, this.pos);
    this.start = this.pos;
    this.startLine = this.line;
  }

  /** Reports an error item and stops: later calls see an empty input and return EOF. */
  errorf(message: string): State {
    this.item = { typ: I.Error, pos: this.start, val: message, line: this.startLine };
    this.start = 0;
    this.pos = 0;
    this.input = "";
    return null;
  }

  /** Whether the input at pos is a right delimiter, possibly preceded by a trim marker. */
  atRightDelim(): { delim: boolean; trim: boolean } {
    const input = this.input;
    if (hasRightTrimMarker(input, this.pos) && input.startsWith(RIGHT_DELIM, this.pos + TRIM_MARKER_LEN)) return { delim: true, trim: true };
    if (input.startsWith(RIGHT_DELIM, this.pos)) return { delim: true, trim: false };
    return { delim: false, trim: false };
  }

  /** Whether an identifier may end here: Go breaks .X.Y into two pieces and rejects $x+2. */
  atTerminator(): boolean {
    const r = this.peek();
    if (isSpace(r)) return true;
    switch (r) {
      case EOF:
      case 0x2e: // .
      case 0x2c: // ,
      case 0x7c: // |
      case 0x3a: // :
      case 0x29: // )
      case 0x28: // (
        return true;
    }
    return this.input.startsWith(RIGHT_DELIM, this.pos);
  }

  /** The text scanned so far for the current item, for error messages. */
  pending(): string {
    return this.input.slice(this.start, this.pos);
  }
}

// --- state functions (Go's lexText and friends) ---

function lexText(l: Lexer): State {
  const input = l.input;
  const x = input.indexOf(LEFT_DELIM, l.pos);
  if (x >= 0) {
    if (x > l.pos) {
      l.pos = x;
      let trimLength = 0;
      if (hasLeftTrimMarker(input, x + LEFT_DELIM.length)) trimLength = rightTrimLength(input, l.start, l.pos);
      l.pos -= trimLength;
      l.line += countNewlines(input, l.start, l.pos);
      const item = l.thisItem(I.Text);
      l.pos += trimLength;
      l.ignore();
      if (item.val.length > 0) return l.emitItem(item);
    }
    return lexLeftDelim;
  }
  l.pos = input.length;
  if (l.pos > l.start) {
    l.line += countNewlines(input, l.start, l.pos);
    return l.emit(I.Text);
  }
  return l.emit(I.EOF);
}

function lexLeftDelim(l: Lexer): State {
  l.pos += LEFT_DELIM.length;
  const trimSpace = hasLeftTrimMarker(l.input, l.pos);
  const afterMarker = trimSpace ? TRIM_MARKER_LEN : 0;
  if (l.input.startsWith(LEFT_COMMENT, l.pos + afterMarker)) {
    l.pos += afterMarker;
    l.ignore();
    return lexComment;
  }
  const item = l.thisItem(I.LeftDelim);
  l.insideAction = true;
  l.pos += afterMarker;
  l.ignore();
  l.parenDepth = 0;
  return l.emitItem(item);
}

function lexComment(l: Lexer): State {
  l.pos += LEFT_COMMENT.length;
  const x = l.input.indexOf(RIGHT_COMMENT, l.pos);
  if (x < 0) return l.errorf("unclosed comment");
  l.pos = x + RIGHT_COMMENT.length;
  const { delim, trim } = l.atRightDelim();
  if (!delim) return l.errorf("comment ends before closing delimiter");
  if (trim) l.pos += TRIM_MARKER_LEN;
  l.pos += RIGHT_DELIM.length;
  if (trim) l.pos += leftTrimLength(l.input, l.pos);
  l.ignore();
  return lexText;
}

function lexRightDelim(l: Lexer): State {
  const { trim } = l.atRightDelim();
  if (trim) {
    l.pos += TRIM_MARKER_LEN;
    l.ignore();
  }
  l.pos += RIGHT_DELIM.length;
  const item = l.thisItem(I.RightDelim);
  if (trim) {
    l.pos += leftTrimLength(l.input, l.pos);
    l.ignore();
  }
  l.insideAction = false;
  return l.emitItem(item);
}

function lexInsideAction(l: Lexer): State {
  if (l.atRightDelim().delim) {
    if (l.parenDepth === 0) return lexRightDelim;
    return l.errorf("unclosed left paren");
  }
  const r = l.next();
  if (r === EOF) return l.errorf("unclosed action");
  if (isSpace(r)) {
    // Put the space back in case it starts " -}}".
    l.backup();
    return lexSpace;
  }
  switch (r) {
    case 0x3d: // =
      return l.emit(I.Assign);
    case 0x3a: // :
      if (l.next() !== 0x3d) return l.errorf("expected :=");
      return l.emit(I.Declare);
    case 0x7c: // |
      return l.emit(I.Pipe);
    case 0x22: // "
      return lexQuote;
    case 0x60: // `
      return lexRawQuote;
    case 0x24: // $
      return lexVariable;
    case 0x27: // '
      return lexChar;
    case 0x28: // (
      l.parenDepth++;
      return l.emit(I.LeftParen);
    case 0x29: // )
      l.parenDepth--;
      if (l.parenDepth < 0) return l.errorf("unexpected right paren");
      return l.emit(I.RightParen);
  }
  if (r === 0x2e) {
    // ".field", unless a digit follows and it starts a number.
    const c = l.input.charCodeAt(l.pos);
    if (!(c >= 0x30 && c <= 0x39)) return lexField;
  }
  if (r === 0x2e || r === 0x2b || r === 0x2d || (r >= 0x30 && r <= 0x39)) {
    l.backup();
    return lexNumber;
  }
  if (isAlphaNumeric(r)) {
    l.backup();
    return lexIdentifier;
  }
  if (r <= 0x7f && isPrintable(r)) return l.emit(I.Char);
  return l.errorf(`unrecognized character in action: ${formatRune(r)}`);
}

function lexSpace(l: Lexer): State {
  let spaces = 0;
  while (isSpace(l.peek())) {
    l.next();
    spaces++;
  }
  // A trim-marked right delimiter starts with a space: leave that space to it.
  if (hasRightTrimMarker(l.input, l.pos - 1) && l.input.startsWith(RIGHT_DELIM, l.pos - 1 + TRIM_MARKER_LEN)) {
    l.backup();
    if (spaces === 1) return lexRightDelim;
  }
  return l.emit(I.Space);
}

function lexIdentifier(l: Lexer): State {
  for (;;) {
    const r = l.next();
    if (isAlphaNumeric(r)) continue;
    l.backup();
    const word = l.input.slice(l.start, l.pos);
    if (!l.atTerminator()) return l.errorf(`bad character ${formatRune(r)}`);
    const keyword = KEYWORDS.get(word);
    if (keyword !== undefined) {
      if ((keyword === I.Break && !l.breakOK) || (keyword === I.Continue && !l.continueOK)) return l.emit(I.Identifier);
      return l.emit(keyword);
    }
    if (word === "true" || word === "false") return l.emit(I.Bool);
    return l.emit(I.Identifier);
  }
}

function lexField(l: Lexer): State {
  return lexFieldOrVariable(l, I.Field);
}

function lexVariable(l: Lexer): State {
  if (l.atTerminator()) return l.emit(I.Variable);
  return lexFieldOrVariable(l, I.Variable);
}

function lexChar(l: Lexer): State {
  for (;;) {
    let r = l.next();
    if (r === 0x5c) {
      r = l.next();
      if (r !== EOF && r !== 0x0a) continue;
      return l.errorf("unterminated character constant");
    }
    if (r === EOF || r === 0x0a) return l.errorf("unterminated character constant");
    if (r === 0x27) return l.emit(I.CharConstant);
  }
}

function lexNumber(l: Lexer): State {
  if (!scanNumber(l)) return l.errorf(`bad number syntax: ${quoteItem(l)}`);
  const sign = l.peek();
  if (sign === 0x2b || sign === 0x2d) {
    // Complex: 1+2i, no spaces, ending in 'i'.
    if (!scanNumber(l) || l.input.charCodeAt(l.pos - 1) !== 0x69) return l.errorf(`bad number syntax: ${quoteItem(l)}`);
    return l.emit(I.Complex);
  }
  return l.emit(I.Number);
}

function lexQuote(l: Lexer): State {
  for (;;) {
    let r = l.next();
    if (r === 0x5c) {
      r = l.next();
      if (r !== EOF && r !== 0x0a) continue;
      return l.errorf("unterminated quoted string");
    }
    if (r === EOF || r === 0x0a) return l.errorf("unterminated quoted string");
    if (r === 0x22) return l.emit(I.String);
  }
}

function lexRawQuote(l: Lexer): State {
  for (;;) {
    const r = l.next();
    if (r === EOF) return l.errorf("unterminated raw quoted string");
    if (r === 0x60) return l.emit(I.RawString);
  }
}

function lexFieldOrVariable(l: Lexer, typ: typeof I.Field | typeof I.Variable): State {
  if (l.atTerminator()) return l.emit(typ === I.Variable ? I.Variable : I.Dot);
  let r: number;
  for (;;) {
    r = l.next();
    if (!isAlphaNumeric(r)) {
      l.backup();
      break;
    }
  }
  if (!l.atTerminator()) return l.errorf(`bad character ${formatRune(r)}`);
  return l.emit(typ);
}

// Go's scanNumber: deliberately loose ("089", "0x0.2"); the parser's strconv rejects what is wrong.
function scanNumber(l: Lexer): boolean {
  l.accept("+-");
  let digits = "0123456789_";
  if (l.accept("0")) {
    if (l.accept("xX")) digits = "0123456789abcdefABCDEF_";
    else if (l.accept("oO")) digits = "01234567_";
    else if (l.accept("bB")) digits = "01_";
  }
  l.acceptRun(digits);
  if (l.accept(".")) l.acceptRun(digits);
  if (digits.length === 11 && l.accept("eE")) {
    l.accept("+-");
    l.acceptRun("0123456789_");
  }
  if (digits.length === 23 && l.accept("pP")) {
    l.accept("+-");
    l.acceptRun("0123456789_");
  }
  l.accept("i");
  if (isAlphaNumeric(l.peek())) {
    l.next();
    return false;
  }
  return true;
}

function quoteItem(l: Lexer): string {
  return goQuote(l.pending());
}

function isHighSurrogate(c: number): boolean {
  return c >= 0xd800 && c <= 0xdbff;
}

function countNewlines(s: string, from: number, to: number): number {
  let n = 0;
  for (let i = s.indexOf("\n", from); i >= 0 && i < to; i = s.indexOf("\n", i + 1)) n++;
  return n;
}

function isSpace(r: number): boolean {
  return r === 0x20 || r === 0x09 || r === 0x0d || r === 0x0a;
}

function isSpaceCode(s: string, i: number): boolean {
  return isSpace(s.charCodeAt(i));
}

function hasLeftTrimMarker(s: string, at: number): boolean {
  return at + 1 < s.length && s.charCodeAt(at) === 0x2d && isSpaceCode(s, at + 1);
}

function hasRightTrimMarker(s: string, at: number): boolean {
  return at >= 0 && at + 1 < s.length && isSpaceCode(s, at) && s.charCodeAt(at + 1) === 0x2d;
}

function rightTrimLength(s: string, from: number, to: number): number {
  let i = to;
  while (i > from && isSpaceCode(s, i - 1)) i--;
  return to - i;
}

function leftTrimLength(s: string, from: number): number {
  let i = from;
  while (i < s.length && isSpaceCode(s, i)) i++;
  return i - from;
}

const LETTER_OR_DIGIT = /^[\p{L}\p{Nd}]$/u;
const PRINTABLE = /^[\p{L}\p{M}\p{N}\p{P}\p{S}]$/u;

/** unicode.IsLetter, unicode.IsDigit or '_'. */
function isAlphaNumeric(r: number): boolean {
  if (r < 0x80) {
    return r === 0x5f || (r >= 0x30 && r <= 0x39) || (r >= 0x41 && r <= 0x5a) || (r >= 0x61 && r <= 0x7a);
  }
  return LETTER_OR_DIGIT.test(String.fromCodePoint(r));
}

/** unicode.IsPrint: letters, marks, numbers, punctuation, symbols and the ASCII space. */
function isPrintable(r: number): boolean {
  if (r < 0x80) return r >= 0x20 && r < 0x7f;
  if (r >= 0xd800 && r <= 0xdfff) return false;
  return PRINTABLE.test(String.fromCodePoint(r));
}

/** fmt's %#U: U+0023 '#'. */
function formatRune(r: number): string {
  const hex = "U+" + r.toString(16).toUpperCase().padStart(4, "0");
  return isPrintable(r) ? `${hex} '${String.fromCodePoint(r)}'` : hex;
}
