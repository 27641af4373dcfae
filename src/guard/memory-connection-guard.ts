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
    return { admitted: true, lease: new CountLease(this, "connection", ip) };
  }

  async registerSession(account: string, max: number): Promise<Registration> {
    const held = this.perAccount.get(account) ?? 0;
    if (max > 0 && held >= max) return { admitted: false, limit: "sessions-per-account", max };
    this.sessions += 1;
    this.perAccount.set(account, held + 1);
    return { admitted: true, lease: new CountLease(this, "session", account) };
  }

  /** @internal A lease ended. */
  unregister(kind: "connection" | "session", key: string): void {
    if (kind === "connection") {
      this.connections -= 1;
      decrement(this.perIp, key);
    } else {
      this.sessions -= 1;
      decrement(this.perAccount, key);
    }
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

/**
 * A lease whose release runs once, however often it is called. A small class rather than a
 * closure: every idle session holds two, and an edge holds thousands of sessions.
 */
class CountLease implements Lease {
  private held = true;

  constructor(
    private readonly guard: MemoryConnectionGuard,
    private readonly kind: "connection" | "session",
    private readonly key: string,
  ) {}

  release(): void {
    if (!this.held) return;
    this.held = false;
    this.guard.unregister(this.kind, this.key);
  }
}
