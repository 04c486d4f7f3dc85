// Key paths as confd uses them: "/a/b" names a key and the subtree below it, matched on "/" boundaries
// ("/app" covers "/app/x", not "/application"). Shared by the core modules and every backend.

/** "/a/b/" and "/a/b" name the same subtree; "" and "/" the whole store. */
export function normalizeKey(key: string): string {
  const trimmed = key.replace(/\/+$/, "");
  return trimmed === "" ? "/" : trimmed;
}

/**
 * The key itself and every subtree it lies in, nearest first: "/a/b" -> "/a/b", "/a", "/". A key is
 * wanted when one of these was asked for, which is a set lookup per level instead of a scan of all keys.
 */
export function ancestors(key: string): string[] {
  const out = [key];
  for (let i = key.lastIndexOf("/"); i > 0; i = key.lastIndexOf("/", i - 1)) out.push(key.slice(0, i));
  if (key !== "/") out.push("/");
  return out;
}

/** A test for "equal to one of `keys` or below it on a / boundary" ("/app" covers "/app/x", not "/application"). */
export function keyFilter(keys: readonly string[]): (key: string) => boolean {
  const wanted = new Set(keys.map(normalizeKey));
  return (key) => ancestors(key).some((a) => wanted.has(a));
}

/**
 * The keys that are not inside another one, sorted: "/app" and "/app/x" are read (or watched) once, as
 * "/app"; "/" covers every key.
 */
export function subtrees(keys: readonly string[]): string[] {
  const wanted = new Set(keys.map(normalizeKey));
  return [...wanted].filter((k) => !ancestors(k).slice(1).some((a) => wanted.has(a))).sort();
}
