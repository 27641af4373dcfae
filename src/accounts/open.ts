/**
 * The single place that picks an account store implementation from configuration; callers
 * (server, CLI, admin API) depend only on the {@link AccountStore} contract.
 */
import { SqliteAccountStore } from "./sqlite.js";
import type { AccountStore } from "./types.js";

/** Which store to open and where; a `postgres` variant joins this union with its driver. */
export type AccountStoreOptions = { driver: "sqlite"; sqlitePath: string };

/** Opens the configured account store, with its schema migrated to the current version. */
export function openAccountStore(options: AccountStoreOptions): AccountStore {
  switch (options.driver) {
    case "sqlite":
      return SqliteAccountStore.open(options.sqlitePath);
  }
}
