// Syncing one destination file: compare the rendered text with it, guard, stage the text beside it, check,
// back up, replace atomically, reload, check health, and roll back when the reload or the health check
// fails. The destination is only ever the old file or the complete new one, byte for byte: a write that
// fails part way (a full disk) leaves the old file and no stage file behind.
//
// Output guards (guards.ts) run under -noop too, since a refusal is what would happen. With `backup`, the
// replaced file is kept as <dest>.confd-prev and put back when reload_cmd or health_cmd fails; -sync-only
// runs no command, so nothing can fail there to roll back from (the backup is still kept).
import {
  closeSync, fchmodSync, fchownSync, fstatSync, fsyncSync, ftruncateSync, openSync, readFileSync, renameSync, statSync, unlinkSync,
} from "node:fs";
import { basename, dirname, join } from "node:path";
import { decodeBytes, encodeText } from "./bytes.ts";
import { runCommand, type CommandResult } from "./command.ts";
import { unifiedDiff } from "./diff.ts";
import { ConfdError, errnoText, withContext } from "./errors.ts";
import { writeFully } from "./fd.ts";
import { refuseBadRender } from "./guards.ts";
import type { LogRecord } from "./log.ts";
import { reloadDelay, waitBeforeReload as waitOrHurry } from "./reload-delay.ts";
import type { CommandRun } from "./protocol.ts";
import type { CommandData, CommandTemplate, ResourceSpec } from "./resource.ts";

export interface SyncOptions {
  noop: boolean;
  syncOnly: boolean;
  keepStageFile: boolean;
  log: (record: LogRecord) => void;
  /** Where --noop writes its diff: the command's output, not the log, since it shows values. */
  report: (text: string) => void;
  /** Told when a check or reload command starts and ends (runCommand's `running`). */
  commandRunning?: (pid: number, alive: boolean) => void;
  /** Told when a check, reload or health command ends: whether it succeeded and how long it took. */
  commandDone?: (run: CommandRun) => void;
  platform?: NodeJS.Platform;
}

export interface SyncOutcome {
  /** The destination was replaced (false when in sync, and always false under --noop). */
  changed: boolean;
  /** The destination differs from the rendered text (what --noop reports). */
  outOfSync: boolean;
}

interface FileState {
  mode: number;
  uid: number;
  gid: number;
  /** What the destination is when it is not a regular file. */
  special?: string;
}

/** Beside the destination: the version a sync replaced (backup = true), and a render rolled back. */
const PREVIOUS_SUFFIX = ".confd-prev";
const REJECTED_SUFFIX = ".confd-rejected";
/** Between the runs of a failing health_cmd: a service still starting up gets a moment, and the sync is not held long. */
const HEALTH_RETRY_PAUSE_MS = 1000;

type CommandKey = "check_cmd" | "reload_cmd" | "health_cmd";
const COMMAND_NAMES = { check_cmd: "check", reload_cmd: "reload", health_cmd: "health" } as const;

/** A file's content and how it is to be written. */
interface Version {
  bytes: Uint8Array;
  state: FileState;
}

