// Consul's catalog as template data, against test/consul-double.ts (its catalog part is
// test/consul-catalog-double.ts, written from Consul's API documentation; nothing here has met a real
// Consul): each catalog function in both engines, byte for byte; the double's blocking index semantics;
// compile-time and render-time discovery of dependencies; -onetime and -watch as a user runs them, read
// from the files written, confd's exit code and its debug log.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { connect } from "../src/backends/consul.ts";
import { catalogOf, type CatalogSource } from "../src/catalog.ts";
import { CatalogRound } from "../src/catalog-round.ts";
import { scanGoTree } from "../src/catalog-scan.ts";
import { CatalogReads } from "../src/catalog-values.ts";
import { ConfdError } from "../src/errors.ts";
import { funcNames } from "../src/funcs.ts";
import { parseGoTemplate } from "../src/gotemplate-parse.ts";
import { compileHandlebars } from "../src/handlebars.ts";
import { defaults } from "../src/options.ts";
import type { StoreClient } from "../src/store.ts";
import { instantiateGo } from "../src/template-go.ts";
import { instantiateHandlebars } from "../src/template-handlebars.ts";
import { startConsulDouble, type ConsulDouble, type RecordedRequest } from "./consul-double.ts";
import { eventIndex } from "./consul-catalog-double.ts";
import { Lines, ROOT, runConfd, settlesAtOnce, spawnConfd, tempDir, writeTree } from "./helpers.ts";

const tmp = tempDir("confd-catalog-");
afterAll(() => tmp.cleanup());
let counter = 0;

/** The catalog the function tests read: web instances in every state, registered out of order, a db, a second datacenter, events. */
function fill(d: ConsulDouble): void {
  const c = d.catalog;
  c.register({ node: "n3", address: "10.0.0.3", service: { id: "web3", name: "web", port: 80, tags: ["v2"] }, checks: [{ id: "web3-http", status: "critical", serviceId: "web3", output: "HTTP 500" }] });
  const n1 = { node: "n1", address: "10.0.0.1", nodeId: "id-1", nodeMeta: { rack: "r1" } };
  c.register({ ...n1, service: { id: "web1", name: "web", port: 80, tags: ["v1", "blue"], meta: { zone: "a", version: "1.0" } }, checks: [{ id: "web1-http", status: "passing", serviceId: "web1" }] });
  c.register({
    node: "n2",
    address: "10.0.0.2",
    service: { id: "web2", name: "web", port: 8080, address: "192.168.0.2", tags: ["green"] },
    checks: [
      { id: "serfHealth", name: "Serf Health Status", status: "warning" },
      { id: "web2-http", status: "passing", serviceId: "web2" },
    ],
  });
  // No checks: passing, as Consul counts it.
  c.register({ ...n1, service: { id: "web1b", name: "web", port: 81, tags: ["blue"] } });
  c.register({ node: "n0", address: "10.0.0.9", service: { id: "web0", name: "web", port: 80 }, checks: [{ id: "_service_maintenance:web0", status: "critical", serviceId: "web0" }] });
  c.register({ ...n1, service: { id: "db1", name: "db", port: 5432, tags: ["primary"] }, checks: [{ id: "db1-tcp", status: "passing", serviceId: "db1" }] });
  c.register({ node: "far", address: "10.9.0.1", datacenter: "dc2", service: { id: "web-far", name: "web", port: 80 } });
  c.fireEvent("deploy", "v1");
  c.fireEvent("other", "x");
  c.fireEvent("deploy", Buffer.from([0x76, 0x32, 0xff]));
}

