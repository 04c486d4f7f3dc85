import { expect, test } from "bun:test";
import { join } from "node:path";
import { ConfdError } from "../src/errors.ts";
import type { LogRecord } from "../src/log.ts";
import type { WorkerInit } from "../src/protocol.ts";
import { Slots } from "../src/slots.ts";
import { backoff, ResourceWorker } from "../src/workers.ts";

const url = Promise.resolve(new URL("./fixtures/crashing-worker.ts", import.meta.url));
const unlimited = () => ({ slots: new Slots(Infinity) });

/** Hooks that keep the log records, and count the worker starts the fixture logs. */
function recorder() {
  const logs: LogRecord[] = [];
  return { logs, starts: () => logs.filter((r) => r.message === "started").length, hooks: { log: (r: LogRecord) => void logs.push(r), report: () => {} } };
}

function init(name: string): WorkerInit {
  return {
    resource: { name, file: `/conf.d/${name}.toml`, src: "", dest: `/out/${name}`, keys: [], prefix: "/", checkCmd: null, reloadCmd: null, checkTimeoutMs: 1, reloadTimeoutMs: 1, engine: "handlebars" },
    template: { engine: "handlebars", file: "", spec: "", partials: {} },
    noop: false,
    syncOnly: false,
    keepStageFile: false,
    logLevel: "info",
  };
}

test("a crashed worker is reported with its resource's name and restarted; other resources keep syncing", async () => {
  const logs: LogRecord[] = [];
  const restarted = Promise.withResolvers<void>();
  const hooks = {
    log: (r: LogRecord) => {
      logs.push(r);
      if (r.message.includes("restarting")) restarted.resolve();
    },
    report: () => {},
  };
  const a = new ResourceWorker(init("a"), hooks, unlimited(), url);
  const b = new ResourceWorker(init("b"), hooks, unlimited(), url);
  await Promise.all([a.start(), b.start()]);
  try {
    const crash = a.sync(new Map([["/crash", "1"]]));
    await expect(crash).rejects.toBeInstanceOf(ConfdError);
    await expect(crash).rejects.toThrow("worker crashed: boom");
    await restarted.promise;
    expect(logs.find((r) => r.level === "error")?.fields).toEqual({ resource: "a" });
    // b never noticed; a syncs again once restarted.
    expect(await b.sync(new Map([["/k", "v"]]))).toEqual({ changed: true, outOfSync: true });
    expect(await a.sync(new Map([["/k", "v"]]))).toEqual({ changed: true, outOfSync: true });
  } finally {
    await Promise.all([a.stop(), b.stop()]);
  }
});

test("backoff grows exponentially with jitter and is capped at 30 s", () => {
  for (let i = 0; i < 50; i++) {
    const first = backoff(1);
    expect(first).toBeGreaterThanOrEqual(50);
    expect(first).toBeLessThanOrEqual(100);
    const fourth = backoff(4);
    expect(fourth).toBeGreaterThanOrEqual(400);
    expect(fourth).toBeLessThanOrEqual(800);
    expect(backoff(40)).toBeLessThanOrEqual(30_000);
    expect(backoff(40)).toBeGreaterThanOrEqual(15_000);
    expect(backoff(40, 5_000)).toBeLessThanOrEqual(5_000);
    expect(backoff(40, 5_000)).toBeGreaterThanOrEqual(2_500);
  }
});

test("slots: first come, first served; a released slot goes to the next in line, once", async () => {
  const slots = new Slots(1);
  const order: string[] = [];
  const first = await slots.acquire();
  const second = slots.acquire().then((s) => (order.push("second"), s));
  const third = slots.acquire().then((s) => (order.push("third"), s));
  first.release();
  first.release();
  (await second).release();
  (await third).release();
  expect(order).toEqual(["second", "third"]);
  // All given back (the second release of `first` counted once): one can be held again, not two.
  await slots.acquire();
  let fourth = false;
  void slots.acquire().then(() => (fourth = true));
  await Promise.resolve();
  expect(fourth).toBe(false);
});

test("with one slot, a worker waiting only on its command lets the next resource sync meanwhile", async () => {
  const r = recorder();
  const slots = new Slots(1);
  const a = new ResourceWorker(init("a"), r.hooks, { slots }, url);
  const b = new ResourceWorker(init("b"), r.hooks, { slots }, url);
  try {
    const held = a.sync(new Map([["/command", "1"]]));
    // b gets the one slot only once a has given it back, at the start of its command.
    expect(await b.sync(new Map([["/k", "v"]]))).toEqual({ changed: true, outOfSync: true });
    const channel = new BroadcastChannel("confd-test-worker");
    channel.postMessage("finish");
    channel.close();
    expect(await held).toEqual({ changed: true, outOfSync: true });
  } finally {
    await Promise.all([a.stop(), b.stop()]);
  }
});

test("a worker ends after its idle time and starts again for the next sync; without one it stays", async () => {
  const ending = recorder();
  const once = new ResourceWorker(init("once"), ending.hooks, { slots: new Slots(2), idleMs: 0 }, url);
  const staying = recorder();
  const kept = new ResourceWorker(init("kept"), staying.hooks, { slots: new Slots(2) }, url);
  try {
    for (let i = 0; i < 3; i++) {
      await once.sync(new Map([["/k", String(i)]]));
      await kept.sync(new Map([["/k", String(i)]]));
      // The idle timer of 0 ms has run before a timer set after it.
      await new Promise((resolve) => setTimeout(resolve, 0));
    }
    expect(ending.starts()).toBe(3);
    expect(staying.starts()).toBe(1);
  } finally {
    await Promise.all([once.stop(), kept.stop()]);
  }
});

test("a worker loads only its resource's template engine", async () => {
  // Built as scripts/build.ts builds the binary (split into chunks loaded on import); what an entry loads
  // at start is what its import statements reach, while a dynamic import is loaded when it runs.
  const entries = { go: "worker-go.ts", handlebars: "worker-handlebars.ts" };
  const src = join(import.meta.dir, "..", "src");
  const result = await Bun.build({ entrypoints: Object.values(entries).map((e) => join(src, e)), target: "bun", format: "esm", splitting: true, metafile: true });
  expect(result.success).toBe(true);
  const outputs = result.metafile!.outputs;
  const loadedAtStart = (entry: string): string[] => {
    const seen = new Set<string>();
    const visit = (path: string) => {
      if (seen.has(path)) return;
      seen.add(path);
      for (const i of outputs[path]!.imports) if (i.kind === "import-statement") visit(i.path);
    };
    visit(Object.keys(outputs).find((path) => outputs[path]!.entryPoint?.endsWith(entry))!);
    return [...seen].flatMap((path) => Object.keys(outputs[path]!.inputs));
  };
  const go = loadedAtStart(entries.go);
  const handlebars = loadedAtStart(entries.handlebars);
  expect(go.some((input) => input.includes("src/gotemplate-exec.ts"))).toBe(true);
  expect(go.some((input) => input.includes("handlebars"))).toBe(false);
  expect(handlebars.some((input) => input.includes("node_modules/handlebars/"))).toBe(true);
  expect(handlebars.some((input) => input.includes("src/gotemplate-exec.ts"))).toBe(false);
});
