/**
 * The embedded account store: one SQLite file through better-sqlite3. Its queries are
 * synchronous and fast (single-row lookups on a primary key), so only password hashing, which
 * runs on libuv's thread pool, actually waits; the async methods exist for the contract shared
 * with the PostgreSQL store.
 */
import { closeSync, mkdirSync, openSync } from "node:fs";
import { dirname, isAbsolute, resolve } from "node:path";
import Database from "better-sqlite3";
import { pendingMigrations } from "./migrations.js";
import { DUMMY_HASH, hashPassword, verifyPassword } from "./password.js";
import {
  ALL_PERMISSIONS,
  AccountError,
  isAccountName,
  MAX_ACCOUNT_NAME_LENGTH,
  PERMISSIONS,
  TLS_POLICIES,
  type TlsPolicy,
  type Account,
  type AccountPatch,
  type AccountStore,
  type NewAccount,
  type Permission,
  type Usage,
} from "./types.js";

/** A row of `accounts`, as better-sqlite3 returns it. */
interface AccountRow {
  name: string;
  password_hash: string;
  home: string | null;
  permissions: string;
  enabled: number;
  created_at: number;
  tls_policy: string | null;
  tls_session_reuse: number | null;
  quota_bytes: number | null;
  quota_files: number | null;
  used_bytes: number | null;
  used_files: number | null;
  bandwidth_up: number | null;
  bandwidth_down: number | null;
  max_sessions: number | null;
}

/** The numeric limits of an account: patch field → column. */
const LIMIT_COLUMNS = {
  quotaBytes: "quota_bytes",
  quotaFiles: "quota_files",
  bandwidthUp: "bandwidth_up",
  bandwidthDown: "bandwidth_down",
  maxSessions: "max_sessions",
} as const satisfies Record<string, keyof AccountRow>;

/** How long a writer waits for another connection's lock (the CLI while the server runs) before SQLITE_BUSY. */
const BUSY_TIMEOUT_MS = 5000;

/** Account store backed by a SQLite file. */
export class SqliteAccountStore implements AccountStore {
  readonly #db: Database.Database;
  readonly #selectOne: Database.Statement<[string], AccountRow>;
  readonly #selectAll: Database.Statement<[], AccountRow>;
  readonly #insert: Database.Statement<[AccountRow], unknown>;
  readonly #updateSettings: Database.Statement<[AccountRow], unknown>;
  readonly #updatePassword: Database.Statement<[string, string], unknown>;
  readonly #delete: Database.Statement<[string], unknown>;
  readonly #setUsage: Database.Statement<[number, number, string], unknown>;
  readonly #addUsage: Database.Statement<[number, number, string], unknown>;
  readonly #forgetUsage: Database.Statement<[], unknown>;
  readonly #forgetUsageOf: Database.Statement<[string], unknown>;
  readonly #dataVersion: Database.Statement<[], number>;
  /** See {@link revision}: bumped by every write of ours and whenever SQLite's data_version moves. */
  #revision = 0;
  #seenDataVersion = -1;

