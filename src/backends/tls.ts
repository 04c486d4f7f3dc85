// The TLS settings of an HTTP store (consul, vault) from confd's TLS flags: any of them set turns TLS on,
// and a client certificate needs both its halves. etcd's gRPC channels read the same flags in etcd.ts.
import { readFileSync } from "node:fs";
import { ConfdError, errnoText } from "../errors.ts";
import type { Config } from "../options.ts";

/** What node:https takes for a client's TLS (PEM text). */
export interface TlsSettings {
  ca?: string;
  cert?: string;
  key?: string;
  rejectUnauthorized: boolean;
}

/** undefined when no TLS option is given. */
export function tlsSettings(config: Config): TlsSettings | undefined {
  if (!config.clientCaKeys && !config.clientCert && !config.clientKey && !config.clientInsecure) return undefined;
  if (Boolean(config.clientCert) !== Boolean(config.clientKey)) {
    throw new ConfdError("a client certificate needs both -client-cert and -client-key", { flag: config.clientCert ? "-client-key" : "-client-cert" });
  }
  return {
    ca: config.clientCaKeys ? readPem(config.clientCaKeys, "-client-ca-keys") : undefined,
    cert: config.clientCert ? readPem(config.clientCert, "-client-cert") : undefined,
    key: config.clientKey ? readPem(config.clientKey, "-client-key") : undefined,
    rejectUnauthorized: !config.clientInsecure,
  };
}

function readPem(file: string, flag: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch (err) {
    throw new ConfdError(`cannot read TLS file: ${errnoText(err)}`, { file, flag });
  }
}
