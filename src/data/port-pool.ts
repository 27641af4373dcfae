/**
 * The passive port pool: the heart of an edge's data channel.
 *
 * A small firewall range must not cap a node at one transfer per port, so:
 * - a reservation is *pending* only until its client connects; then it leaves the listener:
 *   established transfers hold no port of the range. A listener with nothing pending stays open,
 *   idle, for `idleLingerMs` so the next reservation reuses it without a rebind (under load a port
 *   is re-reserved within milliseconds), then closes;
 * - while some port has no listener, a reservation gets a port of its own;
 * - when every port already listens, a port is shared by reservations whose client IPs differ,
 *   and each accepted connection is routed to its reservation by peer IP;
 * - only when this client IP is already pending on every port does reserve() wait, briefly, for
 *   a release, then fail (the session answers 425).
 * A connection from an IP with nothing pending is a stranger (data theft, RFC 2577 §4) and is
 * closed; the reservation stays open for the right client. Ports are bound directly: no
 * probe-then-close, and libuv sets SO_REUSEADDR so TIME_WAIT does not exhaust the range.
 */
import { createServer, type Server, type Socket } from "node:net";
import type { Logger } from "../observe/logger.js";
import { canonicalIp } from "./addresses.js";

export interface PortPoolOptions {
  first: number;
  last: number;
  /** Route a connection from an unexpected IP to the port's single pending reservation (proxy setups). */
  allowForeignAddress: boolean;
  /** How long reserve() waits when this client IP is pending on every port. */
  collisionWaitMs: number;
  /** How long a port that failed to bind (used by another process) is skipped. */
  bindCooldownMs?: number;
  /** How long a listener with nothing pending stays open for reuse (0: closed at once). */
  idleLingerMs?: number;
  logger: Logger;
}

/** Counters for the metrics exporter. */
export interface PortPoolStats {
  pendingReservations: number;
  listeningPorts: number;
  /** Listening ports with nothing pending, kept open for reuse. */
  idlePorts: number;
  sharedPorts: number;
  refusals: number;
  strangersRefused: number;
  /** reserve() calls waiting for a place (their client IP is pending on every port). */
  waiting: number;
}

export class PortPoolExhaustedError extends Error {
  constructor(message = "No passive port free for this client address.") {
    super(message);
    this.name = "PortPoolExhaustedError";
  }
}

/** At most one log line per this many ms for connections refused for want of a reservation (the count is kept). */
const STRANGER_LOG_INTERVAL_MS = 10_000;

/** Bind failures that say nothing of the port: the process (or system) is out of descriptors or buffers. */
const NODE_WIDE_BIND_ERRORS = new Set(["EMFILE", "ENFILE", "ENOBUFS", "ENOMEM"]);

/** A claim on a port for one client IP, until that client connects or the claim is released. */
export class PassiveReservation {
  private socket: Socket | null = null;
  private waiter: { resolve(s: Socket): void; reject(e: Error): void } | null = null;
  private settled = false;

  constructor(
    private readonly listener: SharedListener,
    readonly clientIp: string,
  ) {}

  get port(): number {
    return this.listener.port;
  }

  /** Settles when the port is listening (rejects if it could not be bound). */
  get ready(): Promise<void> {
    return this.listener.ready;
  }

  /** Called by the listener when the expected client connects. */
  deliver(socket: Socket): void {
    if (this.settled) {
      socket.destroy();
      return;
    }
    if (this.waiter) {
      this.settled = true;
      this.waiter.resolve(socket);
      this.waiter = null;
      return;
    }
    // The client connected before sending its transfer command: hold the socket until then.
    socket.on("error", () => socket.destroy());
    this.socket = socket;
  }

