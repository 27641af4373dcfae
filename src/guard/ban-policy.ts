/**
 * The login-failure ban, as configured (`bans.*`): applies the allow-list, feeds failures to the
 * {@link BanStore}, and logs every ban and unban. Sessions and the node talk to this, never to
 * the store directly, so no caller can forget the allow-list or the log line.
 *
 * A successful login does NOT reset an address's score. Resetting it would let an attacker who
 * holds one valid account (any customer of a shared edge can have one) interleave a good login
 * every `threshold - 1` guesses and never be banned. The cost falls on a legitimate client that
 * mistypes: its failures still count until the window ends, which `bans.window` bounds; the
 * operator's own networks belong in `bans.allowList`.
 */
import type { Logger } from "../observe/logger.js";
import type { BanEndReason, BanEntry, BanStore } from "./ban-store.js";
import type { IpAllowList } from "./ip-allow-list.js";

export interface BanPolicyOptions {
  /** Failures within the window that ban an address; 0 disables banning. */
  threshold: number;
  /** Length of a ban set by failures. */
  durationMs: number;
}

export class BanPolicy {
  constructor(
    private readonly store: BanStore,
    private readonly allowList: IpAllowList,
    private readonly logger: Logger,
    private readonly options: BanPolicyOptions,
  ) {}

  /** Whether `ip` is banned; an allow-listed address never is. */
  async isBanned(ip: string): Promise<boolean> {
    if (this.allowList.has(ip)) return false;
    return this.store.isBanned(ip);
  }

  /**
   * Counts a failed login from `ip` toward its ban score; resolves true when this failure banned
   * it (logged here, with the address and the duration). `user` is only logged.
   */
  async loginFailed(ip: string, user: string): Promise<boolean> {
    if (this.options.threshold === 0 || this.allowList.has(ip)) return false;
    const verdict = await this.store.recordFailure(ip);
    if (verdict.banned) {
      this.logger.warn(
        { ip, durationSeconds: this.options.durationMs / 1000, threshold: this.options.threshold, lastUser: user },
        "address banned after repeated failed logins",
      );
    }
    return verdict.banned;
  }

  /** Bans `ip` by hand (admin API); refused (false) for an allow-listed address. */
  async ban(ip: string, durationMs = this.options.durationMs): Promise<boolean> {
    if (this.allowList.has(ip)) return false;
    await this.store.ban(ip, durationMs);
    this.logger.warn({ ip, durationSeconds: durationMs / 1000, by: "operator" }, "address banned");
    return true;
  }

  /** Lifts a ban by hand; resolves whether there was one. */
  async unban(ip: string): Promise<boolean> {
    const lifted = await this.store.unban(ip);
    if (lifted) this.logger.info({ ip, by: "operator" }, "address unbanned");
    return lifted;
  }

  list(): Promise<BanEntry[]> {
    return this.store.list();
  }

  /** The store reports a ban that ran out, or that it had to drop early because it was full. */
  banEnded(ip: string, until: Date, reason: BanEndReason): void {
    if (reason === "evicted") this.logger.warn({ ip, until }, "address unbanned early: the ban list is full");
    else this.logger.info({ ip, until }, "ban expired: address unbanned");
  }
}
