// A TEST DOUBLE of Consul's KV HTTP API (and, in test/consul-catalog-double.ts, of its catalog): not
// Consul, and not checked against it. Written from Consul's
// API documentation (the /v1/kv endpoints, blocking queries, ACL tokens) so that the consul backend can
// be tested without a Consul binary, it implements what the backend uses and what its tests need to
// provoke: an index that moves for keys outside a watched prefix (Consul's recurse is a raw string
// prefix), an index that goes backwards (a snapshot restore), a missing or wrong token, a node going
// away and coming back on the same port. docs/consul.md lists what it leaves out (ACL policies,
// sessions, CAS, datacenters, consistency modes, ...).
import type { Server } from "bun";
import { CatalogDouble } from "./consul-catalog-double.ts";

export interface ConsulDoubleOptions {
  /** When set, every request must carry this ACL token (X-Consul-Token, Authorization: Bearer or ?token=); 403 otherwise. */
  token?: string;
  /** PEM certificate and key: serve HTTPS. */
  tls?: { cert: string; key: string };
}

export interface RecordedRequest {
  method: string;
  /** The decoded path: "/v1/kv/app/x". */
  path: string;
  query: Record<string, string>;
  /** Header names in lower case. */
  headers: Record<string, string>;
  /** How the request ended: answered, or given up by the client (or the server stopped) before an answer. */
  ended: Promise<"answered" | "abandoned">;
}

export interface ConsulDouble {
  /** "http://127.0.0.1:port" (https with options.tls). */
  readonly url: string;
  /** "127.0.0.1:port", as a confd node. */
  readonly node: string;
  readonly port: number;
  /** The KV table's index: raised by every write. */
  readonly index: number;
  /** Every request received, in order. */
  readonly requests: readonly RecordedRequest[];
  /** The service catalog, health checks and events (test/consul-catalog-double.ts), which share the KV table's index. */
  readonly catalog: CatalogDouble;
  /** Writes a key (a leading "/" is dropped, as Consul keys have none); "" stores an empty value. */
  set(key: string, value: string): void;
  delete(key: string, options?: { recurse?: boolean }): void;
  /**
   * Moves the index back to `n`, as a snapshot restore or a leader change to a server that lost writes
   * can: no stored index stays above n, and every held blocking query is answered at once.
   */
  resetIndex(n: number): void;
  /** The first request, received already or to come, that `test` accepts. */
  waitForRequest(test: (r: RecordedRequest) => boolean): Promise<RecordedRequest>;
  /** Closes the listener and every connection, held blocking queries included. */
  stop(): Promise<void>;
  /** Listens again on the same port, with the same data. */
  restart(): void;
}

interface Entry {
  value: Buffer;
  flags: number;
  createIndex: number;
  modifyIndex: number;
}

interface HeldQuery {
  /** Answers if the query's index has passed the one it waits on, or at once with `force`. */
  poke(force: boolean): void;
  abandon(): void;
}

const IMPLEMENTED_PARAMS = new Set(["recurse", "index", "wait", "token", "flags"]);
/** Consul's default and maximum for `wait`. */
const DEFAULT_WAIT_MS = 5 * 60_000;
const MAX_WAIT_MS = 10 * 60_000;

export function startConsulDouble(options: ConsulDoubleOptions = {}): ConsulDouble {
  return new Double(options);
}

class Double implements ConsulDouble {
  index = 1;
  readonly requests: RecordedRequest[] = [];
  readonly catalog = new CatalogDouble((change) => {
    this.index++;
    change(this.index);
    this.wake();
  });
  private readonly entries = new Map<string, Entry>();
  /** Deleted keys and the index of their deletion, which counts for the index of a listing, as in Consul. */
  private readonly tombstones = new Map<string, number>();
  private readonly held = new Set<HeldQuery>();
  private readonly requestWaiters: { test: (r: RecordedRequest) => boolean; resolve: (r: RecordedRequest) => void }[] = [];
  private server: Server<undefined>;
  readonly port: number;

  constructor(private readonly options: ConsulDoubleOptions) {
    this.server = this.listen(0);
    this.port = this.server.port!;
  }

  get url(): string {
    return `${this.options.tls ? "https" : "http"}://127.0.0.1:${this.port}`;
  }

  get node(): string {
    return `127.0.0.1:${this.port}`;
  }

  set(key: string, value: string): void {
    this.put(key.replace(/^\/+/, ""), Buffer.from(value), 0);
  }

