// A resource's worker thread: holds its template, and for each set of values it is sent renders the
// template and syncs the destination. It never talks to a store; the main thread does that once for all,
// and answers the catalog dependencies a render asks for that its sync was not given.
// The thread starts from its engine's entry (worker-go.ts, worker-handlebars.ts), which hands this loop
// the engine, so that a worker loads only the engine its resource uses.
import { CatalogReads } from "./catalog-values.ts";
import { ConfdError, withContext } from "./errors.ts";
import { lessJit } from "./jit.ts";
import { enabled } from "./log.ts";
import type { CatalogAnswers, CompiledTemplate, FromWorker, SyncStats, ToWorker, WorkerInit } from "./protocol.ts";
import { hurryReloads } from "./reload-delay.ts";
import { syncFile } from "./sync.ts";
import type { Render, RenderOptions } from "./template.ts";

declare const self: Worker;

const post = (message: FromWorker) => self.postMessage(message);

/** Runs this thread for a resource whose template is in `engine`, made ready to render by `instantiate`. */
export function serveResource<T extends CompiledTemplate>(engine: T["engine"], instantiate: (template: T, options: RenderOptions) => Render): void {
  // Every worker JIT-compiles the same code again in its own VM (jit.ts).
  lessJit();
  let init: WorkerInit | undefined;
  let render: Render | undefined;

  /** Catalog requests awaiting the main thread's answer, by sync id. */
  const catalogRequests = new Map<number, { resolve: (answers: CatalogAnswers) => void; reject: (err: ConfdError) => void }>();

  self.onmessage = async (event: MessageEvent<ToWorker>) => {
    const message = event.data;
    if (message.type === "catalog") {
      const request = catalogRequests.get(message.id);
      catalogRequests.delete(message.id);
      if ("error" in message) request?.reject(ConfdError.fromData(message.error));
      else request?.resolve(message.answers);
      return;
    }
    if (message.type === "hurry") return hurryReloads();
    if (message.type === "init") {
      init = message.init;
      // The main thread picks the entry by this same field; a mismatch is a bug, and crashes the worker.
      if (init.template.engine !== engine) throw new Error(`a ${init.template.engine} template was sent to the ${engine} worker`);
      render = instantiate(init.template as T, { missingKey: init.resource.missingKey });
      post({ type: "ready" });
      return;
    }
    if (!init || !render) throw new Error("worker received a sync before init");
    const { resource } = init;
    const { id } = message;
    const catalog = new CatalogReads(
      message.catalog,
      (deps) =>
        new Promise((resolve, reject) => {
          catalogRequests.set(id, { resolve, reject });
          post({ type: "catalog", id, deps });
        }),
    );
    const stats: SyncStats = { commands: [] };
    try {
      const started = performance.now();
      const content = await render(new Map(message.values), catalog);
      stats.renderSeconds = (performance.now() - started) / 1000;
      const outcome = await syncFile(resource, content, {
        noop: init.noop,
        syncOnly: init.syncOnly,
        keepStageFile: init.keepStageFile,
        log: (record) => {
          if (enabled(record.level, init!.logLevel)) post({ type: "log", record });
        },
        report: (text) => post({ type: "report", text }),
        commandRunning: (pid, alive) => post({ type: "command", pid, alive }),
        commandDone: (run) => stats.commands.push(run),
      });
      post({ type: "done", id, outcome, used: catalog.used(), stats });
    } catch (err) {
      const error = err instanceof ConfdError ? err : withContext(err, { file: resource.file });
      post({ type: "failed", id, error: { message: error.message, context: { ...error.context, resource: resource.name } }, used: catalog.used(), stats });
    }
  };
}
