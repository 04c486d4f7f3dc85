import { expect, test } from "bun:test";
import { runCommand, shellArgv } from "../src/command.ts";
import { commandTemplate, type ResourceSpec } from "../src/resource.ts";
import { renderCommand } from "../src/sync.ts";

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
  const r = await runCommand("sleep 30 & echo $!", { timeoutMs: 10_000 });
  expect(r.ok).toBe(true);
  // The sleeper still runs when the result is in: nothing waited for it.
  const sleeper = Number(r.output.trim());
  expect(() => process.kill(sleeper, 0)).not.toThrow();
  process.kill(sleeper, "SIGKILL");
});

test("Windows commands go through cmd /C, verbatim", () => {
  expect(shellArgv("nginx -s reload", "win32")).toEqual({ argv: ["cmd.exe", "/d", "/s", "/c", '"nginx -s reload"'], verbatim: true });
  expect(shellArgv("nginx -s reload", "linux")).toEqual({ argv: ["/bin/sh", "-c", "exec 2>&1\nnginx -s reload"], verbatim: false });
});

const render = (text: string, src: string, dest: string) =>
  renderCommand(commandTemplate(text, "check_cmd", "app.toml")!, { src, dest }, "check_cmd", { file: "app.toml" } as ResourceSpec);

test("commands are Go templates over {{.src}} and {{.dest}}, as confd renders check_cmd", async () => {
  expect(await render("nginx -t -c {{.src}} && cp {{ .dest }} /bak && echo {{- .src -}}", "/etc/.x.1", "/etc/x")).toBe("nginx -t -c /etc/.x.1 && cp /etc/x /bak && echo/etc/.x.1");
  expect(await render('check {{printf "%q" .src}}', "/etc/my app/.x.1", "/etc/my app/x")).toBe('check "/etc/my app/.x.1"');
  expect(await render('echo {{"{{"}}.Id}}', "s", "d")).toBe("echo {{.Id}}");
});

test("a command that is not a valid template, or uses other fields, is refused at load naming the key", () => {
  expect(() => commandTemplate("nginx -t -c {{.src", "check_cmd", "app.toml")).toThrow('key "check_cmd" is not a valid template: template: checkcmd:1: unclosed action');
  expect(() => commandTemplate("docker inspect -f '{{.State.Pid}}' web | xargs kill -HUP", "reload_cmd", "app.toml")).toThrow(
    'key "reload_cmd" uses {{.State}}: only {{.src}} and {{.dest}} exist',
  );
});
