// The main thread's handle on one resource's worker: start it when there is something to sync, send it
// the values, end it when it has been idle long enough, and when it throws or dies, report it under the
// resource's name and start a new one with backoff. Other resources' workers are separate threads and
// never notice. How many workers start and sync at once is the Slots' say (slots.ts).
import { depKey, describeDep, type CatalogDep } from "./catalog.ts";
import type { CatalogLink } from "./catalog-round.ts";
import { killTree } from "./command.ts";
import { ConfdError, withContext } from "./errors.ts";
import { events } from "./events.ts";
import type { LogRecord } from "./log.ts";
import type { CatalogAnswers, FromWorker, ToWorker, WorkerInit } from "./protocol.ts";
import type { Engine } from "./resource.ts";
import { Slots, type Slot } from "./slots.ts";
import type { SyncOutcome } from "./sync.ts";
import { setLongTimeout, type LongTimeout } from "./timer.ts";

export interface WorkerHooks {
  log: (record: LogRecord) => void;
  report: (text: string) => void;
}

export interface WorkerLifecycle {
  /** Shared by every resource's worker: a sync (and the start before it) holds one. */
  slots: Slots;
  /**
   * How long the thread stays after a sync with nothing more to do: 0 ends it at once (-onetime),
   * undefined keeps it for good (the default: a change is synced without a start), else -worker-idle.
   */
  idleMs?: number;
}

/** One entry per template engine, so that a worker loads only its resource's engine. */
const WORKER_ENTRIES: Record<Engine, URL> = {
  go: new URL("./worker-go.ts", import.meta.url),
  handlebars: new URL("./worker-handlebars.ts", import.meta.url),
};
const BACKOFF_START_MS = 100;
const BACKOFF_CAP_MS = 30_000;

interface Pending {
  resolve: (outcome: SyncOutcome) => void;
  reject: (error: ConfdError) => void;
  catalog?: CatalogLink;
  /** Why the catalog could not answer the render, which is then why the sync failed. */
  catalogFailure?: ConfdError;
}

export class ResourceWorker {
  private worker: Worker | undefined;
  private ready: Promise<void> | undefined;
  private readonly pending = new Map<number, Pending>();
  private readonly inflight = new Set<Promise<unknown>>();
  /** Check and reload commands running now, by pid (process group on POSIX). */
  private readonly commands = new Set<number>();
  private nextId = 1;
  private failures = 0;
  private restartTimer: ReturnType<typeof setTimeout> | undefined;
  private idleTimer: LongTimeout | undefined;
  /** The slot the sync in progress holds, given back early while only a check or reload command runs. */
  private slot: Slot | undefined;
  private lastUrl: string | URL | undefined;
  private stopped = false;
  /** The catalog dependencies its last render read: given to the next sync up front, with those its template names. */
  private catalogUsed: readonly CatalogDep[] = [];

  constructor(
    private readonly init: WorkerInit,
    private readonly hooks: WorkerHooks,
    private readonly lifecycle: WorkerLifecycle = { slots: new Slots(Infinity) },
    /** The worker entry; tests pass their own to make a worker crash on purpose. */
    private readonly url: Promise<string | URL> = workerEntry(init.template.engine),
  ) {}

  get name(): string {
    return this.init.resource.name;
  }

  /** Starts the worker; resolves once it has its template and can sync. */
  start(): Promise<void> {
    this.ready ??= this.url.then((url) => this.spawn(url));
    return this.ready;
  }

  private spawn(url: string | URL): Promise<void> {
    this.lastUrl = url;
    return new Promise<void>((resolve, reject) => {
      const worker = new Worker(url);
      this.worker = worker;
      worker.onmessage = (event: MessageEvent<FromWorker>) => {
        const m = event.data;
        if (m.type === "ready") {
          resolve();
        } else if (m.type === "log") {
          this.hooks.log({ ...m.record, fields: { resource: this.name, ...m.record.fields } });
        } else if (m.type === "report") {
          this.hooks.report(m.text);
        } else if (m.type === "command") {
          if (m.alive) this.commands.add(m.pid);
          else this.commands.delete(m.pid);
          // Waiting on a command (a slow reload) uses no CPU here: others may start meanwhile.
          if (m.alive) this.slot?.release();
        } else if (m.type === "catalog") {
          this.answerCatalog(worker, m.id, m.deps);
        } else {
          const p = this.pending.get(m.id);
          this.pending.delete(m.id);
          this.catalogUsed = m.used;
          p?.catalog?.used(m.used);
          if (m.type === "done") {
            this.failures = 0;
            events.synced(this.name, m.stats, { outcome: m.outcome });
            p?.resolve(m.outcome);
          } else {
            const error = p?.catalogFailure ?? ConfdError.fromData(m.error);
            events.synced(this.name, m.stats, { error: error.message });
            p?.reject(error);
          }
        }
      };
      worker.onerror = (event: ErrorEvent) => {
        event.preventDefault();
        this.crashed(worker, crashReason(event), reject);
      };
      worker.addEventListener("close", () => this.crashed(worker, "exited", reject));
      worker.postMessage({ type: "init", init: this.init } satisfies ToWorker);
    });
  }

