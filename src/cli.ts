#!/usr/bin/env bun
// The confd command: parse flags, load the configuration and the template resources, own the store
// client, run once or hand over to run.ts (watch, interval, SIGHUP reloads), and stop cleanly on a signal.
import pkg from "../package.json" with { type: "json" };
import { createStoreClient } from "./backends/index.ts";
import { encodeText } from "./bytes.ts";
import { describeError, UsageError, withContext } from "./errors.ts";
import { writeFully } from "./fd.ts";
import { lessJit } from "./jit.ts";
import { configureLog, log, redact, type LogFormat, type LogLevel } from "./log.ts";
import { OPTIONS, type Config } from "./options.ts";
import type { Job } from "./processor.ts";
import type { StoreClient } from "./store.ts";

/** The commit a binary was built from, defined by scripts/build.ts; absent when run from source. */
declare const CONFD_REVISION: string | undefined;

// `confd --version` and `--help` alone answer before the modules below load: yargs and the TOML parser
// cost a binary about 15 MiB and 15 ms, and those flags need neither.
if (import.meta.main && process.argv.length === 3) {
  const flag = process.argv[2]!.replace(/^--?/, "").replace(/=true$/, "");
  if (flag === "version") {
    print(1, versionText());
    process.exit(0);
  }
  if (flag === "help" || flag === "h") {
    print(1, (await import("./flags.ts")).usage());
    process.exit(0);
  }
}

lessJit();
const { loadConfig } = await import("./config.ts");
const { parseFlags, usage } = await import("./flags.ts");
const { catalogOf } = await import("./catalog.ts");
const { processAll } = await import("./processor.ts");
const { JobSet, runUntilStopped } = await import("./run.ts");
const { storeKeys } = await import("./resource.ts");

/** How long a signal waits for syncs in flight before exiting anyway (commands have their own timeouts). */
const SHUTDOWN_GRACE_MS = 90_000;

const SIGNAL_NUMBERS = { SIGINT: 2, SIGTERM: 15 } as const;

