// Signals: SIGTERM stops scheduling, lets the sync in progress (and its reload command) finish, exits 0.
import { afterAll, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Lines, spawnConfd, tempDir, writeTree } from "./helpers.ts";

const tmp = tempDir();
afterAll(tmp.cleanup);

test("SIGTERM while a reload command runs: the command finishes, the process exits 0", async () => {
  const dir = tmp.path;
  const dest = join(dir, "out", "app.conf");
  const finished = join(dir, "reload-finished");
  writeTree(dir, {
    "templates/app.hbs": 'v={{getv "/app/v"}}\n',
    "data.yaml": "app:\n  v: 1\n",
    "conf.d/app.toml": `[template]\nsrc = "app.hbs"\ndest = ${JSON.stringify(dest)}\nkeys = ["/app"]\nreload_cmd = "sleep 1; touch ${finished}"\n`,
    "out/.keep": "",
  });
  const child = spawnConfd(["-backend", "file", "-file", join(dir, "data.yaml"), "-confdir", dir, "-interval", "3600", "-log-level", "debug", "-config-file", join(dir, "none")]);
  const stderr = new Lines(child.stderr);
  await stderr.waitFor(/Running reload command/);
  child.kill("SIGTERM");
  expect(await child.exited).toBe(0);
  expect(existsSync(finished)).toBe(true);
  expect(readFileSync(dest, "utf8")).toBe("v=1\n");
  await stderr.waitFor(/Received SIGTERM/);
  expect(stderr.text()).toContain(`Target config ${dest} has been updated`);
});
