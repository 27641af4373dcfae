/**
 * Versioned schema migrations shared by every account store. The SQL is written once for both
 * SQLite and PostgreSQL, so it sticks to their common ground: TEXT, INTEGER and BIGINT columns,
 * booleans as INTEGER 0/1, timestamps as BIGINT milliseconds since the epoch, and no generated
 * keys (AUTOINCREMENT, SERIAL). A migration, once released, is never edited: later changes
 * (quotas, limits, allowed networks) are new entries appended with the next version.
 */

/** One step of the schema, applied at most once and recorded in `schema_migrations`. */
export interface Migration {
  /** Position in the sequence: 1, 2, 3… without gaps. */
  version: number;
  /** What the step does, for logs and `doctor`. */
  description: string;
  /** One or more `;`-separated statements, run inside a single transaction. */
  sql: string;
}

/** Every migration, in the order it must be applied. */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: "accounts and schema_migrations tables",
    sql: `
CREATE TABLE schema_migrations (
  version INTEGER PRIMARY KEY,
  applied_at BIGINT NOT NULL
);
CREATE TABLE accounts (
  name TEXT PRIMARY KEY,
  password_hash TEXT NOT NULL,
  home TEXT NULL,
  permissions TEXT NOT NULL,
  enabled INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
  created_at BIGINT NOT NULL
);
`,
  },
  {
    version: 2,
    description: "per-account TLS policy and session-reuse overrides",
    sql: `
ALTER TABLE accounts ADD COLUMN tls_policy TEXT NULL;
ALTER TABLE accounts ADD COLUMN tls_session_reuse INTEGER NULL;
`,
  },
  {
    version: 3,
    description: "per-account quotas, tracked usage, bandwidth and session limits",
    sql: `
ALTER TABLE accounts ADD COLUMN quota_bytes BIGINT NULL;
ALTER TABLE accounts ADD COLUMN quota_files BIGINT NULL;
ALTER TABLE accounts ADD COLUMN used_bytes BIGINT NULL;
ALTER TABLE accounts ADD COLUMN used_files BIGINT NULL;
ALTER TABLE accounts ADD COLUMN bandwidth_up BIGINT NULL;
ALTER TABLE accounts ADD COLUMN bandwidth_down BIGINT NULL;
ALTER TABLE accounts ADD COLUMN max_sessions INTEGER NULL;
`,
  },
];

/**
 * The migrations still to apply, in order, given the versions a database has recorded.
 * Throws when the database records a version this build does not know: it was migrated by a
 * newer edgeftp, and writing to it with an older schema in mind could corrupt it.
 */
export function pendingMigrations(applied: ReadonlySet<number>): Migration[] {
  const latest = MIGRATIONS.length === 0 ? 0 : MIGRATIONS[MIGRATIONS.length - 1]!.version;
  for (const version of applied) {
    if (version > latest) {
      throw new Error(
        `account database is at schema version ${version}, newer than this edgeftp supports (${latest}); upgrade edgeftp`,
      );
    }
  }
  return MIGRATIONS.filter((m) => !applied.has(m.version));
}
