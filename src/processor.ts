// One run over every resource: read the store once for the union of all resources' keys, hand each
// worker the values under its own keys (relative to its prefix, as confd's templates see them) and the
// run's catalog answers (read once each), and collect the outcomes. Also the interval loop that repeats
// runs until stopped.
import { posix } from "node:path";
import { catalogOf } from "./catalog.ts";
import { CatalogRound, type CatalogLink } from "./catalog-round.ts";
import { ancestors, normalizeKey } from "./keys.ts";
import type { StoreClient } from "./store.ts";
import { describeError, withContext } from "./errors.ts";
import { events } from "./events.ts";
import { log } from "./log.ts";
import { hurryReloads } from "./reload-delay.ts";
import { setLongTimeout } from "./timer.ts";
import { storeKeys, type ResourceSpec } from "./resource.ts";
import type { SyncOutcome } from "./sync.ts";

/** A resource and whatever renders and syncs it (its worker thread; a stand-in in tests). */
export interface Job {
  resource: ResourceSpec;
  worker: {
    sync(values: Map<string, string>, catalog?: CatalogLink): Promise<SyncOutcome>;
    /** Shutdown: a reload waiting for its splay or min_reload_interval runs now. */
    hurry?(): void;
  };
}

export interface RunResult {
  succeeded: number;
  failed: number;
}

export async function processAll(client: StoreClient, jobs: readonly Job[]): Promise<RunResult> {
  if (jobs.length === 0) return { succeeded: 0, failed: 0 };
  const keys = [...new Set(jobs.flatMap((j) => storeKeys(j.resource)))];
  log.debug(`Retrieving ${keys.length} keys from the store: ${keys.join(" ")}`);
  let values: Map<string, string>;
  const started = performance.now();
  try {
    values = await client.getValues(keys);
    events.storeRead((performance.now() - started) / 1000, true);
  } catch (err) {
    events.storeRead((performance.now() - started) / 1000, false);
    log.error(`cannot read the store: ${describeError(withContext(err, {}))}`);
    return { succeeded: 0, failed: jobs.length };
  }
  log.debug(`Store returned ${values.size} keys`);

  const perResource = splitValues(jobs.map((j) => j.resource), values);
  const source = catalogOf(client);
  const round = source && new CatalogRound(source);
  const outcomes = await Promise.allSettled(jobs.map((j, i) => j.worker.sync(perResource[i]!, round?.link())));
  // Reload groups run their reload once, now that the batch is synced; a failed one fails its members.
  const groupFailed = jobs.some((j) => j.resource.reloadGroup !== undefined)
    ? await (await import("./reload-group.ts")).reloadGroups(jobs.map((job, i) => ({ job, outcome: outcomes[i]!.status === "fulfilled" ? outcomes[i]!.value : undefined })))
    : undefined;
  const result: RunResult = { succeeded: 0, failed: 0 };
  outcomes.forEach((o, i) => {
    const error = o.status === "rejected" ? o.reason : groupFailed?.get(jobs[i]!);
    if (error === undefined) {
      result.succeeded++;
    } else {
      result.failed++;
      log.error(describeError(withContext(error, { resource: jobs[i]!.resource.name })));
    }
  });
  return result;
}

/**
 * The values each resource's template sees: those under its keys, with its prefix stripped. One pass
 * over the values, looking each key's ancestors up in an index of who asked for them, so that 200
 * resources over 10,000 keys cost 10,000 walks, not 2,000,000 comparisons.
 */
export function splitValues(resources: readonly ResourceSpec[], all: ReadonlyMap<string, string>): Map<string, string>[] {
  const askedBy = new Map<string, Set<number>>();
  resources.forEach((r, i) => {
    for (const key of storeKeys(r)) {
      const k = normalizeKey(key);
      askedBy.set(k, (askedBy.get(k) ?? new Set()).add(i));
    }
  });
  const out = resources.map(() => new Map<string, string>());
  for (const [k, v] of all) {
    const takers = new Set<number>();
    for (const a of ancestors(k)) for (const i of askedBy.get(a) ?? []) takers.add(i);
    for (const i of takers) {
      const { prefix } = resources[i]!;
      out[i]!.set(prefix === "/" ? k : posix.join("/", k.slice(prefix.length)), v);
    }
  }
  return out;
}

/**
 * Runs at once, then every `intervalMs`, until the signal aborts; a run in progress is finished first.
 * Hurrying delayed reloads at shutdown is the caller's (run.ts): a reload ends a run without it.
 */
export async function runInterval(client: StoreClient, jobs: readonly Job[], intervalMs: number, signal: AbortSignal): Promise<void> {
  while (!signal.aborted) {
    await processAll(client, jobs);
    events.nextRun(new Date(Date.now() + intervalMs));
    await sleepUnlessAborted(intervalMs, signal);
  }
}

/**
 * Shutdown: reloads waiting for their splay or min_reload_interval, in the workers and in this thread
 * (reload groups), run now, so that no file is left replaced and not reloaded.
 */
export function hurryAll(jobs: readonly Job[]): void {
  hurryReloads();
  for (const j of jobs) j.worker.hurry?.();
}

function sleepUnlessAborted(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setLongTimeout(done, ms);
    function done() {
      timer.cancel();
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}
