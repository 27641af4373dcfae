/**
 * The in-memory connection guard, for one edge. Counters live in maps that drop a key when its
 * count returns to zero, so memory follows the live connections, not every address ever seen.
 */
import type { ConnectionCounts, ConnectionGuard, Lease, Registration } from "./connection-guard.js";

export interface ConnectionLimits {
  /** Control connections at once on this node; 0: no limit. */
  maxConnections: number;
  /** Control connections at once from one IP; 0: no limit. */
  maxConnectionsPerIp: number;
}

export class MemoryConnectionGuard implements ConnectionGuard {
  private connections = 0;
  private sessions = 0;
  private readonly perIp = new Map<string, number>();
  private readonly perAccount = new Map<string, number>();

  constructor(private readonly limits: ConnectionLimits) {}

  async registerConnection(ip: string): Promise<Registration> {
    const { maxConnections, maxConnectionsPerIp } = this.limits;
    if (maxConnections > 0 && this.connections >= maxConnections) {
      return { admitted: false, limit: "connections", max: maxConnections };
    }
    const fromIp = this.perIp.get(ip) ?? 0;
    if (maxConnectionsPerIp > 0 && fromIp >= maxConnectionsPerIp) {
      return { admitted: false, limit: "connections-per-ip", max: maxConnectionsPerIp };
    }
    this.connections += 1;
    this.perIp.set(ip, fromIp + 1);
    return {
      admitted: true,
      lease: once(() => {
        this.connections -= 1;
        decrement(this.perIp, ip);
      }),
    };
  }

  async registerSession(account: string, max: number): Promise<Registration> {
    const held = this.perAccount.get(account) ?? 0;
    if (max > 0 && held >= max) return { admitted: false, limit: "sessions-per-account", max };
    this.sessions += 1;
    this.perAccount.set(account, held + 1);
    return {
      admitted: true,
      lease: once(() => {
        this.sessions -= 1;
        decrement(this.perAccount, account);
      }),
    };
  }

  async counts(): Promise<ConnectionCounts> {
    return { connections: this.connections, addresses: this.perIp.size, sessions: this.sessions, accounts: this.perAccount.size };
  }

  async close(): Promise<void> {}
}

function decrement(counts: Map<string, number>, key: string): void {
  const n = (counts.get(key) ?? 0) - 1;
  if (n > 0) counts.set(key, n);
  else counts.delete(key);
}

/** A lease whose release runs once, however often it is called. */
function once(release: () => void): Lease {
  let held = true;
  return {
    release() {
      if (!held) return;
      held = false;
      release();
    },
  };
}
