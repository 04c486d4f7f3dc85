// Handlebars partials and handlebars' own helpers: what is checked when a template is loaded
// (handlebars.ts), and what renders (template-handlebars.ts). A template's partials are found when it is
// loaded, so that a missing, escaping or recursive one is an error naming its file and line before
// anything runs.
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { ConfdError } from "../src/errors.ts";
import { compileHandlebars } from "../src/handlebars.ts";
import { instantiateHandlebars } from "../src/template-handlebars.ts";
import { runConfd, tempDir, writeTree } from "./helpers.ts";

const tmp = tempDir("confd-handlebars-");
afterAll(tmp.cleanup);
let cases = 0;

/** Writes the templates (main.hbs and its partials) into a fresh templates directory. */
function templates(files: Record<string, string>): string {
  const dir = join(tmp.path, `case${++cases}`);
  writeTree(dir, files);
  return dir;
}

async function render(files: Record<string, string>): Promise<string> {
  const dir = templates(files);
  return instantiateHandlebars(compileHandlebars(join(dir, "main.hbs"), dir))(new Map([["/p", "main"]]));
}

/** The error loading main.hbs gives, with its file made relative to the templates directory. */
function loadError(files: Record<string, string>): { message: string; file?: string; line?: number } {
  const dir = templates(files);
  try {
    compileHandlebars(join(dir, "main.hbs"), dir);
  } catch (err) {
    if (!(err instanceof ConfdError)) throw err;
    const { file, line } = err.context;
    return { message: err.message, file: file?.slice(dir.length + 1), line };
  }
  throw new Error("main.hbs loaded");
}

describe("partials", () => {
  test("a file in the templates directory, by name with or without its extension", async () => {
    expect(await render({ "main.hbs": "{{> a}}|{{> b.hbs}}", "a.hbs": "A", "b.hbs": "B" })).toBe("A|B");
  });

  test("an inline partial, used in its own file", async () => {
    expect(await render({ "main.hbs": '{{#*inline "il"}}IL{{/inline}}[{{> il}}]' })).toBe("[IL]");
  });

  test("an inline partial defined by the includer: handlebars' layout idiom", async () => {
    const files = {
      "main.hbs": '{{#> layout}}{{#*inline "body"}}B{{/inline}}{{/layout}}',
      "layout.hbs": "<{{> body}}>",
    };
    expect(await render(files)).toBe("<B>");
  });

  test("an inline partial no includer defines is not found, in every file that uses it", () => {
    const files = {
      "main.hbs": "{{> a}}\n{{> b}}",
      "a.hbs": '{{#*inline "row"}}R{{/inline}}{{> table}}',
      "b.hbs": "{{> table}}",
      "table.hbs": "\n{{> row}}",
    };
    expect(loadError(files)).toMatchObject({ message: expect.stringMatching(/^partial "row" not found in /), file: "table.hbs", line: 2 });
  });

  test("a partial block renders the partial with the block as @partial-block, or the block when there is no such partial", async () => {
    expect(await render({ "main.hbs": "{{#> frame}}inside{{/frame}}", "frame.hbs": "[{{> @partial-block}}]" })).toBe("[inside]");
    expect(await render({ "main.hbs": "{{#> nonexist}}fallback{{/nonexist}}" })).toBe("fallback");
  });

  test("a partial named by a subexpression is refused when loaded: which file it reads must not depend on the store", () => {
    expect(loadError({ "main.hbs": 'x\n{{> (getv "/p")}}' })).toEqual({
      message: "partial names must be written in the template, not computed: {{> (...)}} cannot be checked when the template is loaded",
      file: "main.hbs",
      line: 2,
    });
    expect(loadError({ "main.hbs": '{{#> (getv "/p")}}x{{/undefined}}' })).toMatchObject({ file: "main.hbs", line: 1 });
  });

  test("a partial that includes itself, directly or through another, is refused when loaded, naming the chain", () => {
    expect(loadError({ "main.hbs": "{{> p}}", "p.hbs": "P\n{{> p}}" })).toEqual({
      message: 'partial "p" includes itself: p.hbs, p.hbs',
      file: "p.hbs",
      line: 2,
    });
    expect(loadError({ "main.hbs": "{{> p}}", "p.hbs": "{{> q}}", "q.hbs": "{{> p}}" })).toEqual({
      message: 'partial "p" includes itself: p.hbs, q.hbs, p.hbs',
      file: "q.hbs",
      line: 1,
    });
    expect(loadError({ "main.hbs": "{{> main}}" })).toMatchObject({ message: 'partial "main" includes itself: main.hbs, main.hbs', file: "main.hbs" });
    // The same partial twice, not inside itself, is no loop.
    expect(render({ "main.hbs": "{{> a}}{{> b}}", "a.hbs": "{{> c}}", "b.hbs": "{{> c}}", "c.hbs": "C" })).resolves.toBe("CC");
  });
});

