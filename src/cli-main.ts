/**
 * The `edgeftp` command: `serve`, `user add|passwd|list|remove|set` and `config check` (loaded by
 * cli.ts, the entry point, once what must come first is in place).
 *
 * Every subcommand takes `--config FILE` and `--data-dir DIR`, so account management and the
 * server point at the same data; `serve` and `config check` take a flag for every configuration
 * key (derived from the schema by `config/load.ts`). Expected failures end as one line on stderr,
 * `edgeftp: <reason>`, and exit status 1.
 */
import { releaseEarlySighup } from "./node/early-sighup.js";
import { chownSync, existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, statSync } from "node:fs";
import { dirname, join, resolve, sep } from "node:path";
import { Command, Help, Option } from "commander";
import { stringify } from "yaml";
import { openAccountStore } from "./accounts/open.js";
import {
  AccountError,
  ALL_PERMISSIONS,
  PERMISSIONS,
  TLS_POLICIES,
  type TlsPolicy,
  READ_ONLY_PERMISSIONS,
  type Account,
  type AccountPatch,
  type AccountStore,
  type Permission,
} from "./accounts/types.js";
import { ConfigError, configOptions, homeFor, loadConfig, resolveDataPaths, type ConfigOption } from "./config/load.js";
import { formatConfigReference } from "./config/reference.js";
import type { Config } from "./config/schema.js";
import { formatDoctorReport, runDoctor } from "./node/doctor.js";
import { PassiveAddressPolicy } from "./data/passive-address.js";
import { EdgeNode } from "./node/edge-node.js";
import { claimRunMarker, type RunMarker } from "./node/run-marker.js";
import { selfSignedFiles } from "./tls/self-signed.js";
import { createLogger } from "./observe/logger.js";
import { LocalStorageFactory } from "./storage/local.js";
import { TlsContextProvider } from "./tls/tls-context.js";

/** A failure the user can fix: reported as its message alone. */
class CliError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "CliError";
  }
}

/** Options every subcommand has; config flags arrive under their derived attribute names. */
interface CommonOptions {
  config?: string;
  [attribute: string]: unknown;
}

const CONFIG_GROUP = "Configuration (flag > environment > --config file > default):";

/** Sizes on the command line (--quota-bytes, --bandwidth-*): binary multiples, 64K is 65,536 bytes. */
const SIZE_UNITS: Readonly<Record<string, number>> = { "": 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 };
const SIZE = /^(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?$/i;

/** The keys that say where accounts live: what `user` commands need to find the same data as `serve`. */
const isDataOption = (option: ConfigOption): boolean =>
  option.path === "dataDir" || option.path.startsWith("accounts.");

/** package.json's version (dist/src/cli-main.js → ../../package.json). */
const VERSION = (JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }).version;

/**
 * One line of help: Commander leaves a description unwrapped, however long, where the flags' column
 * leaves it under 40 columns (serve's flags do); such descriptions go below their flag, wrapped.
 */
function formatHelpItem(this: Help, term: string, termWidth: number, description: string, helper: Help): string {
  const width = helper.helpWidth ?? 80;
  if (!description || width - termWidth - 4 >= helper.minWidthToWrap) return Help.prototype.formatItem.call(this, term, termWidth, description, helper);
  const indent = " ".repeat(6);
  return `  ${term}\n${indent}${helper.boxWrap(description, width - indent.length).replace(/\n/g, `\n${indent}`)}`;
}

const program = new Command("edgeftp")
  .description("An FTP server for hosted edge nodes.")
  .version(VERSION, "-V, --version", "print the version")
  // Commander's `help` command goes one level deep (`help user add` shows `user`); --help works on every command.
  .helpCommand(false)
  .addHelpText(
    "after",
    "\nQuick start:\n  edgeftp user add alice --data-dir ./edgeftp-data\n  edgeftp serve --port 2121 --data-dir ./edgeftp-data",
  )
  .configureHelp({ formatItem: formatHelpItem })
  .configureOutput({
    // Commander's own errors ("error: unknown option '--x'\n(Did you mean --y?)") follow the
    // one-line `edgeftp: <reason>` form of ours. Help text goes through writeOut, untouched.
    outputError: (text, write) => write(`edgeftp: ${text.replace(/^error: /, "").trim().replace(/\s*\n\s*/g, " ")}\n`),
  });

withConfigOptions(program.command("serve"), () => true)
  .description("Run the FTP server.")
  .action((options: CommonOptions) => serve(options));

const user = program.command("user").description("Manage the accounts that may log in.");

