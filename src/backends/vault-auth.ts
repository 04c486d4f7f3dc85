// The vault backend's token: how each of confd's auth types logs in (which flag feeds which login field,
// and the auth method's default mount path, as confd maps them), and the token's life after that. A
// token with a TTL is renewed (auth/token/renew-self) at 2/3 of it; when renewal fails, or Vault caps it
// at the token's max TTL, confd logs in again with the same method. A request refused with 403 asks
// here whether the token is still good (auth/token/lookup-self): if Vault no longer knows it (revoked,
// expired), one error line, a new login, and the request is sent again. Credentials never reach a
// message: errors name the flags that hold them.
import { readFileSync } from "node:fs";
import { ConfdError, errnoText } from "../errors.ts";
import { log, redact } from "../log.ts";
import type { Config } from "../options.ts";
import { setLongTimeout, type LongTimeout } from "../timer.ts";
import { numberAt, objectAt, statusText, type VaultAnswer, type VaultHttp } from "./vault-http.ts";

export const AUTH_TYPES = ["app-id", "app-role", "cert", "github", "kubernetes", "token", "userpass"] as const;
export type AuthType = (typeof AUTH_TYPES)[number];

/** Where Kubernetes mounts a pod's service account token, which confd's kubernetes login sends. */
export const KUBERNETES_TOKEN_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/token";
/** Renew (or log in again) when this much of the token's TTL has passed. */
const RENEW_AT = 2 / 3;
/** A renewal that could not reach Vault is tried again half-way to the token's end, while that is this far off. */
const MIN_RETRY_MS = 1_000;

/** How to obtain a token: a login request, or (-auth-type token) a token given and checked with lookup-self. */
export type Credentials =
  | { type: "token"; token: string; flags: string }
  | { type: Exclude<AuthType, "token">; path: string; body: Record<string, string>; flags: string };

/**
 * The login of `-auth-type`, from the flags confd reads for it. A missing one is named; so is an
 * unknown type or none at all (confd: "you have to set the auth type when using the vault backend").
 */
export function credentials(config: Config, env: Readonly<Record<string, string | undefined>>, kubernetesTokenFile: string): Credentials {
  const type = config.authType;
  if (!type) throw new ConfdError(`the vault backend needs -auth-type (${AUTH_TYPES.join(", ")})`, { flag: "-auth-type" });
  if (!(AUTH_TYPES as readonly string[]).includes(type)) {
    throw new ConfdError(`unknown vault auth type "${type}" (${AUTH_TYPES.join(", ")})`, { flag: "-auth-type" });
  }
  const need = (value: string, flag: string) => {
    if (!value) throw new ConfdError(`-auth-type ${type} needs ${flag}`, { flag });
    return value;
  };
  // confd's default mount paths: the type's name, except app-role, mounted as "approle".
  const mount = config.path.replace(/^\/+|\/+$/g, "") || (type === "app-role" ? "approle" : type);
  const login = `auth/${mount}/login`;
  switch (type as AuthType) {
    case "token": {
      const token = config.authToken || env.VAULT_TOKEN || "";
      if (!token) throw new ConfdError("-auth-type token needs -auth-token (or VAULT_TOKEN in the environment)", { flag: "-auth-token" });
      return { type: "token", token, flags: config.authToken ? "-auth-token" : "VAULT_TOKEN" };
    }
    case "app-role":
      return { type: "app-role", path: login, body: { role_id: need(config.roleId, "-role-id"), secret_id: need(config.secretId, "-secret-id") }, flags: "-role-id/-secret-id" };
    case "app-id":
      return { type: "app-id", path: login, body: { app_id: need(config.appId, "-app-id"), user_id: need(config.userId, "-user-id") }, flags: "-app-id/-user-id" };
    case "github":
      return { type: "github", path: login, body: { token: need(config.authToken, "-auth-token") }, flags: "-auth-token" };
    case "userpass": {
      const username = need(config.username, "-username");
      return { type: "userpass", path: `${login}/${username}`, body: { password: need(config.password, "-password") }, flags: "-username/-password" };
    }
    case "kubernetes": {
      const role = need(config.roleId, "-role-id");
      let jwt: string;
      try {
        jwt = readFileSync(kubernetesTokenFile, "utf8");
      } catch (err) {
        throw new ConfdError(`cannot read the Kubernetes service account token: ${errnoText(err)}`, { file: kubernetesTokenFile, flag: "-auth-type" });
      }
      return { type: "kubernetes", path: login, body: { jwt, role }, flags: "-role-id" };
    }
    case "cert":
      // The TLS client certificate (-client-cert, -client-key) is the credential; confd sends an empty body.
      return { type: "cert", path: login, body: {}, flags: "-client-cert/-client-key" };
  }
}