  /** Resolves with the client's data connection; rejects on release, abort or timeout. */
  connection(timeoutMs: number, signal?: AbortSignal): Promise<Socket> {
    if (this.socket) {
      const socket = this.socket;
      this.socket = null;
      this.settled = true;
      socket.removeAllListeners("error");
      return Promise.resolve(socket);
    }
    if (this.settled) return Promise.reject(new Error("reservation released"));
    return new Promise<Socket>((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
      };
      const onAbort = () => this.release();
      const timer = setTimeout(() => {
        this.release(new Error("timed out waiting for the data connection"));
      }, timeoutMs);
      signal?.addEventListener("abort", onAbort, { once: true });
      this.waiter = {
        resolve: (s) => {
          done();
          resolve(s);
        },
        reject: (e) => {
          done();
          reject(e);
        },
      };
    });
  }

  /** Gives the port back. Idempotent; a connection already handed over is not touched. */
  release(reason?: Error): void {
    if (this.settled) return;
    this.settled = true;
    this.listener.remove(this);
    this.socket?.destroy();
    this.socket = null;
    // The error (and its stack) only when someone waits: most releases are a session's next PASV.
    this.waiter?.reject(reason ?? new Error("reservation released"));
    this.waiter = null;
  }
}

/** One listening socket on (host, port), shared by reservations from different client IPs. */
class SharedListener {
  readonly pending = new Map<string, PassiveReservation>();
  readonly ready: Promise<void>;
  private readonly server: Server;
  private closed = false;
  private idleTimer: NodeJS.Timeout | null = null;

  /** `previous`: the close of this port's last listener (its listening socket), which must finish before we bind. */
  constructor(
    private readonly pool: PassivePortPool,
    readonly host: string,
    readonly port: number,
    previous: Promise<void>,
  ) {
    // Paused on connect: nothing is read until the transfer decides how (plain, or TLS whose
    // ClientHello a client like curl sends before its RETR and must reach the TLS layer intact).
    this.server = createServer({ pauseOnConnect: true }, (socket) => this.route(socket));
    this.ready = previous.then(
      () =>
        new Promise<void>((resolve, reject) => {
          // Closed while the port's previous listener was closing (the node shutting down): no bind.
          if (this.closed) {
            reject(new Error("listener closed before it was bound"));
            return;
          }
          this.server.once("error", reject);
          this.server.listen({ host, port }, () => {
            this.server.off("error", reject);
            this.server.on("error", (err) => pool.logger.warn({ err, port }, "passive listener error"));
            resolve();
          });
        }),
    );
    this.ready.catch(() => this.close());
  }

  get idle(): boolean {
    return this.pending.size === 0;
  }

  add(clientIp: string): PassiveReservation {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = null;
    this.server.ref();
    const reservation = new PassiveReservation(this, clientIp);
    this.pending.set(clientIp, reservation);
    return reservation;
  }

  remove(reservation: PassiveReservation): void {
    if (this.pending.get(reservation.clientIp) !== reservation) return;
    this.pending.delete(reservation.clientIp);
    this.becameFree();
  }

  /** A reservation left: offer the room to a waiting reserve(), and linger (or close) once idle. */
  private becameFree(): void {
    if (this.pool.handOver(this)) return;
    if (this.pending.size > 0) return;
    const linger = this.pool.options.idleLingerMs ?? 0;
    if (linger > 0) {
      // An idle listener is spare capacity, not work: it must not keep the process alive.
      this.idleTimer = setTimeout(() => this.close(), linger).unref();
      this.server.unref();
      return;
    }
    this.close();
    this.pool.portFreed();
  }

  get isClosed(): boolean {
    return this.closed;
  }

  private route(socket: Socket): void {
    const peer = canonicalIp(socket.remoteAddress);
    if (peer === "") {
      // Reset before it was accepted: no address to route by, nor a stranger to report.
      socket.destroy();
      return;
    }
    let reservation = this.pending.get(peer);
    if (!reservation && this.pool.options.allowForeignAddress && this.pending.size === 1) {
      reservation = this.pending.values().next().value;
    }
    if (!reservation) {
      this.pool.refusedStranger(this.port, peer, this.pending.size);
      socket.on("error", () => {});
      socket.destroy();
      return;
    }
    this.pending.delete(reservation.clientIp);
    reservation.deliver(socket);
    this.becameFree();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = null;
    // The listening socket is released at once; the server's own 'close' waits for the connections
    // it accepted, the transfers still running, which must not keep the port from the next listener.
    this.server.close();
    this.pool.forget(this, new Promise<void>((resolve) => setImmediate(resolve)));
  }
}

