// The vault backend against test/vault-double.ts, a double of Vault's HTTP API written from Vault's
// documentation: everything here is verified against the double only, never a real Vault (docs/vault.md).
// In-process tests call connect() and read the double's recorded requests; end-to-end tests run confd
// and look at files, exit codes and log lines. No fixed sleeps: tests wait for a request the double
// receives, a watch that resolves, or a line confd logs. Token TTLs are real seconds, since renewal
// runs on confd's clock.
import { afterAll, afterEach, describe, expect, test } from "bun:test";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { connect } from "../src/backends/vault.ts";
import { ConfdError } from "../src/errors.ts";
import { configureLog } from "../src/log.ts";
import { defaults, type Config } from "../src/options.ts";
import type { StoreClient } from "../src/store.ts";
import { createCertificates } from "./etcd-server.ts";
import { baseEnv, CONFD_FIXTURE, freePort, Lines, runConfd, spawnConfd, tempDir, writeTree } from "./helpers.ts";
import { startVaultDouble, type RecordedRequest, type VaultDouble, type VaultDoubleOptions } from "./vault-double.ts";

const tmp = tempDir();
afterAll(tmp.cleanup);

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  logLines.length = 0;
});

/** What the in-process client logs (connect() and its session log as confd would). */
const logLines: string[] = [];
configureLog({ level: "debug", sink: (line) => logLines.push(line) });

function double(options?: VaultDoubleOptions): VaultDouble {
  const d = startVaultDouble(options);
  cleanups.push(() => d.stop());
  return d;
}

async function client(d: VaultDouble, extra: Partial<Config>, options: Parameters<typeof connect>[1] = {}): Promise<StoreClient> {
  const c = await connect({ ...defaults(), backend: "vault", nodes: [d.url], ...extra }, { env: {}, ...options });
  cleanups.push(() => c.close());
  return c;
}

/** A client logged in with a fresh root-like token (no TTL). */
function tokenClient(d: VaultDouble, extra: Partial<Config> = {}): Promise<StoreClient> {
  return client(d, { authType: "token", authToken: d.createToken(), ...extra });
}

function failure(promise: Promise<unknown>): Promise<ConfdError> {
  return promise.then(
    () => {
      throw new Error("expected a failure");
    },
    (err: unknown) => {
      expect(err).toBeInstanceOf(ConfdError);
      return err as ConfdError;
    },
  );
}

/** The next request from now on that `test` accepts. */
function nextRequest(d: VaultDouble, test: (r: RecordedRequest) => boolean): Promise<RecordedRequest> {
  const from = d.requests.length;
  return d.waitForRequest((r) => d.requests.indexOf(r) >= from && test(r));
}

/** A throwaway CA with a server certificate for 127.0.0.1 and a client certificate (test/etcd-server.ts). */
function certificates(name: string): ReturnType<typeof createCertificates> {
  const dir = join(tmp.path, `certs-${name}`);
  mkdirSync(dir);
  return createCertificates(dir);
}

/** A promise's outcome, readable without awaiting it, to check that a watch is still pending. */
function track<T>(promise: Promise<T>): { promise: Promise<T>; settled: boolean } {
  const t = { promise, settled: false };
  promise.then(
    () => (t.settled = true),
    () => (t.settled = true),
  );
  return t;
}

const logins = (d: VaultDouble) => d.requests.filter((r) => /^auth\/.+\/login/.test(r.path));
const never = new AbortController().signal;

