// Consul's service catalog for templates (the consul backend's CatalogSource, ../catalog.ts): a
// dependency read through its endpoint (/v1/health/service/<name>, /v1/catalog/services,
// /v1/catalog/nodes, /v1/health/state/<state>, /v1/event/list), its answer checked and put in the shape
// templates see, sorted as consul-template sorts it; and watched with blocking queries, one loop per
// distinct dependency in the watch core, which wakes callers only when the answer differs (another
// service's change moves the same index). Requests go through the backend's nodes, with its failover,
// token and TLS (consul.ts).
import { decodeBytes } from "../bytes.ts";
import {
  depKey,
  type CatalogAnswer,
  type CatalogDep,
  type CatalogNode,
  type CatalogRead,
  type CatalogSnippet,
  type CatalogSource,
  type HealthCheck,
  type HealthService,
  type UserEvent,
} from "../catalog.ts";
import { ConfdError } from "../errors.ts";
import { listingWatch, SharedWatches, type Listing } from "../watch-core.ts";
import { blockingPace, type NodeAnswer, type NodeCall } from "./consul.ts";

/** Makes a request through the backend's nodes: given an index (as Consul sent it), a blocking query. */
export type Requester = (call: NodeCall, index: string | undefined, signal: AbortSignal) => Promise<NodeAnswer>;

/**
 * What is known of one dependency's index. Watches count in their own numbers: an event list's
 * X-Consul-Index is a 64-bit hash of the newest event's ID, not an order, and beyond what a double
 * holds exactly. Each new index Consul sends is the next number here, and a blocking query sends back
 * the index Consul sent for the number it waits on.
 */
interface IndexState {
  dep: CatalogDep;
  /** Consul's last X-Consul-Index for it, and the number that stands for it. */
  sent: string | undefined;
  number: number;
}

const NEVER = new AbortController().signal;

export class ConsulCatalog implements CatalogSource {
  private readonly indexes = new Map<string, IndexState>();
  private readonly watches: SharedWatches;

  constructor(
    private readonly request: Requester,
    deadlineMs: number,
  ) {
    this.watches = new SharedWatches({
      store: "consul",
      source: listingWatch({ list: (key, index, signal) => this.list(key, index, signal), pace: blockingPace }),
      deadlineMs,
    });
  }

  read(dep: CatalogDep): Promise<CatalogRead> {
    return this.fetch(dep, 0, NEVER);
  }

  watch(dep: CatalogDep, waitIndex: number, signal: AbortSignal): Promise<number> {
    this.state(dep);
    return this.watches.wait(depKey(dep), waitIndex, signal);
  }

  close(): Promise<void> {
    return this.watches.close();
  }

  /** The watch core's listing of a dependency: its answer, as one value, which the core compares with the last. */
  private async list(key: string, index: number, signal: AbortSignal): Promise<Listing> {
    const { dep } = this.indexes.get(key)!;
    const read = await this.fetch(dep, index, signal);
    return { index: read.index, values: new Map([[key, JSON.stringify(read.answer)]]) };
  }

  private state(dep: CatalogDep): IndexState {
    const key = depKey(dep);
    let state = this.indexes.get(key);
    if (!state) this.indexes.set(key, (state = { dep, sent: undefined, number: 0 }));
    return state;
  }

  /** The answer, and its index in this catalog's numbers; given the number of the last one, a blocking query. */
  private async fetch(dep: CatalogDep, index: number, signal: AbortSignal): Promise<CatalogRead> {
    const state = this.state(dep);
    // A number from before the last answer (another reader's) cannot be sent back: ask without blocking.
    const blockOn = index > 0 && index === state.number ? state.sent : undefined;
    const { index: sent, body } = await this.request(callFor(dep), blockOn, signal);
    // An answer without a usable index is never waited on: the pace makes such a loop poll.
    const usable = /^\d+$/.test(sent) ? sent : undefined;
    if (usable === undefined || usable !== state.sent) {
      state.sent = usable;
      state.number++;
    }
    return { index: state.number, answer: answerOf(dep, body) };
  }
}

function callFor(dep: CatalogDep): NodeCall {
  const dc = dep.kind === "service" || dep.kind === "services" || dep.kind === "nodes" ? dep.dc || undefined : undefined;
  switch (dep.kind) {
    case "service": {
      // Healthy instances only (the default) are Consul's to filter; other filters are applied here, by status.
      const passing = dep.filters.length === 1 && dep.filters[0] === "passing";
      return (api, o) => api.health.service({ service: dep.name, tag: dep.tag || undefined, passing, dc, ...o });
    }
    case "services":
      return (api, o) => api.catalog.service.list({ dc, ...o });
    case "nodes":
      return (api, o) => api.catalog.node.list({ dc, ...o });
    case "checks":
      return (api, o) => api.health.state({ state: dep.state, ...o });
    case "events":
      return (api, o) => api.event.list({ name: dep.name || undefined, ...o });
  }
}

// --- answers ---------------------------------------------------------------------------------------------
// Consul's JSON, checked: a field of the wrong type reads as empty, an answer of the wrong shape is an
// error that names the dependency (never a value).

