// How long a reload waits: the host's splay offset (fleet.ts), or longer if the last reload of the same
// resource (or group) was less than min_reload_interval ago; and the wait itself, which shutdown cuts
// short (hurryReloads): a file already replaced must not be left unreloaded because confd stopped, since
// the next start finds it in sync and would not reload it. Shared by the worker's sync (one resource) and
// the main thread's group reload; it imports nothing but the timer, so that workers pay nothing for it.
import { setLongTimeout, type LongTimeout } from "./timer.ts";

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

/** The waits in progress in this thread, each ended early by hurryReloads. */
const waiting = new Map<LongTimeout, () => void>();
let hurried = false;

/** Resolves after `ms`, or at once when this thread is shutting down; says which. */
export function waitBeforeReload(ms: number): Promise<"waited" | "hurried"> {
  if (hurried) return Promise.resolve("hurried");
  return new Promise((resolve) => {
    const timer = setLongTimeout(() => {
      waiting.delete(timer);
      resolve("waited");
    }, ms);
    waiting.set(timer, () => resolve("hurried"));
  });
}

/** Shutdown: every reload waiting for its splay or min_reload_interval runs now, and later ones do not wait. */
export function hurryReloads(): void {
  hurried = true;
  for (const [timer, hurry] of waiting) {
    timer.cancel();
    hurry();
  }
  waiting.clear();
}
