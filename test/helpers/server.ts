/** Starts a real edgeftp node on loopback (port 0) with a temp data dir and real SQLite + disk. */
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openAccountStore } from "../../src/accounts/open.js";
import type { AccountStore, NewAccount } from "../../src/accounts/types.js";
import { homeFor, resolveDataPaths } from "../../src/config/load.js";
import { configSchema, type Config } from "../../src/config/schema.js";
import { EdgeNode } from "../../src/node/edge-node.js";
import { createLogger } from "../../src/observe/logger.js";
import { LocalStorageFactory } from "../../src/storage/local.js";
import type { StorageFactory } from "../../src/storage/types.js";

export interface TestServer {
  node: EdgeNode;
  config: Config;
  host: string;
  port: number;
  dataDir: string;
  /** Local directory of an account's root. */
  home(name: string): string;
  close(): Promise<void>;
}

export const USER = "alice";
export const PASSWORD = "wonderland";

export interface ServerOptions {
  /** The storage factory the node uses (default: a LocalStorageFactory), e.g. a fault-injecting one. */
  storage?: StorageFactory;
  /** Where the node's log lines go (default: stderr), e.g. to check what a transfer logged. */
  logTo?: NodeJS.WritableStream;
  /** Wraps the account store the node uses, e.g. to make its writes fail. */
  wrapAccounts?: (store: AccountStore) => AccountStore;
}

export type ConfigOverrides = { [K in keyof Config]?: Config[K] extends object ? Partial<Config[K]> : Config[K] };

/**
 * Starts a node with one read-write account `alice`/`wonderland` (and any `accounts` given).
 * Passive ports come from a random 100-port range in 20000-31999, unlikely to collide across parallel test files.
 */
export async function startServer(
  overrides: ConfigOverrides = {},
  accounts: NewAccount[] = [],
  options: ServerOptions = {},
): Promise<TestServer> {
  const dataDir = mkdtempSync(join(tmpdir(), "edgeftp-test-"));
  // Below Linux's ephemeral range (32768+), so client sockets never hold a port a test listens on.
  const base = 20000 + Math.floor(Math.random() * 120) * 100;
  const raw: Record<string, unknown> = {
    host: "127.0.0.1",
    port: 0,
    dataDir,
    pasv: { ports: `${base}-${base + 99}` },
    active: { port: 0 },
    tls: { implicitPort: 0 },
    log: { level: process.env.EDGEFTP_TEST_LOG ?? "silent" },
  };
  for (const [key, value] of Object.entries(overrides)) {
    raw[key] = value !== null && typeof value === "object" ? { ...(raw[key] as object), ...value } : value;
  }
  const config = configSchema.parse(raw);
  const store = openAccountStore({ driver: "sqlite", sqlitePath: resolveDataPaths(config).sqlitePath });
  await store.create({ name: USER, password: PASSWORD });
  for (const account of accounts) await store.create(account);
  // Homes exist before the first login, as `edgeftp user add` leaves them, so tests can seed files.
  for (const name of [USER, ...accounts.map((a) => a.name)]) mkdirSync(homeFor(config, { name, home: null }), { recursive: true });
  const node = await EdgeNode.start(config, {
    logger: createLogger(config.log.level, options.logTo ?? process.stderr),
    accounts: options.wrapAccounts ? options.wrapAccounts(store) : store,
    storage: options.storage ?? new LocalStorageFactory(),
  });
  return {
    node,
    config,
    host: "127.0.0.1",
    port: node.port,
    dataDir,
    home: (name: string) => homeFor(config, { name, home: null }),
    async close() {
      await node.close();
      await store.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
