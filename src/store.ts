// The store contract, as small as confd's StoreClient: read the values under some keys, and wait for a
// change. Every backend (src/backends/) implements it; deduplication, retries and scheduling live above
// it, once (watch.ts, processor.ts).

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
   * with backoff and the same index) and with the signal's reason when aborted. A prefix, no key
   * list: the data plane (watch.ts) watches once each subtree that its resources read, so every change
   * under the prefix is one that some resource reads.
   */
  watchPrefix(prefix: string, waitIndex: number, signal: AbortSignal): Promise<number>;
  close(): Promise<void>;
}

/** A promise that rejects when the signal aborts: a watch on a store that never changes. */
export function untilAborted(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => {
    if (signal.aborted) reject(signal.reason);
    else signal.addEventListener("abort", () => reject(signal.reason), { once: true });
  });
}
