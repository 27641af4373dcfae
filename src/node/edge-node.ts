/**
 * The edge node: owns the control listeners (plain, and implicit FTPS), admission of each new
 * connection (ban, limits, registration: before any greeting or TLS handshake), the passive port
 * pool, TLS credentials and the live sessions, and shuts them down in order (stop accepting, tell
 * sessions, release ports).
 */
import { createServer, type Server, type Socket } from "node:net";
import type { TLSSocket } from "node:tls";
import type { AccountStore } from "../accounts/types.js";
import { buildCommandTable } from "../commands/table.js";
import { homeFor } from "../config/load.js";
import type { Config } from "../config/schema.js";
import { canonicalIp } from "../data/addresses.js";
import { PassiveAddressPolicy } from "../data/passive-address.js";
import { PassivePortPool } from "../data/port-pool.js";
import { admitConnection, refusalText, type Admission } from "../guard/admission.js";
import type { Lease } from "../guard/connection-guard.js";
import { openGuard, type NodeGuard } from "../guard/node-guard.js";
import type { Logger } from "../observe/logger.js";
import { formatReply, Reply } from "../protocol/replies.js";
import { keepUrgentInline } from "../protocol/urgent-data.js";
import { Session } from "../session/session.js";
import type { StorageFactory } from "../storage/types.js";
import type { SessionLineage } from "../tls/session-lineage.js";
import { TlsContextProvider } from "../tls/tls-context.js";
import { acceptControlTls, HANDSHAKE_CLOSED, HANDSHAKE_TIMED_OUT } from "../tls/upgrade.js";
import { activeSourcePort } from "./bind-probe.js";
import { TimerWheel } from "./timer-wheel.js";
import type { NodeServices } from "./services.js";

export interface EdgeNodeDeps {
  logger: Logger;
  accounts: AccountStore;
  storage: StorageFactory;
}

/** How long a passive listener with nothing pending stays open for the next reservation. */
const PASV_IDLE_LINGER_MS = 10_000;

/** How long close() lets sessions flush their goodbye before cutting them. */
const SHUTDOWN_GRACE_MS = 3000;
/** How long a refused connection may take to read its 421 before it is cut. */
const REFUSAL_LINGER_MS = 2000;

export class EdgeNode {
  readonly sessions = new Set<Session>();
  readonly portPool: PassivePortPool;
  /** Connection and session limits, login-failure bans. */
  readonly guard: NodeGuard;
  private readonly services: NodeServices;
  /** Sockets no session owns: being admitted, in the implicit TLS handshake, or refused and saying 421. */
  private readonly unattached = new Set<Socket>();
  private closing = false;
  private closed: Promise<void> | null = null;
  private readonly server: Server;
  private readonly implicitServer: Server;
  private implicitListening = false;
  /** Set while close() waits for the last session to go (or the drain to be cut short). */
  private onIdle: (() => void) | null = null;

  private constructor(
    readonly config: Config,
    private readonly deps: EdgeNodeDeps,
    tls: TlsContextProvider,
    activePort: number,
  ) {
    const [first, last] = config.pasv.ports.split("-").map(Number);
    this.portPool = new PassivePortPool({
      first,
      last,
      allowForeignAddress: config.pasv.allowForeignAddress,
      collisionWaitMs: config.pasv.collisionWait * 1000,
      idleLingerMs: PASV_IDLE_LINGER_MS,
      logger: deps.logger,
    });
    this.guard = openGuard(config, deps.logger);
    this.services = {
      config,
      logger: deps.logger,
      accounts: deps.accounts,
      storage: deps.storage,
      guard: this.guard,
      portPool: this.portPool,
      passiveAddress: new PassiveAddressPolicy(config.pasv.address, config.pasv.addressOverrides, deps.logger),
      activePort,
      commands: buildCommandTable(),
      tls,
      timers: new TimerWheel(),
      homeFor: (account) => homeFor(config, account),
      onSessionClosed: (session) => {
        this.sessions.delete(session);
        if (this.sessions.size === 0) this.onIdle?.();
      },
    };
    this.server = createServer({ noDelay: true }, (socket) => void this.admitPlain(socket));
    this.implicitServer = createServer({ noDelay: true }, (socket) => void this.admitImplicit(socket));
  }