const userAddCommand = withConfigOptions(user.command("add"), isDataOption)
  .description("Add an account. Prompts for the password on a terminal unless --password-stdin or --password is given.")
  .argument("<name>", "account name: 1-64 of A-Z a-z 0-9 . _ @ -, not starting with . or -")
  .option("--password-stdin", "read the password from the first line of standard input")
  .addOption(
    new Option("--password <password>", "the password (discouraged: visible to other local users and kept in shell history)")
      .conflicts("passwordStdin"),
  )
  .option("--home <dir>", "existing directory to use as the account's root (default: <dataDir>/homes/NAME, created)")
  .option("--disable", "create it unable to log in until `user set NAME --enable`");
withAccountSettings(userAddCommand)
  .option("--if-missing", "succeed without changes when the account already exists (for setup scripts)")
  .action((name: string, options: CommonOptions & PasswordOptions & SettingsOptions & AddOptions) => userAdd(name, options));

withConfigOptions(user.command("passwd"), isDataOption)
  .description("Change an account's password. Prompts on a terminal unless --password-stdin is given.")
  .argument("<name>", "account name")
  .option("--password-stdin", "read the password from the first line of standard input")
  .action((name: string, options: CommonOptions & PasswordOptions) => userPasswd(name, options));

withConfigOptions(user.command("list"), isDataOption)
  .description("List the accounts: name, enabled, permissions, home, and the TLS overrides and limits each has.")
  .action((options: CommonOptions) => userList(options));

withConfigOptions(user.command("remove"), isDataOption)
  .description("Remove an account. Its files are kept.")
  .argument("<name>", "account name")
  .action((name: string, options: CommonOptions) => userRemove(name, options));

const userSetCommand = withConfigOptions(user.command("set"), isDataOption)
  .description("Change an account's home, permissions, enabled state, TLS overrides or limits (quotas, bandwidth, sessions).")
  .argument("<name>", "account name")
  .option("--home <dir>", "existing directory to use as the account's root, or `default` for <dataDir>/homes/NAME")
  .option("--enable", "allow the account to log in")
  .addOption(new Option("--disable", "refuse the account's logins (keeps its settings and files)").conflicts("enable"))
  .option(
    "--recount-usage",
    "measure the account's quota usage again (after its files were changed other than through FTP), at its next login with no session of it open",
  );
withAccountSettings(userSetCommand)
  .action((name: string, options: CommonOptions & SettingsOptions & { recountUsage?: boolean }) => userSet(name, options));

const configCommand = program.command("config").description("Inspect the configuration.");

withConfigOptions(configCommand.command("check"), () => true)
  .description("Validate the configuration (the certificate files and a PASV hostname too, as serve does at start) and print the effective result as YAML.")
  .action(async (options: CommonOptions) => {
    const config = configFrom(options);
    const quiet = createLogger("silent");
    if (config.tls.cert) (await TlsContextProvider.create(config, quiet)).close();
    else TlsContextProvider.checkSettings(config);
    await new PassiveAddressPolicy(config.pasv.address, config.pasv.addressOverrides, quiet).refresh();
    process.stdout.write(stringify(config));
  });

withConfigOptions(configCommand.command("reference"), isDataOption)
  .description("Print every configuration key with its flag, environment variable and default, as a Markdown table.")
  .action(() => {
    process.stdout.write(formatConfigReference());
  });

withConfigOptions(program.command("doctor"), () => true)
  .description("Check a running or configured node from the outside: control port, passive range, advertised address, port 20, clock, accounts.")
  .option("--target <host>", "address this machine reaches the node's control port at (default: 127.0.0.1, or --host when specific)")
  .option("--user <name>", "also log in and check a PASV round trip as this account")
  .option("--password-stdin", "with --user: read the password from the first line of standard input")
  .action(async (options: CommonOptions & DoctorCliOptions) => {
    const config = configFrom(options);
    // Without the password the check would make a failed login, which counts towards a ban.
    if ((options.user !== undefined) !== (options.passwordStdin === true)) throw new CliError("doctor: --user and --password-stdin go together");
    const password = options.user !== undefined ? await readFirstLine(process.stdin) : undefined;
    const results = await runDoctor(config, { target: options.target, user: options.user, password });
    process.stdout.write(formatDoctorReport(results));
    if (results.some((r) => r.status === "fail")) throw new CliError(`doctor found ${results.filter((r) => r.status === "fail").length} problem(s)`);
  });

try {
  await program.parseAsync(process.argv);
} catch (err) {
  fail(err);
}

/**
 * Adds `--config` and the flags of the configuration keys `include` selects. No commander
 * defaults: an absent flag must stay absent so the environment and the file can supply the value.
 */
