// Types for the part of node-zookeeper-client 1.1.3 (pure JavaScript, no types of its own) that the
// zookeeper backend and its tests use. Callbacks as the library calls them: an Exception or null first.
declare module "node-zookeeper-client" {
  import type { EventEmitter } from "node:events";
  import type { Socket } from "node:net";

  /** A ZooKeeper error: `code` is one of Exception's constants, `name` its name ("NO_NODE"). */
  export interface ZkException extends Error {
    readonly code: number;
    readonly name: string;
  }

  /** A watch that fired: one of Event's constants, for the node at `path`. */
  export interface ZkEvent {
    readonly type: number;
    readonly name: string;
    readonly path: string;
  }

  export type Watcher = (event: ZkEvent) => void;

  export interface Stat {
    readonly dataLength: number;
    readonly numChildren: number;
  }

  export interface ClientOptions {
    /** Milliseconds asked for; the server grants a value between its minimum and maximum. */
    sessionTimeout?: number;
    /** Milliseconds, at most, between rounds of connection attempts over every server. */
    spinDelay?: number;
    /** Retries of a request that met a connection loss; 0: none. */
    retries?: number;
  }

  type Done<T> = (error: ZkException | null, result: T) => void;

  /**
   * Events: "connected" (again after each reconnection, the session kept), "disconnected", "expired"
   * (the session is gone: the client is useless from then on).
   */
  export interface Client extends EventEmitter {
    /** Internal to the library; see ConnectionManager. */
    readonly connectionManager: ConnectionManager;
    connect(): void;
    close(): void;
    /** The session's id once connected (8 bytes). */
    getSessionId(): Buffer;
    /** The granted session timeout once connected, in milliseconds. */
    getSessionTimeout(): number;
    getData(path: string, watcher: Watcher | undefined, callback: (error: ZkException | null, data: Buffer | null | undefined, stat: Stat) => void): void;
    getChildren(path: string, watcher: Watcher | undefined, callback: (error: ZkException | null, children: string[], stat: Stat) => void): void;
    /** `stat` is null when the node does not exist; a watcher then fires when it is created. */
    exists(path: string, watcher: Watcher | undefined, callback: Done<Stat | null>): void;
    create(path: string, data: Buffer | null, callback: Done<string>): void;
    setData(path: string, data: Buffer | null, version: number, callback: Done<Stat>): void;
    remove(path: string, version: number, callback: (error: ZkException | null) => void): void;
    removeRecursive(path: string, version: number, callback: (error: ZkException | null) => void): void;
  }

  /** The library's connection handling (lib/ConnectionManager.js), not part of its documented API. */
  export interface ConnectionManager {
    /** The connection (undefined before the first attempt), replaced on each attempt. Destroying it makes the library connect again, keeping the session and its watches. */
    readonly socket?: Socket;
    /** The start of a packet whose end has not arrived yet. */
    pendingBuffer: Buffer | null;
    /** Bound to the socket's "data" and "close" events when a connection is made. */
    onSocketData(buffer: Buffer): void;
    onSocketClosed(hadError: boolean): void;
  }

  export function createClient(connectionString: string, options?: ClientOptions): Client;

  export const Exception: {
    readonly CONNECTION_LOSS: number;
    readonly NO_NODE: number;
    readonly NODE_EXISTS: number;
    readonly SESSION_EXPIRED: number;
  };

  export const Event: {
    readonly NODE_CREATED: number;
    readonly NODE_DELETED: number;
    readonly NODE_DATA_CHANGED: number;
    readonly NODE_CHILDREN_CHANGED: number;
  };
}
