// When a fleet renders and reloads, read in the main thread at load: each resource's `wait` (quiescence,
// applied by watch.ts), `splay` and `min_reload_interval` (when its reload runs: reload-delay.ts, in the
// worker's sync or in the group reload), and `reload_group` (resources synced as a batch and reloaded
// once: reload-group.ts). The global `wait` and `splay` options fill in for resources that set none.
// With none of these set, a resource carries none of the fields and every code path is as before.
import { hostname } from "node:os";
import { withKeyLine } from "./config.ts";
import { ConfdError } from "./errors.ts";
import { parseWait, type WaitWindow } from "./options.ts";
import { fieldsUsed, parseDuration, type LoadedResources, type ResourceSpec } from "./resource.ts";

export interface FleetSettings {
  /** Quiescence: render when no change came for minMs, at the latest maxMs after the first change. */
  wait?: WaitWindow;
  /** The splay window, and this host's fixed share of it (applyFleetDefaults). */
  splayMs?: number;
  splayOffsetMs?: number;
  /** The reload group's name: its members' reload_cmd runs once per batch, in the main thread. */
  reloadGroup?: string;
  /** The least time between two reloads of this resource (or its group); a reload due sooner waits. */
  minReloadIntervalMs?: number;
}

/** The resource's own fleet keys from its `[template]` table; only the keys it sets appear. */
export function readFleetKeys(table: Record<string, unknown>, file: string): FleetSettings {
  const out: FleetSettings = {};
  if (table.wait !== undefined) {
    const wait = typeof table.wait === "string" ? parseWait(table.wait) : undefined;
    if (!wait) throw new ConfdError(`key "wait" must be a window "min:max" like "2s:10s" (min > 0, max >= min), got ${JSON.stringify(table.wait)}`, { file, key: "wait" });
    out.wait = wait;
  }
  const splay = parseDuration(table.splay, "splay", file);
  if (splay !== undefined) out.splayMs = splay;
  const interval = parseDuration(table.min_reload_interval, "min_reload_interval", file);
  if (interval !== undefined) out.minReloadIntervalMs = interval;
  if (table.reload_group !== undefined) {
    if (typeof table.reload_group !== "string" || table.reload_group.trim() === "") {
      throw new ConfdError(`key "reload_group" must be a non-empty string, got ${JSON.stringify(table.reload_group)}`, { file, key: "reload_group" });
    }
    out.reloadGroup = table.reload_group;
  }
  return out;
}

/**
 * A reload group's members must agree on one reload_cmd, which names no file ({{.src}}, {{.dest}}: it
 * runs once for all of them), and have no health_cmd nor backup, whose rollback is per file and per
 * reload. A group that breaks this fails each member's load, naming its file.
 */
export function rejectBadGroups(result: LoadedResources): void {
  const groups = new Map<string, ResourceSpec[]>();
  for (const r of result.resources) if (r.reloadGroup !== undefined) groups.set(r.reloadGroup, [...(groups.get(r.reloadGroup) ?? []), r]);
  for (const [group, members] of groups) {
    const errors: ConfdError[] = [];
    const fail = (r: ResourceSpec, key: string, message: string) =>
      errors.push(withKeyLine(new ConfdError(`reload_group "${group}": ${message}`, { resource: r.name, file: r.file, key }), "template") as ConfdError);
    const first = members[0]!;
    for (const r of members) {
      if (!r.reloadCmd) fail(r, "reload_group", "the resource has no reload_cmd (every member runs the group's one)");
      else if (r.reloadCmd.text !== first.reloadCmd?.text) fail(r, "reload_cmd", `members disagree on reload_cmd (${members.map((m) => m.file).join(", ")})`);
      else if (fieldsUsed(r.reloadCmd.tree).length > 0) fail(r, "reload_cmd", "a group's reload_cmd runs once for all its files, so it cannot use {{.src}} or {{.dest}}");
      if (r.health) fail(r, "health_cmd", "health_cmd cannot be used in a reload group (it belongs to one file's reload)");
      if (r.backup) fail(r, "backup", "backup cannot be used in a reload group (its rollback belongs to one file's reload)");
    }
    if (errors.length === 0) continue;
    result.errors.push(...errors);
    result.resources = result.resources.filter((r) => r.reloadGroup !== group);
  }
}

/**
 * The host's name for splay: $HOSTNAME when set (containers and Kubernetes pods set it to the pod's
 * name, and a test can give two processes two names), else the kernel's (os.hostname()).
 */
export function hostName(env: Readonly<Record<string, string | undefined>> = process.env): string {
  return env.HOSTNAME || hostname();
}

/** This host's fixed share of a splay window: FNV-1a (32 bits) of host and name, scaled to the window, whole milliseconds. */
export function splayOffset(host: string, name: string, windowMs: number): number {
  let h = 0x811c9dc5;
  for (const byte of new TextEncoder().encode(`${host}\n${name}`)) h = Math.imul(h ^ byte, 0x01000193) >>> 0;
  return Math.floor((h / 2 ** 32) * windowMs);
}

/**
 * The global -wait and -splay for resources that set none, and each resource's splay offset on this
 * host. Under -sync-only no reload runs, so reload groups are dropped: their members sync as any other.
 */
export function applyFleetDefaults(resources: ResourceSpec[], global: { wait: string; splay: number; syncOnly: boolean }, host: () => string = hostName): void {
  const wait = global.wait === "" ? undefined : parseWait(global.wait);
  for (const r of resources) {
    if (r.wait === undefined && wait !== undefined) r.wait = wait;
    if (r.splayMs === undefined && global.splay > 0) r.splayMs = global.splay;
    // A group's members share the group's offset: it is the group that reloads.
    if (r.splayMs !== undefined) r.splayOffsetMs = splayOffset(host(), r.reloadGroup ?? r.name, r.splayMs);
    if (global.syncOnly) delete r.reloadGroup;
  }
}
