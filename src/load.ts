// Loading a confdir as start-up does: every conf.d resource read and checked (resource.ts), and its
// template compiled by its engine (engines.ts), each template file once per engine. Shared by a real
// start (cli.ts, which gives each loaded resource a worker) and -check-config (check.ts, which only
// reports), so that the check accepts exactly what a start accepts. A resource that fails is left out,
// with its error, and the others are kept: start-up runs without it.
import { join } from "node:path";
import { checkCatalogSource } from "./catalog-scan.ts";
import { compileTemplate } from "./engines.ts";
import { applyFleetDefaults } from "./fleet.ts";
import { type ConfdError, withContext } from "./errors.ts";
import type { Config } from "./options.ts";
import type { CompiledTemplate } from "./protocol.ts";
import { loadResources, type Engine, type ResourceSpec } from "./resource.ts";

export interface LoadedTemplate {
  resource: ResourceSpec;
  template: CompiledTemplate;
}

export interface LoadedConfdir {
  loaded: LoadedTemplate[];
  errors: ConfdError[];
  warnings: string[];
  /** Distinct template files compiled (two resources may share one). */
  templates: number;
}

/** `catalogAvailable`: whether the store client reads Consul's catalog; a template that calls a catalog function needs it. */
export async function loadConfdir(config: Config, catalogAvailable: boolean, debug: (message: string) => void = () => {}): Promise<LoadedConfdir> {
  const resources = loadResources({ confdir: config.confdir, prefix: config.prefix, defaultEngine: config.templateEngine as Engine });
  applyFleetDefaults(resources.resources, config);
  const errors: ConfdError[] = [...resources.errors];
  const compiled = new Map<string, CompiledTemplate>();
  const loaded: LoadedTemplate[] = [];
  const templatesDir = join(config.confdir, "templates");
  for (const resource of resources.resources) {
    try {
      debug(`Resource ${resource.name}: ${resource.src} rendered with the ${resource.engine} engine`);
      const cacheKey = `${resource.engine}:${resource.src}`;
      const template = compiled.get(cacheKey) ?? (await compileTemplate(resource, templatesDir));
      compiled.set(cacheKey, template);
      checkCatalogSource(template.catalog, catalogAvailable);
      loaded.push({ resource, template });
    } catch (err) {
      errors.push(withContext(err, { resource: resource.name }));
    }
  }
  return { loaded, errors, warnings: resources.warnings, templates: compiled.size };
}
