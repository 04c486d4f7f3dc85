// The file backend: YAML and JSON files, or directories of them (walked recursively, file names
// filtered by a glob), flattened as confd does: nested maps become path segments, list items index
// segments, numbers and booleans their text. Files are re-read on every getValues call, since they
// are the store; the caller reads once per run for all resources.
import { readdirSync, readFileSync, statSync, watch, type FSWatcher } from "node:fs";
import { join, posix } from "node:path";
import { decodeBytes, firstEscape } from "../bytes.ts";
import { ConfdError, errnoText } from "../errors.ts";
import { globMatch } from "../glob.ts";
import { keyFilter, type StoreClient } from "./index.ts";

export class FileClient implements StoreClient {
  constructor(
    private readonly paths: readonly string[],
    private readonly filter: string,
  ) {}

  async getValues(keys: readonly string[]): Promise<Map<string, string>> {
    const all = new Map<string, string>();
    for (const file of this.files()) flatten(parseFile(file), "/", all);
    const values = new Map<string, string>();
    const wanted = keyFilter(keys);
    for (const [k, v] of all) if (wanted(k)) values.set(k, v);
    return values;
  }

  /** Every data file, in a stable order so that a key defined twice resolves the same way each run. */
  files(): string[] {
    const out: string[] = [];
    for (const path of this.paths) {
      let isDir: boolean;
      try {
        isDir = statSync(path).isDirectory();
      } catch (err) {
        throw new ConfdError(`cannot read data file: ${errnoText(err)}`, { file: path });
      }
      if (isDir) walk(path, this.filter, out);
      else out.push(path);
    }
    return out;
  }

  watchPrefix(_prefix: string, _keys: readonly string[], waitIndex: number, signal: AbortSignal): Promise<number> {
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

function walk(dir: string, filter: string, out: string[]): void {
  const entries = readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const entry of entries) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) walk(path, filter, out);
    else if (globMatch(filter, entry.name)) out.push(path);
  }
}

function parseFile(file: string): unknown {
  let text: string;
  try {
    text = decodeBytes(readFileSync(file));
  } catch (err) {
    throw new ConfdError(`cannot read data file: ${errnoText(err)}`, { file });
  }
  // YAML and JSON are Unicode: bytes that are not UTF-8 cannot be values there (confd refuses them too;
  // store them in etcd, redis or consul, which keep bytes as they are).
  const invalid = firstEscape(text);
  if (invalid >= 0) {
    const before = text.slice(0, invalid);
    const line = before.split("\n").length;
    const column = invalid - before.lastIndexOf("\n");
    const byte = text.charCodeAt(invalid) - 0xdc00;
    throw new ConfdError(`invalid ${file.endsWith(".json") ? "JSON" : "YAML"}: byte 0x${byte.toString(16).toUpperCase()} is not UTF-8`, { file, line, column });
  }
  try {
    return file.endsWith(".json") ? JSON.parse(text) : Bun.YAML.parse(text);
  } catch (err) {
    const e = err as { line?: number; column?: number; message?: string };
    const message = String(e.message ?? err).replace(/^YAML Parse error: /, "");
    throw new ConfdError(`invalid ${file.endsWith(".json") ? "JSON" : "YAML"}: ${message}`, {
      file,
      line: typeof e.line === "number" ? e.line : undefined,
      column: typeof e.column === "number" ? e.column : undefined,
    });
  }
}

/** Keys are joined as Go's path.Join does, so a YAML key written "/database/host" stays one clean key. */
function flatten(node: unknown, key: string, out: Map<string, string>): void {
  if (Array.isArray(node)) {
    node.forEach((item, i) => flatten(item, posix.join(key, String(i)), out));
  } else if (node !== null && typeof node === "object") {
    for (const [k, v] of Object.entries(node)) flatten(v, posix.join(key, k), out);
  } else if (typeof node === "string") {
    out.set(key, node);
  } else if (typeof node === "boolean") {
    out.set(key, String(node));
  } else if (typeof node === "number") {
    out.set(key, formatNumber(node));
  }
  // null: confd skips keys without a value.
}

/** Go's strconv.FormatFloat(f, 'f', -1, 64): never an exponent. */
function formatNumber(n: number): string {
  const s = String(n);
  if (!/e/i.test(s)) return s;
  return n.toLocaleString("en-US", { useGrouping: false, maximumFractionDigits: 20 });
}
