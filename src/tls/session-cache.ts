/**
 * The node's cache of TLS sessions by session ID, for clients that resume TLS 1.2 sessions by ID
 * rather than by ticket (curl 7.x with TLS 1.2 does): a PROT P data connection must resume the
 * control connection's session (tls.requireSessionReuse), and without a server-side cache such a
 * client was refused on every transfer. Tickets and TLS 1.3 need no cache: the ticket carries the
 * session. A client's data connections reach the node that gave it the data port, so a cache per
 * node suffices (nothing to share across edges).
 *
 * Node reports new sessions and asks for stored ones only through the 'newSession' and
 * 'resumeSession' events of the server a TLSSocket belongs to; accepted sockets are wrapped one by
 * one (upgrade.ts), so each gets a small event host of its own from {@link TlsSessionCache.host},
 * which also tells the connection's owner what was issued on it (session-lineage.ts).
 *
 * A control connection's sessions are the ones its data connections resume: they are held apart
 * ("pinned") for as long as the control connection lives, outside the bounded store, so that no
 * flood of handshakes (anyone can make them, before any login) pushes them out.
 */
import { EventEmitter } from "node:events";
import type { Server } from "node:net";
import { parseSslSession, TLS1_3_VERSION } from "./ssl-session.js";

/** Sessions kept at most, oldest dropped first: about 10,000 TLS sessions at a few hundred bytes each. */
const DEFAULT_CAPACITY = 10_000;

type Entry = { data: Buffer; expires: number };

export class TlsSessionCache {
  /** Session ID (hex) → serialized session and expiry; a Map iterates oldest first. */
  private readonly sessions = new Map<string, Entry>();
  /** Sessions of live control connections, by ID: never evicted nor expired, released with their connection. */
  private readonly pinned = new Map<string, Buffer>();

  constructor(
    /** As the SecureContext's `sessionTimeout`: a session older than this is not resumed. */
    private readonly lifetimeMs: number,
    private readonly capacity = DEFAULT_CAPACITY,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * The session-event host for one connection, for `TLSSocket`'s `server` option (which Node only
   * uses for these events): sessions issued on it are stored, and passed to `issued` (DER
   * `SSL_SESSION`); sessions asked for by ID are looked up.
   */
  host(issued?: (session: Buffer) => void, pins?: Set<string>): Server {
    const host = new EventEmitter();
    host.on("newSession", (id: Buffer, session: Buffer, done: () => void) => {
      // TLS 1.3 sessions (one per ticket) resume by ticket only: storing them would only crowd out the others.
      if (parseSslSession(session)?.protocol !== TLS1_3_VERSION) {
        const key = id.toString("hex");
        if (pins) {
          this.pinned.set(key, session);
          pins.add(key);
        } else {
          this.store(key, session);
        }
      }
      issued?.(session);
      done();
    });
    host.on("resumeSession", (id: Buffer, found: (err: Error | null, session?: Buffer) => void) => {
      found(null, this.find(id.toString("hex")));
    });
    return host as Server;
  }

  /** Lets the sessions a connection pinned (see {@link host}) go, once the connection is closed. */
  release(pins: Iterable<string>): void {
    for (const key of pins) this.pinned.delete(key);
  }

  get size(): number {
    return this.sessions.size + this.pinned.size;
  }

  private store(key: string, data: Buffer): void {
    this.sessions.delete(key);
    this.sessions.set(key, { data, expires: this.now() + this.lifetimeMs });
    for (const oldest of this.sessions.keys()) {
      if (this.sessions.size <= this.capacity) break;
      this.sessions.delete(oldest);
    }
  }

  private find(key: string): Buffer | undefined {
    const pinned = this.pinned.get(key);
    if (pinned) return pinned;
    const entry = this.sessions.get(key);
    if (!entry) return undefined;
    if (entry.expires > this.now()) return entry.data;
    this.sessions.delete(key);
    return undefined;
  }
}
