// -check-config: the configuration a start would use, loaded by the code a start uses (config.ts for
// confd.toml and the options, load.ts for conf.d and the templates), with every problem collected instead
// of stopping at the first. Nothing else of a start happens: no store is contacted, no worker started, no
// file written, no command run.
import { join } from "node:path";
import { ConfdError, withContext } from "./errors.ts";
import type { FlagValues } from "./flags.ts";
import { loadConfig } from "./config.ts";
import { loadConfdir } from "./load.ts";

export interface CheckResult {
  /** One line per problem, then per warning, then a summary. */
  text: string;
  /** 0: every part is valid; 1: at least one problem. */
  code: 0 | 1;
}

/** Throws only a UsageError (a CONFD_* variable that cannot be read), which the CLI reports as for a start. */
export async function checkConfig(flags: FlagValues, env: Readonly<Record<string, string | undefined>>): Promise<CheckResult> {
  const problems: ConfdError[] = [];
  const { config, warnings } = loadConfig(flags, env, problems);
  const confdir = await loadConfdir(config, config.backend === "consul");
  problems.push(...confdir.errors);
  warnings.push(...confdir.warnings);
  // A start with nothing to render only warns; a check of nothing (a mistyped -confdir) must not pass.
  if (confdir.loaded.length === 0 && confdir.errors.length === 0) {
    problems.push(new ConfdError(`nothing to check: no template resources in ${join(config.confdir, "conf.d")}`, { flag: "-confdir" }));
  }

  const lines = [...problems.map((p) => withContext(p, {}).describe()), ...warnings.map((w) => `warning: ${w}`)];
  lines.push(
    problems.length === 0
      ? `${plural(confdir.loaded.length, "resource")}, ${plural(confdir.templates, "template")}: configuration OK`
      : `${plural(problems.length, "problem")}: configuration not valid`,
  );
  return { text: lines.join("\n") + "\n", code: problems.length === 0 ? 0 : 1 };
}

function plural(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? "" : "s"}`;
}
