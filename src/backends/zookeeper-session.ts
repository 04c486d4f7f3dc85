// The zookeeper backend's session (./zookeeper.ts has the key mapping): a node-zookeeper-client client,
// replaced by a new one when the server expires its session or none can be had; requests bounded by a
// deadline, with errors that name the nodes (and a node's path, never its data); and a watchdog for
// connections that stop answering, which the library never notices by itself.
import type { Socket } from "node:net";
import { createClient, Exception, type Client, type Watcher, type ZkException } from "node-zookeeper-client";
import { ConfdError } from "../errors.ts";
import { log } from "../log.ts";

/** The bound on a request, and on waiting for a connection, before the store counts as unreachable. */
export const DEADLINE_MS = 5_000;
/**
 * Asked of the server, which grants a value within its own bounds (4 s to 40 s by default). The
 * session, and with it the watches, outlives a server restart or a move to another node within it.
 */
const SESSION_TIMEOUT_MS = 10_000;
/** After every node failed to connect, the library waits up to this long before the next round. */
const SPIN_DELAY_MS = 1_000;
/** How often the watchdog looks at the connection (see ZkSession.check). */
const WATCHDOG_MS = 2_500;

/** What a session tells the feeds on it. */
export interface SessionListener {
  connected(): void;
  disconnected(): void;
  /** The session is gone (`why`), and its watches with it; a new one is being opened. */
  expired(why: string): void;
}

interface ReadyWaiter {
  resolve(): void;
  reject(err: unknown): void;
}

/**
 * The session: a node-zookeeper-client client, replaced when its session is over, with requests
 * bounded by the deadline and errors that name the nodes (and a node's path, never its data).
 */
export class ZkSession {
  private client: Client;
  /** Connections made so far: a request's failure from an earlier one is not news. */
  epoch = 0;
  private up = false;
  private closed = false;
  /** Why the last connection was dropped here: what callers are told if none comes up in time. */
  private problem: string | undefined;
  readonly listeners = new Set<SessionListener>();
  private readonly waiters = new Set<ReadyWaiter>();
  private readonly watchdog: ReturnType<typeof setInterval>;
  /** The connection attempt the watchdog saw unanswered last time. */
  private attempt: Socket | undefined;
  /** When the server last sent anything on the current connection. */
  private lastHeard = 0;
  /** When the session last lost its connection (or started without one). */
  private downSince = performance.now();
  /** Clients given up (expired, abandoned, or closed before connecting): they must not connect again. */
  private readonly retired = new WeakSet<Client>();

  /** A new session's replacement is waiting on a lookup of the nodes. */
  private lookingUp = false;

  /**
   * `relookup`: when no node gave a session for as long as one lasts, the nodes as SRV records name them
   * now, or undefined when they did not change (fixed -node lists never do).
   */
  constructor(
    private nodes: readonly string[],
    private readonly relookup: () => Promise<readonly string[] | undefined> = async () => undefined,
  ) {
    this.client = this.open();
    this.watchdog = setInterval(() => this.check(), WATCHDOG_MS);
    this.watchdog.unref();
  }

  private open(): Client {
    const client = createClient(this.nodes.join(","), { sessionTimeout: SESSION_TIMEOUT_MS, spinDelay: SPIN_DELAY_MS, retries: 0 });
    // Reports from a client that was replaced (expired) or closed are not ours any more.
    const current = () => this.client === client && !this.closed;
    this.harden(client);
    client.on("connected", () => {
      if (!current()) return;
      this.up = true;
      this.problem = undefined;
      this.lastHeard = performance.now();
      this.epoch++;
      log.debug(`zookeeper: connected (session 0x${sessionId(client)}, timeout ${client.getSessionTimeout()} ms)`);
      for (const waiter of this.waiters) waiter.resolve();
      for (const listener of this.listeners) listener.connected();
    });
    client.on("disconnected", () => {
      if (!current() || !this.up) return;
      this.up = false;
      this.downSince = performance.now();
      log.debug("zookeeper: disconnected; reconnecting");
      for (const listener of this.listeners) listener.disconnected();
    });
    client.on("expired", () => {
      if (current()) this.replace("the session expired");
    });
    client.connect();
    return client;
  }