interface Waiter {
  host: string;
  clientIp: string;
  resolve(outcome: PassiveReservation | "retry" | null): void;
  timer: NodeJS.Timeout;
}

export class PassivePortPool {
  /** Listeners by `host|port`. */
  private readonly listeners = new Map<string, SharedListener>();
  /** Listeners still closing, by `host|port`: a new bind of that port waits for the close. */
  private readonly closing = new Map<string, Promise<void>>();
  private readonly coolingUntil = new Map<number, number>();
  /** reserve() calls waiting for room, oldest first. */
  private readonly waiters: Waiter[] = [];
  private cursor = 0;
  refusals = 0;
  strangersRefused = 0;
  /** When the last stranger was logged, and how many were refused since without a line of their own. */
  private strangerLoggedAt = -Infinity;
  private strangersUnlogged = 0;

  constructor(readonly options: PortPoolOptions) {
    if (options.first > options.last) throw new RangeError("empty passive port range");
  }

  get logger(): Logger {
    return this.options.logger;
  }

  /**
   * Counts a connection refused for want of a reservation, and logs it: at most one line per
   * {@link STRANGER_LOG_INTERVAL_MS}, which says how many went unlogged before it, so that a flood of
   * connections to the range cannot flood the log. Other clients' addresses are not written there.
   */
  refusedStranger(port: number, peer: string, pending: number): void {
    this.strangersRefused++;
    const now = Date.now();
    if (now - this.strangerLoggedAt < STRANGER_LOG_INTERVAL_MS) {
      this.strangersUnlogged++;
      return;
    }
    this.logger.warn(
      { port, peer, pending, refusedUnlogged: this.strangersUnlogged },
      "passive data connection from an address with no pending reservation refused",
    );
    this.strangerLoggedAt = now;
    this.strangersUnlogged = 0;
  }

  get size(): number {
    return this.options.last - this.options.first + 1;
  }

  /**
   * Reserves a passive port on `host` (the control connection's local address) for `clientIp`.
   * Rejects with PortPoolExhaustedError after `collisionWaitMs` if this IP is pending on every port.
   */
  async reserve(host: string, clientIp: string): Promise<PassiveReservation> {
    const deadline = Date.now() + this.options.collisionWaitMs;
    // Each failed bind cools a port down, so this loop ends within range-size bind attempts.
    for (let attempt = 0; attempt <= this.size; ) {
      let reservation: PassiveReservation;
      const listener = this.pick(host, clientIp);
      if (listener) {
        reservation = listener.add(clientIp);
      } else {
        const remaining = deadline - Date.now();
        if (remaining <= 0) break;
        const outcome = await this.waitForRoom(host, clientIp, remaining);
        if (outcome === null) break;
        if (outcome === "retry") continue;
        reservation = outcome;
      }
      try {
        await reservation.ready;
        return reservation;
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code ?? "";
        if (NODE_WIDE_BIND_ERRORS.has(code)) {
          // Every other port would fail alike: cooling them all down would keep the range closed
          // for the whole cool-down after the descriptors came back.
          this.refusals++;
          this.logger.warn({ code, port: reservation.port }, "passive port could not be bound: the node is out of descriptors");
          throw new PortPoolExhaustedError(`Passive port could not be opened (${code}).`);
        }
        attempt++;
        this.coolingUntil.set(reservation.port, Date.now() + (this.options.bindCooldownMs ?? 10_000));
        this.logger.warn({ err, port: reservation.port }, "passive port could not be bound; skipping it for a while");
      }
    }
    this.refusals++;
    throw new PortPoolExhaustedError();
  }

