// The ssm backend: AWS Systems Manager Parameter Store, read with the two calls confd makes (so that
// IAM policies written for confd keep working). A key is a parameter path: GetParametersByPath,
// recursive and with SecureStrings decrypted, followed through every NextToken (a page may be empty and
// still have one), gives the parameters below it; when there are none, GetParameter reads the key as
// a parameter of its own, and a missing one is simply absent. Parameter names are confd's keys as they
// are ("/database/host"). Unlike confd, which drops them, every other error stops the read and names
// the parameter. The AWS SDK is loaded by connect(), only when this backend is chosen.
import type { GetParameterCommand, GetParametersByPathCommand, Parameter, SSMClient } from "@aws-sdk/client-ssm";
import { ConfdError } from "../errors.ts";
import { keyFilter, subtrees } from "../keys.ts";
import type { Config } from "../options.ts";
import type { StoreClient } from "../store.ts";
import { SharedWatches } from "../watch-core.ts";
import { awsError, checkSetup, clientSettings, endpointOverride, mapLimit, pollingWatch, serviceErrorName, serviceReason, type AwsStore } from "./aws.ts";

const STORE: AwsStore = { name: "ssm", localVariable: "SSM_LOCAL", localEndpoint: "http://localhost:8001" };
/** Paths read at once: Parameter Store's request rate for these calls is low, and the SDK retries when throttled. */
const PATH_CONCURRENCY = 4;
/** How long close() waits for the watches to end. */
const CLOSE_DEADLINE_MS = 5_000;

export interface SsmConnectOptions {
  /** Where SSM_LOCAL is read (a parameter so that tests need not touch process.env); the SDK reads process.env itself. */
  env?: Readonly<Record<string, string | undefined>>;
}

export async function connect(config: Config, options: SsmConnectOptions = {}): Promise<StoreClient> {
  const endpoint = endpointOverride(STORE, options.env ?? process.env);
  const sdk = await import("@aws-sdk/client-ssm");
  const client = new sdk.SSMClient(clientSettings(endpoint));
  const region = await checkSetup(client, STORE);
  return new SsmStore(config, client, { GetParameterCommand: sdk.GetParameterCommand, GetParametersByPathCommand: sdk.GetParametersByPathCommand }, endpoint ?? `region ${region}`);
}

/** The command classes, from the module connect() loaded. */
interface Commands {
  GetParameterCommand: typeof GetParameterCommand;
  GetParametersByPathCommand: typeof GetParametersByPathCommand;
}

class SsmStore implements StoreClient {
  private closed = false;
  private readonly watches: SharedWatches;

  constructor(
    config: Config,
    private readonly client: SSMClient,
    private readonly commands: Commands,
    /** The endpoint, or the region, for messages. */
    private readonly where: string,
  ) {
    const source = pollingWatch(config, STORE, async (prefix) => ({ values: await this.read([prefix]) }));
    this.watches = new SharedWatches({ store: STORE.name, source, deadlineMs: CLOSE_DEADLINE_MS });
  }

  async getValues(keys: readonly string[]): Promise<Map<string, string>> {
    if (this.closed) throw new ConfdError("the ssm client is closed");
    return this.read(keys);
  }

  watchPrefix(prefix: string, waitIndex: number, signal: AbortSignal): Promise<number> {
    return this.watches.wait(prefix, waitIndex, signal);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.watches.close();
    this.client.destroy();
  }

  /** Each key not inside another asked-for key read once; the parameters found, kept on the "/" boundary. */
  private async read(keys: readonly string[]): Promise<Map<string, string>> {
    const found = await mapLimit(subtrees(keys), PATH_CONCURRENCY, (key) => this.readKey(key));
    const wanted = keyFilter(keys);
    const values = new Map<string, string>();
    for (const parameters of found) for (const [name, value] of parameters) if (wanted(name)) values.set(name, value);
    return values;
  }

  /** The parameters below `key`, or when there are none, the parameter `key` if it exists. */
  private async readKey(key: string): Promise<Map<string, string>> {
    const values = new Map<string, string>();
    let token: string | undefined;
    const seen = new Set<string>();
    do {
      let page;
      try {
        page = await this.client.send(new this.commands.GetParametersByPathCommand({ Path: key, Recursive: true, WithDecryption: true, NextToken: token }));
      } catch (err) {
        throw this.failure(err, key);
      }
      // The SDK passes on whatever shape the answer has.
      const parameters: unknown = page.Parameters ?? [];
      if (!Array.isArray(parameters)) throw this.unreadable("a GetParametersByPath page without a list of parameters", key);
      for (const p of parameters) add(values, p);
      token = page.NextToken || undefined;
      // A store that hands out a token it has handed out before would be read for ever.
      if (token !== undefined && seen.has(token)) throw this.unreadable("a NextToken came back a second time", key);
      if (token !== undefined) seen.add(token);
    } while (token !== undefined);
    if (values.size > 0 || key === "/") return values;
    try {
      const answer = await this.client.send(new this.commands.GetParameterCommand({ Name: key, WithDecryption: true }));
      add(values, answer.Parameter);
    } catch (err) {
      if (serviceErrorName(err) !== "ParameterNotFound") throw this.failure(err, key);
    }
    return values;
  }

  private unreadable(what: string, key: string): ConfdError {
    return new ConfdError(`the ssm store's answer cannot be read (${this.where}): ${what}`, { key });
  }

  private failure(err: unknown, key: string): ConfdError {
    const name = serviceErrorName(err);
    if (name === "AccessDeniedException") {
      return new ConfdError(`ssm denied access to parameter ${key} (${serviceReason(err)}): check the IAM policy for ssm:GetParametersByPath and ssm:GetParameter`, { key });
    }
    return awsError(err, STORE, this.where, { key });
  }
}

/** A parameter's name and value, when the answer holds both as text. */
function add(values: Map<string, string>, p: Parameter | undefined): void {
  if (typeof p?.Name === "string" && typeof p.Value === "string") values.set(p.Name, p.Value);
}