/** `content` is rendered text; where its source was not UTF-8 it holds byte escapes (bytes.ts). */
export async function syncFile(spec: ResourceSpec, content: string, options: SyncOptions): Promise<SyncOutcome> {
  const { dest } = spec;
  const bytes = encodeText(content);
  const info = (message: string) => options.log({ level: "info", message });
  const debug = (message: string) => options.log({ level: "debug", message });
  const windows = (options.platform ?? process.platform) === "win32";

  const current = stat(dest);
  if (current?.special) {
    // As confd does, it is read to compare (which blocks until a FIFO has a writer) and then replaced.
    options.log({ level: "warning", message: `Target config ${dest} is a ${current.special}, not a regular file: reading it may block, and a regular file will replace it` });
  }
  // As in confd: an unset mode keeps the destination's (0644 for a new file); an unset owner is the process's own.
  const want: FileState = {
    mode: spec.mode ?? current?.mode ?? 0o644,
    uid: spec.uid ?? process.geteuid?.() ?? 0,
    gid: spec.gid ?? process.getegid?.() ?? 0,
  };

  // Compared in memory first: a file already in sync (most renders in watch mode) costs no write.
  const old = current ? readDestination(dest) : undefined;
  const differences = compare(current, old, bytes, want, windows);
  if (differences.length === 0) {
    debug(`Target config ${dest} in sync`);
    return { changed: false, outOfSync: false };
  }
  info(`Target config ${dest} out of sync: ${differences.join(", ")}`);

  // New content only: a file whose mode alone changes was accepted before.
  if (old === undefined || !old.equals(bytes)) await refuseBadRender(spec, content, old);

  if (options.noop) {
    options.log({ level: "warning", message: `Noop mode enabled. ${dest} will not be modified` });
    const diff = unifiedDiff(old ? decodeBytes(old) : "", content, dest, `${dest} (rendered)`);
    if (diff) options.report(diff);
    if (options.keepStageFile) debug(`Rendered file kept at ${stage(dest, bytes, want, windows)}`);
    return { changed: false, outOfSync: true };
  }

  // The stage file's path while it exists; a rename makes it the destination.
  let staged: string | undefined = stage(dest, bytes, want, windows);
  let keep = options.keepStageFile;
  try {
    // Runs a command, and `retries` more times after a pause while it fails.
    const hook = async (which: CommandKey, template: CommandTemplate | null, data: CommandData, timeoutMs: number, retries = 0) => {
      if (!template || options.syncOnly) return;
      const command = await renderCommand(template, data, which, spec);
      for (let attempt = 1; ; attempt++) {
        debug(`Running ${which.slice(0, -4)} command ${command}`);
        const started = performance.now();
        const result = await runCommand(command, { timeoutMs, platform: options.platform, running: options.commandRunning });
        options.commandDone?.({ command: COMMAND_NAMES[which], ok: result.ok, seconds: (performance.now() - started) / 1000 });
        if (result.ok) {
          if (result.output) debug(`${which} output: ${result.output.trimEnd()}`);
          return;
        }
        if (attempt > retries) throw commandError(which, timeoutMs, result, spec, attempt);
        debug(`${which} failed (attempt ${attempt} of ${retries + 1}); running it again in ${HEALTH_RETRY_PAUSE_MS / 1000}s`);
        await Bun.sleep(HEALTH_RETRY_PAUSE_MS);
      }
    };
    const reload = () => hook("reload_cmd", spec.reloadCmd, { src: dest, dest }, spec.reloadTimeoutMs);

    await hook("check_cmd", spec.checkCmd, { src: staged, dest }, spec.checkTimeoutMs);

    // A new file has no previous version to keep, nor to go back to.
    const previous: Version | undefined = spec.backup && current && old ? { bytes: old, state: current } : undefined;
    if (previous) backUp(spec, previous, windows);
    debug(`Overwriting target config ${dest}`);
    if (replace(staged, dest, bytes, old, want, windows) === "renamed") staged = undefined;
    keep = false;

    try {
      // A member of a reload group is reloaded with its group, by the main thread (reload-group.ts).
      if (spec.reloadGroup === undefined) {
        // Only when splay or min_reload_interval is set: otherwise not even an await.
        if (spec.reloadCmd && !options.syncOnly && (spec.splayOffsetMs !== undefined || spec.minReloadIntervalMs !== undefined)) await waitBeforeReload(spec, info);
        await reload();
      }
      if (spec.health) await hook("health_cmd", spec.health.cmd, { src: dest, dest }, spec.health.timeoutMs, spec.health.retries);
    } catch (err) {
      if (!previous) throw err;
      throw await rollBack(err, spec, previous, { bytes, state: want }, reload, windows);
    }
    info(`Target config ${dest} has been updated`);
    return { changed: true, outOfSync: true };
  } finally {
    if (!keep && staged !== undefined) unlinkSync(staged);
  }
}

