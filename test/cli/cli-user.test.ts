// The `user` commands, run as an operator would, against the account database `serve` reads.
import { test } from "node:test";
import assert from "node:assert/strict";
import { chownSync, existsSync, mkdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { openAccountStore } from "../../src/accounts/open.js";
import { checkLeaks } from "../helpers/leaks.js";
import { assertFailure, assertSuccess, edgeftp, workspace } from "../helpers/cli.js";

checkLeaks();

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
  assert.match(header, /^NAME\s+ENABLED\s+PERMISSIONS\s+HOME\s+USED\s+SETTINGS$/);
  assert.deepEqual(row.split(/\s+/), ["alice", "yes", "list,read,write,delete,rename,mkdir", home, "-", "-"]);

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
  // Back to a default home that is now another account's only on purpose, with --home.
  assertFailure(await edgeftp(dir, ["user", "set", "dan", "--home", "default", "--data-dir", dataDir]), /is the home of "viewer"/);
  assertSuccess(await edgeftp(dir, ["user", "remove", "viewer", "--data-dir", dataDir]));
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

test("run as root for a node that runs as another user, user add gives the new home and account database to the data dir's owner", { skip: process.getuid?.() !== 0 && "needs root" }, async (t) => {
  const { dir, dataDir } = workspace(t);
  mkdirSync(dataDir);
  const nobody = 65534;
  chownSync(dataDir, nobody, nobody);
  assertSuccess(await edgeftp(dir, ["user", "add", "svc", "--password", "pw", "--data-dir", dataDir]));
  for (const made of [join(dataDir, "homes"), join(dataDir, "homes", "svc"), join(dataDir, "accounts.db")]) {
    const owner = statSync(made);
    assert.deepEqual([owner.uid, owner.gid], [nobody, nobody], made);
  }
});

test("a home inside another account's, or around one, is refused: the outer account could rename the inner home away and put a symlink in its place", async (t) => {
  const { dir, dataDir } = workspace(t);
  assertSuccess(await edgeftp(dir, ["user", "add", "outer", "--password", "pw", "--data-dir", dataDir]));
  mkdirSync(join(dataDir, "homes", "outer", "site"));
  assertFailure(
    await edgeftp(dir, ["user", "add", "inner", "--password", "pw", "--home", join(dataDir, "homes", "outer", "site"), "--data-dir", dataDir]),
    /inside the home of "outer"/,
  );
  mkdirSync(join(dir, "sites", "a"), { recursive: true });
  assertSuccess(await edgeftp(dir, ["user", "add", "a", "--password", "pw", "--home", join(dir, "sites", "a"), "--data-dir", dataDir]));
  assertFailure(await edgeftp(dir, ["user", "set", "outer", "--home", join(dir, "sites"), "--data-dir", dataDir]), /around the home of "a"/);
  // The same home (a shared or read-only view) stays allowed.
  assertSuccess(await edgeftp(dir, ["user", "add", "viewer", "--password", "pw", "--home", join(dataDir, "homes", "outer"), "--read-only", "--data-dir", dataDir]));
});

test("a new account without --home never inherits files: a removed account's default home, or another account's --home, is refused", async (t) => {
  const { dir, dataDir } = workspace(t);
  assertSuccess(await edgeftp(dir, ["user", "add", "old", "--password", "pw", "--data-dir", dataDir]));
  writeFileSync(join(dataDir, "homes", "old", "private.txt"), "old customer's data");
  assertSuccess(await edgeftp(dir, ["user", "remove", "old", "--data-dir", dataDir]));
  assertFailure(await edgeftp(dir, ["user", "add", "old", "--password", "pw", "--data-dir", dataDir]), /already holds files/);
  // On purpose, with --home, it is reused.
  assertSuccess(await edgeftp(dir, ["user", "add", "old", "--password", "pw", "--home", join(dataDir, "homes", "old"), "--data-dir", dataDir]));

  mkdirSync(join(dataDir, "homes", "future"));
  assertSuccess(await edgeftp(dir, ["user", "add", "site", "--password", "pw", "--home", join(dataDir, "homes", "future"), "--data-dir", dataDir]));
  assertFailure(await edgeftp(dir, ["user", "add", "future", "--password", "pw", "--data-dir", dataDir]), /is the home of "site"/);

  // Nor an account set back to the default home from another one.
  mkdirSync(join(dataDir, "homes", "zed"));
  writeFileSync(join(dataDir, "homes", "zed", "old.txt"), "a removed account's data");
  mkdirSync(join(dir, "ext"));
  assertSuccess(await edgeftp(dir, ["user", "add", "zed", "--password", "pw", "--home", join(dir, "ext"), "--data-dir", dataDir]));
  assertFailure(await edgeftp(dir, ["user", "set", "zed", "--home", "default", "--data-dir", dataDir]), /already holds files/);
});
