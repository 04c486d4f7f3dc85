// Walks of a zookeeper subtree, for reads (./zookeeper.ts) and for setting watches (./zookeeper-watch.ts):
// every node's data and children, a bounded number of nodes at a time, their requests pipelined on the
// session's one connection.
import type { Watcher } from "node-zookeeper-client";
import type { ZkSession } from "./zookeeper-session.ts";

/** Nodes read at once (two requests each) when a subtree is walked. */
const WALK_CONCURRENCY = 32;

/** The handlers a walk registers on every node it reads: one for data watches, one for child watches. */
export interface Watchers {
  data: Watcher;
  children: Watcher;
}

/** A node as a walk read it. */
export interface NodeRead {
  path: string;
  data: Buffer;
  children: string[];
}

/**
 * Reads every node of the subtrees at `roots` (data and children, registering `watchers` on each when
 * given), WALK_CONCURRENCY nodes at a time in all, and hands each to `visit`. A node removed meanwhile
 * is left out with what was below it.
 */
export async function walk(session: ZkSession, roots: readonly string[], watchers: Watchers | undefined, visit: (node: NodeRead) => void): Promise<void> {
  const limit = limiter(WALK_CONCURRENCY);
  const read = async (path: string): Promise<void> => {
    const [data, children] = await limit(() => Promise.all([session.getData(path, watchers?.data), session.getChildren(path, watchers?.children)]));
    if (data === undefined || children === undefined) return;
    visit({ path, data, children });
    await Promise.all(children.map((child) => read(childPath(path, child))));
  };
  await Promise.all(roots.map(read));
}

export function childPath(parent: string, child: string): string {
  return parent === "/" ? `/${child}` : `${parent}/${child}`;
}

/** Runs at most `max` of the functions given to it at once, the others in turn. */
function limiter(max: number): <T>(fn: () => Promise<T>) => Promise<T> {
  let active = 0;
  const queue: (() => void)[] = [];
  return async (fn) => {
    if (active < max) active++;
    else await new Promise<void>((resolve) => queue.push(resolve));
    try {
      return await fn();
    } finally {
      // The slot goes to the next in line, if any.
      const next = queue.shift();
      if (next) next();
      else active--;
    }
  };
}