describe("key mapping (confd's, on KV v1 and v2)", () => {
  for (const version of [1, 2] as const) {
    test(`KV v${version}: a lone "value" field, a secret of several fields, folders listed recursively, the / boundary`, async () => {
      const d = double();
      d.mount("app", version);
      d.mount("application", version);
      d.write("app/db/host", { value: "db1" });
      d.write("app/web", { port: "80", name: "web", tls: { cert: "c", key: "k" } });
      d.write("app/deep/er/x", { value: "x" });
      d.write("application/other", { value: "not under /app" });
      const c = await tokenClient(d);
      expect(Object.fromEntries(await c.getValues(["/app"]))).toEqual({
        "/app/db/host": "db1",
        "/app/deep/er/x": "x",
        "/app/web": '{"name":"web","port":"80","tls":{"cert":"c","key":"k"}}',
        "/app/web/name": "web",
        "/app/web/port": "80",
        "/app/web/tls/cert": "c",
        "/app/web/tls/key": "k",
      });
      expect(Object.fromEntries(await c.getValues(["/app/db/host"]))).toEqual({ "/app/db/host": "db1" });
      expect(await c.getValues(["/app/missing"])).toEqual(new Map());
      // Templates name the secret, never data/ or metadata/: the backend adds them for v2.
      const paths = d.requests.map((r) => `${r.method} ${r.path}`);
      if (version === 2) {
        expect(paths).toContain("GET app/data/db/host");
        // The mount's root holds no secret in v2: listed, not read.
        expect(paths).toContain("LIST app/metadata/");
        expect(paths).not.toContain("GET app/data/");
        expect(paths).toContain("LIST app/metadata/deep/er");
      } else {
        expect(paths).toContain("GET app/db/host");
        expect(paths).toContain("LIST app/deep/er");
      }
    });
  }

  test("a KV v2 secret whose current version is deleted is gone; a new version brings it back", async () => {
    const d = double();
    d.mount("secret", 2);
    d.write("secret/app", { value: "v1" });
    const c = await tokenClient(d);
    expect(await c.getValues(["/secret/app"])).toEqual(new Map([["/secret/app", "v1"]]));
    d.remove("secret/app");
    expect(await c.getValues(["/secret/app"])).toEqual(new Map());
    d.write("secret/app", { value: "v3" });
    expect(await c.getValues(["/secret/app"])).toEqual(new Map([["/secret/app", "v3"]]));
  });

  test("JSON as confd writes it: sorted keys, numbers as written, Go's escapes; other types left out with one warning each", async () => {
    const d = double();
    d.mount("kv", 1);
    d.write("kv/s", '{"z":"<a&b>\\u2028","n":1.50,"big":12345678901234567890,"b":true,"nil":null,"l":[1,"x"],"o":{"k":"v"},"value":7}');
    d.write("kv/num", '{"value":5}');
    const c = await tokenClient(d);
    for (let i = 0; i < 2; i++) {
      expect(Object.fromEntries(await c.getValues(["/kv"]))).toEqual({
        "/kv/num": '{"value":5}',
        "/kv/s": '{"b":true,"big":12345678901234567890,"l":[1,"x"],"n":1.50,"nil":null,"o":{"k":"v"},"value":7,"z":"\\u003ca\\u0026b\\u003e\\u2028"}',
        "/kv/s/o/k": "v",
        "/kv/s/z": "<a&b>\u2028",
      });
    }
    const warnings = logLines.filter((l) => l.includes("WARNING"));
    expect(warnings.filter((l) => l.includes("/kv/s/n is not supported (json.Number)"))).toHaveLength(1);
    expect(warnings.some((l) => l.includes("/kv/s/b is not supported (bool)"))).toBe(true);
    expect(warnings.some((l) => l.includes("/kv/s/nil is not supported (<nil>)"))).toBe(true);
    expect(warnings.some((l) => l.includes("/kv/s/l is not supported ([]interface {})"))).toBe(true);
    // Values never reach the log.
    expect(logLines.join("\n")).not.toContain("<a&b>");
  });

  test("a KV v2 API path in a key (confd users' way to read v2) is read as confd reads it, with a warning", async () => {
    const d = double();
    d.mount("secret", 2);
    d.write("secret/app", { password: "pw" });
    const c = await tokenClient(d);
    const values = await c.getValues(["/secret/data/app"]);
    expect(values.get("/secret/data/app/data/password")).toBe("pw");
    expect(values.get("/secret/data/app/metadata/deletion_time")).toBe("");
    expect(JSON.parse(values.get("/secret/data/app")!)).toMatchObject({ data: { password: "pw" }, metadata: { version: 1 } });
    expect(logLines.some((l) => l.includes("WARNING vault: /secret/data/app is a KV v2 API path, read as confd reads it"))).toBe(true);
  });

  test("a 5 MB value and non-ASCII text come through unchanged", async () => {
    const d = double();
    d.mount("kv", 2);
    const big = "é✓".repeat(1_000_000);
    d.write("kv/big", { value: big });
    const c = await tokenClient(d);
    expect((await c.getValues(["/kv/big"])).get("/kv/big")).toBe(big);
  });

  test("the mount table (sys/mounts) stands in when sys/internal/ui/mounts is missing; without either, paths are read as KV v1", async () => {
    const d = double({ noInternalMounts: true });
    d.mount("secret", 2);
    d.write("secret/app", { value: "v2" });
    const c = await tokenClient(d);
    expect(await c.getValues(["/secret/app"])).toEqual(new Map([["/secret/app", "v2"]]));
    expect(d.requests.filter((r) => r.path === "sys/mounts")).toHaveLength(1);
    // Read once, whatever else is read later.
    await c.getValues(["/secret"]);
    expect(d.requests.filter((r) => r.path === "sys/mounts")).toHaveLength(1);

    const denied = await tokenClient(d, { authToken: d.createToken({ deny: ["sys/mounts"] }) });
    expect(await denied.getValues(["/secret/app"])).toEqual(new Map());
    expect(d.requests.at(-1)!.path).toBe("secret/app");
  });

  test("a LIST the policy refuses is not an error (confd reads the key alone); a read it refuses names the key", async () => {
    const d = double();
    d.mount("kv", 1);
    d.write("kv/a", { value: "1" });
    d.write("kv/b/c", { value: "2" });
    const c = await tokenClient(d, { authToken: d.createToken({ deny: ["kv/b"] }) });
    expect(await c.getValues(["/kv/a"])).toEqual(new Map([["/kv/a", "1"]]));
    const err = await failure(c.getValues(["/kv"]));
    expect(err.message).toMatch(/^vault denied reading \/kv\/b \(403 1 error occurred: \* permission denied\)$/);
    expect(err.context.key).toBe("/kv/b");
    // One token check for the read, not one per refused path; no new login for a policy's refusal.
    expect(d.requests.filter((r) => r.path === "auth/token/lookup-self")).toHaveLength(2);
  });
});