/** When each destination this thread synced was last reloaded (performance.now()), for min_reload_interval. */
const lastReload = new Map<string, number>();

/** The splay and min_reload_interval wait before a reload, said in one line; the reload's time is kept. */
async function waitBeforeReload(spec: ResourceSpec, info: (message: string) => void): Promise<void> {
  const delay = reloadDelay(spec, lastReload.get(spec.dest), performance.now());
  if (delay) {
    info(`Reload of ${spec.dest} delayed ${delay.ms} ms (${delay.why})`);
    if ((await waitOrHurry(delay.ms)) === "hurried") info(`Reload of ${spec.dest} no longer delayed: shutting down`);
  }
  lastReload.set(spec.dest, performance.now());
}

function stat(path: string): FileState | undefined {
  let s;
  try {
    s = statSync(path, { throwIfNoEntry: false });
  } catch (err) {
    throw new ConfdError(`cannot stat destination: ${errnoText(err)}`, { file: path });
  }
  if (s === undefined) return undefined;
  if (s.isDirectory()) throw new ConfdError("destination is a directory", { file: path });
  return { mode: s.mode & 0o7777, uid: s.uid, gid: s.gid, special: s.isFile() ? undefined : s.isFIFO() ? "FIFO" : "special file" };
}

function readDestination(path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new ConfdError(`cannot read destination: ${errnoText(err)}`, { file: path });
  }
}

/**
 * Owner first: chown(2) clears the setuid and setgid bits that a chmod before it would have set. Each
 * call only when it changes something.
 */
function setModeAndOwner(fd: number, want: FileState): void {
  const s = fstatSync(fd);
  const chown = s.uid !== want.uid || s.gid !== want.gid;
  if (chown) fchownSync(fd, want.uid, want.gid);
  if (chown || (s.mode & 0o7777) !== want.mode) fchmodSync(fd, want.mode);
}

/** Writes the stage file (hidden, created 0600) in the destination's directory; a failure removes it. */
function stage(dest: string, bytes: Uint8Array, want: FileState, windows: boolean): string {
  const dir = dirname(dest);
  // Unpredictability is not needed for safety ("wx" refuses an existing file or symlink), only uniqueness;
  // node:crypto would cost every worker thread about 5 ms to load.
  const staged = join(dir, `.${basename(dest)}.${process.pid.toString(16)}${Math.floor(Math.random() * 2 ** 32).toString(16).padStart(8, "0")}`);
  let fd: number;
  try {
    fd = openSync(staged, "wx", 0o600);
  } catch (err) {
    // Asked of open itself rather than checked before: one system call less on every sync.
    if ((err as NodeJS.ErrnoException).code === "ENOENT") throw new ConfdError(`destination directory ${dir} does not exist`, { file: dest });
    throw new ConfdError(`cannot create stage file in ${dir}: ${errnoText(err)}`, { file: dest });
  }
  try {
    fill(fd, bytes, want, windows, dest);
  } catch (err) {
    closeAfterFailure(fd);
    unlinkSync(staged);
    throw err;
  }
  try {
    closeSync(fd);
  } catch (err) {
    unlinkSync(staged);
    throw writeFailed(err, dest);
  }
  return staged;
}

/**
 * Every byte (a write that fails part way lets its ENOSPC, EDQUOT or EIO through), then the mode and
 * owner (not on Windows), then an fsync: bytes, mode and owner are on disk before anything renames or
 * reports the file.
 */
function fill(fd: number, bytes: Uint8Array, want: FileState, windows: boolean, dest: string): void {
  try {
    writeFully(fd, bytes);
  } catch (err) {
    throw writeFailed(err, dest);
  }
  if (!windows) {
    try {
      setModeAndOwner(fd, want);
    } catch (err) {
      throw new ConfdError(`cannot set mode ${want.mode.toString(8)} owner ${want.uid}:${want.gid}: ${errnoText(err)}`, { file: dest });
    }
  }
  try {
    fsyncSync(fd);
  } catch (err) {
    throw writeFailed(err, dest);
  }
}