describe("the catalog functions, in both engines", () => {
  let double: ConsulDouble;
  let client: StoreClient;
  let catalog: CatalogSource;

  beforeAll(async () => {
    double = startConsulDouble();
    fill(double);
    client = await connect({ ...defaults(), backend: "consul", nodes: [double.node] });
    catalog = catalogOf(client)!;
  });

  afterAll(async () => {
    await client.close();
    await double.stop();
  });

  /** Compiles and renders as a resource's worker does, the catalog answered by the consul client as the render asks. */
  async function render(engine: "go" | "handlebars", src: string, store: Map<string, string> = new Map()): Promise<string> {
    const file = join(tmp.path, `t${++counter}.${engine === "go" ? "tmpl" : "hbs"}`);
    writeFileSync(file, src);
    const run = engine === "go" ? instantiateGo({ engine, file, tree: parseGoTemplate("t.tmpl", src, funcNames()) }) : instantiateHandlebars(compileHandlebars(file, tmp.path));
    const round = new CatalogRound(catalog);
    return run(store, new CatalogReads([], (deps) => round.answers(deps)));
  }

  interface Case {
    name: string;
    go: string;
    hbs: string;
    out: string;
  }

  const cases: Case[] = [
    {
      name: "service: healthy instances only, sorted by node then ID, as consul-template writes it",
      go: '{{range service "web"}}server {{.Address}}:{{.Port}};{{end}}',
      hbs: '{{#each (service "web")}}server {{Address}}:{{Port}};{{/each}}',
      out: "server 10.0.0.1:80;server 10.0.0.1:81;",
    },
    {
      name: 'service "any": every instance, with the status its checks add up to',
      go: '{{range service "web" "any"}}{{.Node}}/{{.ID}}={{.Status}} {{end}}',
      hbs: '{{#each (service "web" "any")}}{{Node}}/{{ID}}={{Status}} {{/each}}',
      out: "n0/web0=maintenance n1/web1=passing n1/web1b=passing n2/web2=warning n3/web3=critical ",
    },
    {
      name: "service filters: several, and written after a |",
      go: '{{range service "web" "warning,critical"}}{{.ID}} {{end}}|{{range service "web|maintenance"}}{{.ID}}{{end}}',
      hbs: '{{#each (service "web" "warning,critical")}}{{ID}} {{/each}}|{{#each (service "web|maintenance")}}{{ID}}{{/each}}',
      out: "web2 web3 |web0",
    },
    {
      name: "service with a tag and with a datacenter",
      go: '{{range service "blue.web"}}{{.ID}} {{end}}|{{range service "web@dc2"}}{{.Address}}:{{.Port}} {{.NodeDatacenter}}{{end}}',
      hbs: '{{#each (service "blue.web")}}{{ID}} {{/each}}|{{#each (service "web@dc2")}}{{Address}}:{{Port}} {{NodeDatacenter}}{{/each}}',
      out: "web1 web1b |10.9.0.1:80 dc2",
    },
    {
      name: "an instance's fields: node, tags (sorted), meta, checks",
      go: '{{range service "v1.web"}}{{.Node}} {{.NodeID}} {{.NodeAddress}} {{.NodeDatacenter}} {{.Name}} {{join .Tags ","}} {{.Meta.version}} {{.ServiceMeta.zone}} {{.NodeMeta.rack}} {{range $k, $v := .Meta}}{{$k}}={{$v}};{{end}}{{end}}',
      hbs: '{{#each (service "v1.web")}}{{Node}} {{NodeID}} {{NodeAddress}} {{NodeDatacenter}} {{Name}} {{join Tags ","}} {{Meta.version}} {{ServiceMeta.zone}} {{NodeMeta.rack}} {{#each Meta}}{{@key}}={{this}};{{/each}}{{/each}}',
      out: "n1 id-1 10.0.0.1 dc1 web blue,v1 1.0 a r1 version=1.0;zone=a;",
    },
    {
      name: "the service's address, else its node's; the instance's checks, the node's among them",
      go: '{{range service "web" "warning"}}{{.Address}} {{.NodeAddress}} {{range .Checks}}{{.CheckID}}:{{.Status}} {{end}}{{end}}',
      hbs: '{{#each (service "web" "warning")}}{{Address}} {{NodeAddress}} {{#each Checks}}{{CheckID}}:{{Status}} {{/each}}{{/each}}',
      out: "192.168.0.2 10.0.0.2 serfHealth:warning web2-http:passing ",
    },
    {
      name: "a port is an int",
      go: '{{range service "web" "warning"}}{{printf "%d %T" .Port .Port}} {{add .Port 1}} {{eq .Port 8080}}{{end}}',
      hbs: '{{#each (service "web" "warning")}}{{printf "%d %T" Port Port}} {{add Port 1}} {{eq Port 8080}}{{/each}}',
      out: "8080 int 8081 true",
    },
    {
      name: "no instance: an empty list",
      go: '{{range service "nope"}}x{{else}}none{{end}} {{len (service "nope")}}',
      hbs: '{{#each (service "nope")}}x{{else}}none{{/each}} {{len (service "nope")}}',
      out: "none 0",
    },
    {
      name: "services: every service with every tag its instances carry, sorted; in another datacenter",
      go: '{{range services}}{{.Name}}:{{join .Tags ","}} {{end}}|{{range services "@dc2"}}{{.Name}}{{end}}',
      hbs: '{{#each (services)}}{{Name}}:{{join Tags ","}} {{/each}}|{{#each (services "@dc2")}}{{Name}}{{/each}}',
      out: "db:primary web:blue,green,v1,v2 |web",
    },
    {
      name: "nodes, sorted by name",
      go: '{{range nodes}}{{.Node}}={{.Address}}@{{.Datacenter}}{{with .Meta.rack}}[{{.}}]{{end}} {{end}}',
      hbs: '{{#each (nodes)}}{{Node}}={{Address}}@{{Datacenter}}{{#with Meta.rack}}[{{this}}]{{/with}} {{/each}}',
      out: "n0=10.0.0.9@dc1 n1=10.0.0.1@dc1[r1] n2=10.0.0.2@dc1 n3=10.0.0.3@dc1 ",
    },
    {
      name: "checks in a state, sorted by node and check",
      go: '{{range checks "critical"}}{{.Node}} {{.CheckID}} {{.ServiceName}} {{.Output}};{{end}}|{{range checks "warning"}}{{.Name}}{{end}}',
      hbs: '{{#each (checks "critical")}}{{Node}} {{CheckID}} {{ServiceName}} {{Output}};{{/each}}|{{#each (checks "warning")}}{{Name}}{{/each}}',
      out: "n0 _service_maintenance:web0 web ;n3 web3-http web HTTP 500;|Serf Health Status",
    },
    {
      name: "events of a name, oldest first, payload bytes as they were; every event",
      go: '{{range events "deploy"}}{{.Name}}={{.Payload}}@{{.LTime}} {{end}}|{{range events}}{{.Name}} {{end}}',
      hbs: '{{#each (events "deploy")}}{{Name}}={{Payload}}@{{LTime}} {{/each}}|{{#each (events)}}{{Name}} {{/each}}',
      out: "deploy=v1@1 deploy=v2\udcff@3 |deploy other deploy ",
    },
    {
      name: "an argument from the store",
      go: '{{range service (getv "/svc")}}{{.ID}}{{end}}',
      hbs: '{{#each (service (getv "/svc"))}}{{ID}}{{/each}}',
      out: "db1",
    },
  ];

  for (const c of cases) {
    test(c.name, async () => {
      const store = new Map([["/svc", "db"]]);
      expect(await render("go", c.go, store)).toBe(c.out);
      expect(await render("handlebars", c.hbs, store)).toBe(c.out);
    });
  }

  test("Go sees Go structs: %v and %T print them as consul-template's, a misspelt field is an error", async () => {
    expect(await render("go", '{{range services}}{{printf "%v|%+v|%T" . . .}};{{end}}')).toBe(
      "{db [primary]}|{Name:db Tags:[primary]}|dependency.CatalogSnippet;{web [blue green v1 v2]}|{Name:web Tags:[blue green v1 v2]}|dependency.CatalogSnippet;",
    );
    expect(await render("go", '{{range events "other"}}{{printf "%v" .}}{{end}}')).toBe(`{${"ffffffff-ffff-fff0-0000-000000000002"} other x    1 2}`);
    await expect(render("go", '{{range service "web"}}{{.Adress}}{{end}}')).rejects.toThrow("can't evaluate field Adress in type dependency.HealthService");
  });

  test("a template that waits for an answer it then fails on is not failed by the empty list it had first", async () => {
    expect(await render("go", '{{(index (service "web") 0).ID}}')).toBe("web1");
  });

  test("arguments that are no dependency: an error at load naming file and line, or at render naming the key that held it", async () => {
    const file = join(tmp.path, "bad.tmpl");
    const src = 'x\n{{range service "web" "bogus"}}{{end}}';
    let err = (() => {
      try {
        scanGoTree(parseGoTemplate("bad.tmpl", src, funcNames()), file);
      } catch (e) {
        return e;
      }
    })() as ConfdError;
    expect(err).toBeInstanceOf(ConfdError);
    expect(err.describe()).toBe(`${file}:2:9: service "web" "bogus": a health filter must be one of any, critical, maintenance, passing, warning`);
    writeFileSync(join(tmp.path, "bad.hbs"), 'x\n{{#each (service "web~n1")}}{{/each}}');
    err = (() => {
      try {
        compileHandlebars(join(tmp.path, "bad.hbs"), tmp.path);
      } catch (e) {
        return e;
      }
    })() as ConfdError;
    expect(err.describe()).toBe(`${join(tmp.path, "bad.hbs")}:2:9: service "web~n1": ~near (sorting by round-trip time) is not supported`);
    const store = new Map([["/filter", "s3cr3t"]]);
    for (const engine of ["go", "handlebars"] as const) {
      const failure = (await render(engine, '{{service "web" (getv "/filter")}}', store).catch((e: unknown) => e)) as ConfdError;
      expect(failure.message).toContain("a health filter must be one of");
      expect(failure.message).not.toContain("s3cr3t");
      expect(failure.context.key).toBe("/filter");
    }
  });
});

