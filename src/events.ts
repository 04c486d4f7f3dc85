// What an observer may learn as confd runs: store reads and reachability, each resource's render, sync and
// commands, worker restarts, when the next run is. The places where these happen (processor.ts, watch.ts,
// workers.ts) tell `events`, which does nothing until an observer (metrics.ts, loaded only with
// -metrics-addr) takes its place: a run without one pays an empty call per event and loads nothing.
import type { SyncStats } from "./protocol.ts";
import type { SyncOutcome } from "./sync.ts";

export interface Events {
  /** A read of the store's values, how long it took, and whether it answered. */
  storeRead(seconds: number, ok: boolean): void;
  /** Whether the store answered its latest read or watch (watch mode reports each attempt). */
  storeReachable(up: boolean): void;
  /** A resource's sync ended: with an outcome, or with the error's message (never a value, by errors.ts). */
  synced(resource: string, stats: SyncStats, result: { outcome: SyncOutcome } | { error: string }): void;
  /** Its worker thread died (`why`: the crash's message) and is started again. */
  workerRestarted(resource: string, why: string): void;
  /** Interval mode: when the next run starts. */
  nextRun(at: Date): void;
}

const NONE: Events = {
  storeRead() {},
  storeReachable() {},
  synced() {},
  workerRestarted() {},
  nextRun() {},
};

export let events: Events = NONE;

/** Makes `observer` the one told of every event from now on. */
export function observe(observer: Events): void {
  events = observer;
}
