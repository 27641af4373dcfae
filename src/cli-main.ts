/**
 * The `edgeftp` command's tree: `serve`, `user add|passwd|list|remove|set`, `config check|reference`
 * and `doctor` (loaded by cli.cts, the entry point, once what must come first is in place); what
 * each does is in cli/.
 *
 * Every subcommand takes `--config FILE` and `--data-dir DIR`, so account management and the
 * server point at the same data; `serve` and `config check` take a flag for every configuration
 * key (derived from the schema by `config/load.ts`). Expected failures end as one line on stderr,
 * `edgeftp: <reason>`, and exit status 1.
 */
import { readFileSync } from "node:fs";
import { Command, Help, Option } from "commander";
import { stringify } from "yaml";
import { AccountError } from "./accounts/types.js";
import { ConfigError, configOptions, type ConfigOption } from "./config/load.js";
import { formatConfigReference } from "./config/reference.js";
import { formatDoctorReport, runDoctor } from "./node/doctor.js";
import { PassiveAddressPolicy } from "./data/passive-address.js";
import { createLogger } from "./observe/logger.js";
import { TlsContextProvider } from "./tls/tls-context.js";
import { CliError, configFrom, isDataOption, readFirstLine, type CommonOptions } from "./cli/common.js";
import { withAccountSettings, type SettingsOptions } from "./cli/account-options.js";
import { serve } from "./cli/serve.js";
import { userAdd, userList, userPasswd, userRemove, userSet, type AddOptions, type PasswordOptions } from "./cli/users.js";

const CONFIG_GROUP = "Configuration (flag > environment > --config file > default):";

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
  .description("List the accounts: name, enabled, permissions, home, quota usage, and the TLS overrides and limits each has.")
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
    "measure the account's quota usage again (after its files were changed other than through FTP) when it is next needed: at its next login or upload",
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

interface DoctorCliOptions {
  target?: string;
  user?: string;
  passwordStdin?: boolean;
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
