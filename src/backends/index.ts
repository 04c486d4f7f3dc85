// The backend contract, as small as confd's StoreClient: read the values under some keys, and wait for
// a change. Deduplication, retries and scheduling live above it, once. Each store's client is loaded
// only when selected, so a binary run with the file backend never pays for the etcd or redis libraries.
import { environment } from "../bytes.ts";
import { ConfdError } from "../errors.ts";
import type { Config } from "../options.ts";

export interface StoreClient {
  /**
   * Every key equal to one of `keys` or below it (on a "/" boundary: "/app" covers "/app/x", not
   * "/application"), with its value. Keys are absolute ("/database/host"), prefix included.
   */
  getValues(keys: readonly string[]): Promise<Map<string, string>>;
  /**
   * Resolves with a new index once something under `prefix` may have changed after `waitIndex`
   * (0 means "no index yet": resolve at once with the current one). A change made between two calls
   * is not lost: the next call, given the index the last one returned, resolves at once. Resolving
   * when nothing changed is allowed (after a reconnect, say, when the client cannot know what it
   * missed): the caller then re-reads. Rejects when the store cannot be reached (the caller retries
   * with backoff and the same index) and with the signal's reason when aborted.
   */
  watchPrefix(prefix: string, keys: readonly string[], waitIndex: number, signal: AbortSignal): Promise<number>;
  close(): Promise<void>;
}

export const BACKENDS = ["consul", "env", "etcd", "etcdv3", "file", "redis"] as const;

export async function createStoreClient(config: Config): Promise<StoreClient> {
  switch (config.backend) {
    case "etcd":
    case "etcdv3":
      return (await import("./etcd.ts")).connect(config);
    case "redis":
      return (await import("./redis.ts")).connect(config);
    case "consul":
      return (await import("./consul.ts")).connect(config);
    case "env": {
      const { EnvClient } = await import("./env.ts");
      return new EnvClient(environment());
    }
    case "file": {
      if (config.files.length === 0) throw new ConfdError("the file backend needs at least one --file", { flag: "-file" });
      const { FileClient } = await import("./file.ts");
      return new FileClient(config.files, config.filter);
    }
    default:
      throw new ConfdError(`backend "${config.backend}" is not available in this build (available: ${BACKENDS.join(", ")})`, {
        flag: "-backend",
      });
  }
}

/** "/a/b/" and "/a/b" name the same subtree; "" and "/" the whole store. */
export function normalizeKey(key: string): string {
  const trimmed = key.replace(/\/+$/, "");
  return trimmed === "" ? "/" : trimmed;
}

/**
 * The key itself and every subtree it lies in, nearest first: "/a/b" -> "/a/b", "/a", "/". A key is
 * wanted when one of these was asked for, which is a set lookup per level instead of a scan of all keys.
 */
export function ancestors(key: string): string[] {
  const out = [key];
  for (let i = key.lastIndexOf("/"); i > 0; i = key.lastIndexOf("/", i - 1)) out.push(key.slice(0, i));
  if (key !== "/") out.push("/");
  return out;
}

/** A test for "equal to one of `keys` or below it on a / boundary" ("/app" covers "/app/x", not "/application"). */
export function keyFilter(keys: readonly string[]): (key: string) => boolean {
  const wanted = new Set(keys.map(normalizeKey));
  return (key) => ancestors(key).some((a) => wanted.has(a));
}

/** A promise that rejects when the signal aborts: a watch on a store that never changes. */
export function untilAborted(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => {
    if (signal.aborted) reject(signal.reason);
    else signal.addEventListener("abort", () => reject(signal.reason), { once: true });
  });
}
