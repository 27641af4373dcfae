/**
 * The connection guard contract: counts control connections (node-wide and per client IP) and
 * logged-in sessions per account, and refuses a registration that would pass a limit. Check and
 * count happen in one step, so two connections racing for the last slot cannot both get it
 * (in Redis: `INCR` then compare, `DECR` back when over, or one Lua script).
 *
 * A registration is a {@link Lease}: whoever holds it releases it exactly once, on every path
 * (refusal after admission, failed TLS handshake, QUIT, timeout, reset, REIN for a session).
 * A store shared by all edges will also need leases to expire when an edge dies without releasing
 * them (a per-edge key with a TTL the edge refreshes); the contract leaves room for that.
 */

/** One registration. `release()` is idempotent and never throws (a remote store logs its errors). */
export interface Lease {
  release(): void;
}

/** Which limit refused a registration. */
export type LimitKind = "connections" | "connections-per-ip" | "sessions-per-account";

export type Registration = { admitted: true; lease: Lease } | { admitted: false; limit: LimitKind; max: number };

/** What a guard counts now (this node's view; metrics, tests). */
export interface ConnectionCounts {
  connections: number;
  /** Client addresses with at least one connection. */
  addresses: number;
  sessions: number;
  /** Accounts with at least one logged-in session. */
  accounts: number;
}

export interface ConnectionGuard {
  /** Registers a control connection from `ip`, unless the node-wide or the per-IP limit is reached. */
  registerConnection(ip: string): Promise<Registration>;
  /** Registers a logged-in session of `account`, unless it already holds `max` (0: no limit). */
  registerSession(account: string, max: number): Promise<Registration>;
  counts(): Promise<ConnectionCounts>;
  close(): Promise<void>;
}
