// A TEST DOUBLE of AWS Systems Manager Parameter Store: not SSM, and not checked against it (no SSM
// emulator can be installed here). Written from AWS's API reference for the two calls confd makes,
// over SSM's JSON 1.1 protocol: a POST to "/" with Content-Type application/x-amz-json-1.1 and
// X-Amz-Target AmazonSSM.<Operation>, signed with Signature Version 4 (verified here against the
// credentials the double knows, as AWS would), answered in JSON, errors as HTTP 400 with a "__type".
// - GetParametersByPath: Path, Recursive, WithDecryption, MaxResults (1 to 10, default 10) and
//   NextToken; a page holds at most `pageSize` parameters, and with `emptyPages` an empty page with a
//   NextToken comes first, as the reference says a page may hold "between zero and MaxResults".
// - GetParameter: Name, WithDecryption; ParameterNotFound for a name it does not hold.
// - SecureString values come back decrypted only WithDecryption; otherwise as a stand-in ciphertext.
// - deny(prefix): AccessDeniedException for a call on a path or name under it.
// Left out: parameter filters, labels and versions in names, ParameterVersionNotFound, throttling,
// KMS errors, the other 100-odd operations.
import { createHash, createHmac } from "node:crypto";
import type { Server } from "bun";

export interface SsmDoubleOptions {
  /** The access keys the double accepts, with their secret keys. */
  credentials: Record<string, string>;
  /** The most parameters a GetParametersByPath page holds, below MaxResults; 10 by default. */
  pageSize?: number;
  /** Each GetParametersByPath listing starts with an empty page that has a NextToken. */
  emptyPages?: boolean;
  /** The loopback port to listen on; a spare one by default. */
  port?: number;
}

export type ParameterType = "String" | "StringList" | "SecureString";

export interface RecordedRequest {
  /** "GetParametersByPath", from X-Amz-Target. */
  operation: string;
  /** Header names in lower case. */
  headers: Record<string, string>;
  body: Record<string, unknown>;
  /** The error type answered, if any. */
  error?: string;
}

export interface SsmDouble {
  /** "http://127.0.0.1:PORT": for SSM_LOCAL. */
  readonly url: string;
  readonly requests: readonly RecordedRequest[];
  put(name: string, value: string, type?: ParameterType): void;
  delete(name: string): void;
  /** Calls on a path or parameter under `prefix` are refused with AccessDeniedException. */
  deny(prefix: string): void;
  stop(): Promise<void>;
}

interface Stored {
  type: ParameterType;
  value: string;
  version: number;
  modified: number;
}

const ACCOUNT = "123456789012";
const JSON_11 = "application/x-amz-json-1.1";
const MAX_LEVELS = 15;

export function startSsmDouble(options: SsmDoubleOptions): SsmDouble {
  return new Double(options);
}

class AwsError {
  constructor(
    readonly type: string,
    readonly message: string,
  ) {}
}

class Double implements SsmDouble {
  readonly requests: RecordedRequest[] = [];
  private readonly parameters = new Map<string, Stored>();
  private readonly denied: string[] = [];
  /** NextTokens handed out, with where each listing goes on. */
  private readonly tokens = new Map<string, { path: string; recursive: boolean; offset: number }>();
  private readonly server: Server<undefined>;
  private region = "";

  constructor(private readonly options: SsmDoubleOptions) {
    this.server = Bun.serve({ hostname: "127.0.0.1", port: options.port ?? 0, fetch: (req) => this.handle(req) });
  }

  get url(): string {
    return `http://127.0.0.1:${this.server.port}`;
  }

  put(name: string, value: string, type: ParameterType = "String"): void {
    const old = this.parameters.get(name);
    this.parameters.set(name, { type, value, version: (old?.version ?? 0) + 1, modified: Date.now() / 1000 });
  }

  delete(name: string): void {
    this.parameters.delete(name);
  }

