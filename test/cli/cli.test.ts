import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parse } from "yaml";
import { generate } from "selfsigned";
import { openAccountStore } from "../../src/accounts/open.js";
import { checkLeaks } from "../helpers/leaks.js";

checkLeaks();

/** The built CLI: this file runs as dist/test/cli/cli.test.js. */
const CLI = fileURLToPath(new URL("../../src/cli.js", import.meta.url));

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** A temporary working directory, removed when the test ends; `dataDir` is inside it. */
function workspace(t: TestContext): { dir: string; dataDir: string } {
  const dir = mkdtempSync(join(tmpdir(), "edgeftp-cli-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return { dir, dataDir: join(dir, "data") };
}

/**
 * Runs the CLI in `cwd` with `input` on stdin (a pipe, never a terminal). The inherited
 * environment is stripped of EDGEFTP_* variables so only those in `env` apply.
 */
function edgeftp(cwd: string, args: string[], { input = "", env = {} }: { input?: string; env?: Record<string, string> } = {}): Promise<Run> {
  const base = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith("EDGEFTP_")));
  const child = spawn(process.execPath, [CLI, ...args], { cwd, env: { ...base, ...env } });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
  child.stdin.end(input);
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

/** Asserts a failure: exit status 1 and exactly one line on stderr, matching `reason`. */
function assertFailure(run: Run, reason: RegExp): void {
  assert.equal(run.code, 1, `exit status (stderr: ${run.stderr})`);
  assert.match(run.stderr, /^edgeftp: [^\n]+\n$/, "one line on stderr");
  assert.match(run.stderr, reason);
}

function assertSuccess(run: Run): void {
  assert.equal(run.code, 0, `exit status (stderr: ${run.stderr})`);
  assert.equal(run.stderr, "");
}

test("--help works on every command and exits 0", async (t) => {
  const { dir } = workspace(t);
  const commands = [[], ["serve"], ["user"], ["user", "add"], ["user", "passwd"], ["user", "list"], ["user", "remove"], ["user", "set"], ["config"], ["config", "check"]];
  await Promise.all(
    commands.map(async (command) => {
      const run = await edgeftp(dir, [...command, "--help"]);
      assert.equal(run.code, 0, command.join(" "));
      assert.match(run.stdout, new RegExp(`^Usage: edgeftp ${command.join(" ")}`), command.join(" "));
    }),
  );
  const serve = await edgeftp(dir, ["serve", "--help"]);
  assert.match(serve.stdout, /--pasv-ports <value>/);
  assert.match(serve.stdout, /EDGEFTP_PASV_PORTS/);
  const add = await edgeftp(dir, ["user", "add", "--help"]);
  assert.match(add.stdout, /--config <file>/);
  assert.match(add.stdout, /--data-dir <value>/);
});

test("config check prints the effective configuration as YAML, merging file, env and flags", async (t) => {
  const { dir } = workspace(t);
  writeFileSync(join(dir, "edgeftp.yaml"), "port: 2000\npasv:\n  ports: 30000-30010\n");
  const run = await edgeftp(dir, ["config", "check", "--config", "edgeftp.yaml", "--port", "2121"], {
    env: { EDGEFTP_TIMEOUTS_LOGIN: "15" },
  });
  assertSuccess(run);
  const printed = parse(run.stdout);
  assert.equal(printed.port, 2121);
  assert.equal(printed.pasv.ports, "30000-30010");
  assert.equal(printed.timeouts.login, 15);
  assert.equal(printed.log.level, "info");
  // What it prints is itself a valid configuration file.
  writeFileSync(join(dir, "effective.yaml"), run.stdout);
  assertSuccess(await edgeftp(dir, ["config", "check", "--config", "effective.yaml"]));
});

test("an invalid configuration exits 1 with one keyed line", async (t) => {
  const { dir } = workspace(t);
  writeFileSync(join(dir, "edgeftp.yaml"), "pasv:\n  portz: 1-2\n");
  assertFailure(await edgeftp(dir, ["config", "check", "--config", "edgeftp.yaml"]), /config: pasv\.portz: unknown key/);
  assertFailure(
    await edgeftp(dir, ["config", "check"], { env: { EDGEFTP_PASV_PORTS: "abc" } }),
    /config: pasv\.ports: expected A-B, e\.g\. 21000-21100 \(from EDGEFTP_PASV_PORTS\)/,
  );
  assertFailure(await edgeftp(dir, ["config", "check", "--config", "missing.yaml"]), /config: file missing\.yaml not found/);
  // Values `serve` could not use are refused here too, by key.
  assertFailure(
    await edgeftp(dir, ["config", "check", "--pasv-address-overrides", "127.0.0.0/8=127.0.0.999"]),
    /config: pasv\.addressOverrides: expected comma-separated CIDR=IPv4 rules/,
  );
  assertFailure(await edgeftp(dir, ["config", "check", "--port", "2121", "--tls-implicit-port", "2121"]), /config: tls\.implicitPort: must differ from port/);
  assertFailure(
    await edgeftp(dir, ["config", "check", "--tls-min-version", "TLSv1.3", "--tls-max-version", "TLSv1.2"]),
    /config: tls\.maxVersion: must not be older than tls\.minVersion/,
  );
  // An empty EDGEFTP_CONFIG is unset, like every other EDGEFTP_* variable.
  assertSuccess(await edgeftp(dir, ["config", "check"], { env: { EDGEFTP_CONFIG: "" } }));
  assertFailure(await edgeftp(dir, ["config", "check", "--port", "21050"]), /config: pasv\.ports: must not contain port \(21050\)/);
  assertFailure(await edgeftp(dir, ["config", "check", "--tls-cert", "cert.pem"]), /config: tls\.key: set both tls\.cert and tls\.key, or neither/);
});

test("config check loads the certificate files and resolves a PASV hostname, as serve does at start; each failure is one line", async (t) => {
  const { dir } = workspace(t);
  const pems = await generate([{ name: "commonName", value: "check" }], { keyType: "ec", curve: "P-256", algorithm: "sha256" });
  writeFileSync(join(dir, "cert.pem"), pems.cert);
  writeFileSync(join(dir, "key.pem"), pems.private);
  const tls = ["--tls-cert", "cert.pem", "--tls-key", "key.pem"];
  assertSuccess(await edgeftp(dir, ["config", "check", ...tls, "--tls-ca", "cert.pem", "--pasv-address", "localhost"]));
  assertFailure(await edgeftp(dir, ["config", "check", "--tls-cert", "missing.pem", "--tls-key", "key.pem"]), /^edgeftp: tls: cannot read certificate missing\.pem \(ENOENT\)\n$/);
  assertFailure(await edgeftp(dir, ["config", "check", ...tls, "--tls-ciphers", "garbage"]), /^edgeftp: tls\.ciphers: no cipher matches "garbage"\n$/);
  assertFailure(await edgeftp(dir, ["config", "check", ...tls, "--tls-ca", "key.pem"]), /^edgeftp: tls: key\.pem \(tls\.ca\) holds no PEM certificate\n$/);
  assertFailure(await edgeftp(dir, ["config", "check", "--pasv-address", "no-such-host.invalid"]), /^edgeftp: pasv\.address: cannot resolve no-such-host\.invalid to an IPv4 address/);
});

test("serve with an out-of-range port fails with the keyed config error", async (t) => {
  const { dir, dataDir } = workspace(t);
  const run = await edgeftp(dir, ["serve", "--port", "70000", "--data-dir", dataDir]);
  assertFailure(run, /^edgeftp: config: port: expected a port number from 0 to 65535 \(from --port\)\n$/);
  assert.equal(existsSync(dataDir), false, "nothing is created before the configuration is valid");
});

test("user add --password-stdin, then user list with the same --data-dir shows the account", async (t) => {
  const { dir, dataDir } = workspace(t);
  const add = await edgeftp(dir, ["user", "add", "alice", "--password-stdin", "--data-dir", dataDir], { input: "s3cret\nignored\n" });
  assertSuccess(add);
  const home = join(dataDir, "homes", "alice");
  assert.equal(add.stdout, `user alice added (home ${home}, permissions list,read,write,delete,rename,mkdir)\n`);
  assert.ok(existsSync(home), "the default home is created");

  const list = await edgeftp(dir, ["user", "list", "--data-dir", dataDir]);
  assertSuccess(list);
  const [header, row] = list.stdout.trimEnd().split("\n");
  assert.match(header, /^NAME\s+ENABLED\s+PERMISSIONS\s+HOME\s+SETTINGS$/);
  assert.deepEqual(row.split(/\s+/), ["alice", "yes", "list,read,write,delete,rename,mkdir", home, "-"]);

  // Only the first line of stdin is the password.
  const accounts = openAccountStore({ driver: "sqlite", sqlitePath: join(dataDir, "accounts.db") });
  t.after(() => accounts.close());
  assert.ok(await accounts.authenticate("alice", "s3cret"));
});

test("the data dir can come from the environment, and the config file, like serve's", async (t) => {
  const { dir, dataDir } = workspace(t);
  assertSuccess(await edgeftp(dir, ["user", "add", "bob", "--password", "pw"], { env: { EDGEFTP_DATA_DIR: dataDir } }));
  writeFileSync(join(dir, "edgeftp.yaml"), `dataDir: ${dataDir}\n`);
  const list = await edgeftp(dir, ["user", "list", "--config", "edgeftp.yaml"]);
  assertSuccess(list);
  assert.match(list.stdout, /^bob\s+yes/m);
});

test("adding an existing account exits 1 with one line, before asking for a password", async (t) => {
  const { dir, dataDir } = workspace(t);
  assertSuccess(await edgeftp(dir, ["user", "add", "alice", "--password-stdin", "--data-dir", dataDir], { input: "pw\n" }));
  assertFailure(await edgeftp(dir, ["user", "add", "alice", "--data-dir", dataDir]), /account "alice" already exists/);
});

test("user add without a password and without a terminal fails with one line", async (t) => {
  const { dir, dataDir } = workspace(t);
  assertFailure(await edgeftp(dir, ["user", "add", "alice", "--data-dir", dataDir]), /--password-stdin/);
  assertFailure(
    await edgeftp(dir, ["user", "add", "alice", "--password", "pw", "--home", join(dir, "nope"), "--data-dir", dataDir]),
    /--home .*nope: no such directory/,
  );
  assertFailure(
    await edgeftp(dir, ["user", "add", "alice", "--password", "pw", "--permissions", "list,fly", "--data-dir", dataDir]),
    /--permissions: unknown fly/,
  );
});

test("--home refuses a directory holding the node's own data, and an empty value; `default` resets it", async (t) => {
  const { dir, dataDir } = workspace(t);
  assertSuccess(await edgeftp(dir, ["user", "add", "dan", "--password", "pw", "--data-dir", dataDir]));
  for (const home of [".", dataDir, join(dataDir, "tls"), join(dataDir, "homes"), "/"]) {
    mkdirSync(join(dataDir, "tls"), { recursive: true });
    assertFailure(await edgeftp(dir, ["user", "add", "eve", "--password", "pw", "--home", home, "--data-dir", dataDir]), /holds the node's own data/);
    assertFailure(await edgeftp(dir, ["user", "set", "dan", "--home", home, "--data-dir", dataDir]), /holds the node's own data/);
  }
  assertFailure(await edgeftp(dir, ["user", "set", "dan", "--home", "", "--data-dir", dataDir]), /--home: give a directory/);
  // Another account's home under homes/ is allowed (a read-only view of a site, say).
  assertSuccess(await edgeftp(dir, ["user", "add", "viewer", "--password", "pw", "--home", join(dataDir, "homes", "dan"), "--read-only", "--data-dir", dataDir]));
  mkdirSync(join(dir, "elsewhere"));
  assertSuccess(await edgeftp(dir, ["user", "set", "dan", "--home", "elsewhere", "--data-dir", dataDir]));
  const reset = await edgeftp(dir, ["user", "set", "dan", "--home", "default", "--data-dir", dataDir]);
  assertSuccess(reset);
  assert.match(reset.stdout, new RegExp(`home ${join(dataDir, "homes", "dan").replace(/[/.]/g, "\\$&")},`));
});

test("concurrent `user add --if-missing` of one name all succeed", async (t) => {
  const { dir, dataDir } = workspace(t);
  assertSuccess(await edgeftp(dir, ["user", "add", "first", "--password", "pw", "--data-dir", dataDir]));
  const runs = await Promise.all(Array.from({ length: 4 }, () => edgeftp(dir, ["user", "add", "racer", "--password", "pw", "--if-missing", "--data-dir", dataDir])));
  for (const run of runs) assertSuccess(run);
});

test("user add --home and --read-only, user set --disable, user passwd", async (t) => {
  const { dir, dataDir } = workspace(t);
  mkdirSync(join(dir, "carol-files"));
  const add = await edgeftp(dir, ["user", "add", "carol", "--password", "old", "--home", "carol-files", "--read-only", "--data-dir", dataDir]);
  assertSuccess(add);
  assert.equal(add.stdout, `user carol added (home ${join(dir, "carol-files")}, permissions list,read)\n`);

  const set = await edgeftp(dir, ["user", "set", "carol", "--disable", "--permissions", "list,read,write", "--data-dir", dataDir]);
  assertSuccess(set);
  assert.match(set.stdout, /^user carol updated \(disabled, home .*, permissions list,read,write\)\n$/);
  const list = await edgeftp(dir, ["user", "list", "--data-dir", dataDir]);
  assert.match(list.stdout, /^carol\s+no\s+list,read,write\s/m);

  assertFailure(await edgeftp(dir, ["user", "set", "carol", "--data-dir", dataDir]), /nothing to change/);
  assertFailure(await edgeftp(dir, ["user", "set", "carol", "--enable", "--disable", "--data-dir", dataDir]), /cannot be used with/);
  assertFailure(await edgeftp(dir, ["user", "set", "nobody", "--enable", "--data-dir", dataDir]), /no account "nobody"/);

  assertSuccess(await edgeftp(dir, ["user", "set", "carol", "--enable", "--data-dir", dataDir]));
  assertSuccess(await edgeftp(dir, ["user", "passwd", "carol", "--password-stdin", "--data-dir", dataDir], { input: "new\n" }));
  const accounts = openAccountStore({ driver: "sqlite", sqlitePath: join(dataDir, "accounts.db") });
  t.after(() => accounts.close());
  assert.equal(await accounts.authenticate("carol", "old"), null);
  assert.ok(await accounts.authenticate("carol", "new"));
});

test("user remove deletes the account, keeps its files and says so", async (t) => {
  const { dir, dataDir } = workspace(t);
  assertSuccess(await edgeftp(dir, ["user", "add", "dave", "--password-stdin", "--data-dir", dataDir], { input: "pw\n" }));
  const home = join(dataDir, "homes", "dave");
  writeFileSync(join(home, "keep.txt"), "data");

  const remove = await edgeftp(dir, ["user", "remove", "dave", "--data-dir", dataDir]);
  assertSuccess(remove);
  assert.equal(remove.stdout, `user dave removed; its files in ${home} were kept\n`);
  assert.ok(existsSync(join(home, "keep.txt")));

  const list = await edgeftp(dir, ["user", "list", "--data-dir", dataDir]);
  assertSuccess(list);
  assert.doesNotMatch(list.stdout, /dave/);
  assertFailure(await edgeftp(dir, ["user", "remove", "dave", "--data-dir", dataDir]), /no account "dave"/);
});

test("user commands other than add refuse a data dir without an account database", async (t) => {
  const { dir, dataDir } = workspace(t);
  assertFailure(await edgeftp(dir, ["user", "list", "--data-dir", dataDir]), /no account database at .*accounts\.db/);
  assert.equal(existsSync(dataDir), false, "a mistyped --data-dir is not created");
});

test("unknown options and commands are one-line errors too", async (t) => {
  const { dir } = workspace(t);
  assertFailure(await edgeftp(dir, ["user", "list", "--port", "21"]), /unknown option '--port'/);
  assertFailure(await edgeftp(dir, ["user", "lst"]), /unknown command 'lst'/);
  // The `help` command would show `user` for `help user add`: --help is the way, on every command.
  assertFailure(await edgeftp(dir, ["help", "user", "add"]), /unknown command 'help'/);
});

test("--version prints the package's version; doctor --user needs --password-stdin (a login without it would count towards a ban)", async (t) => {
  const { dir } = workspace(t);
  const version = await edgeftp(dir, ["--version"]);
  assertSuccess(version);
  assert.equal(version.stdout, `${(JSON.parse(readFileSync(new URL("../../../package.json", import.meta.url), "utf8")) as { version: string }).version}\n`);
  assertFailure(await edgeftp(dir, ["doctor", "--user", "alice", "--port", "1"]), /--user and --password-stdin go together/);
  assertFailure(await edgeftp(dir, ["doctor", "--password-stdin", "--port", "1"]), /--user and --password-stdin go together/);
});

test("user add/set take limits with size suffixes and TLS overrides; `none`/`node` reset them", async (t) => {
  const { dir, dataDir } = workspace(t);
  assertSuccess(
    await edgeftp(dir, [
      "user", "add", "cam1", "--password", "pw", "--data-dir", dataDir,
      "--quota-bytes", "10G", "--quota-files", "1000", "--bandwidth-down", "2M", "--bandwidth-up", "64K", "--max-sessions", "3",
      "--tls-policy", "optional", "--tls-session-reuse", "false",
    ]),
  );
  const read = async () => {
    const accounts = openAccountStore({ driver: "sqlite", sqlitePath: join(dataDir, "accounts.db") });
    try {
      return (await accounts.get("cam1"))!;
    } finally {
      await accounts.close();
    }
  };
  let account = await read();
  assert.deepEqual(
    [account.quotaBytes, account.quotaFiles, account.bandwidthDown, account.bandwidthUp, account.maxSessions, account.tlsPolicy, account.tlsSessionReuse],
    [10 * 1024 ** 3, 1000, 2 * 1024 ** 2, 64 * 1024, 3, "optional", false],
  );
  assertSuccess(
    await edgeftp(dir, ["user", "set", "cam1", "--data-dir", dataDir, "--quota-bytes", "none", "--bandwidth-down", "none", "--tls-policy", "node", "--tls-session-reuse", "node"]),
  );
  account = await read();
  assert.deepEqual([account.quotaBytes, account.bandwidthDown, account.tlsPolicy, account.tlsSessionReuse, account.quotaFiles], [null, null, null, null, 1000]);
  assertFailure(await edgeftp(dir, ["user", "set", "cam1", "--data-dir", dataDir, "--quota-bytes", "lots"]), /quota-bytes/);
  assertFailure(await edgeftp(dir, ["user", "set", "cam1", "--data-dir", dataDir, "--tls-policy", "always"]), /tls-policy/);
  // What an account overrides shows in the list, and `user add --disable` makes it unable to log in.
  assertSuccess(await edgeftp(dir, ["user", "set", "cam1", "--data-dir", dataDir, "--tls-policy", "data"]));
  assertSuccess(await edgeftp(dir, ["user", "add", "cam2", "--password", "pw", "--disable", "--data-dir", dataDir]));
  const list = (await edgeftp(dir, ["user", "list", "--data-dir", dataDir])).stdout;
  assert.match(list, /^cam1\s+yes\s.*\stls policy data, quota 1000 files, bandwidth up 64 KiB\/s, max sessions 3$/m, list);
  assert.match(list, /^cam2\s+no\s.*\s-$/m, list);
});
