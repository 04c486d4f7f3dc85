// How eagerly each JavaScript VM of confd (the main thread's, and every worker's) JIT-compiles. Most of
// confd's code runs once per change, and a change is rare: tier-up thresholds 16 times the default leave
// that code in the interpreter, while hot loops (a large template, a large data file) still compile
// within their first run. Measured on the compiled binary: per worker, over its first 100 syncs, JIT
// threads' CPU 0.18 -> 0.05 ms a sync and 0.5-1.3 MiB less RSS; on the main thread, an etcd watch's CPU
// per write 3.75 -> 3.2 ms (JIT thread 0.73 -> 0.15 ms) and -onetime on confd's integration fixture
// 84 -> 71 ms CPU. A policy applies to the VM that sets it: each thread sets its own.
const JIT_POLICY = 16;

export function lessJit(): void {
  Bun.unsafe.setJITPolicy(JIT_POLICY);
}