describe("logins (each auth type's documented call)", () => {
  test("app-role: role_id and secret_id to auth/approle/login (or -path), and the token it gives is used", async () => {
    const d = double();
    d.mount("kv", 1);
    d.write("kv/x", { value: "1" });
    d.enableAuth({ type: "approle", roleId: "role-1", secretId: "secret-do-not-print" });
    d.enableAuth({ type: "approle", roleId: "role-2", secretId: "s2" }, "team/approle");
    const c = await client(d, { authType: "app-role", roleId: "role-1", secretId: "secret-do-not-print" });
    expect(logins(d).map((r) => [r.method, r.path, r.body])).toEqual([["POST", "auth/approle/login", { role_id: "role-1", secret_id: "secret-do-not-print" }]]);
    expect(await c.getValues(["/kv/x"])).toEqual(new Map([["/kv/x", "1"]]));
    expect(d.requests.at(-1)!.headers["x-vault-token"]).toBe(d.tokens.at(-1)!);
    await client(d, { authType: "app-role", roleId: "role-2", secretId: "s2", path: "/team/approle/" });
    expect(logins(d).at(-1)!.path).toBe("auth/team/approle/login");
  });

  test("app-id: app_id and user_id to auth/app-id/login", async () => {
    const d = double();
    d.enableAuth({ type: "app-id", appId: "app", userId: "user" });
    await client(d, { authType: "app-id", appId: "app", userId: "user" });
    expect(logins(d).map((r) => [r.path, r.body])).toEqual([["auth/app-id/login", { app_id: "app", user_id: "user" }]]);
  });

  test("userpass: the password to auth/userpass/login/<username>", async () => {
    const d = double();
    d.enableAuth({ type: "userpass", username: "confd", password: "pw" });
    await client(d, { authType: "userpass", username: "confd", password: "pw" });
    expect(logins(d).map((r) => [r.path, r.body])).toEqual([["auth/userpass/login/confd", { password: "pw" }]]);
  });

  test("kubernetes: the service account token and -role-id as role to auth/kubernetes/login", async () => {
    const d = double();
    const jwt = "eyJhbGciOi.service-account.jwt";
    const file = join(tmp.path, "sa-token");
    writeFileSync(file, jwt);
    d.enableAuth({ type: "kubernetes", role: "web", jwt });
    await client(d, { authType: "kubernetes", roleId: "web" }, { kubernetesTokenFile: file });
    expect(logins(d).map((r) => [r.path, r.body])).toEqual([["auth/kubernetes/login", { jwt, role: "web" }]]);
    const err = await failure(client(d, { authType: "kubernetes", roleId: "web" }, { kubernetesTokenFile: join(tmp.path, "none") }));
    expect(err.message).toBe("cannot read the Kubernetes service account token: ENOENT");
  });

  test("github: -auth-token as the GitHub token to auth/github/login", async () => {
    const d = double();
    d.enableAuth({ type: "github", token: "ghp_123" });
    await client(d, { authType: "github", authToken: "ghp_123" });
    expect(logins(d).map((r) => [r.path, r.body])).toEqual([["auth/github/login", { token: "ghp_123" }]]);
  });

  test("cert: an empty body to auth/cert/login over TLS with the client certificate", async () => {
    const certs = certificates("login");
    const read = (f: string) => readFileSync(f, "utf8");
    const d = double({ tls: { cert: read(certs.server.certFile), key: read(certs.server.keyFile), ca: read(certs.server.caFile) } });
    d.mount("kv", 1);
    d.write("kv/x", { value: "over mTLS" });
    d.enableAuth({ type: "cert" });
    const c = await client(d, { authType: "cert", clientCaKeys: certs.client.caFile, clientCert: certs.client.certFile, clientKey: certs.client.keyFile });
    expect(logins(d).map((r) => [r.path, r.body])).toEqual([["auth/cert/login", {}]]);
    expect(await c.getValues(["/kv/x"])).toEqual(new Map([["/kv/x", "over mTLS"]]));
  });

  test("token: checked with lookup-self; VAULT_TOKEN when -auth-token is empty, -auth-token wins over it", async () => {
    const d = double();
    const token = d.createToken();
    await client(d, { authType: "token" }, { env: { VAULT_TOKEN: token } });
    expect(d.requests.map((r) => [r.path, r.headers["x-vault-token"]])).toEqual([["auth/token/lookup-self", token]]);
    await client(d, { authType: "token", authToken: token }, { env: { VAULT_TOKEN: "stale" } });
    expect(d.requests.at(-1)!.headers["x-vault-token"]).toBe(token);
  });

  test("each missing credential is named by its flag", async () => {
    const d = double();
    const cases: [Partial<Config>, string][] = [
      [{ authType: "" }, "-auth-type"],
      [{ authType: "ldap" }, "-auth-type"],
      [{ authType: "token" }, "-auth-token"],
      [{ authType: "app-role", roleId: "r" }, "-secret-id"],
      [{ authType: "app-role", secretId: "s" }, "-role-id"],
      [{ authType: "app-id", appId: "a" }, "-user-id"],
      [{ authType: "userpass", username: "u" }, "-password"],
      [{ authType: "userpass", password: "p" }, "-username"],
      [{ authType: "kubernetes" }, "-role-id"],
      [{ authType: "github" }, "-auth-token"],
    ];
    for (const [extra, flag] of cases) expect((await failure(client(d, extra))).context.flag).toBe(flag);
    expect(d.requests).toHaveLength(0);
  });

  test("refused credentials: one message naming the flags, Vault's reason, no secret", async () => {
    const d = double();
    d.enableAuth({ type: "approle", roleId: "role", secretId: "right" });
    d.enableAuth({ type: "userpass", username: "u", password: "right" });
    const approle = await failure(client(d, { authType: "app-role", roleId: "role", secretId: "wrong-secret-id" }));
    expect(approle.describe()).toBe("flag -role-id/-secret-id: vault login with -auth-type app-role failed (auth/approle/login: 400 invalid role or secret ID)");
    const userpass = await failure(client(d, { authType: "userpass", username: "u", password: "wrong-password" }));
    expect(userpass.describe()).not.toContain("wrong-password");
    expect(userpass.context.flag).toBe("-username/-password");
    const token = await failure(client(d, { authType: "token", authToken: "s.not-a-token" }));
    expect(token.describe()).toBe("flag -auth-token: vault login with -auth-type token failed (auth/token/lookup-self: 403 permission denied)");
  });
});

