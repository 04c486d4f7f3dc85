// Rendering, run side (worker), the part both engines share: an engine's runner bound to the function
// library over one sync's values, run again while DNS lookups or catalog answers it asked for are
// fetched. Each engine's own part is a module of its own (template-go.ts, template-handlebars.ts), so
// that a worker loads only the engine its resource uses.
import { CatalogReads } from "./catalog-values.ts";
import { DnsCache } from "./dns.ts";
import { ConfdError } from "./errors.ts";
import { createFuncTable, type FuncOptions, type Store, type TemplateFunc } from "./funcs.ts";

/** Renders over a sync's values and catalog answers (none: every catalog function gives []). */
export type Render = (store: Store, catalog?: CatalogReads) => Promise<string>;

/** What a resource sets about its library: missing_key (funcs.ts applies it, the same for every engine). */
export type RenderOptions = Pick<FuncOptions, "missingKey">;

/** One engine's compiled template, run once over a function library. */
export type Runner = (funcs: Record<string, TemplateFunc>) => string;

/** Lookups answered by DNS make a render wait for the answers and run again; more rounds mean a template looping on lookups. */
const MAX_DNS_ROUNDS = 3;

/**
 * A render whose catalog arguments are not written in the template learns them by rendering: each
 * round's answers may name the next dependencies (`range services` then `service .Name`: 3 rounds).
 * A template still asking after this many rounds is taken to never stop.
 */
const MAX_CATALOG_ROUNDS = 8;

export function renderWith(run: Runner, options: RenderOptions = {}): Render {
  const library = createFuncTable(options);
  return async (store, catalog = new CatalogReads()) => {
    const dns = new DnsCache();
    let dnsRounds = 0;
    for (let catalogRounds = 0; ; ) {
      // The library reads this render's values only while this run, which is synchronous, lasts: a second
      // sync that starts while this one waits for DNS cannot change what it reads.
      catalog.startRender();
      let text: string;
      try {
        text = library.run(store, dns, catalog, run);
      } catch (err) {
        // A template may fail on the empty list it was given for an answer it has not got yet
        // (`index (service "web") 0`): the answer decides.
        if (catalog.pending === 0 || catalogRounds + 1 >= MAX_CATALOG_ROUNDS) throw err;
        text = "";
      }
      if (catalog.pending > 0) {
        // Output rendered without some of the catalog is never written: it would list no instances.
        if (++catalogRounds >= MAX_CATALOG_ROUNDS) {
          throw new ConfdError(`the template still asked for catalog data it had not read after ${MAX_CATALOG_ROUNDS} renders`);
        }
        await catalog.fetchMissing();
        continue;
      }
      if (dns.pending === 0 || dnsRounds >= MAX_DNS_ROUNDS) return text;
      dnsRounds++;
      await dns.resolvePending();
    }
  };
}
