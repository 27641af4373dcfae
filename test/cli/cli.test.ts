// The CLI's help, configuration checks and one-line errors; the `user` commands are in cli-user.test.ts.
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { generate } from "selfsigned";
import { checkLeaks } from "../helpers/leaks.js";
import { assertFailure, assertSuccess, CLI, edgeftp, workspace } from "../helpers/cli.js";

checkLeaks();

test("--help works on every command and exits 0", async (t) => {
  const { dir } = workspace(t);
  const commands = [[], ["serve"], ["user"], ["user", "add"], ["user", "passwd"], ["user", "list"], ["user", "remove"], ["user", "set"], ["config"], ["config", "check"], ["config", "reference"], ["doctor"]];
  await Promise.all(
    commands.map(async (command) => {
      const run = await edgeftp(dir, [...command, "--help"]);
      assert.equal(run.code, 0, command.join(" "));
      assert.match(run.stdout, new RegExp(`^Usage: edgeftp ${command.join(" ")}`), command.join(" "));
      // Wrapped for a terminal (80 columns without one), the long flags' descriptions too.
      const long = run.stdout.split("\n").filter((line) => line.length > 80);
      assert.deepEqual(long, [], `${command.join(" ")}: lines over 80 columns`);
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
  // Without a certificate of its own (serve generates one at start), the rest is checked all the same.
  assertFailure(await edgeftp(dir, ["config", "check", "--tls-ciphers", "garbage"]), /^edgeftp: tls\.ciphers: no cipher matches "garbage"\n$/);
  assertFailure(await edgeftp(dir, ["config", "check", "--tls-ca", "missing.pem"]), /^edgeftp: tls: cannot read CA chain missing\.pem \(ENOENT\)\n$/);
  assertFailure(await edgeftp(dir, ["config", "check", "--tls-ca", "key.pem"]), /^edgeftp: tls: key\.pem \(tls\.ca\) holds no PEM certificate\n$/);
});

test("serve with an out-of-range port fails with the keyed config error", async (t) => {
  const { dir, dataDir } = workspace(t);
  const run = await edgeftp(dir, ["serve", "--port", "70000", "--data-dir", dataDir]);
  assertFailure(run, /^edgeftp: config: port: expected a port number from 0 to 65535 \(from --port\)\n$/);
  assert.equal(existsSync(dataDir), false, "nothing is created before the configuration is valid");
});

test("unknown options and commands are one-line errors too", async (t) => {
  const { dir } = workspace(t);
  assertFailure(await edgeftp(dir, ["user", "list", "--port", "21"]), /unknown option '--port'/);
  assertFailure(await edgeftp(dir, ["user", "lst"]), /unknown command 'lst'/);
  // The `help` command would show `user` for `help user add`: --help is the way, on every command.
  assertFailure(await edgeftp(dir, ["help", "user", "add"]), /unknown command 'help'/);
});

test("a failure at serve's start names what is wrong: the account database's file, the host", async (t) => {
  const { dir, dataDir } = workspace(t);
  mkdirSync(dataDir);
  writeFileSync(join(dataDir, "accounts.db"), "not a database, whatever its name says\n".repeat(200));
  assertFailure(await edgeftp(dir, ["user", "list", "--data-dir", dataDir]), new RegExp(`${join(dataDir, "accounts.db").replace(/[/.]/g, "\\$&")}: file is not a database`));
  rmSync(join(dataDir, "accounts.db"));
  assertFailure(
    await edgeftp(dir, ["serve", "--host", "nonsense.invalid", "--port", "0", "--active-port", "0", "--tls-implicit", "false", "--data-dir", dataDir]),
    /cannot listen on nonsense\.invalid \(host\): the name does not resolve/,
  );
});

test("--version prints the package's version; doctor --user needs --password-stdin (a login without it would count towards a ban)", async (t) => {
  const { dir } = workspace(t);
  const version = await edgeftp(dir, ["--version"]);
  assertSuccess(version);
  assert.equal(version.stdout, `${(JSON.parse(readFileSync(new URL("../../../package.json", import.meta.url), "utf8")) as { version: string }).version}\n`);
  assertFailure(await edgeftp(dir, ["doctor", "--user", "alice", "--port", "1"]), /--user and --password-stdin go together/);
  assertFailure(await edgeftp(dir, ["doctor", "--password-stdin", "--port", "1"]), /--user and --password-stdin go together/);
});


/** A workspace whose data directory belongs to a service user (nobody), as a node run by root for it finds. */
function serviceUserWorkspace(t: TestContext): { dir: string; dataDir: string; nobody: { uid: number; gid: number } } {
  const { dir, dataDir } = workspace(t);
  const nobody = { uid: 65534, gid: 65534 };
  chmodSync(dir, 0o755);
  mkdirSync(dataDir);
  chownSync(dataDir, nobody.uid, nobody.gid);
  return { dir, dataDir, nobody };
}

/** Runs `serve` until it logs that it listens, then stops it with SIGTERM; resolves its exit code and output. */
async function serveOnce(
  dir: string,
  dataDir: string,
  asUser?: { uid: number; gid: number },
  activePort = 0,
): Promise<{ listened: boolean; code: number | null; output: string }> {
  const pasv = 20000 + Math.floor(Math.random() * 120) * 100;
  const args = ["serve", "--host", "127.0.0.1", "--port", "0", "--active-port", `${activePort}`, "--tls-implicit", "false", "--pasv-ports", `${pasv}-${pasv + 9}`, "--data-dir", dataDir];
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith("EDGEFTP_")));
  const child = spawn(process.execPath, [CLI, ...args], { cwd: dir, env, ...asUser });
  let output = "";
  let listened = false;
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => (output += chunk));
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
    output += chunk;
    if (!listened && output.includes("edgeftp listening on port")) {
      listened = true;
      child.kill("SIGTERM");
    }
  });
  const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
  const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
  clearTimeout(timer);
  return { listened, code, output };
}

