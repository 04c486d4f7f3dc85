// One run over every resource: read the store once for the union of all resources' keys, hand each
// worker the values under its own keys (relative to its prefix, as confd's templates see them), and
// collect the outcomes. Also the interval loop that repeats runs until stopped.
import { posix } from "node:path";
import { isUnder, type StoreClient } from "./backends/index.ts";
import { describeError, withContext } from "./errors.ts";
import { log } from "./log.ts";
import { storeKeys, type ResourceSpec } from "./resource.ts";
import type { ResourceWorker } from "./workers.ts";

export interface Job {
  resource: ResourceSpec;
  worker: ResourceWorker;
}

export interface RunResult {
  succeeded: number;
  failed: number;
}

export async function processAll(client: StoreClient, jobs: readonly Job[]): Promise<RunResult> {
  if (jobs.length === 0) return { succeeded: 0, failed: 0 };
  const keys = [...new Set(jobs.flatMap((j) => storeKeys(j.resource)))];
  log.debug(`Retrieving ${keys.length} keys from the store: ${keys.join(" ")}`);
  let values: Map<string, string>;
  try {
    values = await client.getValues(keys);
  } catch (err) {
    log.error(`cannot read the store: ${describeError(withContext(err, {}))}`);
    return { succeeded: 0, failed: jobs.length };
  }
  log.debug(`Store returned ${values.size} keys`);

  const outcomes = await Promise.allSettled(jobs.map((j) => j.worker.sync(valuesFor(j.resource, values))));
  const result: RunResult = { succeeded: 0, failed: 0 };
  outcomes.forEach((o, i) => {
    if (o.status === "fulfilled") {
      result.succeeded++;
    } else {
      result.failed++;
      log.error(describeError(withContext(o.reason, { resource: jobs[i]!.resource.name })));
    }
  });
  return result;
}

/** The values a resource's template sees: those under its keys, with its prefix stripped. */
export function valuesFor(resource: ResourceSpec, all: ReadonlyMap<string, string>): Map<string, string> {
  const keys = storeKeys(resource);
  const out = new Map<string, string>();
  for (const [k, v] of all) {
    if (!keys.some((key) => isUnder(k, key))) continue;
    const relative = resource.prefix === "/" ? k : k.slice(resource.prefix.length);
    out.set(posix.join("/", relative), v);
  }
  return out;
}

/** Runs at once, then every `intervalMs`, until the signal aborts; a run in progress is finished first. */
export async function runInterval(client: StoreClient, jobs: readonly Job[], intervalMs: number, signal: AbortSignal): Promise<void> {
  while (!signal.aborted) {
    await processAll(client, jobs);
    await sleepUnlessAborted(intervalMs, signal);
  }
}

function sleepUnlessAborted(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}
