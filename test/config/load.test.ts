import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  ConfigError,
  configOptions,
  homeFor,
  loadConfig,
  resolveDataPaths,
  type LoadConfigInput,
} from "../../src/config/load.js";
import { configSchema } from "../../src/config/schema.js";

/** Writes `yaml` to a file in a temporary directory removed when the test ends. */
function yamlFile(t: TestContext, yaml: string): string {
  const dir = mkdtempSync(join(tmpdir(), "edgeftp-config-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, "edgeftp.yaml");
  writeFileSync(file, yaml);
  return file;
}

/** The ConfigError message `loadConfig(input)` throws; fails the test when it does not throw one. */
function configError(input: LoadConfigInput): string {
  try {
    loadConfig(input);
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    assert.ok(!err.message.includes("\n"), `one line: ${err.message}`);
    return err.message;
  }
  assert.fail("loadConfig accepted an invalid configuration");
}

function option(path: string) {
  const found = configOptions.find((o) => o.path === path);
  assert.ok(found, `no option for ${path}`);
  return found;
}

test("the schema alone yields every default, nested sections included", () => {
  const config = loadConfig({ env: {}, flags: {} });
  assert.deepEqual(config, configSchema.parse({}));
  assert.equal(config.port, 21);
  assert.equal(config.pasv.ports, "21000-21100");
  assert.equal(config.pasv.enabled, true);
  assert.equal(config.timeouts.login, 60);
  assert.equal(config.log.level, "info");
});

test("precedence is flag > environment > file > default, key by key", (t) => {
  const file = yamlFile(t, "port: 2000\nbanner: from file\npasv:\n  ports: 30000-30010\ntimeouts:\n  login: 10\n");
  const config = loadConfig({
    file,
    env: { EDGEFTP_PORT: "3000", EDGEFTP_TIMEOUTS_LOGIN: "20", EDGEFTP_LOG_LEVEL: "debug" },
    flags: { port: "4000", logLevel: "warn" },
  });
  assert.equal(config.port, 4000, "flag beats env and file");
  assert.equal(config.log.level, "warn", "flag beats env");
  assert.equal(config.timeouts.login, 20, "env beats file");
  assert.equal(config.pasv.ports, "30000-30010", "file beats default");
  assert.equal(config.banner, "from file");
  assert.equal(config.timeouts.idle, 300, "default fills what nobody set, inside a section the file has");
  assert.equal(config.pasv.enabled, true);
});

test("environment values are strings converted by the schema; an empty variable counts as unset", (t) => {
  const file = yamlFile(t, "pasv:\n  enabled: true\nport: 2121\n");
  const config = loadConfig({
    file,
    env: { EDGEFTP_PASV_ENABLED: "false", EDGEFTP_PORT: "", EDGEFTP_ACTIVE_PORT: "0" },
    flags: { pasvAllowForeignAddress: true },
  });
  assert.equal(config.pasv.enabled, false);
  assert.equal(config.port, 2121);
  assert.equal(config.active.port, 0);
  assert.equal(config.pasv.allowForeignAddress, true, "a bare boolean flag (commander gives true) turns it on");
});

test("flag and environment names are derived from the schema path", () => {
  assert.deepEqual(
    (({ flag, attribute, env, kind, default: value }) => ({ flag, attribute, env, kind, value }))(option("pasv.ports")),
    { flag: "--pasv-ports", attribute: "pasvPorts", env: "EDGEFTP_PASV_PORTS", kind: "string", value: "21000-21100" },
  );
  assert.equal(option("dataDir").flag, "--data-dir");
  assert.equal(option("dataDir").env, "EDGEFTP_DATA_DIR");
  assert.equal(option("timeouts.login").flag, "--timeouts-login");
  assert.equal(option("timeouts.login").env, "EDGEFTP_TIMEOUTS_LOGIN");
  assert.equal(option("timeouts.login").default, 60);
  assert.equal(option("active.port").flag, "--active-port");
  assert.equal(option("pasv.allowForeignAddress").env, "EDGEFTP_PASV_ALLOW_FOREIGN_ADDRESS");
  assert.deepEqual(option("log.level").choices, ["fatal", "error", "warn", "info", "debug", "trace", "silent"]);
});

test("every leaf of the schema has exactly one option, with a description", () => {
  const leaves = (value: unknown, prefix: string): string[] =>
    typeof value === "object" && value !== null
      ? Object.entries(value).flatMap(([key, child]) => leaves(child, prefix === "" ? key : `${prefix}.${key}`))
      : [prefix];
  assert.deepEqual(
    configOptions.map((o) => o.path),
    leaves(configSchema.parse({}), ""),
  );
  assert.equal(new Set(configOptions.map((o) => o.flag)).size, configOptions.length);
  for (const o of configOptions) assert.ok(o.description.length > 0, `${o.path} has a description`);
});

test("a bad port range is reported with its key and where it came from", (t) => {
  assert.equal(
    configError({ env: {}, flags: { pasvPorts: "21000" } }),
    "config: pasv.ports: expected A-B, e.g. 21000-21100 (from --pasv-ports)",
  );
  assert.equal(
    configError({ env: { EDGEFTP_PASV_PORTS: "30-20" }, flags: {} }),
    "config: pasv.ports: range must satisfy 1 <= A <= B <= 65535 (from EDGEFTP_PASV_PORTS)",
  );
  const file = yamlFile(t, "pasv:\n  ports: 1-70000\n");
  assert.equal(
    configError({ file, env: {}, flags: {} }),
    `config: pasv.ports: range must satisfy 1 <= A <= B <= 65535 (in ${file})`,
  );
});

test("bad values name their key: port, seconds, booleans, enums", () => {
  assert.equal(
    configError({ env: {}, flags: { port: "70000" } }),
    "config: port: expected a port number from 0 to 65535 (from --port)",
  );
  assert.match(configError({ env: { EDGEFTP_TIMEOUTS_LOGIN: "soon" }, flags: {} }), /^config: timeouts\.login: /);
  assert.match(configError({ env: {}, flags: { pasvEnabled: "yes" } }), /^config: pasv\.enabled: expected true or false/);
  assert.match(configError({ env: {}, flags: { logLevel: "loud" } }), /^config: log\.level: expected one of fatal, /);
});

test("networks and addresses are checked for what they are, not only their shape", () => {
  for (const rules of ["127.0.0.0/8=127.0.0.999", "10.0.0.0/33=10.0.0.5", "10.0.0.0/8=::1", "10.0.0.0/8", "10.0.0.0/8=10.0.0.5=x"]) {
    assert.match(configError({ env: {}, flags: { pasvAddressOverrides: rules } }), /^config: pasv\.addressOverrides: expected comma-separated CIDR=IPv4 rules/, rules);
  }
  for (const list of ["300.0.0.0/8", "10.0.0.0/40", "::1/129", "::1"]) {
    assert.match(configError({ env: {}, flags: { bansAllowList: list } }), /^config: bans\.allowList: expected comma-separated CIDRs/, list);
  }
  // A 227 reply holds four decimal bytes: no IPv6 literal, no shorthand only inet_aton reads.
  for (const address of ["::1", "2001:db8::5", "1.2.3", "300.1.1.1", "ftp example"]) {
    assert.match(configError({ env: {}, flags: { pasvAddress: address } }), /^config: pasv\.address: expected an IPv4 address \(a\.b\.c\.d\) or a hostname/, address);
  }
  const good = loadConfig({ env: {}, flags: { pasvAddressOverrides: "10.0.0.0/8=10.0.0.5, 192.168.0.0/16=192.168.1.1", bansAllowList: "10.0.0.0/8,::1/128,fd00::/8", pasvAddress: "ftp.example.com" } });
  assert.equal(good.pasv.addressOverrides, "10.0.0.0/8=10.0.0.5, 192.168.0.0/16=192.168.1.1");
  assert.equal(good.pasv.address, "ftp.example.com");
});

test("a timeout longer than a Node timer can wait is refused, not turned into 1 ms", () => {
  for (const flags of [{ timeoutsData: "2200000" }, { timeoutsLogin: "2200000" }, { limitsLoginFailureDelay: "9999999" }]) {
    assert.match(configError({ env: {}, flags }), /expected at most 2147483 seconds/, JSON.stringify(flags));
  }
  assert.equal(loadConfig({ env: {}, flags: { timeoutsIdle: "2147483" } }).timeouts.idle, 2147483);
});

test("unknown YAML keys are rejected by name, at any depth", (t) => {
  const nested = yamlFile(t, "pasv:\n  portz: 21000-21100\n");
  assert.match(configError({ file: nested, env: {}, flags: {} }), /^config: pasv\.portz: unknown key \(known here: enabled, ports, /);
  const top = yamlFile(t, "prot: 21\n");
  assert.match(configError({ file: top, env: {}, flags: {} }), /^config: prot: unknown key/);
});

test("a malformed, missing or non-mapping file is a one-line error naming the file", (t) => {
  const bad = yamlFile(t, "port: 21\npasv: ports: 1-2\n");
  assert.match(configError({ file: bad, env: {}, flags: {} }), /^config: .*edgeftp\.yaml: invalid YAML: .* at line 2, column \d+$/);
  assert.equal(configError({ file: "/no/such/edgeftp.yaml", env: {}, flags: {} }), "config: file /no/such/edgeftp.yaml not found");
  const list = yamlFile(t, "- port\n");
  assert.match(configError({ file: list, env: {}, flags: {} }), /expected a mapping of keys at the top level$/);
  const section = yamlFile(t, "pasv: 5\n");
  assert.match(configError({ file: section, env: {}, flags: { pasvPorts: "1-2" } }), /^config: pasv: expected a mapping of keys \(in /);
});

test("an empty file sets nothing", (t) => {
  const file = yamlFile(t, "# nothing here yet\n");
  assert.deepEqual(loadConfig({ file, env: {}, flags: {} }), configSchema.parse({}));
});

test("data paths are absolute and derived from dataDir unless set", () => {
  const config = loadConfig({ env: {}, flags: { dataDir: "/srv/ftp" } });
  assert.deepEqual(resolveDataPaths(config), {
    dataDir: "/srv/ftp",
    sqlitePath: "/srv/ftp/accounts.db",
    homesDir: "/srv/ftp/homes",
  });
  const own = loadConfig({ env: { EDGEFTP_ACCOUNTS_SQLITE_PATH: "/var/lib/edgeftp/users.db" }, flags: { dataDir: "/srv/ftp" } });
  assert.equal(resolveDataPaths(own).sqlitePath, "/var/lib/edgeftp/users.db");
  const relative = loadConfig({ env: {}, flags: {} });
  assert.equal(resolveDataPaths(relative).dataDir, join(process.cwd(), "edgeftp-data"));
  assert.equal(homeFor(config, { name: "alice", home: null }), "/srv/ftp/homes/alice");
  assert.equal(homeFor(config, { name: "alice", home: "/data/alice" }), "/data/alice");
});
