// DNS answers for lookupIP and lookupSRV. Template functions are synchronous and DNS
// is not, so a render reads what is cached, records what is missing, and the renderer
// resolves the misses and renders again. One cache per render pass keeps answers as
// fresh as confd's, which resolves on every render.
// node:dns is imported on first use: most templates never look anything up, and every worker
// thread would otherwise pay to load it.

export interface SRV {
  Target: string;
  Port: number;
  Priority: number;
  Weight: number;
}

export interface DnsAnswers {
  // undefined: not known yet (the query is recorded).
  ip(name: string): string[] | undefined;
  srv(service: string, proto: string, name: string): SRV[] | undefined;
}

export interface DnsResolver {
  lookupIP(name: string): Promise<string[]>;
  lookupSRV(fqdn: string): Promise<SRV[]>;
}

export const systemResolver: DnsResolver = {
  async lookupIP(name) {
    // getaddrinfo can list an address once per socket type.
    const { lookup } = await import("node:dns/promises");
    const found = await lookup(name, { all: true });
    return [...new Set(found.map((a) => a.address))];
  },
  async lookupSRV(fqdn) {
    const { resolveSrv } = await import("node:dns/promises");
    const records = await resolveSrv(fqdn);
    // Go's net.SRV targets are absolute names, with the trailing dot.
    return records.map((r) => ({
      Target: r.name.endsWith(".") ? r.name : r.name + ".",
      Port: r.port,
      Priority: r.priority,
      Weight: r.weight,
    }));
  },
};

// Go's net.LookupSRV: "_service._proto.name", or name itself when both are empty.
export function srvQueryName(service: string, proto: string, name: string): string {
  return service === "" && proto === "" ? name : `_${service}._${proto}.${name}`;
}

export class DnsCache implements DnsAnswers {
  readonly #resolver: DnsResolver;
  readonly #ips = new Map<string, string[]>();
  readonly #srvs = new Map<string, SRV[]>();
  readonly #missingIps = new Set<string>();
  readonly #missingSrvs = new Set<string>();

  constructor(resolver: DnsResolver = systemResolver) {
    this.#resolver = resolver;
  }

  ip(name: string): string[] | undefined {
    const hit = this.#ips.get(name);
    if (hit === undefined) this.#missingIps.add(name);
    return hit;
  }

  srv(service: string, proto: string, name: string): SRV[] | undefined {
    const query = srvQueryName(service, proto, name);
    const hit = this.#srvs.get(query);
    if (hit === undefined) this.#missingSrvs.add(query);
    return hit;
  }

  get pending(): number {
    return this.#missingIps.size + this.#missingSrvs.size;
  }

  // A failed lookup caches [], as confd's functions return nothing on error rather
  // than failing the render.
  async resolvePending(): Promise<void> {
    const ips = [...this.#missingIps];
    const srvs = [...this.#missingSrvs];
    this.#missingIps.clear();
    this.#missingSrvs.clear();
    await Promise.all([
      ...ips.map(async (name) => {
        this.#ips.set(name, await this.#resolver.lookupIP(name).catch((): string[] => []));
      }),
      ...srvs.map(async (query) => {
        this.#srvs.set(query, await this.#resolver.lookupSRV(query).catch((): SRV[] => []));
      }),
    ]);
  }
}