describe("the token's life", () => {
  test("a token with a TTL is renewed before it expires, again and again", async () => {
    const d = double();
    d.mount("kv", 1);
    d.write("kv/x", { value: "1" });
    d.enableAuth({ type: "approle", roleId: "r", secretId: "s", issues: { ttl: 3, renewable: true } });
    const c = await client(d, { authType: "app-role", roleId: "r", secretId: "s" });
    const token = d.tokens.at(-1)!;
    for (let i = 0; i < 2; i++) {
      const renewal = await nextRequest(d, (r) => r.path === "auth/token/renew-self");
      expect(renewal.headers["x-vault-token"]).toBe(token);
      // Answered 200: the token was still valid when renewed.
      await d.waitForRequest((r) => r === renewal && r.status !== undefined);
      expect(renewal.status).toBe(200);
    }
    expect(await c.getValues(["/kv/x"])).toEqual(new Map([["/kv/x", "1"]]));
    expect(logins(d)).toHaveLength(1);
  });

  test("when renewal fails, confd logs in again and uses the new token", async () => {
    const d = double();
    d.mount("kv", 1);
    d.write("kv/x", { value: "1" });
    d.enableAuth({ type: "approle", roleId: "r", secretId: "s", issues: { ttl: 3, renewable: true } });
    d.intercept((r) => (r.path === "auth/token/renew-self" ? Response.json({ errors: ["permission denied"] }, { status: 403 }) : undefined));
    const c = await client(d, { authType: "app-role", roleId: "r", secretId: "s" });
    await nextRequest(d, (r) => r.path === "auth/approle/login");
    expect(logLines.some((l) => l.includes("renewing the vault token failed (403 permission denied); logging in again with -auth-type app-role"))).toBe(true);
    expect(await c.getValues(["/kv/x"])).toEqual(new Map([["/kv/x", "1"]]));
    expect(d.requests.at(-1)!.headers["x-vault-token"]).toBe(d.tokens.at(-1)!);
  });

  test("a token capped at its max TTL is replaced by a new login before it ends", async () => {
    const d = double();
    d.enableAuth({ type: "userpass", username: "u", password: "p", issues: { ttl: 3, renewable: true, maxTtl: 4 } });
    await client(d, { authType: "userpass", username: "u", password: "p" });
    await nextRequest(d, (r) => r.path === "auth/token/renew-self");
    const relogin = await nextRequest(d, (r) => r.path === "auth/userpass/login/u");
    // The first token was still good: the new login came before it ended, not after a 403.
    expect(d.requests.slice(0, d.requests.indexOf(relogin)).every((r) => r.status !== 403)).toBe(true);
  });

  test("-auth-type token: a token that cannot be renewed is used while it lasts, with a warning", async () => {
    const d = double();
    await client(d, { authType: "token", authToken: d.createToken({ ttl: 3600, renewable: false }) });
    expect(logLines.some((l) => /WARNING the vault token expires in 3\d\d\ds and is not renewable; with -auth-type token confd cannot log in again/.test(l))).toBe(true);
  });

  test("a revoked token: one error line, a new login, and the read goes through", async () => {
    const d = double();
    d.mount("kv", 2);
    d.write("kv/x", { value: "1" });
    d.enableAuth({ type: "approle", roleId: "r", secretId: "s" });
    const c = await client(d, { authType: "app-role", roleId: "r", secretId: "s" });
    d.revoke(d.tokens.at(-1)!);
    d.write("kv/y", { value: "2" });
    expect(await c.getValues(["/kv"])).toEqual(new Map([["/kv/x", "1"], ["/kv/y", "2"]]));
    expect(logins(d)).toHaveLength(2);
    expect(logLines.filter((l) => l.includes("ERROR"))).toEqual([expect.stringContaining("vault refused the token (403): it has expired or was revoked; logging in again with -auth-type app-role")]);
  });

  test("while the new login fails, reads fail naming its flags, and the error line is not repeated", async () => {
    const d = double();
    d.mount("kv", 1);
    d.write("kv/x", { value: "1" });
    d.enableAuth({ type: "approle", roleId: "r", secretId: "s" });
    const c = await client(d, { authType: "app-role", roleId: "r", secretId: "s" });
    d.revoke(d.tokens.at(-1)!);
    // The secret ID was rotated: confd's no longer logs in.
    d.enableAuth({ type: "approle", roleId: "r", secretId: "rotated" });
    for (let i = 0; i < 2; i++) expect((await failure(c.getValues(["/kv/x"]))).context.flag).toBe("-role-id/-secret-id");
    expect(logLines.filter((l) => l.includes("ERROR vault refused the token"))).toHaveLength(1);
    d.enableAuth({ type: "approle", roleId: "r", secretId: "s" });
    expect(await c.getValues(["/kv/x"])).toEqual(new Map([["/kv/x", "1"]]));
  });

  test("-auth-type token, revoked: an error naming the flag, no login to fall back on", async () => {
    const d = double();
    d.mount("kv", 1);
    const token = d.createToken();
    const c = await client(d, { authType: "token", authToken: token });
    d.revoke(token);
    const err = await failure(c.getValues(["/kv/x"]));
    expect(err.describe()).toBe("flag -auth-token: vault refused the token: it has expired or was revoked");
  });

  test("close() stops renewals", async () => {
    const d = double();
    d.enableAuth({ type: "approle", roleId: "r", secretId: "s", issues: { ttl: 2, renewable: true } });
    const c = await connect({ ...defaults(), backend: "vault", nodes: [d.url], authType: "app-role", roleId: "r", secretId: "s" }, { env: {} });
    await c.close();
    // A token of this login that is renewed would be renewed in 1.33 s; a new one, issued later, marks the time.
    const marker = double();
    marker.enableAuth({ type: "approle", roleId: "r", secretId: "s", issues: { ttl: 3, renewable: true } });
    await client(marker, { authType: "app-role", roleId: "r", secretId: "s" });
    await nextRequest(marker, (r) => r.path === "auth/token/renew-self");
    expect(d.requests.some((r) => r.path === "auth/token/renew-self")).toBe(false);
    await expect(c.getValues(["/kv"])).rejects.toThrow("closed");
  });
});