  /** Starts listening; rejects with the control listener's error (EACCES, EADDRINUSE…) untouched. */
  static async start(config: Config, deps: EdgeNodeDeps): Promise<EdgeNode> {
    const tls = await TlsContextProvider.create(config, deps.logger);
    const activePort = config.active.enabled ? await activeSourcePort(config.active.port) : 0;
    const node = new EdgeNode(config, deps, tls, activePort);
    await node.services.passiveAddress.refresh();
    const host = await listen(node.server, config.host, config.port).catch((err: NodeJS.ErrnoException) => {
      // A host without IPv6 cannot bind the dual-stack default: fall back to IPv4.
      if (config.host === "::" && (err.code === "EAFNOSUPPORT" || err.code === "EADDRNOTAVAIL")) {
        return listen(node.server, "0.0.0.0", config.port);
      }
      throw err;
    });
    if (config.tls.implicit) {
      try {
        await listen(node.implicitServer, host, config.tls.implicitPort);
        node.implicitListening = true;
      } catch (err) {
        const e = err as NodeJS.ErrnoException;
        if (e.code !== "EACCES") {
          node.server.close();
          throw err;
        }
        deps.logger.warn(
          { port: config.tls.implicitPort },
          "implicit FTPS is off: its port needs root or CAP_NET_BIND_SERVICE; set tls.implicitPort (--tls-implicit-port) to a user port, or tls.implicit (--tls-implicit) to false",
        );
      }
    }
    // Said once the node is sure to start.
    if (config.active.enabled && activePort !== config.active.port) {
      deps.logger.warn(
        { port: config.active.port },
        "active data connections will leave from ephemeral ports: this process may not bind the configured one (run as root or grant CAP_NET_BIND_SERVICE, or set active.port to 0 to silence this)",
      );
    }
    tls.watch();
    return node;
  }

  /** The local port active data connections leave from (see NodeServices.activePort); null with active mode off. */
  get activePort(): number | null {
    return this.config.active.enabled ? this.services.activePort : null;
  }

  get port(): number {
    return portOf(this.server);
  }

  /** Port of the implicit FTPS listener, or 0 when it is off. */
  get implicitPort(): number {
    return this.implicitListening ? portOf(this.implicitServer) : 0;
  }

  /** Plain control connection (port 21): admission (conventions §8), then the session and its 220. */
  private async admitPlain(socket: Socket): Promise<void> {
    const admission = await this.screen(socket);
    if (!admission) return;
    if (!admission.admitted) {
      this.refuse(socket, admission.text);
      return;
    }
    keepUrgentInline(socket);
    this.startSession(socket, admission.lease, null);
  }

  /**
   * Implicit FTPS (port 990): the same admission, before the handshake, so a refused client costs
   * no TLS work. It is closed without a reply: a client speaking TLS could not read a clear 421.
   * Then TLS from the first byte, and the same session as on port 21.
   */
  private async admitImplicit(socket: Socket): Promise<void> {
    const connectedAt = Date.now();
    const admission = await this.screen(socket);
    if (!admission) return;
    if (!admission.admitted) {
      socket.destroy();
      return;
    }
    this.unattached.add(socket);
    let secure: TLSSocket;
    let sessions: SessionLineage;
    try {
      ({ secure, sessions } = await acceptControlTls(socket, this.services.tls, this.config.timeouts.login * 1000));
    } catch (err) {
      admission.lease.release();
      // A client that spoke TLS and failed (a refused version or cipher, an untrusted certificate)
      // is what an operator looks for, as the explicit AUTH TLS failure is logged at info; a port
      // probe that connects and leaves, or a plain FTP client waiting for a 220, says nothing worth a line.
      const { message } = err as Error;
      const probe = message === HANDSHAKE_CLOSED || message === HANDSHAKE_TIMED_OUT;
      this.deps.logger[probe ? "debug" : "info"]({ err: message, peer: socket.remoteAddress }, "implicit TLS handshake failed");
      socket.destroy();
      return;
    } finally {
      this.unattached.delete(socket);
    }
    if (this.closing || secure.destroyed) {
      admission.lease.release();
      this.services.tls.sessions.release(sessions.pins);
      secure.destroy();
      return;
    }
    this.startSession(secure, admission.lease, sessions, connectedAt, socket);
  }

