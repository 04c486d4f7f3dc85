// The backend factory: each store's client is loaded only when selected, so a binary run with the file
// backend never pays for the etcd or redis libraries. The contract they implement is in ../store.ts.
import { environment } from "../bytes.ts";
import { ConfdError } from "../errors.ts";
import type { Config } from "../options.ts";
import type { NodeSource } from "../srv.ts";
import type { StoreClient } from "../store.ts";

export const BACKENDS = ["consul", "dynamodb", "env", "etcd", "etcdv3", "file", "redis", "ssm", "vault", "zookeeper"] as const;

export async function createStoreClient(config: Config): Promise<StoreClient> {
  switch (config.backend) {
    case "etcd":
    case "etcdv3":
      return (await import("./etcd.ts")).connect(config, { nodes: await storeNodes(config) });
    case "redis":
      return (await import("./redis.ts")).connect(config, { nodes: await storeNodes(config) });
    case "consul":
      return (await import("./consul.ts")).connect(config, { nodes: await storeNodes(config) });
    case "dynamodb":
      return (await import("./dynamodb.ts")).connect(config);
    case "ssm":
      return (await import("./ssm.ts")).connect(config);
    case "vault":
      return (await import("./vault.ts")).connect(config, { nodes: await storeNodes(config) });
    case "zookeeper":
      return (await import("./zookeeper.ts")).connect(config, { nodes: await storeNodes(config) });
    case "env": {
      const { EnvClient } = await import("./env.ts");
      return new EnvClient(environment());
    }
    case "file": {
      if (config.files.length === 0) throw new ConfdError("the file backend needs at least one --file", { flag: "-file" });
      const { FileClient } = await import("./file.ts");
      return new FileClient(config.files, config.filter);
    }
    default:
      throw new ConfdError(`backend "${config.backend}" is not available in this build (available: ${BACKENDS.join(", ")})`, {
        flag: "-backend",
      });
  }
}

/** -node, or the nodes SRV records name (../srv.ts, loaded only for the stores that have nodes). */
async function storeNodes(config: Config): Promise<NodeSource> {
  return (await import("../srv.ts")).nodeSource(config);
}
