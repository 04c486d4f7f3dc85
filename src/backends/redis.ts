// The redis backend: confd's store contract on redis, with at most two connections whatever the
// number of watches: one for commands (reads, pipelined: redis-read.ts) and one subscriber shared by
// every watch (redis-watch.ts); each fails over between the nodes (redis-link.ts). Keys are mapped as
// confd maps them (redis-keys.ts). An unreachable store rejects reads and watches within about five
// seconds; ioredis keeps reconnecting, with backoff, behind them.
import { ConfdError } from "../errors.ts";
import { normalizeKey } from "../keys.ts";
import type { Config } from "../options.ts";
import { fixedNodes, type NodeOptions, type NodeSource } from "../srv.ts";
import type { StoreClient } from "../store.ts";
import { KeyMapper } from "./redis-keys.ts";
import { Link, RedisNodes } from "./redis-link.ts";
import { readValues } from "./redis-read.ts";
import { RedisWatch } from "./redis-watch.ts";

export interface RedisClientOptions {
  nodes: NodeSource;
  username?: string;
  password?: string;
  /** confd's --separator: "" or "/" keeps keys as they are. */
  separator?: string;
  /** Seconds between polls when keyspace notifications cannot be turned on. */
  intervalSeconds: number;
}

export class RedisClient implements StoreClient {
  private readonly keys: KeyMapper;
  private readonly cmd: Link;
  private readonly watch: RedisWatch;
  private closed = false;

  constructor(options: RedisClientOptions) {
    const nodes = new RedisNodes(options.nodes);
    // A username alone means nothing to redis (AUTH needs a password): only send it with one.
    const auth = options.password ? { username: options.username || undefined, password: options.password } : {};
    this.keys = new KeyMapper(options.separator || "/");
    this.cmd = new Link(nodes, auth, "commands");
    this.watch = new RedisWatch({
      nodes,
      auth,
      keys: this.keys,
      cmd: this.cmd,
      read: (keys) => this.getValues(keys),
      intervalMs: Math.max(1, options.intervalSeconds) * 1000,
    });
  }

  async getValues(keys: readonly string[]): Promise<Map<string, string>> {
    if (this.closed) throw new ConfdError("the redis client is closed");
    // confd's templates may still name a subtree "/app/*".
    const wanted = [...new Set(keys.map((k) => normalizeKey(k.replace(/\/\*$/, ""))))];
    await this.cmd.whenReady();
    try {
      return await readValues(this.cmd.redis, this.keys, wanted);
    } catch (err) {
      throw this.cmd.storeError(err);
    }
  }

  watchPrefix(prefix: string, waitIndex: number, signal: AbortSignal): Promise<number> {
    return this.watch.wait(prefix, waitIndex, signal);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([this.watch.close(), this.cmd.close()]);
  }
}

export async function connect(config: Config, { nodes = fixedNodes(config.nodes) }: NodeOptions = {}): Promise<StoreClient> {
  return new RedisClient({
    nodes,
    username: config.username,
    // confd hands redis its --client-key as the password; --password is the clearer spelling.
    password: config.password || config.clientKey,
    separator: config.separator,
    intervalSeconds: config.interval,
  });
}