function withConfigOptions(command: Command, include: (option: ConfigOption) => boolean): Command {
  command.addOption(
    new Option("-c, --config <file>", "YAML configuration file (keys as printed by `edgeftp config check`)")
      .env("EDGEFTP_CONFIG")
      .helpGroup(CONFIG_GROUP),
  );
  for (const option of configOptions.filter(include)) {
    // A bare boolean flag means true (`--pasv-allow-foreign-address`); `--pasv-enabled false` turns one off.
    const value = option.kind === "boolean" ? "[bool]" : option.kind === "number" ? "<n>" : "<value>";
    const choices = option.choices === undefined ? "" : ` One of: ${option.choices.join(", ")}.`;
    command.addOption(
      new Option(
        `${option.flag} ${value}`,
        `${option.description}${choices} (default: ${JSON.stringify(option.default)}, env: ${option.env})`,
      ).helpGroup(CONFIG_GROUP),
    );
  }
  return command;
}

/** The settings `user add` and `user set` share: permissions, TLS overrides and limits. */
function withAccountSettings(command: Command): Command {
  return command
    .addOption(permissionsOption())
    .addOption(new Option("--read-only", `grant only ${READ_ONLY_PERMISSIONS.join(",")}`).conflicts("permissions"))
    .addOption(tlsPolicyOption())
    .addOption(tlsSessionReuseOption())
    .addOption(quotaBytesOption())
    .addOption(quotaFilesOption())
    .addOption(bandwidthOption("up"))
    .addOption(bandwidthOption("down"))
    .addOption(maxSessionsOption());
}

function tlsPolicyOption(): Option {
  return new Option("--tls-policy <policy>", "this account's TLS requirement; `node` follows the node's tls.policy").choices([...TLS_POLICIES, "node"]);
}

function tlsSessionReuseOption(): Option {
  return new Option(
    "--tls-session-reuse <bool>",
    "whether this account's PROT P data connections must resume the control TLS session; `node` follows tls.requireSessionReuse",
  ).choices(["true", "false", "node"]);
}

/** The account's TLS overrides from --tls-policy / --tls-session-reuse (`node` resets to the node's setting). */
function tlsSettings(options: SettingsOptions): AccountPatch {
  const patch: AccountPatch = {};
  if (options.tlsPolicy !== undefined) patch.tlsPolicy = options.tlsPolicy === "node" ? null : (options.tlsPolicy as TlsPolicy);
  if (options.tlsSessionReuse !== undefined) {
    patch.tlsSessionReuse = options.tlsSessionReuse === "node" ? null : options.tlsSessionReuse === "true";
  }
  return patch;
}

/**
 * A size such as `10G`, `500M`, `64K`, `1.5G`, `4096` (bytes; K/M/G/T are binary multiples, an
 * optional `B`/`iB` suffix is accepted) as whole bytes, or null for `none`.
 */
function parseSize(flag: string, text: string): number | null {
  if (text.trim().toLowerCase() === "none") return null;
  const match = SIZE.exec(text.trim());
  const value = match ? Math.floor(Number(match[1]) * SIZE_UNITS[match[2].toUpperCase()]) : NaN;
  if (!Number.isSafeInteger(value)) {
    throw new CliError(`${flag} ${JSON.stringify(text)}: expected a size such as 10G, 500M, 64K or 4096 (bytes), or none`);
  }
  return value;
}

/** A whole number of 0 or more, or null for `none`. */
function parseCount(flag: string, text: string): number | null {
  if (text.trim().toLowerCase() === "none") return null;
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(Number(text))) {
    throw new CliError(`${flag} ${JSON.stringify(text)}: expected a whole number, or none`);
  }
  return Number(text);
}

function quotaBytesOption(): Option {
  return new Option("--quota-bytes <size>", "storage quota, e.g. 10G, 500M, 64K (binary multiples) or bytes; none: unlimited");
}

function quotaFilesOption(): Option {
  return new Option("--quota-files <n>", "quota on the number of files and directories; none: unlimited");
}

function bandwidthOption(direction: "up" | "down"): Option {
  const what = direction === "up" ? "upload" : "download";
  return new Option(
    `--bandwidth-${direction} <size>`,
    `${what} limit in bytes per second shared by all the account's sessions, e.g. 1M, 512K; none (or 0): unlimited`,
  );
}

function maxSessionsOption(): Option {
  return new Option(
    "--max-sessions <n>",
    "logged-in sessions at once; none (or 0): no limit for this account; node: the node's limits.maxSessionsPerAccount",
  );
}

