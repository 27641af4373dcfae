/**
 * The ban store contract: failed-login scores and bans, per client IP. It knows nothing of FTP,
 * configuration or logging (the {@link BanPolicy} adds those); it only keeps counters and bans.
 *
 * The operations are shaped after what Redis does atomically, so that a store shared by all edges
 * can implement the same contract later without read-modify-write races between edges:
 * - a failure score is a counter over a fixed window that starts at the first failure:
 *   `INCR fail:<ip>`, then `PEXPIRE fail:<ip> <window> NX` (both in one MULTI, so a crash between
 *   them cannot leave a counter without expiry);
 * - reaching the threshold sets a ban with a TTL, `SET ban:<ip> <until> PX <duration> NX`, and
 *   clears the score (`DEL fail:<ip>`), so an address starts from zero once its ban ends. `NX`
 *   makes exactly one caller (one edge) the one whose failure banned the address: the ban is
 *   reported, hence logged, once;
 * - `isBanned` is `EXISTS ban:<ip>`, `unban` is `DEL ban:<ip>`, `list` is `SCAN ban:*` + `PTTL`.
 * Entries expire by themselves: no timer, no sweeper process.
 */

/** The ban rule a store applies; fixed when it is created. */
export interface BanRule {
  /** Failures within `windowMs` that ban an address (at least 1). */
  threshold: number;
  /** Length of the failure window, from the first failure it counts. */
  windowMs: number;
  /** How long a ban set by {@link BanStore.recordFailure} lasts. */
  durationMs: number;
}

/** What recording one failure did. */
export interface FailureVerdict {
  /** Failures counted in the current window, this one included (0 when the address was banned by it, or already banned). */
  failures: number;
  /** True only for the failure that banned the address; false while it is already banned. */
  banned: boolean;
}

export interface BanEntry {
  ip: string;
  /** When the ban ends. */
  until: Date;
}

/** Why a ban ended without an unban: it ran out, or a bounded store had to drop it early. */
export type BanEndReason = "expired" | "evicted";

export interface BanStore {
  /** Whether `ip` is banned now. */
  isBanned(ip: string): Promise<boolean>;
  /** Counts one failed login from `ip`; bans it when the count reaches the threshold within the window. */
  recordFailure(ip: string): Promise<FailureVerdict>;
  /** Bans `ip` for `durationMs` (default: the rule's duration), replacing any ban it has. */
  ban(ip: string, durationMs?: number): Promise<void>;
  /** Lifts the ban on `ip` and clears its score; resolves whether there was a ban. */
  unban(ip: string): Promise<boolean>;
  /** The bans in force. */
  list(): Promise<BanEntry[]>;
  /** Releases what the store holds (a Redis connection); the memory store holds nothing. */
  close(): Promise<void>;
}
