/**
 * Active mode (PORT/EPRT): the server connects back to the client. RFC 959 §3.2 has it connect
 * from port L-1 (20); binding it needs privileges, so a node without them uses an ephemeral port
 * (decided and said at its start, see bind-probe.ts). Several connections may come from port 20 at once: libuv sets
 * SO_REUSEADDR before bind, and distinct client endpoints keep the 4-tuples distinct.
 */
import { connect, type Socket } from "node:net";
import type { Logger } from "../observe/logger.js";

export interface ActiveTarget {
  host: string;
  port: number;
  /** The control connection's local address: the data connection leaves from the same interface. */
  localAddress: string;
  /** 20 by default; 0 for an ephemeral port. */
  localPort: number;
}

const BIND_FAILURES = new Set(["EACCES", "EPERM", "EADDRINUSE", "EADDRNOTAVAIL"]);

function attempt(target: ActiveTarget, localPort: number, timeoutMs: number, signal?: AbortSignal): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({
      host: target.host,
      port: target.port,
      localAddress: target.localAddress,
      ...(localPort > 0 ? { localPort } : {}),
    });
    // Paused like a passive connection (pauseOnConnect): nothing is read before the transfer
    // decides how (a stream, or the kernel splicing straight into the file).
    socket.pause();
    const fail = (err: Error) => {
      cleanup();
      socket.destroy();
      reject(err);
    };
    const onAbort = () => fail(new Error("aborted"));
    const timer = setTimeout(() => fail(new Error("timed out connecting to the client")), timeoutMs);
    const cleanup = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      socket.off("error", fail);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
    socket.once("error", fail);
    socket.once("connect", () => {
      cleanup();
      resolve(socket);
    });
  });
}

/** Connects to the client's data port, from `localPort` when it can be bound. */
export async function connectActive(
  target: ActiveTarget,
  timeoutMs: number,
  logger: Logger,
  signal?: AbortSignal,
): Promise<Socket> {
  if (target.localPort <= 0) return attempt(target, 0, timeoutMs, signal);
  try {
    return await attempt(target, target.localPort, timeoutMs, signal);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (!(e.syscall === "bind" || (e.code && BIND_FAILURES.has(e.code)))) throw err;
    // A port busy with another connection to the same client address and port (EADDRINUSE,
    // EADDRNOTAVAIL) is the normal price of a fixed source port. One this process may not bind at
    // all was found at the node's start (bind-probe.ts), which then asks for an ephemeral port.
    logger.debug({ code: e.code, port: target.localPort }, "active data connection from an ephemeral port: the configured one is busy toward this client");
    return attempt(target, 0, timeoutMs, signal);
  }
}
