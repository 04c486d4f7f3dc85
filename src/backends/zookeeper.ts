// The zookeeper backend: confd's reads of a ZooKeeper tree, through node-zookeeper-client (pure
// JavaScript, so it needs nothing beside the compiled binary), and watches made of ZooKeeper's one-shot
// node watches (./zookeeper-watch.ts), both walking subtrees (./zookeeper-walk.ts). One session
// (./zookeeper-session.ts) for reads and watches; the library reconnects it, going over the -node list,
// and re-registers its watches on the new connection. A session the server expired, or one left
// without a connection for longer than it lasts, is replaced by a new one, whose watches start over.
//
// Keys, as confd maps them: the subtree of a key is walked through its children, and a node without
// children is a key whose value is its data (empty data: an empty value). A node with children is a
// directory, as in confd, unless it also holds data: then it is a key too (confd drops that value
// without a word; zookeeper lets any node hold data, and "nodes with data are keys" keeps it). A
// directory without data, which is what confd's integration suite and most tools create for the
// parents of a key, is not a key in either. A key that does not exist is no key, not an error.
import { decodeBytes } from "../bytes.ts";
import { ConfdError } from "../errors.ts";
import { normalizeKey, subtrees } from "../keys.ts";
import type { Config } from "../options.ts";
import { fixedNodes, type NodeOptions } from "../srv.ts";
import type { StoreClient } from "../store.ts";
import { SharedWatches } from "../watch-core.ts";
import { DEADLINE_MS, ZkSession } from "./zookeeper-session.ts";
import { walk, type NodeRead } from "./zookeeper-walk.ts";
import { ZkFeed } from "./zookeeper-watch.ts";

const DEFAULT_NODE = "127.0.0.1:2181";
const DEFAULT_PORT = 2181;

export async function connect(config: Config, { nodes = fixedNodes(config.nodes) }: NodeOptions = {}): Promise<StoreClient> {
  const spell = (listed: readonly string[]) => (listed.length > 0 ? listed : [DEFAULT_NODE]).map(parseNode);
  return new ZookeeperClient(spell(nodes.current()), async () => ((await nodes.refresh()) ? spell(nodes.current()) : undefined));
}

const NODE = /^([A-Za-z0-9_.-]+)(?::(\d{1,5}))?$/;

/** "host:port", or "host" for port 2181, as confd's zookeeper client takes them. */
function parseNode(text: string): string {
  const m = NODE.exec(text.trim());
  const port = m?.[2] === undefined ? DEFAULT_PORT : Number(m[2]);
  if (!m || port < 1 || port > 65535) {
    // node-zookeeper-client splits "host:port" at every ":", so an IPv6 address cannot be given as one.
    const hint = text.includes("[") || (text.match(/:/g)?.length ?? 0) > 1 ? " (an IPv6 address needs a host name)" : "";
    throw new ConfdError(`invalid zookeeper node "${text}": expected host:port${hint}`, { flag: "-node" });
  }
  return `${m[1]}:${port}`;
}

/** A key as a path: confd's templates may still name a subtree "/app/*". */
function subtreeOf(key: string): string {
  return normalizeKey(key.replace(/\/\*$/, ""));
}

/** The key rule (see the top of this file): a leaf, or a node that holds data. */
function isKey(node: NodeRead): boolean {
  return node.children.length === 0 || node.data.length > 0;
}

class ZookeeperClient implements StoreClient {
  private readonly session: ZkSession;
  private readonly watches: SharedWatches;
  private closed = false;

  constructor(nodes: readonly string[], relookup: () => Promise<readonly string[] | undefined>) {
    this.session = new ZkSession(nodes, relookup);
    this.watches = new SharedWatches({
      store: "zookeeper",
      source: { open: (prefix, _from, events) => new ZkFeed(this.session, prefix, events) },
      deadlineMs: DEADLINE_MS,
    });
  }

  async getValues(keys: readonly string[]): Promise<Map<string, string>> {
    if (this.closed) throw new ConfdError("the zookeeper client is closed");
    const roots = subtrees(keys.map(subtreeOf));
    const values = new Map<string, string>();
    await walk(this.session, roots, undefined, (node) => {
      // Bytes as they are (bytes.ts): a value that is not UTF-8 is copied, not replaced by U+FFFD.
      if (isKey(node)) values.set(node.path, decodeBytes(node.data));
    });
    return values;
  }

  watchPrefix(prefix: string, waitIndex: number, signal: AbortSignal): Promise<number> {
    return this.watches.wait(subtreeOf(prefix), waitIndex, signal);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.watches.close();
    await this.session.close();
  }
}