  /**
   * Renders and syncs with these values, starting the thread if it is not running; rejects with the
   * resource's error. `catalog` answers the catalog dependencies its template names and its last render
   * read before the render starts, and those the render asks for as it goes.
   */
  async sync(values: Map<string, string>, catalog?: CatalogLink): Promise<SyncOutcome> {
    if (this.stopped) throw new ConfdError("worker is stopped", { resource: this.name });
    this.idleTimer?.cancel();
    const known = catalog ? await catalog.answers(this.catalogDeps()) : [];
    const slot = await this.lifecycle.slots.acquire();
    this.slot = slot;
    const result = this.syncHolding(values, known, catalog);
    this.inflight.add(result);
    try {
      return await result;
    } finally {
      this.inflight.delete(result);
      slot.release();
      if (this.slot === slot) this.slot = undefined;
      this.idleAfterSync();
    }
  }

  private async syncHolding(values: Map<string, string>, known: CatalogAnswers, catalog: CatalogLink | undefined): Promise<SyncOutcome> {
    if (this.stopped) throw new ConfdError("worker is stopped", { resource: this.name });
    await this.start();
    const worker = this.worker;
    // It may have crashed between starting and now; its restart is already scheduled.
    if (!worker) throw new WorkerCrashError("worker crashed before the sync could start", { resource: this.name });
    const id = this.nextId++;
    return new Promise<SyncOutcome>((resolve, reject) => {
      this.pending.set(id, { resolve, reject, catalog });
      worker.postMessage({ type: "sync", id, values: [...values], catalog: known } satisfies ToWorker);
    });
  }

  /** What a sync is given up front: the dependencies the template names, and those its last render read. */
  private catalogDeps(): CatalogDep[] {
    const named = (this.init.template.catalog ?? []).flatMap((call) => (call.dep ? [call.dep] : []));
    return [...new Map([...named, ...this.catalogUsed].map((dep) => [depKey(dep), dep])).values()];
  }

  /** Answers a render's request for catalog dependencies it was not given. */
  private answerCatalog(worker: Worker, id: number, deps: CatalogDep[]): void {
    const p = this.pending.get(id);
    if (!p) return;
    const reply = (message: ToWorker) => {
      if (this.worker === worker) worker.postMessage(message);
    };
    if (!p.catalog) {
      p.catalogFailure = new ConfdError(`${deps.map(describeDep).join(", ")}: the catalog functions need -backend consul`, { resource: this.name });
      reply({ type: "catalog", id, error: p.catalogFailure.toData() });
      return;
    }
    // The trace of a dependency learnt by rendering, which a template that names it spares (tests read it).
    this.hooks.log({ level: "debug", message: `Rendering asked for ${deps.map(describeDep).join(", ")}: fetching`, fields: { resource: this.name } });
    p.catalog.answers(deps).then(
      (answers) => reply({ type: "catalog", id, answers }),
      (err: unknown) => {
        // Kept as it is (a CatalogUnavailable), for the caller to tell from a template's error.
        p.catalogFailure = err instanceof ConfdError ? err : withContext(err, { resource: this.name });
        reply({ type: "catalog", id, error: p.catalogFailure.toData() });
      },
    );
  }

  /** Ends the thread once it has had nothing to do for the lifecycle's idle time; the next sync starts one. */
  private idleAfterSync(): void {
    const { idleMs } = this.lifecycle;
    if (idleMs === undefined || this.inflight.size > 0 || this.stopped) return;
    this.idleTimer?.cancel();
    this.idleTimer = setLongTimeout(() => this.retire(), idleMs);
  }

