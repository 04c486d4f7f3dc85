// A real ZooKeeper (Debian's `zookeeper` package, 3.8) for tests and benchmarks: one standalone server
// per call, in the foreground on a spare loopback port, with its own config and data directory, stopped
// by PID. Its log (slf4j-simple, to stderr) is read as it comes, so tests can wait for what the server
// says (a session expiring, say). Data survives restart(): ZooKeeper writes its transaction log with
// fsync before it answers; restart({ wipe: true }) starts it with none, as a rebuilt ensemble. zkWriter() writes keys as confd's integration suite does: every parent a
// node without data, the value on the leaf.
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createClient, Exception, type Client, type ZkException } from "node-zookeeper-client";
import { freePort, Lines, tempDir } from "./helpers.ts";

const JAVA = "/usr/bin/java";
/** The server jar names its dependencies in its manifest; slf4j-simple makes it log (to stderr). */
const CLASSPATH = ["/usr/share/java/zookeeper.jar", "/usr/share/java/slf4j-simple.jar"].join(":");
const MAIN = "org.apache.zookeeper.server.ZooKeeperServerMain";
/** A JVM starting on a loaded 2-core machine takes seconds. */
const READY_TIMEOUT_MS = 30_000;

/**
 * Session timeouts: clients are granted at most SESSION_MAX_MS, so a client that stops answering loses
 * its session within seconds (the expiry test), while one that runs keeps it (it pings every third).
 */
const TICK_MS = 500;
const SESSION_MAX_MS = 5_000;

export interface ZookeeperServer {
  readonly port: number;
  /** "127.0.0.1:PORT", for -node. */
  readonly node: string;
  /** The current process; a new one after restart(). */
  readonly pid: number;
  /** The server's log since it (last) started. */
  readonly log: Lines;
  /** SIGTERM, wait for the exit, remove the data directory. Final. */
  stop(): Promise<void>;
  /** SIGKILL, wait for the exit; the data directory stays for restart(). */
  kill(): Promise<void>;
  /** Stops the server if it runs, then starts it again on the same port with the same data (`wipe`: with none). */
  restart(options?: { wipe?: boolean }): Promise<void>;
  /** SIGSTOP: connections stay open, and nothing answers on them (a hung server, or one cut off). */
  pause(): void;
  /** SIGCONT after pause(). */
  resume(): void;
}

export async function startZookeeper(): Promise<ZookeeperServer> {
  const port = freePort();
  const dir = tempDir("confd-zookeeper-");
  const config = join(dir.path, "zoo.cfg");
  writeFileSync(
    config,
    [
      `tickTime=${TICK_MS}`,
      `maxSessionTimeout=${SESSION_MAX_MS}`,
      `dataDir=${join(dir.path, "data")}`,
      `clientPort=${port}`,
      "clientPortAddress=127.0.0.1",
      // The four-letter word that says whether it serves; no admin HTTP server (it would take port 8080).
      "4lw.commands.whitelist=srvr",
      "admin.enableServer=false",
      "",
    ].join("\n"),
  );
  const args = [JAVA, "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-cp", CLASSPATH, MAIN, config];

  let child: ReturnType<typeof Bun.spawn> | undefined;
  let log: Lines | undefined;

  const launch = async () => {
    const proc = Bun.spawn(args, { cwd: dir.path, stdin: "ignore", stdout: "ignore", stderr: "pipe" });
    child = proc;
    const lines = new Lines(proc.stderr as ReadableStream<Uint8Array>);
    log = lines;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`zookeeper on port ${port} not ready after ${READY_TIMEOUT_MS} ms:\n${lines.text()}`)), READY_TIMEOUT_MS);
    });
    try {
      // Logged once the server has loaded its data and accepts sessions (ZooKeeperServerMain starts its
      // container manager after the connection factory); `srvr` then confirms that it serves.
      await Promise.race([lines.waitFor(/ContainerManager - Using checkIntervalMs/), timeout]);
      const answer = await fourLetterWord(port, "srvr");
      if (!answer.includes("Mode: standalone")) throw new Error(`zookeeper on port ${port} does not serve: ${answer}`);
    } catch (err) {
      proc.kill("SIGKILL");
      await proc.exited;
      throw err;
    } finally {
      clearTimeout(timer);
    }
  };

  const halt = async (signal: "SIGTERM" | "SIGKILL") => {
    const proc = child;
    child = undefined;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    process.kill(proc.pid, signal);
    await proc.exited;
  };

  await launch();
  return {
    port,
    node: `127.0.0.1:${port}`,
    get pid() {
      if (!child) throw new Error("zookeeper is not running");
      return child.pid;
    },
    get log() {
      if (!log) throw new Error("zookeeper never started");
      return log;
    },
    async stop() {
      await halt("SIGTERM");
      dir.cleanup();
    },
    kill: () => halt("SIGKILL"),
    async restart(options = {}) {
      await halt("SIGTERM");
      if (options.wipe) rmSync(join(dir.path, "data"), { recursive: true, force: true });
      await launch();
    },
    pause: () => void (child && process.kill(child.pid, "SIGSTOP")),
    resume: () => void (child && process.kill(child.pid, "SIGCONT")),
  };
}

