// -metrics-addr: the HTTP server, in the main thread, that serves what confd is doing. /metrics in the
// Prometheus text format (prom-client writes it), /healthz (the process answers), /readyz (every
// resource has synced once and the store answered its latest read or watch), /status (JSON per resource:
// last sync, last error, next action). It observes events.ts; cli.ts imports this module only when the
// flag is set, so a run without it loads neither prom-client nor a server.
import Counter from "prom-client/lib/counter.js";
import Gauge from "prom-client/lib/gauge.js";
import Histogram from "prom-client/lib/histogram.js";
import Registry from "prom-client/lib/registry.js";
import { ConfdError, errnoText } from "./errors.ts";
import { observe, type Events } from "./events.ts";
import { log } from "./log.ts";
import type { SyncStats } from "./protocol.ts";
import type { SyncOutcome } from "./sync.ts";

/** How the resources are run: what /status says comes next for each. */
export type Mode = "onetime" | "watch" | "interval";

interface ResourceState {
  lastSync?: Date;
  lastAttempt?: Date;
  lastError?: string;
}

/** /status: one entry per resource. Times are ISO 8601 (UTC); null: not yet. */
export interface ResourceStatus {
  lastSync: string | null;
  lastAttempt: string | null;
  /** The last sync's error message, null once a sync succeeds; messages never hold store values (errors.ts). */
  lastError: string | null;
  nextAction: string;
}

export interface Status {
  ready: boolean;
  storeReachable: boolean | null;
  mode: Mode;
  resources: Record<string, ResourceStatus>;
}

export interface MetricsServer {
  /** The address it listens on, host:port (the port chosen when 0 was asked for). */
  address: string;
  stop(): Promise<void>;
}

/**
 * Reads the store once (a key the resources read), resolving when it answers and rejecting when it
 * cannot be reached. /readyz asks it while the store is taken to be down: a store watch that resumes by
 * itself after an outage (etcd's) says nothing until the next change, and readiness must not wait for one.
 */
export type StoreProbe = () => Promise<unknown>;

/** Starts the server and makes it the observer of events; a bad or busy address is the flag's error. */
export function startMetrics(addr: string, mode: Mode, resources: readonly string[], probe: StoreProbe): MetricsServer {
  const { hostname, port } = parseAddr(addr);
  const observer = new Observer(mode, resources, probe);
  let server: ReturnType<typeof Bun.serve>;
  try {
    // development: false, so that an error in a handler never answers with a stack trace.
    server = Bun.serve({ hostname, port, development: false, fetch: (request) => observer.answer(request) });
  } catch (err) {
    throw new ConfdError(`cannot listen on ${addr}: ${errnoText(err)}`, { flag: "metrics-addr" });
  }
  observe(observer);
  const host = hostname.includes(":") ? `[${hostname}]` : hostname;
  return { address: `${host}:${server.port}`, stop: () => server.stop(true) };
}

/** Go's host:port as net.Listen reads it: "127.0.0.1:9100", "[::1]:9100", ":9100" (every interface). */
export function parseAddr(addr: string): { hostname: string; port: number } {
  const m = /^(?:\[([^\]]*)\]|([^:[\]]*)):(\d{1,5})$/.exec(addr);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new ConfdError(`invalid address ${JSON.stringify(addr)}: want host:port, e.g. 127.0.0.1:9100`, { flag: "metrics-addr" });
  const hostname = m[1] ?? m[2]!;
  return { hostname: hostname === "" ? "0.0.0.0" : hostname, port };
}

class Observer implements Events {
  private readonly registry = new Registry();
  private readonly states = new Map<string, ResourceState>();
  private storeUp: boolean | undefined;
  private next: Date | undefined;
  /** The readiness probe in flight, if any: one at a time, however often /readyz is asked. */
  private probing: Promise<void> | undefined;

  private readonly renders: Counter<"resource">;
  private readonly renderErrors: Counter<"resource">;
  private readonly renderSeconds: Histogram<"resource">;
  private readonly syncs: Counter<"resource" | "result">;
  private readonly commands: Counter<"resource" | "command" | "result">;
  private readonly commandSeconds: Histogram<"resource" | "command">;
  private readonly storeReads: Histogram<"result">;
  private readonly reachable: Gauge;
  private readonly reconnects: Counter;
  private readonly lastSuccess: Gauge<"resource">;
  private readonly restarts: Counter<"resource">;

  constructor(
    private readonly mode: Mode,
    resources: readonly string[],
    private readonly probe: StoreProbe,
  ) {
    const registers = [this.registry];
    this.renders = new Counter({ name: "confd_renders_total", help: "Templates rendered.", labelNames: ["resource"], registers });
    this.renderErrors = new Counter({ name: "confd_render_errors_total", help: "Renders that failed (template errors, missing keys).", labelNames: ["resource"], registers });
    this.renderSeconds = new Histogram({ name: "confd_render_duration_seconds", help: "Time to render a template.", labelNames: ["resource"], registers });
    this.syncs = new Counter({
      name: "confd_syncs_total",
      help: "Syncs by result: changed (destination replaced), unchanged (in sync, or -noop), error (render, check, reload or write failed).",
      labelNames: ["resource", "result"],
      registers,
    });
    this.commands = new Counter({ name: "confd_commands_total", help: "check_cmd, reload_cmd and health_cmd runs by result (ok, failed).", labelNames: ["resource", "command", "result"], registers });
    this.commandSeconds = new Histogram({ name: "confd_command_duration_seconds", help: "Time a check, reload or health command ran.", labelNames: ["resource", "command"], registers });
    this.storeReads = new Histogram({ name: "confd_store_read_duration_seconds", help: "Time to read values from the store, by result (ok, error).", labelNames: ["result"], registers });
    this.reachable = new Gauge({ name: "confd_store_reachable", help: "1 when the store answered its latest read or watch, else 0.", registers });
    this.reconnects = new Counter({ name: "confd_watch_reconnects_total", help: "Times the store was reached again after being lost.", registers });
    this.lastSuccess = new Gauge({ name: "confd_last_sync_success_timestamp_seconds", help: "Unix time of the resource's last successful sync.", labelNames: ["resource"], registers });
    this.restarts = new Counter({ name: "confd_worker_restarts_total", help: "Worker threads restarted after a crash.", labelNames: ["resource"], registers });
    // Every series present from the start at 0, so that rate() and absence alerts see them before the first event.
    for (const resource of resources) {
      this.states.set(resource, {});
      this.renders.inc({ resource }, 0);
      this.renderErrors.inc({ resource }, 0);
      for (const result of ["changed", "unchanged", "error"]) this.syncs.inc({ resource, result }, 0);
      this.restarts.inc({ resource }, 0);
    }
    this.reconnects.inc(0);
  }

