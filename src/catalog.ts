// Consul's catalog as template data, the part every thread shares: what a template can ask for (a
// dependency: `service "web"`, `nodes`, ...), parsed from a catalog function's arguments into plain data
// with a stable key; the answers' shapes, as plain structured-clone-safe data (the main thread reads
// them, workers render them); and the capability a store client offers when it can answer them
// (CatalogSource: only the consul backend's). Where answers are read during a render is
// catalog-values.ts (workers); where they are fetched and watched, catalog-round.ts and
// catalog-watch.ts (main thread).
//
// Query syntax and defaults follow consul-template's (`service "tag.name@dc|filter"`, healthy instances
// only unless a filter says otherwise); `checks` and `events`, which consul-template lacks, follow
// Consul's API (/v1/health/state/<state>, /v1/event/list?name=).
import { ConfdError } from "./errors.ts";
import type { StoreClient } from "./store.ts";

/** The template functions that read the catalog. */
export const CATALOG_FUNCS = ["services", "service", "nodes", "checks", "events"] as const;
export type CatalogFunc = (typeof CATALOG_FUNCS)[number];
export const CATALOG_FUNC_SET: ReadonlySet<string> = new Set(CATALOG_FUNCS);

/** consul-template's health filters: an instance's status, as its checks add up, or any. */
export const HEALTH_FILTERS = ["any", "critical", "maintenance", "passing", "warning"] as const;
/** The states /v1/health/state/<state> accepts. */
export const CHECK_STATES = ["any", "critical", "passing", "warning"] as const;

/** One thing a template reads from the catalog. Plain data: it crosses between threads. */
export type CatalogDep = (
  | { kind: "services"; dc: string }
  | { kind: "service"; name: string; tag: string; dc: string; filters: string[] }
  | { kind: "nodes"; dc: string }
  | { kind: "checks"; state: string }
  | { kind: "events"; name: string }
) & {
  /** An argument was a value read from the store: logs show the dependency without its arguments. */
  fromStore?: boolean;
};

/** The dependency's identity (one read, one watch per key, however many templates ask), as consul-template names it. */
export function depKey(dep: CatalogDep): string {
  switch (dep.kind) {
    case "services":
      return dep.dc ? `catalog.services(@${dep.dc})` : "catalog.services";
    case "nodes":
      return dep.dc ? `catalog.nodes(@${dep.dc})` : "catalog.nodes";
    case "service":
      return `health.service(${dep.tag ? dep.tag + "." : ""}${dep.name}${dep.dc ? "@" + dep.dc : ""}|${dep.filters.join(",")})`;
    case "checks":
      return `health.state(${dep.state})`;
    case "events":
      return dep.name ? `event.list(${dep.name})` : "event.list";
  }
}

