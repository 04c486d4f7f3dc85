// The running set of resources and what runs it: one worker per resource (workers.ts), driven by the
// watch data plane (watch.ts) or the interval loop (processor.ts) until stopped, and SIGHUP, which
// reloads the set. A reload is validated whole first (reload.ts); if valid, the current run (a
// "generation") is ended, which waits for the syncs in flight, and a new one starts with the new set:
// unchanged resources keep their worker, changed ones get a new one, removed ones are stopped. A new
// generation renders every resource once, as a start does; one whose file is already in sync is not
// written and not reloaded (sync.ts), so only added and changed resources see a reload.
import { colorDiff, useColor } from "./color.ts";
import { encodeText } from "./bytes.ts";
import { errnoText } from "./errors.ts";
import { writeFully } from "./fd.ts";
import type { FlagValues } from "./flags.ts";
import { loadConfdir } from "./load.ts";
import { configureLog, emit, log, type LogFormat, type LogLevel } from "./log.ts";
import type { Config } from "./options.ts";
import { hurryAll, runInterval, type Job } from "./processor.ts";
import type { WorkerInit } from "./protocol.ts";
import { planReload, workerInit } from "./reload.ts";
import type { ResourceSpec } from "./resource.ts";
import { cores, Slots } from "./slots.ts";
import type { StoreClient } from "./store.ts";
import { ResourceWorker, type WorkerLifecycle } from "./workers.ts";

/** A resource with its worker, and what that worker was started with (a reload compares it). */
export interface LiveJob extends Job {
  resource: ResourceSpec;
  worker: ResourceWorker;
  init: WorkerInit;
}

/** The resources running now; a reload replaces `jobs` and `config`. */
export class JobSet {
  private readonly lifecycle: WorkerLifecycle;

  private constructor(
    public config: Config,
    public jobs: LiveJob[],
  ) {
    this.lifecycle = workerLifecycle(config);
  }

  /** Loads and compiles every resource; one that cannot be loaded is reported and left out (counted). */
  static async load(config: Config, catalogAvailable: boolean): Promise<{ set: JobSet; loadFailures: number }> {
    log.debug(`Loading template resources from confdir ${config.confdir}`);
    const { loaded, errors, warnings } = await loadConfdir(config, catalogAvailable, (message) => log.debug(message));
    for (const warning of warnings) log.warning(warning);
    for (const e of errors) log.error(e.describe());
    const set = new JobSet(config, []);
    set.jobs = loaded.map((l) => set.newJob(workerInit(l, config)));
    return { set, loadFailures: errors.length };
  }

  newJob(init: WorkerInit): LiveJob {
    const color = useColor(this.config.color, process.env);
    const worker = new ResourceWorker(init, { log: emit, report: (text) => report(color ? colorDiff(text) : text) }, this.lifecycle);
    return { resource: init.resource, worker, init };
  }

  /** Kills every check and reload command running now; how many. */
  killCommands(): number {
    return this.jobs.reduce((n, j) => n + j.worker.killCommands(), 0);
  }

  stopAll(): Promise<unknown> {
    return Promise.all(this.jobs.map((j) => j.worker.stop()));
  }
}

/**
 * Every resource has a worker of its own, started when it has something to sync. -onetime: each ends
 * after its sync, twice as many as cores at a time (one that only waits on its reload gives its slot
 * back). Otherwise they start as many at a time as there are cores and stay, or end after -worker-idle.
 */
function workerLifecycle(config: Config): WorkerLifecycle {
  if (config.onetime) return { slots: new Slots(2 * cores()), idleMs: 0 };
  return { slots: new Slots(cores()), idleMs: config.workerIdle > 0 ? config.workerIdle : undefined };
}

export interface ReloadSource {
  flags: FlagValues;
  env: Readonly<Record<string, string | undefined>>;
  catalogAvailable: boolean;
}

/** SIGHUPs waiting to be handled: any number arriving before one is taken count as one. */
class Requests {
  private pending = false;
  private wake: (() => void) | undefined;

  request(): void {
    this.pending = true;
    this.wake?.();
  }

