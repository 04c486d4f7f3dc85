// One redis connection that fails over between the configured nodes: the node addresses confd accepts
// (host:port, /db, unix sockets), reconnection with backoff, looking the nodes up again (SRV records,
// ../srv.ts) when every one failed, waiting for a connection within the reach timeout, and the errors
// callers see (which store and why, never a password).
import { Redis } from "ioredis";
import { existsSync } from "node:fs";
import { ConfdError } from "../errors.ts";
import { log } from "../log.ts";
import type { NodeSource } from "../srv.ts";

/** How long a read or a watch waits for a connection (or a command) before calling the store unreachable. */
export const REACH_TIMEOUT_MS = 5000;
/** Per address tried: short enough that a second node is tried within REACH_TIMEOUT_MS. */
const CONNECT_TIMEOUT_MS = 2000;
const MAX_RECONNECT_DELAY_MS = 2000;

export interface RedisNode {
  /** As the user wrote it: used in messages, and holds no secret. */
  label: string;
  db: number;
  path?: string;
  host?: string;
  port?: number;
}

/**
 * "host:port", "host", "[::1]:6379", any of them followed by "/<db>", or a unix socket path (which
 * exists, or starts with "/"). Like confd, a path that exists is a socket even if it ends in "/<digits>".
 */
export function parseNode(text: string): RedisNode {
  let address = text;
  let db = 0;
  const withDb = /^(.+)\/(\d+)$/.exec(text);
  if (withDb && !existsSync(text)) {
    address = withDb[1]!;
    db = Number(withDb[2]);
  }
  if (address.startsWith("/") || existsSync(address)) return { label: text, db, path: address };
  const hostPort = /^(?:\[([^\]]+)\]|([^:/[\]]+))(?::(\d+))?$/.exec(address);
  const port = hostPort?.[3] === undefined ? 6379 : Number(hostPort[3]);
  if (!hostPort || port < 1 || port > 65535) {
    throw new ConfdError(`invalid redis node "${text}": expected host:port, host:port/db or a unix socket path`, { flag: "-node" });
  }
  return { label: text, db, host: hostPort[1] ?? hostPort[2], port };
}

/**
 * The nodes the connections share, parsed from the source's list. When a connection has found every
 * node failing it asks for them again; a changed list moves every connection to its first node.
 */
export class RedisNodes {
  list: readonly RedisNode[];
  private listed: readonly string[];
  private pending: Promise<void> | undefined;
  private readonly listeners = new Set<() => void>();

  constructor(private readonly source: NodeSource) {
    this.listed = source.current();
    this.list = parsed(this.listed);
  }

  lookUpAgain(): void {
    this.pending ??= this.source.refresh().then(() => {
      this.pending = undefined;
      const listed = this.source.current();
      if (listed === this.listed) return;
      try {
        this.list = parsed(listed);
      } catch (err) {
        // Not thrown from here (nobody would catch it): the nodes in use stay.
        log.warning(`redis: keeping ${this.list.map((n) => n.label).join(", ")}: ${err instanceof Error ? err.message : String(err)}`);
        return;
      }
      this.listed = listed;
      for (const listener of this.listeners) listener();
    });
  }

  /** Calls `listener` when the list changed; returns what stops that. */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}

function parsed(listed: readonly string[]): RedisNode[] {
  return (listed.length > 0 ? listed : ["127.0.0.1:6379"]).map(parseNode);
}

export interface Auth {
  username?: string;
  password?: string;
}

export function isReplyError(err: unknown): boolean {
  return err instanceof Error && err.name === "ReplyError";
}

/**
 * One ioredis connection that fails over: ioredis reconnects by itself (with backoff), and when an
 * attempt fails before the connection was ever ready, the next attempt goes to the next node.
 * ioredis reads host, port, path and db from its options object on every connect, so we rewrite them.
 */
export class Link {
  readonly redis: Redis;
  private cursor = 0;
  private wasReady = false;
  /** Attempts that failed before the connection was ready, since it last was or the list changed. */
  private failures = 0;
  /** The list changed: the next attempt goes to its first node (set already), not the one after. */
  private moved = false;
  private lastError: Error | undefined;
  private readonly unlisten: () => void;

