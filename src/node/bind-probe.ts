/** Whether this process may listen on a port, asked by listening on it for a moment. */
import { createServer } from "node:net";

/** Resolves null when `host`:`port` could be bound, else the error (EACCES, EADDRINUSE…). */
export function canBind(host: string, port: number): Promise<NodeJS.ErrnoException | null> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", (err) => resolve(err));
    server.listen({ host, port }, () => server.close(() => resolve(null)));
  });
}

/**
 * The local port active data connections leave from: `port` (20 by default), or 0 (an ephemeral
 * port) when this process may not bind it, i.e. without root or CAP_NET_BIND_SERVICE. A port
 * merely in use is still ours to share (connections bind it with SO_REUSEADDR).
 */
export async function activeSourcePort(port: number): Promise<number> {
  if (port <= 0) return 0;
  const err = await canBind("127.0.0.1", port);
  return err && (err.code === "EACCES" || err.code === "EPERM") ? 0 : port;
}