function fourLetterWord(port: number, word: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let answer = "";
    Bun.connect({
      hostname: "127.0.0.1",
      port,
      socket: {
        open: (socket) => void socket.write(word),
        data: (_socket, chunk) => void (answer += chunk.toString()),
        close: () => resolve(answer),
        error: (_socket, err) => reject(err),
        connectError: (_socket, err) => reject(err),
      },
    }).catch(reject);
  });
}

/** Writes and removes keys on a server, outside the code under test. */
export interface ZkWriter {
  /** Creates the key's node (and its parents, without data) or sets its data. */
  put(key: string, value: string | Buffer): Promise<void>;
  /** Many keys: parents first, then the leaves, each level's requests pipelined on the connection. */
  putAll(entries: Iterable<[string, string | Buffer]>): Promise<void>;
  /** Removes the node and everything below it; its parents stay. */
  del(key: string): Promise<void>;
}

/**
 * Each operation on a session of its own, closed after it: a writer outlives server restarts in the
 * tests without depending on how the library reconnects (which the code under test must handle, not
 * the tests' own writes).
 */
export function zkWriter(node: string): ZkWriter {
  const withClient = async (work: (client: Client) => Promise<void>) => {
    const client = await session(node);
    try {
      await work(client);
    } finally {
      client.close();
    }
  };
  const call = <T>(issue: (done: (err: ZkException | null, result?: T) => void) => void) =>
    new Promise<T | undefined>((resolve, reject) => issue((err, result) => (err ? reject(err) : resolve(result))));

  const createOrSet = async (client: Client, path: string, data: Buffer | null, overwrite: boolean) => {
    try {
      await call<string>((done) => client.create(path, data, done));
    } catch (err) {
      if ((err as ZkException).code !== Exception.NODE_EXISTS) throw err;
      if (overwrite) await call((done) => client.setData(path, data, -1, done));
    }
  };
  const parentsOf = (key: string) => {
    const parts = key.split("/").filter(Boolean);
    return parts.slice(0, -1).map((_, i) => "/" + parts.slice(0, i + 1).join("/"));
  };
  const putAll = (entries: Iterable<[string, string | Buffer]>) =>
    withClient(async (client) => {
      const list = [...entries];
      const parents = [...new Set(list.flatMap(([key]) => parentsOf(key)))];
      const depth = (path: string) => path.split("/").length;
      for (const level of [...new Set(parents.map(depth))].sort((a, b) => a - b)) {
        await Promise.all(parents.filter((p) => depth(p) === level).map((p) => createOrSet(client, p, null, false)));
      }
      await Promise.all(list.map(([key, value]) => createOrSet(client, key, Buffer.from(value), true)));
    });
  return {
    put: (key, value) => putAll([[key, value]]),
    putAll,
    del: (key) => withClient(async (client) => void (await call((done) => client.removeRecursive(key, -1, done)))),
  };
}

/** Tries for a session this long before trying again on a new connection (the library never gives up on one). */
const SESSION_ATTEMPT_MS = 5_000;
const SESSION_ATTEMPTS = 3;

/** A connected client, or an error saying that none could be had. */
async function session(node: string): Promise<Client> {
  for (let attempt = 1; ; attempt++) {
    const client = createClient(node, { sessionTimeout: SESSION_MAX_MS, spinDelay: 100 });
    let timer: ReturnType<typeof setTimeout> | undefined;
    const connected = await new Promise<boolean>((resolve) => {
      client.once("connected", () => resolve(true));
      timer = setTimeout(() => resolve(false), SESSION_ATTEMPT_MS);
      client.connect();
    });
    clearTimeout(timer);
    if (connected) return client;
    client.close();
    if (attempt === SESSION_ATTEMPTS) throw new Error(`no zookeeper session with ${node} after ${SESSION_ATTEMPTS} attempts of ${SESSION_ATTEMPT_MS} ms`);
  }
}
