// The compiled binaries the packaging tests run: the ones `npm test` built before the suite
// ($CONFD_DIST names their directory), or, when a test file runs on its own, built here once per test
// process into .cache/test-dist (git-ignored, rebuilt by each process so never older than the sources).
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { binaryName, build, hostTarget, ROOT, type Target } from "../scripts/build.ts";

const SCRATCH = join(ROOT, ".cache", "test-dist");
const pending = new Map<string, Promise<string>>();

/** The path of `target`'s binary (the host's by default). */
export function binaryFor(target: Target = hostTarget()): Promise<string> {
  const dist = process.env.CONFD_DIST;
  if (dist) {
    const path = join(resolve(dist), binaryName(target));
    if (!existsSync(path)) return Promise.reject(new Error(`$CONFD_DIST has no ${binaryName(target)}`));
    return Promise.resolve(path);
  }
  let path = pending.get(target.name);
  if (!path) {
    path = build([target], { outdir: SCRATCH }).then(([built]) => built!.path);
    pending.set(target.name, path);
  }
  return path;
}