  /**
   * Admission of a new socket: banned address, then limits, then registration (src/guard/admission.ts).
   * Resolves null when the socket went away meanwhile, with nothing left registered.
   */
  private async screen(socket: Socket): Promise<Admission | null> {
    const ip = canonicalIp(socket.remoteAddress);
    // A reset before any session exists must not become an uncaught error.
    socket.on("error", () => socket.destroy());
    this.unattached.add(socket);
    let admission: Admission;
    try {
      admission = this.closing ? shuttingDown() : await admitConnection(ip, this.guard);
    } catch (err) {
      // A guard that cannot answer (a shared store down) refuses: better a retry than an unguarded edge.
      this.deps.logger.error({ err, peer: ip }, "admission failed; connection refused");
      admission = { admitted: false, reason: "unavailable", text: refusalText("unavailable") };
    }
    this.unattached.delete(socket);
    if (admission.admitted && (this.closing || socket.destroyed)) {
      admission.lease.release();
      admission = shuttingDown();
    }
    if (socket.destroyed) return null;
    if (!admission.admitted) {
      // The ban itself was logged when it was set; a banned client retrying is routine.
      const level = admission.reason === "banned" ? "debug" : "info";
      this.deps.logger[level]({ peer: ip, reason: admission.reason }, "connection refused before greeting");
    }
    return admission;
  }

  /** 421 before any greeting (RFC 959 §4.2), then close; the client's bytes are read and dropped so its FIN is seen at once. */
  private refuse(socket: Socket, text: string): void {
    this.unattached.add(socket);
    const linger = this.services.timers.schedule(REFUSAL_LINGER_MS, () => socket.destroy());
    socket.once("close", () => {
      linger.cancel();
      this.unattached.delete(socket);
    });
    socket.resume();
    socket.end(formatReply(Reply.ServiceNotAvailable, text));
  }

  /**
   * `tlsSessions`: implicit TLS, and the TLS sessions of its handshake; null for a plain connection.
   * `connectedAt`: when the client connected, where a handshake came first (the login timeout counts from it).
   */
  private startSession(socket: Socket, lease: Lease, tlsSessions: SessionLineage | null, connectedAt = Date.now(), tcpSocket?: Socket): void {
    const session = new Session(socket, this.services, { tlsSessions, connectionLease: lease, connectedAt, tcpSocket });
    this.sessions.add(session);
    session.start();
  }

  /** Re-reads what can change without a restart: TLS certificates, the resolved PASV address. */
  async reload(): Promise<void> {
    this.services.tls.reload();
    await this.services.passiveAddress.refresh().catch((err: Error) => this.deps.logger.error({ err: err.message }, "reload kept the previous PASV address"));
  }

  /**
   * Stops accepting, lets the transfers in progress finish for up to timeouts.drain (see
   * Session.windDown; {@link cutDrainShort} ends the wait), then aborts what is left (426) and says
   * 421 to every session, and releases every port; resolves when all are closed.
   */
  close(): Promise<void> {
    this.closed ??= this.stop();
    return this.closed;
  }

  private async stop(): Promise<void> {
    this.closing = true;
    const closed = Promise.all([closeServer(this.server), this.implicitListening ? closeServer(this.implicitServer) : undefined]);
    this.services.tls.close();
    for (const socket of this.unattached) socket.destroy();
    let busy = 0;
    for (const session of this.sessions) if (!session.windDown()) busy++;
    if (busy > 0) {
      const { drain } = this.config.timeouts;
      this.deps.logger.info({ sessions: busy, seconds: drain }, "draining: sessions with a command or transfer under way may finish it");
      await this.untilIdle(drain * 1000);
      if (this.sessions.size > 0) this.deps.logger.warn({ sessions: this.sessions.size }, "drain over: aborting what is still under way");
    }
    for (const session of this.sessions) session.endDrain();
    // Only now: a transfer let finish may still be waiting for its passive data connection.
    this.portPool.close();
    if (this.sessions.size > 0) {
      // Sessions end once their 426 and 421 are flushed; one that does not within the grace period is cut.
      await this.untilIdle(SHUTDOWN_GRACE_MS);
      for (const session of this.sessions) session.socket.destroy();
    }
    await closed;
    await this.guard.close();
  }

  /** Ends close()'s wait for the transfers in progress (a second SIGTERM): they are aborted now. */
  cutDrainShort(): void {
    this.onIdle?.();
  }

  /** Resolves once every session has closed, or after `ms`, or when {@link cutDrainShort} is called. */
  private async untilIdle(ms: number): Promise<void> {
    if (this.sessions.size === 0) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => this.onIdle?.(), ms);
      this.onIdle = () => {
        clearTimeout(timer);
        this.onIdle = null;
        resolve();
      };
    });
  }
}

function shuttingDown(): Admission {
  return { admitted: false, reason: "shutting-down", text: refusalText("shutting-down") };
}

/** Listens and resolves with the host actually bound. */
function listen(server: Server, host: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen({ host, port }, () => {
      server.off("error", reject);
      resolve(host);
    });
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

function portOf(server: Server): number {
  const address = server.address();
  return typeof address === "object" && address ? address.port : 0;
}
