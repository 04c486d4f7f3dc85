// Benchmark (not a test): one render of a template that ranges over 10,000 key/value pairs from `gets`
// and prints each with printf, in the Go text/template engine and in handlebars, with the same function
// library over the same store. Warms both up, then prints the median, min and max of the timed renders.
// Targets: the Go engine within 2x handlebars and at most 20 ms per render.
//   bun scripts/bench-render.ts [--keys 10000] [--renders 30] [--warmup 10]
import { parseArgs } from "node:util";
import Handlebars from "handlebars";
import { createFuncs } from "../src/funcs.ts";
import { executeGoTemplate } from "../src/gotemplate-exec.ts";
import { parseGoTemplate } from "../src/gotemplate-parse.ts";

const { values } = parseArgs({
  options: { keys: { type: "string", default: "10000" }, renders: { type: "string", default: "30" }, warmup: { type: "string", default: "10" } },
});
const keyCount = Number(values.keys);
const renders = Math.max(20, Number(values.renders));
const warmup = Number(values.warmup);

const store = new Map<string, string>();
for (let i = 0; i < keyCount; i++) store.set(`/k/${String(i).padStart(5, "0")}`, `value-${i}`);
const funcs = createFuncs(store);

const goSource = '{{range gets "/k/*"}}{{printf "%s=%s\\n" .Key .Value}}{{end}}';
const goTree = parseGoTemplate("bench.tmpl", goSource, new Set(Object.keys(funcs)));
const renderGo = (): string => executeGoTemplate(goTree, undefined, funcs);

const hbs = Handlebars.create();
for (const [name, fn] of Object.entries(funcs)) {
  // Handlebars passes its options object last.
  hbs.registerHelper(name, (...args: unknown[]) => fn(...args.slice(0, -1)));
}
// Handlebars string literals have no escapes: the newline is written as is.
const hbsSource = '{{#each (gets "/k/*")}}{{printf "%s=%s\n" Key Value}}{{/each}}';
const hbsTemplate = hbs.compile(hbsSource, { noEscape: true });
const renderHandlebars = (): string => hbsTemplate({});

const goOut = renderGo();
if (goOut !== renderHandlebars()) throw new Error("the two engines render different text");
if (goOut.split("\n").length !== keyCount + 1) throw new Error(`expected ${keyCount} lines`);

interface Summary {
  median: number;
  min: number;
  max: number;
}

function measure(render: () => string): number[] {
  for (let i = 0; i < warmup; i++) render();
  const samples: number[] = [];
  for (let i = 0; i < renders; i++) {
    const started = performance.now();
    render();
    samples.push(performance.now() - started);
  }
  return samples;
}

function summary(samples: number[]): Summary {
  const sorted = [...samples].sort((a, b) => a - b);
  return { median: sorted[Math.floor(sorted.length / 2)]!, min: sorted[0]!, max: sorted[sorted.length - 1]! };
}

// Interleaved rounds, so that neither engine always runs on a warmer or cooler machine.
const goSamples: number[] = [];
const handlebarsSamples: number[] = [];
for (let round = 0; round < 2; round++) {
  goSamples.push(...measure(renderGo));
  handlebarsSamples.push(...measure(renderHandlebars));
}
const go = summary(goSamples);
const handlebars = summary(handlebarsSamples);

const ratio = go.median / handlebars.median;
const row = (name: string, r: Summary): string =>
  `| ${name} | ${r.median.toFixed(2)} | ${r.min.toFixed(2)} | ${r.max.toFixed(2)} |`;
console.log(`${keyCount} pairs; per engine 2 rounds of ${warmup} warm-up and ${renders} timed renders\n`);
console.log("| engine | median ms | min ms | max ms |\n|---|---|---|---|");
console.log(row("go text/template", go));
console.log(row("handlebars", handlebars));
console.log(`\n| target | measured | met |\n|---|---|---|`);
console.log(`| go <= 2x handlebars | ${ratio.toFixed(2)}x | ${ratio <= 2 ? "yes" : "no"} |`);
console.log(`| go <= 20 ms per render | ${go.median.toFixed(2)} ms | ${go.median <= 20 ? "yes" : "no"} |`);
