// Reads from redis as confd maps them: a string key is one value, a hash key one value per field
// ("/key/field"), anything else is ignored; a key's subtree is found with SCAN. Breadth-first, one
// pipeline per round trip, so a few round trips whatever the number of keys.
import type { Redis } from "ioredis";
import { decodeBytes, encodeText } from "../bytes.ts";
import { keyFilter } from "../keys.ts";
import { isReplyError } from "./redis-link.ts";
import type { KeyMapper } from "./redis-keys.ts";

const SCAN_COUNT = 1000;

/** What a read needs of a connection: pipelines, and only them, so that every command goes in one. */
export type Pipelines = Pick<Redis, "pipeline">;

function isWrongType(err: unknown): boolean {
  return isReplyError(err) && (err as Error).message.startsWith("WRONGTYPE");
}

/**
 * The values of `wanted` (normalized keys) and of everything below them: the keys themselves and a
 * SCAN per subtree, then the values of what the scans found (and the next scan pages), then the hashes
 * among them.
 */
export async function readValues(redis: Pipelines, keys: KeyMapper, wanted: readonly string[]): Promise<Map<string, string>> {
  const values = new Map<string, string>();
  const inScope = keyFilter(wanted);
  const add = (name: string, value: string) => {
    const key = keys.fromRedis(name);
    if (inScope(key)) values.set(key, value);
  };
  const requested = new Set<string>();
  let strings = [...new Set(wanted.map((k) => keys.toRedis(k)))];
  for (const name of strings) requested.add(name);
  let hashes: string[] = [];
  let scans = wanted.map((k) => ({ match: keys.below(k), cursor: "0" }));

  while (strings.length + hashes.length + scans.length > 0) {
    // Names and values as bytes (bytes.ts): a value that is not UTF-8 is copied, not replaced by U+FFFD.
    const pipeline = redis.pipeline();
    for (const name of strings) pipeline.getBuffer(encodeText(name));
    for (const name of hashes) pipeline.callBuffer("HGETALL", encodeText(name));
    for (const scan of scans) pipeline.callBuffer("SCAN", scan.cursor, "MATCH", encodeText(scan.match), "COUNT", SCAN_COUNT);
    const replies = await pipeline.exec();
    if (!replies) throw new Error("pipeline discarded");
    let i = 0;
    const nextStrings: string[] = [];
    const nextHashes: string[] = [];
    const nextScans: typeof scans = [];
    for (const name of strings) {
      const [err, value] = replies[i++]!;
      // Not a string: maybe a hash, asked for in the next round.
      if (isWrongType(err)) nextHashes.push(name);
      else if (err) throw err;
      else if (value instanceof Uint8Array) add(name, decodeBytes(value));
    }
    for (const name of hashes) {
      const [err, fields] = replies[i++]!;
      if (isWrongType(err)) continue; // a list, set or other type: not a value
      if (err) throw err;
      const flat = fields as Buffer[];
      for (let f = 0; f + 1 < flat.length; f += 2) add(`${name}/${decodeBytes(flat[f]!)}`, decodeBytes(flat[f + 1]!));
    }
    for (const scan of scans) {
      const [err, page] = replies[i++]!;
      if (err) throw err;
      const [cursorBytes, foundBytes] = page as [Buffer, Buffer[]];
      const cursor = cursorBytes.toString();
      for (const name of foundBytes.map(decodeBytes)) {
        if (requested.has(name)) continue;
        requested.add(name);
        nextStrings.push(name);
      }
      if (cursor !== "0") nextScans.push({ match: scan.match, cursor });
    }
    strings = nextStrings;
    hashes = nextHashes;
    scans = nextScans;
  }
  return values;
}
