// What a SIGHUP would change: confd.toml, conf.d and the templates read again by the code a start uses
// (config.ts, load.ts, as -check-config does), every problem collected, and the new set compared with the
// running one resource by resource. Nothing is applied here (run.ts swaps the set): a reload with any
// problem is refused whole, so a half-edited confdir never replaces a working one.
import { join } from "node:path";
import { loadConfig } from "./config.ts";
import { ConfdError, withContext } from "./errors.ts";
import type { FlagValues } from "./flags.ts";
import { loadConfdir, type LoadedTemplate } from "./load.ts";
import type { LogLevel } from "./log.ts";
import { OPTIONS, type Config } from "./options.ts";
import type { WorkerInit } from "./protocol.ts";

/**
 * The options a reload may change: those read only when loading the resources or starting their workers.
 * Any other (the store's address and credentials, the mode, -metrics-addr, -worker-idle, -color) is set up
 * once at start, and a change to it refuses the reload rather than being ignored in silence.
 */
const RELOADABLE = new Set<keyof Config>([
  "confdir",
  "prefix",
  "templateEngine",
  "noop",
  "syncOnly",
  "keepStageFile",
  "logLevel",
  "logFormat",
  "wait",
  "splay",
  "interval",
]);

/** A running resource as the reload compares it: what its worker was started with. */
export interface RunningResource {
  init: WorkerInit;
}

export interface ReloadPlan<R extends RunningResource> {
  config: Config;
  /** The new set in conf.d's order: a running resource kept as it is, or a new one to start. */
  next: (R | WorkerInit)[];
  added: WorkerInit[];
  changed: { old: R; next: WorkerInit }[];
  removed: R[];
  unchanged: R[];
}

/** Warnings are said whether or not the reload goes ahead. */
export type ReloadResult<R extends RunningResource> = ({ plan: ReloadPlan<R> } | { problems: string[] }) & { warnings: string[] };

/** What a worker for this resource starts with under this configuration. */
export function workerInit({ resource, template }: LoadedTemplate, config: Config): WorkerInit {
  return { resource, template, noop: config.noop, syncOnly: config.syncOnly, keepStageFile: config.keepStageFile, logLevel: config.logLevel as LogLevel };
}

export async function planReload<R extends RunningResource>(
  flags: FlagValues,
  env: Readonly<Record<string, string | undefined>>,
  current: Config,
  running: readonly R[],
  catalogAvailable: boolean,
): Promise<ReloadResult<R>> {
  const problems: ConfdError[] = [];
  const warnings: string[] = [];
  let config: Config;
  try {
    const loaded = loadConfig(flags, env, problems);
    config = loaded.config;
    warnings.push(...loaded.warnings);
  } catch (err) {
    return { problems: [withContext(err, {}).describe()], warnings };
  }
  const fixed = OPTIONS.filter((o) => !RELOADABLE.has(o.field) && !Bun.deepEquals(config[o.field], current[o.field]));
  if (fixed.length > 0) {
    // Named by flag only: the values may be credentials.
    const names = fixed.map((o) => `-${o.flag}`).join(", ");
    problems.push(new ConfdError(`${names} changed; ${fixed.length === 1 ? "it takes" : "they take"} effect only on a restart`, { file: config.configFile }));
  }
  const confdir = await loadConfdir(config, catalogAvailable);
  problems.push(...confdir.errors);
  warnings.push(...confdir.warnings);
  // As -check-config: a set of nothing is more likely a mistyped -confdir or a conf.d being rewritten than
  // a wish to stop rendering everything.
  if (confdir.loaded.length === 0 && confdir.errors.length === 0) {
    problems.push(new ConfdError(`no template resources in ${join(config.confdir, "conf.d")}`, { flag: "-confdir" }));
  }
  if (problems.length > 0) return { problems: problems.map((p) => withContext(p, {}).describe()), warnings };

  const byName = new Map(running.map((r) => [r.init.resource.name, r]));
  const plan: ReloadPlan<R> = { config, next: [], added: [], changed: [], removed: [], unchanged: [] };
  for (const loaded of confdir.loaded) {
    const init = workerInit(loaded, config);
    const old = byName.get(init.resource.name);
    byName.delete(init.resource.name);
    if (old && Bun.deepEquals(old.init, init, true)) {
      plan.unchanged.push(old);
      plan.next.push(old);
    } else {
      if (old) plan.changed.push({ old, next: init });
      else plan.added.push(init);
      plan.next.push(init);
    }
  }
  plan.removed.push(...byName.values());
  return { plan, warnings };
}
