// Logging: confd's line format (`<RFC3339> <host> confd[<pid>]: LEVEL message`) or one JSON object a line,
// to stderr, filtered by level. Messages never carry values from the store; secrets registered with
// `redact` are masked as a last line of defence.
import { hostname } from "node:os";
import { writeFully } from "./fd.ts";

export const LEVELS = ["debug", "info", "warning", "error", "fatal"] as const;
export type LogLevel = (typeof LEVELS)[number];
export type LogFormat = "text" | "json";

export interface LogRecord {
  level: LogLevel;
  message: string;
  fields?: Record<string, string | number | boolean>;
}

export function isLogLevel(s: string): s is LogLevel {
  return (LEVELS as readonly string[]).includes(s);
}

/** confd accepts "warn" as well as "warning"; so do we. */
export function parseLogLevel(s: string): LogLevel | undefined {
  const lower = s.toLowerCase();
  if (lower === "warn") return "warning";
  return isLogLevel(lower) ? lower : undefined;
}

const host = hostname();
let minLevel: LogLevel = "info";
let format: LogFormat = "text";
let write: (line: string) => void = (line) => {
  try {
    writeFully(2, Buffer.from(line));
  } catch {
    // Nowhere left to say it (stderr closed): a log line must not stop confd.
  }
};
const secrets = new Set<string>();

export function configureLog(options: { level?: LogLevel; format?: LogFormat; sink?: (line: string) => void }): void {
  if (options.level) minLevel = options.level;
  if (options.format) format = options.format;
  if (options.sink) write = options.sink;
}

/** Registers a secret (password, token) so that it is masked wherever it would appear in a log line. */
export function redact(secret: string | undefined): void {
  if (secret && secret.length >= 3) secrets.add(secret);
}

function mask(s: string): string {
  let out = s;
  for (const secret of secrets) out = out.split(secret).join("***");
  return out;
}

/** Go's time.RFC3339 in local time: "Z" for UTC, otherwise the numeric offset. */
function timestamp(d: Date): string {
  const offset = -d.getTimezoneOffset();
  const local = new Date(d.getTime() + offset * 60_000).toISOString().slice(0, 19);
  if (offset === 0) return `${local}Z`;
  const sign = offset > 0 ? "+" : "-";
  const abs = Math.abs(offset);
  return `${local}${sign}${String(Math.floor(abs / 60)).padStart(2, "0")}:${String(abs % 60).padStart(2, "0")}`;
}

/** Whether a record of this level would be written: workers ask before posting one to the main thread. */
export function enabled(level: LogLevel, threshold: LogLevel = minLevel): boolean {
  return LEVELS.indexOf(level) >= LEVELS.indexOf(threshold);
}

export function emit(record: LogRecord): void {
  if (!enabled(record.level)) return;
  const now = new Date();
  if (format === "json") {
    write(mask(JSON.stringify({ time: now.toISOString(), level: record.level, msg: record.message, ...record.fields })) + "\n");
    return;
  }
  const fields = record.fields
    ? Object.entries(record.fields)
        .map(([k, v]) => ` ${k}=${typeof v === "string" && /[\s"]/.test(v) ? JSON.stringify(v) : v}`)
        .join("")
    : "";
  write(mask(`${timestamp(now)} ${host} confd[${process.pid}]: ${record.level.toUpperCase()} ${record.message}${fields}`) + "\n");
}

export const log = {
  debug: (message: string, fields?: LogRecord["fields"]) => emit({ level: "debug", message, fields }),
  info: (message: string, fields?: LogRecord["fields"]) => emit({ level: "info", message, fields }),
  warning: (message: string, fields?: LogRecord["fields"]) => emit({ level: "warning", message, fields }),
  error: (message: string, fields?: LogRecord["fields"]) => emit({ level: "error", message, fields }),
  fatal: (message: string, fields?: LogRecord["fields"]) => emit({ level: "fatal", message, fields }),
};