describe("the double's blocking queries, as Consul documents them", () => {
  const get = (d: ConsulDouble, path: string, query = "") => fetch(`${d.url}${path}${query}`);

  test("a health query is held until its service changes, not for another service's change", async () => {
    const d = startConsulDouble();
    try {
      d.catalog.register({ node: "n1", address: "10.0.0.1", service: { name: "web", port: 80 } });
      d.catalog.register({ node: "n1", address: "10.0.0.1", service: { name: "db", port: 5432 } });
      const first = await get(d, "/v1/health/service/web");
      const index = first.headers.get("x-consul-index")!;
      const held = get(d, "/v1/health/service/web", `?index=${index}&wait=60s`);
      const isHeld = (r: RecordedRequest) => r.path === "/v1/health/service/web" && r.query.index === index;
      const request = await d.waitForRequest(isHeld);
      d.catalog.register({ node: "n2", address: "10.0.0.2", service: { name: "db", port: 5432 } });
      // The db write is in, and the query on web still held: a request after it is answered first.
      expect((await get(d, "/v1/health/service/db")).status).toBe(200);
      expect(await settlesAtOnce(request.ended)).toBe(false);
      d.catalog.register({ node: "n2", address: "10.0.0.2", service: { name: "web", port: 80 } });
      const answer = await held;
      expect(Number(answer.headers.get("x-consul-index"))).toBeGreaterThan(Number(index));
      expect(((await answer.json()) as unknown[]).length).toBe(2);
    } finally {
      await d.stop();
    }
  });

  test("an event list's index is a hash of the newest event's ID, beyond 2^53, and a query waits for it to differ", async () => {
    const d = startConsulDouble();
    try {
      const { id, index } = d.catalog.fireEvent("deploy", "1");
      expect(index).toBe(eventIndex(id));
      expect(BigInt(index) > 2n ** 53n).toBe(true);
      const listed = await get(d, "/v1/event/list", "?name=deploy");
      expect(listed.headers.get("x-consul-index")).toBe(index);
      const held = get(d, "/v1/event/list", `?name=deploy&index=${index}`);
      await d.waitForRequest((r) => r.path === "/v1/event/list" && r.query.index === index);
      const next = d.catalog.fireEvent("deploy", "2");
      const answer = await held;
      expect(answer.headers.get("x-consul-index")).toBe(next.index);
      expect(((await answer.json()) as { Payload: string }[]).map((e) => Buffer.from(e.Payload, "base64").toString())).toEqual(["1", "2"]);
    } finally {
      await d.stop();
    }
  });
});

