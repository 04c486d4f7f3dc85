// Catalog answers during a render (worker side): the answers a sync was given, read by the catalog
// functions of the library (funcs.ts) as Go values, and the dependencies a render asked for that it was
// not given, which the renderer has the main thread fetch before it renders again (template.ts), as it
// does DNS lookups. The render's dependencies, given or not, are what the main thread watches for it.
import { depKey, type CatalogAnswer, type CatalogDep, type HealthCheck, type HealthService } from "./catalog.ts";
import { markStruct } from "./govalue.ts";

/** Fetches answers for dependencies a render asked for and was not given. */
export type CatalogFetch = (deps: CatalogDep[]) => Promise<[string, CatalogAnswer][]>;

export interface CatalogAnswers {
  /** The dependency's answer as template values; undefined when it was not given (and is recorded as missing). */
  read(dep: CatalogDep): unknown[] | undefined;
}

/** Go's types for the answers' elements, fields in the order Go prints them. */
const TYPES = {
  service: {
    type: "dependency.HealthService",
    fields: ["Node", "NodeID", "NodeAddress", "NodeDatacenter", "NodeTaggedAddresses", "NodeMeta", "ServiceMeta", "Meta", "Address", "ID", "Name", "Tags", "Checks", "Status", "Port"],
  },
  check: { type: "api.HealthCheck", fields: ["Node", "CheckID", "Name", "Status", "Notes", "Output", "ServiceID", "ServiceName", "ServiceTags"] },
  services: { type: "dependency.CatalogSnippet", fields: ["Name", "Tags"] },
  nodes: { type: "dependency.Node", fields: ["ID", "Node", "Address", "Datacenter", "TaggedAddresses", "Meta"] },
  events: { type: "api.UserEvent", fields: ["ID", "Name", "Payload", "NodeFilter", "ServiceFilter", "TagFilter", "Version", "LTime"] },
} as const;

/**
 * An answer as a template sees it: each element a Go struct, its numbers Go ints (Port 8080 prints
 * and compares as an int, as in consul-template), lists and maps as they came.
 */
export function templateValues(dep: CatalogDep, answer: CatalogAnswer): unknown[] {
  const struct = (v: object, type: { type: string; fields: readonly string[] }, ints: readonly string[] = []): object => {
    const copy: Record<string, unknown> = { ...v };
    for (const field of ints) copy[field] = BigInt(Math.trunc(Number(copy[field]) || 0));
    return markStruct(copy, type);
  };
  const check = (c: HealthCheck) => struct(c, TYPES.check);
  switch (dep.kind) {
    case "service":
      return (answer as HealthService[]).map((s) => struct({ ...s, Checks: s.Checks.map(check) }, TYPES.service, ["Port"]));
    case "checks":
      return (answer as HealthCheck[]).map(check);
    case "events":
      return (answer as readonly object[]).map((e) => struct(e, TYPES.events, ["Version", "LTime"]));
    case "services":
      return (answer as readonly object[]).map((s) => struct(s, TYPES.services));
    case "nodes":
      return (answer as readonly object[]).map((n) => struct(n, TYPES.nodes));
  }
}

/** One sync's catalog answers, as renders read them. */
export class CatalogReads implements CatalogAnswers {
  private readonly answers = new Map<string, CatalogAnswer>();
  /** Template values, made on first read of each answer. */
  private readonly values = new Map<string, unknown[]>();
  private readonly missing = new Map<string, CatalogDep>();
  private readonly reads = new Map<string, CatalogDep>();

  constructor(
    answers: Iterable<[string, CatalogAnswer]> = [],
    private readonly fetch?: CatalogFetch,
  ) {
    for (const [key, answer] of answers) this.answers.set(key, answer);
  }

  read(dep: CatalogDep): unknown[] | undefined {
    const key = depKey(dep);
    const known = this.reads.get(key);
    // A dependency whose arguments came from the store once is one for logs to keep quiet about.
    if (!known || (dep.fromStore && !known.fromStore)) this.reads.set(key, dep);
    const answer = this.answers.get(key);
    if (answer === undefined) {
      this.missing.set(key, dep);
      return undefined;
    }
    let values = this.values.get(key);
    if (!values) this.values.set(key, (values = templateValues(dep, answer)));
    return values;
  }

  /** A render starts over: what it reads from here on is what it depends on. */
  startRender(): void {
    this.reads.clear();
  }

  /** The dependencies the last render read, given or missing. */
  used(): CatalogDep[] {
    return [...this.reads.values()];
  }

  /** How many dependencies the last render asked for without an answer, which fetchMissing can get. */
  get pending(): number {
    return this.fetch ? this.missing.size : 0;
  }

  async fetchMissing(): Promise<void> {
    const deps = [...this.missing.values()];
    this.missing.clear();
    if (!this.fetch || deps.length === 0) return;
    for (const [key, answer] of await this.fetch(deps)) this.answers.set(key, answer);
  }
}
