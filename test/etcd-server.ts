// A real etcd (Debian's etcd-server, v3.4) for tests: one member on spare loopback ports with its own
// data directory, stopped by PID. Health and metrics are served on a separate plain-HTTP listener, so
// readiness is checked the same way with or without client-certificate TLS on the client port.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { freePort, tempDir } from "./helpers.ts";

const ETCD_BIN = "/usr/bin/etcd";
const READY_TIMEOUT_MS = 15_000;

export interface EtcdTlsFiles {
  caFile: string;
  certFile: string;
  keyFile: string;
}

export interface EtcdServerOptions {
  /** Serve clients over TLS with these files and require client certificates signed by the CA. */
  tls?: EtcdTlsFiles;
}

export interface EtcdServer {
  /** The client URL, "http://127.0.0.1:PORT" (https with TLS). */
  readonly endpoint: string;
  /** Plain-HTTP /health and /metrics. */
  readonly metricsUrl: string;
  /** The current process; it changes on restart(). */
  readonly pid: number;
  /** SIGTERM, then the data directory is removed: the server is gone for good. */
  stop(): Promise<void>;
  /** SIGKILL, as a crash would; the data directory stays for restart(). */
  kill(): Promise<void>;
  /** Starts again (stopping the running process first) on the same ports and data directory. */
  restart(): Promise<void>;
}

export async function startEtcd(options: EtcdServerOptions = {}): Promise<EtcdServer> {
  const data = tempDir("confd-etcd-");
  const [clientPort, peerPort, metricsPort] = distinctPorts(3);
  const scheme = options.tls ? "https" : "http";
  const endpoint = `${scheme}://127.0.0.1:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  const metricsUrl = `http://127.0.0.1:${metricsPort}`;
  const args = [
    ETCD_BIN,
    "--name=test",
    `--data-dir=${data.path}`,
    `--listen-client-urls=${endpoint}`,
    `--advertise-client-urls=${endpoint}`,
    `--listen-peer-urls=${peer}`,
    `--initial-advertise-peer-urls=${peer}`,
    `--initial-cluster=test=${peer}`,
    "--initial-cluster-state=new",
    `--listen-metrics-urls=${metricsUrl}`,
    "--logger=zap",
    "--log-level=error",
  ];
  if (options.tls) {
    const { caFile, certFile, keyFile } = options.tls;
    args.push(`--cert-file=${certFile}`, `--key-file=${keyFile}`, `--trusted-ca-file=${caFile}`, "--client-cert-auth");
  }

  let proc = await launch(args, metricsUrl);
  const halt = async (signal: "SIGTERM" | "SIGKILL") => {
    if (proc.exitCode === null && proc.signalCode === null) process.kill(proc.pid, signal);
    await proc.exited;
  };
  return {
    endpoint,
    metricsUrl,
    get pid() {
      return proc.pid;
    },
    async stop() {
      await halt("SIGTERM");
      data.cleanup();
    },
    kill: () => halt("SIGKILL"),
    async restart() {
      await halt("SIGTERM");
      proc = await launch(args, metricsUrl);
    },
  };
}

/** Spawns etcd and resolves once /health says it serves, or rejects with its output if it exits first. */
async function launch(args: string[], metricsUrl: string): Promise<Bun.Subprocess<"ignore", "pipe", "pipe">> {
  const proc = Bun.spawn(args, { stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  // Drained all the time: a full pipe would block etcd.
  let output = "";
  const collect = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream) output = (output + new TextDecoder().decode(chunk)).slice(-4000);
  };
  void collect(proc.stdout);
  void collect(proc.stderr);

  const deadline = Date.now() + READY_TIMEOUT_MS;
  let exited = false;
  void proc.exited.then(() => (exited = true));
  while (!exited) {
    if (await healthy(metricsUrl)) return proc;
    if (Date.now() > deadline) {
      process.kill(proc.pid, "SIGKILL");
      throw new Error(`etcd did not become healthy within ${READY_TIMEOUT_MS} ms:\n${output}`);
    }
    await Bun.sleep(20);
  }
  throw new Error(`etcd exited with code ${proc.exitCode} before it was ready:\n${output}`);
}

async function healthy(metricsUrl: string): Promise<boolean> {
  try {
    const res = await fetch(`${metricsUrl}/health`, { signal: AbortSignal.timeout(500) });
    return res.ok && ((await res.json()) as { health?: string }).health === "true";
  } catch {
    return false;
  }
}

/** freePort() can hand out the same port twice when asked in a row; etcd needs them all different. */
function distinctPorts(n: number): number[] {
  const ports = new Set<number>();
  while (ports.size < n) ports.add(freePort());
  return [...ports];
}

/**
 * A throwaway CA, a server certificate for `serverNames` (subjectAltName syntax) and a client
 * certificate, made with openssl in `dir`. Throws when openssl is missing or fails: a TLS test must fail then, not pass by skipping.
 */
export function createCertificates(dir: string, serverNames = "IP:127.0.0.1,DNS:localhost"): { server: EtcdTlsFiles; client: EtcdTlsFiles } {
  const file = (name: string) => join(dir, name);
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  openssl(["req", "-x509", ...ec, "-keyout", file("ca.key"), "-out", file("ca.crt"), "-days", "1", "-subj", "/CN=confd test CA",
    "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"]);
  const issue = (name: string, cn: string, extensions: string, serial: string) => {
    writeFileSync(file(`${name}.ext`), extensions);
    openssl(["req", ...ec, "-keyout", file(`${name}.key`), "-out", file(`${name}.csr`), "-subj", `/CN=${cn}`]);
    openssl(["x509", "-req", "-in", file(`${name}.csr`), "-CA", file("ca.crt"), "-CAkey", file("ca.key"), "-set_serial", serial,
      "-days", "1", "-out", file(`${name}.crt`), "-extfile", file(`${name}.ext`)]);
  };
  issue("server", "etcd", `subjectAltName=${serverNames}\nextendedKeyUsage=serverAuth\n`, "2");
  issue("client", "confd", "extendedKeyUsage=clientAuth\n", "3");
  return {
    server: { caFile: file("ca.crt"), certFile: file("server.crt"), keyFile: file("server.key") },
    client: { caFile: file("ca.crt"), certFile: file("client.crt"), keyFile: file("client.key") },
  };
}

function openssl(args: string[]): void {
  const result = Bun.spawnSync(["openssl", ...args], { stdout: "pipe", stderr: "pipe" });
  if (!result.success) throw new Error(`openssl ${args[0]} failed (exit ${result.exitCode}): ${result.stderr.toString()}`);
}
