// A real redis-server (the Debian package) for tests: one per call, on a spare loopback port and a unix
// socket in its own temp dir, logging to a pipe we read to know when it is ready. Data survives
// restart(), even after kill(): the append-only file is written with fsync on every write, and RDB
// snapshots are off so nothing else touches the disk.
import { join } from "node:path";
import { freePort, Lines, tempDir } from "./helpers.ts";

export interface RedisServerOptions {
  /** Start with keyspace notifications on ("KA"); off ("") by default, as redis ships. */
  notifications?: boolean;
  /** false: CONFIG is renamed away, so clients cannot change the server's settings. Default true. */
  allowConfig?: boolean;
  /** requirepass for the default user. */
  password?: string;
}

export interface RedisServer {
  readonly port: number;
  /** The unix socket it also listens on. */
  readonly socket: string;
  /** The current process; a new one after restart(). */
  readonly pid: number;
  /** SIGTERM, wait for the exit, remove the data dir. Final. */
  stop(): Promise<void>;
  /** SIGKILL, wait for the exit; the data dir stays for restart(). */
  kill(): Promise<void>;
  /** Stops the server if it runs, then starts it again on the same port with the same data. */
  restart(): Promise<void>;
}

const READY_TIMEOUT_MS = 10_000;

export async function startRedis(options: RedisServerOptions = {}): Promise<RedisServer> {
  const port = freePort();
  const dir = tempDir("confd-redis-");
  const socket = join(dir.path, "redis.sock");
  const args = [
    "/usr/bin/redis-server",
    "--bind", "127.0.0.1",
    "--port", String(port),
    "--unixsocket", socket,
    "--unixsocketperm", "700",
    "--daemonize", "no",
    "--dir", dir.path,
    "--logfile", "",
    "--save", "",
    "--appendonly", "yes",
    "--appendfsync", "always",
    "--notify-keyspace-events", options.notifications ? "KA" : "",
  ];
  if (options.allowConfig === false) args.push("--rename-command", "CONFIG", "");
  if (options.password !== undefined) args.push("--requirepass", options.password);

  let child: ReturnType<typeof spawn> | undefined;

  const launch = async () => {
    const proc = spawn(args);
    child = proc;
    const lines = new Lines(proc.stdout);
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      await Promise.race([
        lines.waitFor(/Ready to accept connections/),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error(`redis-server on port ${port} not ready after ${READY_TIMEOUT_MS} ms:\n${lines.text()}`)), READY_TIMEOUT_MS);
        }),
      ]);
      await ping(port);
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
    socket,
    get pid() {
      if (!child) throw new Error("redis-server is not running");
      return child.pid;
    },
    async stop() {
      await halt("SIGTERM");
      dir.cleanup();
    },
    kill: () => halt("SIGKILL"),
    async restart() {
      await halt("SIGTERM");
      await launch();
    },
  };
}

function spawn(args: string[]) {
  return Bun.spawn(args, { stdout: "pipe", stderr: "inherit", stdin: "ignore" });
}

/** One PING over a raw socket: any reply (PONG, or NOAUTH with a password set) means it is serving. */
function ping(port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    Bun.connect({
      hostname: "127.0.0.1",
      port,
      socket: {
        open(socket) {
          socket.write("PING\r\n");
        },
        data(socket) {
          socket.end();
          resolve();
        },
        error(_socket, err) {
          reject(err);
        },
        connectError(_socket, err) {
          reject(err);
        },
      },
    }).catch(reject);
  });
}
