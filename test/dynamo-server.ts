// dynalite (npm), an implementation of the DynamoDB API on an in-memory LevelDB, for tests and the
// store benchmark: run in a child process (this Bun) on a spare loopback port, stopped by its PID, with
// confd's table shape (a string partition key "key"; values in "value"), and written to through the
// AWS SDK as a user would. Not DynamoDB itself: what dynalite leaves out (capacity, throttling,
// IAM) is not tested here.
import { BatchWriteItemCommand, CreateTableCommand, DeleteItemCommand, DescribeTableCommand, DynamoDBClient, PutItemCommand, type AttributeValue, type WriteRequest } from "@aws-sdk/client-dynamodb";
import { TEST_CREDENTIALS } from "./aws-env.ts";
import { freePort } from "./helpers.ts";

const READY_TIMEOUT_MS = 15_000;
/** BatchWriteItem's limit of requests per call. */
const BATCH_SIZE = 25;

export interface DynamoServer {
  /** "http://127.0.0.1:PORT": for DYNAMODB_LOCAL. */
  readonly endpoint: string;
  readonly table: string;
  /** The current process; it changes on restart(). */
  readonly pid: number;
  /** A client of the server, with the test credentials. */
  readonly client: DynamoDBClient;
  /** Writes one item; a string is stored as a string value, anything else as the attribute given. */
  put(key: string, value: string | AttributeValue): Promise<void>;
  /** Writes many items, BATCH_SIZE to a request. */
  putMany(items: Iterable<[string, string | AttributeValue]>): Promise<void>;
  delete(key: string): Promise<void>;
  /** Stops the server for good. */
  stop(): Promise<void>;
  /** SIGKILL, as a crash would. Its data is in memory: it is gone. */
  kill(): Promise<void>;
  /** Starts again on the same port, with the table created anew and empty. */
  restart(): Promise<void>;
}

export async function startDynalite(options: { table?: string; port?: number } = {}): Promise<DynamoServer> {
  const table = options.table ?? "confd";
  const port = options.port ?? freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  const client = new DynamoDBClient({
    endpoint,
    region: TEST_CREDENTIALS.AWS_REGION,
    credentials: { accessKeyId: TEST_CREDENTIALS.AWS_ACCESS_KEY_ID, secretAccessKey: TEST_CREDENTIALS.AWS_SECRET_ACCESS_KEY },
  });
  let proc = await launch(port);
  await createTable(client, table);
  const halt = async (signal: "SIGTERM" | "SIGKILL") => {
    if (proc.exitCode === null && proc.signalCode === null) process.kill(proc.pid, signal);
    await proc.exited;
  };
  const server: DynamoServer = {
    endpoint,
    table,
    get pid() {
      return proc.pid;
    },
    client,
    async put(key, value) {
      await client.send(new PutItemCommand({ TableName: table, Item: item(key, value) }));
    },
    putMany: (items) => writeItems(client, table, items),
    async delete(key) {
      await client.send(new DeleteItemCommand({ TableName: table, Key: { key: { S: key } } }));
    },
    async stop() {
      await halt("SIGTERM");
      client.destroy();
    },
    kill: () => halt("SIGKILL"),
    async restart() {
      await halt("SIGTERM");
      proc = await launch(port);
      await createTable(client, table);
    },
  };
  return server;
}

/** Writes items into confd's table shape, BATCH_SIZE to a BatchWriteItem, sending again what DynamoDB left unprocessed. */
export async function writeItems(client: DynamoDBClient, table: string, items: Iterable<[string, string | AttributeValue]>): Promise<void> {
  const all = [...items];
  for (let i = 0; i < all.length; i += BATCH_SIZE) {
    let requests: WriteRequest[] = all.slice(i, i + BATCH_SIZE).map(([key, value]) => ({ PutRequest: { Item: item(key, value) } }));
    while (requests.length > 0) {
      const answer = await client.send(new BatchWriteItemCommand({ RequestItems: { [table]: requests } }));
      requests = answer.UnprocessedItems?.[table] ?? [];
    }
  }
}

function item(key: string, value: string | AttributeValue): Record<string, AttributeValue> {
  return { key: { S: key }, value: typeof value === "string" ? { S: value } : value };
}

/** Creates the table and waits until dynalite calls it ACTIVE (at once with --createTableMs 0, yet after the call returns). */
async function createTable(client: DynamoDBClient, table: string): Promise<void> {
  await client.send(
    new CreateTableCommand({
      TableName: table,
      AttributeDefinitions: [{ AttributeName: "key", AttributeType: "S" }],
      KeySchema: [{ AttributeName: "key", KeyType: "HASH" }],
      BillingMode: "PAY_PER_REQUEST",
    }),
  );
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while ((await client.send(new DescribeTableCommand({ TableName: table }))).Table?.TableStatus !== "ACTIVE") {
    if (Date.now() > deadline) throw new Error(`dynalite's table ${table} did not become ACTIVE within ${READY_TIMEOUT_MS} ms`);
    await Bun.sleep(5);
  }
}

/** Spawns dynalite and resolves once it says it listens, or rejects with its output if it exits first. */
async function launch(port: number): Promise<Bun.Subprocess<"ignore", "pipe", "pipe">> {
  const cli = Bun.resolveSync("dynalite/cli.js", import.meta.dir);
  const proc = Bun.spawn([process.execPath, cli, "--host", "127.0.0.1", "--port", String(port), "--createTableMs", "0", "--deleteTableMs", "0", "--updateTableMs", "0"], {
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  let output = "";
  let listening!: () => void;
  const ready = new Promise<void>((resolve) => (listening = resolve));
  // Drained all the time: a full pipe would block dynalite.
  const collect = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream) {
      output = (output + new TextDecoder().decode(chunk)).slice(-4000);
      if (output.includes("Dynalite listening")) listening();
    }
  };
  void collect(proc.stdout);
  void collect(proc.stderr);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const outcome = await Promise.race([
    ready.then(() => "ready" as const),
    proc.exited.then(() => "exited" as const),
    new Promise<"timeout">((resolve) => (timer = setTimeout(() => resolve("timeout"), READY_TIMEOUT_MS))),
  ]);
  clearTimeout(timer);
  if (outcome === "ready") return proc;
  if (outcome === "timeout") process.kill(proc.pid, "SIGKILL");
  throw new Error(`dynalite ${outcome === "timeout" ? `did not listen within ${READY_TIMEOUT_MS} ms` : `exited with code ${proc.exitCode}`}:\n${output}`);
}
