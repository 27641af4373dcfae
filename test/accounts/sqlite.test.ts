import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { MIGRATIONS } from "../../src/accounts/migrations.js";
import { openAccountStore } from "../../src/accounts/open.js";
import { SqliteAccountStore } from "../../src/accounts/sqlite.js";
import { ALL_PERMISSIONS, AccountError, type AccountErrorCode } from "../../src/accounts/types.js";

/**
 * A database path in a fresh temporary directory (under a parent `open` must create). Every store
 * opened through the returned `open` is closed, and the directory removed, when the test ends.
 */
function tempDb(t: TestContext): { path: string; open: () => SqliteAccountStore } {
  const dir = mkdtempSync(join(tmpdir(), "edgeftp-accounts-"));
  const path = join(dir, "data", "accounts.db");
  const opened: SqliteAccountStore[] = [];
  t.after(async () => {
    for (const store of opened) await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return {
    path,
    open: () => {
      const store = SqliteAccountStore.open(path);
      opened.push(store);
      return store;
    },
  };
}

/** Reads the database behind the store's back, as an operator with the sqlite3 shell would. */
function rawQuery<T>(path: string, sql: string): T[] {
  const db = new Database(path, { readonly: true });
  try {
    return db.prepare(sql).all() as T[];
  } finally {
    db.close();
  }
}

function isAccountError(code: AccountErrorCode) {
  return (err: unknown): boolean => {
    assert.ok(err instanceof AccountError, `expected AccountError, got ${String(err)}`);
    assert.equal(err.code, code);
    return true;
  };
}

test("create applies defaults, and get returns the same account", async (t) => {
  const store = tempDb(t).open();
  const before = Date.now();
  const created = await store.create({ name: "alice", password: "s3cret" });
  assert.deepEqual(
    { ...created, createdAt: undefined },
    { name: "alice", home: null, permissions: ALL_PERMISSIONS, enabled: true, createdAt: undefined, tlsPolicy: null, tlsSessionReuse: null,
      quotaBytes: null, quotaFiles: null, bandwidthUp: null, bandwidthDown: null, maxSessions: null, usage: null },
  );
  assert.ok(created.createdAt.getTime() >= before && created.createdAt.getTime() <= Date.now());
  assert.deepEqual(await store.get("alice"), created);
  assert.equal(await store.get("bob"), null);
});

test("TLS overrides are stored, updated, reset to the node's default with null, and validated", async (t) => {
  const store = tempDb(t).open();
  const created = await store.create({ name: "cam1", password: "pw", tlsPolicy: "optional", tlsSessionReuse: false });
  assert.equal(created.tlsPolicy, "optional");
  assert.equal(created.tlsSessionReuse, false);
  const forced = await store.update("cam1", { tlsPolicy: "data" });
  assert.equal(forced.tlsPolicy, "data");
  assert.equal(forced.tlsSessionReuse, false, "an absent field is left unchanged");
  const reset = await store.update("cam1", { tlsPolicy: null, tlsSessionReuse: null });
  assert.deepEqual([reset.tlsPolicy, reset.tlsSessionReuse], [null, null]);
  assert.deepEqual(await store.get("cam1"), reset);
  await assert.rejects(store.update("cam1", { tlsPolicy: "always" as never }), { name: "AccountError", code: "invalid" });
});

test("limits are stored and validated; usage is unmeasured until set, then adjusted atomically and never below zero", async (t) => {
  const store = tempDb(t).open();
  const created = await store.create({ name: "quota", password: "pw", quotaBytes: 1000, quotaFiles: 10, bandwidthDown: 5000 });
  assert.deepEqual([created.quotaBytes, created.quotaFiles, created.bandwidthDown, created.bandwidthUp, created.usage], [1000, 10, 5000, null, null]);
  await store.addUsage("quota", { bytes: 5, files: 1 });
  assert.equal((await store.get("quota"))!.usage, null, "adding to an unmeasured total invents nothing");
  await store.setUsage("quota", { bytes: 100, files: 2 });
  await store.addUsage("quota", { bytes: 50, files: 1 });
  assert.deepEqual((await store.get("quota"))!.usage, { bytes: 150, files: 3 });
  await store.addUsage("quota", { bytes: -1000, files: -10 });
  assert.deepEqual((await store.get("quota"))!.usage, { bytes: 0, files: 0 });
  const updated = await store.update("quota", { quotaBytes: null, maxSessions: 2 });
  assert.deepEqual([updated.quotaBytes, updated.quotaFiles, updated.maxSessions], [null, 10, 2]);
  await assert.rejects(store.update("quota", { quotaBytes: -1 }), { name: "AccountError", code: "invalid" });
  await assert.rejects(store.update("quota", { bandwidthUp: 1.5 }), { name: "AccountError", code: "invalid" });
  await assert.rejects(store.setUsage("nobody", { bytes: 0, files: 0 }), { name: "AccountError", code: "not-found" });
});

test("create stores home normalized, permissions deduplicated in canonical order, and enabled", async (t) => {
  const store = tempDb(t).open();
  const created = await store.create({
    name: "bob@example.com",
    password: "pw",
    home: "/srv/ftp/./bob/",
    permissions: ["read", "list", "read"],
    enabled: false,
  });
  assert.equal(created.home, "/srv/ftp/bob");
  assert.deepEqual(created.permissions, ["list", "read"]);
  assert.equal(created.enabled, false);
  assert.deepEqual(await store.get("bob@example.com"), created);

  const none = await store.create({ name: "nobody", password: "pw", permissions: [] });
  assert.deepEqual((await store.get(none.name))?.permissions, []);
});

test("list returns every account sorted by name", async (t) => {
  const store = tempDb(t).open();
  assert.deepEqual(await store.list(), []);
  for (const name of ["carol", "alice", "bob"]) await store.create({ name, password: "pw" });
  assert.deepEqual(
    (await store.list()).map((a) => a.name),
    ["alice", "bob", "carol"],
  );
});

test("update changes only the fields given, and null resets home", async (t) => {
  const store = tempDb(t).open();
  const created = await store.create({ name: "alice", password: "pw", home: "/srv/alice" });

  const readOnly = await store.update("alice", { permissions: ["read", "list"] });
  assert.deepEqual(readOnly, { ...created, permissions: ["list", "read"] });

  const disabled = await store.update("alice", { enabled: false, home: "/data/alice" });
  assert.deepEqual(disabled, { ...readOnly, enabled: false, home: "/data/alice" });

  const unchanged = await store.update("alice", {});
  assert.deepEqual(unchanged, disabled);

  const defaultHome = await store.update("alice", { home: null });
  assert.equal(defaultHome.home, null);
  assert.deepEqual(await store.get("alice"), defaultHome);
});

test("update rejects an unknown account, a relative home and an unknown permission", async (t) => {
  const store = tempDb(t).open();
  await store.create({ name: "alice", password: "pw" });
  await assert.rejects(store.update("bob", { enabled: false }), isAccountError("not-found"));
  await assert.rejects(store.update("alice", { home: "srv/alice" }), isAccountError("invalid"));
  await assert.rejects(
    store.update("alice", { permissions: ["read", "chmod" as never] }),
    isAccountError("invalid"),
  );
  assert.deepEqual((await store.get("alice"))?.permissions, ALL_PERMISSIONS);
});

test("setPassword replaces the password", async (t) => {
  const store = tempDb(t).open();
  await store.create({ name: "alice", password: "old" });
  await store.setPassword("alice", "new");
  assert.equal(await store.authenticate("alice", "old"), null);
  assert.equal((await store.authenticate("alice", "new"))?.name, "alice");
  await assert.rejects(store.setPassword("bob", "pw"), isAccountError("not-found"));
  await assert.rejects(store.setPassword("alice", ""), isAccountError("invalid"));
});

test("remove deletes the account, and a second remove is not-found", async (t) => {
  const store = tempDb(t).open();
  await store.create({ name: "alice", password: "pw" });
  await store.create({ name: "bob", password: "pw" });
  await store.remove("alice");
  assert.equal(await store.get("alice"), null);
  assert.equal(await store.authenticate("alice", "pw"), null);
  assert.deepEqual(
    (await store.list()).map((a) => a.name),
    ["bob"],
  );
  await assert.rejects(store.remove("alice"), isAccountError("not-found"));
});

test("a duplicate name is refused with exists and leaves the original untouched", async (t) => {
  const store = tempDb(t).open();
  const original = await store.create({ name: "alice", password: "first", home: "/srv/a" });
  await assert.rejects(store.create({ name: "alice", password: "second" }), isAccountError("exists"));
  assert.deepEqual(await store.get("alice"), original);
  assert.equal((await store.authenticate("alice", "first"))?.name, "alice");
  assert.equal(await store.authenticate("alice", "second"), null);
});

test("invalid names are refused, valid edge cases accepted", async (t) => {
  const store = tempDb(t).open();
  for (const name of ["../x", "", "a".repeat(65), "-x", ".x", "..", "a/b", "a b", "a\0b", "é"]) {
    await assert.rejects(store.create({ name, password: "pw" }), isAccountError("invalid"), JSON.stringify(name));
  }
  for (const name of ["a".repeat(64), "user@example.com", "a.b-c_d", "_svc", "x-", "0"]) {
    await store.create({ name, password: "pw" });
  }
  assert.equal((await store.list()).length, 6);
});

test("a relative home, an empty password and an unknown permission are refused on create", async (t) => {
  const store = tempDb(t).open();
  for (const home of ["srv/alice", "./alice", "../alice", "", "/srv/\0x"]) {
    await assert.rejects(store.create({ name: "alice", password: "pw", home }), isAccountError("invalid"), home);
  }
  await assert.rejects(store.create({ name: "alice", password: "" }), isAccountError("invalid"));
  await assert.rejects(
    store.create({ name: "alice", password: "pw", permissions: ["admin" as never] }),
    isAccountError("invalid"),
  );
  assert.deepEqual(await store.list(), []);
});

test("authenticate: right password, wrong password, unknown name, disabled account", async (t) => {
  const store = tempDb(t).open();
  const alice = await store.create({ name: "alice", password: "s3cret" });
  await store.create({ name: "dave", password: "s3cret", enabled: false });

  assert.deepEqual(await store.authenticate("alice", "s3cret"), alice);
  assert.equal(await store.authenticate("alice", "S3cret"), null);
  assert.equal(await store.authenticate("alice", ""), null);
  assert.equal(await store.authenticate("mallory", "s3cret"), null);
  assert.equal(await store.authenticate("../alice", "s3cret"), null);
  assert.equal(await store.authenticate("dave", "s3cret"), null);

  await store.update("dave", { enabled: true });
  assert.equal((await store.authenticate("dave", "s3cret"))?.name, "dave");
});

test("authenticate spends a password verification on unknown names too", async (t) => {
  const store = tempDb(t).open();
  await store.create({ name: "alice", password: "s3cret" });
  const elapsed = async (name: string): Promise<number> => {
    const start = process.hrtime.bigint();
    await store.authenticate(name, "wrong");
    return Number(process.hrtime.bigint() - start);
  };
  const known: number[] = [];
  const unknown: number[] = [];
  for (let i = 0; i < 3; i++) {
    known.push(await elapsed("alice"));
    unknown.push(await elapsed("mallory"));
  }
  const median = (xs: number[]) => xs.sort((a, b) => a - b)[1]!;
  // A lookup without argon2 takes microseconds against tens of milliseconds: a loose bound
  // tells the two apart without being sensitive to machine load.
  assert.ok(
    median(unknown) > median(known) * 0.3,
    `unknown ${median(unknown)}ns vs known ${median(known)}ns`,
  );
});

test("the stored hash is argon2id, never the plain password", async (t) => {
  const db = tempDb(t);
  const store = db.open();
  await store.create({ name: "alice", password: "plain-text-pw" });
  await store.setPassword("alice", "another-pw");
  await store.close();
  const [row] = rawQuery<{ password_hash: string }>(db.path, "SELECT password_hash FROM accounts");
  assert.match(row!.password_hash, /^\$argon2id\$/);
  assert.ok(!row!.password_hash.includes("another-pw"));
  assert.ok(!row!.password_hash.includes("plain-text-pw"));
});

test("reopening applies no migration twice: one schema_migrations row per version", async (t) => {
  const db = tempDb(t);
  const first = db.open();
  const alice = await first.create({ name: "alice", password: "pw" });
  await first.close();
  for (let i = 0; i < 2; i++) await db.open().close();

  const rows = rawQuery<{ version: number; applied_at: number }>(
    db.path,
    "SELECT version, applied_at FROM schema_migrations ORDER BY version",
  );
  assert.deepEqual(
    rows.map((r) => r.version),
    MIGRATIONS.map((m) => m.version),
  );
  assert.ok(rows.every((r) => Number.isInteger(r.applied_at) && r.applied_at > 0));
  assert.deepEqual(await db.open().get("alice"), alice);
});

test("a database migrated by a newer edgeftp is refused, and left unlocked", async (t) => {
  const db = tempDb(t);
  await db.open().close();
  const raw = new Database(db.path);
  raw.prepare("INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)").run(9999, Date.now());
  raw.close();
  assert.throws(() => db.open(), /schema version 9999, newer/);
  const writer = new Database(db.path, { timeout: 0 });
  writer.prepare("DELETE FROM schema_migrations WHERE version = 9999").run();
  writer.close();
  await db.open().close();
});

test("migrations are numbered 1..n and use only SQL that SQLite and PostgreSQL share", () => {
  assert.deepEqual(
    MIGRATIONS.map((m) => m.version),
    MIGRATIONS.map((_, i) => i + 1),
  );
  for (const m of MIGRATIONS) {
    assert.ok(m.description.length > 0);
    assert.doesNotMatch(m.sql, /\b(AUTOINCREMENT|SERIAL|BIGSERIAL|BOOLEAN|DATETIME|TIMESTAMP|PRAGMA)\b/i, `migration ${m.version}`);
  }
});

test("close releases the file: WAL checkpointed away, reopen works; the file is owner-only", async (t) => {
  const db = tempDb(t);
  const store = db.open();
  await store.create({ name: "alice", password: "pw" });
  assert.equal(rawQuery<{ journal_mode: string }>(db.path, "PRAGMA journal_mode")[0]?.journal_mode, "wal");
  await store.close();
  assert.equal(existsSync(`${db.path}-wal`), false);
  assert.equal(existsSync(`${db.path}-shm`), false);
  assert.equal(statSync(db.path).mode & 0o777, 0o600);
  await assert.rejects(store.get("alice"));

  const reopened = db.open();
  assert.equal((await reopened.authenticate("alice", "pw"))?.name, "alice");
});

test("two stores on one file (server and CLI) see each other's writes", async (t) => {
  const db = tempDb(t);
  const server = db.open();
  const cli = db.open();
  await cli.create({ name: "alice", password: "pw" });
  assert.equal((await server.authenticate("alice", "pw"))?.name, "alice");
  await cli.update("alice", { enabled: false });
  assert.equal(await server.authenticate("alice", "pw"), null);
});

test("the revision stays while nothing is written, and moves with every write, ours or another store's", async (t) => {
  const db = tempDb(t);
  const server = db.open();
  const cli = db.open();
  await server.create({ name: "alice", password: "pw" });
  let seen = server.revision();
  const moved = async (what: string, write: () => Promise<unknown>) => {
    await server.get("alice");
    assert.equal(server.revision(), seen, `unchanged before ${what}`);
    await write();
    const now = server.revision();
    assert.notEqual(now, seen, `moved by ${what}`);
    seen = now;
  };
  await moved("another store's update", () => cli.update("alice", { quotaBytes: 100 }));
  await moved("another store's usage", () => cli.setUsage("alice", { bytes: 1, files: 1 }));
  await moved("our update", () => server.update("alice", { quotaBytes: null }));
  await moved("our usage change", () => server.addUsage("alice", { bytes: 1, files: 0 }));
  await moved("our password change", () => server.setPassword("alice", "pw2"));
  await moved("another store's removal", () => cli.remove("alice"));
});

test("openAccountStore opens the SQLite store at the configured path", async (t) => {
  const db = tempDb(t);
  const store = openAccountStore({ driver: "sqlite", sqlitePath: db.path });
  t.after(() => store.close());
  await store.create({ name: "alice", password: "pw" });
  assert.equal(existsSync(db.path), true);
  assert.equal((await store.get("alice"))?.name, "alice");
});

test(":memory: gives a private database and creates no file", async (t) => {
  const store = SqliteAccountStore.open(":memory:");
  t.after(() => store.close());
  await store.create({ name: "alice", password: "pw" });
  assert.equal((await store.list()).length, 1);
  assert.equal(existsSync(":memory:"), false);
});

test("a serving node's store gives up on another writer's lock at once (its usage write fails, to be retried), the CLI's waits", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "edgeftp-accounts-"));
  const path = join(dir, "accounts.db");
  const cli = openAccountStore({ driver: "sqlite", sqlitePath: path });
  const node = openAccountStore({ driver: "sqlite", sqlitePath: path, server: true });
  const holder = new Database(path);
  t.after(async () => {
    holder.close();
    await node.close();
    await cli.close();
    rmSync(dir, { recursive: true, force: true });
  });
  await cli.create({ name: "q", password: "pw" });
  await cli.setUsage("q", { bytes: 0, files: 0 });
  holder.exec("BEGIN IMMEDIATE"); // another process's write transaction (a sqlite3 shell, a backup)
  const started = performance.now();
  await assert.rejects(node.addUsage("q", { bytes: 1, files: 1 }), /locked|busy/i);
  // Synchronous: the whole node waited this long. better-sqlite3's default would be 5 s.
  assert.ok(performance.now() - started < 1000, `blocked ${Math.round(performance.now() - started)} ms`);
  holder.exec("COMMIT");
  await node.addUsage("q", { bytes: 1, files: 1 });
  assert.deepEqual((await cli.get("q"))!.usage, { bytes: 1, files: 1 });
});