  /** A new client, with a new session: the old one's watches are gone, and the feeds start over. */
  private replace(why: string): void {
    log.debug(`zookeeper: ${why}; opening a new session`);
    this.retire(this.client);
    this.up = false;
    this.downSince = performance.now();
    this.client = this.open();
    for (const listener of this.listeners) listener.expired(why);
  }

  /** Every node failed for a session's length: a new session, on the nodes SRV records name now if they moved. */
  private async renew(why: string): Promise<void> {
    this.lookingUp = true;
    try {
      const nodes = await this.relookup();
      if (nodes) this.nodes = nodes;
    } catch {
      // The lookup's own failure is logged by the node source; the nodes stay as they were.
    } finally {
      this.lookingUp = false;
    }
    if (!this.closed && !this.up) this.replace(why);
  }

  private retire(client: Client): void {
    this.retired.add(client);
    client.connectionManager.socket?.destroy();
  }

  /**
   * Holes in node-zookeeper-client, mended on this client only: an answer that is not ZooKeeper's
   * protocol throws out of its socket handler (an uncaught exception, which would end confd); a partial
   * packet left when a connection ends is taken as the start of the next connection's data; and
   * close() does not stop an attempt it scheduled, so a retired client is kept from connecting here.
   */
  private harden(client: Client): void {
    const manager = client.connectionManager;
    const onData = manager.onSocketData;
    const onClosed = manager.onSocketClosed;
    manager.onSocketData = (buffer) => {
      if (this.retired.has(client)) {
        manager.socket?.destroy();
        return;
      }
      this.lastHeard = performance.now();
      try {
        onData.call(manager, buffer);
      } catch {
        if (manager.socket) this.drop(manager.socket, `the answer from ${address(manager.socket)} is not ZooKeeper's protocol`);
      }
    };
    manager.onSocketClosed = (hadError) => {
      manager.pendingBuffer = null;
      if (!this.retired.has(client)) onClosed.call(manager, hadError);
    };
  }

  /** Ends a connection; the library connects again, to the next node. */
  private drop(socket: Socket, problem: string): void {
    this.problem = problem;
    log.debug(`zookeeper: ${problem}; connecting again`);
    socket.destroy();
  }

  get connected(): boolean {
    return this.up;
  }

  /**
   * node-zookeeper-client waits for a server's answer without a deadline. A server that accepted the
   * connection but does not answer the session request (one starting up, or stopped) would hold the
   * attempt for ever, and one that stops answering on an open connection (stopped, or cut off without
   * the connection closing) would hold the session, and the watches, on it. So, as ZooKeeper's own
   * client does: an attempt still unanswered at the watchdog's next look is dropped, and so is a
   * connection silent for two thirds of the session timeout (the library pings after a third of it
   * without traffic, so a ping went unanswered). The library then connects again, to the next node,
   * keeping the session and its watches if the server still has them.
   */
  private check(): void {
    const socket = this.client.connectionManager.socket;
    const timeout = this.client.getSessionTimeout();
    // Without a connection for longer than the session lasts, the session is over, or the server will
    // not have it (one that lost its data refuses a client that has seen later changes, for ever).
    if (!this.up && performance.now() - this.downSince > timeout) {
      if (!this.lookingUp) void this.renew(`no session for ${Math.round((performance.now() - this.downSince) / 1000)}s`);
      return;
    }
    if (!this.up) {
      // Only once connected: before that, the library times out the TCP connection itself.
      if (socket && socket === this.attempt && !socket.connecting && !socket.destroyed) {
        this.drop(socket, `no answer from ${address(socket)} to the session request`);
      }
      this.attempt = socket;
      return;
    }
    this.attempt = undefined;
    const silence = performance.now() - this.lastHeard;
    if (socket && !socket.destroyed && silence > (timeout * 2) / 3) this.drop(socket, `nothing from ${address(socket)} for ${Math.round(silence / 1000)}s`);
  }