/** A confdir of resources, each a template and its conf.d file, writing to out/<name>. */
function confdir(resources: Record<string, { template: string; ext?: string; keys?: string[] }>): { dir: string; out: (name: string) => string; dest: (name: string) => string } {
  const dir = join(tmp.path, `c${++counter}`);
  const files: Record<string, string> = { "out/.keep": "" };
  for (const [name, r] of Object.entries(resources)) {
    const src = `${name}.${r.ext ?? "tmpl"}`;
    files[`templates/${src}`] = r.template;
    files[`conf.d/${name}.toml`] = `[template]\nsrc = "${src}"\ndest = ${JSON.stringify(join(dir, "out", name))}\nkeys = ${JSON.stringify(r.keys ?? [])}\n`;
  }
  writeTree(dir, files);
  return { dir, out: (name) => readFileSync(join(dir, "out", name), "utf8"), dest: (name) => join(dir, "out", name) };
}

const UPSTREAM_GO = 'upstream web {\n{{range service "web"}}  server {{.Address}}:{{.Port}};\n{{end}}}\n';
const UPSTREAM_HBS = 'upstream web {\n{{#each (service "web")}}  server {{Address}}:{{Port}};\n{{/each~}}\n}\n';
const isHealthWeb = (r: RecordedRequest) => r.method === "GET" && r.path === "/v1/health/service/web";