function writeFailed(err: unknown, dest: string): ConfdError {
  return new ConfdError(`cannot write the new file: ${errnoText(err)}; destination left unchanged`, { file: dest });
}

/**
 * Closes a descriptor given up after a failure already being reported. Once: another worker thread may
 * be given the same number as soon as it is closed.
 */
function closeAfterFailure(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // The failure being reported says more.
  }
}

function compare(current: FileState | undefined, old: Buffer | undefined, bytes: Buffer, want: FileState, windows: boolean): string[] {
  if (!current || !old) return ["new file"];
  const out: string[] = [];
  if (!old.equals(bytes)) out.push("content differs");
  if (!windows) {
    if (current.mode !== want.mode) out.push(`mode ${current.mode.toString(8)} should be ${want.mode.toString(8)}`);
    if (current.uid !== want.uid) out.push(`uid ${current.uid} should be ${want.uid}`);
    if (current.gid !== want.gid) out.push(`gid ${current.gid} should be ${want.gid}`);
  }
  return out;
}

/**
 * Windows refuses to rename over a file that another process holds open (a service reading its
 * config, a virus scanner) with EPERM, EBUSY or EACCES until it lets go, usually within milliseconds:
 * the rename is retried after each of these delays (2.3 s in all) before the sync fails. Waiting
 * blocks only this resource's worker thread.
 */
const WINDOWS_RENAME_RETRY_MS = [10, 20, 40, 80, 160, 320, 640, 1000];

/**
 * rename(2) over the destination. On Linux a bind-mounted file cannot be replaced (EBUSY), so it is
 * rewritten in place, and the stage file is left to remove; on Windows EBUSY means the file is open,
 * and the rename is retried instead.
 */
function replace(staged: string, dest: string, bytes: Uint8Array, old: Uint8Array | undefined, want: FileState, windows: boolean): "renamed" | "rewritten" {
  for (let attempt = 0; ; attempt++) {
    try {
      renameSync(staged, dest);
      // No fsync of the directory: the stage file was fsynced before the rename, so after a crash the
      // destination is the old file or the complete new one either way; a directory fsync would only make
      // the new version durable sooner, at the cost of a journal commit per file per change.
      return "renamed";
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (!windows && code === "EBUSY") {
        rewriteInPlace(dest, bytes, old ?? new Uint8Array(), want);
        return "rewritten";
      }
      const delay = WINDOWS_RENAME_RETRY_MS[attempt];
      if (windows && delay !== undefined && (code === "EPERM" || code === "EBUSY" || code === "EACCES")) {
        Bun.sleepSync(delay);
        continue;
      }
      const tries = attempt > 0 ? ` (${attempt + 1} attempts)` : "";
      throw new ConfdError(`cannot replace destination: ${code ?? (err as Error).message}${tries}`, { file: dest });
    }
  }
}

/**
 * A bind-mounted destination: written over from its start without truncating first, so that when the
 * disk fills up part way the old bytes can be put back (they fit: the file held them a moment ago).
 */
function rewriteInPlace(dest: string, bytes: Uint8Array, old: Uint8Array, want: FileState): void {
  let fd: number;
  try {
    fd = openSync(dest, "r+");
  } catch (err) {
    throw new ConfdError(`cannot rewrite bind-mounted destination in place: ${errnoText(err)}; destination left unchanged`, { file: dest });
  }
  // The whole content becomes `content`, on disk.
  const overwrite = (content: Uint8Array) => {
    writeFully(fd, content, 0);
    ftruncateSync(fd, content.length);
    fsyncSync(fd);
  };
  try {
    try {
      overwrite(bytes);
    } catch (err) {
      let restored = true;
      try {
        overwrite(old);
      } catch {
        restored = false;
      }
      const outcome = restored ? "old content put back" : "old content could not be put back";
      throw new ConfdError(`cannot rewrite bind-mounted destination in place: ${errnoText(err)}; ${outcome}`, { file: dest });
    }
    setModeAndOwner(fd, want);
  } finally {
    closeSync(fd);
  }
}