  deny(prefix: string): void {
    this.denied.push(prefix);
  }

  async stop(): Promise<void> {
    await this.server.stop(true);
  }

  private async handle(req: Request): Promise<Response> {
    const headers = Object.fromEntries([...req.headers].map(([k, v]) => [k.toLowerCase(), v]));
    const text = await req.text();
    const target = headers["x-amz-target"] ?? "";
    const record: RecordedRequest = { operation: target.replace(/^AmazonSSM\./, ""), headers, body: {} };
    this.requests.push(record);
    try {
      if (req.method !== "POST" || new URL(req.url).pathname !== "/") throw new AwsError("UnknownOperationException", "");
      if (headers["content-type"] !== JSON_11) throw new AwsError("SerializationException", `expected Content-Type ${JSON_11}`);
      this.verifySignature(req.method, headers, text);
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch {
        throw new AwsError("SerializationException", "the body is not JSON");
      }
      if (body === null || typeof body !== "object" || Array.isArray(body)) throw new AwsError("SerializationException", "the body is not a JSON object");
      record.body = body as Record<string, unknown>;
      switch (target) {
        case "AmazonSSM.GetParametersByPath":
          return answer(200, this.getParametersByPath(record.body));
        case "AmazonSSM.GetParameter":
          return answer(200, this.getParameter(record.body));
        default:
          throw new AwsError("UnknownOperationException", "");
      }
    } catch (err) {
      if (!(err instanceof AwsError)) throw err;
      record.error = err.type;
      // AWS JSON 1.x errors: HTTP 400 (500 for the service's own), the type in "__type".
      return answer(err.type === "InternalServerError" ? 500 : 400, { __type: err.type, message: err.message });
    }
  }

  /** Signature Version 4 as AWS checks it: the scope, then the signature over the canonical request. */
  private verifySignature(method: string, headers: Record<string, string>, body: string): void {
    const auth = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([a-z0-9;-]+), ?Signature=([0-9a-f]{64})$/.exec(headers.authorization ?? "");
    if (!auth) throw new AwsError("MissingAuthenticationTokenException", "Request is missing Authentication Token");
    const [, accessKey, date, region, service, signedHeaders, signature] = auth as unknown as [string, string, string, string, string, string, string];
    const secret = this.options.credentials[accessKey];
    if (secret === undefined) throw new AwsError("UnrecognizedClientException", "The security token included in the request is invalid.");
    const amzDate = headers["x-amz-date"] ?? "";
    if (service !== "ssm" || !amzDate.startsWith(date)) throw new AwsError("InvalidSignatureException", "Credential should be scoped to a valid region and to the ssm service.");
    const names = signedHeaders.split(";");
    if (!names.includes("host") || !names.includes("x-amz-date")) throw new AwsError("InvalidSignatureException", "host and x-amz-date must be signed.");
    const canonical = [method, "/", "", ...names.map((n) => `${n}:${(headers[n] ?? "").trim().replace(/\s+/g, " ")}`), "", signedHeaders, sha256(body)].join("\n");
    const scope = `${date}/${region}/${service}/aws4_request`;
    const toSign = ["AWS4-HMAC-SHA256", amzDate, scope, sha256(canonical)].join("\n");
    let key: Buffer = Buffer.from(`AWS4${secret}`);
    for (const part of [date, region, service, "aws4_request"]) key = createHmac("sha256", key).update(part).digest();
    if (createHmac("sha256", key).update(toSign).digest("hex") !== signature) {
      // AWS goes on with the canonical request over several lines; confd must log the first line only.
      throw new AwsError("InvalidSignatureException", `The request signature we calculated does not match the signature you provided.\n\nThe Canonical String for this request should have been\n'${canonical}'`);
    }
    this.region = region;
  }

