// The vault backend's transport: Vault's HTTP API over fetch. It owns the nodes (confd's -node is a
// URL; host:port is taken too) and the move to the next one when a node cannot be reached or answers
// 5xx (sealed, a standby without an active node), TLS (CA file, client certificate, -client-insecure),
// the request timeout, and the decoding of answers: JSON whose numbers keep the text they were written
// with, so that a secret is written back out as confd's Go client writes it. Tokens travel in the
// X-Vault-Token header only; messages name nodes by host:port and never carry a token or a value.
import { decodeBytes } from "../bytes.ts";
import { ConfdError } from "../errors.ts";
import type { Config } from "../options.ts";
import { fixedNodes, type NodeSource } from "../srv.ts";
import { tlsSettings, type TlsSettings } from "./tls.ts";

/** confd's default -node for vault. */
const DEFAULT_NODE = "http://127.0.0.1:8200";
/** Vault answers in milliseconds; a node that has not answered by then is taken as down. */
const REQUEST_TIMEOUT_MS = 10_000;
/** How much of Vault's own error text goes into a message. */
const MAX_REASON = 200;

/** A JSON number as written: Go's json.Number, which confd's client decodes secrets with and writes back unchanged. */
export class JsonNumber {
  constructor(readonly text: string) {}
}

export type Json = string | boolean | null | JsonNumber | Json[] | JsonObject;
export interface JsonObject {
  [key: string]: Json;
}

/** An answer from Vault: its status and its JSON body (undefined when it had none, or none that parses on an error status). */
export interface VaultAnswer {
  status: number;
  body: JsonObject | undefined;
}

export interface VaultRequest {
  method: "GET" | "POST";
  /** The API path after /v1/, segments unencoded: "secret/data/app". */
  path: string;
  token?: string;
  /** A LIST, sent as GET with ?list=true as Vault's Go client sends it. */
  list?: boolean;
  body?: Record<string, string>;
  signal?: AbortSignal;
}

export class VaultHttp {
  /** The node that answered last, tried first. */
  private preferred = 0;
  /** The source's list the nodes were made from, and the nodes. */
  private listed: readonly string[];
  private nodes: readonly URL[];

  constructor(
    private readonly source: NodeSource,
    private readonly scheme: string,
    private readonly tls: TlsSettings | undefined,
    private readonly namespace: string | undefined,
  ) {
    this.listed = source.current();
    this.nodes = urls(this.listed, scheme);
  }

  static fromConfig(config: Config, env: Readonly<Record<string, string | undefined>>, source: NodeSource = fixedNodes(config.nodes)): VaultHttp {
    const tls = tlsSettings(config);
    const scheme = config.scheme === "https" || tls !== undefined ? "https" : "http";
    return new VaultHttp(source, scheme, tls, env.VAULT_NAMESPACE || undefined);
  }

  /**
   * Sends the request to the preferred node, then to each other one while they cannot be reached or
   * answer 5xx. Any other answer, 4xx included, is Vault's and returned as it is.
   */
  async call(request: VaultRequest): Promise<VaultAnswer> {
    const failures: string[] = [];
    // The nodes may be replaced meanwhile (by another call's refresh): this one goes round these.
    const { nodes } = this;
    for (let i = 0; i < nodes.length; i++) {
      const n = (this.preferred + i) % nodes.length;
      const node = nodes[n]!;
      let answer: VaultAnswer;
      try {
        answer = await this.send(node, request);
      } catch (err) {
        if (request.signal?.aborted) throw request.signal.reason;
        if (err instanceof ConfdError) throw err;
        failures.push(`${node.host} (${reasonOf(err)})`);
        continue;
      }
      if (answer.status >= 500) {
        failures.push(`${node.host} (${answer.status}${vaultErrors(answer) ? ` ${vaultErrors(answer)}` : ""})`);
        continue;
      }
      if (nodes === this.nodes) this.preferred = n;
      return answer;
    }
    // Every node failed: the next call goes to the nodes SRV records name now, if they changed.
    if (await this.source.refresh()) this.adopt();
    throw new ConfdError(`the vault store cannot be reached: ${failures.join(", ")}`);
  }

  /** Takes the source's new list; its first node is tried first. */
  private adopt(): void {
    const listed = this.source.current();
    if (listed === this.listed) return;
    this.listed = listed;
    this.nodes = urls(listed, this.scheme);
    this.preferred = 0;
  }