/**
 * A command's text for this sync, rendered as confd renders check_cmd: Go's text/template, builtins only.
 * The Go engine is imported here, not at the top, so that a handlebars resource's worker loads it only
 * when the resource has a command.
 */
export async function renderCommand(command: CommandTemplate, data: CommandData, which: string, spec: ResourceSpec): Promise<string> {
  const { executeGoTemplate, GoTemplateExecError } = await import("./gotemplate-exec.ts");
  try {
    return executeGoTemplate(command.tree, data, {});
  } catch (err) {
    const message = err instanceof GoTemplateExecError ? err.message : String(err);
    throw new ConfdError(`${which}: ${message}`, { file: spec.file, key: which });
  }
}

export function commandError(which: string, timeoutMs: number, result: CommandResult, spec: ResourceSpec, attempts: number): ConfdError {
  const why = result.timedOut
    ? `timed out after ${timeoutMs / 1000}s and was killed`
    : result.exitCode !== null
      ? `exited with status ${result.exitCode}`
      : `was killed by ${result.signal ?? "a signal"}`;
  const tries = attempts > 1 ? ` (${attempts} attempts)` : "";
  const output = result.output.trim().replace(/\s*\n\s*/g, " | ");
  return new ConfdError(`${which} ${why}${tries}${output ? `: ${output}` : ""}`, { file: spec.file, key: which });
}

/**
 * Writes `version` to `path` as a sync writes a destination: staged beside it, then renamed over it (with
 * Windows' retries; written in place where `path` is bind-mounted, `old` being what to put back if that fails).
 */
function writeAtomically(path: string, version: Version, old: Uint8Array | undefined, windows: boolean): void {
  const staged = stage(path, version.bytes, version.state, windows);
  let renamed = false;
  try {
    renamed = replace(staged, path, version.bytes, old, version.state, windows) === "renamed";
  } finally {
    if (!renamed) unlinkSync(staged);
  }
}

/** backup = true: the destination as it is, with its mode and owner, kept as <dest>.confd-prev before it is replaced. */
function backUp(spec: ResourceSpec, previous: Version, windows: boolean): void {
  const path = spec.dest + PREVIOUS_SUFFIX;
  try {
    writeAtomically(path, previous, undefined, windows);
  } catch (err) {
    const why = withContext(err, {}).message;
    throw new ConfdError(`backup = true: cannot keep the previous version as ${path}: ${why}; destination left unchanged`, { file: spec.file, key: "backup" });
  }
}

/**
 * After reload_cmd or health_cmd failed on a new version: the previous one is put back (atomically, with its
 * mode and owner), the rejected render is kept as <dest>.confd-rejected for inspection, and reload_cmd runs
 * again. One error says both what failed and how the rollback went; the sync fails either way.
 */
async function rollBack(failure: unknown, spec: ResourceSpec, previous: Version, rejected: Version, reload: () => Promise<void>, windows: boolean): Promise<ConfdError> {
  const { dest } = spec;
  const error = withContext(failure, { file: spec.file });
  const outcome = (text: string) => new ConfdError(`${error.message}; ${text}`, error.context);
  try {
    writeAtomically(dest, previous, rejected.bytes, windows);
  } catch (err) {
    return outcome(`could not roll back ${dest} to the previous version: ${withContext(err, {}).message}`);
  }
  let note = "";
  try {
    writeAtomically(dest + REJECTED_SUFFIX, rejected, undefined, windows);
  } catch (err) {
    note = ` (the rejected render could not be kept as ${dest}${REJECTED_SUFFIX}: ${withContext(err, {}).message})`;
  }
  if (!spec.reloadCmd) return outcome(`rolled back ${dest} to the previous version${note}`);
  try {
    await reload();
  } catch (err) {
    return outcome(`rolled back ${dest} to the previous version${note}, but reloading it failed too: ${withContext(err, {}).message}`);
  }
  return outcome(`rolled back ${dest} to the previous version and reloaded again${note}`);
}
