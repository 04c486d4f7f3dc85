// Running check_cmd and reload_cmd: through /bin/sh -c (or cmd /C on Windows), with stdout and stderr
// combined in order, and a timeout that ends the whole process group, so that a stuck `sleep` started
// by the command cannot outlive it or keep us waiting on its output pipe.
// Bun.spawn rather than node:child_process: it is native, where the node module costs every worker
// thread about 1 ms and 0.5 MiB to load.
import { setLongTimeout } from "./timer.ts";

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
  /** Told the command's pid (its process group on POSIX) while it runs: a second signal kills it from the main thread. */
  running?: (pid: number, alive: boolean) => void;
}

const OUTPUT_LIMIT = 64 * 1024;
/**
 * Output is complete when the pipes close; but a process the command left running in the background
 * (a daemon started by a reload) may hold them open for ever, so the wait ends this long after exit.
 */
const PIPE_DRAIN_MS = 200;

export function shellArgv(command: string, platform: NodeJS.Platform): { argv: string[]; verbatim: boolean } {
  if (platform === "win32") return { argv: ["cmd.exe", "/d", "/s", "/c", `"${command}"`], verbatim: true };
  return { argv: ["/bin/sh", "-c", `exec 2>&1\n${command}`], verbatim: false };
}

export async function runCommand(command: string, options: CommandOptions): Promise<CommandResult> {
  const platform = options.platform ?? process.platform;
  const { argv, verbatim } = shellArgv(command, platform);
  const started = performance.now();
  let child: Bun.Subprocess<"ignore", "pipe", "pipe">;
  try {
    child = Bun.spawn(argv, {
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
      // Own process group (POSIX), so the timeout can signal the command and everything it started.
      detached: platform !== "win32",
      windowsVerbatimArguments: verbatim,
      windowsHide: true,
    });
  } catch (err) {
    return { ok: false, exitCode: null, signal: null, timedOut: false, output: (err as Error).message, durationMs: 0 };
  }

  options.running?.(child.pid, true);
  let timedOut = false;
  let killTimer: ReturnType<typeof setTimeout> | undefined;
  const timer = setLongTimeout(() => {
    timedOut = true;
    killTree(child.pid, "SIGTERM", platform);
    killTimer = setTimeout(() => killTree(child.pid, "SIGKILL", platform), options.killGraceMs ?? 2000);
  }, options.timeoutMs);

  const chunks: Uint8Array[] = [];
  let size = 0;
  const collect = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream) {
      if (size < OUTPUT_LIMIT) chunks.push(chunk);
      size += chunk.length;
    }
  };
  const drained = Promise.all([collect(child.stdout), collect(child.stderr)]);
  await child.exited;
  options.running?.(child.pid, false);
  timer.cancel();
  clearTimeout(killTimer);
  // After a timeout nothing of the group may survive the shell, whatever it did with SIGTERM.
  if (timedOut) killTree(child.pid, "SIGKILL", platform);
  await Promise.race([drained, new Promise((resolve) => setTimeout(resolve, PIPE_DRAIN_MS))]);

  return {
    ok: !timedOut && child.exitCode === 0,
    exitCode: child.exitCode,
    signal: child.signalCode === null ? null : String(child.signalCode),
    timedOut,
    output: Buffer.concat(chunks).toString("utf8").slice(0, OUTPUT_LIMIT),
    durationMs: performance.now() - started,
  };
}

/** Signals a command and everything it started: its process group (POSIX), its process tree (Windows). */
export function killTree(pid: number, signal: NodeJS.Signals, platform: NodeJS.Platform = process.platform): void {
  try {
    if (platform === "win32") Bun.spawn(["taskkill", "/pid", String(pid), "/T", "/F"], { stdio: ["ignore", "ignore", "ignore"], windowsHide: true });
    else process.kill(-pid, signal);
  } catch {
    // The group is already gone.
  }
}
