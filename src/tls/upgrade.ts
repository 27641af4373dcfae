/** Server-side TLS on an accepted socket: the control connection after AUTH TLS, implicit FTPS, PROT P data. */
import type { Socket } from "node:net";
import { TLSSocket, type SecureContext } from "node:tls";

/** Wraps `socket` and resolves once the handshake completes; rejects (and destroys) on failure or timeout. */
export function acceptTls(socket: Socket, context: SecureContext, timeoutMs: number): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const secure = new TLSSocket(socket, { isServer: true, secureContext: context });
    const fail = (err: Error) => {
      clearTimeout(timer);
      secure.destroy();
      reject(err);
    };
    const timer = setTimeout(() => fail(new Error("TLS handshake timed out")), timeoutMs);
    secure.once("error", fail);
    secure.once("secure", () => {
      clearTimeout(timer);
      secure.off("error", fail);
      resolve(secure);
    });
  });
}