  private getParametersByPath(body: Record<string, unknown>): object {
    const path = body.Path;
    if (typeof path !== "string" || path.length === 0) throw new AwsError("ValidationException", "1 validation error detected: Value null at 'path' failed to satisfy constraint: Member must not be null");
    if (!path.startsWith("/") || path.split("/").length - 1 > MAX_LEVELS) {
      throw new AwsError("ValidationException", `The parameter doesn't meet the parameter name requirements. The parameter name must begin with a forward slash "/" and can't have more than ${MAX_LEVELS} levels.`);
    }
    const max = body.MaxResults ?? 10;
    if (typeof max !== "number" || max < 1 || max > 10) throw new AwsError("ValidationException", `1 validation error detected: Value '${String(max)}' at 'maxResults' failed to satisfy constraint: Member must have value less than or equal to 10`);
    this.checkAccess(path, "GetParametersByPath");
    const recursive = body.Recursive === true;
    let offset = 0;
    let started = false;
    if (body.NextToken !== undefined) {
      const token = typeof body.NextToken === "string" ? this.tokens.get(body.NextToken) : undefined;
      if (!token || token.path !== path || token.recursive !== recursive) throw new AwsError("InvalidNextToken", "The specified token isn't valid.");
      offset = token.offset;
      started = true;
    }
    if (this.options.emptyPages && !started) return { Parameters: [], NextToken: this.token(path, recursive, 0) };
    const base = path.endsWith("/") ? path : `${path}/`;
    const names = [...this.parameters.keys()].filter((n) => n.startsWith(base) && (recursive || !n.slice(base.length).includes("/"))).sort();
    const size = Math.min(max, this.options.pageSize ?? 10);
    const page = names.slice(offset, offset + size);
    const next = offset + size < names.length ? this.token(path, recursive, offset + size) : undefined;
    return { Parameters: page.map((n) => this.describe(n, body.WithDecryption === true)), ...(next ? { NextToken: next } : {}) };
  }

  private getParameter(body: Record<string, unknown>): object {
    const name = body.Name;
    if (typeof name !== "string" || name.length === 0) throw new AwsError("ValidationException", "1 validation error detected: Value null at 'name' failed to satisfy constraint: Member must not be null");
    this.checkAccess(name, "GetParameter");
    if (!this.parameters.has(name)) throw new AwsError("ParameterNotFound", "");
    return { Parameter: this.describe(name, body.WithDecryption === true) };
  }

  private checkAccess(name: string, operation: string): void {
    if (!this.denied.some((d) => name === d || name.startsWith(d.endsWith("/") ? d : `${d}/`))) return;
    const resource = `arn:aws:ssm:${this.region}:${ACCOUNT}:parameter${name.startsWith("/") ? "" : "/"}${name}`;
    throw new AwsError(
      "AccessDeniedException",
      `User: arn:aws:iam::${ACCOUNT}:user/confd-test is not authorized to perform: ssm:${operation} on resource: ${resource} because no identity-based policy allows the ssm:${operation} action`,
    );
  }

  private describe(name: string, decrypt: boolean): object {
    const p = this.parameters.get(name)!;
    const value = p.type === "SecureString" && !decrypt ? `AQICAHg${Buffer.from(sha256(p.value)).toString("base64")}` : p.value;
    return {
      Name: name,
      Type: p.type,
      Value: value,
      Version: p.version,
      LastModifiedDate: p.modified,
      ARN: `arn:aws:ssm:${this.region}:${ACCOUNT}:parameter${name.startsWith("/") ? "" : "/"}${name}`,
      DataType: "text",
    };
  }

  private token(path: string, recursive: boolean, offset: number): string {
    const token = Buffer.from(crypto.getRandomValues(new Uint8Array(24))).toString("base64");
    this.tokens.set(token, { path, recursive, offset });
    return token;
  }
}

function answer(status: number, body: object): Response {
  return new Response(JSON.stringify(body), { status, headers: { "content-type": JSON_11, "x-amzn-requestid": crypto.randomUUID() } });
}

function sha256(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}
