// A TEST DOUBLE of Consul's catalog and health HTTP API, part of test/consul-double.ts: not Consul, and
// not checked against it. Written from Consul's API documentation (/v1/catalog/services,
// /v1/catalog/nodes, /v1/health/service/:service, /v1/health/state/:state, /v1/event/list, blocking
// queries), it serves what the catalog template functions read, with indexes as the documentation
// describes them: each endpoint's X-Consul-Index is the last write to what it lists (the services
// table, the nodes table, one service's instances and checks, the checks table), and an event list's is
// a hash of the newest matching event's ID, which a blocking query waits to see differ, not pass.
// docs/consul.md lists what it leaves out.

export type CheckStatus = "passing" | "warning" | "critical";

/** A node, optionally with one service and checks, as a registration (/v1/catalog/register) describes it. */
export interface Registration {
  node: string;
  address: string;
  /** "dc1" unless set. */
  datacenter?: string;
  nodeId?: string;
  nodeMeta?: Record<string, string>;
  taggedAddresses?: Record<string, string>;
  service?: { id?: string; name: string; tags?: string[]; address?: string; port?: number; meta?: Record<string, string> };
  /** Checks of the service when serviceId is set (an id registered here gets the service's), else of the node. */
  checks?: { id: string; name?: string; status: CheckStatus; output?: string; notes?: string; serviceId?: string }[];
}

interface NodeEntry {
  id: string;
  address: string;
  datacenter: string;
  meta: Record<string, string>;
  taggedAddresses: Record<string, string>;
  index: number;
}

interface ServiceEntry {
  node: string;
  id: string;
  name: string;
  tags: string[];
  address: string;
  port: number;
  meta: Record<string, string>;
  index: number;
}

interface CheckEntry {
  node: string;
  id: string;
  name: string;
  status: string;
  output: string;
  notes: string;
  serviceId: string;
  index: number;
}

interface EventEntry {
  id: string;
  name: string;
  payload: Buffer | null;
  ltime: number;
}

/** How the double answers one catalog request: a body and index now, and whether a blocking query on `waitOn` may answer. */
export interface CatalogQuery {
  status: number;
  /** The body, or a plain-text error. */
  body: unknown;
  index: string;
  /** Whether a blocking query waiting on `waitOn` is answered now. */
  passed(waitOn: string): boolean;
}

const DEFAULT_DC = "dc1";

/** The parameters each catalog endpoint takes here; others are answered 400, as the KV endpoints' are. */
const PARAMS: Record<string, ReadonlySet<string>> = {
  services: new Set(["index", "wait", "token", "dc"]),
  nodes: new Set(["index", "wait", "token", "dc"]),
  service: new Set(["index", "wait", "token", "dc", "passing", "tag"]),
  state: new Set(["index", "wait", "token"]),
  events: new Set(["index", "wait", "token", "name"]),
};

export class CatalogDouble {
  private readonly nodes = new Map<string, NodeEntry>();
  private readonly services = new Map<string, ServiceEntry>();
  private readonly checks = new Map<string, CheckEntry>();
  private readonly events: EventEntry[] = [];
  private servicesIndex = 0;
  private nodesIndex = 0;
  private checksIndex = 0;
  /** Per service name: the last write to its instances or their checks (deregistrations too). */
  private readonly serviceIndex = new Map<string, number>();

  /** `write` moves the double's one Raft index and returns it, and wakes held queries once the change is in. */
  constructor(private readonly write: (change: (index: number) => void) => void) {}

  register(r: Registration): void {
    this.write((index) => {
      const dc = r.datacenter ?? DEFAULT_DC;
      const old = this.nodes.get(r.node);
      this.nodes.set(r.node, {
        id: r.nodeId ?? old?.id ?? "",
        address: r.address,
        datacenter: dc,
        meta: r.nodeMeta ?? old?.meta ?? {},
        taggedAddresses: r.taggedAddresses ?? old?.taggedAddresses ?? {},
        index,
      });
      this.nodesIndex = index;
      if (r.service) {
        const s = r.service;
        const id = s.id ?? s.name;
        this.services.set(`${r.node}/${id}`, { node: r.node, id, name: s.name, tags: s.tags ?? [], address: s.address ?? "", port: s.port ?? 0, meta: s.meta ?? {}, index });
        this.servicesIndex = index;
        this.serviceIndex.set(s.name, index);
      }
      for (const c of r.checks ?? []) this.putCheck(r.node, c.id, c.status, index, c);
      // A node's check or address counts for every service on it.
      for (const s of this.services.values()) if (s.node === r.node) this.serviceIndex.set(s.name, index);
    });
  }

