// Running check_cmd and reload_cmd: through /bin/sh -c (or cmd /C on Windows), with stdout and stderr
// combined in order, and a timeout that ends the whole process group, so that a stuck `sleep` started
// by the command cannot outlive it or keep us waiting on its output pipe.
import { spawn } from "node:child_process";

export interface CommandResult {
  ok: boolean;
  exitCode: number | null;
  signal: string | null;
  timedOut: boolean;
  /** stdout and stderr as one text, in the order written (POSIX); capped at OUTPUT_LIMIT bytes. */
  output: string;
  durationMs: number;
}

export interface CommandOptions {
  timeoutMs: number;
  /** Injected by tests to exercise the Windows path on Linux. */
  platform?: NodeJS.Platform;
  /** After the timeout, how long the group gets between SIGTERM and SIGKILL. */
  killGraceMs?: number;
}

const OUTPUT_LIMIT = 64 * 1024;
const PIPE_DRAIN_MS = 200;

export function shellArgv(command: string, platform: NodeJS.Platform): { file: string; args: string[]; verbatim: boolean } {
  if (platform === "win32") return { file: "cmd.exe", args: ["/d", "/s", "/c", `"${command}"`], verbatim: true };
  return { file: "/bin/sh", args: ["-c", `exec 2>&1\n${command}`], verbatim: false };
}

export function runCommand(command: string, options: CommandOptions): Promise<CommandResult> {
  const platform = options.platform ?? process.platform;
  const { file, args, verbatim } = shellArgv(command, platform);
  const started = performance.now();
  return new Promise((resolve) => {
    const child = spawn(file, args, {
      stdio: ["ignore", "pipe", "pipe"],
      // Own process group (POSIX), so the timeout can signal the command and everything it started.
      detached: platform !== "win32",
      windowsVerbatimArguments: verbatim,
      windowsHide: true,
    });
    const chunks: Buffer[] = [];
    let size = 0;
    const collect = (chunk: Buffer) => {
      if (size >= OUTPUT_LIMIT) return;
      chunks.push(chunk);
      size += chunk.length;
    };
    child.stdout?.on("data", collect);
    child.stderr?.on("data", collect);

    let timedOut = false;
    let killTimer: ReturnType<typeof setTimeout> | undefined;
    const timer = setTimeout(() => {
      timedOut = true;
      killTree(child.pid, "SIGTERM", platform);
      killTimer = setTimeout(() => killTree(child.pid, "SIGKILL", platform), options.killGraceMs ?? 2000);
    }, options.timeoutMs);

    let settled = false;
    const finish = (exitCode: number | null, signal: string | null) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(killTimer);
      // After a timeout nothing of the group may survive the shell, whatever it did with SIGTERM.
      if (timedOut) killTree(child.pid, "SIGKILL", platform);
      resolve({
        ok: !timedOut && exitCode === 0,
        exitCode,
        signal,
        timedOut,
        output: Buffer.concat(chunks).toString("utf8").slice(0, OUTPUT_LIMIT),
        durationMs: performance.now() - started,
      });
    };
    child.on("error", (err) => {
      chunks.push(Buffer.from(String(err.message)));
      finish(null, null);
    });
    // Output is complete at "close"; but a process the command left running in the background (a daemon
    // started by a reload) may hold the pipes open for ever, so "exit" ends the wait shortly after.
    child.on("close", (code, signal) => finish(code, signal));
    child.on("exit", (code, signal) => setTimeout(() => finish(code, signal), PIPE_DRAIN_MS).unref());
  });
}

function killTree(pid: number | undefined, signal: NodeJS.Signals, platform: NodeJS.Platform): void {
  if (pid === undefined) return;
  try {
    if (platform === "win32") spawn("taskkill", ["/pid", String(pid), "/T", "/F"], { stdio: "ignore", windowsHide: true });
    else process.kill(-pid, signal);
  } catch {
    // The group is already gone.
  }
}
