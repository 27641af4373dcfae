/** What a node hands to each session: configuration, stores, the guard, the port pool, the command table. */
import type { Account, AccountStore } from "../accounts/types.js";
import type { CommandSpec } from "../commands/command.js";
import type { Config } from "../config/schema.js";
import type { PassiveAddressPolicy } from "../data/passive-address.js";
import type { PassivePortPool } from "../data/port-pool.js";
import type { NodeGuard } from "../guard/node-guard.js";
import type { Logger } from "../observe/logger.js";
import type { Session } from "../session/session.js";
import type { StorageFactory } from "../storage/types.js";
import type { TlsContextProvider } from "../tls/tls-context.js";
import type { TimerWheel } from "./timer-wheel.js";

export interface NodeServices {
  readonly config: Config;
  readonly logger: Logger;
  readonly accounts: AccountStore;
  readonly storage: StorageFactory;
  /** Connection and session limits, login-failure bans. */
  readonly guard: NodeGuard;
  readonly portPool: PassivePortPool;
  readonly passiveAddress: PassiveAddressPolicy;
  /** The local port active data connections leave from: active.port, or 0 (ephemeral) when this process may not bind it. */
  readonly activePort: number;
  readonly commands: ReadonlyMap<string, CommandSpec>;
  readonly tls: TlsContextProvider;
  /** Shared coarse timers for session deadlines. */
  readonly timers: TimerWheel;
  /** The local directory that is this account's root. */
  homeFor(account: Account): string;
  onSessionClosed(session: Session): void;
}