  private async send(node: URL, request: VaultRequest): Promise<VaultAnswer> {
    const url = new URL(node);
    url.pathname = `${node.pathname.replace(/\/+$/, "")}/v1/${request.path.split("/").map(encodeURIComponent).join("/")}`;
    if (request.list) url.searchParams.set("list", "true");
    const headers: Record<string, string> = { "X-Vault-Request": "true" };
    if (request.token) headers["X-Vault-Token"] = request.token;
    if (this.namespace) headers["X-Vault-Namespace"] = this.namespace;
    if (request.body) headers["Content-Type"] = "application/json";
    const timeout = AbortSignal.timeout(REQUEST_TIMEOUT_MS);
    const init: BunFetchRequestInit = {
      method: request.method,
      headers,
      body: request.body ? JSON.stringify(request.body) : undefined,
      signal: request.signal ? AbortSignal.any([request.signal, timeout]) : timeout,
      // As confd, whose Vault client has a transport of its own: no proxy from the environment.
      proxy: false,
      tls: this.tls,
    };
    let response: Response;
    let bytes: Uint8Array;
    try {
      response = await fetch(url, init);
      bytes = new Uint8Array(await response.arrayBuffer());
    } catch (err) {
      if (timeout.aborted && !request.signal?.aborted) throw new Error(`no answer within ${REQUEST_TIMEOUT_MS / 1000} s`);
      throw err;
    }
    const body = parseBody(bytes);
    if (body === INVALID) {
      // A proxy's error page, say: for an error status the status says enough.
      if (response.status >= 400) return { status: response.status, body: undefined };
      throw new ConfdError(`vault at ${node.host} answered ${request.path} with something that is not a JSON object (status ${response.status})`);
    }
    return { status: response.status, body };
  }
}

const INVALID = Symbol("invalid");

function parseBody(bytes: Uint8Array): JsonObject | undefined | typeof INVALID {
  const text = decodeBytes(bytes);
  if (text.trim() === "") return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text, keepNumberText);
  } catch {
    return INVALID;
  }
  return parsed !== null && typeof parsed === "object" && !Array.isArray(parsed) ? (parsed as JsonObject) : INVALID;
}

/** JSON.parse's reviver: each number as the text it was written as (its source, which Bun's JSON.parse passes). */
function keepNumberText(_key: string, value: unknown, context?: { source?: string }): unknown {
  return typeof value === "number" ? new JsonNumber(context?.source ?? String(value)) : value;
}

/** Vault's own words for a failure, `{"errors": [...]}`, on one short line; "" when it gave none. */
function vaultErrors(answer: VaultAnswer): string {
  const errors = answer.body?.errors;
  if (!Array.isArray(errors)) return "";
  const text = errors
    .filter((e): e is string => typeof e === "string")
    .join("; ")
    .replace(/\s+/g, " ")
    .trim();
  return text.length > MAX_REASON ? `${text.slice(0, MAX_REASON)}…` : text;
}

/** "403 permission denied", for messages. */
export function statusText(answer: VaultAnswer): string {
  const errors = vaultErrors(answer);
  return errors ? `${answer.status} ${errors}` : String(answer.status);
}

/** `body[field]` when it is a JSON object. */
export function objectAt(body: JsonObject | undefined, field: string): JsonObject | undefined {
  const value = body?.[field];
  return isObject(value) ? value : undefined;
}

export function isObject(value: Json | undefined): value is JsonObject {
  return value !== null && typeof value === "object" && !Array.isArray(value) && !(value instanceof JsonNumber);
}

/** A positive JSON number at `body[field]` (Vault's seconds), else 0. */
export function numberAt(body: JsonObject | undefined, field: string): number {
  const value = body?.[field];
  const n = value instanceof JsonNumber ? Number(value.text) : 0;
  return Number.isFinite(n) && n > 0 ? n : 0;
}

function urls(nodes: readonly string[], scheme: string): URL[] {
  return (nodes.length > 0 ? nodes : [DEFAULT_NODE]).map((node) => nodeUrl(node, scheme));
}

/** A URL, as confd takes it, or host:port in the scheme the TLS flags imply. */
function nodeUrl(node: string, scheme: string): URL {
  const text = /^[a-z][a-z0-9+.-]*:\/\//i.test(node) ? node : `${scheme}://${node}`;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new ConfdError(`invalid vault node "${node}": expected a URL such as http://127.0.0.1:8200`, { flag: "-node" });
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new ConfdError(`invalid vault node "${node}": the scheme must be http or https`, { flag: "-node" });
  }
  if (url.username || url.password) throw new ConfdError(`invalid vault node: credentials in the URL are not used by Vault`, { flag: "-node" });
  return url;
}


/** A network failure briefly: fetch's error code ("ECONNREFUSED", "DEPTH_ZERO_SELF_SIGNED_CERT"), else its message. */
function reasonOf(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === "string" && code) return code;
  return err instanceof Error ? err.message : String(err);
}