/** The dependency for a log line: its key, unless an argument came from the store (a value, which logs never show). */
export function describeDep(dep: CatalogDep): string {
  if (!dep.fromStore) return depKey(dep);
  const api = depKey(dep).replace(/\(.*$/, "");
  return `${api}(<a value from the store>)`;
}

/**
 * A call's arguments that are not a dependency. The message never shows an argument (it may be a
 * value from the store); arg, when set, is the index of the one at fault.
 */
export class CatalogQueryError extends Error {
  constructor(
    message: string,
    readonly arg?: number,
  ) {
    super(message);
    this.name = "CatalogQueryError";
  }
}

// consul-template's pieces of a query ([[:word:]] is \w without the u flag).
const TAG = String.raw`(?:([\w=:.\-]+)\.)?`;
const NAME = String.raw`([\w\-]+)`;
const DC = String.raw`(?:@([\w.\-]+))?`;
const NEAR = String.raw`(?:~([\w.\-]+))?`;
const FILTER = String.raw`(?:\|([\w,]+))?`;
const SERVICE_QUERY = new RegExp(`^${TAG}${NAME}${DC}${NEAR}${FILTER}$`);
const DC_QUERY = new RegExp(`^${DC}${NEAR}$`);

const ARITY: Record<CatalogFunc, { min: number; max: number }> = {
  services: { min: 0, max: 1 },
  service: { min: 1, max: Infinity },
  nodes: { min: 0, max: 1 },
  checks: { min: 1, max: 1 },
  events: { min: 0, max: 1 },
};

/** The dependency a catalog function's arguments name; throws CatalogQueryError. */
export function parseCatalogCall(func: CatalogFunc, args: readonly string[]): CatalogDep {
  const { min, max } = ARITY[func];
  if (args.length < min || args.length > max) {
    const want = max === Infinity ? `at least ${min}` : min === max ? `${min}` : `${min} or ${max}`;
    throw new CatalogQueryError(`wrong number of args for ${func}: want ${want} got ${args.length}`);
  }
  switch (func) {
    case "services":
    case "nodes":
      return { kind: func, dc: parseDcQuery(func, args[0] ?? "") };
    case "service":
      return parseServiceQuery(args);
    case "checks": {
      const state = args[0]!;
      if (!(CHECK_STATES as readonly string[]).includes(state)) throw new CatalogQueryError(`the state must be one of ${CHECK_STATES.join(", ")}`, 0);
      return { kind: "checks", state };
    }
    case "events":
      return { kind: "events", name: args[0] ?? "" };
  }
}

/** consul-template's `service`: its arguments joined with "|", as "[tag.]name[@dc][|filter,...]". */
function parseServiceQuery(args: readonly string[]): CatalogDep {
  const m = SERVICE_QUERY.exec(args.join("|"));
  // Which argument is at fault: the first, unless the rest are what does not parse.
  const culprit = args.length > 1 && SERVICE_QUERY.test(args[0]!) ? 1 : 0;
  if (!m) throw new CatalogQueryError('invalid service query: want "[tag.]name[@datacenter]", then a health filter', culprit);
  const [, tag = "", name = "", dc = "", near, filter = ""] = m;
  if (near !== undefined) throw new CatalogQueryError("~near (sorting by round-trip time) is not supported", 0);
  const filters: string[] = [];
  for (const part of filter.split(",")) {
    const f = part.trim();
    if (f === "") continue;
    if (!(HEALTH_FILTERS as readonly string[]).includes(f)) throw new CatalogQueryError(`a health filter must be one of ${HEALTH_FILTERS.join(", ")}`, culprit);
    if (!filters.includes(f)) filters.push(f);
  }
  filters.sort();
  return { kind: "service", name, tag, dc, filters: filters.length > 0 ? filters : ["passing"] };
}

function parseDcQuery(func: string, query: string): string {
  const m = DC_QUERY.exec(query);
  if (!m) throw new CatalogQueryError(`invalid ${func} query: want "" or "@datacenter"`, 0);
  if (m[2] !== undefined) throw new CatalogQueryError("~near (sorting by round-trip time) is not supported", 0);
  return m[1] ?? "";
}

// --- answers ---------------------------------------------------------------------------------------------
// Plain data in Go's field names, numbers as JavaScript numbers: what the main thread reads and sends to
// workers, who turn each element into the Go struct a template sees (catalog-values.ts). Field lists are in
// the order Go prints them (consul-template's structs, and Consul's api package for checks and events).

/** consul-template's dependency.HealthService, with Meta beside ServiceMeta (its name in this project's issue). */
export interface HealthService {
  Node: string;
  NodeID: string;
  NodeAddress: string;
  NodeDatacenter: string;
  NodeTaggedAddresses: Record<string, string>;
  NodeMeta: Record<string, string>;
  ServiceMeta: Record<string, string>;
  Meta: Record<string, string>;
  /** The service's address, else its node's. */
  Address: string;
  ID: string;
  Name: string;
  /** Sorted. */
  Tags: string[];
  Checks: HealthCheck[];
  /** What the checks add up to: maintenance, critical, warning or passing. */
  Status: string;
  Port: number;
}

/** Consul's api.HealthCheck, less its definition and indexes. */
export interface HealthCheck {
  Node: string;
  CheckID: string;
  Name: string;
  Status: string;
  Notes: string;
  Output: string;
  ServiceID: string;
  ServiceName: string;
  ServiceTags: string[];
}

/** consul-template's dependency.CatalogSnippet: a service's name and every tag its instances carry. */
export interface CatalogSnippet {
  Name: string;
  Tags: string[];
}

/** consul-template's dependency.Node. */
export interface CatalogNode {
  ID: string;
  Node: string;
  Address: string;
  Datacenter: string;
  TaggedAddresses: Record<string, string>;
  Meta: Record<string, string>;
}

/** Consul's api.UserEvent, its payload as text (bytes that are not UTF-8 kept as bytes.ts says). */
export interface UserEvent {
  ID: string;
  Name: string;
  Payload: string;
  NodeFilter: string;
  ServiceFilter: string;
  TagFilter: string;
  Version: number;
  LTime: number;
}

export type CatalogAnswer = HealthService[] | CatalogSnippet[] | CatalogNode[] | HealthCheck[] | UserEvent[];

/** An answer and the store's index for it (a watch started from it misses nothing after it). */
export interface CatalogRead {
  index: number;
  answer: CatalogAnswer;
}

/**
 * What a store client offers when it can answer catalog dependencies (the consul backend). Not part of
 * StoreClient: the catalog is Consul's alone; the main thread asks the client with catalogOf().
 */
export interface CatalogSource {
  read(dep: CatalogDep): Promise<CatalogRead>;
  /**
   * As StoreClient.watchPrefix, for one dependency: resolves with a new index once its answer may have
   * changed after `waitIndex` (0: at once, with the current one). One watch per dependency however
   * many callers; it wakes when the answer differs, not whenever Consul's index moves.
   */
  watch(dep: CatalogDep, waitIndex: number, signal: AbortSignal): Promise<number>;
}

/** A store client that can answer catalog dependencies. */
export interface CatalogCapable {
  readonly catalog: CatalogSource;
}

export function catalogOf(client: StoreClient): CatalogSource | undefined {
  return (client as StoreClient & Partial<CatalogCapable>).catalog;
}

/** A catalog read that failed because the store could not answer: worth retrying, unlike a template's error. */
export class CatalogUnavailable extends ConfdError {}

/** Where a template calls a catalog function, and the dependency when its arguments are written in the template. */
export interface CatalogCall {
  func: CatalogFunc;
  /** The template file, or the partial's. */
  file: string;
  line: number;
  column: number;
  dep?: CatalogDep;
}