test("serve run once as root on a service user's data directory leaves what it made there to that user, who can then serve", { skip: process.getuid?.() !== 0 && "needs root" }, async (t) => {
  const { dir, dataDir, nobody } = serviceUserWorkspace(t);
  assertSuccess(await edgeftp(dir, ["user", "add", "site", "--password", "pw", "--data-dir", dataDir]));

  const asRoot = await serveOnce(dir, dataDir);
  assert.ok(asRoot.listened && asRoot.code === 0, asRoot.output);
  for (const made of ["tls", "tls/self-signed-key.pem", "tls/self-signed-cert.pem", "run", "homes"]) {
    assert.equal(statSync(join(dataDir, made)).uid, nobody.uid, `${made} belongs to the data directory's owner`);
  }
  const asService = await serveOnce(dir, dataDir, nobody);
  assert.ok(asService.listened && asService.code === 0, asService.output);
  assert.ok(!asService.output.includes("did not stop cleanly"), "the root node's stop was clean");
});

test("serve run first as root on a service user's empty data directory leaves the account database it created to that user", { skip: process.getuid?.() !== 0 && "needs root" }, async (t) => {
  const { dir, dataDir, nobody } = serviceUserWorkspace(t);

  // No `user add` before: this start creates accounts.db.
  const asRoot = await serveOnce(dir, dataDir);
  assert.ok(asRoot.listened && asRoot.code === 0, asRoot.output);
  assert.equal(statSync(join(dataDir, "accounts.db")).uid, nobody.uid, "accounts.db belongs to the data directory's owner");
  // So the service user can serve it.
  const asService = await serveOnce(dir, dataDir, nobody);
  assert.ok(asService.listened && asService.code === 0, asService.output);
});

test("a node that may not bind port 20 says so at start, and its start line gives the active port it will use", { skip: process.getuid?.() !== 0 && "needs root" }, async (t) => {
  const { dir, dataDir, nobody } = serviceUserWorkspace(t);
  const asService = await serveOnce(dir, dataDir, nobody, 20);
  assert.ok(asService.listened && asService.code === 0, asService.output);
  assert.match(asService.output, /active data connections will leave from ephemeral ports/);
  assert.match(asService.output, /"activePort":0,/);
  const asRoot = await serveOnce(dir, dataDir, undefined, 20);
  assert.match(asRoot.output, /"activePort":20,/);
  assert.doesNotMatch(asRoot.output, /ephemeral ports/);
});
