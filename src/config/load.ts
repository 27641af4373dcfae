/**
 * Loading the configuration: schema defaults, then the YAML file, then `EDGEFTP_*` environment
 * variables, then flags, validated by the one schema in `schema.ts`.
 *
 * The flag and environment variable of every key are derived from its path by walking the
 * schema, so adding a key to the schema adds its flag, its variable and its documentation.
 */
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseDocument } from "yaml";
import { z } from "zod";
import type { Account } from "../accounts/types.js";
import { configSchema, type Config } from "./schema.js";

/** An invalid or unreadable configuration; the message is one line that names the key or file. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

/** The kind of value a configuration key holds, as the CLI and generated docs present it. */
export type ConfigOptionKind = "string" | "number" | "boolean" | "enum";

/** One configuration key (a leaf of the schema) and every name it can be set by. */
export interface ConfigOption {
  /** Dotted path in the YAML file, e.g. `pasv.ports`. */
  readonly path: string;
  /** Long command-line flag, e.g. `--pasv-ports`. */
  readonly flag: string;
  /** Key of the flag's value in {@link LoadConfigInput.flags} (commander's attribute name), e.g. `pasvPorts`. */
  readonly attribute: string;
  /** Environment variable, e.g. `EDGEFTP_PASV_PORTS`. */
  readonly env: string;
  readonly kind: ConfigOptionKind;
  /** The accepted values when {@link kind} is `enum`. */
  readonly choices?: readonly string[];
  /** The schema default. */
  readonly default: string | number | boolean;
  /** The schema's description of the key. */
  readonly description: string;
}

/** Where {@link loadConfig} reads the configuration from. */
export interface LoadConfigInput {
  /** YAML file; its keys are the schema's nested keys. Optional: without it only defaults, env and flags apply. */
  file?: string;
  /** Usually `process.env`; `EDGEFTP_*` variables named by {@link configOptions} are read, others ignored. */
  env: NodeJS.ProcessEnv;
  /** Flag values keyed by {@link ConfigOption.attribute} (what commander's `opts()` returns); other keys are ignored. */
  flags: Record<string, unknown>;
}

/** Absolute locations of the embedded default's data. */
export interface DataPaths {
  dataDir: string;
  /** The SQLite accounts file: `accounts.sqlitePath`, or `<dataDir>/accounts.db`. */
  sqlitePath: string;
  /** Parent of the default homes, `<dataDir>/homes`. */
  homesDir: string;
}

const ENV_PREFIX = "EDGEFTP_";

/** Every configuration key, in schema order, with its flag, environment variable, default and description. */
export const configOptions: readonly ConfigOption[] = deriveOptions();

/**
 * Builds the configuration with precedence flag > environment > YAML file > schema default, and
 * validates it. An empty environment variable counts as unset. Throws {@link ConfigError} for a
 * missing or malformed file, an unknown key, or an invalid value.
 */
export function loadConfig({ file, env, flags }: LoadConfigInput): Config {
  const raw = file === undefined ? {} : readYamlFile(file);
  // Where each overridden value came from, so an error points at the flag or variable to fix.
  const sources = new Map<string, string>();
  for (const option of configOptions) {
    const fromFlag = flags[option.attribute];
    const fromEnv = env[option.env];
    if (fromFlag !== undefined) {
      if (setAtPath(raw, option.path, fromFlag)) sources.set(option.path, `from ${option.flag}`);
    } else if (fromEnv !== undefined && fromEnv !== "") {
      if (setAtPath(raw, option.path, fromEnv)) sources.set(option.path, `from ${option.env}`);
    }
  }
  const result = configSchema.safeParse(raw, { error: plainMessage });
  if (result.success) return result.data;
  const fileSource = file === undefined ? undefined : `in ${file}`;
  const problems = result.error.issues.flatMap((issue) => describeIssue(issue, sources, fileSource));
  // Checks sharing a message (a port both fractional and too big) report it once.
  throw new ConfigError(`config: ${[...new Set(problems)].join("; ")}`);
}

/**
 * Absolute data locations of `config`. A relative `dataDir` or `accounts.sqlitePath` is taken
 * relative to the current directory, as the default `./edgeftp-data` is.
 */
export function resolveDataPaths(config: Config): DataPaths {
  const dataDir = resolve(config.dataDir);
  return {
    dataDir,
    sqlitePath: config.accounts.sqlitePath === "" ? join(dataDir, "accounts.db") : resolve(config.accounts.sqlitePath),
    homesDir: join(dataDir, "homes"),
  };
}

/** The local directory mapped to `account`'s root: its own `home`, or `<dataDir>/homes/<name>`. */
export function homeFor(config: Config, account: Pick<Account, "name" | "home">): string {
  return account.home ?? join(resolveDataPaths(config).homesDir, account.name);
}

function readYamlFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT") throw new ConfigError(`config: file ${file} not found`);
    if (code === "EISDIR") throw new ConfigError(`config: ${file} is a directory, not a YAML file`);
    throw new ConfigError(`config: cannot read ${file}: ${(err as Error).message}`);
  }
  const doc = parseDocument(text);
  const [error] = doc.errors;
  if (error !== undefined) {
    // The library's message continues with a source excerpt on further lines; its first line
    // already says what is wrong and where ("... at line 3, column 5:").
    const reason = error.message.split("\n", 1)[0].replace(/:$/, "");
    throw new ConfigError(`config: ${file}: invalid YAML: ${reason}`);
  }
  const value: unknown = doc.toJS();
  // An empty file (or one holding only comments) is a valid file that sets nothing.
  if (value === null || value === undefined) return {};
  if (!isPlainObject(value)) throw new ConfigError(`config: ${file}: expected a mapping of keys at the top level`);
  return value;
}

