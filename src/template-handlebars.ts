// Rendering, run side (worker), handlebars: precompiled specs from the main thread (handlebars.ts), of
// which only the small handlebars runtime is loaded here, with every library function as a helper.
import Handlebars from "handlebars/runtime";
import { ConfdError } from "./errors.ts";
import { FuncError, funcNames, type TemplateFunc } from "./funcs.ts";
import { LOCATION_HASH_KEY, type HandlebarsTemplate } from "./protocol.ts";
import { renderWith, type Render, type RenderOptions } from "./template.ts";

export function instantiateHandlebars(compiled: HandlebarsTemplate, options: RenderOptions = {}): Render {
  const env = Handlebars.create();
  // Its log helper writes arguments (store values) to the console, past our log and its rules.
  env.unregisterHelper("log");
  // Helpers are registered once; each render points them at that render's functions.
  let funcs: Record<string, TemplateFunc> = {};
  for (const name of funcNames()) {
    env.registerHelper(name, (...args: unknown[]) => {
      const options = args.pop() as { hash?: Record<string, unknown> } | undefined;
      try {
        return funcs[name]!(...args.map(goNumber));
      } catch (err) {
        throw locate(err, name, options?.hash?.[LOCATION_HASH_KEY], compiled.file);
      }
    });
  }
  for (const [name, partial] of Object.entries(compiled.partials)) env.registerPartial(name, env.template(load(partial.spec)));
  const template = env.template(load(compiled.spec));
  return renderWith((current) => {
    funcs = current;
    try {
      return template({}, { allowProtoPropertiesByDefault: false, allowProtoMethodsByDefault: false });
    } catch (err) {
      if (err instanceof ConfdError) throw err;
      // Its messages show no value: a partial it cannot find, say, has a name written in the template
      // (handlebars.ts refuses computed ones).
      throw new ConfdError(`template error: ${(err as Error).message}`, { file: compiled.file });
    }
  }, options);
}

/**
 * Handlebars has one kind of number, JavaScript's, and reads 42 and 42.0 alike: as an argument, a
 * whole number is Go's int (see govalue.ts), so that printf "%d" 42 and eq (len x) 2 work as written;
 * any other number is a float64.
 */
function goNumber(arg: unknown): unknown {
  return typeof arg === "number" && Number.isSafeInteger(arg) ? BigInt(arg) : arg;
}

/** A precompiled spec is JavaScript produced by our own compile step in the main thread. */
function load(spec: string): TemplateSpecification {
  return new Function(`return (${spec});`)() as TemplateSpecification;
}

type TemplateSpecification = Parameters<typeof Handlebars.template>[0];

function locate(err: unknown, name: string, loc: unknown, fallbackFile: string): ConfdError {
  let file = fallbackFile;
  let line: number | undefined;
  let column: number | undefined;
  if (typeof loc === "string") {
    const parsed = JSON.parse(loc) as [string, number, number];
    [file, line, column] = parsed;
  }
  const key = err instanceof FuncError ? err.key : undefined;
  const message = err instanceof Error ? err.message : String(err);
  return new ConfdError(`${name}: ${message}`, { file, line, column, key });
}
