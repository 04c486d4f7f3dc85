// Errors as values with context: where a problem is (resource, file, line, key, flag) travels with it as
// data, across the worker boundary too, and is turned into one log line only at the edge.

export interface ErrorContext {
  /** The template resource, named after its conf.d file without ".toml". */
  resource?: string;
  file?: string;
  line?: number;
  column?: number;
  key?: string;
  flag?: string;
}

export class ConfdError extends Error {
  constructor(
    message: string,
    readonly context: ErrorContext = {},
  ) {
    super(message);
    this.name = "ConfdError";
  }

  /** One line: `resource web: conf.d/web.toml:3:1: message (key /x)`. */
  describe(): string {
    return describeError({ message: this.message, context: this.context });
  }

  toData(): ErrorData {
    return { message: this.message, context: this.context };
  }

  static fromData(data: ErrorData): ConfdError {
    return new ConfdError(data.message, data.context);
  }
}

/** The structured-clone-safe form, for postMessage. */
export interface ErrorData {
  message: string;
  context: ErrorContext;
}

export function describeError(e: ErrorData): string {
  const { resource, file, line, column, key, flag } = e.context;
  let where = file ?? "";
  if (file && line !== undefined) where += `:${line}${column !== undefined ? `:${column}` : ""}`;
  const parts = [resource ? `resource ${resource}` : "", where, flag ? `flag ${flag}` : ""].filter(Boolean);
  const keyNote = key && !e.message.includes(key) ? ` (key ${key})` : "";
  return `${parts.length ? parts.join(": ") + ": " : ""}${e.message}${keyNote}`;
}

/** Adds context to any thrown value; context already on the error (closer to the cause) wins. */
export function withContext(err: unknown, context: ErrorContext): ConfdError {
  if (err instanceof ConfdError) return new ConfdError(err.message, { ...context, ...err.context });
  const message = err instanceof Error ? err.message : String(err);
  return new ConfdError(message, context);
}

/** What went wrong with a system call, briefly: its errno code ("ENOENT") when it has one. */
export function errnoText(err: unknown): string {
  return (err as NodeJS.ErrnoException).code ?? (err instanceof Error ? err.message : String(err));
}

/** A command line or CONFD_* variable confd cannot read: reported with a usage hint, exit 2 (as Go's flag package). */
export class UsageError extends ConfdError {}
