// The env backend: confd's mapping between keys and environment variables, "/database/host" <->
// DATABASE_HOST. A variable belongs to a key when its name is the key's name or continues it after "_".
import { untilAborted, type StoreClient } from "../store.ts";

export function envName(key: string): string {
  return key.replace(/^\/+/, "").replace(/\//g, "_").toUpperCase();
}

function keyOf(name: string): string {
  return "/" + name.toLowerCase().replace(/_/g, "/");
}

export class EnvClient implements StoreClient {
  constructor(private readonly env: Readonly<Record<string, string | undefined>>) {}

  async getValues(keys: readonly string[]): Promise<Map<string, string>> {
    const values = new Map<string, string>();
    for (const key of keys) {
      const wanted = envName(key);
      for (const [name, value] of Object.entries(this.env)) {
        if (value === undefined) continue;
        if (wanted === "" || name === wanted || name.startsWith(wanted + "_")) values.set(keyOf(name), value);
      }
    }
    return values;
  }

  /** The environment of a running process cannot change: a watch waits until it is stopped. */
  watchPrefix(_prefix: string, waitIndex: number, signal: AbortSignal): Promise<number> {
    return waitIndex === 0 ? Promise.resolve(1) : untilAborted(signal);
  }

  async close(): Promise<void> {}
}
