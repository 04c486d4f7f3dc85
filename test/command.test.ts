import { expect, test } from "bun:test";
import { runCommand, shellArgv } from "../src/command.ts";
import { substitute } from "../src/sync.ts";

test("stdout and stderr come back combined, in the order written", async () => {
  const r = await runCommand("echo one; echo two >&2; echo three", { timeoutMs: 10_000 });
  expect(r).toMatchObject({ ok: true, exitCode: 0, timedOut: false, output: "one\ntwo\nthree\n" });
});

test("a failing command reports its status", async () => {
  const r = await runCommand("exit 7", { timeoutMs: 10_000 });
  expect(r).toMatchObject({ ok: false, exitCode: 7, timedOut: false });
});

test("a command that ignores SIGTERM is killed at the end of the grace period", async () => {
  const r = await runCommand("trap '' TERM; echo started; while :; do sleep 0.05; done", { timeoutMs: 200, killGraceMs: 200 });
  expect(r).toMatchObject({ ok: false, timedOut: true, signal: "SIGKILL", output: "started\n" });
});

test("a background process left holding the output does not hold us up", async () => {
  const r = await runCommand("sleep 30 & echo done", { timeoutMs: 10_000 });
  expect(r.ok).toBe(true);
  expect(r.output).toBe("done\n");
  expect(r.durationMs).toBeLessThan(20_000);
});

test("Windows commands go through cmd /C, verbatim", () => {
  expect(shellArgv("nginx -s reload", "win32")).toEqual({ argv: ["cmd.exe", "/d", "/s", "/c", '"nginx -s reload"'], verbatim: true });
  expect(shellArgv("nginx -s reload", "linux")).toEqual({ argv: ["/bin/sh", "-c", "exec 2>&1\nnginx -s reload"], verbatim: false });
});

test("{{.src}} and {{.dest}} in commands", () => {
  expect(substitute("nginx -t -c {{.src}} && cp {{ .dest }} /bak && echo {{- .src -}}", "/etc/.x.1", "/etc/x")).toBe("nginx -t -c /etc/.x.1 && cp /etc/x /bak && echo /etc/.x.1");
});
