// Watch mode: one data plane for every resource. Each distinct subtree the resources read is watched
// once, however many resources read it; a change marks the resources under it dirty; dirty resources
// are read from the store together, once, and handed to their workers. A resource that is syncing when
// more changes arrive syncs once more afterwards, with the latest values, not once per change. A store
// that cannot be reached is retried with backoff, with one log line per change of state. Catalog
// dependencies are watched beside the subtrees (catalog-watch.ts), each marking dirty the resources whose
// last render read it.
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
import { storeKeys } from "./resource.ts";
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

  const schedule = () => {
    if (scheduled || reading || signal.aborted) return;
    scheduled = true;
    // A microtask later, so that events arriving together are read together.
    queueMicrotask(() => {
      scheduled = false;
      void flush();
    });
  };

  const markDirty = (list: readonly Job[]) => {
    for (const j of list) dirty.add(j);
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
    ready.forEach((j, i) => {
      syncing.add(j);
      let readCatalog = false;
      const link = round?.link((deps) => {
        readCatalog = deps.length > 0;
        catalogWatches!.track(j, deps, round);
      });
      const done = j.worker
        .sync(perResource[i]!, link)
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
    if (dirty.size > 0) schedule();
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
        markDirty(w.jobs);
      } catch (err) {
        if (signal.aborted) return;
        const delay = health.failed(err);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, delay);
          signal.addEventListener("abort", () => (clearTimeout(timer), resolve()), { once: true });
        });
      }
    }
  };

  const watches = planWatches(jobs);
  // Resources that read no keys (a template of getenv calls, say) have nothing to watch: render them once.
  markDirty(jobs.filter((j) => !watches.some((w) => w.jobs.includes(j))));
  log.info(`Watching ${watches.length} prefix${watches.length === 1 ? "" : "es"} for ${jobs.length} resource${jobs.length === 1 ? "" : "s"}`);
  for (const w of watches) log.debug(`Watching ${w.prefix} for ${w.jobs.map((j) => j.resource.name).join(", ")}`);
  await Promise.all(watches.map(watchLoop));
  // Catalog watches start as renders read dependencies, and run until the signal, with or without keys to watch.
  if (catalogWatches) await new Promise((resolve) => (signal.aborted ? resolve(undefined) : signal.addEventListener("abort", resolve, { once: true })));
  clearTimeout(retryTimer);
  clearTimeout(catalogRetryTimer);
  await Promise.allSettled([...inflight]);
}