  /** Removes a service instance and its checks; without a service id, the node with everything on it. */
  deregister(node: string, serviceId?: string): void {
    this.write((index) => {
      for (const [key, s] of this.services) {
        if (s.node !== node || (serviceId !== undefined && s.id !== serviceId)) continue;
        this.services.delete(key);
        this.serviceIndex.set(s.name, index);
        this.servicesIndex = index;
      }
      for (const [key, c] of this.checks) {
        if (c.node !== node || (serviceId !== undefined && c.serviceId !== serviceId)) continue;
        this.checks.delete(key);
        this.checksIndex = index;
      }
      if (serviceId === undefined && this.nodes.delete(node)) this.nodesIndex = index;
    });
  }

  /** Sets a check's status (and output), as an agent reports it. */
  setCheck(node: string, checkId: string, status: CheckStatus, output = ""): void {
    const check = this.checks.get(`${node}/${checkId}`);
    if (!check) throw new Error(`no check ${checkId} on ${node}`);
    this.write((index) => {
      this.putCheck(node, checkId, status, index, { name: check.name, output, notes: check.notes, serviceId: check.serviceId });
      for (const s of this.services.values()) if (s.node === node && (check.serviceId === "" || s.id === check.serviceId)) this.serviceIndex.set(s.name, index);
    });
  }

  /** Fires a user event (the agent's /v1/event/fire/:name); its ID is deterministic, its index a 64-bit hash of it. */
  fireEvent(name: string, payload?: string | Buffer): { id: string; index: string } {
    const n = this.events.length + 1;
    // Consul's IDs are random; these are not, and their hash (high 64 bits XOR low 64 bits) is above 2^53.
    const id = `ffffffff-ffff-fff0-0000-${n.toString(16).padStart(12, "0")}`;
    this.write(() => {
      this.events.push({ id, name, payload: payload === undefined ? null : Buffer.from(payload), ltime: n });
    });
    return { id, index: eventIndex(id) };
  }

  /** The answer to a GET of `path` (below /v1), or undefined when it is no catalog endpoint of the double. */
  query(path: string, query: Record<string, string>): CatalogQuery | undefined {
    const endpoint = route(path);
    if (!endpoint) return undefined;
    const unknown = Object.keys(query).filter((p) => !PARAMS[endpoint.kind]!.has(p));
    if (unknown.length > 0) return plain(400, `this Consul double does not implement ?${unknown.join(", ?")}`);
    const dc = query.dc ?? DEFAULT_DC;
    if (dc !== DEFAULT_DC && ![...this.nodes.values()].some((n) => n.datacenter === dc)) return plain(500, "No path to datacenter");
    const inDc = (node: string) => (this.nodes.get(node)?.datacenter ?? DEFAULT_DC) === dc;
    const raft = (index: number, body: unknown): CatalogQuery => {
      const at = Math.max(index, 1);
      return { status: 200, body, index: String(at), passed: (waitOn) => at > Number(waitOn) };
    };
    switch (endpoint.kind) {
      case "services": {
        const body: Record<string, string[]> = {};
        for (const s of this.services.values()) if (inDc(s.node)) body[s.name] = [...new Set([...(body[s.name] ?? []), ...s.tags])];
        return raft(this.servicesIndex, body);
      }
      case "nodes":
        return raft(
          this.nodesIndex,
          [...this.nodes].filter(([name]) => inDc(name)).map(([name, n]) => this.nodeJson(name, n)),
        );
      case "service": {
        const entries = [...this.services.values()]
          .filter((s) => s.name === endpoint.arg && inDc(s.node) && (query.tag === undefined || s.tags.includes(query.tag)))
          .map((s) => ({ Node: this.nodeJson(s.node, this.nodes.get(s.node)!), Service: serviceJson(s), Checks: this.checksOf(s).map(checkJson) }))
          // ?passing: only instances whose every check passes (a warning does not).
          .filter((e) => !("passing" in query && query.passing !== "false") || e.Checks.every((c) => c.Status === "passing"));
        return raft(this.serviceIndex.get(endpoint.arg) ?? this.servicesIndex, entries);
      }
      case "state": {
        if (!["any", "passing", "warning", "critical"].includes(endpoint.arg)) return plain(400, `Bad state ${endpoint.arg}`);
        const checks = [...this.checks.values()].filter((c) => endpoint.arg === "any" || c.status === endpoint.arg).map((c) => checkJson(this.checkView(c)));
        return raft(this.checksIndex, checks);
      }
      case "events": {
        const matching = this.events.filter((e) => query.name === undefined || e.name === query.name);
        const newest = matching.at(-1);
        // Consul answers 1 when no event matches, so that a watch on a name never fired does not spin.
        const index = newest ? eventIndex(newest.id) : "1";
        const body = matching.map((e) => ({
          ID: e.id,
          Name: e.name,
          Payload: e.payload === null ? null : e.payload.toString("base64"),
          NodeFilter: "",
          ServiceFilter: "",
          TagFilter: "",
          Version: 1,
          LTime: e.ltime,
        }));
        // Not an order: a blocking query waits for the newest event to be another one.
        return { status: 200, body, index, passed: (waitOn) => index !== waitOn };
      }
    }
  }