  private constructor(db: Database.Database) {
    this.#db = db;
    // Changes when another connection (the CLI, another process) commits; never for our own writes.
    this.#dataVersion = db.prepare<[], number>("PRAGMA data_version").pluck();
    this.#selectOne = db.prepare("SELECT * FROM accounts WHERE name = ?");
    this.#selectAll = db.prepare("SELECT * FROM accounts ORDER BY name");
    this.#insert = db.prepare(
      `INSERT INTO accounts (name, password_hash, home, permissions, enabled, created_at, tls_policy, tls_session_reuse,
         quota_bytes, quota_files, used_bytes, used_files, bandwidth_up, bandwidth_down, max_sessions)
       VALUES (@name, @password_hash, @home, @permissions, @enabled, @created_at, @tls_policy, @tls_session_reuse,
         @quota_bytes, @quota_files, @used_bytes, @used_files, @bandwidth_up, @bandwidth_down, @max_sessions)`,
    );
    this.#updateSettings = db.prepare(
      `UPDATE accounts SET home = @home, permissions = @permissions, enabled = @enabled,
       tls_policy = @tls_policy, tls_session_reuse = @tls_session_reuse, quota_bytes = @quota_bytes,
       quota_files = @quota_files, bandwidth_up = @bandwidth_up, bandwidth_down = @bandwidth_down,
       max_sessions = @max_sessions WHERE name = @name`,
    );
    this.#setUsage = db.prepare("UPDATE accounts SET used_bytes = ?, used_files = ? WHERE name = ?");
    // Unmeasured usage (NULL) stays NULL: adding to an unknown total would invent a number.
    this.#addUsage = db.prepare(
      "UPDATE accounts SET used_bytes = MAX(0, used_bytes + ?), used_files = MAX(0, used_files + ?) WHERE name = ? AND used_bytes IS NOT NULL",
    );
    const forget = "UPDATE accounts SET used_bytes = NULL, used_files = NULL WHERE (used_bytes IS NOT NULL OR used_files IS NOT NULL)";
    this.#forgetUsage = db.prepare(forget);
    this.#forgetUsageOf = db.prepare(`${forget} AND name = ?`);
    this.#updatePassword = db.prepare("UPDATE accounts SET password_hash = ? WHERE name = ?");
    this.#delete = db.prepare("DELETE FROM accounts WHERE name = ?");
  }

  /**
   * Opens (creating when missing) the database at `path`, creating its parent directory, and
   * brings its schema up to date. `":memory:"` gives a private in-memory database.
   * Throws when the file was migrated by a newer edgeftp.
   */
  static open(path: string, busyTimeoutMs = BUSY_TIMEOUT_MS): SqliteAccountStore {
    if (path !== ":memory:") {
      mkdirSync(dirname(path), { recursive: true });
      // The file holds password hashes: create it owner-only. SQLite gives its -wal and -shm
      // files the database file's mode, so they inherit this.
      closeSync(openSync(path, "a", 0o600));
    }
    const db = new Database(path, { timeout: BUSY_TIMEOUT_MS });
    try {
      // WAL lets the server keep reading while the CLI or admin API writes.
      db.pragma("journal_mode = WAL");
      migrate(db);
      // Waited for fully while migrating (the file is being created, the CLI may be writing).
      db.pragma(`busy_timeout = ${Math.max(0, Math.floor(busyTimeoutMs))}`);
      return new SqliteAccountStore(db);
    } catch (err) {
      db.close();
      // "file is not a database" and the like: say which file.
      if (err instanceof Error && !err.message.includes(path)) err.message = `${path}: ${err.message}`;
      throw err;
    }
  }

  /** {@inheritDoc AccountStore.authenticate} */
  async authenticate(name: string, password: string): Promise<Account | null> {
    const row = this.#selectOne.get(name);
    // Exactly one verification on every path (unknown, disabled, wrong, right), so the response
    // time tells a client nothing about which names exist or are disabled; and a disabled
    // account's is a full one, so it does not tell whether the password is right either.
    const matches = await verifyPassword(row?.password_hash ?? DUMMY_HASH, password, row?.enabled === 1, name);
    return row !== undefined && matches && row.enabled === 1 ? toAccount(row) : null;
  }

  /** {@inheritDoc AccountStore.get} */
  async get(name: string): Promise<Account | null> {
    const row = this.#selectOne.get(name);
    return row === undefined ? null : toAccount(row);
  }

  /** {@inheritDoc AccountStore.list} Sorted by name. */
  async list(): Promise<Account[]> {
    return this.#selectAll.all().map(toAccount);
  }

  /** {@inheritDoc AccountStore.create} Also ("invalid") for an empty password, a relative home or an unknown permission. */
  async create(account: NewAccount): Promise<Account> {
    validateName(account.name);
    validatePassword(account.password);
    const home = normalizeHome(account.home ?? null);
    const permissions = encodePermissions(account.permissions ?? ALL_PERMISSIONS);
    const row: AccountRow = {
      name: account.name,
      password_hash: await hashPassword(account.password),
      home,
      permissions,
      enabled: account.enabled === false ? 0 : 1,
      created_at: Date.now(),
      tls_policy: encodeTlsPolicy(account.tlsPolicy ?? null),
      tls_session_reuse: encodeOptionalBool(account.tlsSessionReuse ?? null),
      used_bytes: null,
      used_files: null,
      ...limitColumns(account, null),
    };
    try {
      this.#written();
      this.#insert.run(row);
    } catch (err) {
      if (err instanceof Database.SqliteError && err.code === "SQLITE_CONSTRAINT_PRIMARYKEY") {
        throw new AccountError("exists", `account "${account.name}" already exists`);
      }
      throw err;
    }
    return toAccount(row);
  }

  /** {@inheritDoc AccountStore.setPassword} Also ("invalid") for an empty password. */
  async setPassword(name: string, password: string): Promise<void> {
    validatePassword(password);
    const passwordHash = await hashPassword(password);
    this.#written();
    if (this.#updatePassword.run(passwordHash, name).changes === 0) throw notFound(name);
  }

  /** {@inheritDoc AccountStore.update} Also ("invalid") for a relative home or an unknown permission; an absent field is left unchanged. */
  async update(name: string, patch: AccountPatch): Promise<Account> {
    const home = patch.home === undefined ? undefined : normalizeHome(patch.home);
    const permissions = patch.permissions === undefined ? undefined : encodePermissions(patch.permissions);
    // IMMEDIATE takes the write lock before reading, so a concurrent update cannot slip in
    // between our read and our write.
    const apply = this.#db.transaction((): AccountRow => {
      const row = this.#selectOne.get(name);
      if (row === undefined) throw notFound(name);
      const next: AccountRow = {
        ...row,
        home: home === undefined ? row.home : home,
        permissions: permissions ?? row.permissions,
        enabled: patch.enabled === undefined ? row.enabled : patch.enabled ? 1 : 0,
        tls_policy: patch.tlsPolicy === undefined ? row.tls_policy : encodeTlsPolicy(patch.tlsPolicy),
        tls_session_reuse: patch.tlsSessionReuse === undefined ? row.tls_session_reuse : encodeOptionalBool(patch.tlsSessionReuse),
        ...limitColumns(patch, row),
      };
      this.#updateSettings.run(next);
      return next;
    });
    this.#written();
    return toAccount(apply.immediate());
  }

  /** {@inheritDoc AccountStore.remove} */
  async remove(name: string): Promise<void> {
    this.#written();
    if (this.#delete.run(name).changes === 0) throw notFound(name);
  }

  /** {@inheritDoc AccountStore.setUsage} */
  async setUsage(name: string, usage: Usage): Promise<void> {
    this.#written();
    if (this.#setUsage.run(usage.bytes, usage.files, name).changes === 0 && (await this.get(name)) === null) throw notFound(name);
  }

  /** {@inheritDoc AccountStore.addUsage} */
  async addUsage(name: string, delta: Usage): Promise<void> {
    this.#written();
    this.#addUsage.run(delta.bytes, delta.files, name);
  }

  /** {@inheritDoc AccountStore.forgetUsage} */
  async forgetUsage(name?: string): Promise<number> {
    this.#written();
    return (name === undefined ? this.#forgetUsage.run() : this.#forgetUsageOf.run(name)).changes;
  }

  /** {@inheritDoc AccountStore.revision} One `PRAGMA data_version` (~2 µs), not a read of any account. */
  revision(): number {
    const dataVersion = this.#dataVersion.get()!;
    if (dataVersion !== this.#seenDataVersion) {
      this.#seenDataVersion = dataVersion;
      this.#revision++;
    }
    return this.#revision;
  }

  /** Our own writes do not move data_version: they move the revision themselves. */
  #written(): void {
    this.#revision++;
  }

  /** Closes the database; SQLite checkpoints the WAL and removes its -wal and -shm files. */
  async close(): Promise<void> {
    this.#db.close();
  }
}

/** Applies every pending migration, each in its own transaction together with its record. */
function migrate(db: Database.Database): void {
  for (const migration of pendingMigrations(appliedVersions(db))) {
    const apply = db.transaction(() => {
      // Another process may have migrated since we looked; under IMMEDIATE's write lock this
      // second look is authoritative.
      if (appliedVersions(db).has(migration.version)) return;
      db.exec(migration.sql);
      db.prepare("INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)").run(
        migration.version,
        Date.now(),
      );
    });
    apply.immediate();
  }
}

/** Versions recorded in `schema_migrations`; none when migration 1 has yet to create it. */
function appliedVersions(db: Database.Database): Set<number> {
  const hasTable = db
    .prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'")
    .get();
  if (hasTable === undefined) return new Set();
  return new Set(db.prepare("SELECT version FROM schema_migrations").pluck().all() as number[]);
}

/** The one place a row becomes an {@link Account}; the password hash never leaves the store. */
function toAccount(row: AccountRow): Account {
  return {
    name: row.name,
    home: row.home,
    permissions: decodePermissions(row.permissions),
    enabled: row.enabled === 1,
    createdAt: new Date(row.created_at),
    // An unknown value (written by a newer edgeftp) falls back to the node's policy.
    tlsPolicy: isTlsPolicy(row.tls_policy) ? row.tls_policy : null,
    tlsSessionReuse: row.tls_session_reuse === null ? null : row.tls_session_reuse === 1,
    quotaBytes: row.quota_bytes,
    quotaFiles: row.quota_files,
    bandwidthUp: row.bandwidth_up,
    bandwidthDown: row.bandwidth_down,
    maxSessions: row.max_sessions,
    usage: row.used_bytes === null || row.used_files === null ? null : { bytes: row.used_bytes, files: row.used_files },
  };
}

/** The limit columns of a patch, validated; an absent field keeps `current`'s value (or null). */
function limitColumns(patch: AccountPatch, current: AccountRow | null): Pick<AccountRow, (typeof LIMIT_COLUMNS)[keyof typeof LIMIT_COLUMNS]> {
  const out = {} as Record<(typeof LIMIT_COLUMNS)[keyof typeof LIMIT_COLUMNS], number | null>;
  for (const [field, column] of Object.entries(LIMIT_COLUMNS) as [keyof typeof LIMIT_COLUMNS, (typeof LIMIT_COLUMNS)[keyof typeof LIMIT_COLUMNS]][]) {
    const value = patch[field];
    if (value === undefined) {
      out[column] = current?.[column] ?? null;
    } else if (value !== null && (!Number.isSafeInteger(value) || value < 0)) {
      throw new AccountError("invalid", `${field} must be a whole number of 0 or more, or null for no limit`);
    } else {
      out[column] = value;
    }
  }
  return out;
}

function isTlsPolicy(value: unknown): value is TlsPolicy {
  return (TLS_POLICIES as readonly unknown[]).includes(value);
}

function encodeTlsPolicy(policy: TlsPolicy | null): string | null {
  if (policy !== null && !isTlsPolicy(policy)) {
    throw new AccountError("invalid", `unknown TLS policy ${JSON.stringify(policy)}; known: ${TLS_POLICIES.join(", ")}`);
  }
  return policy;
}

function encodeOptionalBool(value: boolean | null): number | null {
  return value === null ? null : value ? 1 : 0;
}

function validateName(name: string): void {
  if (typeof name !== "string" || !isAccountName(name)) {
    throw new AccountError(
      "invalid",
      `invalid account name ${JSON.stringify(name)}: 1-${MAX_ACCOUNT_NAME_LENGTH} of A-Z a-z 0-9 . _ @ -, not starting with . or -`,
    );
  }
}

function validatePassword(password: string): void {
  if (typeof password !== "string" || password.length === 0) {
    throw new AccountError("invalid", "the password may not be empty");
  }
}

/** Null stays null (the default home); anything else must be absolute, and is stored normalized. */
function normalizeHome(home: string | null): string | null {
  if (home === null) return null;
  if (typeof home !== "string" || !isAbsolute(home) || home.includes("\0")) {
    throw new AccountError("invalid", `home ${JSON.stringify(home)} must be an absolute path`);
  }
  return resolve(home);
}

/** Comma-separated, deduplicated, in the canonical order of {@link PERMISSIONS}. */
function encodePermissions(permissions: readonly Permission[]): string {
  if (!Array.isArray(permissions)) {
    throw new AccountError("invalid", "permissions must be a list");
  }
  const unknown = permissions.findIndex((p) => !isPermission(p));
  if (unknown !== -1) {
    throw new AccountError(
      "invalid",
      `unknown permission ${JSON.stringify(permissions[unknown])}; known: ${PERMISSIONS.join(", ")}`,
    );
  }
  const granted = new Set<string>(permissions);
  return PERMISSIONS.filter((p) => granted.has(p)).join(",");
}

/**
 * Unknown names are dropped rather than rejected: a permission added by a newer edgeftp sharing
 * the database must not lock this one out, and what it does not know it does not grant.
 */
function decodePermissions(stored: string): Permission[] {
  return stored.split(",").filter(isPermission);
}

function isPermission(value: unknown): value is Permission {
  return (PERMISSIONS as readonly unknown[]).includes(value);
}

function notFound(name: string): AccountError {
  return new AccountError("not-found", `no account "${name}"`);
}
