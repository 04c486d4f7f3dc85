// Watch mode: one data plane for every resource. Each distinct subtree the resources read is watched
// once, however many resources read it; a change marks the resources under it dirty; dirty resources
// are read from the store together, once, and handed to their workers. A resource that is syncing when
// more changes arrive syncs once more afterwards, with the latest values, not once per change. A store
// that cannot be reached is retried with backoff, with one log line per change of state. Catalog
// dependencies are watched beside the subtrees (catalog-watch.ts), each marking dirty the resources whose
// last render read it. A resource with `wait` (quiescence, fleet.ts) is marked dirty only once its changes
// have stopped for the window's min, or its max after the first; its first render is not held. The
// members of a reload group synced in one flush are reloaded once, after all of them (reload-group.ts).
import { catalogOf, CatalogUnavailable } from "./catalog.ts";
import { CatalogRound } from "./catalog-round.ts";
import { CatalogWatches } from "./catalog-watch.ts";
import { ancestors, normalizeKey, subtrees } from "./keys.ts";
import type { StoreClient } from "./store.ts";
import { describeError, withContext } from "./errors.ts";
import { events } from "./events.ts";
import { log } from "./log.ts";
import type { Job } from "./processor.ts";
import { splitValues } from "./processor.ts";
import type { BatchMember } from "./reload-group.ts";
import { storeKeys } from "./resource.ts";
import type { SyncOutcome } from "./sync.ts";
import { setLongTimeout, type LongTimeout } from "./timer.ts";
import { backoff, WorkerCrashError } from "./workers.ts";

export interface Watch {
  prefix: string;
  jobs: Job[];
}

/**
 * The subtrees to watch: every resource's store keys, minus those inside another one ("/app/x" is
 * covered by a watch on "/app"), each with the resources that read something inside it.
 */
export function planWatches(jobs: readonly Job[]): Watch[] {
  const keysOf = new Map<Job, string[]>(jobs.map((j) => [j, storeKeys(j.resource).map(normalizeKey)]));
  const all = new Set([...keysOf.values()].flat());
  return subtrees([...all]).map((prefix) => ({
    prefix,
    jobs: jobs.filter((j) => keysOf.get(j)!.some((k) => ancestors(k).includes(prefix))),
  }));
}

/**
 * The longest pause between attempts to reach the store. Each attempt against an unreachable store
 * already takes up to the backends' ~5 s deadline, so attempts are at most ~10 s apart, and files
 * converge within about 5 s of the store coming back, rather than up to 30 s later.
 */
const STORE_BACKOFF_CAP_MS = 5_000;

/** Tracks whether the store is reachable and logs only the transitions. */
class StoreHealth {
  private failures = 0;

  /** `observed`: the KV store's own, whose state events.ts reports (not the catalog's beside it). */
  constructor(private readonly observed = false) {}

  failed(err: unknown): number {
    if (this.observed) events.storeReachable(false);
    this.failures++;
    const delay = backoff(this.failures, STORE_BACKOFF_CAP_MS);
    if (this.failures === 1) log.error(`store connection lost: ${describeError(withContext(err, {}))}; retrying with backoff`);
    else log.debug(`store still unreachable (attempt ${this.failures}); next try in ${Math.round(delay)} ms`);
    return delay;
  }

  ok(): void {
    if (this.observed) events.storeReachable(true);
    if (this.failures > 0) log.info(`store connection restored after ${this.failures} failed attempt${this.failures === 1 ? "" : "s"}`);
    this.failures = 0;
  }
}

