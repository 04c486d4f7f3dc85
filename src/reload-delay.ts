// How long a reload waits: the host's splay offset (fleet.ts), or longer if the last reload of the same
// resource (or group) was less than min_reload_interval ago. Shared by the worker's sync (one resource)
// and the main thread's group reload; it imports nothing, so that workers pay nothing for it.

export interface ReloadTiming {
  splayMs?: number;
  splayOffsetMs?: number;
  minReloadIntervalMs?: number;
}

/** Milliseconds to wait before a reload due at `now`, and what the wait is for (for the log line); undefined: none. */
export function reloadDelay(t: ReloadTiming, lastReloadAt: number | undefined, now: number): { ms: number; why: string } | undefined {
  const splay = t.splayOffsetMs ?? 0;
  const limit = t.minReloadIntervalMs !== undefined && lastReloadAt !== undefined ? lastReloadAt + t.minReloadIntervalMs - now : 0;
  if (splay <= 0 && limit <= 0) return undefined;
  if (limit > splay) return { ms: Math.ceil(limit), why: `min_reload_interval ${t.minReloadIntervalMs! / 1000}s` };
  return { ms: splay, why: `splay ${t.splayMs! / 1000}s` };
}
