import { afterEach, expect, spyOn, test } from "bun:test";
import { setLongTimeout } from "../src/timer.ts";

const spies: { mockRestore(): void }[] = [];
afterEach(() => spies.splice(0).forEach((s) => s.mockRestore()));

/** setTimeout's delays and callbacks, recorded instead of scheduled. */
function recordTimers(): { delays: number[]; run(i: number): void } {
  const delays: number[] = [];
  const callbacks: (() => void)[] = [];
  spies.push(
    spyOn(globalThis, "setTimeout").mockImplementation(((fn: () => void, ms: number) => {
      delays.push(ms);
      callbacks.push(fn);
      return 0 as unknown as ReturnType<typeof setTimeout>;
    }) as unknown as typeof setTimeout),
  );
  return { delays, run: (i) => callbacks[i]!() };
}

test("a timeout past setTimeout's 2^31-1 ms limit is chained, not fired at once", () => {
  const timers = recordTimers();
  let fired = 0;
  // -interval 2592000: thirty days.
  setLongTimeout(() => fired++, 30 * 86_400_000);
  expect(timers.delays).toEqual([2 ** 31 - 1]);
  timers.run(0);
  expect(fired).toBe(0);
  expect(timers.delays).toEqual([2 ** 31 - 1, 30 * 86_400_000 - (2 ** 31 - 1)]);
  timers.run(1);
  expect(fired).toBe(1);
});

test("a short timeout is one setTimeout", () => {
  const timers = recordTimers();
  let fired = 0;
  setLongTimeout(() => fired++, 250);
  expect(timers.delays).toEqual([250]);
  timers.run(0);
  expect(fired).toBe(1);
});