describe("watchPrefix (polling every -interval, sooner for a lease)", () => {
  test("a change under the prefix resolves a watch at the next poll; one outside it does not", async () => {
    const d = double();
    d.mount("kv", 2);
    d.write("kv/app/x", { value: "1" });
    d.write("kv/other", { value: "1" });
    const c = await tokenClient(d, { watch: true, interval: 1 });
    expect(logLines.some((l) => l.includes("INFO Vault has no watch: with -watch confd reads it every 1s (-interval)"))).toBe(true);
    const i0 = await c.watchPrefix("/kv/app", 0, never);
    const watch = track(c.watchPrefix("/kv/app", i0, never));
    d.write("kv/other", { value: "2" });
    // A poll that finds nothing new under the prefix leaves the watch waiting: once the poll after it
    // has begun, the first one has been compared.
    await nextRequest(d, (r) => r.path === "kv/data/app/x");
    await nextRequest(d, (r) => r.path === "kv/data/app/x");
    expect(watch.settled).toBe(false);
    d.write("kv/app/x", { value: "2" });
    expect(await watch.promise).toBeGreaterThan(i0);
    expect(await c.getValues(["/kv/app"])).toEqual(new Map([["/kv/app/x", "2"]]));
  });

  test("a secret whose lease is shorter than -interval is read again when its lease ends", async () => {
    const d = double();
    d.mount("kv", 1);
    // KV v1 answers a secret's "ttl" field as its lease.
    d.write("kv/creds", { value: "a", ttl: "1s" });
    const c = await tokenClient(d, { watch: true, interval: 600 });
    const i0 = await c.watchPrefix("/kv", 0, never);
    const watch = c.watchPrefix("/kv", i0, never);
    await nextRequest(d, (r) => r.path === "kv/creds");
    d.write("kv/creds", { value: "b", ttl: "1s" });
    expect(await watch).toBeGreaterThan(i0);
  });

  test("in interval mode a lease shorter than -interval is named in a warning, once", async () => {
    const d = double();
    d.mount("kv", 1);
    d.write("kv/creds", { value: "a", ttl: "30s" });
    const c = await tokenClient(d, { interval: 600 });
    await c.getValues(["/kv"]);
    await c.getValues(["/kv"]);
    expect(logLines.filter((l) => l.includes("WARNING vault: the lease of /kv/creds (30s) is shorter than -interval 600s"))).toHaveLength(1);
  });

  test("a store that stops rejects the watch with a message naming the node; once back, watching resumes", async () => {
    const d = double();
    d.mount("kv", 1);
    d.write("kv/x", { value: "1" });
    const c = await tokenClient(d, { watch: true, interval: 1 });
    const i0 = await c.watchPrefix("/kv", 0, never);
    const watch = c.watchPrefix("/kv", i0, never);
    await d.stop();
    const err = await failure(watch);
    expect(err.message).toBe(`the vault store cannot be reached: 127.0.0.1:${d.port} (ECONNREFUSED)`);
    d.restart();
    const resumed = c.watchPrefix("/kv", i0, never);
    d.write("kv/x", { value: "2" });
    expect(await resumed).toBeGreaterThan(i0);
  });

  test("close() rejects pending watches", async () => {
    const d = double();
    d.mount("kv", 1);
    const c = await connect({ ...defaults(), backend: "vault", nodes: [d.url], authType: "token", authToken: d.createToken(), watch: true, interval: 600 }, { env: {} });
    const i0 = await c.watchPrefix("/kv", 0, never);
    const watch = c.watchPrefix("/kv", i0, never);
    await c.close();
    await expect(watch).rejects.toThrow("the vault client is closed");
  });
});

