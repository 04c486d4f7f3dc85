// Syncing one destination file: stage the rendered text beside it, compare, check, replace atomically,
// reload. The destination is only ever the old file or the complete new one, byte for byte: a write
// that fails part way (a full disk) leaves the old file and no stage file behind.
import {
  chmodSync, chownSync, closeSync, existsSync, fsyncSync, ftruncateSync, openSync, readFileSync, renameSync, statSync, unlinkSync,
} from "node:fs";
import { basename, dirname, join } from "node:path";
import { decodeBytes, encodeText } from "./bytes.ts";
import { runCommand, type CommandResult } from "./command.ts";
import { unifiedDiff } from "./diff.ts";
import { ConfdError, errnoText } from "./errors.ts";
import { writeFully } from "./fd.ts";
import type { LogRecord } from "./log.ts";
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

  if (options.noop) {
    options.log({ level: "warning", message: `Noop mode enabled. ${dest} will not be modified` });
    const diff = unifiedDiff(old ? decodeBytes(old) : "", content, dest, `${dest} (rendered)`);
    if (diff) options.report(diff);
    if (options.keepStageFile) debug(`Rendered file kept at ${stage(dest, bytes, want, windows)}`);
    return { changed: false, outOfSync: true };
  }

  const staged = stage(dest, bytes, want, windows);
  let keep = options.keepStageFile;
  try {
    const hook = async (which: "check_cmd" | "reload_cmd", template: CommandTemplate | null, data: CommandData, timeoutMs: number) => {
      if (!template || options.syncOnly) return;
      const command = await renderCommand(template, data, which, spec);
      debug(`Running ${which === "check_cmd" ? "check" : "reload"} command ${command}`);
      const result = await runCommand(command, { timeoutMs, platform: options.platform, running: options.commandRunning });
      if (!result.ok) throw commandError(which, timeoutMs, result, spec);
      if (result.output) debug(`${which} output: ${result.output.trimEnd()}`);
    };

    await hook("check_cmd", spec.checkCmd, { src: staged, dest }, spec.checkTimeoutMs);

    debug(`Overwriting target config ${dest}`);
    replace(staged, dest, bytes, old, want, windows);
    keep = false;

    await hook("reload_cmd", spec.reloadCmd, { src: dest, dest }, spec.reloadTimeoutMs);
    info(`Target config ${dest} has been updated`);
    return { changed: true, outOfSync: true };
  } finally {
    if (!keep && existsSync(staged)) unlinkSync(staged);
  }
}

function stat(path: string): FileState | undefined {
  let s;
  try {
    s = statSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new ConfdError(`cannot stat destination: ${errnoText(err)}`, { file: path });
  }
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
 * Writes every byte (a write that fails part way lets its ENOSPC, EDQUOT or EIO through), fsyncs and
 * closes: the bytes are on disk before anything renames or reports the file.
 */
function writeDurably(fd: number, bytes: Uint8Array): void {
  try {
    writeFully(fd, bytes);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function setModeAndOwner(path: string, want: FileState): void {
  chmodSync(path, want.mode);
  const s = statSync(path);
  if (s.uid !== want.uid || s.gid !== want.gid) chownSync(path, want.uid, want.gid);
}

/** Writes the stage file (hidden, created 0600) in the destination's directory, then sets its mode and owner. */
function stage(dest: string, bytes: Uint8Array, want: FileState, windows: boolean): string {
  const dir = dirname(dest);
  if (!existsSync(dir)) throw new ConfdError(`destination directory ${dir} does not exist`, { file: dest });
  // Unpredictability is not needed for safety ("wx" refuses an existing file or symlink), only uniqueness;
  // node:crypto would cost every worker thread about 5 ms to load.
  const staged = join(dir, `.${basename(dest)}.${process.pid.toString(16)}${Math.floor(Math.random() * 2 ** 32).toString(16).padStart(8, "0")}`);
  let fd: number;
  try {
    fd = openSync(staged, "wx", 0o600);
  } catch (err) {
    throw new ConfdError(`cannot create stage file in ${dir}: ${errnoText(err)}`, { file: dest });
  }
  try {
    writeDurably(fd, bytes);
  } catch (err) {
    unlinkSync(staged);
    throw new ConfdError(`cannot write the new file: ${errnoText(err)}; destination left unchanged`, { file: dest });
  }
  try {
    if (!windows) setModeAndOwner(staged, want);
  } catch (err) {
    unlinkSync(staged);
    throw new ConfdError(`cannot set mode ${want.mode.toString(8)} owner ${want.uid}:${want.gid}: ${errnoText(err)}`, { file: dest });
  }
  return staged;
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
 * rewritten in place; on Windows EBUSY means the file is open, and the rename is retried instead.
 */
function replace(staged: string, dest: string, bytes: Uint8Array, old: Uint8Array | undefined, want: FileState, windows: boolean): void {
  for (let attempt = 0; ; attempt++) {
    try {
      renameSync(staged, dest);
      // No fsync of the directory: the stage file was fsynced before the rename, so after a crash the
      // destination is the old file or the complete new one either way; a directory fsync would only make
      // the new version durable sooner, at the cost of a journal commit per file per change.
      return;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (!windows && code === "EBUSY") {
        rewriteInPlace(dest, bytes, old ?? new Uint8Array(), want);
        return;
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
  try {
    try {
      writeFully(fd, bytes, 0);
      ftruncateSync(fd, bytes.length);
      fsyncSync(fd);
    } catch (err) {
      let restored = true;
      try {
        writeFully(fd, old, 0);
        ftruncateSync(fd, old.length);
        fsyncSync(fd);
      } catch {
        restored = false;
      }
      const outcome = restored ? "old content put back" : "old content could not be put back";
      throw new ConfdError(`cannot rewrite bind-mounted destination in place: ${errnoText(err)}; ${outcome}`, { file: dest });
    }
  } finally {
    closeSync(fd);
  }
  setModeAndOwner(dest, want);
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

function commandError(which: string, timeoutMs: number, result: CommandResult, spec: ResourceSpec): ConfdError {
  const why = result.timedOut
    ? `timed out after ${timeoutMs / 1000}s and was killed`
    : result.exitCode !== null
      ? `exited with status ${result.exitCode}`
      : `was killed by ${result.signal ?? "a signal"}`;
  const output = result.output.trim().replace(/\s*\n\s*/g, " | ");
  return new ConfdError(`${which} ${why}${output ? `: ${output}` : ""}`, { file: spec.file, key: which });
}
