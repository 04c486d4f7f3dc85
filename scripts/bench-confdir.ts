// The confdir the watch benchmarks run (bench-watch.ts, bench-idle.ts, bench-threads.ts): `resources`
// resources, each rendering the one key KEY into out/r<i>.conf with a Go template (.tmpl, valid for confd
// and for our Go engine alike), and an empty confd.toml (confd fails on a -config-file that does not exist).
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const KEY = "/bench/value";

export interface BenchConfdir {
  dir: string;
  out: string;
  /** The destinations' names in out/. */
  files: string[];
  configFile: string;
}

export function oneKeyConfdir(resources: number, name: string): BenchConfdir {
  const dir = mkdtempSync(join(tmpdir(), `confd-${name}-`));
  const out = join(dir, "out");
  mkdirSync(join(dir, "conf.d"), { recursive: true });
  mkdirSync(join(dir, "templates"));
  mkdirSync(out);
  writeFileSync(join(dir, "templates", "v.tmpl"), `{{getv "${KEY}"}}`);
  const configFile = join(dir, "confd.toml");
  writeFileSync(configFile, "");
  const files: string[] = [];
  for (let i = 0; i < resources; i++) {
    files.push(`r${i}.conf`);
    writeFileSync(join(dir, "conf.d", `r${i}.toml`), `[template]\nsrc = "v.tmpl"\ndest = "${join(out, `r${i}.conf`)}"\nkeys = ["${KEY}"]\n`);
  }
  return { dir, out, files, configFile };
}