describe("nodes, TLS and answers that are not Vault's", () => {
  test("a dead first node: the next one answers", async () => {
    const d = double();
    d.mount("kv", 1);
    d.write("kv/x", { value: "1" });
    const dead = `http://127.0.0.1:${freePort()}`;
    const c = await client(d, { authType: "token", authToken: d.createToken(), nodes: [dead, d.url] });
    expect(await c.getValues(["/kv/x"])).toEqual(new Map([["/kv/x", "1"]]));
  });

  test("no node reachable at start: one message naming each node", async () => {
    const nodes = [`http://127.0.0.1:${freePort()}`, `127.0.0.1:${freePort()}`];
    const err = await failure(connect({ ...defaults(), backend: "vault", nodes, authType: "token", authToken: "t" }, { env: {} }));
    expect(err.message).toBe(`the vault store cannot be reached: ${nodes[0]!.slice(7)} (ECONNREFUSED), ${nodes[1]} (ECONNREFUSED)`);
  });

  test("https with a CA file, with -client-insecure, and refused with neither", async () => {
    const certs = certificates("https");
    const read = (f: string) => readFileSync(f, "utf8");
    const d = double({ tls: { cert: read(certs.server.certFile), key: read(certs.server.keyFile) } });
    d.mount("kv", 1);
    d.write("kv/x", { value: "1" });
    // A host:port node with a TLS flag is https.
    const node = d.url.slice("https://".length);
    const withCa = await client(d, { authType: "token", authToken: d.createToken(), nodes: [node], clientCaKeys: certs.client.caFile });
    expect(await withCa.getValues(["/kv/x"])).toEqual(new Map([["/kv/x", "1"]]));
    await tokenClient(d, { clientInsecure: true });
    const err = await failure(tokenClient(d));
    expect(err.message).toMatch(/^the vault store cannot be reached: 127\.0\.0\.1:\d+ \([A-Z_]+\)$/);
  });

  test("garbage answers: not JSON, a 500, a listing of the wrong shape", async () => {
    const d = double();
    d.mount("kv", 1);
    d.write("kv/x", { value: "secret-value" });
    d.write("kv/y", { value: "1" });
    const c = await tokenClient(d);
    const undo = d.intercept((r) => (r.path === "kv/x" ? new Response("<html>oops</html>", { status: 200 }) : undefined));
    expect((await failure(c.getValues(["/kv/x"]))).message).toBe(`vault at 127.0.0.1:${d.port} answered kv/x with something that is not a JSON object (status 200)`);
    undo();
    const undo500 = d.intercept((r) => (r.path === "kv/x" ? Response.json({ errors: ["internal error"] }, { status: 500 }) : undefined));
    expect((await failure(c.getValues(["/kv/x"]))).message).toBe(`the vault store cannot be reached: 127.0.0.1:${d.port} (500 internal error)`);
    undo500();
    d.intercept((r) => (r.method === "LIST" && r.path === "kv" ? Response.json({ data: { keys: "x" } }) : undefined));
    expect(await c.getValues(["/kv"])).toEqual(new Map());
    expect(logLines.some((l) => l.includes("WARNING vault: the key list of /kv is not a list (string)"))).toBe(true);
  });

  test("a server that lists a folder inside every folder: the walk stops at 100 levels with one error naming the key", async () => {
    const d = double();
    d.mount("kv", 1);
    const c = await tokenClient(d);
    d.intercept((r) => (r.method === "LIST" && r.path.startsWith("kv") ? Response.json({ data: { keys: ["again/"] } }) : undefined));
    const err = await failure(c.getValues(["/kv"]));
    expect(err.describe()).toBe("vault lists folders more than 100 levels deep below this key; not walking further (key /kv)");
  });

  test("a login answered 200 without a token is a refused login", async () => {
    const d = double();
    d.enableAuth({ type: "approle", roleId: "r", secretId: "s" });
    d.intercept((r) => (r.path === "auth/approle/login" ? Response.json({ auth: null }) : undefined));
    const err = await failure(client(d, { authType: "app-role", roleId: "r", secretId: "s" }));
    expect(err.describe()).toBe("flag -role-id/-secret-id: vault login with -auth-type app-role failed (auth/approle/login: 200 without a token in the answer)");
  });

  test("configuration errors: a bad node names -node; -watch with -interval 0 (a poll without pause) names -interval", async () => {
    const d = double();
    expect((await failure(client(d, { authType: "token", authToken: "t", nodes: ["ftp://x:1"] }))).context.flag).toBe("-node");
    expect((await failure(client(d, { authType: "token", authToken: "t", watch: true, interval: 0 }))).context.flag).toBe("-interval");
    expect(d.requests).toHaveLength(0);
  });
});

