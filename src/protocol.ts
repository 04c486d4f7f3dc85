// The messages between the main thread and a resource's worker: plain, structured-clone-safe data.
import type { ErrorData } from "./errors.ts";
import type { CompiledTemplate } from "./handlebars.ts";
import type { LogRecord } from "./log.ts";
import type { ResourceSpec } from "./resource.ts";
import type { SyncOutcome } from "./sync.ts";

export interface WorkerInit {
  resource: ResourceSpec;
  template: CompiledTemplate;
  noop: boolean;
  syncOnly: boolean;
  keepStageFile: boolean;
}

export type ToWorker =
  | { type: "init"; init: WorkerInit }
  | { type: "sync"; id: number; values: [string, string][] };

export type FromWorker =
  | { type: "ready" }
  | { type: "log"; record: LogRecord }
  | { type: "report"; text: string }
  | { type: "done"; id: number; outcome: SyncOutcome }
  | { type: "failed"; id: number; error: ErrorData };
