// Where a networked store's nodes come from: -node, or DNS SRV records (-srv-record, or -srv-domain
// giving confd's name _<backend>._tcp.<domain>.). This module owns the lookup (the system resolver,
// /etc/resolv.conf), the order of the records (RFC 2782: priority, then weight), their spelling as each
// backend's -node, and looking them up again when a backend has found every node failing. A backend
// receives a NodeSource and asks it for the nodes; it decides when every node has failed, since only
// it knows how it moves between them.
import { ConfdError } from "./errors.ts";
import { log } from "./log.ts";
import { OPTIONS, type Config } from "./options.ts";

export interface NodeSource {
  /** The nodes to use, best first, spelt as the backend's -node; the same array until a refresh changes it. */
  current(): readonly string[];
  /**
   * Every node has failed: look them up again. Resolves with whether current() changed. Never
   * rejects: a failed lookup keeps the nodes (with a warning). Calls made while a lookup runs share
   * it, and calls within REFRESH_FLOOR_MS of the last lookup are answered from it (false), so that
   * the stores' several retry loops cost one lookup per backoff step between them.
   */
  refresh(): Promise<boolean>;
}

/** What a backend's connect() takes besides Config. */
export interface NodeOptions {
  /** Default: config.nodes, never looked up again. */
  nodes?: NodeSource;
}

/** One answer of an SRV lookup, as node:dns gives it. */
export interface SrvRecord {
  name: string;
  port: number;
  priority: number;
  weight: number;
}

/** Looks up the SRV records of a name; rejects with node:dns's errors (their `code`: ENOTFOUND, ETIMEOUT, ...). */
export type SrvLookup = (name: string) => Promise<SrvRecord[]>;

export interface SrvOptions {
  lookup?: SrvLookup;
  /**
   * Picks among records of one priority by weight (RFC 2782), as Go's net.LookupSRV does: a number
   * in [0, 1). Math.random by default; tests pass their own to get a known order.
   */
  random?: () => number;
  /** Milliseconds, for the refresh floor. */
  now?: () => number;
}

/** A second lookup within this long of the previous one is not made. */
const REFRESH_FLOOR_MS = 1_000;
/**
 * c-ares's defaults wait about 25 s for a DNS server that does not answer; confd waits for it at
 * start, and a retry loop on every backoff step. Go's resolver defaults to 5 s and 2 tries.
 */
const LOOKUP_TIMEOUT_MS = 2_000;
const LOOKUP_TRIES = 2;

/** The nodes as given with -node (possibly none: the backend's default), never looked up again. */
export function fixedNodes(nodes: readonly string[]): NodeSource {
  return { current: () => nodes, refresh: async () => false };
}

/** The stores -srv-record and -srv-domain apply to: the option table says. */
const SRV_BACKENDS: readonly string[] = OPTIONS.find((o) => o.field === "srvRecord")?.backends ?? [];

interface Query {
  /** The DNS name looked up. */
  name: string;
  /** The option that gave it, for messages. */
  flag: string;
  spell: (host: string, port: number) => string;
}

/**
 * The nodes for config's backend: from SRV records when -srv-record or -srv-domain is set (and the
 * backend reads them), else -node. Rejects with a ConfdError naming the flag when the lookup fails
 * or finds no usable record.
 */
export async function nodeSource(config: Config, options: SrvOptions = {}): Promise<NodeSource> {
  const query = srvQuery(config);
  if (!query) return fixedNodes(config.nodes);
  // confd lets the records replace -node; said here, so the ignored option is not silent.
  if (config.nodes.length > 0) log.warning(`-node is ignored: the nodes come from the SRV record ${query.name} (${query.flag})`);
  if (config.srvRecord && config.srvDomain) log.warning(`-srv-domain is ignored: -srv-record names the SRV record`);
  const lookup = options.lookup ?? systemLookup;
  const random = options.random ?? Math.random;
  const now = options.now ?? (() => performance.now());
  const nodes = await resolveNodes(query, lookup, random);
  log.info(`SRV record ${query.name} gives the nodes ${nodes.join(", ")}`);
  return new SrvNodes(query, nodes, lookup, random, now);
}

function srvQuery(config: Config): Query | undefined {
  // Another backend was told with a warning (config.ts) that it does not read them.
  if (!SRV_BACKENDS.includes(config.backend) || (!config.srvRecord && !config.srvDomain)) return undefined;
  const spell = spelling(config);
  const [flag, given] = config.srvRecord ? ["-srv-record", config.srvRecord] : ["-srv-domain", config.srvDomain];
  // Quoted as JSON: the text may hold anything, a line break included, and messages are one line.
  if (!isHostName(given)) throw new ConfdError(`${JSON.stringify(given)} is not a DNS name`, { flag });
  if (config.srvRecord) return { name: config.srvRecord, flag, spell };
  return { name: `_${config.backend}._tcp.${config.srvDomain.replace(/\.$/, "")}.`, flag, spell };
}

/**
 * A record's target as the backend's -node. Vault takes a URL; consul applies -scheme (or TLS) to a
 * bare host:port itself; etcd makes a bare host:port https when given TLS files, so -scheme https is
 * written out and http left to that rule; redis and zookeeper have no scheme.
 */
function spelling(config: Config): (host: string, port: number) => string {
  const uses = OPTIONS.find((o) => o.field === "scheme")?.backends ?? [];
  if (uses.includes(config.backend) && config.scheme !== "http" && config.scheme !== "https") {
    throw new ConfdError(`unknown scheme "${config.scheme}" (http, https)`, { flag: "-scheme" });
  }
  switch (config.backend) {
    case "vault":
      return (host, port) => `${config.scheme}://${host}:${port}`;
    case "etcd":
    case "etcdv3":
      return (host, port) => (config.scheme === "https" ? `https://${host}:${port}` : `${host}:${port}`);
    default:
      return (host, port) => `${host}:${port}`;
  }
}