/** The account's limits from --quota-bytes, --quota-files, --bandwidth-up/-down, --max-sessions. */
function limitSettings(options: SettingsOptions): AccountPatch {
  const patch: AccountPatch = {};
  if (options.quotaBytes !== undefined) patch.quotaBytes = parseSize("--quota-bytes", options.quotaBytes);
  if (options.quotaFiles !== undefined) patch.quotaFiles = parseCount("--quota-files", options.quotaFiles);
  // A rate of 0 would stop every transfer: like `none`, it means unlimited.
  if (options.bandwidthUp !== undefined) patch.bandwidthUp = parseSize("--bandwidth-up", options.bandwidthUp) || null;
  if (options.bandwidthDown !== undefined) patch.bandwidthDown = parseSize("--bandwidth-down", options.bandwidthDown) || null;
  if (options.maxSessions !== undefined) {
    const text = options.maxSessions.trim().toLowerCase();
    patch.maxSessions = text === "node" ? null : text === "none" ? 0 : parseCount("--max-sessions", options.maxSessions);
  }
  return patch;
}

/** `, tls policy data, quota 10 GiB, bandwidth down 1 MiB/s` for the overrides and limits an account has; empty when it has none. */
function describeLimits(account: Account): string {
  return settingsOf(account)
    .map((p) => `, ${p}`)
    .join("");
}

function settingsOf(account: Account): string[] {
  const parts: string[] = [];
  if (account.tlsPolicy !== null) parts.push(`tls policy ${account.tlsPolicy}`);
  if (account.tlsSessionReuse !== null) parts.push(`tls session reuse ${account.tlsSessionReuse ? "required" : "not required"}`);
  if (account.quotaBytes !== null) parts.push(`quota ${formatSize(account.quotaBytes)}`);
  if (account.quotaFiles !== null) parts.push(`quota ${account.quotaFiles} files`);
  if (account.bandwidthUp !== null) parts.push(`bandwidth up ${formatSize(account.bandwidthUp)}/s`);
  if (account.bandwidthDown !== null) parts.push(`bandwidth down ${formatSize(account.bandwidthDown)}/s`);
  if (account.maxSessions !== null) parts.push(`max sessions ${account.maxSessions === 0 ? "unlimited" : account.maxSessions}`);
  return parts;
}

/** The tracked quota usage; `-` while unmeasured (no quota, or to be measured at the next login). */
function usageOf(account: Account): string {
  return account.usage ? `${formatSize(account.usage.bytes)}, ${account.usage.files} files` : "-";
}

function formatSize(bytes: number): string {
  for (const unit of ["T", "G", "M", "K"]) {
    const size = SIZE_UNITS[unit];
    if (bytes >= size && bytes % size === 0) return `${bytes / size} ${unit}iB`;
  }
  return `${bytes} bytes`;
}

function permissionsOption(): Option {
  return new Option("--permissions <list>", `comma-separated, from ${PERMISSIONS.join(",")} (default: all)`);
}

/**
 * The configuration from the file, the environment and the flags of the config keys `include`
 * selects: a command's own options (`user add --tls-policy`, the account's) never pass for the
 * node's keys of the same name.
 */
function configFrom(options: CommonOptions, include: (option: ConfigOption) => boolean = () => true): Config {
  const flags = Object.fromEntries(configOptions.filter(include).map((o) => [o.attribute, (options as Record<string, unknown>)[o.attribute]]));
  // An empty EDGEFTP_CONFIG is unset, as every other EDGEFTP_* variable is.
  return loadConfig({ file: options.config || undefined, env: process.env, flags });
}