/** What Vault said of a token: how long it has, and whether renew-self may extend it. */
interface Lease {
  seconds: number;
  renewable: boolean;
}

/** A token and its upkeep. `token` is the one to send; it changes after each login. */
export class VaultSession {
  token = "";
  /** The longest TTL seen for a token of this login: a renewal that returns less has hit the max TTL. */
  private fullTtl = 0;
  /** When the token ends (performance.now() time), if it has a TTL. */
  private expiresAt = Infinity;
  private timer: LongTimeout | undefined;
  private relogin: Promise<void> | undefined;
  /** The stale token the last "logging in again" line was about: while logins fail, the line is not repeated at each retry. */
  private announced = "";
  private closed = false;

  constructor(
    private readonly http: VaultHttp,
    private readonly credentials: Credentials,
  ) {}

  get type(): AuthType {
    return this.credentials.type;
  }

  /** Logs in (for -auth-type token: checks the token), and schedules the token's renewal. */
  async login(): Promise<void> {
    const c = this.credentials;
    let lease: Lease;
    if (c.type === "token") {
      const answer = await this.http.call({ method: "GET", path: "auth/token/lookup-self", token: c.token });
      if (answer.status !== 200) throw loginError(c, "auth/token/lookup-self", answer);
      const data = objectAt(answer.body, "data");
      this.token = c.token;
      // lookup-self tells what is left of the TTL, and what it was at creation.
      lease = { seconds: numberAt(data, "ttl"), renewable: data?.renewable === true };
      this.fullTtl = Math.max(lease.seconds, numberAt(data, "creation_ttl"));
    } else {
      const answer = await this.http.call({ method: "POST", path: c.path, body: c.body });
      const auth = objectAt(answer.body, "auth");
      const token = auth?.client_token;
      if (answer.status !== 200 || typeof token !== "string" || token === "") throw loginError(c, c.path, answer);
      this.token = token;
      lease = { seconds: numberAt(auth, "lease_duration"), renewable: auth?.renewable === true };
      this.fullTtl = lease.seconds;
    }
    // Never logged; masked should a message ever carry it.
    redact(this.token);
    log.debug(`vault: logged in with -auth-type ${c.type}${lease.seconds > 0 ? `; the token's TTL is ${lease.seconds}s` : "; the token does not expire"}`);
    this.schedule(lease, false);
  }

  /**
   * A request sent with `used` was refused with 403. Resolves true when it is worth sending again (the
   * token has been replaced, by a new login here if Vault no longer knew it), false when the token is
   * good and its policy denies the request. `checked` remembers lookup-self answers for one read of
   * the store, so that a policy that denies many paths costs one check, not one per path.
   */
  async refused(used: string, checked: Map<string, Promise<boolean>>): Promise<boolean> {
    if (this.token !== used) return true;
    let valid = checked.get(used);
    if (!valid) {
      valid = this.tokenIsValid(used);
      checked.set(used, valid);
    }
    if (await valid) return this.token !== used;
    if (this.token !== used) return true;
    if (this.credentials.type === "token") {
      throw new ConfdError("vault refused the token: it has expired or was revoked", { flag: this.credentials.flags });
    }
    await this.loginAgain(used, `vault refused the token (403): it has expired or was revoked; logging in again with -auth-type ${this.type}`);
    return true;
  }

  close(): void {
    this.closed = true;
    this.timer?.cancel();
  }

  private async tokenIsValid(token: string): Promise<boolean> {
    const answer = await this.http.call({ method: "GET", path: "auth/token/lookup-self", token });
    if (answer.status === 200) return true;
    if (answer.status === 403 || answer.status === 401) return false;
    throw new ConfdError(`vault could not check the token (auth/token/lookup-self: ${statusText(answer)})`);
  }

  /** One login at a time, however many requests found the token refused; the error line is logged once per stale token. */
  private loginAgain(stale: string, why: string): Promise<void> {
    if (!this.relogin) {
      if (this.announced !== stale) log.error(why);
      this.announced = stale;
      this.relogin = this.login().finally(() => (this.relogin = undefined));
    }
    return this.relogin;
  }

  /**
   * Plans the next renewal (or login) at 2/3 of the lease; a token without a TTL needs none. A renewal
   * that gave less than the token's full TTL was capped by its max TTL: renewing again would not help.
   */
  private schedule(lease: Lease, renewed: boolean): void {
    this.timer?.cancel();
    this.timer = undefined;
    this.expiresAt = lease.seconds > 0 ? performance.now() + lease.seconds * 1000 : Infinity;
    if (this.closed || lease.seconds <= 0) return;
    const capped = renewed && lease.seconds < this.fullTtl;
    const at = lease.seconds * 1000 * RENEW_AT;
    if (lease.renewable && !capped) {
      this.timer = setLongTimeout(() => void this.renew(), at);
    } else if (this.credentials.type !== "token") {
      // Renewal would not extend it: a new token, before this one ends.
      this.timer = setLongTimeout(() => void this.scheduledLogin(), at);
    } else {
      log.warning(`the vault token expires in ${lease.seconds}s and ${capped ? "has reached its max TTL" : "is not renewable"}; with -auth-type token confd cannot log in again`);
    }
  }

  private async renew(): Promise<void> {
    const used = this.token;
    let answer: VaultAnswer;
    try {
      answer = await this.http.call({ method: "POST", path: "auth/token/renew-self", token: used, body: {} });
    } catch (err) {
      // Vault is out of reach: try again while the token has time left; after that a 403 brings a new login.
      const left = this.expiresAt - performance.now();
      const retry = !this.closed && this.token === used && left > 2 * MIN_RETRY_MS;
      log.warning(`renewing the vault token failed: ${err instanceof Error ? err.message : String(err)}${retry ? "; trying again" : ""}`);
      if (retry) this.timer = setLongTimeout(() => void this.renew(), left / 2);
      return;
    }
    if (this.closed || this.token !== used) return;
    const auth = objectAt(answer.body, "auth");
    if (answer.status === 200 && auth) {
      const lease = { seconds: numberAt(auth, "lease_duration"), renewable: auth.renewable === true };
      log.debug(`vault: token renewed for ${lease.seconds}s`);
      this.fullTtl = Math.max(this.fullTtl, lease.seconds);
      this.schedule(lease, true);
      return;
    }
    if (this.credentials.type === "token") {
      log.error(`renewing the vault token failed (${statusText(answer)}); with -auth-type token confd cannot log in again`);
      return;
    }
    await this.loginAgain(used, `renewing the vault token failed (${statusText(answer)}); logging in again with -auth-type ${this.type}`).catch((err: unknown) =>
      log.error(err instanceof ConfdError ? err.describe() : String(err)),
    );
  }

  private async scheduledLogin(): Promise<void> {
    if (this.closed) return;
    log.info(`the vault token cannot be renewed past its TTL; logging in again with -auth-type ${this.type}`);
    try {
      await this.login();
    } catch (err) {
      log.error(err instanceof ConfdError ? err.describe() : String(err));
    }
  }
}

function loginError(c: Credentials, path: string, answer: VaultAnswer): ConfdError {
  const why = answer.status === 200 ? "200 without a token in the answer" : statusText(answer);
  return new ConfdError(`vault login with -auth-type ${c.type} failed (${path}: ${why})`, { flag: c.flags });
}
