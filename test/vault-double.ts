// A TEST DOUBLE of Vault's HTTP API: not Vault, and not checked against it (no Vault server can be
// installed here). Written from Vault's API documentation so that the vault backend can be tested: the
// KV secrets engine version 1 (read, LIST) and version 2 (data/ and metadata/ paths, LIST on metadata/,
// a deleted current version), sys/internal/ui/mounts/:path and sys/mounts, the token auth method's
// lookup-self and renew-self (TTL, max TTL, renewable), and the login endpoints of approle, app-id,
// userpass, kubernetes, cert and github, each checking the request body its documentation gives. Tokens
// expire on the real clock; a token can be revoked (every request with it then gets 403, as from
// Vault) or denied some paths by policy (403, while lookup-self still answers). Every request is
// recorded for assertions. docs/vault.md lists what it leaves out (policies beyond a deny list,
// namespaces, response wrapping, leases of dynamic secrets, writes over HTTP, HA redirects, ...).
import type { Server } from "bun";

/** The token a login issues, or createToken makes. Seconds. */
export interface TokenSpec {
  /** 0: the token does not expire (a root token). */
  ttl?: number;
  renewable?: boolean;
  /** A renewal extends the token to at most this long after its creation; 0: no limit. */
  maxTtl?: number;
  /** Path prefixes ("database/", "sys/mounts") the token's policy denies: 403, with lookup-self still fine. */
  deny?: string[];
}

export type AuthMethod = (
  | { type: "approle"; roleId: string; secretId: string }
  | { type: "app-id"; appId: string; userId: string }
  | { type: "userpass"; username: string; password: string }
  | { type: "kubernetes"; role: string; jwt: string }
  | { type: "cert" }
  | { type: "github"; token: string }
) & { issues?: TokenSpec };

export interface VaultDoubleOptions {
  /** PEM certificate and key: serve HTTPS. With `ca`, clients must present a certificate it signed (for cert logins). */
  tls?: { cert: string; key: string; ca?: string };
  /** Answer sys/internal/ui/mounts with 404, as a Vault before 0.10 or a proxy that filters sys/internal does. */
  noInternalMounts?: boolean;
}

export interface RecordedRequest {
  /** "LIST" for GET ?list=true as well. */
  method: string;
  /** The API path after /v1/, decoded, without leading slashes: "secret/data/app". */
  path: string;
  query: Record<string, string>;
  /** Header names in lower case. */
  headers: Record<string, string>;
  /** The JSON body, parsed; undefined when there was none. */
  body: unknown;
  /** Set once answered. */
  status?: number;
}

export interface VaultDouble {
  /** "http://127.0.0.1:port" (https with options.tls), a confd -node. */
  readonly url: string;
  readonly port: number;
  readonly requests: readonly RecordedRequest[];
  /** Enables a KV secrets engine at `path` ("secret"). */
  mount(path: string, version: 1 | 2): void;
  /**
   * Writes a secret ("database/host") into the mount its path is in, as `vault kv put` would (KV v2:
   * a new version). Fields as an object, or as the JSON text of one, sent back verbatim (numbers as written).
   */
  write(path: string, data: Record<string, unknown> | string): void;
  /** KV v1: removes the secret. KV v2: deletes its current version (its metadata stays, as `vault kv delete`). */
  remove(path: string): void;
  /** Enables an auth method at auth/<path> (default: the type's name). */
  enableAuth(method: AuthMethod, path?: string): void;
  /** A new token, as auth/token/create would make. */
  createToken(spec?: TokenSpec): string;
  revoke(token: string): void;
  /** The tokens issued so far, in order (logins and createToken). */
  readonly tokens: readonly string[];
  /** Answers the requests `handler` returns a response for, before the API does (failures, garbage). Returns the undo. */
  intercept(handler: (request: RecordedRequest) => Response | undefined): () => void;
  /** The first request, received already or to come, that `test` accepts. */
  waitForRequest(test: (r: RecordedRequest) => boolean): Promise<RecordedRequest>;
  /** Closes the listener and every connection. */
  stop(): Promise<void>;
  /** Listens again on the same port, with the same data. */
  restart(): void;
}

