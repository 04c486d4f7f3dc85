// Go's view of this project's values, shared by both engines and the function library: the kind and
// type name a value has in Go (a memkv.KVPair, a time.Time, a map[string]interface {}) and the order
// of Go strings.
import { GoTime } from "./gotime.ts";

export type GoKind = "nil" | "bool" | "int" | "float" | "string" | "slice" | "map" | "struct" | "func";

// Store pairs and SRV records are Go structs in confd, so they print as {a b}, not as
// maps. They are recognised by shape because they are plain objects on this side.
const STRUCTS: ReadonlyArray<{ type: string; fields: readonly string[] }> = [
  { type: "memkv.KVPair", fields: ["Key", "Value"] },
  { type: "net.SRV", fields: ["Target", "Port", "Priority", "Weight"] },
];

export function structOf(v: object): { type: string; fields: readonly string[] } | undefined {
  const keys = Object.keys(v);
  return STRUCTS.find((s) => s.fields.length === keys.length && s.fields.every((f) => Object.hasOwn(v, f)));
}

// Numbers that are safe integers are Go ints; JavaScript cannot tell 1 from 1.0, so a
// JSON float with no fraction is an int here.
export function goKind(v: unknown): GoKind {
  switch (typeof v) {
    case "undefined":
      return "nil";
    case "boolean":
      return "bool";
    case "number":
      return Number.isSafeInteger(v) ? "int" : "float";
    case "bigint":
      return "int";
    case "string":
      return "string";
    case "function":
    case "symbol":
      return "func";
  }
  if (v === null) return "nil";
  if (Array.isArray(v)) return "slice";
  if (v instanceof Map) return "map";
  if (v instanceof GoTime || v instanceof Date) return "struct";
  return typeof v === "object" && structOf(v) !== undefined ? "struct" : "map";
}

export function goTypeName(v: unknown): string {
  switch (goKind(v)) {
    case "nil":
      return "<nil>";
    case "bool":
      return "bool";
    case "int":
      return typeof v === "bigint" ? "int64" : "int";
    case "float":
      return "float64";
    case "string":
      return "string";
    case "slice":
      return "[]interface {}";
    case "map":
      return "map[string]interface {}";
    case "func":
      return "func()";
    case "struct":
      if (typeof v === "object" && v !== null && !(v instanceof GoTime) && !(v instanceof Date)) {
        return structOf(v)?.type ?? "struct";
      }
      return "time.Time";
  }
}

// Go orders strings by their UTF-8 bytes, which is code point order; UTF-16 code unit
// order differs only where a surrogate pair meets a character from U+E000 to U+FFFF.
export function compareGoStrings(a: string, b: string): number {
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    const xs = x >= 0xd800 && x <= 0xdfff;
    const ys = y >= 0xd800 && y <= 0xdfff;
    if (xs !== ys) return xs ? 1 : -1;
    return x < y ? -1 : 1;
  }
  return a.length < b.length ? -1 : 1;
}