  /** "at host:port", or "at any of ..." with several nodes. */
  get where(): string {
    return this.nodes.length === 1 ? `at ${this.nodes[0]}` : `at any of ${this.nodes.join(", ")}`;
  }

  unreachable(detail = this.problem ?? `no connection within ${DEADLINE_MS / 1000}s`): ConfdError {
    return new ConfdError(`cannot reach zookeeper ${this.where}: ${detail}`);
  }

  /** Resolves once connected; rejects when not within the deadline. */
  private ready(): Promise<void> {
    if (this.closed) return Promise.reject(new ConfdError("the zookeeper client is closed"));
    if (this.up) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const settle = (outcome: () => void) => {
        clearTimeout(timer);
        this.waiters.delete(waiter);
        outcome();
      };
      const waiter: ReadyWaiter = { resolve: () => settle(resolve), reject: (err) => settle(() => reject(err)) };
      const timer = setTimeout(() => waiter.reject(this.unreachable()), DEADLINE_MS);
      this.waiters.add(waiter);
    });
  }

  /**
   * One request; undefined when the node does not exist. Sent at once when connected, so that requests
   * made one after the other reach the server in that order (a watch set before a read that follows).
   */
  private request<T>(path: string, issue: (client: Client, done: (err: ZkException | null, result: T) => void) => void): Promise<T | undefined> {
    const send = () =>
      new Promise<T | undefined>((resolve, reject) => {
        const timer = setTimeout(() => reject(this.unreachable(`no answer within ${DEADLINE_MS / 1000}s`)), DEADLINE_MS);
        try {
          issue(this.client, (err, result) => {
            clearTimeout(timer);
            if (!err) resolve(result);
            else if (err.code === Exception.NO_NODE) resolve(undefined);
            else reject(this.failure(err, path));
          });
        } catch (err) {
          // The library checks paths before sending (no empty names, no "." or "..").
          clearTimeout(timer);
          reject(new ConfdError(`zookeeper cannot read the key "${path}": ${err instanceof Error ? err.message : String(err)}`, { key: path }));
        }
      });
    return this.up ? send() : this.ready().then(send);
  }

  private failure(err: ZkException, path: string): ConfdError {
    if (err.code === Exception.CONNECTION_LOSS) return this.unreachable("connection lost");
    if (err.code === Exception.SESSION_EXPIRED) return this.unreachable("session expired");
    return new ConfdError(`zookeeper refused to read ${path}: ${err.name}`, { key: path });
  }

  getData(path: string, watcher?: Watcher): Promise<Buffer | undefined> {
    // A node without data comes back as null or undefined, which the request keeps for "no node".
    return this.request<Buffer>(path, (client, done) => client.getData(path, watcher, (err, data) => done(err, data ?? EMPTY)));
  }

  getChildren(path: string, watcher?: Watcher): Promise<string[] | undefined> {
    return this.request<string[]>(path, (client, done) => client.getChildren(path, watcher, done));
  }

  /** Whether the node exists; the watcher fires when it is created, changed or deleted. */
  async exists(path: string, watcher?: Watcher): Promise<boolean> {
    return (await this.request(path, (client, done) => client.exists(path, watcher, done))) != null;
  }

  /** Ends the session on the server (its watches go with it), waiting for that up to the deadline. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.watchdog);
    for (const waiter of this.waiters) waiter.reject(new ConfdError("the zookeeper client is closed"));
    const client = this.client;
    if (!this.up) {
      this.retire(client);
      return;
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const gone = new Promise<void>((resolve) => {
      client.once("disconnected", resolve);
      timer = setTimeout(resolve, DEADLINE_MS);
    });
    client.close();
    await gone;
    clearTimeout(timer);
  }
}

const EMPTY = Buffer.alloc(0);

/** As ZooKeeper's log writes it: hexadecimal, without leading zeros. The password is what is secret. */
function sessionId(client: Client): string {
  return client.getSessionId().toString("hex").replace(/^0+(?=.)/, "");
}

function address(socket: Socket): string {
  return `${socket.remoteAddress}:${socket.remotePort}`;
}
