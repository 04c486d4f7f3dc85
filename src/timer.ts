// A timeout of any length. setTimeout fires at once when asked for more than 2^31-1 ms (24.8 days), so
// `-interval 2592000` (30 days) re-read the store without pause and a `reload_timeout = "30d"` killed the
// command at once; longer waits are chained here.
const MAX_TIMEOUT_MS = 2 ** 31 - 1;

export interface LongTimeout {
  cancel(): void;
}

export function setLongTimeout(fire: () => void, ms: number): LongTimeout {
  let timer: ReturnType<typeof setTimeout>;
  const arm = (left: number) => {
    timer = setTimeout(() => (left > MAX_TIMEOUT_MS ? arm(left - MAX_TIMEOUT_MS) : fire()), Math.min(left, MAX_TIMEOUT_MS));
  };
  arm(ms);
  return { cancel: () => clearTimeout(timer) };
}
