// Catalog answers for one round of syncs (main thread): a -onetime run, one interval, or one flush of
// watch mode. Each distinct dependency is read once per round, however many resources ask for it,
// whether a resource's worker is given it up front (a dependency its template names, or one its last
// render read) or asks for it while rendering.
import { CatalogUnavailable, depKey, describeDep, type CatalogAnswer, type CatalogDep, type CatalogRead, type CatalogSource } from "./catalog.ts";
import { ConfdError } from "./errors.ts";

/** What a resource's sync is given of the catalog (workers.ts). */
export interface CatalogLink {
  /** The answers to these dependencies, by key; rejects with CatalogUnavailable when the store cannot answer. */
  answers(deps: readonly CatalogDep[]): Promise<[string, CatalogAnswer][]>;
  /** The dependencies the sync's render read, once it is over (rendered or failed). */
  used(deps: readonly CatalogDep[]): void;
}

export class CatalogRound {
  private readonly reads = new Map<string, Promise<CatalogRead>>();
  private readonly indexes = new Map<string, number>();

  constructor(private readonly source: CatalogSource) {}

  /** A link for one resource's sync, which reports what the render read to `used`. */
  link(used: (deps: readonly CatalogDep[]) => void = () => {}): CatalogLink {
    return { answers: (deps) => this.answers(deps), used };
  }

  async answers(deps: readonly CatalogDep[]): Promise<[string, CatalogAnswer][]> {
    const unique = new Map(deps.map((dep) => [depKey(dep), dep]));
    return Promise.all([...unique].map(async ([key, dep]): Promise<[string, CatalogAnswer]> => [key, (await this.read(key, dep)).answer]));
  }

  /** The store's index of the answer this round read for the key; undefined when it has not read one. */
  index(key: string): number | undefined {
    return this.indexes.get(key);
  }

  private read(key: string, dep: CatalogDep): Promise<CatalogRead> {
    let read = this.reads.get(key);
    if (!read) {
      read = this.source.read(dep).then(
        (r) => {
          this.indexes.set(key, r.index);
          return r;
        },
        (err: unknown) => {
          // The store's error says what and where (nodes, status), never a value.
          const reason = err instanceof Error ? err.message : String(err);
          throw new CatalogUnavailable(`cannot read ${describeDep(dep)}: ${reason}`, err instanceof ConfdError ? err.context : {});
        },
      );
      // Read once per round, failures too: the other resources asking fail at once, and the next round asks again.
      read.catch(() => {});
      this.reads.set(key, read);
    }
    return read;
  }
}