describe("-onetime", () => {
  test("dependencies named in templates are read before the first render, once for every resource that names them", async () => {
    const d = startConsulDouble();
    try {
      d.catalog.register({ node: "n2", address: "10.0.0.2", service: { name: "web", port: 8080 } });
      d.catalog.register({ node: "n1", address: "10.0.0.1", service: { name: "web", port: 80 } });
      const c = confdir({ go: { template: UPSTREAM_GO }, hbs: { template: UPSTREAM_HBS, ext: "hbs" } });
      const r = await runConfd(["-onetime", "-backend", "consul", "-node", d.node, "-confdir", c.dir, "-config-file", join(c.dir, "none"), "-log-level", "debug"]);
      expect(r.code).toBe(0);
      const expected = "upstream web {\n  server 10.0.0.1:80;\n  server 10.0.0.2:8080;\n}\n";
      expect(c.out("go")).toBe(expected);
      expect(c.out("hbs")).toBe(expected);
      // One read for both resources, given to each worker with its values: no render had to ask for it.
      expect(d.requests.filter(isHealthWeb).map((q) => q.query)).toEqual([{ passing: "true" }]);
      expect(r.stderr).not.toContain("Rendering asked for");
    } finally {
      await d.stop();
    }
  });

  test("a dependency whose argument comes from the store is learnt by rendering, and logged without the value", async () => {
    const d = startConsulDouble();
    try {
      d.set("app/service", "web");
      d.catalog.register({ node: "n1", address: "10.0.0.1", service: { name: "web", port: 80 } });
      const c = confdir({
        go: { template: '{{range service (getv "/app/service")}}{{.Address}}:{{.Port}}{{end}}\n', keys: ["/app"] },
        hbs: { template: '{{#each (service (getv "/app/service"))}}{{Address}}:{{Port}}{{/each}}\n', keys: ["/app"], ext: "hbs" },
      });
      const r = await runConfd(["-onetime", "-backend", "consul", "-node", d.node, "-confdir", c.dir, "-config-file", join(c.dir, "none"), "-log-level", "debug"]);
      expect(r.code).toBe(0);
      expect(c.out("go")).toBe("10.0.0.1:80\n");
      expect(c.out("hbs")).toBe("10.0.0.1:80\n");
      const asked = r.stderr.split("\n").filter((l) => l.includes("Rendering asked for"));
      expect(asked).toHaveLength(2);
      for (const line of asked) expect(line).toContain("Rendering asked for health.service(<a value from the store>): fetching");
      expect(r.stderr).not.toContain("health.service(web");
      expect(d.requests.filter(isHealthWeb)).toHaveLength(1);
    } finally {
      await d.stop();
    }
  });

  test("a catalog template with another backend: one line naming the template's file and line, exit 1", async () => {
    for (const [ext, template] of [
      ["tmpl", 'header\n{{range service "web"}}{{.Address}}{{end}}\n'],
      ["hbs", 'header\n{{#each (service "web")}}{{Address}}{{/each}}\n'],
    ] as const) {
      const c = confdir({ app: { template, ext } });
      writeFileSync(join(c.dir, "data.yaml"), "a: 1\n");
      const r = await runConfd(["-onetime", "-backend", "file", "-file", join(c.dir, "data.yaml"), "-confdir", c.dir, "-config-file", join(c.dir, "none")]);
      expect(r.code).toBe(1);
      const errors = r.stderr.split("\n").filter((l) => l.includes("ERROR"));
      expect(errors).toHaveLength(1);
      expect(errors[0]).toEndWith(`ERROR resource app: ${join(c.dir, "templates", `app.${ext}`)}:2:9: service reads Consul's service catalog: it needs -backend consul`);
    }
  });

  test("consul unreachable: the resource fails with the store's error, exit 1", async () => {
    const d = startConsulDouble();
    const node = d.node;
    await d.stop();
    const c = confdir({ app: { template: UPSTREAM_GO } });
    const r = await runConfd(["-onetime", "-backend", "consul", "-node", node, "-confdir", c.dir, "-config-file", join(c.dir, "none")]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`ERROR resource app: cannot read health.service(web|passing): the consul store cannot be reached: ${node}`);
  });
});

