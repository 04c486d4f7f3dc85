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

test("a second SIGTERM while a sync is blocked on a FIFO destination exits at once (143), without the 90 s grace", async () => {
  const dir = join(tmp.path, "fifo");
  const dest = join(dir, "out", "app.conf");
  writeTree(dir, {
    "templates/app.hbs": 'v={{getv "/app/v"}}\n',
    "data.yaml": "app:\n  v: 1\n",
    "conf.d/app.toml": `[template]\nsrc = "app.hbs"\ndest = ${JSON.stringify(dest)}\nkeys = ["/app"]\n`,
    "out/.keep": "",
  });
  expect(Bun.spawnSync(["mkfifo", dest]).exitCode).toBe(0);
  const child = spawnConfd(["-onetime", "-backend", "file", "-file", join(dir, "data.yaml"), "-confdir", dir, "-config-file", join(dir, "none")]);
  const stderr = new Lines(child.stderr);
  // Nothing writes to the FIFO: the sync that reads it cannot finish, so it is in flight from here on.
  await stderr.waitFor(/is a FIFO, not a regular file/);
  child.kill("SIGTERM");
  await stderr.waitFor(/Received SIGTERM; finishing syncs in progress/);
  child.kill("SIGTERM");
  // Had the second signal been ignored, this would wait out the grace period, past the test's timeout.
  expect(await child.exited).toBe(143);
  await stderr.waitFor(/Received SIGTERM again; exiting now/);
});

test("a second SIGINT kills the running reload command and everything it started, then exits (130)", async () => {
  const dir = join(tmp.path, "second-signal");
  const ready = join(dir, "ready");
  writeTree(dir, {
    "templates/app.hbs": 'v={{getv "/app/v"}}\n',
    "data.yaml": "app:\n  v: 1\n",
    "conf.d/app.toml": `[template]\nsrc = "app.hbs"\ndest = ${JSON.stringify(join(dir, "out", "app.conf"))}\nkeys = ["/app"]\nreload_cmd = "sleep 1000 & echo $! > ${ready}; wait"\n`,
    "out/.keep": "",
  });
  expect(Bun.spawnSync(["mkfifo", ready]).exitCode).toBe(0);
  const child = spawnConfd(["-onetime", "-backend", "file", "-file", join(dir, "data.yaml"), "-confdir", dir, "-config-file", join(dir, "none"), "-log-level", "debug"]);
  const stderr = new Lines(child.stderr);
  // The reload command says its background sleeper's pid through the FIFO once both run.
  const sleeper = Number(await Bun.file(ready).text());
  child.kill("SIGINT");
  await stderr.waitFor(/Received SIGINT; finishing/);
  child.kill("SIGINT");
  expect(await child.exited).toBe(130);
  await stderr.waitFor(/Received SIGINT again; exiting now after killing 1 running command/);
  // SIGKILL to its process group: gone, or a zombie until init reaps it.
  const state = existsSync(`/proc/${sleeper}/stat`) ? (readFileSync(`/proc/${sleeper}/stat`, "utf8").split(") ")[1]?.[0] ?? "X") : "X";
  expect(["Z", "X"]).toContain(state);
});

test("a data file that blocks (a FIFO) does not freeze the main thread: SIGTERM is heard, a second one exits at once", async () => {
  const dir = join(tmp.path, "fifo-data");
  writeTree(dir, {
    "templates/app.hbs": 'v={{getv "/app/v"}}\n',
    "conf.d/app.toml": `[template]\nsrc = "app.hbs"\ndest = ${JSON.stringify(join(dir, "out", "app.conf"))}\nkeys = ["/app"]\n`,
    "out/.keep": "",
  });
  expect(Bun.spawnSync(["mkfifo", join(dir, "data.yaml")]).exitCode).toBe(0);
  const child = spawnConfd(["-onetime", "-backend", "file", "-file", join(dir, "data.yaml"), "-confdir", dir, "-config-file", join(dir, "none"), "-log-level", "debug"]);
  const stderr = new Lines(child.stderr);
  // Nothing writes to the FIFO: the store read cannot finish.
  await stderr.waitFor(/Retrieving 1 keys from the store/);
  child.kill("SIGTERM");
  await stderr.waitFor(/Received SIGTERM; finishing syncs in progress/);
  child.kill("SIGTERM");
  expect(await child.exited).toBe(143);
});

test("-onetime: a sync that fails after one SIGTERM still makes the exit status 1", async () => {
  const dir = join(tmp.path, "fail-after-term");
  const [ready, proceed] = [join(dir, "ready"), join(dir, "proceed")];
  writeTree(dir, {
    "templates/app.hbs": 'v={{getv "/app/v"}}\n',
    "data.yaml": "app:\n  v: 1\n",
    "conf.d/app.toml": `[template]\nsrc = "app.hbs"\ndest = ${JSON.stringify(join(dir, "out", "app.conf"))}\nkeys = ["/app"]\ncheck_cmd = "echo running > ${ready}; read x < ${proceed}; exit 1"\n`,
    "out/.keep": "",
  });
  for (const fifo of [ready, proceed]) expect(Bun.spawnSync(["mkfifo", fifo]).exitCode).toBe(0);
  const child = spawnConfd(["-onetime", "-backend", "file", "-file", join(dir, "data.yaml"), "-confdir", dir, "-config-file", join(dir, "none")]);
  const stderr = new Lines(child.stderr);
  await Bun.file(ready).text();
  child.kill("SIGTERM");
  await stderr.waitFor(/Received SIGTERM; finishing syncs in progress/);
  await Bun.write(proceed, "go\n");
  expect(await child.exited).toBe(1);
  await stderr.waitFor(/ERROR resource app: .*check_cmd exited with status 1/);
});