/**
 * Sets `value` at the dotted `path` of `target`, creating missing sections. Returns false,
 * changing nothing, when a section on the way is not a mapping: the file's own error about that
 * section is then the one reported, rather than hidden by the override.
 */
function setAtPath(target: Record<string, unknown>, path: string, value: unknown): boolean {
  const keys = path.split(".");
  const last = keys.pop() as string;
  let node = target;
  for (const key of keys) {
    const next = node[key] ?? {};
    if (!isPlainObject(next)) return false;
    node[key] = next;
    node = next;
  }
  node[last] = value;
  return true;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * Short messages for zod's generic issues; messages written in the schema take precedence.
 * Returning undefined keeps zod's own message.
 */
function plainMessage(issue: z.core.$ZodRawIssue): string | undefined {
  switch (issue.code) {
    case "invalid_type":
      return issue.expected === "object" ? "expected a mapping of keys" : `expected a ${issue.expected}`;
    case "invalid_value":
      return `expected one of ${issue.values.map(String).join(", ")}`;
    default:
      return undefined;
  }
}

function describeIssue(issue: z.core.$ZodIssue, sources: Map<string, string>, fileSource: string | undefined): string[] {
  const at = issue.path.map(String);
  if (issue.code === "unrecognized_keys") {
    // Unknown keys can only come from the file: flags and variables exist for known keys only.
    const known = Object.keys(sectionShape(at)).join(", ");
    return issue.keys.map((key) => withSource(`${[...at, key].join(".")}: unknown key (known here: ${known})`, fileSource));
  }
  const path = at.join(".");
  return [withSource(`${path === "" ? "(top level)" : path}: ${issue.message}`, sources.get(path) ?? fileSource)];
}

function withSource(problem: string, source: string | undefined): string {
  return source === undefined ? problem : `${problem} (${source})`;
}

/** The fields of the schema section at `path` (the top level for an empty path). */
function sectionShape(path: readonly string[]): Record<string, z.ZodType> {
  let shape: Record<string, z.ZodType> = configSchema.shape;
  for (const key of path) {
    const { base } = unwrap(shape[key]);
    if (!(base instanceof z.ZodObject)) return {};
    shape = base.shape;
  }
  return shape;
}

/** Strips defaults and preprocessing to reach the schema that says what a key holds, keeping the first description met. */
function unwrap(schema: z.ZodType): { base: z.ZodType; description: string | undefined } {
  let base = schema;
  let description = schema.description;
  for (;;) {
    if (base instanceof z.ZodDefault || base instanceof z.ZodPrefault || base instanceof z.ZodOptional) {
      base = base.unwrap() as z.ZodType;
    } else if (base instanceof z.ZodPipe) {
      base = base.out as z.ZodType;
    } else {
      return { base, description };
    }
    description ??= base.description;
  }
}

/** Walks the schema's sections down to its leaves, giving each leaf its flag and environment variable. */
function deriveOptions(): ConfigOption[] {
  const defaults: unknown = configSchema.parse({});
  const options: ConfigOption[] = [];
  const byFlag = new Map<string, string>();
  const walk = (shape: Record<string, z.ZodType>, prefix: string[]): void => {
    for (const [key, field] of Object.entries(shape)) {
      const path = [...prefix, key];
      const { base, description } = unwrap(field);
      if (base instanceof z.ZodObject) {
        walk(base.shape, path);
        continue;
      }
      const dotted = path.join(".");
      // camelCase keys become words: pasv.allowForeignAddress → pasv allow foreign address.
      const words = path.flatMap((segment) => segment.split(/(?=[A-Z])/)).map((word) => word.toLowerCase());
      const flag = `--${words.join("-")}`;
      // Two paths deriving one flag (say `pasvPorts` beside `pasv.ports`) would shadow each other.
      const clash = byFlag.get(flag);
      if (clash !== undefined) throw new Error(`config schema: ${dotted} and ${clash} both derive ${flag}`);
      byFlag.set(flag, dotted);
      if (description === undefined) throw new Error(`config schema: ${dotted} has no description`);
      options.push({
        path: dotted,
        flag,
        attribute: words.map((word, i) => (i === 0 ? word : word[0].toUpperCase() + word.slice(1))).join(""),
        env: ENV_PREFIX + words.join("_").toUpperCase(),
        ...leafKind(base, dotted),
        default: valueAt(defaults, path) as ConfigOption["default"],
        description,
      });
    }
  };
  walk(configSchema.shape, []);
  return options;
}

function leafKind(base: z.ZodType, path: string): Pick<ConfigOption, "kind" | "choices"> {
  if (base instanceof z.ZodString) return { kind: "string" };
  if (base instanceof z.ZodNumber) return { kind: "number" };
  if (base instanceof z.ZodBoolean) return { kind: "boolean" };
  if (base instanceof z.ZodEnum) return { kind: "enum", choices: base.options.map(String) };
  throw new Error(`config schema: ${path}: no flag can be derived for this type`);
}

function valueAt(value: unknown, path: readonly string[]): unknown {
  return path.reduce<unknown>((node, key) => (isPlainObject(node) ? node[key] : undefined), value);
}