async function serve(options: CommonOptions): Promise<void> {
  const config = configFrom(options);
  const paths = resolveDataPaths(config);
  const logger = createLogger(config.log.level);
  mkdirSync(paths.homesDir, { recursive: true });
  const accounts = openAccountStore({ driver: config.accounts.driver, sqlitePath: paths.sqlitePath, server: true });
  let node: EdgeNode;
  let marker: RunMarker | null = null;
  try {
    try {
      marker = claimRunMarker(paths.dataDir);
    } catch (err) {
      logger.warn({ err: (err as Error).message }, "no run marker could be kept in the data directory: an unclean stop of this node will not be noticed at the next start");
    }
    if (marker && marker.uncleanStops > 0) {
      // Uploads a killed node was receiving left their partial files on disk, uncounted.
      const accountsForgotten = await accounts.forgetUsage();
      logger.warn(
        { uncleanStops: marker.uncleanStops, accountsForgotten },
        "the node serving this data directory last time did not stop cleanly: quota usage will be measured again when each account is next used",
      );
    }
    if ((await accounts.list()).length === 0) {
      logger.warn(
        { sqlitePath: paths.sqlitePath },
        "no accounts yet, so nobody can log in: add one with `edgeftp user add NAME` (with this server's --data-dir or --config)",
      );
    }
    node = await EdgeNode.start(config, { logger, accounts, storage: new LocalStorageFactory({ logger }) });
  } catch (err) {
    await accounts.close();
    marker?.release();
    throw bindFailure(err, config) ?? err;
  }
  // Run as root on a service user's data directory (to bind port 21): what this start made there
  // stays usable by that user, as `user add` leaves what it makes.
  const tlsDir = join(paths.dataDir, "tls");
  const { cert, key } = selfSignedFiles(tlsDir);
  // The account database too, when this start created it (no `user add` ran first): left to root,
  // mode 0600, the service user could neither serve it nor add an account to it.
  giveToNodeUser(paths.dataDir, [...(marker?.made ?? []), paths.homesDir, tlsDir, cert, key, ...databaseFiles(paths.sqlitePath)]);
  let signals = 0;
  const stop = (signal: NodeJS.Signals): void => {
    // A second signal: the operator will not wait for the transfers (they are aborted, and their
    // partial uploads removed); a third: not even for that.
    if (++signals > 1) {
      logger.warn({ signal }, signals === 2 ? "second signal: aborting the transfers in progress" : "third signal: exiting now");
      if (signals === 2) node.cutDrainShort();
      else process.exit(1);
      return;
    }
    logger.info({ signal }, "shutting down");
    node
      .close()
      .then(() => accounts.close())
      .then(
        () => {
          marker?.release();
          logger.info("stopped");
          process.exit(0);
        },
        (err: unknown) => {
          logger.error({ err }, "shutdown failed");
          process.exit(1);
        },
      );
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
  // SIGHUP: re-read TLS certificates and re-resolve the PASV hostname, keeping every session.
  releaseEarlySighup();
  process.on("SIGHUP", () => {
    logger.info("SIGHUP: reloading");
    void node.reload();
  });
  // Last: whoever waits for this line (a supervisor, a test) may signal the node at once.
  logger.info(
    {
      host: config.host,
      port: node.port,
      implicitTlsPort: node.implicitPort,
      pasvPorts: config.pasv.ports,
      activePort: node.activePort,
      dataDir: paths.dataDir,
    },
    `edgeftp listening on port ${node.port}${node.implicitPort ? `, implicit FTPS on ${node.implicitPort}` : ""}`,
  );
}

/**
 * The one-line reason for a listen failure the operator can fix, or undefined for any other
 * error. Looks through `cause`, as the node may wrap the listener's error.
 */
function bindFailure(err: unknown, config: Config): CliError | undefined {
  let current: unknown = err;
  while (current instanceof Error) {
    const e = current as NodeJS.ErrnoException & { port?: unknown; hostname?: unknown };
    if (e.syscall === "listen" || e.syscall === "bind") {
      const port = typeof e.port === "number" ? e.port : config.port;
      const isControlPort = port === config.port;
      switch (e.code) {
        case "EACCES":
          if (port >= 1024) return new CliError(`cannot bind port ${port}: permission denied`);
          return new CliError(
            `cannot bind port ${port} (needs root or CAP_NET_BIND_SERVICE)` +
              (isControlPort ? `; use --port ${port + 2100} for a user port` : ""),
          );
        case "EADDRINUSE":
          return new CliError(`port ${port} is already in use${isControlPort ? " (--port to choose another)" : ""}`);
        case "EADDRNOTAVAIL":
          return new CliError(`cannot listen on ${config.host}: not an address of this machine (--host to choose another)`);
        case "EAFNOSUPPORT":
          return new CliError(`cannot listen on ${config.host}: address family not supported here (try --host 0.0.0.0)`);
      }
    }
    if (e.syscall === "getaddrinfo" && e.hostname === config.host) {
      return new CliError(`cannot listen on ${config.host} (host): the name does not resolve (${e.code}); give an address of this machine`);
    }
    current = e.cause;
  }
  return undefined;
}

interface DoctorCliOptions {
  target?: string;
  user?: string;
  passwordStdin?: boolean;
}

interface PasswordOptions {
  passwordStdin?: boolean;
  password?: string;
}

interface SettingsOptions {
  home?: string;
  permissions?: string;
  readOnly?: boolean;
  enable?: boolean;
  disable?: boolean;
  tlsPolicy?: string;
  tlsSessionReuse?: string;
  quotaBytes?: string;
  quotaFiles?: string;
  bandwidthUp?: string;
  bandwidthDown?: string;
  maxSessions?: string;
}

interface AddOptions {
  ifMissing?: boolean;
  disable?: boolean;
}

async function userAdd(name: string, options: CommonOptions & PasswordOptions & SettingsOptions & AddOptions): Promise<void> {
  const config = configFrom(options, isDataOption);
  // Check everything we can before asking for a password, so a typo does not cost two prompts.
  const home = options.home === undefined ? null : accountHome(options.home, config);
  const permissions = requestedPermissions(options) ?? ALL_PERMISSIONS;
  const limits = limitSettings(options);
  await withAccounts(config, { create: true }, async (accounts) => {
    if ((await accounts.get(name)) !== null) {
      if (options.ifMissing) {
        console.log(`user ${name} already exists; left unchanged`);
        return;
      }
      throw new AccountError("exists", `account "${name}" already exists`);
    }
    await refuseHomeOfOthers(accounts, config, name, home, home === null);
    const password = await readPassword(name, options);
    let account: Account;
    try {
      account = await accounts.create({ name, password, home, permissions, ...(options.disable ? { enabled: false } : {}), ...tlsSettings(options), ...limits });
    } catch (err) {
      // Another `user add --if-missing` may have created it since the check above.
      if (options.ifMissing && err instanceof AccountError && err.code === "exists") {
        console.log(`user ${name} already exists; left unchanged`);
        return;
      }
      throw err;
    }
    const root = homeFor(config, account);
    // Created only now: the store has validated the name, so it is a safe single path segment.
    if (home === null) createHome(root, resolveDataPaths(config).dataDir);
    console.log(`user ${name} added (${account.enabled ? "" : "disabled, "}home ${root}, permissions ${account.permissions.join(",")}${describeLimits(account)})`);
  });
}

/** mkdir -p of a new account's default home, given to the node's user (see {@link giveToNodeUser}). */
function createHome(home: string, dataDir: string): void {
  const first = mkdirSync(home, { recursive: true });
  if (first === undefined) return;
  const made: string[] = [];
  for (let dir = home; ; dir = dirname(dir)) {
    made.push(dir);
    if (dir === first || dir === dirname(dir)) break;
  }
  giveToNodeUser(dataDir, made);
}

/**
 * Run as root for a node that runs as another user (the data dir's owner: a service account), what
 * a command created (still root's) is given to that user, or the node could not open or write it.
 */
function giveToNodeUser(dataDir: string, paths: string[]): void {
  if (process.getuid?.() !== 0 || !existsSync(dataDir)) return;
  const owner = statSync(dataDir);
  if (owner.uid === 0) return;
  for (const path of paths) if (existsSync(path) && statSync(path).uid === 0) chownSync(path, owner.uid, owner.gid);
}

/** The SQLite database and its journal files. */
function databaseFiles(sqlitePath: string): string[] {
  return [sqlitePath, `${sqlitePath}-wal`, `${sqlitePath}-shm`];
}

async function userPasswd(name: string, options: CommonOptions & PasswordOptions): Promise<void> {
  const config = configFrom(options, isDataOption);
  await withAccounts(config, { create: false }, async (accounts) => {
    await existingAccount(accounts, name);
    await accounts.setPassword(name, await readPassword(name, options));
    console.log(`password of user ${name} changed`);
  });
}

async function userList(options: CommonOptions): Promise<void> {
  const config = configFrom(options, isDataOption);
  await withAccounts(config, { create: false }, async (accounts) => {
    const list = await accounts.list();
    if (list.length === 0) {
      console.log("no users (add one with `edgeftp user add NAME`)");
      return;
    }
    const rows = list.map((a) => [a.name, a.enabled ? "yes" : "no", a.permissions.join(","), homeFor(config, a), usageOf(a), settingsOf(a).join(", ") || "-"]);
    console.log(formatTable(["NAME", "ENABLED", "PERMISSIONS", "HOME", "USED", "SETTINGS"], rows));
  });
}

async function userRemove(name: string, options: CommonOptions): Promise<void> {
  const config = configFrom(options, isDataOption);
  await withAccounts(config, { create: false }, async (accounts) => {
    const account = await existingAccount(accounts, name);
    await accounts.remove(name);
    console.log(`user ${name} removed; its files in ${homeFor(config, account)} were kept`);
  });
}

async function userSet(name: string, options: CommonOptions & SettingsOptions & { recountUsage?: boolean }): Promise<void> {
  const config = configFrom(options, isDataOption);
  const patch: AccountPatch = {};
  if (options.home !== undefined) patch.home = accountHome(options.home, config);
  const permissions = requestedPermissions(options);
  if (permissions !== undefined) patch.permissions = permissions;
  if (options.enable || options.disable) patch.enabled = options.enable === true;
  Object.assign(patch, tlsSettings(options), limitSettings(options));
  if (Object.keys(patch).length === 0 && !options.recountUsage) {
    throw new CliError(
      "nothing to change: give --home, --permissions, --read-only, --enable, --disable, --tls-policy, --tls-session-reuse, " +
        "--quota-bytes, --quota-files, --bandwidth-up, --bandwidth-down, --max-sessions or --recount-usage",
    );
  }
  await withAccounts(config, { create: false }, async (accounts) => {
    if (patch.home !== undefined) {
      // Back to the default home from another: checked as a new account's would be.
      const toDefault = patch.home === null && (await existingAccount(accounts, name)).home !== null;
      await refuseHomeOfOthers(accounts, config, name, patch.home, toDefault);
    }
    const account = await accounts.update(name, patch);
    if (options.recountUsage) await accounts.forgetUsage(name);
    console.log(
      `user ${name} updated (${account.enabled ? "enabled" : "disabled"}, home ${homeFor(config, account)}, ` +
        `permissions ${account.permissions.join(",")}${describeLimits(account)})` +
        (options.recountUsage ? "; its usage will be measured again at its next login" : ""),
    );
  });
}

/**
 * Runs `action` with the configured account store, closing it afterwards. Without `create`, a
 * missing database is an error rather than silently created: it almost always means a
 * `--data-dir` or `--config` different from the server's.
 */
async function withAccounts(
  config: Config,
  { create }: { create: boolean },
  action: (accounts: AccountStore) => Promise<void>,
): Promise<void> {
  const { sqlitePath, dataDir } = resolveDataPaths(config);
  if (!create && !existsSync(sqlitePath)) {
    throw new CliError(
      `no account database at ${sqlitePath} (is --data-dir or --config the server's? \`edgeftp user add NAME\` creates it)`,
    );
  }
  const accounts = openAccountStore({ driver: config.accounts.driver, sqlitePath });
  try {
    await action(accounts);
  } finally {
    await accounts.close();
    // The database this command may have created, with its journal files.
    if (create) giveToNodeUser(dataDir, databaseFiles(sqlitePath));
  }
}

async function existingAccount(accounts: AccountStore, name: string): Promise<Account> {
  const account = await accounts.get(name);
  if (account === null) throw new AccountError("not-found", `no account "${name}"`);
  return account;
}

/**
 * An account's `--home`, made absolute, after checking that it is an existing directory that holds
 * none of the node's own data (an account rooted there could read the password hashes or the TLS
 * key, or every account's files): not the data directory or above it, not inside it unless below
 * its homes/ (homes/ itself holds every account's), not above the
 * account database or a configured TLS file. `default` is the default home (null).
 */
function accountHome(dir: string, config: Config): string | null {
  if (dir === "default") return null;
  if (dir.trim() === "") throw new CliError("--home: give a directory, or `default` for <dataDir>/homes/NAME");
  const absolute = resolve(dir);
  let real: string;
  try {
    if (!statSync(absolute).isDirectory()) throw new CliError(`--home ${absolute}: not a directory`);
    real = realpathSync(absolute);
  } catch (err) {
    if (err instanceof CliError) throw err;
    throw new CliError(`--home ${absolute}: no such directory (create it first)`);
  }
  const paths = resolveDataPaths(config);
  const within = (inner: string, outer: string) => inner === outer || below(inner, outer);
  const dataDir = realOrSelf(paths.dataDir);
  const secrets = [paths.sqlitePath, config.tls.key, config.tls.cert].filter((p) => p !== "").map((p) => realOrSelf(resolve(p)));
  if (within(dataDir, real) || secrets.some((secret) => within(secret, real)) || (within(real, dataDir) && !below(real, realOrSelf(paths.homesDir)))) {
    throw new CliError(`--home ${absolute}: holds the node's own data (accounts, TLS key); choose a directory outside ${dataDir}, or under its homes/`);
  }
  return absolute;
}

/** The real path of `p` where it exists, else `p` made absolute. */
function realOrSelf(p: string): string {
  return existsSync(p) ? realpathSync(p) : resolve(p);
}

/** Whether the path `inner` lies strictly below `outer`. */
function below(inner: string, outer: string): boolean {
  return inner.startsWith(outer.endsWith(sep) ? outer : outer + sep);
}

/**
 * Refuses a home that would hand one account another's files. Always: a home strictly inside
 * another account's, or around one (the outer account could rename the inner home away and move one
 * of its symlinks, `../..`, into its place, and the inner account would then be rooted wherever that
 * leads); the same home for two accounts (a read-only view of a site) is allowed, since no account
 * can rename its own root. With `fresh` (a new account given no --home, or one set back to the
 * default home, so <dataDir>/homes/NAME):
 * also that directory as another account's home, or one already holding files (a removed account's,
 * which `user remove` keeps), so a reused name never silently inherits them; `--home` reuses a
 * directory on purpose.
 */
async function refuseHomeOfOthers(accounts: AccountStore, config: Config, name: string, home: string | null, fresh = false): Promise<void> {
  const root = homeFor(config, { name, home });
  const mine = realOrSelf(root);
  for (const other of await accounts.list()) {
    if (other.name === name) continue;
    const theirs = realOrSelf(homeFor(config, other));
    if (below(mine, theirs) || below(theirs, mine)) {
      throw new CliError(
        `--home ${mine}: ${below(mine, theirs) ? "inside" : "around"} the home of "${other.name}" (${theirs}); ` +
          "give the same directory (a shared or read-only view) or one outside it",
      );
    }
    if (fresh && theirs === mine) {
      throw new CliError(`the default home ${root} is the home of "${other.name}"; give --home to share it on purpose, or another directory`);
    }
  }
  if (fresh && existsSync(root) && readdirSync(root).length > 0) {
    throw new CliError(`the default home ${root} already holds files (a removed account's?); move them away, or give --home ${root} to reuse them`);
  }
}

/** The permissions asked for by --permissions or --read-only; undefined when neither was given. */
function requestedPermissions(options: SettingsOptions): Permission[] | undefined {
  if (options.readOnly) return READ_ONLY_PERMISSIONS;
  if (options.permissions === undefined) return undefined;
  const names = options.permissions
    .split(",")
    .map((p) => p.trim())
    .filter((p) => p !== "");
  if (names.length === 0) throw new CliError(`--permissions: give at least one of ${PERMISSIONS.join(",")}`);
  const unknown = names.filter((p) => !(PERMISSIONS as readonly string[]).includes(p));
  if (unknown.length > 0) {
    throw new CliError(`--permissions: unknown ${unknown.join(",")} (known: ${PERMISSIONS.join(",")})`);
  }
  return names as Permission[];
}

/** The password from --password, the first line of stdin, or a terminal prompt (typed twice). */
async function readPassword(name: string, options: PasswordOptions): Promise<string> {
  if (options.password !== undefined) return options.password;
  if (options.passwordStdin) return readFirstLine(process.stdin);
  if (!process.stdin.isTTY) {
    throw new CliError("no password given: pipe it in with --password-stdin, or run on a terminal to be prompted");
  }
  const password = await promptHidden(`Password for ${name}: `);
  if ((await promptHidden("Repeat the password: ")) !== password) throw new CliError("the passwords do not match");
  return password;
}

/** The first line of `input` without its line ending (all of it when there is no newline). */
async function readFirstLine(input: NodeJS.ReadStream): Promise<string> {
  input.setEncoding("utf8");
  let text = "";
  // Leaving the loop early destroys the stream: the rest of stdin is not ours to read.
  for await (const chunk of input) {
    text += chunk as string;
    if (text.includes("\n")) break;
  }
  return text.split("\n", 1)[0].replace(/\r$/, "");
}

/** Reads one line from the terminal without echoing it; the prompt goes to stderr so stdout stays clean. */
function promptHidden(prompt: string): Promise<string> {
  const input = process.stdin;
  process.stderr.write(prompt);
  input.setRawMode(true);
  input.setEncoding("utf8");
  input.resume();
  return new Promise((resolvePassword, reject) => {
    let chars: string[] = [];
    const finish = (): void => {
      input.off("data", onData);
      input.setRawMode(false);
      input.pause();
      process.stderr.write("\n");
    };
    const onData = (chunk: string): void => {
      for (const char of chunk) {
        if (char === "\r" || char === "\n" || char === "\u0004") {
          finish();
          resolvePassword(chars.join(""));
          return;
        }
        if (char === "\u0003") {
          finish();
          reject(new CliError("cancelled"));
          return;
        }
        if (char === "\u007f" || char === "\b") chars = chars.slice(0, -1);
        else chars.push(char);
      }
    };
    input.on("data", onData);
  });
}

function formatTable(header: string[], rows: string[][]): string {
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column].length)));
  return [header, ...rows].map((row) => row.map((cell, i) => cell.padEnd(widths[i])).join("  ").trimEnd()).join("\n");
}

/**
 * Reports `err` on one line and exits 1. Only errors we did not expect get a hint to rerun with
 * EDGEFTP_DEBUG=1, which prints their stack instead.
 */
function fail(err: unknown): never {
  const expected = err instanceof CliError || err instanceof ConfigError || err instanceof AccountError;
  if (!expected && process.env.EDGEFTP_DEBUG === "1") {
    console.error(err);
  } else {
    const message = (err instanceof Error ? err.message : String(err)).replace(/\s*\n\s*/g, " ");
    process.stderr.write(`edgeftp: ${message}${expected ? "" : " (EDGEFTP_DEBUG=1 for details)"}\n`);
  }
  process.exit(1);
}