  /**
   * An idle listener on `host` if any (no bind needed), else a port with no listener, else the
   * least-shared listener that has nothing pending for `clientIp`.
   */
  private pick(host: string, clientIp: string): SharedListener | null {
    let best: SharedListener | null = null;
    for (const listener of this.listeners.values()) {
      if (listener.host !== host || listener.pending.has(clientIp)) continue;
      if (listener.idle) return listener;
      if (!best || listener.pending.size < best.pending.size) best = listener;
    }
    const now = Date.now();
    const { first } = this.options;
    for (let i = 0; i < this.size; i++) {
      const port = first + ((this.cursor + i) % this.size);
      const key = `${host}|${port}`;
      if (this.listeners.has(key)) continue;
      const cool = this.coolingUntil.get(port);
      if (cool !== undefined) {
        if (cool > now) continue;
        this.coolingUntil.delete(port);
      }
      this.cursor = (this.cursor + i + 1) % this.size;
      const listener = new SharedListener(this, host, port, this.closing.get(key) ?? Promise.resolve());
      this.listeners.set(key, listener);
      return listener;
    }
    return best;
  }

  /** Queues a reserve() that found no room; resolves with a reservation, "retry" or null (timed out). */
  private waitForRoom(host: string, clientIp: string, ms: number): Promise<PassiveReservation | "retry" | null> {
    return new Promise((resolve) => {
      const waiter: Waiter = {
        host,
        clientIp,
        resolve: (outcome) => {
          clearTimeout(waiter.timer);
          resolve(outcome);
        },
        timer: setTimeout(() => {
          this.waiters.splice(this.waiters.indexOf(waiter), 1);
          resolve(null);
        }, ms),
      };
      this.waiters.push(waiter);
    });
  }

  /**
   * @internal A reservation left `listener`: hand the room straight to the first waiter that can
   * use it (FIFO, one waiter per freed place: no herd of wake-ups re-scanning the range).
   */
  handOver(listener: SharedListener): boolean {
    if (listener.isClosed) return false;
    for (let i = 0; i < this.waiters.length; i++) {
      const waiter = this.waiters[i];
      if (waiter.host !== listener.host || listener.pending.has(waiter.clientIp)) continue;
      this.waiters.splice(i, 1);
      waiter.resolve(listener.add(waiter.clientIp));
      return true;
    }
    return false;
  }

  /** @internal A port left the range's listeners: the first waiter looks again. */
  portFreed(): void {
    this.waiters.shift()?.resolve("retry");
  }

  /** @internal A listener is closing; `closed` settles when its port may be bound again. */
  forget(listener: SharedListener, closed: Promise<void>): void {
    const key = `${listener.host}|${listener.port}`;
    if (this.listeners.get(key) === listener) this.listeners.delete(key);
    this.closing.set(key, closed);
    void closed.then(() => {
      if (this.closing.get(key) === closed) this.closing.delete(key);
    });
  }

  stats(): PortPoolStats {
    let pendingReservations = 0;
    let sharedPorts = 0;
    let idlePorts = 0;
    for (const l of this.listeners.values()) {
      pendingReservations += l.pending.size;
      if (l.pending.size > 1) sharedPorts++;
      if (l.idle) idlePorts++;
    }
    return {
      pendingReservations,
      listeningPorts: this.listeners.size,
      idlePorts,
      sharedPorts,
      refusals: this.refusals,
      strangersRefused: this.strangersRefused,
      waiting: this.waiters.length,
    };
  }

  /** Releases every pending reservation and closes every listener (node shutdown). */
  close(): void {
    for (const waiter of this.waiters.splice(0)) waiter.resolve(null);
    for (const listener of [...this.listeners.values()]) {
      for (const reservation of [...listener.pending.values()]) reservation.release();
      listener.close();
    }
  }
}