// End to end: confd as a user runs it.

const fixture = Bun.YAML.parse(readFileSync(join(CONFD_FIXTURE, "data.yaml"), "utf8")) as {
  keys: Record<string, string>;
  nested_keys: Record<string, string>;
};

/** The fixture's conf.d with each dest moved into `out`, templates as they are (Go) or ours (handlebars). */
function fixtureConfdir(name: string, engine: "go" | "handlebars"): { dir: string; out: string } {
  const dir = join(tmp.path, `${name}-${engine}`);
  const out = join(dir, "out");
  const files: Record<string, string> = { "out/.keep": "" };
  for (const f of readdirSync(join(CONFD_FIXTURE, "confdir", "conf.d"))) {
    let text = readFileSync(join(CONFD_FIXTURE, "confdir", "conf.d", f), "utf8").replace(/dest = "\/tmp\/(.*)"/, (_, base: string) => `dest = ${JSON.stringify(join(out, base))}`);
    if (engine === "handlebars") text = text.replace(/src = "(.*)\.tmpl"/, 'src = "$1.hbs"');
    files[`conf.d/${f}`] = text;
  }
  const templates = engine === "handlebars" ? join(CONFD_FIXTURE, "handlebars") : join(CONFD_FIXTURE, "confdir", "templates");
  for (const f of readdirSync(templates)) files[`templates/${f}`] = readFileSync(join(templates, f), "utf8");
  writeTree(dir, files);
  return { dir, out };
}

function expectFixtureOutput(out: string): void {
  const expected: [string, string][] = [
    ["confd-basic-test.conf", "basic.conf"],
    ["confd-exists-test.conf", "exists-test.conf"],
    ["confd-iteration-test.conf", "iteration.conf"],
    ["confd-manykeys-test.conf", "basic.conf"],
  ];
  for (const [rendered, want] of expected) expect(readFileSync(join(out, rendered), "utf8")).toBe(readFileSync(join(CONFD_FIXTURE, "expect", want), "utf8"));
  expect(readFileSync(join(out, "confd-nested-test.conf"), "utf8")).toMatch(/^upstream app {\n\n*}\n/);
}

/**
 * The fixture's keys as secrets: a mount per top-level name and a secret per key with its value in
 * "value". On KV v1 as confd's own vault integration test writes them: /upstream is one secret at the
 * mount's root whose fields app1 and app2 confd maps to /upstream/app1 and /upstream/app2, and /key a
 * secret at the root of the mount "key". KV v2 has no secret at a mount's root: there /upstream/app1
 * and /upstream/app2 are secrets of their own, and "key" stays a v1 mount.
 */
function writeFixture(d: VaultDouble, version: 1 | 2): void {
  for (const mount of ["database", "upstream", "nested", "prefix"]) d.mount(mount, version);
  d.mount("key", 1);
  const all: Record<string, string> = { ...fixture.keys, ...fixture.nested_keys };
  if (version === 1) {
    const { "/upstream/app1": app1, "/upstream/app2": app2 } = all;
    delete all["/upstream/app1"];
    delete all["/upstream/app2"];
    d.write("upstream", { app1, app2 });
  }
  for (const [key, value] of Object.entries(all)) d.write(key, { value });
}

const e2eEnv = baseEnv({ HOSTNAME: "localhost" });

for (const version of [1, 2] as const) {
  for (const engine of version === 1 ? (["go", "handlebars"] as const) : (["go"] as const)) {
    test(`confd's integration fixture, ${engine} templates, KV v${version}: byte-identical files`, async () => {
      const d = double();
      writeFixture(d, version);
      d.enableAuth({ type: "approle", roleId: "role", secretId: "secret-id-do-not-print" }, "test");
      const { dir, out } = fixtureConfdir(`fixture-v${version}`, engine);
      // As confd's integration test runs it (integration/vault-path/test.sh).
      const r = await runConfd(
        ["--onetime", "--log-level", "debug", "--confdir", dir, "--backend", "vault", "--auth-type", "app-role", "--role-id", "role", "--secret-id", "secret-id-do-not-print", "--path=test", "--node", d.url, "--config-file", join(dir, "none")],
        { env: e2eEnv },
      );
      expect(r.stderr).not.toContain("ERROR");
      expect(r.code).toBe(0);
      expectFixtureOutput(out);
      expect(r.stderr).toContain("INFO Vault authentication backend set to app-role");
      expect(r.stderr).not.toContain("secret-id-do-not-print");
      expect(r.stderr).not.toContain(fixture.keys["/database/password"]!);
    });
  }
}

