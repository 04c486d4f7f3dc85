// Benchmark (not a test) for issue 11: `-onetime` reading 1,000 keys from each store, ours beside confd
// master where confd has the store. Each store runs here as the tests run it (a real server, an
// emulator, or an HTTP double where nothing else can be installed: test/*-server.ts, test/*-double.ts;
// Consul, Vault and SSM are doubles, so their rows measure the client side only),
// seeded with KEYS keys "/bench/k0000".."/bench/k0999", and one resource renders them all with a Go
// template both implementations accept.
//   bun scripts/bench-stores.ts --confd /tmp/confd-go --binary dist/confd-0.1.0-linux-x64
//   options: --stores etcd,redis,...   --runs 5   --keys 1000
// Without --confd only ours runs.
//
// What it reports, per store and implementation: the median wall time (min-max) of a -onetime run
// reading KEYS keys, of one reading a single key, and their difference: the time to read the other
// keys, with connecting, start-up and exit taken out. Runs alternate between ours and confd, and which
// goes first alternates too, so a burst of load from elsewhere lands on both. Both outputs are compared
// byte for byte once per store. The stores' own processes run on the same 2 cores.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { Etcd3 } from "etcd3";
import Redis from "ioredis";
import { TEST_CREDENTIALS } from "../test/aws-env.ts";
import { startConsulDouble } from "../test/consul-double.ts";
import { startDynalite } from "../test/dynamo-server.ts";
import { startEtcd } from "../test/etcd-server.ts";
import { startRedis } from "../test/redis-server.ts";
import { startSsmDouble } from "../test/ssm-double.ts";
import { startVaultDouble } from "../test/vault-double.ts";
import { startZookeeper, zkWriter } from "../test/zookeeper-server.ts";

const { values: args } = parseArgs({
  options: {
    confd: { type: "string" },
    binary: { type: "string" },
    stores: { type: "string" },
    runs: { type: "string", default: "5" },
    keys: { type: "string", default: "1000" },
  },
});
const RUNS = Number(args.runs);
const KEYS = Number(args.keys);
const OURS: string[] = args.binary ? [resolve(args.binary)] : [process.execPath, join(import.meta.dir, "..", "src", "cli.ts")];
const CONFD: string | undefined = args.confd ? resolve(args.confd) : undefined;

type Who = "ours" | "confd";

/** A store holding the bench keys, and how each implementation is pointed at it. */
interface Store {
  /** confd's flags (and environment) for it; ours takes the same. */
  flags: string[];
  env?: Record<string, string>;
  /** Not every store exists in confd; a note on why when it is left out. */
  confdSkip?: string;
  close(): Promise<void>;
}

/** Sets the bench keys, then returns the store. */
type StoreStarter = (keys: Map<string, string>) => Promise<Store>;

const STORES: Record<string, StoreStarter> = {
  async etcd(keys) {
    const server = await startEtcd();
    const client = new Etcd3({ hosts: server.endpoint });
    const entries = [...keys];
    for (let i = 0; i < entries.length; i += 100) await Promise.all(entries.slice(i, i + 100).map(([k, v]) => client.put(k).value(v)));
    return {
      flags: ["-backend", "etcdv3", "-node", server.endpoint],
      close: async () => {
        client.close();
        await server.stop();
      },
    };
  },
  async redis(keys) {
    const server = await startRedis();
    const client = new Redis({ host: "127.0.0.1", port: server.port, lazyConnect: true });
    await client.connect();
    await client.mset(...[...keys].flat());
    client.disconnect();
    return { flags: ["-backend", "redis", "-node", `127.0.0.1:${server.port}`], close: () => server.stop() };
  },
  async consul(keys) {
    const double = startConsulDouble();
    for (const [k, v] of keys) double.set(k, v);
    return { flags: ["-backend", "consul", "-node", double.node], close: () => double.stop() };
  },
  async zookeeper(keys) {
    const server = await startZookeeper();
    await zkWriter(server.node).putAll(keys);
    return { flags: ["-backend", "zookeeper", "-node", server.node], close: () => server.stop() };
  },
  async vault(keys) {
    // KV v1, the one confd reads: one secret per key, its value in the field "value".
    const double = startVaultDouble();
    double.mount("bench", 1);
    for (const [k, v] of keys) double.write(k.slice(1), { value: v });
    return { flags: ["-backend", "vault", "-node", double.url, "-auth-type", "token", "-auth-token", double.createToken()], close: () => double.stop() };
  },
  async dynamodb(keys) {
    // confd's DYNAMODB_LOCAL means http://localhost:8000, whatever its value.
    const server = await startDynalite({ port: 8000 });
    await server.putMany(keys);
    return { flags: ["-backend", "dynamodb", "-table", server.table], env: { ...TEST_CREDENTIALS, DYNAMODB_LOCAL: "1" }, close: () => server.stop() };
  },
  async ssm(keys) {
    // confd's SSM_LOCAL means http://localhost:8001, whatever its value.
    const double = startSsmDouble({ credentials: { [TEST_CREDENTIALS.AWS_ACCESS_KEY_ID]: TEST_CREDENTIALS.AWS_SECRET_ACCESS_KEY }, port: 8001 });
    for (const [k, v] of keys) double.put(k, v);
    return { flags: ["-backend", "ssm"], env: { ...TEST_CREDENTIALS, SSM_LOCAL: "1" }, close: () => double.stop() };
  },
  async env(keys) {
    const env: Record<string, string> = {};
    for (const [k, v] of keys) env[k.slice(1).replaceAll("/", "_").toUpperCase()] = v;
    return { flags: ["-backend", "env"], env, close: async () => {} };
  },
};