function answerOf(dep: CatalogDep, body: unknown): CatalogAnswer {
  const list = (): Record<string, unknown>[] => {
    if (!Array.isArray(body)) throw malformed(dep);
    return body.map((item) => record(item));
  };
  switch (dep.kind) {
    case "service":
      return list()
        .map(healthService)
        .filter((s) => dep.filters.includes("any") || dep.filters.includes(s.Status))
        .sort((a, b) => compareBytes(a.Node, b.Node) || compareBytes(a.ID, b.ID));
    case "services": {
      if (body === null || typeof body !== "object" || Array.isArray(body)) throw malformed(dep);
      return Object.entries(body as Record<string, unknown>)
        .map(([Name, tags]): CatalogSnippet => ({ Name, Tags: sorted(strings(tags)) }))
        .sort((a, b) => compareBytes(a.Name, b.Name));
    }
    case "nodes":
      return list()
        .map((n): CatalogNode => ({
          ID: str(n.ID),
          Node: str(n.Node),
          Address: str(n.Address),
          Datacenter: str(n.Datacenter),
          TaggedAddresses: stringMap(n.TaggedAddresses),
          Meta: stringMap(n.Meta),
        }))
        .sort((a, b) => compareBytes(a.Node, b.Node) || compareBytes(a.Address, b.Address));
    case "checks":
      return list()
        .map(healthCheck)
        .sort((a, b) => compareBytes(a.Node, b.Node) || compareBytes(a.CheckID, b.CheckID));
    case "events":
      // In the order the agent holds them: oldest first.
      return list().map(
        (e): UserEvent => ({
          ID: str(e.ID),
          Name: str(e.Name),
          Payload: typeof e.Payload === "string" ? decodeBytes(Buffer.from(e.Payload, "base64")) : "",
          NodeFilter: str(e.NodeFilter),
          ServiceFilter: str(e.ServiceFilter),
          TagFilter: str(e.TagFilter),
          Version: num(e.Version),
          LTime: num(e.LTime),
        }),
      );
  }
}

function healthService(entry: Record<string, unknown>): HealthService {
  const node = record(entry.Node);
  const service = record(entry.Service);
  const checks = Array.isArray(entry.Checks) ? entry.Checks.map((c) => healthCheck(record(c))) : [];
  const meta = stringMap(service.Meta);
  return {
    Node: str(node.Node),
    NodeID: str(node.ID),
    NodeAddress: str(node.Address),
    NodeDatacenter: str(node.Datacenter),
    NodeTaggedAddresses: stringMap(node.TaggedAddresses),
    NodeMeta: stringMap(node.Meta),
    ServiceMeta: meta,
    Meta: meta,
    Address: str(service.Address) || str(node.Address),
    ID: str(service.ID),
    Name: str(service.Service),
    Tags: sorted(strings(service.Tags)),
    Checks: checks,
    Status: aggregatedStatus(checks),
    Port: num(service.Port),
  };
}

function healthCheck(c: Record<string, unknown>): HealthCheck {
  return {
    Node: str(c.Node),
    CheckID: str(c.CheckID),
    Name: str(c.Name),
    Status: str(c.Status),
    Notes: str(c.Notes),
    Output: str(c.Output),
    ServiceID: str(c.ServiceID),
    ServiceName: str(c.ServiceName),
    ServiceTags: strings(c.ServiceTags),
  };
}

/**
 * What an instance's checks add up to, as Consul's api package says (HealthChecks.AggregatedStatus): a
 * maintenance check wins, then critical, warning, passing; no checks is passing; a status Consul does
 * not define makes it "", which no filter but "any" accepts.
 */
function aggregatedStatus(checks: readonly HealthCheck[]): string {
  const seen = new Set<string>();
  for (const c of checks) {
    if (c.CheckID === "_node_maintenance" || c.CheckID.startsWith("_service_maintenance:")) {
      seen.add("maintenance");
      continue;
    }
    if (c.Status !== "passing" && c.Status !== "warning" && c.Status !== "critical") return "";
    seen.add(c.Status);
  }
  return ["maintenance", "critical", "warning"].find((s) => seen.has(s)) ?? "passing";
}

function malformed(dep: CatalogDep): ConfdError {
  return new ConfdError(`consul's answer to ${depKey(dep)} is not what its API documents`);
}

function record(v: unknown): Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}

function str(v: unknown): string {
  return typeof v === "string" ? v : "";
}

function num(v: unknown): number {
  return typeof v === "number" && Number.isFinite(v) ? Math.trunc(v) : 0;
}

function strings(v: unknown): string[] {
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : [];
}

/**
 * A map of strings, its keys in Go's order (so that handlebars' #each visits them as Go's range does), in
 * a null-prototype object so that a "__proto__" or "constructor" key is a key like any other.
 */
function stringMap(v: unknown): Record<string, string> {
  const out: Record<string, string> = Object.create(null);
  const entries = Object.entries(record(v)).filter((e): e is [string, string] => typeof e[1] === "string");
  for (const [k, x] of entries.sort(([a], [b]) => compareBytes(a, b))) out[k] = x;
  return out;
}

function sorted(list: string[]): string[] {
  return list.sort(compareBytes);
}

/** Go's string order: by bytes. */
function compareBytes(a: string, b: string): number {
  return a === b ? 0 : Buffer.compare(Buffer.from(a), Buffer.from(b));
}
