/** What every `edgeftp` subcommand shares: its one-line errors, the configuration it reads, files it gives to the node's user. */
import { chownSync, existsSync, statSync } from "node:fs";
import { configOptions, loadConfig, type ConfigOption } from "../config/load.js";
import type { Config } from "../config/schema.js";

/** A failure the user can fix: reported as its message alone. */
export class CliError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "CliError";
  }
}

/** Options every subcommand has; config flags arrive under their derived attribute names. */
export interface CommonOptions {
  config?: string;
  [attribute: string]: unknown;
}

/** The keys that say where accounts live: what `user` commands need to find the same data as `serve`. */
export const isDataOption = (option: ConfigOption): boolean =>
  option.path === "dataDir" || option.path.startsWith("accounts.");

/**
 * The configuration from the file, the environment and the flags of the config keys `include`
 * selects: a command's own options (`user add --tls-policy`, the account's) never pass for the
 * node's keys of the same name.
 */
export function configFrom(options: CommonOptions, include: (option: ConfigOption) => boolean = () => true): Config {
  const flags = Object.fromEntries(configOptions.filter(include).map((o) => [o.attribute, (options as Record<string, unknown>)[o.attribute]]));
  // An empty EDGEFTP_CONFIG is unset, as every other EDGEFTP_* variable is.
  return loadConfig({ file: options.config || undefined, env: process.env, flags });
}

/**
 * Run as root for a node that runs as another user (the data dir's owner: a service account), what
 * a command created (still root's) is given to that user, or the node could not open or write it.
 */
export function giveToNodeUser(dataDir: string, paths: string[]): void {
  if (process.getuid?.() !== 0 || !existsSync(dataDir)) return;
  const owner = statSync(dataDir);
  if (owner.uid === 0) return;
  for (const path of paths) if (existsSync(path) && statSync(path).uid === 0) chownSync(path, owner.uid, owner.gid);
}

/** The SQLite database and its journal files. */
export function databaseFiles(sqlitePath: string): string[] {
  return [sqlitePath, `${sqlitePath}-wal`, `${sqlitePath}-shm`];
}

/** The first line of `input` without its line ending (all of it when there is no newline). */
export async function readFirstLine(input: NodeJS.ReadStream): Promise<string> {
  input.setEncoding("utf8");
  let text = "";
  // Leaving the loop early destroys the stream: the rest of stdin is not ours to read.
  for await (const chunk of input) {
    text += chunk as string;
    if (text.includes("\n")) break;
  }
  return text.split("\n", 1)[0].replace(/\r$/, "");
}