function benchKeys(n: number): Map<string, string> {
  const keys = new Map<string, string>();
  for (let i = 0; i < n; i++) keys.set(`/bench/k${String(i).padStart(4, "0")}`, `value-${i}`);
  return keys;
}

/** A confdir with one resource reading `keys` into out/bench.conf. */
function confdir(keys: readonly string[]): { dir: string; dest: string } {
  const dir = mkdtempSync(join(tmpdir(), "confd-bench-stores-"));
  mkdirSync(join(dir, "conf.d"));
  mkdirSync(join(dir, "templates"));
  const dest = join(dir, "bench.conf");
  writeFileSync(join(dir, "templates", "bench.tmpl"), "{{range gets \"/bench/*\"}}{{.Key}}={{.Value}}\n{{end}}");
  writeFileSync(join(dir, "conf.d", "bench.toml"), `[template]\nsrc = "bench.tmpl"\ndest = "${dest}"\nkeys = ${JSON.stringify(keys)}\n`);
  writeFileSync(join(dir, "confd.toml"), "");
  return { dir, dest };
}

async function run(who: Who, store: Store, dir: string): Promise<number> {
  const argv = [...(who === "ours" ? OURS : [CONFD!]), "-onetime", "-confdir", dir, "-config-file", join(dir, "confd.toml"), "-log-level", "error", ...store.flags];
  const started = performance.now();
  const child = Bun.spawn(argv, { env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...store.env }, stdout: "pipe", stderr: "pipe" });
  const [code, , stderr] = await Promise.all([child.exited, new Response(child.stdout).text(), new Response(child.stderr).text()]);
  const ms = performance.now() - started;
  if (code !== 0) throw new Error(`${who} exited ${code}: ${stderr.trim().split("\n").slice(-3).join(" | ")}`);
  return ms;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function spread(xs: number[]): string {
  return `${median(xs).toFixed(0)} ms (${Math.min(...xs).toFixed(0)}–${Math.max(...xs).toFixed(0)})`;
}

const names = args.stores ? args.stores.split(",") : Object.keys(STORES);
const rows: string[] = [];
const notes: string[] = [];
const all = benchKeys(KEYS);
for (const name of names) {
  const starter = STORES[name];
  if (!starter) throw new Error(`unknown store ${name} (have ${Object.keys(STORES).join(", ")})`);
  const store = await starter(all);
  const who: Who[] = CONFD && !store.confdSkip ? ["ours", "confd"] : ["ours"];
  if (CONFD && store.confdSkip) notes.push(`${name}: confd not run (${store.confdSkip})`);
  const many = confdir(["/bench"]);
  const one = confdir(["/bench/k0000"]);
  try {
    const times: Record<Who, { many: number[]; one: number[] }> = { ours: { many: [], one: [] }, confd: { many: [], one: [] } };
    for (let r = 0; r < RUNS; r++) {
      const order = r % 2 === 0 ? who : [...who].reverse();
      for (const w of order) {
        times[w].many.push(await run(w, store, many.dir));
        times[w].one.push(await run(w, store, one.dir));
      }
    }
    if (who.length === 2) {
      // The last run of each wrote the same destination: compare the two outputs once.
      await run("ours", store, many.dir);
      const ours = readFileSync(many.dest);
      await run("confd", store, many.dir);
      const theirs = readFileSync(many.dest);
      notes.push(`${name}: ours and confd wrote ${ours.equals(theirs) ? "the same" : "DIFFERENT"} ${ours.length}-byte file`);
    }
    for (const w of who) {
      const t = times[w];
      rows.push(`| ${name} | ${w} | ${spread(t.many)} | ${spread(t.one)} | ${(median(t.many) - median(t.one)).toFixed(0)} ms |`);
    }
  } finally {
    rmSync(many.dir, { recursive: true, force: true });
    rmSync(one.dir, { recursive: true, force: true });
    await store.close();
  }
}

console.log(`-onetime with ${KEYS} keys; median (min–max) of ${RUNS} runs; load average ${readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(", ")}`);
console.log(`| store | who | ${KEYS} keys | 1 key | reading the other ${KEYS - 1} |`);
console.log("|---|---|---|---|---|");
for (const row of rows) console.log(row);
for (const note of notes) console.log(`- ${note}`);
