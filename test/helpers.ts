// Shared test helpers: temporary confdirs and running the CLI as a separate process, as a user would.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";

export const ROOT = join(import.meta.dir, "..");
export const CLI = join(ROOT, "src", "cli.ts");
/**
 * $CONFD_BIN: a compiled confd to run instead of the sources (scripts/test.ts sets it for the binary
 * run). It starts in its own directory by default, where no project files can stand in for missing ones.
 */
const CONFD_BIN = process.env.CONFD_BIN ? resolve(process.env.CONFD_BIN) : undefined;
const COMMAND = CONFD_BIN ? [CONFD_BIN] : [process.execPath, CLI];
/** The argv that starts confd (the binary, or bun with the sources), for tests that wrap it in another command. */
export const CONFD_COMMAND: readonly string[] = COMMAND;
const DEFAULT_CWD = CONFD_BIN ? dirname(CONFD_BIN) : ROOT;
/** confd's own integration fixture, copied into the repository (see its README for the origin). */
export const CONFD_FIXTURE = join(ROOT, "test", "fixtures", "confd-integration");

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** A clean environment: no CONFD_* from the developer's shell, and no /etc/confd/confd.toml by accident. */
export function baseEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith("CONFD_")) env[k] = v;
  return { ...env, ...extra };
}

export interface ConfdOptions {
  env?: Record<string, string>;
  cwd?: string;
  /** A command that runs confd (given as its arguments) in some setting: test/dns-server.ts's resolver, say. */
  wrap?: readonly string[];
}

export async function runConfd(args: string[], options: ConfdOptions = {}): Promise<RunResult> {
  const child = Bun.spawn([...(options.wrap ?? []), ...COMMAND, ...args], {
    env: options.env ?? baseEnv(),
    cwd: options.cwd ?? DEFAULT_CWD,
    stdout: "pipe",
    stderr: "pipe",
  });
  const [stdout, stderr, code] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
  return { code, stdout, stderr };
}

/** Starts the CLI and returns the process, for tests that signal it or watch its output as it runs. */
export function spawnConfd(args: string[], options: ConfdOptions = {}) {
  return Bun.spawn([...(options.wrap ?? []), ...COMMAND, ...args], {
    env: options.env ?? baseEnv(),
    cwd: options.cwd ?? DEFAULT_CWD,
    stdout: "pipe",
    stderr: "pipe",
  });
}

export function tempDir(prefix = "confd-test-"): { path: string; cleanup: () => void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, cleanup: () => rmSync(path, { recursive: true, force: true }) };
}

/** Writes files given as { "relative/path": "content" } under root. */
export function writeTree(root: string, files: Record<string, string>): void {
  for (const [rel, content] of Object.entries(files)) {
    const path = join(root, rel);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, content);
  }
}

/** Collects a stream's lines as they arrive, so tests wait for an event instead of sleeping. */
export class Lines {
  readonly seen: string[] = [];
  private waiters: { pattern: RegExp; from: number; resolve: (line: string) => void; reject: (e: Error) => void }[] = [];
  private ended = false;

  constructor(stream: ReadableStream<Uint8Array>) {
    void this.pump(stream);
  }

  private async pump(stream: ReadableStream<Uint8Array>): Promise<void> {
    const decoder = new TextDecoder();
    let buffer = "";
    for await (const chunk of stream) {
      buffer += decoder.decode(chunk, { stream: true });
      let nl: number;
      while ((nl = buffer.indexOf("\n")) >= 0) {
        this.seen.push(buffer.slice(0, nl));
        buffer = buffer.slice(nl + 1);
      }
      this.check();
    }
    if (buffer) this.seen.push(buffer);
    this.ended = true;
    this.check();
  }

  private check(): void {
    this.waiters = this.waiters.filter((w) => {
      const index = this.seen.findIndex((line, i) => i >= w.from && w.pattern.test(line));
      if (index >= 0) w.resolve(this.seen[index]!);
      else if (this.ended) w.reject(new Error(`output ended before a line matched ${w.pattern}; saw:\n${this.seen.join("\n")}`));
      else return true;
      return false;
    });
  }

  /** Resolves with the first line matching `pattern`, looking at lines from index `from` on. */
  waitFor(pattern: RegExp, from = 0): Promise<string> {
    return new Promise((resolve, reject) => {
      this.waiters.push({ pattern, from, resolve, reject });
      this.check();
    });
  }

  /** Resolves once `count` lines in all have matched `pattern`. */
  async waitForCount(pattern: RegExp, count: number): Promise<void> {
    let from = 0;
    for (let seen = 0; seen < count; seen++) {
      await this.waitFor(pattern, from);
      from = this.seen.findIndex((line, i) => i >= from && pattern.test(line)) + 1;
    }
  }

  text(): string {
    return this.seen.join("\n");
  }
}

/** A TCP port on 127.0.0.1 that nothing listens on right now, for a test server. */
export function freePort(): number {
  const server = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = server.port;
  server.stop(true);
  return port;
}

/**
 * Whether `promise` settles before the event loop's next turn: "at once" (from what the code already
 * knows), told apart from "after more I/O or a timer" without reading a clock.
 */
export async function settlesAtOnce(promise: Promise<unknown>): Promise<boolean> {
  let settled = false;
  promise.then(
    () => (settled = true),
    () => (settled = true),
  );
  await new Promise((resolve) => setImmediate(resolve));
  return settled;
}
