/** Server-side TLS on an accepted socket: the control connection after AUTH TLS, implicit FTPS, PROT P data. */
import type { Server, Socket } from "node:net";
import { TLSSocket, type SecureContext } from "node:tls";
import { SessionLineage } from "./session-lineage.js";
import type { TlsContextProvider } from "./tls-context.js";

/**
 * What a handshake settled, read as it completed: a socket that ends in the turn after it (an empty
 * upload's client closes at once) has lost its handle, and with it these answers.
 */
export interface Handshake {
  /** Whether the connection resumed a session. */
  resumed: boolean;
  /** The connection's session (DER `SSL_SESSION`), if it has one. */
  session: Buffer | undefined;
}

/** The error message of a handshake the peer left before finishing it without a TLS error (a port probe, a client gone). */
export const HANDSHAKE_CLOSED = "connection closed during the TLS handshake";
/** The error message of a handshake that did not finish in time. */
export const HANDSHAKE_TIMED_OUT = "TLS handshake timed out";

/**
 * Wraps `socket` and resolves once the handshake completes; rejects (and destroys) on failure,
 * close or timeout. `sessionHost` (TlsSessionCache.host) lets a client resume a session by its ID,
 * not only by ticket, and reports the sessions issued.
 */
export function acceptTls(
  socket: Socket,
  context: SecureContext,
  timeoutMs: number,
  sessionHost?: Server,
  signal?: AbortSignal,
): Promise<{ secure: TLSSocket; handshake: Handshake }> {
  return new Promise((resolve, reject) => {
    const secure = new TLSSocket(socket, { isServer: true, secureContext: context, server: sessionHost });
    // An ABOR (or the session closing) during a data connection's handshake ends it at once.
    const aborted = () => fail(new Error("TLS handshake aborted"));
    signal?.addEventListener("abort", aborted, { once: true });
    const fail = (err: Error) => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", aborted);
      secure.off("close", closed);
      secure.destroy();
      reject(err);
    };
    // A peer that hangs up before finishing the handshake (a port probe, a plain client on the
    // implicit port) makes a standalone TLSSocket emit only 'end' and 'close', no 'error': without
    // this the timer and the socket would linger for the whole timeout.
    const closed = () => fail(new Error(HANDSHAKE_CLOSED));
    const timer = setTimeout(() => fail(new Error(HANDSHAKE_TIMED_OUT)), timeoutMs);
    if (signal?.aborted) aborted();
    secure.once("error", fail);
    secure.once("close", closed);
    secure.once("secure", () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", aborted);
      secure.off("error", fail);
      secure.off("close", closed);
      const handshake: Handshake = { resumed: secure.isSessionReused(), session: secure.getSession() };
      // TLS 1.3 session tickets are written only after this handler has returned: the caller's
      // first write (the 220 of implicit FTPS, a download's data) waits a turn so that they go
      // before it. A client that keeps its session once it has read that first reply (wget), or
      // that closes after the data (ftplib's unwrap), would otherwise miss them or fail. What
      // happens to the connection in that turn (a clean end, a reset) is the caller's to see: it
      // gets the socket as it is then, ended or destroyed.
      const meanwhile = () => {};
      secure.on("error", meanwhile);
      setImmediate(() => {
        secure.off("error", meanwhile);
        resolve({ secure, handshake });
      });
    });
  });
}

/**
 * TLS on a control connection (AUTH TLS or implicit FTPS), with the client's TLS sessions from its
 * handshake on: the ones its PROT P data connections must resume.
 */
export async function acceptControlTls(socket: Socket, tls: TlsContextProvider, timeoutMs: number): Promise<{ secure: TLSSocket; sessions: SessionLineage }> {
  const sessions = new SessionLineage();
  const host = tls.sessions.host((session) => sessions.addControl(session), sessions.pins);
  let accepted: { secure: TLSSocket; handshake: Handshake };
  try {
    accepted = await acceptTls(socket, tls.context, timeoutMs, host);
  } catch (err) {
    tls.sessions.release(sessions.pins);
    throw err;
  }
  sessions.adoptControl(accepted.handshake);
  return { secure: accepted.secure, sessions };
}
