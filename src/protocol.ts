// What crosses between the main thread and a resource's worker: plain, structured-clone-safe data.
import type { CatalogAnswer, CatalogCall, CatalogDep } from "./catalog.ts";
import type { ErrorData } from "./errors.ts";
import type { GoTemplateTree } from "./gotemplate-parse.ts";
import type { LogLevel, LogRecord } from "./log.ts";
import type { ResourceSpec } from "./resource.ts";
import type { SyncOutcome } from "./sync.ts";

/** A handlebars template as a worker needs it: precompiled specs, as JavaScript source text. */
export interface HandlebarsTemplate {
  engine: "handlebars";
  /** The template file, for error messages. */
  file: string;
  spec: string;
  partials: Record<string, { file: string; spec: string }>;
  /** Its calls of catalog functions, partials' included (catalog-scan.ts). */
  catalog?: CatalogCall[];
}

/** A Go text/template (confd's own syntax) as a worker needs it: the parsed tree. */
export interface GoTemplate {
  engine: "go";
  file: string;
  tree: GoTemplateTree;
  /** Its calls of catalog functions (catalog-scan.ts). */
  catalog?: CatalogCall[];
}

export type CompiledTemplate = HandlebarsTemplate | GoTemplate;

/**
 * The hash argument the compiler adds to every library call, carrying its position to the run side.
 * It lives here, not in handlebars.ts, so that workers never load the handlebars compiler.
 */
export const LOCATION_HASH_KEY = "confdLoc";

export interface WorkerInit {
  resource: ResourceSpec;
  template: CompiledTemplate;
  noop: boolean;
  syncOnly: boolean;
  keepStageFile: boolean;
  /** Records below this level are dropped in the worker rather than posted to be dropped by the main thread. */
  logLevel: LogLevel;
}

/** Catalog answers by dependency key (catalog.ts depKey). */
export type CatalogAnswers = [string, CatalogAnswer][];

export type ToWorker =
  | { type: "init"; init: WorkerInit }
  // Shutdown: a reload waiting for its splay or min_reload_interval runs now (reload-delay.ts).
  | { type: "hurry" }
  | { type: "sync"; id: number; values: [string, string][]; catalog: CatalogAnswers }
  // The answers (or why there are none) to a sync's "catalog" request.
  | { type: "catalog"; id: number; answers: CatalogAnswers }
  | { type: "catalog"; id: number; error: ErrorData };

/** One run of a resource's check, reload or health command in a sync. */
export interface CommandRun {
  command: "check" | "reload" | "health";
  ok: boolean;
  seconds: number;
}

/** How a sync went, for metrics (events.ts): whether the template rendered, and the commands it ran. */
export interface SyncStats {
  /** Undefined when the render failed. */
  renderSeconds?: number;
  commands: CommandRun[];
}

export type FromWorker =
  | { type: "ready" }
  | { type: "log"; record: LogRecord }
  | { type: "report"; text: string }
  | { type: "command"; pid: number; alive: boolean }
  // The render of sync `id` asked for catalog dependencies it was not given.
  | { type: "catalog"; id: number; deps: CatalogDep[] }
  // `used`: the catalog dependencies the last render read, which the main thread watches for the resource.
  | { type: "done"; id: number; outcome: SyncOutcome; used: CatalogDep[]; stats: SyncStats }
  | { type: "failed"; id: number; error: ErrorData; used: CatalogDep[]; stats: SyncStats };
