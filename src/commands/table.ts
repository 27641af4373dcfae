/** The command table: every verb this server understands, keyed by verb. */
import type { CommandSpec } from "./command.js";
import { accessCommands } from "./access.js";
import { dataSetupCommands } from "./data-setup.js";
import { fileCommands } from "./files.js";
import { infoCommands } from "./info.js";
import { listingCommands } from "./listing.js";
import { navigationCommands } from "./navigation.js";
import { parameterCommands } from "./parameters.js";
import { securityCommands } from "./security.js";
import { transferCommands } from "./transfer.js";

export function buildCommandTable(): ReadonlyMap<string, CommandSpec> {
  const table = new Map<string, CommandSpec>();
  for (const spec of [
    ...accessCommands,
    ...navigationCommands,
    ...parameterCommands,
    ...dataSetupCommands,
    ...transferCommands,
    ...listingCommands,
    ...fileCommands,
    ...infoCommands,
    ...securityCommands,
  ]) {
    if (table.has(spec.verb)) throw new Error(`command ${spec.verb} defined twice`);
    table.set(spec.verb, spec);
  }
  return table;
}