describe("-watch", () => {
  test("a new healthy instance reaches the files of the resources that read it, and only theirs, through one blocking query", async () => {
    const d = startConsulDouble();
    d.catalog.register({ node: "n1", address: "10.0.0.1", service: { name: "web", port: 80 }, checks: [{ id: "web-n1", status: "passing", serviceId: "web" }] });
    d.catalog.register({ node: "n1", address: "10.0.0.1", service: { name: "db", port: 5432 } });
    const c = confdir({
      go: { template: UPSTREAM_GO },
      hbs: { template: UPSTREAM_HBS, ext: "hbs" },
      db: { template: '{{range service "db"}}{{.Address}}:{{.Port}}\n{{end}}' },
    });
    const child = spawnConfd(["-watch", "-backend", "consul", "-node", d.node, "-confdir", c.dir, "-config-file", join(c.dir, "none"), "-log-level", "debug"]);
    const log = new Lines(child.stderr);
    const updated = (name: string, times: number) => log.waitForCount(new RegExp(`Target config ${escape(c.dest(name))} has been updated`), times);
    const outcomes = (name: string) => log.seen.filter((l) => new RegExp(`Target config ${escape(c.dest(name))} (has been updated|in sync)`).test(l)).length;
    try {
      await Promise.all([updated("go", 1), updated("hbs", 1), updated("db", 1)]);
      expect(c.out("go")).toBe("upstream web {\n  server 10.0.0.1:80;\n}\n");
      // Both resources on service "web" wait on one blocking query.
      const blocking = (r: RecordedRequest) => isHealthWeb(r) && r.query.index !== undefined;
      await d.waitForRequest(blocking);

      d.catalog.register({ node: "n2", address: "10.0.0.2", service: { name: "web", port: 8080 }, checks: [{ id: "web-n2", status: "passing", serviceId: "web" }] });
      await Promise.all([updated("go", 2), updated("hbs", 2)]);
      const both = "upstream web {\n  server 10.0.0.1:80;\n  server 10.0.0.2:8080;\n}\n";
      expect(c.out("go")).toBe(both);
      expect(c.out("hbs")).toBe(both);
      await log.waitFor(/Watch on health\.service\(web\|passing\) woke at index/);

      // Unhealthy, it leaves the files again.
      d.catalog.setCheck("n1", "web-n1", "critical", "connection refused");
      await Promise.all([updated("go", 3), updated("hbs", 3)]);
      expect(c.out("go")).toBe("upstream web {\n  server 10.0.0.2:8080;\n}\n");

      // The db resource was not rendered for web's changes: once its own change is synced, every render it
      // had shows, and there were two.
      d.catalog.register({ node: "n2", address: "10.0.0.2", service: { name: "db", port: 5432 } });
      await updated("db", 2);
      expect(c.out("db")).toBe("10.0.0.1:5432\n10.0.0.2:5432\n");
      expect(outcomes("db")).toBe(2);
      const held = d.requests.filter(blocking).map((r) => r.query.index);
      expect(held.length).toBeGreaterThan(0);
      expect(new Set(held).size).toBe(held.length);
      expect(log.text()).not.toContain("connection refused");
    } finally {
      child.kill("SIGTERM");
      expect(await child.exited).toBe(0);
      await d.stop();
    }
  });

  test("a service named by a key: a new name moves the resource's watch to the new service", async () => {
    const d = startConsulDouble();
    d.set("app/service", "web");
    d.catalog.register({ node: "n1", address: "10.0.0.1", service: { name: "web", port: 80 } });
    d.catalog.register({ node: "n1", address: "10.0.0.1", service: { name: "db", port: 5432 } });
    const c = confdir({ dyn: { template: '{{range service (getv "/app/service")}}{{.Address}}:{{.Port}}\n{{end}}', keys: ["/app"] } });
    const child = spawnConfd(["-watch", "-backend", "consul", "-node", d.node, "-confdir", c.dir, "-config-file", join(c.dir, "none"), "-log-level", "debug"]);
    const log = new Lines(child.stderr);
    const updated = (times: number) => log.waitForCount(new RegExp(`Target config ${escape(c.dest("dyn"))} has been updated`), times);
    const outcomes = () => log.seen.filter((l) => new RegExp(`Target config ${escape(c.dest("dyn"))} (has been updated|in sync)`).test(l)).length;
    try {
      await updated(1);
      expect(c.out("dyn")).toBe("10.0.0.1:80\n");
      await d.waitForRequest((r) => isHealthWeb(r) && r.query.index !== undefined);
      d.set("app/service", "db");
      await updated(2);
      expect(c.out("dyn")).toBe("10.0.0.1:5432\n");
      await log.waitFor(/Stopped watching health\.service\(<a value from the store>\): no resource reads it/);
      // web's blocking query is given up, and web is neither watched nor read again: its change renders
      // nothing; db's does, and it is the third render in all.
      expect(await d.requests.filter((r) => isHealthWeb(r) && r.query.index !== undefined).at(-1)!.ended).toBe("abandoned");
      const webReads = d.requests.filter(isHealthWeb).length;
      d.catalog.register({ node: "n2", address: "10.0.0.2", service: { name: "web", port: 80 } });
      d.catalog.register({ node: "n2", address: "10.0.0.2", service: { name: "db", port: 5432 } });
      await updated(3);
      expect(c.out("dyn")).toBe("10.0.0.1:5432\n10.0.0.2:5432\n");
      expect(outcomes()).toBe(3);
      expect(d.requests.filter(isHealthWeb)).toHaveLength(webReads);
      // The service's name is a value from the store: no log line shows it as a dependency.
      expect(log.text()).not.toMatch(/health\.service\((web|db)/);
    } finally {
      child.kill("SIGTERM");
      expect(await child.exited).toBe(0);
      await d.stop();
    }
  });

  test("events: a fired event reaches the file, its 64-bit index sent back as Consul sent it; a name never fired does not spin", async () => {
    const d = startConsulDouble();
    const first = d.catalog.fireEvent("deploy", "v1");
    const c = confdir({ deploys: { template: '{{range events "deploy"}}{{.Payload}}\n{{end}}' }, never: { template: '{{len (events "never")}}\n' } });
    const child = spawnConfd(["-watch", "-backend", "consul", "-node", d.node, "-confdir", c.dir, "-config-file", join(c.dir, "none"), "-log-level", "debug"]);
    const log = new Lines(child.stderr);
    const updated = (times: number, name = "deploys") => log.waitForCount(new RegExp(`Target config ${escape(c.dest(name))} has been updated`), times);
    const heldOn = (name: string, index: string) => d.waitForRequest((r) => r.path === "/v1/event/list" && r.query.name === name && r.query.index === index);
    try {
      await Promise.all([updated(1), updated(1, "never")]);
      expect(c.out("deploys")).toBe("v1\n");
      expect(c.out("never")).toBe("0\n");
      await heldOn("deploy", first.index);
      // No event of that name: Consul's index 1, on which a blocking query is held like any other.
      const never = await heldOn("never", "1");
      d.catalog.fireEvent("other", "x");
      d.catalog.fireEvent("deploy", "v2");
      await updated(2);
      expect(c.out("deploys")).toBe("v1\nv2\n");
      expect(await settlesAtOnce(never.ended)).toBe(false);
      expect(d.requests.filter((r) => r.query.name === "never" && r.query.index !== undefined)).toHaveLength(1);
    } finally {
      child.kill("SIGTERM");
      expect(await child.exited).toBe(0);
      await d.stop();
    }
  });

  test("Consul going away and coming back: said once, and the files catch up", async () => {
    const d = startConsulDouble();
    d.catalog.register({ node: "n1", address: "10.0.0.1", service: { name: "web", port: 80 } });
    const c = confdir({ go: { template: UPSTREAM_GO } });
    const child = spawnConfd(["-watch", "-backend", "consul", "-node", d.node, "-confdir", c.dir, "-config-file", join(c.dir, "none"), "-log-level", "debug"]);
    const log = new Lines(child.stderr);
    const updated = (times: number) => log.waitForCount(new RegExp(`Target config ${escape(c.dest("go"))} has been updated`), times);
    try {
      await updated(1);
      await d.waitForRequest((r) => isHealthWeb(r) && r.query.index !== undefined);
      await d.stop();
      await log.waitFor(/ERROR store connection lost: .*cannot be reached/);
      d.catalog.register({ node: "n2", address: "10.0.0.2", service: { name: "web", port: 8080 } });
      d.restart();
      await updated(2);
      expect(c.out("go")).toBe("upstream web {\n  server 10.0.0.1:80;\n  server 10.0.0.2:8080;\n}\n");
      expect(log.seen.filter((l) => l.includes("ERROR"))).toHaveLength(1);
    } finally {
      child.kill("SIGTERM");
      expect(await child.exited).toBe(0);
      await d.stop();
    }
  });
});

describe("examples/service-discovery", () => {
  test("renders an nginx upstream from the healthy instances of service web", async () => {
    const d = startConsulDouble();
    try {
      d.catalog.register({ node: "app2", address: "10.0.1.2", service: { name: "web", port: 8080 }, checks: [{ id: "http", status: "passing", serviceId: "web" }] });
      d.catalog.register({ node: "app1", address: "10.0.1.1", service: { name: "web", port: 8080 }, checks: [{ id: "http", status: "passing", serviceId: "web" }] });
      d.catalog.register({ node: "app3", address: "10.0.1.3", service: { name: "web", port: 8080 }, checks: [{ id: "http", status: "critical", serviceId: "web" }] });
      const example = join(ROOT, "examples", "service-discovery");
      // The resource's dest is relative, as in the example's own run from the repository: here, below cwd.
      const cwd = join(tmp.path, `example${++counter}`);
      mkdirSync(join(cwd, "examples", "service-discovery", "out"), { recursive: true });
      const r = await runConfd(["-onetime", "-config-file", join(example, "confd.toml"), "-confdir", example, "-node", d.node], { cwd });
      expect(r.code).toBe(0);
      expect(readFileSync(join(cwd, "examples", "service-discovery", "out", "upstream.conf"), "utf8")).toBe(
        [
          "# Rendered by confd from Consul's catalog: the healthy instances of service web. Do not edit.",
          "upstream web {",
          "    server 10.0.1.1:8080;",
          "    server 10.0.1.2:8080;",
          "}",
          "",
          "server {",
          "    listen 80;",
          "    location / {",
          "        proxy_pass http://web;",
          "    }",
          "}",
          "",
        ].join("\n"),
      );
    } finally {
      await d.stop();
    }
  });
});

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
