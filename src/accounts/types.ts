/**
 * The account store contract: who may log in, where their root is, what they may do.
 * Knows nothing of FTP. Implemented by SQLite (embedded default) and, later, PostgreSQL,
 * sharing the versioned migrations in `migrations.ts`.
 */

export const PERMISSIONS = ["list", "read", "write", "delete", "rename", "mkdir"] as const;
export type Permission = (typeof PERMISSIONS)[number];

export interface Account {
  name: string;
  /** Absolute local directory mapped to the account's root, or null for `<dataDir>/homes/<name>`. */
  home: string | null;
  permissions: Permission[];
  enabled: boolean;
  createdAt: Date;
}

export interface NewAccount {
  name: string;
  password: string;
  home?: string | null;
  permissions?: Permission[];
  enabled?: boolean;
}

export interface AccountPatch {
  home?: string | null;
  permissions?: Permission[];
  enabled?: boolean;
}

export interface AccountStore {
  /** Returns the account when the name exists, is enabled and the password matches; null otherwise. Constant-ish time for unknown names. */
  authenticate(name: string, password: string): Promise<Account | null>;
  get(name: string): Promise<Account | null>;
  list(): Promise<Account[]>;
  /** Throws AccountError("exists") when the name is taken, ("invalid") for a bad name. */
  create(account: NewAccount): Promise<Account>;
  /** Throws AccountError("not-found"). */
  setPassword(name: string, password: string): Promise<void>;
  /** Throws AccountError("not-found"). */
  update(name: string, patch: AccountPatch): Promise<Account>;
  /** Throws AccountError("not-found"). */
  remove(name: string): Promise<void>;
  close(): Promise<void>;
}

export type AccountErrorCode = "exists" | "not-found" | "invalid";

export class AccountError extends Error {
  constructor(
    readonly code: AccountErrorCode,
    message: string,
  ) {
    super(message);
    this.name = "AccountError";
  }
}

/** Every permission: what a new account gets unless told otherwise. */
export const ALL_PERMISSIONS: Permission[] = [...PERMISSIONS];
/** What `--read-only` grants. */
export const READ_ONLY_PERMISSIONS: Permission[] = ["list", "read"];
