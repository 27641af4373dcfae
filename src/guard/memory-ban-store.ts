/**
 * The in-memory ban store, for one edge (the embedded default). Its memory is bounded without a
 * timer per entry: every call first prunes what has expired, and both maps are capped.
 *
 * - Scores: a window always has the same length and a new window re-inserts its entry, so the
 *   map's insertion order is the order of expiry; pruning pops expired entries from the head
 *   (amortised O(1) per call). Past `maxEntries` addresses, the oldest score is dropped (a flood
 *   of one-failure addresses cannot grow the map without bound; it forgets the oldest first).
 * - Bans: those set by failures all last the rule's duration, so the same head-pruning applies;
 *   a ban of another length (an operator's) can be out of order, which a full sweep, at most once
 *   per `sweepIntervalMs` and only when some call comes in, catches. Past `maxEntries` bans, the
 *   one that ends soonest in insertion order is dropped.
 * A ban that ends is reported through `onBanEnded` when it is noticed (the next call after its
 * end), so unbans are logged without a timer.
 */
import type { BanEndReason, BanEntry, BanRule, BanStore, FailureVerdict } from "./ban-store.js";

export interface MemoryBanStoreOptions extends BanRule {
  /** Clock in milliseconds (tests pass a fake one). Default: `Date.now`. */
  now?: () => number;
  /** Most addresses with a score, and most bans, kept at once. Default 100,000 each. */
  maxEntries?: number;
  /** How often, at most, bans are swept in full. Default 10 s. */
  sweepIntervalMs?: number;
  /** Called once for each ban that ran out (`expired`, noticed at the next call) or was dropped because the store was full (`evicted`). */
  onBanEnded?: (ip: string, until: Date, reason: BanEndReason) => void;
}

interface Score {
  count: number;
  resetAt: number;
}

export class MemoryBanStore implements BanStore {
  private readonly scores = new Map<string, Score>();
  /** ip → end of the ban (ms). */
  private readonly bans = new Map<string, number>();
  private readonly now: () => number;
  private readonly maxEntries: number;
  private readonly sweepIntervalMs: number;
  private nextSweep = 0;

  constructor(private readonly options: MemoryBanStoreOptions) {
    if (!(options.threshold >= 1)) throw new RangeError("ban threshold must be at least 1");
    this.now = options.now ?? Date.now;
    this.maxEntries = options.maxEntries ?? 100_000;
    this.sweepIntervalMs = options.sweepIntervalMs ?? 10_000;
  }

  async isBanned(ip: string): Promise<boolean> {
    const now = this.prune();
    const until = this.bans.get(ip);
    if (until === undefined) return false;
    if (until > now) return true;
    this.expire(ip, until);
    return false;
  }

  async recordFailure(ip: string): Promise<FailureVerdict> {
    const now = this.prune();
    const until = this.bans.get(ip);
    if (until !== undefined) {
      // Already banned (a connection admitted before the ban): nothing more to count (SET NX fails).
      if (until > now) return { failures: 0, banned: false };
      this.expire(ip, until);
    }
    let score = this.scores.get(ip);
    if (!score || score.resetAt <= now) {
      // A new window: re-insert at the tail, keeping the map in order of expiry.
      this.scores.delete(ip);
      score = { count: 0, resetAt: now + this.options.windowMs };
      this.scores.set(ip, score);
      this.capScores();
    }
    score.count += 1;
    if (score.count < this.options.threshold) return { failures: score.count, banned: false };
    this.scores.delete(ip);
    this.setBan(ip, now + this.options.durationMs);
    return { failures: 0, banned: true };
  }

  async ban(ip: string, durationMs = this.options.durationMs): Promise<void> {
    const now = this.prune();
    this.setBan(ip, now + durationMs);
  }

  async unban(ip: string): Promise<boolean> {
    const now = this.prune();
    this.scores.delete(ip);
    const until = this.bans.get(ip);
    if (until === undefined) return false;
    this.bans.delete(ip);
    return until > now;
  }

  async list(): Promise<BanEntry[]> {
    const now = this.prune();
    const out: BanEntry[] = [];
    for (const [ip, until] of this.bans) {
      if (until > now) out.push({ ip, until: new Date(until) });
    }
    return out;
  }

  async close(): Promise<void> {
    this.scores.clear();
    this.bans.clear();
  }

  /** Addresses with a score and bans held (expired ones included until pruned): for tests and metrics. */
  get size(): { scores: number; bans: number } {
    return { scores: this.scores.size, bans: this.bans.size };
  }

  private setBan(ip: string, until: number): void {
    // Re-insert at the tail, so the map stays (mostly) in order of expiry.
    this.bans.delete(ip);
    this.bans.set(ip, until);
    if (this.bans.size > this.maxEntries) {
      const [oldest, oldestUntil] = this.bans.entries().next().value as [string, number];
      this.bans.delete(oldest);
      this.options.onBanEnded?.(oldest, new Date(oldestUntil), "evicted");
    }
  }

  private capScores(): void {
    if (this.scores.size <= this.maxEntries) return;
    const oldest = this.scores.keys().next().value as string;
    this.scores.delete(oldest);
  }

  private expire(ip: string, until: number): void {
    this.bans.delete(ip);
    this.options.onBanEnded?.(ip, new Date(until), "expired");
  }

  /** Drops what has expired; returns the current time. */
  private prune(): number {
    const now = this.now();
    for (const [ip, score] of this.scores) {
      if (score.resetAt > now) break;
      this.scores.delete(ip);
    }
    for (const [ip, until] of this.bans) {
      if (until > now) break;
      this.expire(ip, until);
    }
    if (now >= this.nextSweep) {
      this.nextSweep = now + this.sweepIntervalMs;
      for (const [ip, until] of this.bans) {
        if (until <= now) this.expire(ip, until);
      }
    }
    return now;
  }
}