  constructor(
    private readonly nodes: RedisNodes,
    auth: Auth,
    role: string,
  ) {
    this.redis = new Redis({
      ...addressOf(nodes.list[0]!),
      ...auth,
      connectionName: `confd-${role}`,
      connectTimeout: CONNECT_TIMEOUT_MS,
      commandTimeout: REACH_TIMEOUT_MS,
      // Fail fast instead of queueing: the caller backs off and retries, and an unreachable store
      // must not pile up commands.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      // Subscriptions are renewed by the watch, since the db in the channel name may change on failover.
      autoResubscribe: false,
      retryStrategy: (attempt) => this.nextAttempt(attempt),
    });
    this.redis.on("error", (err: Error) => {
      this.lastError = err;
      log.debug(`redis ${role} connection to ${this.node.label}: ${err.message}`);
    });
    this.redis.on("ready", () => {
      this.wasReady = true;
      this.failures = 0;
      this.lastError = undefined;
    });
    this.unlisten = nodes.onChange(() => {
      this.cursor = 0;
      this.failures = 0;
      this.moved = true;
      Object.assign(this.redis.options, addressOf(this.node));
    });
  }

  get node(): RedisNode {
    return this.nodes.list[this.cursor]!;
  }

  get ready(): boolean {
    return this.redis.status === "ready";
  }

  private nextAttempt(attempt: number): number {
    const count = this.nodes.list.length;
    if (this.moved) this.moved = false;
    else if (!this.wasReady) {
      // Every node has failed in turn: they may have moved.
      if (++this.failures % count === 0) this.nodes.lookUpAgain();
      if (count > 1) {
        this.cursor = (this.cursor + 1) % count;
        Object.assign(this.redis.options, addressOf(this.node));
      }
    }
    this.wasReady = false;
    return Math.min(50 * 2 ** attempt, MAX_RECONNECT_DELAY_MS);
  }

  /** The error a caller sees: which store, and why, never a password. */
  unreachable(detail?: string): ConfdError {
    const nodes = this.nodes.list;
    const where = nodes.length === 1 ? `at ${nodes[0]!.label}` : `at any of ${nodes.map((n) => n.label).join(", ")}`;
    const why = detail ?? this.lastError?.message ?? `no answer within ${REACH_TIMEOUT_MS / 1000}s`;
    return new ConfdError(`cannot reach redis ${where}: ${why}`);
  }

  /** Errors from commands: redis's own replies as they are, anything else as "cannot reach". */
  storeError(err: unknown): ConfdError {
    if (err instanceof ConfdError) return err;
    if (isReplyError(err)) return new ConfdError(`redis: ${(err as Error).message}`);
    return this.unreachable(err instanceof Error ? err.message : String(err));
  }

  whenReady(): Promise<void> {
    if (this.ready) return Promise.resolve();
    if (this.redis.status === "end") return Promise.reject(new ConfdError("the redis client is closed"));
    return new Promise((resolve, reject) => {
      const settle = (outcome: () => void) => {
        clearTimeout(timer);
        this.redis.off("ready", onReady);
        this.redis.off("error", onError);
        outcome();
      };
      const timer = setTimeout(() => settle(() => reject(this.unreachable())), REACH_TIMEOUT_MS);
      const onReady = () => settle(resolve);
      // A refusal from the server itself (wrong password, say) will not go away by waiting.
      const onError = (err: Error) => {
        if (isReplyError(err)) settle(() => reject(this.unreachable(err.message)));
      };
      this.redis.on("ready", onReady);
      this.redis.on("error", onError);
    });
  }

  /** QUIT, then waits (within the reach timeout) for redis to close the connection: gone from its client list. */
  async close(): Promise<void> {
    this.unlisten();
    if (this.ready) {
      const ended = new Promise<void>((resolve) => this.redis.once("end", resolve));
      let timer: ReturnType<typeof setTimeout> | undefined;
      if (await this.redis.quit().then(() => true, () => false)) {
        await Promise.race([ended, new Promise((resolve) => (timer = setTimeout(resolve, REACH_TIMEOUT_MS)))]);
      }
      clearTimeout(timer);
    }
    this.redis.disconnect();
  }
}

function addressOf(node: RedisNode): { host?: string; port?: number; path?: string; db: number } {
  return node.path ? { path: node.path, host: undefined, port: undefined, db: node.db } : { host: node.host, port: node.port, path: undefined, db: node.db };
}