  delete(key: string, options: { recurse?: boolean } = {}): void {
    this.remove(key.replace(/^\/+/, ""), options.recurse ?? false);
  }

  resetIndex(n: number): void {
    this.index = n;
    for (const entry of this.entries.values()) {
      entry.createIndex = Math.min(entry.createIndex, n);
      entry.modifyIndex = Math.min(entry.modifyIndex, n);
    }
    this.tombstones.clear();
    for (const q of [...this.held]) q.poke(true);
  }

  waitForRequest(test: (r: RecordedRequest) => boolean): Promise<RecordedRequest> {
    const seen = this.requests.find(test);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve) => this.requestWaiters.push({ test, resolve }));
  }

  async stop(): Promise<void> {
    for (const q of [...this.held]) q.abandon();
    await this.server.stop(true);
  }

  restart(): void {
    this.server = this.listen(this.port);
  }

  private listen(port: number): Server<undefined> {
    return Bun.serve({
      hostname: "127.0.0.1",
      port,
      // Blocking queries are held for minutes; Bun's default would close them after 10 s of silence.
      idleTimeout: 0,
      tls: this.options.tls,
      fetch: (req) => this.handle(req),
    });
  }

  private async handle(req: Request): Promise<Response> {
    const url = new URL(req.url);
    let answered!: (how: "answered" | "abandoned") => void;
    const record: RecordedRequest = {
      method: req.method,
      path: safeDecode(url.pathname),
      query: Object.fromEntries(url.searchParams),
      headers: Object.fromEntries([...req.headers].map(([k, v]) => [k.toLowerCase(), v])),
      ended: new Promise((resolve) => (answered = resolve)),
    };
    this.requests.push(record);
    for (let i = this.requestWaiters.length - 1; i >= 0; i--) {
      const waiter = this.requestWaiters[i]!;
      if (waiter.test(record)) {
        this.requestWaiters.splice(i, 1);
        waiter.resolve(record);
      }
    }
    const response = await this.answer(req, url, record);
    answered(response === undefined ? "abandoned" : "answered");
    return response ?? new Response(null, { status: 503 });
  }

  /** The response, or undefined when the request was given up before one. */
  private async answer(req: Request, url: URL, record: RecordedRequest): Promise<Response | undefined> {
    const catalog = req.method === "GET" ? this.catalog.query(record.path, record.query) : undefined;
    if (catalog) {
      const denied = this.checkToken(req, record.query);
      if (denied) return denied;
      if (catalog.status !== 200) return text(catalog.status, String(catalog.body));
      // Asked again at each poke: the answer as it is then.
      const now = () => this.catalog.query(record.path, record.query)!;
      return this.block(
        record.query,
        req.signal,
        (waitOn) => now().passed(waitOn),
        () => {
          const q = now();
          return json(q.status, q.body, q.index);
        },
      );
    }
    if (!url.pathname.startsWith("/v1/kv/") && url.pathname !== "/v1/kv") return text(404, "Invalid URL path: not an endpoint of this double");
    const denied = this.checkToken(req, record.query);
    if (denied) return denied;
    // Consul would honour these (or others: ?raw, ?keys, ?cas, ?dc, ?stale...); this double does not, and says so.
    const unknown = Object.keys(record.query).filter((p) => !IMPLEMENTED_PARAMS.has(p));
    if (unknown.length > 0) return text(400, `this Consul double does not implement ?${unknown.join(", ?")}`);
    // Consul's keys carry no leading "/"; a client encodes the key's "/" as %2F or not, both mean the same.
    const key = safeDecode(url.pathname.slice("/v1/kv/".length));
    const recurse = "recurse" in record.query;
    switch (req.method) {
      case "GET":
        return this.get(key, recurse, record.query, req.signal);
      case "PUT": {
        const flags = Number(record.query.flags ?? 0);
        this.put(key, Buffer.from(await req.arrayBuffer()), Number.isFinite(flags) ? flags : 0);
        return json(200, true, this.index);
      }
      case "DELETE":
        this.remove(key, recurse);
        return json(200, true, this.index);
      default:
        return text(405, `method ${req.method} not allowed`);
    }
  }

  private checkToken(req: Request, query: Record<string, string>): Response | undefined {
    if (this.options.token === undefined) return undefined;
    const bearer = /^Bearer (.+)$/.exec(req.headers.get("authorization") ?? "")?.[1];
    const given = req.headers.get("x-consul-token") ?? bearer ?? query.token;
    if (given === this.options.token) return undefined;
    // Consul: an unknown token is "ACL not found"; no token is the anonymous one, denied here.
    return text(403, given ? "ACL not found" : "Permission denied");
  }

  private get(key: string, recurse: boolean, query: Record<string, string>, signal: AbortSignal): Response | Promise<Response | undefined> {
    // A blocking query answers as soon as its index passes the one it waits on.
    return this.block(
      query,
      signal,
      (waitOn) => this.read(key, recurse).index > Number(waitOn),
      () => this.listing(key, recurse),
    );
  }

  /**
   * A blocking query: answered at once without an index (or index=0), or once `passed` says the index it
   * waits on is passed, or when its wait elapses; undefined when the client gives up first.
   */
  private block(query: Record<string, string>, signal: AbortSignal, passed: (waitOn: string) => boolean, respond: () => Response): Response | Promise<Response | undefined> {
    const waitOn = query.index ?? "0";
    if (!/^\d+$/.test(waitOn) || /^0+$/.test(waitOn) || passed(waitOn)) return respond();
    const wait = query.wait === undefined ? DEFAULT_WAIT_MS : parseWait(query.wait);
    if (wait === undefined) return text(400, "Invalid wait time");
    return new Promise((resolve) => {
      const finish = (response: Response | undefined) => {
        clearTimeout(timer);
        signal.removeEventListener("abort", onAbort);
        this.held.delete(held);
        resolve(response);
      };
      const held: HeldQuery = {
        poke: (force) => {
          if (force || passed(waitOn)) finish(respond());
        },
        abandon: () => finish(undefined),
      };
      const onAbort = () => held.abandon();
      const timer = setTimeout(() => finish(respond()), Math.min(wait, MAX_WAIT_MS));
      signal.addEventListener("abort", onAbort, { once: true });
      this.held.add(held);
    });
  }

  private listing(key: string, recurse: boolean): Response {
    const { index, entries } = this.read(key, recurse);
    if (entries.length === 0) return json(404, undefined, index);
    return json(
      200,
      entries.map(([k, e]) => ({
        LockIndex: 0,
        Key: k,
        Flags: e.flags,
        // Consul gives null, not "", for a key without a value.
        Value: e.value.length === 0 ? null : e.value.toString("base64"),
        CreateIndex: e.createIndex,
        ModifyIndex: e.modifyIndex,
      })),
      index,
    );
  }

  /**
   * The entries a read returns, sorted, and its X-Consul-Index: for a listing, the highest index of the
   * entries and deletions under the raw prefix (so "app" moves with "application"), else the table's.
   */
  private read(key: string, recurse: boolean): { index: number; entries: [string, Entry][] } {
    const matches = (k: string) => (recurse ? k.startsWith(key) : k === key);
    const entries = [...this.entries].filter(([k]) => matches(k)).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    let index = 0;
    for (const [, e] of entries) index = Math.max(index, e.modifyIndex);
    for (const [k, at] of this.tombstones) if (matches(k)) index = Math.max(index, at);
    return { index: key === "" || index === 0 ? this.index : index, entries };
  }

  private put(key: string, value: Buffer, flags: number): void {
    this.index++;
    const existing = this.entries.get(key);
    this.entries.set(key, { value, flags, createIndex: existing?.createIndex ?? this.index, modifyIndex: this.index });
    this.tombstones.delete(key);
    this.wake();
  }

  private remove(key: string, recurse: boolean): void {
    const doomed = [...this.entries.keys()].filter((k) => (recurse ? k.startsWith(key) : k === key));
    if (doomed.length === 0) return;
    this.index++;
    for (const k of doomed) {
      this.entries.delete(k);
      this.tombstones.set(k, this.index);
    }
    this.wake();
  }

  private wake(): void {
    for (const q of [...this.held]) q.poke(false);
  }
}

function json(status: number, body: unknown, index: number | string): Response {
  return new Response(body === undefined ? null : JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json", "x-consul-index": String(index), "x-consul-knownleader": "true", "x-consul-lastcontact": "0" },
  });
}

function text(status: number, message: string): Response {
  return new Response(message, { status, headers: { "content-type": "text/plain; charset=utf-8" } });
}

/** Consul's wait, a Go duration with one unit here: "10s", "5m", "100ms". */
function parseWait(wait: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(wait);
  if (!m) return undefined;
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2]!]!;
  return Number(m[1]) * unit;
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}
