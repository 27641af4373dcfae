/**
 * The account store contract: who may log in, where their root is, what they may do.
 * Knows nothing of FTP. Implemented by SQLite (embedded default) and, later, PostgreSQL,
 * sharing the versioned migrations in `migrations.ts`.
 */

export const PERMISSIONS = ["list", "read", "write", "delete", "rename", "mkdir"] as const;
export type Permission = (typeof PERMISSIONS)[number];

/** The longest account name any store accepts (also how much of an unknown name a log or reply quotes). */
export const MAX_ACCOUNT_NAME_LENGTH = 64;

/** The first character may not be `.` or `-`, so that a name never looks like `..` or an option. */
const ACCOUNT_NAME = new RegExp(`^[A-Za-z0-9_@][A-Za-z0-9._@-]{0,${MAX_ACCOUNT_NAME_LENGTH - 1}}$`);

/** Whether `name` may be an account's: 1-64 of A-Z a-z 0-9 . _ @ -, not starting with . or -. */
export function isAccountName(name: string): boolean {
  return ACCOUNT_NAME.test(name);
}

/** What TLS an account must use: the node's `tls.policy` values. */
export const TLS_POLICIES = ["optional", "control", "data"] as const;
export type TlsPolicy = (typeof TLS_POLICIES)[number];

export interface Account {
  name: string;
  /** Absolute local directory mapped to the account's root, or null for `<dataDir>/homes/<name>`. */
  home: string | null;
  permissions: Permission[];
  enabled: boolean;
  createdAt: Date;
  /** Overrides the node's `tls.policy` (e.g. a camera allowed plain FTP); null: the node's. */
  tlsPolicy: TlsPolicy | null;
  /** Overrides the node's `tls.requireSessionReuse` (clients that cannot resume); null: the node's. */
  tlsSessionReuse: boolean | null;
  /** Storage quota in bytes; null: unlimited. */
  quotaBytes: number | null;
  /** Quota on the number of files and directories; null: unlimited. */
  quotaFiles: number | null;
  /** Upload and download limits in bytes per second; null: unlimited. */
  bandwidthUp: number | null;
  bandwidthDown: number | null;
  /** Logged-in sessions at once; null: the node's `limits.maxSessionsPerAccount`. */
  maxSessions: number | null;
  /** What the account stores, as tracked by the server; null until first measured. */
  usage: Usage | null;
}

/** Bytes and entries (files and directories) an account stores. */
export interface Usage {
  bytes: number;
  files: number;
}

/** The settings an account has besides its name and password; absent fields keep their default (or current) value. */
export interface AccountPatch {
  home?: string | null;
  permissions?: Permission[];
  enabled?: boolean;
  tlsPolicy?: TlsPolicy | null;
  tlsSessionReuse?: boolean | null;
  quotaBytes?: number | null;
  quotaFiles?: number | null;
  bandwidthUp?: number | null;
  bandwidthDown?: number | null;
  maxSessions?: number | null;
}

export interface NewAccount extends AccountPatch {
  name: string;
  password: string;
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
  /** Replaces the tracked usage (after measuring the account's root). */
  setUsage(name: string, usage: Usage): Promise<void>;
  /** Adds (or, negative, removes) bytes and entries to the tracked usage, atomically; no-op while usage is unmeasured. */
  addUsage(name: string, delta: Usage): Promise<void>;
  /**
   * Marks the usage of account `name`, or of every account, unmeasured (measured again when next
   * needed: the account's next login or upload, once none of its uploads is in flight on a node);
   * resolves how many had one.
   */
  forgetUsage(name?: string): Promise<number>;
  /**
   * A number that stays the same only while no account can have changed: every write through this
   * store changes it, and so does a write by anyone else where the medium tells (SQLite does, for
   * other connections to the same file). What was read from the store while the revision stayed the
   * same is still what the store holds. A store that cannot tell returns a new number every call.
   */
  revision(): number;
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