  private putCheck(node: string, id: string, status: string, index: number, c: { name?: string; output?: string; notes?: string; serviceId?: string }): void {
    this.checks.set(`${node}/${id}`, { node, id, name: c.name ?? id, status, output: c.output ?? "", notes: c.notes ?? "", serviceId: c.serviceId ?? "", index });
    this.checksIndex = index;
  }

  /** A service instance's checks: the node's own, and its service's. */
  private checksOf(s: ServiceEntry): ReturnType<CatalogDouble["checkView"]>[] {
    return [...this.checks.values()].filter((c) => c.node === s.node && (c.serviceId === "" || c.serviceId === s.id)).map((c) => this.checkView(c));
  }

  private checkView(c: CheckEntry): CheckEntry & { serviceName: string; serviceTags: string[] } {
    const s = c.serviceId === "" ? undefined : this.services.get(`${c.node}/${c.serviceId}`);
    return { ...c, serviceName: s?.name ?? "", serviceTags: s?.tags ?? [] };
  }

  private nodeJson(name: string, n: NodeEntry) {
    return { ID: n.id, Node: name, Address: n.address, Datacenter: n.datacenter, TaggedAddresses: n.taggedAddresses, Meta: n.meta, CreateIndex: n.index, ModifyIndex: n.index };
  }
}

function serviceJson(s: ServiceEntry) {
  return {
    ID: s.id,
    Service: s.name,
    Tags: s.tags,
    Address: s.address,
    Meta: s.meta,
    Port: s.port,
    Weights: { Passing: 1, Warning: 1 },
    EnableTagOverride: false,
    CreateIndex: s.index,
    ModifyIndex: s.index,
  };
}

function checkJson(c: CheckEntry & { serviceName: string; serviceTags: string[] }) {
  return {
    Node: c.node,
    CheckID: c.id,
    Name: c.name,
    Status: c.status,
    Notes: c.notes,
    Output: c.output,
    ServiceID: c.serviceId,
    ServiceName: c.serviceName,
    ServiceTags: c.serviceTags,
    CreateIndex: c.index,
    ModifyIndex: c.index,
  };
}

function route(path: string): { kind: string; arg: string } | undefined {
  if (path === "/v1/catalog/services") return { kind: "services", arg: "" };
  if (path === "/v1/catalog/nodes") return { kind: "nodes", arg: "" };
  if (path === "/v1/event/list") return { kind: "events", arg: "" };
  const m = /^\/v1\/health\/(service|state)\/([^/]+)$/.exec(path);
  return m ? { kind: m[1]!, arg: m[2]! } : undefined;
}

function plain(status: number, message: string): CatalogQuery {
  return { status, body: message, index: "", passed: () => true };
}

/** Consul's uuidToUint64: the ID's first 64 bits XOR its last 64, in decimal. */
export function eventIndex(id: string): string {
  const hex = id.replace(/-/g, "");
  return (BigInt(`0x${hex.slice(0, 16)}`) ^ BigInt(`0x${hex.slice(16)}`)).toString();
}
