// The run side both engines share (template.ts): one function library per worker, bound to each render's
// values for as long as that render runs.
import { expect, test } from "bun:test";
import { funcNames } from "../src/funcs.ts";
import { parseGoTemplate } from "../src/gotemplate-parse.ts";
import { instantiateGo } from "../src/template-go.ts";

test("renders that overlap, one waiting for DNS, each read their own values", async () => {
  const src = '{{getv "/v"}} {{len (lookupIP "localhost")}}';
  const render = instantiateGo({ engine: "go", file: "t.tmpl", tree: parseGoTemplate("t.tmpl", src, funcNames()) });
  // The first render asks for a lookup and waits for it; the second starts meanwhile.
  const [a, b] = await Promise.all([render(new Map([["/v", "a"]])), render(new Map([["/v", "b"]]))]);
  expect(a).toStartWith("a ");
  expect(b).toStartWith("b ");
  expect(a).not.toBe("a 0");
});
