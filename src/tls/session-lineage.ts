/**
 * The TLS sessions one FTP session's client holds: the control connection's, and every session the
 * node issued to it since (TLS 1.3 tickets, on the control connection or on data connections it
 * accepted). A PROT P data connection must resume one of them (tls.requireSessionReuse): resuming
 * just any session of the node is not enough, or a stranger behind the same address (a shared NAT)
 * with an account of its own could take another client's data port with its own session. In
 * vsftpd each FTP session is a process whose cache holds its own sessions only; here one process
 * serves them all, so the binding is explicit.
 *
 * Sessions are recognised by a digest of their master secret (TLS 1.3: the ticket's resumption
 * secret), which a resumed connection shares with the session it resumed, whether by ticket or by
 * session ID, and which no one without the session has.
 */
import { createHash } from "node:crypto";
import { parseSslSession } from "./ssl-session.js";
import type { Handshake } from "./upgrade.js";

/** Sessions issued on data connections that are remembered, the oldest forgotten first. */
const MAX_DATA_SESSIONS = 64;

export class SessionLineage {
  /** The control connection's sessions: kept for the whole FTP session. */
  private readonly control = new Set<string>();
  /** The IDs under which the node's session cache holds the control connection's sessions (released on close). */
  readonly pins = new Set<string>();
  /** Sessions issued on accepted data connections (TLS 1.3 tickets): the latest few. */
  private readonly data = new Set<string>();

  /** Records a session issued on the control connection (as Node serializes it: DER `SSL_SESSION`). */
  addControl(session: Buffer): void {
    const digest = masterSecretDigest(session);
    if (digest !== null) this.control.add(digest);
  }

  /** Records the session the control connection runs on, once its handshake is done. */
  adoptControl(handshake: Handshake): void {
    if (handshake.session) this.addControl(handshake.session);
  }

  /** Records a session issued on a data connection once that connection was accepted. */
  addData(session: Buffer): void {
    const digest = masterSecretDigest(session);
    if (digest === null) return;
    this.data.add(digest);
    for (const oldest of this.data) {
      if (this.data.size <= MAX_DATA_SESSIONS) break;
      this.data.delete(oldest);
    }
  }

  /** Whether a connection with this handshake resumed one of the client's sessions. */
  resumedBy(handshake: Handshake): boolean {
    if (!handshake.resumed) return false;
    const digest = handshake.session ? masterSecretDigest(handshake.session) : null;
    return digest !== null && (this.control.has(digest) || this.data.has(digest));
  }
}

/** SHA-256 of the session's master secret; null when it does not parse: then nothing matches, and the data connection is refused rather than let through. */
function masterSecretDigest(der: Buffer): string | null {
  const session = parseSslSession(der);
  return session ? createHash("sha256").update(session.masterKey).digest("base64") : null;
}
