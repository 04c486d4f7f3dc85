// A real DNS server for tests: Debian's dnsmasq in the foreground, answering from a generated config
// (SRV and address records under confd.test, every other name there NXDOMAIN, nothing forwarded), on
// port 53 of a spare loopback address, stopped by PID. confd is run with it as its system resolver:
// `wrap` runs a command in a private mount namespace (unshare --mount) where /etc/resolv.conf is a
// bind mount of a file naming that address, so what is tested is the real path (c-ares reading
// resolv.conf for the SRV lookup, getaddrinfo for the targets' addresses). Mounting takes root.
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Lines, tempDir } from "./helpers.ts";

const DNSMASQ = "/usr/sbin/dnsmasq";
/** The zone the server answers for; .test is reserved for testing (RFC 6761). */
export const ZONE = "confd.test";

export interface SrvSpec {
  /** The record's name, e.g. "_etcd._tcp.confd.test". */
  name: string;
  target: string;
  port: number;
  priority: number;
  weight: number;
}

export interface Records {
  srv: SrvSpec[];
  /** Host name → IPv4 address. */
  hosts: Record<string, string>;
}

export interface DnsServer {
  /** The loopback address it answers on (port 53). */
  readonly address: string;
  /** The command prefix that runs a command (its arguments) with this server as the system resolver. */
  readonly wrap: readonly string[];
  /** Serves `records` instead: the server is restarted with a new config on the same address. */
  serve(records: Records): Promise<void>;
  stop(): Promise<void>;
}

/** Why the DNS tests cannot run here, or undefined when they can. */
export function unavailable(): string | undefined {
  if (process.getuid?.() !== 0) return "not root: running confd with its own /etc/resolv.conf takes `unshare --mount`";
  if (!Bun.which("unshare")) return "no unshare (util-linux)";
  if (!existsSync(DNSMASQ)) return `no ${DNSMASQ} (Debian: apt-get install dnsmasq)`;
  return undefined;
}

/** The command prefix that runs a command (its arguments) with `file` as its /etc/resolv.conf. */
export function withResolvConf(file: string): string[] {
  return ["unshare", "--mount", "sh", "-ec", 'mount --bind "$1" /etc/resolv.conf; shift; exec "$@"', "sh", file];
}

/** A loopback address per candidate; port 53 on one may be taken (another test run's server). */
const CANDIDATES = 20;

export async function startDns(records: Records): Promise<DnsServer> {
  const dir = tempDir("confd-dns-");
  // Not random: the process id spreads concurrent runs over the candidates.
  const first = process.pid % 200;
  for (let i = 0; i < CANDIDATES; i++) {
    const address = `127.53.${Math.floor((first + i) / 250)}.${((first + i) % 250) + 1}`;
    const launched = await launch(dir.path, address, records);
    if (launched === "address in use") continue;
    return server(dir, address, launched, records);
  }
  dir.cleanup();
  throw new Error(`dnsmasq: port 53 is taken on every one of ${CANDIDATES} loopback addresses tried`);
}

function server(dir: { path: string; cleanup(): void }, address: string, first: Bun.Subprocess, records: Records): DnsServer {
  let proc = first;
  const resolvConf = join(dir.path, "resolv.conf");
  writeFileSync(resolvConf, `nameserver ${address}\n`);
  const halt = async () => {
    if (proc.exitCode === null && proc.signalCode === null) process.kill(proc.pid, "SIGTERM");
    await proc.exited;
  };
  return {
    address,
    wrap: withResolvConf(resolvConf),
    async serve(next: Records) {
      records = next;
      await halt();
      const launched = await launch(dir.path, address, records);
      if (launched === "address in use") throw new Error(`dnsmasq: port 53 on ${address} was taken while it restarted`);
      proc = launched;
    },
    async stop() {
      await halt();
      dir.cleanup();
    },
  };
}

/** Starts dnsmasq; resolves once it serves, or with "address in use". */
async function launch(dir: string, address: string, records: Records): Promise<Bun.Subprocess | "address in use"> {
  const conf = join(dir, "dnsmasq.conf");
  writeFileSync(conf, config(address, records));
  const proc = Bun.spawn([DNSMASQ, "--keep-in-foreground", `--conf-file=${conf}`, "--log-facility=-", `--pid-file=${join(dir, "dnsmasq.pid")}`], {
    stdin: "ignore",
    stdout: "ignore",
    stderr: "pipe",
  });
  const log = new Lines(proc.stderr);
  try {
    // Logged once its sockets are bound; a socket it cannot bind ends it with a line saying so.
    await log.waitFor(/started, version/);
    return proc;
  } catch (err) {
    await proc.exited;
    if (log.seen.some((l) => l.includes("Address already in use"))) return "address in use";
    throw err;
  }
}

function config(address: string, records: Records): string {
  return [
    "no-resolv",
    "no-hosts",
    "bind-interfaces",
    `listen-address=${address}`,
    "port=53",
    // Names under the zone without records are NXDOMAIN, not forwarded (there is nowhere to forward to).
    `local=/${ZONE}/`,
    ...records.srv.map((r) => `srv-host=${r.name},${r.target},${r.port},${r.priority},${r.weight}`),
    ...Object.entries(records.hosts).map(([host, ip]) => `host-record=${host},${ip}`),
    "",
  ].join("\n");
}