interface Token {
  spec: Required<TokenSpec>;
  created: number;
  /** performance.now() time; Infinity when it does not expire. */
  expires: number;
  revoked: boolean;
}

interface Version {
  /** The fields as JSON text. */
  json: string;
  deleted: boolean;
}

interface KvMount {
  version: 1 | 2;
  /** By path within the mount: each secret's versions (KV v1 keeps only the last). */
  secrets: Map<string, Version[]>;
}

/** KV v1's lease when a secret sets no "ttl" field: Vault's default max lease TTL, 768h. */
const DEFAULT_KV_LEASE = 2_764_800;
const V2_UPGRADE_WARNING =
  "Invalid path for a versioned K/V secrets engine. See the API docs for the appropriate API endpoints to use. If using the Vault CLI, use 'vault kv get' for this operation.";

export function startVaultDouble(options: VaultDoubleOptions = {}): VaultDouble {
  return new Double(options);
}

class Double implements VaultDouble {
  readonly requests: RecordedRequest[] = [];
  readonly tokens: string[] = [];
  private readonly mounts = new Map<string, KvMount>();
  private readonly auths = new Map<string, AuthMethod>();
  private readonly store = new Map<string, Token>();
  private readonly interceptors = new Set<(request: RecordedRequest) => Response | undefined>();
  private readonly requestWaiters: { test: (r: RecordedRequest) => boolean; resolve: (r: RecordedRequest) => void }[] = [];
  private server: Server<undefined>;
  readonly port: number;
  private serial = 0;

  constructor(private readonly options: VaultDoubleOptions) {
    this.server = this.listen(0);
    this.port = this.server.port!;
  }

  get url(): string {
    return `${this.options.tls ? "https" : "http"}://127.0.0.1:${this.port}`;
  }

  mount(path: string, version: 1 | 2): void {
    this.mounts.set(`${trimSlashes(path)}/`, { version, secrets: new Map() });
  }

  write(path: string, data: Record<string, unknown> | string): void {
    const { mount, rest } = this.locate(trimSlashes(path)) ?? fail(`no mount for ${path}`);
    if (mount.version === 2 && rest === "") fail(`KV v2 has no secret at the root of a mount (${path})`);
    const json = typeof data === "string" ? data : JSON.stringify(data);
    const versions = mount.version === 2 ? (mount.secrets.get(rest) ?? []) : [];
    versions.push({ json, deleted: false });
    mount.secrets.set(rest, versions);
  }

  remove(path: string): void {
    const { mount, rest } = this.locate(trimSlashes(path)) ?? fail(`no mount for ${path}`);
    if (mount.version === 1) mount.secrets.delete(rest);
    else {
      const current = mount.secrets.get(rest)?.at(-1);
      if (current) current.deleted = true;
    }
  }

  enableAuth(method: AuthMethod, path: string = method.type): void {
    this.auths.set(trimSlashes(path), method);
  }

  createToken(spec: TokenSpec = {}): string {
    const token = `hvs.double-${++this.serial}-${Math.random().toString(36).slice(2)}`;
    const full = { ttl: 0, renewable: false, maxTtl: 0, deny: [], ...spec };
    const now = performance.now();
    this.store.set(token, { spec: full, created: now, expires: full.ttl > 0 ? now + full.ttl * 1000 : Infinity, revoked: false });
    this.tokens.push(token);
    return token;
  }

  revoke(token: string): void {
    const t = this.store.get(token);
    if (t) t.revoked = true;
  }

  intercept(handler: (request: RecordedRequest) => Response | undefined): () => void {
    this.interceptors.add(handler);
    return () => this.interceptors.delete(handler);
  }

