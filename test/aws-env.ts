// The environment of a confd run against a local AWS endpoint (dynalite, the SSM double): test
// credentials and region, and none of the machine's own AWS setup (variables, shared config and
// credentials files, instance metadata), so that a test reads nothing outside the repository.
import { afterAll, beforeAll } from "bun:test";
import { join } from "node:path";
import { baseEnv, ROOT } from "./helpers.ts";

/** What the SDK signs with. Not secrets; the tests check that they are never logged anyway. */
export const TEST_CREDENTIALS = { AWS_ACCESS_KEY_ID: "AKIDCONFDTEST", AWS_SECRET_ACCESS_KEY: "confd-test-secret-do-not-print", AWS_REGION: "eu-west-1" };

/** A directory that does not exist: the SDK finds no config or credentials file there. */
const NOWHERE = join(ROOT, "test", "fixtures", "no-such-aws-dir");

/** baseEnv() without any AWS_*, DYNAMODB_LOCAL or SSM_LOCAL of its own, with the test setup and `extra` (undefined takes a variable out). */
export function awsEnv(extra: Record<string, string | undefined> = {}): Record<string, string> {
  const env = baseEnv({ HOSTNAME: "localhost" });
  for (const name of Object.keys(env)) if (/^AWS_/.test(name) || name === "DYNAMODB_LOCAL" || name === "SSM_LOCAL") delete env[name];
  Object.assign(env, TEST_CREDENTIALS, {
    AWS_CONFIG_FILE: join(NOWHERE, "config"),
    AWS_SHARED_CREDENTIALS_FILE: join(NOWHERE, "credentials"),
    AWS_EC2_METADATA_DISABLED: "true",
  });
  for (const [name, value] of Object.entries(extra)) {
    if (value === undefined) delete env[name];
    else env[name] = value;
  }
  return env;
}

/**
 * For the tests that run a store client in process: the SDK reads region and credentials from
 * process.env, so awsEnv()'s AWS_* variables are put there before the block's tests, and what was
 * there before is put back after them.
 */
export function useAwsProcessEnv(): void {
  const saved = new Map<string, string | undefined>();
  beforeAll(() => {
    const wanted = awsEnv();
    for (const name of new Set([...Object.keys(process.env), ...Object.keys(wanted)].filter((n) => n.startsWith("AWS_")))) {
      saved.set(name, process.env[name]);
      if (wanted[name] === undefined) delete process.env[name];
      else process.env[name] = wanted[name];
    }
  });
  afterAll(() => {
    for (const [name, value] of saved) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  });
}
