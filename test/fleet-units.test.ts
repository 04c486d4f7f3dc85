// The parts of quiescence and splay that are plain functions: the "min:max" window, this host's share of a
// splay window, and the wait before a reload (splay or min_reload_interval, whichever is longer).
import { expect, test } from "bun:test";
import { hostName, splayOffset } from "../src/fleet.ts";
import { parseWait } from "../src/options.ts";
import { reloadDelay } from "../src/reload-delay.ts";

test("parseWait: min:max, a lone min (max = 4 × min), and what is not a window", () => {
  expect(parseWait("2s:10s")).toEqual({ minMs: 2000, maxMs: 10_000 });
  expect(parseWait(" 500ms : 1m ")).toEqual({ minMs: 500, maxMs: 60_000 });
  expect(parseWait("2s")).toEqual({ minMs: 2000, maxMs: 8000 });
  expect(parseWait("3s:3s")).toEqual({ minMs: 3000, maxMs: 3000 });
  for (const bad of ["10s:2s", "0:1s", "0s", "", "soon", "1s:2s:3s", "2:10", "-1s:2s", "1s:"]) expect(parseWait(bad)).toBeUndefined();
});

test("splayOffset: inside the window, fixed for a host and name, different across hosts and names", () => {
  const a = splayOffset("alpha", "web", 30_000);
  expect(a).toBeGreaterThanOrEqual(0);
  expect(a).toBeLessThan(30_000);
  expect(splayOffset("alpha", "web", 30_000)).toBe(a);
  expect(splayOffset("beta", "web", 30_000)).not.toBe(a);
  expect(splayOffset("alpha", "api", 30_000)).not.toBe(a);
  // Host and name are kept apart: "ab"+"c" is not "a"+"bc".
  expect(splayOffset("ab", "c", 30_000)).not.toBe(splayOffset("a", "bc", 30_000));
});

test("hostName: $HOSTNAME when set, else the kernel's", () => {
  expect(hostName({ HOSTNAME: "pod-7" })).toBe("pod-7");
  expect(hostName({ HOSTNAME: "" }).length).toBeGreaterThan(0);
});

test("reloadDelay: the longer of the splay share and the rest of min_reload_interval", () => {
  expect(reloadDelay({}, undefined, 0)).toBeUndefined();
  expect(reloadDelay({ splayMs: 2000, splayOffsetMs: 700 }, undefined, 0)).toEqual({ ms: 700, why: "splay 2s" });
  // First reload: nothing to wait for.
  expect(reloadDelay({ minReloadIntervalMs: 60_000 }, undefined, 1000)).toBeUndefined();
  expect(reloadDelay({ minReloadIntervalMs: 60_000 }, 1000, 21_000)).toEqual({ ms: 40_000, why: "min_reload_interval 60s" });
  expect(reloadDelay({ minReloadIntervalMs: 60_000 }, 1000, 90_000)).toBeUndefined();
  expect(reloadDelay({ splayMs: 60_000, splayOffsetMs: 50_000, minReloadIntervalMs: 60_000 }, 1000, 21_000)).toEqual({ ms: 50_000, why: "splay 60s" });
});
