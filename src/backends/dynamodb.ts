// The dynamodb backend: confd's table shape (a string partition key named "key", the value in an
// attribute named "value"), read with the two calls confd makes, so that IAM policies written for
// confd keep working: GetItem for each key asked for, and, for those that are no item, a Scan for the
// keys below them ("/app" reads "/app/…", never "/application"), followed page by page to the end
// (confd reads the first 1 MB page only). Reads that start together share their requests and one Scan:
// a Scan reads the whole table whatever it returns, so the prefixes polled under -watch at the same
// moment cost one. The AWS SDK is loaded by connect(), only when this backend is chosen.
import type { AttributeValue, DynamoDBClient, GetItemCommand, ScanCommand } from "@aws-sdk/client-dynamodb";
import { decodeBytes } from "../bytes.ts";
import { ConfdError } from "../errors.ts";
import { keyFilter, normalizeKey, subtrees } from "../keys.ts";
import { log } from "../log.ts";
import type { Config } from "../options.ts";
import type { StoreClient } from "../store.ts";
import { SharedWatches } from "../watch-core.ts";
import { awsError, checkSetup, clientSettings, endpointOverride, mapLimit, pollingWatch, printable, serviceErrorName, type AwsStore } from "./aws.ts";

const STORE: AwsStore = { name: "dynamodb", localVariable: "DYNAMODB_LOCAL", localEndpoint: "http://localhost:8000" };
/** GetItem requests in flight at once. */
const GET_CONCURRENCY = 16;
/**
 * Above this many prefixes a Scan's filter would near DynamoDB's 4 KB expression limit: the Scan then
 * returns every key under "/" and the keys are picked here. It reads (and costs) the same either way.
 */
const MAX_FILTER_TERMS = 100;
/** How long close() waits for the watches to end. */
const CLOSE_DEADLINE_MS = 5_000;

export interface DynamoConnectOptions {
  /** Where DYNAMODB_LOCAL is read (a parameter so that tests need not touch process.env); the SDK reads process.env itself. */
  env?: Readonly<Record<string, string | undefined>>;
}

export async function connect(config: Config, options: DynamoConnectOptions = {}): Promise<StoreClient> {
  const table = config.table.trim();
  if (!table) throw new ConfdError("the dynamodb backend needs the name of a table: set -table", { flag: "-table" });
  // DynamoDB's rule for names (a table's ARN is accepted too), checked here for a clear message.
  if (!/^arn:/.test(table) && !/^[A-Za-z0-9_.-]{3,255}$/.test(table)) {
    throw new ConfdError(`invalid DynamoDB table name "${table}": 3 to 255 letters, digits, "_", "-" or "."`, { flag: "-table" });
  }
  const endpoint = endpointOverride(STORE, options.env ?? process.env);
  const sdk = await import("@aws-sdk/client-dynamodb");
  const client = new sdk.DynamoDBClient(clientSettings(endpoint));
  const region = await checkSetup(client, STORE);
  log.info(`DynamoDB table set to ${table}`);
  return new DynamoClient(config, client, { GetItemCommand: sdk.GetItemCommand, ScanCommand: sdk.ScanCommand }, table, endpoint ?? `region ${region}`);
}

/** The command classes, from the module connect() loaded. */
interface Commands {
  GetItemCommand: typeof GetItemCommand;
  ScanCommand: typeof ScanCommand;
}

/** What GetItem found for a key: a value, an item whose value is skipped, or nothing to stop the Scan below it. */
type ItemResult = { value: string } | { skipped: true } | undefined;

/** One read of the table for a set of keys; each caller takes the answer for its own keys. */
class Reading {
  constructor(
    private readonly items: ReadonlyMap<string, ItemResult>,
    /** Every key the Scan found below the keys that are no item, with its value. */
    private readonly below: ReadonlyMap<string, string>,
  ) {}

  /** As confd: a key that is an item is that item alone; otherwise the keys below it. */
  valuesOf(keys: readonly string[]): Map<string, string> {
    const values = new Map<string, string>();
    const scanned: string[] = [];
    for (const key of new Set(keys.map(normalizeKey))) {
      const item = this.items.get(key);
      if (item === undefined) scanned.push(key);
      else if ("value" in item) values.set(key, item.value);
    }
    if (scanned.length > 0) {
      const wanted = keyFilter(scanned);
      for (const [key, value] of this.below) if (wanted(key)) values.set(key, value);
    }
    return values;
  }
}

class DynamoClient implements StoreClient {
  private closed = false;
  /** The read not yet sent, which callers join. */
  private pending: { keys: Set<string>; reading: Promise<Reading> } | undefined;
  /** Keys already warned about, so that each poll does not say it again. */
  private readonly warned = new Set<string>();
  private readonly watches: SharedWatches;

  constructor(
    config: Config,
    private readonly client: DynamoDBClient,
    private readonly commands: Commands,
    private readonly table: string,
    /** The endpoint, or the region, for messages. */
    private readonly where: string,
  ) {
    const source = pollingWatch(config, STORE, async (prefix) => ({ values: (await this.read([prefix])).valuesOf([prefix]) }));
    this.watches = new SharedWatches({ store: STORE.name, source, deadlineMs: CLOSE_DEADLINE_MS });
  }

