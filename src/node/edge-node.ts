/**
 * The edge node: owns the control listener, the passive port pool and the live sessions, and
 * shuts them down in order (stop accepting, tell sessions, release ports).
 */
import { createServer, type Server, type Socket } from "node:net";
import type { AccountStore } from "../accounts/types.js";
import { buildCommandTable } from "../commands/table.js";
import { homeFor } from "../config/load.js";
import type { Config } from "../config/schema.js";
import { PassiveAddressPolicy } from "../data/passive-address.js";
import { PassivePortPool } from "../data/port-pool.js";
import type { Logger } from "../observe/logger.js";
import { Reply } from "../protocol/replies.js";
import { Session } from "../session/session.js";
import type { StorageFactory } from "../storage/types.js";
import type { NodeServices } from "./services.js";

export interface EdgeNodeDeps {
  logger: Logger;
  accounts: AccountStore;
  storage: StorageFactory;
}

/** How long close() lets sessions flush their goodbye before cutting them. */
const SHUTDOWN_GRACE_MS = 3000;

export class EdgeNode {
  readonly sessions = new Set<Session>();
  readonly portPool: PassivePortPool;
  private readonly services: NodeServices;
  private readonly server: Server;
  /** Set while close() waits for the last session to go. */
  private onIdle: (() => void) | null = null;

  private constructor(
    readonly config: Config,
    deps: EdgeNodeDeps,
  ) {
    const [first, last] = config.pasv.ports.split("-").map(Number);
    this.portPool = new PassivePortPool({
      first,
      last,
      allowForeignAddress: config.pasv.allowForeignAddress,
      collisionWaitMs: config.pasv.collisionWait * 1000,
      logger: deps.logger,
    });
    this.services = {
      config,
      logger: deps.logger,
      accounts: deps.accounts,
      storage: deps.storage,
      portPool: this.portPool,
      passiveAddress: new PassiveAddressPolicy(config.pasv.address, config.pasv.addressOverrides, deps.logger),
      commands: buildCommandTable(),
      homeFor: (account) => homeFor(config, account),
      onSessionClosed: (session) => {
        this.sessions.delete(session);
        if (this.sessions.size === 0) this.onIdle?.();
      },
    };
    this.server = createServer({ noDelay: true }, (socket) => this.admit(socket));
  }

  /** Starts listening; rejects with the listen error (EACCES, EADDRINUSE…) untouched. */
  static async start(config: Config, deps: EdgeNodeDeps): Promise<EdgeNode> {
    const node = new EdgeNode(config, deps);
    await node.services.passiveAddress.refresh();
    await node.listen(config.host, config.port).catch((err: NodeJS.ErrnoException) => {
      // A host without IPv6 cannot bind the dual-stack default: fall back to IPv4.
      if (config.host === "::" && (err.code === "EAFNOSUPPORT" || err.code === "EADDRNOTAVAIL")) {
        return node.listen("0.0.0.0", config.port);
      }
      throw err;
    });
    return node;
  }

  private listen(host: string, port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen({ host, port }, () => {
        this.server.off("error", reject);
        resolve();
      });
    });
  }

  get port(): number {
    const address = this.server.address();
    return typeof address === "object" && address ? address.port : 0;
  }

  private admit(socket: Socket): void {
    const session = new Session(socket, this.services);
    this.sessions.add(session);
    session.start();
  }

  /** Stops accepting, says 421 to every session, releases every port; resolves when all are closed. */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const session of this.sessions) session.close(Reply.ServiceNotAvailable, "Server shutting down.");
    this.portPool.close();
    if (this.sessions.size > 0) {
      // Sessions end once their 421 is flushed; one that does not within the grace period is cut.
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, SHUTDOWN_GRACE_MS);
        this.onIdle = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.onIdle = null;
      for (const session of this.sessions) session.socket.destroy();
    }
    await closed;
  }
}
