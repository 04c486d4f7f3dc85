// The zookeeper backend's change feed, one per watched prefix (the watch core, ../watch-core.ts, shares
// it between callers): a data watch and a child watch on every node of the subtree, or a watch on the
// prefix's creation while it does not exist. ZooKeeper's watches fire once: each is set again as it
// fires, a new child's subtree is watched as it appears, and the change is reported once the watches
// that cover what the caller will read next are set, so that nothing changed after that read is missed.
//
// Across a reconnection the session keeps its watches (the library registers them again, and the
// server fires those whose node changed meanwhile); the subtree is walked again all the same, for the
// watches whose requests were lost with the connection. An expired session lost every watch: the feed
// fails, and the core's next call opens a new one on the new session, whose start makes every caller
// read again once.
import { Event, type ZkEvent } from "node-zookeeper-client";
import { ConfdError } from "../errors.ts";
import type { Feed, FeedEvents } from "../watch-core.ts";
import type { SessionListener, ZkSession } from "./zookeeper-session.ts";
import { childPath, walk, type Watchers } from "./zookeeper-walk.ts";

export class ZkFeed implements Feed, SessionListener {
  /** The nodes of the subtree this feed has set watches on (those it knows of). */
  private readonly known = new Set<string>();
  private started = false;
  /** A watch may be missing (its request failed with the connection): reported as a change when the walk on reconnection has set it. */
  private incomplete = false;
  private cancelled = false;
  /** A change report is queued: changes seen in one turn of the event loop are reported once. */
  private reporting = false;
  private readonly watchers: Watchers = {
    data: (event) => this.fired(event, "data"),
    children: (event) => this.fired(event, "children"),
  };
  private readonly unreachable = (): ConfdError => this.session.unreachable();

  constructor(
    private readonly session: ZkSession,
    private readonly prefix: string,
    private readonly events: FeedEvents,
  ) {
    session.listeners.add(this);
    if (session.connected) void this.arm(false);
    else events.disconnected(this.unreachable);
  }

  connected(): void {
    if (this.cancelled) return;
    this.events.connected();
    const missed = this.incomplete;
    this.incomplete = false;
    void this.arm(missed);
  }

  disconnected(): void {
    if (!this.cancelled) this.events.disconnected(this.unreachable);
  }

  expired(why: string): void {
    if (!this.cancelled) this.events.failed(new ConfdError(`zookeeper ${this.session.where}: ${why}, and the watches with it; watching again on a new session`));
  }

  async cancel(): Promise<void> {
    // node-zookeeper-client cannot remove a watch: those set stay until they fire, and then do nothing.
    this.cancelled = true;
    this.session.listeners.delete(this);
  }

  /** Watches the whole subtree; then the feed starts, or, after `report`, reports a change. */
  private async arm(report: boolean): Promise<void> {
    const epoch = this.session.epoch;
    try {
      await this.armPrefix();
    } catch (err) {
      this.armFailed(err, epoch);
      return;
    }
    // A reconnection meanwhile walks again, and starts or reports when done.
    if (this.cancelled || epoch !== this.session.epoch) return;
    if (!this.started) {
      this.started = true;
      this.events.start();
    } else if (report) this.report();
  }

  /** The prefix's subtree, or, while its node does not exist, a watch on its creation. */
  private async armPrefix(): Promise<void> {
    for (;;) {
      if (await this.armTree(this.prefix)) return;
      // Created between the two requests: walk it after all.
      if (!(await this.session.exists(this.prefix, this.watchers.data))) return;
    }
  }

  /** Sets watches on every node of the subtree at `path`; false when that node does not exist. */
  private async armTree(path: string): Promise<boolean> {
    let found = false;
    await walk(this.session, [path], this.watchers, (node) => {
      if (node.path === path) found = true;
      this.known.add(node.path);
    });
    return found;
  }

  /**
   * A request setting a watch failed. With the connection: the walk on reconnection sets it (and
   * reports the change that may have been missed). On a live connection (no answer in time, or a
   * refusal): the feed cannot go on, and the core's next call opens another.
   */
  private armFailed(err: unknown, epoch: number): void {
    if (this.cancelled || epoch !== this.session.epoch) return;
    if (!this.session.connected) this.incomplete = true;
    else this.events.failed(err);
  }

  private fired(event: ZkEvent, kind: "data" | "children"): void {
    if (this.cancelled) return;
    const { path } = event;
    const epoch = this.session.epoch;
    switch (event.type) {
      case Event.NODE_DATA_CHANGED:
        // Set again before the change is reported: the request goes out before the caller's read.
        this.session.getData(path, this.watchers.data).then(
          (data) => void (data === undefined && this.known.delete(path)),
          (err: unknown) => this.armFailed(err, epoch),
        );
        this.report();
        return;
      case Event.NODE_DELETED:
        // Both watches of the node fire; its parent's child watch fires too.
        this.known.delete(path);
        if (path === this.prefix && kind === "data") void this.arm(false);
        this.report();
        return;
      case Event.NODE_CHILDREN_CHANGED:
        void this.armChildren(path, epoch);
        return;
      case Event.NODE_CREATED:
        // The prefix's node, which did not exist.
        void this.arm(true);
        return;
    }
  }

  /** Sets the child watch again and watches the subtrees of new children; then reports the change. */
  private async armChildren(path: string, epoch: number): Promise<void> {
    try {
      const children = await this.session.getChildren(path, this.watchers.children);
      const added = (children ?? []).map((child) => childPath(path, child)).filter((child) => !this.known.has(child));
      await Promise.all(added.map((child) => this.armTree(child)));
    } catch (err) {
      this.armFailed(err, epoch);
    }
    this.report();
  }

  private report(): void {
    if (this.reporting || this.cancelled) return;
    this.reporting = true;
    queueMicrotask(() => {
      this.reporting = false;
      if (!this.cancelled) this.events.changed();
    });
  }
}
