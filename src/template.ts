// Rendering, run side (worker), the part both engines share: an engine's runner bound to the function
// library over one sync's values, run again while DNS lookups it asked for are answered. Each engine's
// own part is a module of its own (template-go.ts, template-handlebars.ts), so that a worker loads only
// the engine its resource uses.
import { DnsCache } from "./dns.ts";
import { createFuncTable, type FuncOptions, type Store, type TemplateFunc } from "./funcs.ts";

export type Render = (store: Store) => Promise<string>;

/** What a resource sets about its library: missing_key (funcs.ts applies it, the same for every engine). */
export type RenderOptions = Pick<FuncOptions, "missingKey">;

/** One engine's compiled template, run once over a function library. */
export type Runner = (funcs: Record<string, TemplateFunc>) => string;

/** Lookups answered by DNS make a render wait for the answers and run again; more rounds mean a template looping on lookups. */
const MAX_DNS_ROUNDS = 3;

export function renderWith(run: Runner, options: RenderOptions = {}): Render {
  const library = createFuncTable(options);
  return async (store) => {
    const dns = new DnsCache();
    for (let round = 0; ; round++) {
      // The library reads this render's values only while this run, which is synchronous, lasts: a second
      // sync that starts while this one waits for DNS cannot change what it reads.
      const text = library.run(store, dns, run);
      if (dns.pending === 0 || round >= MAX_DNS_ROUNDS) return text;
      await dns.resolvePending();
    }
  };
}
