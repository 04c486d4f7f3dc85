// Reload groups (reload_group in [template]): after a batch of syncs, each group with a member whose file
// changed runs its reload_cmd once, here in the main thread (the members' workers skip it, sync.ts). The
// group's wait before it (splay, min_reload_interval: reload-delay.ts) is its members' longest. When it
// fails, every member of the batch fails with the error. Loaded only when some resource is in a group.
import { runCommand } from "./command.ts";
import { ConfdError } from "./errors.ts";
import { executeGoTemplate } from "./gotemplate-exec.ts";
import { log } from "./log.ts";
import type { Job } from "./processor.ts";
import { reloadDelay, waitBeforeReload } from "./reload-delay.ts";
import { commandError, type SyncOutcome } from "./sync.ts";

export interface BatchMember {
  job: Job;
  /** Undefined when the member's sync failed. */
  outcome: SyncOutcome | undefined;
}

/** When each group last reloaded (performance.now()), for min_reload_interval. */
const lastReload = new Map<string, number>();
/**
 * Each group's reload in progress (with its wait): in -watch, the next batch can be synced while the last
 * one's reload runs, and a service is not reloaded twice at once; the next reload starts after it.
 */
const running = new Map<string, Promise<unknown>>();

/** Runs the reload of every group changed in the batch; the members that fail with their group's reload, and why. */
export async function reloadGroups(batch: readonly BatchMember[]): Promise<Map<Job, ConfdError>> {
  const groups = new Map<string, BatchMember[]>();
  for (const m of batch) {
    const g = m.job.resource.reloadGroup;
    if (g !== undefined) groups.set(g, [...(groups.get(g) ?? []), m]);
  }
  const failed = new Map<Job, ConfdError>();
  await Promise.all(
    [...groups].map(async ([group, members]) => {
      const changed = members.filter((m) => m.outcome?.changed);
      if (changed.length === 0) return;
      const previous = running.get(group);
      const run = () => reloadGroup(group, members.map((m) => m.job), changed.length);
      const reload = previous ? previous.then(run, run) : run();
      running.set(group, reload);
      const error = await reload.finally(() => running.get(group) === reload && running.delete(group));
      if (error) for (const m of members) failed.set(m.job, new ConfdError(error.message, { ...error.context, resource: m.job.resource.name, file: m.job.resource.file }));
    }),
  );
  return failed;
}

async function reloadGroup(group: string, jobs: readonly Job[], changed: number): Promise<ConfdError | undefined> {
  const specs = jobs.map((j) => j.resource);
  // The members agree on reload_cmd (fleet.ts rejectBadGroups); timing is the most patient member's.
  const first = specs[0]!;
  const splayFrom = specs.reduce((a, b) => ((b.splayMs ?? 0) > (a.splayMs ?? 0) ? b : a));
  const timing = {
    splayMs: splayFrom.splayMs,
    splayOffsetMs: splayFrom.splayOffsetMs,
    minReloadIntervalMs: Math.max(...specs.map((s) => s.minReloadIntervalMs ?? 0)) || undefined,
  };
  const timeoutMs = Math.max(...specs.map((s) => s.reloadTimeoutMs));
  const delay = reloadDelay(timing, lastReload.get(group), performance.now());
  if (delay) {
    log.info(`Reload of group ${group} delayed ${delay.ms} ms (${delay.why})`);
    if ((await waitBeforeReload(delay.ms)) === "hurried") log.info(`Reload of group ${group} no longer delayed: shutting down`);
  }
  lastReload.set(group, performance.now());
  // A group's command uses no field (rejectBadGroups), so it renders the same for every member.
  const command = executeGoTemplate(first.reloadCmd!.tree, { src: "", dest: "" }, {});
  log.info(`Reloading group ${group} once for ${changed} changed resource${changed === 1 ? "" : "s"} of ${jobs.length}`);
  log.debug(`Running reload command ${command}`);
  const result = await runCommand(command, { timeoutMs });
  if (!result.ok) {
    const err = commandError("reload_cmd", timeoutMs, result, first, 1);
    return new ConfdError(`reload_group "${group}": ${err.message}`, err.context);
  }
  if (result.output) log.debug(`reload_cmd output: ${result.output.trimEnd()}`);
  log.info(`Group ${group} has been reloaded`);
  return undefined;
}