describe("end to end", () => {
  function watchConfdir(name: string, template: string, keys: string[]): { dir: string; out: string } {
    const dir = join(tmp.path, name);
    writeTree(dir, {
      "templates/t.tmpl": template,
      "conf.d/t.toml": `[template]\nsrc = "t.tmpl"\ndest = ${JSON.stringify(join(dir, "out"))}\nkeys = ${JSON.stringify(keys)}\n`,
    });
    return { dir, out: join(dir, "out") };
  }

  const updated = (out: string) => new RegExp(`Target config ${out.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")} has been updated`);

  test("-watch: a change to a KV v2 secret reaches the file at the next poll", async () => {
    const d = double();
    d.mount("secret", 2);
    d.write("secret/app", { host: "db1", port: "5432" });
    const { dir, out } = watchConfdir("watch", 'host={{getv "/secret/app/host"}} port={{getv "/secret/app/port"}}\n', ["/secret/app"]);
    const child = spawnConfd(["-watch", "-interval", "1", "-confdir", dir, "-config-file", join(dir, "none"), "-backend", "vault", "-auth-type", "token", "-node", d.url], {
      env: baseEnv({ VAULT_TOKEN: d.createToken() }),
    });
    const stderr = new Lines(child.stderr);
    try {
      await stderr.waitFor(updated(out));
      expect(readFileSync(out, "utf8")).toBe("host=db1 port=5432\n");
      d.write("secret/app", { host: "db2", port: "5432" });
      await stderr.waitForCount(updated(out), 2);
      expect(readFileSync(out, "utf8")).toBe("host=db2 port=5432\n");
      expect(stderr.seen.filter((l) => l.includes("Vault has no watch: with -watch confd reads it every 1s (-interval)"))).toHaveLength(1);
    } finally {
      child.kill("SIGTERM");
      expect(await child.exited).toBe(0);
    }
  });

  test("-watch: a token revoked mid-run gives one error line and a new login; the next change still reaches the file", async () => {
    const d = double();
    d.mount("kv", 1);
    d.write("kv/v", { value: "1" });
    d.enableAuth({ type: "approle", roleId: "role", secretId: "secret-id-do-not-print" });
    const { dir, out } = watchConfdir("revoked", 'v={{getv "/kv/v"}}\n', ["/kv/v"]);
    const child = spawnConfd(
      ["-watch", "-interval", "1", "-confdir", dir, "-config-file", join(dir, "none"), "-backend", "vault", "-auth-type", "app-role", "-role-id", "role", "-secret-id", "secret-id-do-not-print", "-node", d.url],
      { env: baseEnv() },
    );
    const stderr = new Lines(child.stderr);
    try {
      await stderr.waitFor(updated(out));
      d.revoke(d.tokens.at(-1)!);
      d.write("kv/v", { value: "2" });
      await stderr.waitForCount(updated(out), 2);
      expect(readFileSync(out, "utf8")).toBe("v=2\n");
      const errors = stderr.seen.filter((l) => l.includes("ERROR"));
      expect(errors).toHaveLength(1);
      expect(errors[0]).toContain("vault refused the token (403): it has expired or was revoked; logging in again with -auth-type app-role");
      expect(logins(d)).toHaveLength(2);
      expect(stderr.text()).not.toContain("secret-id-do-not-print");
    } finally {
      child.kill("SIGTERM");
      expect(await child.exited).toBe(0);
    }
  });

  const confdir = () => watchConfdir(`plain-${freePort()}`, 'v={{getv "/kv/v"}}\n', ["/kv/v"]);

  test("an unknown -auth-type: one line naming the flag, exit 1", async () => {
    const { dir } = confdir();
    const r = await runConfd(["-onetime", "-confdir", dir, "-config-file", join(dir, "none"), "-backend", "vault", "-auth-type", "ldap"]);
    expect(r.code).toBe(1);
    const fatal = r.stderr.split("\n").filter((l) => l.includes("FATAL"));
    expect(fatal).toEqual([expect.stringMatching(/FATAL flag -auth-type: unknown vault auth type "ldap" \(app-id, app-role, cert, github, kubernetes, token, userpass\)$/)]);
  });

  test("wrong credentials: one line naming the flags, exit 1, no secret", async () => {
    const d = double();
    d.enableAuth({ type: "approle", roleId: "role", secretId: "right" });
    const { dir } = confdir();
    const r = await runConfd(["-onetime", "-confdir", dir, "-config-file", join(dir, "none"), "-backend", "vault", "-auth-type", "app-role", "-role-id", "role", "-secret-id", "wrong-secret-do-not-print", "-node", d.url]);
    expect(r.code).toBe(1);
    expect(r.stderr.split("\n").filter((l) => l.includes("FATAL"))).toEqual([
      expect.stringMatching(/FATAL flag -role-id\/-secret-id: vault login with -auth-type app-role failed \(auth\/approle\/login: 400 invalid role or secret ID\)$/),
    ]);
    expect(r.stderr).not.toContain("wrong-secret-do-not-print");
  });

  test("an unreachable node: one line naming it, exit 1", async () => {
    const node = `http://127.0.0.1:${freePort()}`;
    const { dir } = confdir();
    const r = await runConfd(["-onetime", "-confdir", dir, "-config-file", join(dir, "none"), "-backend", "vault", "-auth-type", "token", "-auth-token", "token-do-not-print", "-node", node]);
    expect(r.code).toBe(1);
    expect(r.stderr.split("\n").filter((l) => l.includes("FATAL"))).toEqual([expect.stringMatching(/FATAL the vault store cannot be reached: 127\.0\.0\.1:\d+ \(ECONNREFUSED\)$/)]);
    expect(r.stderr).not.toContain("token-do-not-print");
  });
});
