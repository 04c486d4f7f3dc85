// The file backend: YAML and JSON files, or directories of them (walked recursively, file names
// filtered by a glob), flattened as confd does: nested maps become path segments, list items index
// segments, numbers and booleans their text. Files are re-read on every getValues call, since they
// are the store; the caller reads once per run for all resources. A data file may be hostile, so
// flattening refuses self-referencing anchors, alias bombs and runaway nesting, naming the file.
import { statSync, watch, type FSWatcher } from "node:fs";
import { readdir, readFile, stat } from "node:fs/promises";
import { join, posix } from "node:path";
import { decodeBytes, firstEscape } from "../bytes.ts";
import { ConfdError, errnoText } from "../errors.ts";
import { globMatch } from "../glob.ts";
import { keyFilter } from "../keys.ts";
import type { StoreClient } from "../store.ts";

export class FileClient implements StoreClient {
  constructor(
    private readonly paths: readonly string[],
    private readonly filter: string,
  ) {}

  // Reads are asynchronous: a data file that blocks (a FIFO, a stalled NFS mount) must not freeze the main
  // thread, which has signals to answer.
  async getValues(keys: readonly string[]): Promise<Map<string, string>> {
    const all = new Map<string, string>();
    for (const file of await this.files()) flatten(file, await parseFile(file), all);
    const values = new Map<string, string>();
    const wanted = keyFilter(keys);
    for (const [k, v] of all) if (wanted(k)) values.set(k, v);
    return values;
  }

  /** Every data file, in a stable order so that a key defined twice resolves the same way each run. */
  async files(): Promise<string[]> {
    const out: string[] = [];
    for (const path of this.paths) {
      let isDir: boolean;
      try {
        isDir = (await stat(path)).isDirectory();
      } catch (err) {
        throw new ConfdError(`cannot read data file: ${errnoText(err)}`, { file: path });
      }
      if (isDir) await walk(path, this.filter, out);
      else out.push(path);
    }
    return out;
  }

  watchPrefix(_prefix: string, waitIndex: number, signal: AbortSignal): Promise<number> {
    if (waitIndex === 0) return Promise.resolve(1);
    return new Promise((resolve, reject) => {
      const watchers: FSWatcher[] = [];
      const done = (settle: () => void) => {
        for (const w of watchers) w.close();
        signal.removeEventListener("abort", onAbort);
        settle();
      };
      const onAbort = () => done(() => reject(signal.reason));
      signal.addEventListener("abort", onAbort, { once: true });
      // Editors replace files by rename, which ends a watch on the file itself: watch directories too.
      for (const path of this.paths) {
        try {
          watchers.push(watch(path, { recursive: statSync(path).isDirectory() }, () => done(() => resolve(waitIndex + 1))));
        } catch (err) {
          done(() => reject(err));
          return;
        }
      }
    });
  }

  async close(): Promise<void> {}
}

async function walk(dir: string, filter: string, out: string[]): Promise<void> {
  const entries = (await readdir(dir, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const entry of entries) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) await walk(path, filter, out);
    else if (globMatch(filter, entry.name)) out.push(path);
  }
}

async function parseFile(file: string): Promise<unknown> {
  let text: string;
  try {
    text = decodeBytes(await readFile(file));
  } catch (err) {
    throw new ConfdError(`cannot read data file: ${errnoText(err)}`, { file });
  }
  const escape = firstEscape(text);
  if (escape >= 0) throw notUtf8(file, text, escape);
  let parsed: unknown;
  try {
    parsed = formatOf(file) === "JSON" ? JSON.parse(text) : Bun.YAML.parse(text);
  } catch (err) {
    throw invalid(file, parseErrorText(err));
  }
  const doc = firstDocument(parsed, text);
  if (doc !== null && doc !== undefined && (typeof doc !== "object" || Array.isArray(doc))) {
    throw invalid(file, `the top level is ${Array.isArray(doc) ? "a list" : "a single value"}, not a mapping of keys (confd refuses it too)`);
  }
  return doc;
}

/**
 * Bun.YAML returns every document of a multi-document file as a list; confd (yaml.Unmarshal) reads the
 * first document only. A top-level list looks the same, and is refused after this anyway.
 */
function firstDocument(parsed: unknown, text: string): unknown {
  return Array.isArray(parsed) && /^(---|\.\.\.)(\s|$)/m.test(text) ? parsed[0] : parsed;
}

/**
 * The parser's complaint, fit for a log. JSON.parse quotes the text it stumbled on ("Unexpected
 * identifier "hunter2"" for a password left unquoted), which may be a secret, so quoted text is elided.
 * Bun.YAML.parse recurses per level and throws RangeError a few thousand levels down. Neither parser
 * gives a position in the document: the line and column on their errors are the calling JavaScript's.
 */
function parseErrorText(err: unknown): string {
  if (err instanceof RangeError && /call stack/i.test(err.message)) return "nested too deeply to parse";
  const message = err instanceof Error ? err.message : String(err);
  return message.replace(/^(JSON|YAML) Parse error: /, "").replace(/"[^"]*"/g, '"…"');
}

/**
 * Deeper nesting is refused: the walk below recurses once a level, and JSON.parse accepts any depth
 * (a million levels of "[" parse), so without a bound a small file overflows the stack. Real
 * configuration is a few levels deep; Bun.YAML.parse itself gives up at a few thousand.
 */
const MAX_DEPTH = 1000;