  waitForRequest(test: (r: RecordedRequest) => boolean): Promise<RecordedRequest> {
    const seen = this.requests.find(test);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve) => this.requestWaiters.push({ test, resolve }));
  }

  async stop(): Promise<void> {
    await this.server.stop(true);
  }

  restart(): void {
    this.server = this.listen(this.port);
  }

  private listen(port: number): Server<undefined> {
    const { tls } = this.options;
    return Bun.serve({
      hostname: "127.0.0.1",
      port,
      tls: tls ? { cert: tls.cert, key: tls.key, ...(tls.ca ? { ca: tls.ca, requestCert: true, rejectUnauthorized: true } : {}) } : undefined,
      fetch: (req) => this.handle(req),
    });
  }

  private async handle(req: Request): Promise<Response> {
    const url = new URL(req.url);
    const text = await req.text();
    let body: unknown;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      body = text;
    }
    const query = Object.fromEntries(url.searchParams);
    const list = req.method === "LIST" || (req.method === "GET" && query.list === "true");
    const record: RecordedRequest = {
      method: list ? "LIST" : req.method,
      // Vault cleans the path: confd's client asks for /v1//database/host.
      path: url.pathname.startsWith("/v1/") ? safeDecode(url.pathname.slice(4)).replace(/^\/+/, "") : safeDecode(url.pathname),
      query,
      headers: Object.fromEntries([...req.headers].map(([k, v]) => [k.toLowerCase(), v])),
      body,
    };
    this.requests.push(record);
    for (let i = this.requestWaiters.length - 1; i >= 0; i--) {
      const waiter = this.requestWaiters[i]!;
      if (waiter.test(record)) {
        this.requestWaiters.splice(i, 1);
        waiter.resolve(record);
      }
    }
    let response: Response | undefined;
    for (const handler of this.interceptors) response ??= handler(record);
    response ??= url.pathname.startsWith("/v1/") ? this.answer(record) : errors(404, []);
    record.status = response.status;
    return response;
  }

  private answer(r: RecordedRequest): Response {
    const login = /^auth\/(.+)\/login(?:\/([^/]+))?$/.exec(r.path);
    if (login && r.method === "POST" && !r.path.startsWith("auth/token/")) return this.login(login[1]!, login[2], r.body);
    const token = this.store.get(r.headers["x-vault-token"] ?? "");
    if (!token || token.revoked || performance.now() >= token.expires) return errors(403, ["permission denied"]);
    if (r.path === "auth/token/lookup-self" && r.method === "GET") return this.lookupSelf(r.headers["x-vault-token"]!, token);
    if (r.path === "auth/token/renew-self" && r.method === "POST") return this.renewSelf(r.headers["x-vault-token"]!, token);
    if (token.spec.deny.some((prefix) => r.path.startsWith(prefix))) return errors(403, ["1 error occurred:\n\t* permission denied\n\n"]);
    if (r.path.startsWith("sys/internal/ui/mounts/") && r.method === "GET") return this.preflight(r.path.slice("sys/internal/ui/mounts/".length));
    if (r.path === "sys/mounts" && r.method === "GET") return this.mountTable();
    const located = this.locate(r.path.replace(/\/+$/, ""));
    if (!located) return errors(404, [`no handler for route "${r.path}". route entry not found.`]);
    if (r.method !== "GET" && r.method !== "LIST") return errors(405, ["unsupported operation"]);
    const { mount, rest } = located;
    if (mount.version === 1) return r.method === "LIST" ? this.list(mount, rest) : this.readV1(mount, rest);
    const v2 = /^(data|metadata)(?:\/(.*))?$/.exec(rest);
    if (!v2) return json(404, `{"errors":[],"warnings":[${JSON.stringify(V2_UPGRADE_WARNING)}]}`);
    const [, kind, path = ""] = v2;
    if (kind === "metadata" && r.method === "LIST") return this.list(mount, path);
    if (kind === "data" && r.method === "GET") return this.readV2(mount, path.replace(/\/+$/, ""));
    if (kind === "metadata" && r.method === "GET") return this.readMetadata(mount, path.replace(/\/+$/, ""));
    return errors(405, ["unsupported operation"]);
  }

  private login(mountPath: string, suffix: string | undefined, body: unknown): Response {
    const method = this.auths.get(mountPath);
    if (!method) return errors(400, [`no handler for route "auth/${mountPath}/login"`]);
    const b = (body ?? {}) as Record<string, unknown>;
    const missing = (field: string) => (typeof b[field] === "string" && b[field] !== "" ? undefined : errors(400, [`missing ${field}`]));
    switch (method.type) {
      case "approle": {
        const bad = missing("role_id") ?? missing("secret_id");
        if (bad) return bad;
        if (b.role_id !== method.roleId || b.secret_id !== method.secretId) return errors(400, ["invalid role or secret ID"]);
        break;
      }
      case "app-id": {
        const bad = missing("app_id") ?? missing("user_id");
        if (bad) return bad;
        if (b.app_id !== method.appId || b.user_id !== method.userId) return errors(400, ["invalid user ID or app ID"]);
        break;
      }
      case "userpass": {
        // POST auth/userpass/login/:username with {"password": ...}.
        if (!suffix) return errors(400, ["missing username"]);
        const bad = missing("password");
        if (bad) return bad;
        if (suffix !== method.username || b.password !== method.password) return errors(400, ["invalid username or password"]);
        break;
      }
      case "kubernetes": {
        const bad = missing("role") ?? missing("jwt");
        if (bad) return bad;
        if (b.role !== method.role) return errors(400, [`invalid role name "${String(b.role)}"`]);
        if (b.jwt !== method.jwt) return errors(403, ["permission denied"]);
        break;
      }
      case "cert":
        // The certificate was checked in the TLS handshake (options.tls.ca); without one there is none.
        if (!this.options.tls?.ca) return errors(400, ["client certificate must be supplied"]);
        break;
      case "github": {
        const bad = missing("token");
        if (bad) return bad;
        if (b.token !== method.token) return errors(400, ["failed to verify the token with GitHub"]);
        break;
      }
    }
    if (suffix && method.type !== "userpass") return errors(404, ["unsupported path"]);
    const spec = { ttl: 0, renewable: true, maxTtl: 0, deny: [], ...method.issues };
    const token = this.createToken(spec);
    return json(
      200,
      JSON.stringify({
        request_id: "double",
        lease_id: "",
        renewable: false,
        lease_duration: 0,
        data: null,
        wrap_info: null,
        warnings: null,
        auth: { client_token: token, accessor: `accessor-${this.serial}`, policies: ["default"], metadata: {}, lease_duration: spec.ttl, renewable: spec.renewable },
      }),
    );
  }

  private lookupSelf(id: string, token: Token): Response {
    const left = token.expires === Infinity ? 0 : Math.max(0, Math.floor((token.expires - performance.now()) / 1000));
    return json(200, JSON.stringify({ data: { accessor: "accessor", creation_ttl: token.spec.ttl, id, policies: ["default"], renewable: token.spec.renewable, ttl: left } }));
  }

  private renewSelf(id: string, token: Token): Response {
    if (!token.spec.renewable || token.expires === Infinity) return errors(400, ["lease is not renewable"]);
    const now = performance.now();
    let expires = now + token.spec.ttl * 1000;
    const warnings: string[] = [];
    if (token.spec.maxTtl > 0 && expires > token.created + token.spec.maxTtl * 1000) {
      expires = token.created + token.spec.maxTtl * 1000;
      warnings.push("TTL of the token exceeded the effective max_ttl; TTL value is capped accordingly");
    }
    token.expires = expires;
    // Whole seconds, as Vault gives them: the TTL itself, or what is left before the max TTL.
    const lease = warnings.length ? Math.max(0, Math.floor((expires - now) / 1000)) : token.spec.ttl;
    return json(200, JSON.stringify({ auth: { client_token: id, policies: ["default"], lease_duration: lease, renewable: true }, warnings: warnings.length ? warnings : null }));
  }

  private preflight(path: string): Response {
    if (this.options.noInternalMounts) return errors(404, []);
    const located = this.locate(trimSlashes(path));
    // Vault answers 403 where no mount matches, so that the endpoint cannot be used to find mounts.
    if (!located) return errors(403, [`preflight capability check returned 403, please ensure client's policies grant access to path "${path}/"`]);
    return json(200, JSON.stringify({ data: mountEntry(located.path, located.mount) }));
  }

  private mountTable(): Response {
    const table: Record<string, unknown> = { "sys/": { type: "system", options: null }, "cubbyhole/": { type: "cubbyhole", options: null } };
    for (const [path, mount] of this.mounts) table[path] = mountEntry(path, mount);
    return json(200, JSON.stringify({ ...table, data: table }));
  }

  private list(mount: KvMount, folder: string): Response {
    const prefix = folder === "" || folder.endsWith("/") ? folder : `${folder}/`;
    const keys = new Set<string>();
    for (const path of mount.secrets.keys()) {
      if (!path.startsWith(prefix) || path === prefix) continue;
      const rest = path.slice(prefix.length);
      const slash = rest.indexOf("/");
      keys.add(slash < 0 ? rest : rest.slice(0, slash + 1));
    }
    if (keys.size === 0) return errors(404, []);
    return json(200, JSON.stringify({ request_id: "double", lease_id: "", renewable: false, lease_duration: 0, data: { keys: [...keys].sort() }, wrap_info: null, warnings: null, auth: null }));
  }

  private readV1(mount: KvMount, path: string): Response {
    const secret = mount.secrets.get(path)?.at(-1);
    if (!secret) return errors(404, []);
    // KV v1 turns a "ttl" field into the lease it answers with (a hint of how often to read it again).
    const ttl = (JSON.parse(secret.json) as { ttl?: unknown }).ttl;
    const lease = typeof ttl === "number" ? ttl : typeof ttl === "string" ? parseSeconds(ttl) : DEFAULT_KV_LEASE;
    return json(200, `{"request_id":"double","lease_id":"","renewable":false,"lease_duration":${lease},"data":${secret.json},"wrap_info":null,"warnings":null,"auth":null}`);
  }

  private readV2(mount: KvMount, path: string): Response {
    const versions = mount.secrets.get(path);
    if (!versions) return errors(404, []);
    const current = versions.at(-1)!;
    const metadata = `{"created_time":"2018-03-22T02:24:06.945319214Z","custom_metadata":null,"deletion_time":"${current.deleted ? "2018-03-22T02:36:43.986212308Z" : ""}","destroyed":false,"version":${versions.length}}`;
    if (current.deleted) return json(404, `{"data":{"data":null,"metadata":${metadata}}}`);
    return json(200, `{"request_id":"double","lease_id":"","renewable":false,"lease_duration":0,"data":{"data":${current.json},"metadata":${metadata}},"wrap_info":null,"warnings":null,"auth":null}`);
  }

  private readMetadata(mount: KvMount, path: string): Response {
    const versions = mount.secrets.get(path);
    if (!versions) return errors(404, []);
    const list = versions.map((v, i) => `"${i + 1}":{"created_time":"2018-03-22T02:24:06.945319214Z","deletion_time":"${v.deleted ? "2018-03-22T02:36:43.986212308Z" : ""}","destroyed":false}`);
    return json(
      200,
      `{"data":{"cas_required":false,"created_time":"2018-03-22T02:24:06.945319214Z","current_version":${versions.length},"custom_metadata":null,"delete_version_after":"0s","max_versions":0,"oldest_version":0,"updated_time":"2018-03-22T02:36:43.986212308Z","versions":{${list.join(",")}}}}`,
    );
  }

  /** The mount a path is in (the longest), and the path within it. */
  private locate(path: string): { path: string; mount: KvMount; rest: string } | undefined {
    let best: string | undefined;
    for (const m of this.mounts.keys()) if (`${path}/`.startsWith(m) && (!best || m.length > best.length)) best = m;
    if (best === undefined) return undefined;
    return { path: best, mount: this.mounts.get(best)!, rest: `${path}/`.slice(best.length).replace(/\/$/, "") };
  }
}

function mountEntry(path: string, mount: KvMount): Record<string, unknown> {
  return {
    path,
    type: "kv",
    description: "key/value secret storage",
    // A KV v1 mount enabled without options has none.
    options: mount.version === 2 ? { version: "2" } : null,
    config: { default_lease_ttl: 0, max_lease_ttl: 0, force_no_cache: false },
  };
}

function json(status: number, text: string): Response {
  return new Response(text, { status, headers: { "content-type": "application/json" } });
}

function errors(status: number, list: string[]): Response {
  return json(status, JSON.stringify({ errors: list }));
}

function trimSlashes(path: string): string {
  return path.replace(/^\/+|\/+$/g, "");
}

/** "30s", "5m", "1h" (Vault's ttl field also takes a number of seconds). */
function parseSeconds(text: string): number {
  const m = /^(\d+)(s|m|h)?$/.exec(text);
  if (!m) return DEFAULT_KV_LEASE;
  return Number(m[1]) * { s: 1, m: 60, h: 3600 }[m[2] ?? "s"]!;
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

function fail(message: string): never {
  throw new Error(message);
}
