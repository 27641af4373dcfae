/**
 * The single place that builds a node's guard from configuration: the connection guard and the
 * ban policy over its store. Callers depend only on the contracts; a Redis-backed variant shared
 * by all edges joins here with its driver key.
 */
import type { Config } from "../config/schema.js";
import type { Logger } from "../observe/logger.js";
import { BanPolicy } from "./ban-policy.js";
import type { ConnectionGuard } from "./connection-guard.js";
import { IpAllowList } from "./ip-allow-list.js";
import { MemoryBanStore } from "./memory-ban-store.js";
import { MemoryConnectionGuard } from "./memory-connection-guard.js";

export interface NodeGuard {
  readonly connections: ConnectionGuard;
  readonly bans: BanPolicy;
  close(): Promise<void>;
}

/** Opens the in-memory guard (the embedded default) for `config`'s `limits` and `bans`. */
export function openGuard(config: Config, logger: Logger): NodeGuard {
  const { limits, bans } = config;
  const durationMs = bans.duration * 1000;
  const allowList = IpAllowList.parse(bans.allowList);
  let policy: BanPolicy | null = null;
  const store = new MemoryBanStore({
    // threshold 0 disables banning in the policy; the store itself needs a real rule.
    threshold: Math.max(1, bans.threshold),
    windowMs: bans.window * 1000,
    durationMs,
    onBanEnded: (ip, until, reason) => policy?.banEnded(ip, until, reason),
  });
  policy = new BanPolicy(store, allowList, logger, { threshold: bans.threshold, durationMs });
  const connections = new MemoryConnectionGuard({
    maxConnections: limits.maxConnections,
    maxConnectionsPerIp: limits.maxConnectionsPerIp,
  });
  return {
    connections,
    bans: policy,
    async close() {
      await Promise.all([connections.close(), store.close()]);
    },
  };
}
