/** `edgeftp user add|passwd|list|remove|set`: the accounts, and the homes they may have. */
import { existsSync, mkdirSync, readdirSync, realpathSync, statSync } from "node:fs";
import { dirname, resolve, sep } from "node:path";
import { openAccountStore } from "../accounts/open.js";
import { AccountError, ALL_PERMISSIONS, type Account, type AccountPatch, type AccountStore } from "../accounts/types.js";
import { homeFor, resolveDataPaths } from "../config/load.js";
import type { Config } from "../config/schema.js";
import { CliError, configFrom, databaseFiles, giveToNodeUser, isDataOption, readFirstLine, type CommonOptions } from "./common.js";
import { describeLimits, limitSettings, requestedPermissions, settingsOf, tlsSettings, usageOf, type SettingsOptions } from "./account-options.js";

export interface PasswordOptions {
  passwordStdin?: boolean;
  password?: string;
}

export interface AddOptions {
  ifMissing?: boolean;
  disable?: boolean;
}

export async function userAdd(name: string, options: CommonOptions & PasswordOptions & SettingsOptions & AddOptions): Promise<void> {
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

export async function userPasswd(name: string, options: CommonOptions & PasswordOptions): Promise<void> {
  const config = configFrom(options, isDataOption);
  await withAccounts(config, { create: false }, async (accounts) => {
    await existingAccount(accounts, name);
    await accounts.setPassword(name, await readPassword(name, options));
    console.log(`password of user ${name} changed`);
  });
}

export async function userList(options: CommonOptions): Promise<void> {
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

export async function userRemove(name: string, options: CommonOptions): Promise<void> {
  const config = configFrom(options, isDataOption);
  await withAccounts(config, { create: false }, async (accounts) => {
    const account = await existingAccount(accounts, name);
    await accounts.remove(name);
    console.log(`user ${name} removed; its files in ${homeFor(config, account)} were kept`);
  });
}

export async function userSet(name: string, options: CommonOptions & SettingsOptions & { recountUsage?: boolean }): Promise<void> {
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
        (options.recountUsage ? "; its usage will be measured again when next needed (its next login or upload)" : ""),
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