/** yaml.v2's alias budget (see aliasingExcessive), so that confd and this accept the same files. */
const ALIAS_RATIO_RANGE_LOW = 400_000;
const ALIAS_RATIO_RANGE_HIGH = 4_000_000;

/** What one file's walk has met so far. */
interface Walk {
  file: string;
  /** Containers visited before: meeting one again means an alias is being expanded. */
  seen: Set<object>;
  /** Containers on the path from the root to the current node: meeting one again is a cycle. */
  path: Set<object>;
  nodes: number;
  /** Nodes visited inside a container met before, that is, nodes an alias multiplied. */
  aliased: number;
}

/**
 * Bun.YAML.parse returns one shared object for every use of an anchor, so parsing is cheap however the
 * aliases multiply, and the cost surfaces here: six lines of nested aliases flatten to a million keys.
 */
function flatten(file: string, data: unknown, out: Map<string, string>): void {
  const walk: Walk = { file, seen: new Set(), path: new Set(), nodes: 0, aliased: 0 };
  count(walk, false); // the document node, as yaml.v2 counts it
  visit(data, "/", 0, false, walk, out);
}

/**
 * Keys are joined as Go's path.Join does, so a YAML key written "/database/host" stays one clean key.
 * `inAlias`: the node lies inside a container met before, so an alias is what brought the walk here.
 * Nodes are counted as yaml.v2 decodes them: a map's keys too, and an alias itself before what it names,
 * so that a file of many plain aliases (`nN: *base`) is allowed as confd allows it.
 */
function visit(node: unknown, key: string, depth: number, inAlias: boolean, walk: Walk, out: Map<string, string>): void {
  const container = node !== null && typeof node === "object" ? node : undefined;
  if (container && walk.path.has(container)) throw invalid(walk.file, "anchor refers to itself", key);
  const isAlias = container !== undefined && walk.seen.has(container);
  if (isAlias) count(walk, inAlias);
  const aliased = inAlias || isAlias;
  count(walk, aliased);
  if (container) {
    if (depth >= MAX_DEPTH) throw invalid(walk.file, `nested more than ${MAX_DEPTH} levels deep`);
    walk.seen.add(container);
    walk.path.add(container);
    if (Array.isArray(container)) container.forEach((item, i) => visit(item, posix.join(key, String(i)), depth + 1, aliased, walk, out));
    else {
      for (const [k, v] of Object.entries(container)) {
        count(walk, aliased);
        visit(v, posix.join(key, k), depth + 1, aliased, walk, out);
      }
    }
    walk.path.delete(container);
  } else if (typeof node === "string") {
    out.set(key, node);
  } else if (typeof node === "boolean") {
    out.set(key, String(node));
  } else if (typeof node === "number") {
    out.set(key, formatNumber(node));
  }
  // null: confd skips keys without a value.
}

function count(walk: Walk, aliased: boolean): void {
  walk.nodes++;
  if (aliased) walk.aliased++;
  if (aliasingExcessive(walk.nodes, walk.aliased)) throw invalid(walk.file, "document contains excessive aliasing");
}

/**
 * yaml.v2's rule (decode.go, allowedAliasRatio), which confd's "document contains excessive aliasing"
 * comes from: small documents may be almost all aliases, larger ones a share falling from 99% at 400,000
 * nodes to 10% at 4,000,000. A bomb, being nearly all aliases, is refused within its first few thousand
 * nodes; what is accepted expands to at most 99 times the nodes written, and never past about 1.2 million.
 */
function aliasingExcessive(nodes: number, aliased: number): boolean {
  if (aliased <= 100 || nodes <= 1000) return false;
  const allowed =
    nodes <= ALIAS_RATIO_RANGE_LOW
      ? 0.99
      : nodes >= ALIAS_RATIO_RANGE_HIGH
        ? 0.1
        : 0.99 - (0.89 * (nodes - ALIAS_RATIO_RANGE_LOW)) / (ALIAS_RATIO_RANGE_HIGH - ALIAS_RATIO_RANGE_LOW);
  return aliased / nodes > allowed;
}

/**
 * YAML and JSON are Unicode: bytes that are not UTF-8 cannot be values there (confd refuses them too;
 * etcd, redis and consul keep bytes as they are). Named by line and column, which, unlike the parsers'
 * errors, we can compute.
 */
function notUtf8(file: string, text: string, at: number): ConfdError {
  const before = text.slice(0, at);
  const line = before.split("\n").length;
  const column = at - before.lastIndexOf("\n");
  const byte = text.charCodeAt(at) - 0xdc00;
  return new ConfdError(`invalid ${formatOf(file)}: byte 0x${byte.toString(16).toUpperCase()} is not UTF-8`, { file, line, column });
}

/** One line naming the file and, where it helps, the key; never a value, which may be a secret. */
function invalid(file: string, what: string, key?: string): ConfdError {
  return new ConfdError(`invalid ${formatOf(file)}: ${what}`, { file, key });
}

function formatOf(file: string): "JSON" | "YAML" {
  return file.endsWith(".json") ? "JSON" : "YAML";
}

/** Go's strconv.FormatFloat(f, 'f', -1, 64): never an exponent. */
function formatNumber(n: number): string {
  if (!Number.isFinite(n)) return Number.isNaN(n) ? "NaN" : n > 0 ? "+Inf" : "-Inf";
  const s = String(n);
  if (!/e/i.test(s)) return s;
  return n.toLocaleString("en-US", { useGrouping: false, maximumFractionDigits: 20 });
}