  private retire(): void {
    if (this.inflight.size > 0 || !this.worker) return;
    const worker = this.worker;
    // Cleared first, so that its close event is not taken for a crash.
    this.worker = undefined;
    this.ready = undefined;
    worker.terminate();
    this.hooks.log({ level: "debug", message: "Worker ended: nothing to sync; the next change starts one", fields: { resource: this.name } });
  }

  /** Waits for the syncs in flight (their commands have their own timeouts), then ends the thread. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.restartTimer);
    this.idleTimer?.cancel();
    await Promise.allSettled([...this.inflight]);
    const worker = this.worker;
    this.worker = undefined;
    worker?.terminate();
  }

  /** Shutdown: a reload waiting for its splay or min_reload_interval runs now (reload-delay.ts). */
  hurry(): void {
    this.worker?.postMessage({ type: "hurry" } satisfies ToWorker);
  }

  /** Kills the commands this resource's worker is running, with everything they started; how many. */
  killCommands(): number {
    for (const pid of this.commands) killTree(pid, "SIGKILL");
    const count = this.commands.size;
    this.commands.clear();
    return count;
  }

  private crashed(worker: Worker, why: string, rejectStart: (e: ConfdError) => void): void {
    if (worker !== this.worker) return;
    this.worker = undefined;
    worker.terminate();
    if (this.stopped) return;
    this.failures++;
    const error = new WorkerCrashError(`worker crashed: ${why}`, { resource: this.name, file: this.init.resource.file });
    rejectStart(error);
    for (const p of this.pending.values()) p.reject(error);
    this.pending.clear();
    const delay = backoff(this.failures);
    events.workerRestarted(this.name, why);
    this.hooks.log({ level: "error", message: `worker crashed (${why}); restarting in ${Math.round(delay)} ms`, fields: { resource: this.name } });
    // A sync asked for meanwhile waits for the restart instead of starting a worker at once: a worker
    // that crashes on every sync must not be restarted in a tight loop.
    const url = this.lastUrl!;
    this.ready = new Promise<void>((resolve) => {
      this.restartTimer = setTimeout(resolve, delay);
    }).then(() => this.spawn(url));
    this.ready.catch(() => {});
  }
}

/** The worker thread died; the values it was given may be fine, and a retry is worth it. */
export class WorkerCrashError extends ConfdError {}

const bundled = new Map<Engine, Promise<string | URL>>();

/**
 * The worker entry to start for a resource in this engine. Run from source, each worker would resolve and
 * transpile a dozen modules itself (200 workers: 1.9 s instead of 1.1 s on 2 cores), so the main thread
 * bundles them once per engine, in memory (about 10 ms), and workers start from that. A compiled binary
 * holds each entry as an entrypoint of its own (scripts/build.ts), bundled and in bytecode, which these
 * URLs name there.
 */
export function workerEntry(engine: Engine): Promise<string | URL> {
  let entry = bundled.get(engine);
  if (!entry) {
    entry = bundle(WORKER_ENTRIES[engine]);
    bundled.set(engine, entry);
  }
  return entry;
}

async function bundle(entry: URL): Promise<string | URL> {
  if (Bun.isStandaloneExecutable) return entry;
  if (entry.protocol !== "file:" || !(await Bun.file(entry).exists())) return entry;
  try {
    const result = await Bun.build({ entrypoints: [Bun.fileURLToPath(entry)], target: "bun", minify: true });
    const output = result.outputs[0];
    if (!result.success || !output) return entry;
    return URL.createObjectURL(new Blob([await output.text()], { type: "text/javascript" }));
  } catch {
    return entry;
  }
}

/** Bun's ErrorEvent message carries a source excerpt; the error itself is the useful part. */
function crashReason(event: ErrorEvent): string {
  if (event.error instanceof Error) return event.error.message;
  const line = /^error: (.*)$/m.exec(event.message ?? "");
  return line?.[1] ?? (event.message || "uncaught error");
}

/** Exponential backoff with full jitter in its upper half, capped. */
export function backoff(failures: number, capMs = BACKOFF_CAP_MS): number {
  const ceiling = Math.min(capMs, BACKOFF_START_MS * 2 ** Math.max(0, failures - 1));
  return ceiling / 2 + (Math.random() * ceiling) / 2;
}
