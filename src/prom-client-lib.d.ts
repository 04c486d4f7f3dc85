// prom-client's modules by path, typed as its index exports them. metrics.ts imports these rather than the
// index, which also loads the default process metrics (and through them @opentelemetry/api), the
// Pushgateway, cluster aggregation and summaries: all of them would be embedded in the compiled binary.
declare module "prom-client/lib/registry.js" {
  import { Registry } from "prom-client";
  export default Registry;
}
declare module "prom-client/lib/counter.js" {
  import { Counter } from "prom-client";
  export default Counter;
}
declare module "prom-client/lib/gauge.js" {
  import { Gauge } from "prom-client";
  export default Gauge;
}
declare module "prom-client/lib/histogram.js" {
  import { Histogram } from "prom-client";
  export default Histogram;
}
