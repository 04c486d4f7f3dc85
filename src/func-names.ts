// The name of every function of the template library (funcs.ts), as plain data. The template compilers
// in the main thread need only the names, to refuse an unknown function when a template is loaded;
// loading the library to list them cost a compiled binary's start-up about 7 MiB and 10 ms. funcs.ts's
// LIBRARY must define exactly these names: the type checker holds it to that, and test/funcs.test.ts
// compares the two lists.
export const FUNC_NAMES = [
  // memkv's store functions
  "get", "gets", "getv", "getvs", "ls", "lsdir", "exists",
  // confd's template_funcs.go
  "base", "dir", "split", "join", "json", "jsonArray", "map", "getenv", "datetime", "toUpper", "toLower",
  "contains", "replace", "trimSuffix", "lookupIP", "lookupIPV4", "lookupIPV6", "lookupSRV", "fileExists",
  "base64Encode", "base64Decode", "parseBool", "reverse", "sortByLength", "sortKVByLength",
  "add", "sub", "mul", "div", "mod", "seq", "atoi",
  // Consul's catalog (catalog.ts), as consul-template names it
  "services", "service", "nodes", "checks", "events",
  // comparison, logic and formatting: text/template's builtins (for handlebars too), and default
  "eq", "ne", "lt", "le", "gt", "ge", "and", "or", "not", "default", "printf", "len",
] as const;

export type FuncName = (typeof FUNC_NAMES)[number];

/** FUNC_NAMES for lookups. */
export const FUNC_NAME_SET: ReadonlySet<string> = new Set(FUNC_NAMES);
