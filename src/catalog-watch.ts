// Watch mode's catalog half (main thread): one watch per distinct catalog dependency that some
// resource's last render read, through the store's CatalogSource (a blocking query each, shared in the
// watch core), and when one fires, only the resources that read it are rendered again. Which resources
// read what is learnt from each render (a template's arguments may come from the store, or from another
// answer), so watches start when a first render reads a dependency and stop when no render reads it.
import { depKey, describeDep, type CatalogDep, type CatalogSource } from "./catalog.ts";
import type { CatalogRound } from "./catalog-round.ts";
import { log } from "./log.ts";

export interface CatalogWatchHooks<J> {
  /** These resources read something that changed: render them again. */
  changed(jobs: readonly J[]): void;
  /** A watch failed; the milliseconds to wait before it tries again. */
  failed(err: unknown): number;
  /** A watch answered. */
  ok(): void;
}

interface DepWatch<J> {
  dep: CatalogDep;
  users: Set<J>;
  /** The store's index the watch waits on: of the answer the first render read, then of each wake. */
  index: number;
  stop: AbortController;
}

export class CatalogWatches<J extends { resource: { name: string } }> {
  private readonly watches = new Map<string, DepWatch<J>>();

  constructor(
    private readonly source: CatalogSource,
    private readonly signal: AbortSignal,
    private readonly hooks: CatalogWatchHooks<J>,
  ) {}

  /** `job`'s last render read `deps`, from `round`: watches for them, and none for what it no longer reads. */
  track(job: J, deps: readonly CatalogDep[], round: CatalogRound): void {
    const keys = new Set(deps.map(depKey));
    for (const [key, w] of this.watches) {
      if (keys.has(key) || !w.users.delete(job) || w.users.size > 0) continue;
      w.stop.abort();
      this.watches.delete(key);
      log.debug(`Stopped watching ${describeDep(w.dep)}: no resource reads it`);
    }
    for (const dep of deps) {
      const key = depKey(dep);
      const read = round.index(key);
      let w = this.watches.get(key);
      if (!w) {
        w = { dep, users: new Set(), index: read ?? 0, stop: new AbortController() };
        this.watches.set(key, w);
        log.debug(`Watching ${describeDep(dep)} for ${job.resource.name}`);
        void this.loop(w);
      } else if (dep.fromStore) {
        w.dep = dep;
      }
      if (w.users.has(job)) continue;
      w.users.add(job);
      // Its render read an answer other than the one the watch holds: a change between the two is the watch's
      // to tell, but one before it (the watch woke, for its other resources, before this one read) is not.
      if (read === undefined || read !== w.index) this.hooks.changed([job]);
    }
  }

  private async loop(w: DepWatch<J>): Promise<void> {
    const signal = AbortSignal.any([this.signal, w.stop.signal]);
    while (!signal.aborted) {
      try {
        const since = w.index;
        w.index = await this.source.watch(w.dep, since, signal);
        this.hooks.ok();
        // The same trace as the store's watches (watch.ts): what woke a resource, and when.
        const name = describeDep(w.dep);
        log.debug(since === 0 ? `Watch on ${name} started at index ${w.index}` : `Watch on ${name} woke at index ${w.index}`);
        // Woken, the answer changed; started without the index of an answer a render read, what the
        // resources rendered may be older than the store. Either way they render again.
        this.hooks.changed([...w.users]);
      } catch (err) {
        if (signal.aborted) return;
        const delay = this.hooks.failed(err);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, delay);
          signal.addEventListener("abort", () => (clearTimeout(timer), resolve()), { once: true });
        });
      }
    }
  }
}