export async function main(argv: readonly string[]): Promise<number> {
  let flags;
  try {
    flags = parseFlags(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    return usageFailure(err);
  }
  if (flags.help) {
    print(1, usage());
    return 0;
  }
  if (flags.version) {
    print(1, versionText());
    return 0;
  }

  if (flags.checkConfig) {
    const { checkConfig } = await import("./check.ts");
    try {
      const { text, code } = await checkConfig(flags, process.env);
      print(1, text);
      return code;
    } catch (err) {
      if (err instanceof UsageError) return usageFailure(err);
      throw err;
    }
  }

  let config: Config;
  try {
    const loaded = loadConfig(flags, process.env);
    config = loaded.config;
    configureLog({ level: config.logLevel as LogLevel, format: config.logFormat as LogFormat });
    for (const note of loaded.notes) log.debug(note);
    for (const warning of loaded.warnings) log.warning(warning);
  } catch (err) {
    if (err instanceof UsageError) return usageFailure(err);
    // The configuration is not whole, but a log format asked for on the command line still holds.
    if ((flags.logFormat ?? process.env.CONFD_LOG_FORMAT) === "json") configureLog({ format: "json" });
    log.fatal(describeError(withContext(err, {})));
    return 1;
  }
  for (const o of OPTIONS) if (o.secret) redact(String(config[o.field]));

  log.info(`Backend set to ${config.backend}`);

  let client: StoreClient;
  try {
    client = await createStoreClient(config);
  } catch (err) {
    log.fatal(describeError(withContext(err, {})));
    return 1;
  }

  const catalogAvailable = catalogOf(client) !== undefined;
  const { set, loadFailures } = await JobSet.load(config, catalogAvailable);
  const metrics = config.metricsAddr ? await serveMetrics(config, set.jobs, client) : undefined;
  if (metrics === null) {
    await set.stopAll();
    await client.close();
    return 1;
  }
  const stop = new AbortController();
  const onSignal = (signal: keyof typeof SIGNAL_NUMBERS) => {
    if (stop.signal.aborted) {
      // Asked twice: a sync blocked on the destination (a FIFO, a stalled NFS mount) must not hold the
      // process for the whole grace period. Exit status as a shell reports death by that signal.
      const killed = set.killCommands();
      log.warning(`Received ${signal} again; exiting now${killed > 0 ? ` after killing ${killed} running command${killed === 1 ? "" : "s"}` : ""}`);
      process.exit(128 + SIGNAL_NUMBERS[signal]);
    }
    log.info(`Received ${signal}; finishing syncs in progress, then exiting (send it again to exit at once)`);
    stop.abort();
    setTimeout(() => {
      log.warning(`syncs still running after ${SHUTDOWN_GRACE_MS / 1000}s; exiting`);
      process.exit(0);
    }, SHUTDOWN_GRACE_MS).unref();
  };
  process.on("SIGTERM", () => onSignal("SIGTERM"));
  process.on("SIGINT", () => onSignal("SIGINT"));

  try {
    if (config.onetime) {
      // A run that ends by itself has nothing to reload; a SIGHUP sent to every confd of a host (after an
      // edit of conf.d, say) must not kill it between replacing a file and reloading its service.
      if (process.platform !== "win32") process.on("SIGHUP", () => log.debug("Received SIGHUP: ignored with -onetime, which ends after this run"));
      const result = await processAll(client, set.jobs);
      return result.failed + loadFailures > 0 ? 1 : 0;
    }
    if (config.watch && config.backend === "env") {
      log.info("The env backend cannot change while confd runs: with -watch its resources render once, then confd waits for a signal");
    }
    await runUntilStopped(set, client, { flags, env: process.env, catalogAvailable }, stop.signal);
    return 0;
  } finally {
    await set.stopAll();
    await client.close();
    await metrics?.stop();
  }
}

/** -metrics-addr: the module and its server load only when asked for; null when it cannot listen (said). */
async function serveMetrics(config: Config, jobs: readonly Job[], client: StoreClient): Promise<{ stop(): Promise<void> } | null> {
  const { startMetrics } = await import("./metrics.ts");
  try {
    const mode = config.onetime ? "onetime" : config.watch ? "watch" : "interval";
    const probeKey = jobs.flatMap((j) => storeKeys(j.resource))[0];
    const server = startMetrics(config.metricsAddr, mode, jobs.map((j) => j.resource.name), () => client.getValues(probeKey ? [probeKey] : []));
    log.info(`Serving /metrics, /healthz, /readyz and /status on ${server.address}${config.onetime ? " during this run only (-onetime)" : ""}`);
    return server;
  } catch (err) {
    log.fatal(describeError(withContext(err, {})));
    return null;
  }
}

/** As Go's flag package fails: the problem, a hint, exit status 2. */
function usageFailure(err: UsageError): number {
  print(2, `confd: ${err.message}\nRun 'confd --help' for usage.\n`);
  return 2;
}

/**
 * Text written whole before the process exits, as fd.ts explains; through process.stdout it could be
 * cut short, and merely touching process.stdout cost `confd --version` about 3 MiB and 3 ms.
 */
function print(fd: 1 | 2, text: string): void {
  try {
    writeFully(fd, encodeText(text));
  } catch {
    // Nobody to tell: the reader is gone (`confd --help | head -1`).
  }
}

/** confd's own format ("confd 0.16.0 (Git SHA: 7217b0ca, Go Version: go1.10.2)"), for scripts that read it. */
function versionText(): string {
  const revision = typeof CONFD_REVISION === "string" ? CONFD_REVISION : sourceRevision();
  return `confd ${pkg.version} (Git SHA: ${revision}, Bun Version: ${Bun.version})\n`;
}

/** From source: the checkout's commit when git is there to say, else "unknown". */
function sourceRevision(): string {
  try {
    const git = Bun.spawnSync(["git", "rev-parse", "--short=12", "HEAD"], { cwd: import.meta.dir, stdout: "pipe", stderr: "ignore" });
    return git.exitCode === 0 ? git.stdout.toString().trim() : "unknown";
  } catch {
    return "unknown";
  }
}

if (import.meta.main) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err) => {
      log.fatal(`unexpected error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
      process.exit(1);
    },
  );
}
