/**
 * The single place that picks an account store implementation from configuration; callers
 * (server, CLI, admin API) depend only on the {@link AccountStore} contract.
 */
import { SqliteAccountStore } from "./sqlite.js";
import type { AccountStore } from "./types.js";

/**
 * better-sqlite3 is synchronous: while another process holds the write lock, a write blocks the
 * node's every session for as long as it waits. A node's writes are usage changes, which the quota
 * keeps counting and writes with the next change when one fails.
 */
const SERVER_BUSY_TIMEOUT_MS = 50;

/**
 * Which store to open and where; a `postgres` variant joins this union with its driver.
 * `server`: opened by a serving node, whose event loop must not wait long on another writer's lock.
 */
export type AccountStoreOptions = { driver: "sqlite"; sqlitePath: string; server?: boolean };

/** Opens the configured account store, with its schema migrated to the current version. */
export function openAccountStore(options: AccountStoreOptions): AccountStore {
  switch (options.driver) {
    case "sqlite":
      return SqliteAccountStore.open(options.sqlitePath, options.server ? SERVER_BUSY_TIMEOUT_MS : undefined);
  }
}