  storeRead(seconds: number, ok: boolean): void {
    this.storeReads.observe({ result: ok ? "ok" : "error" }, seconds);
    this.storeReachable(ok);
  }

  storeReachable(up: boolean): void {
    if (up && this.storeUp === false) this.reconnects.inc();
    this.storeUp = up;
    this.reachable.set(up ? 1 : 0);
  }

  synced(resource: string, stats: SyncStats, result: { outcome: SyncOutcome } | { error: string }): void {
    const state = this.states.get(resource) ?? {};
    this.states.set(resource, state);
    const now = new Date();
    state.lastAttempt = now;
    if (stats.renderSeconds === undefined) {
      this.renderErrors.inc({ resource });
    } else {
      this.renders.inc({ resource });
      this.renderSeconds.observe({ resource }, stats.renderSeconds);
    }
    for (const run of stats.commands) {
      this.commands.inc({ resource, command: run.command, result: run.ok ? "ok" : "failed" });
      this.commandSeconds.observe({ resource, command: run.command }, run.seconds);
    }
    // The trace of a sync counted, after which the endpoints show it (tests wait for it).
    if ("error" in result) {
      state.lastError = result.error;
      this.syncs.inc({ resource, result: "error" });
      log.debug(`Metrics recorded a failed sync of ${resource}`);
      return;
    }
    state.lastSync = now;
    state.lastError = undefined;
    this.syncs.inc({ resource, result: result.outcome.changed ? "changed" : "unchanged" });
    this.lastSuccess.set({ resource }, now.getTime() / 1000);
    log.debug(`Metrics recorded a sync of ${resource}`);
  }

  workerRestarted(resource: string, why: string): void {
    this.restarts.inc({ resource });
    const state = this.states.get(resource);
    if (state) state.lastError = `worker crashed (${why}); restarted`;
  }

  nextRun(at: Date): void {
    this.next = at;
  }

  async answer(request: Request): Promise<Response> {
    if (request.method !== "GET" && request.method !== "HEAD") return new Response("method not allowed\n", { status: 405, headers: { allow: "GET, HEAD" } });
    switch (new URL(request.url).pathname) {
      case "/metrics":
        return new Response(await this.registry.metrics(), { headers: { "content-type": this.registry.contentType } });
      case "/healthz":
        return new Response("ok\n");
      case "/readyz": {
        if (this.storeUp === false) this.probeStore();
        const why = this.notReady();
        return new Response(why === undefined ? "ready\n" : `not ready: ${why}\n`, { status: why === undefined ? 200 : 503 });
      }
      case "/status":
        return Response.json(this.status());
      default:
        return new Response("not found: try /metrics, /healthz, /readyz or /status\n", { status: 404 });
    }
  }

  /**
   * Asks the store in the background; this answer stands on what is known now, so that a probe never
   * waits out a store's connect deadline (a kubelet gives /readyz one second).
   */
  private probeStore(): void {
    if (this.probing) return;
    const started = performance.now();
    this.probing = this.probe().then(
      () => {
        this.storeRead((performance.now() - started) / 1000, true);
        // The trace of the store found again by a probe (tests wait for it).
        log.debug("Readiness probe: the store answers");
      },
      () => {
        this.storeRead((performance.now() - started) / 1000, false);
        log.debug("Readiness probe: the store does not answer");
      },
    );
    void this.probing.finally(() => (this.probing = undefined));
  }

  /** Why it is not ready, or undefined when it is. */
  private notReady(): string | undefined {
    if (this.storeUp !== true) return this.storeUp === false ? "the store is unreachable" : "the store has not been read yet";
    const waiting = [...this.states].filter(([, s]) => s.lastSync === undefined).map(([name]) => name);
    if (waiting.length > 0) return `not synced yet: ${waiting.join(", ")}`;
    return undefined;
  }

  private status(): Status {
    const resources: Record<string, ResourceStatus> = {};
    for (const [name, s] of this.states) {
      resources[name] = {
        lastSync: s.lastSync?.toISOString() ?? null,
        lastAttempt: s.lastAttempt?.toISOString() ?? null,
        lastError: s.lastError ?? null,
        nextAction: this.nextAction(),
      };
    }
    return { ready: this.notReady() === undefined, storeReachable: this.storeUp ?? null, mode: this.mode, resources };
  }

  private nextAction(): string {
    if (this.mode === "onetime") return "none: -onetime exits after this run";
    if (this.mode === "watch") return this.storeUp === false ? "retrying the store with backoff" : "watching";
    return this.next ? `next run at ${this.next.toISOString()}` : "running";
  }
}