  async getValues(keys: readonly string[]): Promise<Map<string, string>> {
    if (this.closed) throw closedError();
    if (keys.length === 0) return new Map();
    return (await this.read(keys)).valuesOf(keys);
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

  /** Joins the read about to be sent, or starts one that others may join until the next turn of the event loop. */
  private read(keys: readonly string[]): Promise<Reading> {
    if (!this.pending) {
      const batch = new Set<string>();
      const reading = new Promise((resolve) => setTimeout(resolve, 0)).then(() => {
        this.pending = undefined;
        return this.fetch([...batch]);
      });
      this.pending = { keys: batch, reading };
    }
    for (const key of keys) this.pending.keys.add(normalizeKey(key));
    return this.pending.reading;
  }

  private async fetch(keys: string[]): Promise<Reading> {
    const found = await mapLimit(keys, GET_CONCURRENCY, (key) => this.getItem(key));
    const items = new Map(keys.map((key, i) => [key, found[i]]));
    const prefixes = keys.filter((key) => items.get(key) === undefined);
    return new Reading(items, prefixes.length > 0 ? await this.scan(subtrees(prefixes)) : new Map());
  }

  private async getItem(key: string): Promise<ItemResult> {
    let item: Record<string, AttributeValue> | undefined;
    try {
      const answer = await this.client.send(
        new this.commands.GetItemCommand({
          TableName: this.table,
          Key: { key: { S: key } },
          ProjectionExpression: "#v",
          ExpressionAttributeNames: { "#v": "value" },
        }),
      );
      item = answer.Item;
    } catch (err) {
      throw this.failure(err, key);
    }
    // No item, or one without a value attribute: confd looks below the key then.
    if (!item?.value) return undefined;
    const value = this.valueOf(key, item.value);
    return value === undefined ? { skipped: true } : { value };
  }

  /** Every key under the prefixes (on the "/" boundary; "/" is every key starting with "/") with its value, page after page. */
  private async scan(prefixes: string[]): Promise<Map<string, string>> {
    const names = { "#k": "key", "#v": "value" };
    const filter: { FilterExpression: string; ExpressionAttributeValues: Record<string, AttributeValue> } =
      prefixes.includes("/") || prefixes.length > MAX_FILTER_TERMS
        ? { FilterExpression: "begins_with(#k, :p0)", ExpressionAttributeValues: { ":p0": { S: "/" } } }
        : {
            FilterExpression: prefixes.map((_, i) => `begins_with(#k, :p${i})`).join(" OR "),
            ExpressionAttributeValues: Object.fromEntries(prefixes.map((p, i) => [`:p${i}`, { S: `${p}/` }])),
          };
    const wanted = keyFilter(prefixes);
    const values = new Map<string, string>();
    let start: Record<string, AttributeValue> | undefined;
    const seen = new Set<string>();
    do {
      let page;
      try {
        page = await this.client.send(
          new this.commands.ScanCommand({
            TableName: this.table,
            ProjectionExpression: "#k, #v",
            ExpressionAttributeNames: names,
            ...filter,
            ExclusiveStartKey: start,
          }),
        );
      } catch (err) {
        throw this.failure(err);
      }
      // The SDK passes on whatever shape the answer has.
      const items: unknown = page.Items ?? [];
      if (!Array.isArray(items) || !items.every((item) => item !== null && typeof item === "object")) throw this.unreadable("a Scan page whose items are not a list of items");
      for (const item of items as Record<string, AttributeValue>[]) {
        const key = item.key?.S;
        if (typeof key !== "string" || !key.startsWith("/") || !wanted(key) || !item.value) continue;
        const value = this.valueOf(key, item.value);
        if (value !== undefined) values.set(key, value);
      }
      start = page.LastEvaluatedKey;
      // A store that names a page it has sent before would be read for ever.
      const next = JSON.stringify(start);
      if (start !== undefined && seen.has(next)) throw this.unreadable("a Scan page continues from where an earlier one did");
      seen.add(next);
    } while (start !== undefined);
    return values;
  }

  /**
   * A string value as it is; a binary one as its bytes (DynamoDB's only way to hold bytes that are not
   * UTF-8, which confd skips); any other type is skipped, as confd does, with a warning naming the key.
   */
  private valueOf(key: string, value: AttributeValue): string | undefined {
    if (typeof value.S === "string") return value.S;
    if (value.B instanceof Uint8Array) return decodeBytes(value.B);
    if (!this.warned.has(key)) {
      this.warned.add(key);
      const type = (typeof value === "object" && Object.entries(value).find(([, v]) => v !== undefined)?.[0]) || "unknown";
      log.warning(`Skipping key ${printable(key)}: its "value" is of DynamoDB type ${/^[A-Z]{1,4}$/.test(type) ? type : "unknown"}, not a string`);
    }
    return undefined;
  }

  private unreadable(what: string): ConfdError {
    return new ConfdError(`the dynamodb store's answer cannot be read (${this.where}): ${what}`);
  }

  private failure(err: unknown, key?: string): ConfdError {
    const name = serviceErrorName(err);
    if (name === "ResourceNotFoundException") return new ConfdError(`DynamoDB table "${this.table}" not found (${this.where})`, { flag: "-table" });
    if (name === "ValidationException" && /key element does not match the schema/i.test(String((err as Error).message))) {
      return new ConfdError(`DynamoDB table "${this.table}" is not in confd's shape: its partition key must be a string attribute named "key", with no sort key`, {
        flag: "-table",
      });
    }
    return awsError(err, STORE, this.where, key === undefined ? {} : { key });
  }
}

function closedError(): ConfdError {
  return new ConfdError("the dynamodb client is closed");
}
