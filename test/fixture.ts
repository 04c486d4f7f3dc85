// confd's integration fixture (test/fixtures/confd-integration) as a confdir of its own for one run,
// with its Go templates unchanged, and the check that every file came out byte-identical to confd's.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { expect } from "bun:test";
import { CONFD_FIXTURE, writeTree } from "./helpers.ts";

const fixture = Bun.YAML.parse(readFileSync(join(CONFD_FIXTURE, "data.yaml"), "utf8")) as {
  keys: Record<string, string>;
  nested_keys: Record<string, string>;
};
/** Every key the fixture's templates read, with its value. */
export const FIXTURE_DATA: Readonly<Record<string, string>> = { ...fixture.keys, ...fixture.nested_keys };

/** The fixture's conf.d and templates under `dir`, each dest moved into `dir`/out (tests must not write /tmp/confd-*.conf). */
export function fixtureConfdir(dir: string): { dir: string; out: string } {
  const out = join(dir, "out");
  const files: Record<string, string> = { "out/.keep": "" };
  for (const f of readdirSync(join(CONFD_FIXTURE, "confdir", "conf.d"))) {
    files[`conf.d/${f}`] = readFileSync(join(CONFD_FIXTURE, "confdir", "conf.d", f), "utf8").replace(
      /dest = "\/tmp\/(.*)"/,
      (_, base: string) => `dest = ${JSON.stringify(join(out, base))}`,
    );
  }
  for (const f of readdirSync(join(CONFD_FIXTURE, "confdir", "templates"))) files[`templates/${f}`] = readFileSync(join(CONFD_FIXTURE, "confdir", "templates", f), "utf8");
  writeTree(dir, files);
  return { dir, out };
}

/** Each rendered file against confd's expect/ (upstream's pairs); the nested one, which upstream does not compare, by its shape. */
export function expectFixtureOutput(out: string): void {
  const pairs: [string, string][] = [
    ["confd-basic-test.conf", "basic.conf"],
    ["confd-exists-test.conf", "exists-test.conf"],
    ["confd-iteration-test.conf", "iteration.conf"],
    ["confd-manykeys-test.conf", "basic.conf"],
  ];
  for (const [rendered, expected] of pairs) {
    expect(readFileSync(join(out, rendered), "utf8")).toBe(readFileSync(join(CONFD_FIXTURE, "expect", expected), "utf8"));
  }
  // "/nested/*" matches no key (the keys are two levels down), in confd as here.
  expect(readFileSync(join(out, "confd-nested-test.conf"), "utf8")).toMatch(/^upstream app {\n\n*}\n/);
}