class SrvNodes implements NodeSource {
  private pending: Promise<boolean> | undefined;
  private lookedUpAt: number;
  /** The last refresh failed: the next failure is logged at debug level only. */
  private failing = false;

  constructor(
    private readonly query: Query,
    private nodes: readonly string[],
    private readonly lookup: SrvLookup,
    private readonly random: () => number,
    private readonly now: () => number,
  ) {
    this.lookedUpAt = now();
  }

  current(): readonly string[] {
    return this.nodes;
  }

  refresh(): Promise<boolean> {
    if (this.pending) return this.pending;
    if (this.now() - this.lookedUpAt < REFRESH_FLOOR_MS) return Promise.resolve(false);
    this.pending = this.lookUpAgain().finally(() => {
      this.pending = undefined;
      this.lookedUpAt = this.now();
    });
    return this.pending;
  }

  private async lookUpAgain(): Promise<boolean> {
    let nodes: string[];
    try {
      nodes = await resolveNodes(this.query, this.lookup, this.random);
    } catch (err) {
      const why = err instanceof ConfdError ? err.message : String(err);
      (this.failing ? log.debug : log.warning)(`every node failed, and looking the nodes up again did not work: ${why}; keeping ${this.nodes.join(", ")}`);
      this.failing = true;
      return false;
    }
    this.failing = false;
    if (nodes.length === this.nodes.length && nodes.every((n, i) => n === this.nodes[i])) {
      log.debug(`every node failed; SRV record ${this.query.name} still gives ${nodes.join(", ")}`);
      return false;
    }
    log.info(`every node failed; SRV record ${this.query.name} now gives the nodes ${nodes.join(", ")}`);
    this.nodes = nodes;
    return true;
  }
}

/** The query's records, in order, as nodes; a ConfdError naming the flag when there are none to use. */
async function resolveNodes(query: Query, lookup: SrvLookup, random: () => number): Promise<string[]> {
  const fail = (why: string) => new ConfdError(`cannot get nodes from the SRV record ${query.name}: ${why}`, { flag: query.flag });
  let records: SrvRecord[];
  try {
    records = await lookup(query.name);
  } catch (err) {
    throw fail(lookupFailure(err));
  }
  // RFC 2782: a lone record with the target "." says the service is decidedly not available there.
  if (records.length === 1 && records[0]!.name.replace(/\.$/, "") === "") throw fail('the record says the service is not available there (target ".")');
  const usable = records.filter((r) => isHostName(r.name) && Number.isInteger(r.port) && r.port > 0 && r.port <= 65535);
  if (usable.length < records.length) log.warning(`SRV record ${query.name}: ${records.length - usable.length} of ${records.length} records have no usable target or port; left out`);
  if (usable.length === 0) throw fail(records.length === 0 ? "no records" : "no record has a usable target and port");
  const nodes = orderSrv(usable, random).map((r) => query.spell(r.name.replace(/\.$/, ""), r.port));
  return [...new Set(nodes)];
}

function lookupFailure(err: unknown): string {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  switch (code) {
    case "ENOTFOUND":
    case "ENODATA":
      return `no such name, or no SRV records (${code})`;
    case "ETIMEOUT":
    case "ECONNREFUSED":
      return `no answer from the DNS server (${code})`;
    case "EREFUSED":
      return `the DNS server refused the query (${code})`;
    case "ESERVFAIL":
      return `the DNS server failed (${code})`;
    default:
      return code ?? (err instanceof Error ? err.message : String(err));
  }
}

/** A DNS name as Go's resolver accepts one (an SRV target, say): labels of letters, digits, "-" and "_", one trailing dot allowed. */
function isHostName(name: string): boolean {
  const bare = name.replace(/\.$/, "");
  return bare.length > 0 && bare.length <= 253 && bare.split(".").every((label) => /^[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$/.test(label));
}

/**
 * RFC 2782's order: lower priority first; among equal priorities, picked one at a time with
 * probability proportional to weight, records of weight 0 last. Records are first sorted by
 * priority, weight, target and port, so the order depends on the records and `random` alone, not on
 * the order the DNS server sent them in.
 */
export function orderSrv(records: readonly SrvRecord[], random: () => number): SrvRecord[] {
  const sorted = [...records].sort((a, b) => a.priority - b.priority || a.weight - b.weight || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0) || a.port - b.port);
  const out: SrvRecord[] = [];
  for (let start = 0; start < sorted.length; ) {
    let end = start;
    while (end < sorted.length && sorted[end]!.priority === sorted[start]!.priority) end++;
    const group = sorted.slice(start, end);
    let total = group.reduce((sum, r) => sum + r.weight, 0);
    while (total > 0) {
      const point = random() * total;
      let running = 0;
      // The first record whose running sum passes the point; the last one with weight if rounding runs past.
      let chosen = group.findIndex((r) => (running += r.weight) > point);
      if (chosen < 0) chosen = group.findLastIndex((r) => r.weight > 0);
      const [picked] = group.splice(chosen, 1);
      out.push(picked!);
      total -= picked!.weight;
    }
    out.push(...group);
    start = end;
  }
  return out;
}

let resolver: import("node:dns/promises").Resolver | undefined;

/** The system resolver's servers (/etc/resolv.conf), with a bounded wait. node:dns is loaded only here. */
async function systemLookup(name: string): Promise<SrvRecord[]> {
  const { Resolver } = await import("node:dns/promises");
  resolver ??= new Resolver({ timeout: LOOKUP_TIMEOUT_MS, tries: LOOKUP_TRIES });
  return resolver.resolveSrv(name);
}