describe("handlebars' own helpers", () => {
  test("lookup takes an object and a field; any other count is refused when loaded", async () => {
    expect(await render({ "main.hbs": '{{lookup (split "a,b" ",") 1}}' })).toBe("b");
    const refused: Array<[string, number, number]> = [
      ["{{lookup}}", 0, 1],
      ['\n{{lookup (split "a" ",")}}', 1, 2],
      ['{{#if (lookup (split "a" ",") 0 1)}}{{/if}}', 3, 1],
    ];
    for (const [src, count, line] of refused) {
      expect(loadError({ "main.hbs": src })).toEqual({ message: `lookup takes 2 arguments (an object and a field), got ${count}`, file: "main.hbs", line });
    }
  });
});

describe("confd run by a user", () => {
  function confdir(name: string, files: Record<string, string>) {
    const dir = join(tmp.path, name);
    const dest = join(dir, "app.conf");
    writeTree(dir, {
      ...Object.fromEntries(Object.entries(files).map(([file, text]) => [`templates/${file}`, text])),
      "data.yaml": "app:\n  v: 1\n",
      "conf.d/app.toml": `[template]\nsrc = "main.hbs"\ndest = ${JSON.stringify(dest)}\nkeys = ["/app"]\n`,
    });
    const args = ["-onetime", "-backend", "file", "-file", join(dir, "data.yaml"), "-confdir", dir, "-config-file", join(dir, "none")];
    return { dir, dest, args };
  }

  test("inline partials and a partial block's fallback render", async () => {
    const { dest, args } = confdir("inline", {
      "main.hbs": '{{#*inline "v"}}v={{getv "/app/v"}}{{/inline}}{{> v}}\n{{#> optional}}no optional partial{{/optional}}\n',
    });
    const r = await runConfd(args);
    expect(r.stderr).toContain("has been updated");
    expect(readFileSync(dest, "utf8")).toBe("v=1\nno optional partial\n");
  });

  test("a partial named by a value, or one including itself: one error line naming the file, nothing written", async () => {
    for (const [files, where, says] of [
      [{ "main.hbs": 'x\n{{> (getv "/app/v")}}\n' }, "main.hbs:2", "partial names must be written in the template"],
      [{ "main.hbs": "{{> p}}\n", "p.hbs": "{{> q}}\n", "q.hbs": "{{> p}}\n" }, "q.hbs:1", 'partial "p" includes itself: p.hbs, q.hbs, p.hbs'],
    ] as const) {
      const { dir, dest, args } = confdir(`refused-${++cases}`, files);
      const r = await runConfd(args);
      expect(r.code).toBe(1);
      const errors = r.stderr.split("\n").filter((l) => / ERROR /.test(l));
      expect(errors).toHaveLength(1);
      expect(errors[0]).toContain(`${join(dir, "templates", where)}:`);
      expect(errors[0]).toContain(says);
      expect(existsSync(dest)).toBe(false);
    }
  });
});
