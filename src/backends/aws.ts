// What the dynamodb and ssm backends share: where the AWS SDK is told to send requests (confd's
// DYNAMODB_LOCAL and SSM_LOCAL, else the SDK's own endpoint settings), the client settings both use,
// the checks confd makes before it starts (a region and credentials, from the SDK's standard
// environment and profile chain), AWS errors made one line with nothing secret in them, and polling
// for -watch, since neither store can be watched. This module imports no SDK code: each backend loads
// its client with a dynamic import, so that other stores never pay for it.
import { ConfdError } from "../errors.ts";
import { log, redact } from "../log.ts";
import type { Config } from "../options.ts";
import { every, listingWatch, type Listing, type WatchSource } from "../watch-core.ts";

/** A node that has not accepted the connection by then is taken as down (the SDK retries, then the caller does). */
const CONNECT_TIMEOUT_MS = 5_000;
/** No byte for this long on an open request: a Scan page of 1 MB arrives well within it. */
const SOCKET_TIMEOUT_MS = 30_000;
/** The longest AWS error message put in a log line: the first line of it, cut here. */
const MAX_MESSAGE = 300;

export interface AwsStore {
  /** "dynamodb", "ssm": the backend's name, for messages. */
  name: string;
  /** confd's variable for a local endpoint: set to anything, requests go to `localEndpoint`. */
  localVariable: string;
  localEndpoint: string;
}

/**
 * The endpoint confd's variable asks for, if set: confd sends requests to a fixed local address when the
 * variable holds anything; here a variable that holds an http(s) URL names the endpoint itself (for a
 * DynamoDB Local on another port). Unset, the SDK decides: AWS's endpoint for the region, or
 * AWS_ENDPOINT_URL_<SERVICE> / AWS_ENDPOINT_URL / a profile's endpoint_url when set.
 */
export function endpointOverride(store: AwsStore, env: Readonly<Record<string, string | undefined>>): string | undefined {
  const value = env[store.localVariable]?.trim();
  if (!value) return undefined;
  return /^https?:\/\/[^\s/]/i.test(value) && URL.canParse(value) ? value : store.localEndpoint;
}

/**
 * Settings for the SDK's client constructor. Retries are the SDK's, with backoff, throttling included:
 * 4 attempts for DynamoDB, 3 for SSM, AWS_MAX_ATTEMPTS to change them. A black-holed endpoint thus
 * fails a read after attempts × CONNECT_TIMEOUT_MS.
 */
export function clientSettings(endpoint: string | undefined): {
  endpoint?: string;
  requestHandler: { connectionTimeout: number; requestTimeout: number };
} {
  return { ...(endpoint ? { endpoint } : {}), requestHandler: { connectionTimeout: CONNECT_TIMEOUT_MS, requestTimeout: SOCKET_TIMEOUT_MS } };
}

/** What checkSetup() uses of an SDK client: its resolved configuration, and destroy() when the setup fails. */
export interface AwsClient {
  config: {
    region(): Promise<string>;
    credentials(): Promise<{ secretAccessKey: string; sessionToken?: string }>;
  };
  destroy(): void;
}

/**
 * confd's checks at start: a region, and credentials from the SDK's chain (environment, shared
 * config and credentials files with AWS_PROFILE, SSO, process, web identity, container and instance
 * roles). Either missing stops confd with one line. The secret parts of the credentials are given to
 * the log's redaction as a last line of defence. Returns the region, for messages; a client that
 * fails the checks is destroyed.
 */
export async function checkSetup(client: AwsClient, store: AwsStore): Promise<string> {
  try {
    return await checkConfig(client.config, store);
  } catch (err) {
    client.destroy();
    throw err;
  }
}

async function checkConfig(config: AwsClient["config"], store: AwsStore): Promise<string> {
  let region: string;
  try {
    region = await config.region();
  } catch {
    throw new ConfdError(`the ${store.name} backend needs an AWS region: set AWS_REGION, or region in the AWS profile (AWS_PROFILE, ~/.aws/config)`);
  }
  try {
    const credentials = await config.credentials();
    redact(credentials.secretAccessKey);
    redact(credentials.sessionToken);
  } catch (err) {
    throw new ConfdError(
      `the ${store.name} backend found no AWS credentials (${firstLine(err)}): set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or run with an instance or task role`,
    );
  }
  return region;
}