export async function runWatch(client: StoreClient, jobs: readonly Job[], signal: AbortSignal): Promise<void> {
  const health = new StoreHealth(true);
  const dirty = new Set<Job>();
  const syncing = new Set<Job>();
  const inflight = new Set<Promise<void>>();
  let reading = false;
  let scheduled = false;
  let retryTimer: ReturnType<typeof setTimeout> | undefined;

  /**
   * With reload groups only: the watches whose first answer (or first failure) has not come yet. The first
   * flush waits for all of them, so that a group's members, watched on different prefixes, start in one
   * batch and the group reloads once at start, not once per prefix.
   */
  const starting = new Set<Watch>();
  const schedule = () => {
    if (scheduled || reading || signal.aborted || starting.size > 0) return;
    scheduled = true;
    // A microtask later, so that events arriving together are read together.
    queueMicrotask(() => {
      scheduled = false;
      void flush();
    });
  };

  /** Resources with `wait` whose changes are held: the quiet timer restarts at each change, the max one does not. */
  const held = new Map<Job, { quiet: LongTimeout; max: LongTimeout }>();
  const release = (j: Job, why: string) => {
    // A reload group's held members go with it: released one timer at a time, they would sync in
    // separate flushes, and the group would reload once for each.
    const group = j.resource.reloadGroup;
    const together = group === undefined ? [j] : [...held.keys()].filter((k) => k.resource.reloadGroup === group);
    for (const k of together) {
      const h = held.get(k)!;
      h.quiet.cancel();
      h.max.cancel();
      held.delete(k);
      log.debug(`Resource ${k.resource.name}: ${why}; rendering`);
      dirty.add(k);
    }
    schedule();
  };
  const hold = (j: Job) => {
    const { minMs, maxMs } = j.resource.wait!;
    const quiet = () => setLongTimeout(() => release(j, `no change for ${minMs / 1000}s`), minMs);
    const h = held.get(j);
    if (h) {
      h.quiet.cancel();
      h.quiet = quiet();
      return;
    }
    log.debug(`Resource ${j.resource.name} changed; rendering after ${minMs / 1000}s without changes, at the latest in ${maxMs / 1000}s`);
    held.set(j, { quiet: quiet(), max: setLongTimeout(() => release(j, `still changing after ${maxMs / 1000}s`), maxMs) });
  };

  /** `first`: the resources' first render, which quiescence does not hold. */
  const markDirty = (list: readonly Job[], first = false) => {
    for (const j of list) {
      if (j.resource.wait === undefined || first) dirty.add(j);
      else hold(j);
    }
    schedule();
  };

  const catalog = catalogOf(client);
  // Its own count of failures: the KV reads and watches of the same store may do well meanwhile (an ACL
  // token that may read keys but not the catalog), and must not reset it.
  const catalogHealth = new StoreHealth();
  const catalogWatches = catalog && new CatalogWatches<Job>(catalog, signal, { changed: markDirty, failed: (err) => catalogHealth.failed(err), ok: () => catalogHealth.ok() });
  /** Resources whose sync could not read the catalog, rendered again after the backoff. */
  const catalogRetries = new Set<Job>();
  let catalogRetryTimer: ReturnType<typeof setTimeout> | undefined;

  const flush = async () => {
    const ready = [...dirty].filter((j) => !syncing.has(j));
    if (ready.length === 0 || signal.aborted) return;
    for (const j of ready) dirty.delete(j);
    reading = true;
    let values: Map<string, string>;
    const started = performance.now();
    try {
      values = await client.getValues([...new Set(ready.flatMap((j) => storeKeys(j.resource)))]);
      events.storeRead((performance.now() - started) / 1000, true);
      health.ok();
    } catch (err) {
      events.storeRead((performance.now() - started) / 1000, false);
      for (const j of ready) dirty.add(j);
      reading = false;
      clearTimeout(retryTimer);
      retryTimer = setTimeout(schedule, health.failed(err));
      return;
    }
    reading = false;
    const perResource = splitValues(
      ready.map((j) => j.resource),
      values,
    );
    // The catalog answers of this flush, each read once; a resource's render reports what it read, to be watched.
    const round = catalog && new CatalogRound(catalog);
    const members: Promise<BatchMember>[] = [];
    ready.forEach((j, i) => {
      syncing.add(j);
      let readCatalog = false;
      const link = round?.link((deps) => {
        readCatalog = deps.length > 0;
        catalogWatches!.track(j, deps, round);
      });
      const synced: Promise<SyncOutcome> = j.worker.sync(perResource[i]!, link);
      if (j.resource.reloadGroup !== undefined) members.push(synced.then((outcome) => ({ job: j, outcome }), () => ({ job: j, outcome: undefined })));
      const done = synced
        .then(
          () => {
            if (readCatalog) catalogHealth.ok();
          },
          (err: unknown) => {
            if (err instanceof CatalogUnavailable) {
              // As a store read that fails: said once, retried with backoff.
              catalogRetries.add(j);
              clearTimeout(catalogRetryTimer);
              catalogRetryTimer = setTimeout(() => {
                markDirty([...catalogRetries]);
                catalogRetries.clear();
              }, catalogHealth.failed(err));
              return;
            }
            log.error(describeError(withContext(err, { resource: j.resource.name })));
            // A crash says nothing about the values: try again once the worker is back.
            if (err instanceof WorkerCrashError) dirty.add(j);
          },
        )
        .finally(() => {
          syncing.delete(j);
          inflight.delete(done);
          if (dirty.has(j)) schedule();
        });
      inflight.add(done);
    });
    if (members.length > 0) {
      const reloaded = reloadBatch(members).finally(() => inflight.delete(reloaded));
      inflight.add(reloaded);
    }
    if (dirty.size > 0) schedule();
  };

  const started = (w: Watch) => {
    if (starting.delete(w) && starting.size === 0) schedule();
  };

  const watchLoop = async (w: Watch) => {
    let index = 0;
    while (!signal.aborted) {
      try {
        const since = index;
        index = await client.watchPrefix(w.prefix, index, signal);
        // Which watch fired, and when: the trace of what woke a resource (tests read it too).
        log.debug(since === 0 ? `Watch on ${w.prefix} started at index ${index}` : `Watch on ${w.prefix} woke at index ${index}`);
        health.ok();
        markDirty(w.jobs, since === 0);
        started(w);
      } catch (err) {
        if (signal.aborted) return;
        started(w);
        const delay = health.failed(err);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, delay);
          signal.addEventListener("abort", () => (clearTimeout(timer), resolve()), { once: true });
        });
      }
    }
  };

  const watches = planWatches(jobs);
  if (jobs.some((j) => j.resource.reloadGroup !== undefined)) for (const w of watches) starting.add(w);
  // Resources that read no keys (a template of getenv calls, say) have nothing to watch: render them once.
  markDirty(
    jobs.filter((j) => !watches.some((w) => w.jobs.includes(j))),
    true,
  );
  log.info(`Watching ${watches.length} prefix${watches.length === 1 ? "" : "es"} for ${jobs.length} resource${jobs.length === 1 ? "" : "s"}`);
  for (const w of watches) log.debug(`Watching ${w.prefix} for ${w.jobs.map((j) => j.resource.name).join(", ")}`);
  await Promise.all(watches.map(watchLoop));
  // Catalog watches start as renders read dependencies, and run until the signal, with or without keys to watch.
  if (catalogWatches) await new Promise((resolve) => (signal.aborted ? resolve(undefined) : signal.addEventListener("abort", resolve, { once: true })));
  clearTimeout(retryTimer);
  clearTimeout(catalogRetryTimer);
  for (const h of held.values()) h.quiet.cancel(), h.max.cancel();
  await Promise.allSettled([...inflight]);
}

/** The reload of each group with members synced in a flush, once they all are; a failure is logged for each member. */
async function reloadBatch(members: readonly Promise<BatchMember>[]): Promise<void> {
  const { reloadGroups } = await import("./reload-group.ts");
  const failed = await reloadGroups(await Promise.all(members));
  for (const [job, err] of failed) log.error(describeError(withContext(err, { resource: job.resource.name })));
}
