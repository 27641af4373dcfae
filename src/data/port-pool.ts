/**
 * The passive port pool: the heart of an edge's data channel.
 *
 * A small firewall range must not cap a node at one transfer per port, so:
 * - a reservation is *pending* only until its client connects; then it leaves the listener, and a
 *   listener with nothing pending is closed: established transfers hold no port of the range;
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
  logger: Logger;
}

/** Counters for the metrics exporter. */
export interface PortPoolStats {
  pendingReservations: number;
  listeningPorts: number;
  sharedPorts: number;
  refusals: number;
  strangersRefused: number;
}

export class PortPoolExhaustedError extends Error {
  constructor() {
    super("No passive port free for this client address.");
    this.name = "PortPoolExhaustedError";
  }
}

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
  release(reason = new Error("reservation released")): void {
    if (this.settled) return;
    this.settled = true;
    this.listener.remove(this);
    this.socket?.destroy();
    this.socket = null;
    this.waiter?.reject(reason);
    this.waiter = null;
  }
}

/** One listening socket on (host, port), shared by reservations from different client IPs. */
class SharedListener {
  readonly pending = new Map<string, PassiveReservation>();
  readonly ready: Promise<void>;
  private readonly server: Server;
  private closed = false;

  constructor(
    private readonly pool: PassivePortPool,
    readonly host: string,
    readonly port: number,
  ) {
    // Paused on connect: nothing is read until the transfer decides how (plain, or TLS whose
    // ClientHello a client like curl sends before its RETR and must reach the TLS layer intact).
    this.server = createServer({ pauseOnConnect: true }, (socket) => this.route(socket));
    this.ready = new Promise<void>((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen({ host, port }, () => {
        this.server.off("error", reject);
        this.server.on("error", (err) => pool.logger.warn({ err, port }, "passive listener error"));
        resolve();
      });
    });
    this.ready.catch(() => this.close());
  }

  add(clientIp: string): PassiveReservation {
    const reservation = new PassiveReservation(this, clientIp);
    this.pending.set(clientIp, reservation);
    return reservation;
  }

  remove(reservation: PassiveReservation): void {
    if (this.pending.get(reservation.clientIp) !== reservation) return;
    this.pending.delete(reservation.clientIp);
    if (this.pending.size === 0) this.close();
    this.pool.slotFreed();
  }

  private route(socket: Socket): void {
    const peer = canonicalIp(socket.remoteAddress);
    let reservation = this.pending.get(peer);
    if (!reservation && this.pool.options.allowForeignAddress && this.pending.size === 1) {
      reservation = this.pending.values().next().value;
    }
    if (!reservation) {
      this.pool.strangersRefused++;
      this.pool.logger.warn(
        { port: this.port, peer, expected: [...this.pending.keys()] },
        "passive data connection from an address with no pending reservation refused",
      );
      socket.on("error", () => {});
      socket.destroy();
      return;
    }
    this.pending.delete(reservation.clientIp);
    if (this.pending.size === 0) this.close();
    this.pool.slotFreed();
    reservation.deliver(socket);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.pool.forget(this);
    this.server.close();
  }
}

export class PassivePortPool {
  /** Listeners by `host|port`. */
  private readonly listeners = new Map<string, SharedListener>();
  private readonly coolingUntil = new Map<number, number>();
  private waiters: Array<() => void> = [];
  private cursor = 0;
  refusals = 0;
  strangersRefused = 0;

  constructor(readonly options: PortPoolOptions) {
    if (options.first > options.last) throw new RangeError("empty passive port range");
  }

  get logger(): Logger {
    return this.options.logger;
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
      const listener = this.pick(host, clientIp);
      if (listener) {
        const reservation = listener.add(clientIp);
        try {
          await listener.ready;
          return reservation;
        } catch (err) {
          attempt++;
          this.coolingUntil.set(listener.port, Date.now() + (this.options.bindCooldownMs ?? 10_000));
          this.logger.warn({ err, port: listener.port }, "passive port could not be bound; skipping it for a while");
          continue;
        }
      }
      const remaining = deadline - Date.now();
      if (remaining <= 0) break;
      await this.waitForSlot(remaining);
    }
    this.refusals++;
    throw new PortPoolExhaustedError();
  }

  /** A port with no listener on `host` if any, else the least-shared listener without `clientIp`. */
  private pick(host: string, clientIp: string): SharedListener | null {
    const now = Date.now();
    const { first } = this.options;
    for (let i = 0; i < this.size; i++) {
      const port = first + ((this.cursor + i) % this.size);
      if (this.listeners.has(`${host}|${port}`)) continue;
      const cool = this.coolingUntil.get(port);
      if (cool !== undefined) {
        if (cool > now) continue;
        this.coolingUntil.delete(port);
      }
      this.cursor = (this.cursor + i + 1) % this.size;
      const listener = new SharedListener(this, host, port);
      this.listeners.set(`${host}|${port}`, listener);
      return listener;
    }
    let best: SharedListener | null = null;
    for (const listener of this.listeners.values()) {
      if (listener.host !== host || listener.pending.has(clientIp)) continue;
      if (!best || listener.pending.size < best.pending.size) best = listener;
    }
    return best;
  }

  private waitForSlot(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(wake, ms);
      function wake() {
        clearTimeout(timer);
        resolve();
      }
      this.waiters.push(wake);
    });
  }

  /** @internal A reservation left a listener: wake reserve() calls waiting for one. */
  slotFreed(): void {
    if (this.waiters.length === 0) return;
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }

  /** @internal */
  forget(listener: SharedListener): void {
    const key = `${listener.host}|${listener.port}`;
    if (this.listeners.get(key) === listener) this.listeners.delete(key);
  }

  stats(): PortPoolStats {
    let pendingReservations = 0;
    let sharedPorts = 0;
    for (const l of this.listeners.values()) {
      pendingReservations += l.pending.size;
      if (l.pending.size > 1) sharedPorts++;
    }
    return {
      pendingReservations,
      listeningPorts: this.listeners.size,
      sharedPorts,
      refusals: this.refusals,
      strangersRefused: this.strangersRefused,
    };
  }

  /** Releases every pending reservation and closes every listener (node shutdown). */
  close(): void {
    for (const listener of [...this.listeners.values()]) {
      for (const reservation of [...listener.pending.values()]) reservation.release();
      listener.close();
    }
    this.slotFreed();
  }
}