  /** Resolves once a request is pending, and takes it. */
  async next(): Promise<void> {
    if (!this.pending) await new Promise<void>((resolve) => (this.wake = resolve));
    this.wake = undefined;
    this.pending = false;
  }
}

/** Watch or interval mode until `stop` aborts, reloading the set on SIGHUP (not on Windows, which has none). */
export async function runUntilStopped(set: JobSet, client: StoreClient, source: ReloadSource, stop: AbortSignal): Promise<void> {
  const requests = new Requests();
  let reloading = false;
  const onHup = () => {
    if (reloading) log.info("Received SIGHUP during a reload: reloading once more when it is done");
    requests.request();
  };
  const hup = process.platform !== "win32";
  if (hup) process.on("SIGHUP", onHup);
  // Shutdown: reloads waiting for their splay or min_reload_interval run now, so that no file is left
  // replaced and not reloaded. A generation ended by a reload does not hurry them: they keep their delay.
  stop.addEventListener("abort", () => hurryAll(set.jobs), { once: true });
  try {
    while (!stop.aborted) {
      const generation = new AbortController();
      const end = () => generation.abort();
      stop.addEventListener("abort", end, { once: true });
      const running = runGeneration(set.config, client, set.jobs, generation.signal);
      const stopped = running.then(() => true);
      try {
        // Requests are answered while the generation runs; it goes on unless one is valid.
        for (;;) {
          if (await Promise.race([stopped, requests.next().then(() => false)])) return;
          reloading = true;
          log.info("Received SIGHUP: reloading configuration");
          const result = await planReload(source.flags, source.env, set.config, set.jobs, source.catalogAvailable);
          for (const warning of result.warnings) log.warning(warning);
          if (stop.aborted) break;
          if ("problems" in result) {
            for (const problem of result.problems) log.error(problem);
            const n = result.problems.length;
            log.error(`configuration reload refused: ${n} problem${n === 1 ? "" : "s"}; still running the previous configuration`);
            reloading = false;
            continue;
          }
          const { plan } = result;
          generation.abort();
          // The syncs in flight finish first (runWatch and runInterval wait for them), with the old set.
          await running;
          // A SIGTERM meanwhile: the old set is stopped as it is.
          if (stop.aborted) break;
          if (plan.config.logLevel !== set.config.logLevel || plan.config.logFormat !== set.config.logFormat) {
            configureLog({ level: plan.config.logLevel as LogLevel, format: plan.config.logFormat as LogFormat });
          }
          set.config = plan.config;
          const changed = new Map(plan.changed.map((c) => [c.next, c.old]));
          for (const j of plan.removed) log.info(`Resource ${j.resource.name} removed: its worker stops`);
          set.jobs = plan.next.map((entry) => {
            if ("worker" in entry) return entry;
            log.info(`Resource ${entry.resource.name} ${changed.has(entry) ? "changed" : "added"}: rendering it now`);
            return set.newJob(entry);
          });
          await Promise.all([...plan.removed, ...plan.changed.map((c) => c.old)].map((j) => j.worker.stop()));
          log.info(`configuration reloaded: ${plan.added.length} added, ${plan.changed.length} changed, ${plan.removed.length} removed, ${plan.unchanged.length} unchanged`);
          reloading = false;
          break;
        }
      } finally {
        stop.removeEventListener("abort", end);
      }
      await running;
    }
  } finally {
    if (hup) process.off("SIGHUP", onHup);
  }
}

/** One run of the data plane over a fixed set, until `signal` aborts. */
async function runGeneration(config: Config, client: StoreClient, jobs: readonly Job[], signal: AbortSignal): Promise<void> {
  if (config.watch) {
    const { runWatch } = await import("./watch.ts");
    await runWatch(client, jobs, signal);
    return;
  }
  log.info(`Processing every ${config.interval}s`);
  await runInterval(client, jobs, config.interval * 1000, signal);
}

/** --noop's diff, to stdout as bytes; written at once, so none is lost when the process exits. */
function report(text: string): void {
  try {
    writeFully(1, encodeText(text));
  } catch (err) {
    log.error(`cannot write the --noop report to stdout: ${errnoText(err)}`);
  }
}