/**
 * The pace of polls under -watch, which neither store can serve otherwise: one listing per watched
 * prefix every -interval, said once at start. -interval must then be above 0 (the configuration checks
 * it only for the interval mode), or confd would ask AWS without a pause.
 */
export function pollingWatch(config: Config, store: AwsStore, list: (prefix: string) => Promise<Listing>): WatchSource {
  if (config.watch && !config.onetime) {
    if (!(config.interval > 0)) throw new ConfdError(`interval must be a positive number of seconds, got ${config.interval}`, { flag: "-interval" });
    log.info(`The ${store.name} backend cannot be watched: with -watch confd polls it every ${config.interval}s (-interval)`);
  }
  return listingWatch({ list: (prefix) => list(prefix), pace: () => every(config.interval * 1000) });
}

/** An error from the SDK, or thrown around it. */
interface SdkError {
  name?: string;
  message?: string;
  code?: string;
  $metadata?: { httpStatusCode?: number };
}

/**
 * One line for an AWS failure: the store could not be reached (no HTTP answer), or its answer could
 * not be read, or it answered with an error (its name and the first line of its message). AWS's
 * messages name resources, never values; the first line only, since a signature mismatch goes on with
 * the canonical request, which holds the session token. An answer that cannot be read may be quoted
 * in the parser's complaint, so quoted text is left out of that one. The context (a key) goes only
 * with the store's answers: which key was asked does not matter when the store cannot be reached.
 */
export function awsError(err: unknown, store: AwsStore, where: string, context: { key?: string } = {}): ConfdError {
  if (err instanceof ConfdError) return err;
  const e = (err ?? {}) as SdkError;
  const status = e.$metadata?.httpStatusCode;
  // The SDK's HTTP layer signs its own messages ("@smithy/node-http-handler - the request socket did not…").
  if (status === undefined) return new ConfdError(`the ${store.name} store cannot be reached (${where}): ${e.code ?? firstLine(err).replace(/^@smithy\/[\w-]+ - /, "")}`);
  if (e.name === "SyntaxError" || /Deserialization error/.test(e.message ?? "")) {
    return new ConfdError(`the ${store.name} store's answer cannot be read (${where}, HTTP ${status}): ${firstLine(err).replace(/"[^"]*"|'[^']*'/g, '"…"')}`);
  }
  return new ConfdError(`${store.name} refused the request (${serviceReason(err)})`, context);
}

/** An error the service answered with, as "AccessDeniedException: User … is not authorized …", or its HTTP status when it named none. */
export function serviceReason(err: unknown): string {
  const e = (err ?? {}) as SdkError;
  const message = firstLine(err);
  // The SDK's names for an answer that carried no error name, or no message.
  if (e.name && !["Unknown", "UnknownError", "Error"].includes(e.name)) return `${e.name}: ${message}`;
  const status = `HTTP ${e.$metadata?.httpStatusCode}`;
  return message && message !== "UnknownError" ? `${status}: ${message}` : `${status}, with no AWS error in the answer`;
}

/** The SDK's name for an error from the service ("ResourceNotFoundException"), or undefined for any other failure. */
export function serviceErrorName(err: unknown): string | undefined {
  const e = (err ?? {}) as SdkError;
  return e.$metadata?.httpStatusCode !== undefined && e.$metadata.httpStatusCode >= 300 ? e.name : undefined;
}

/** The first line of an error's message, cut to MAX_MESSAGE, with no control characters left to forge log lines with. */
function firstLine(err: unknown): string {
  const message = err instanceof Error ? err.message : typeof (err as SdkError)?.message === "string" ? (err as SdkError).message! : String(err);
  const line = printable(message.split(/\r?\n/, 1)[0]!.trim());
  return line.length > MAX_MESSAGE ? `${line.slice(0, MAX_MESSAGE)}…` : line;
}

/** Text from the store (a key, a message) fit for a log line: control characters written as \xNN. */
export function printable(text: string): string {
  return text.replace(/[\x00-\x1f\x7f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`);
}

/** fn over items, at most `limit` at a time, results in order; the first failure rejects. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
