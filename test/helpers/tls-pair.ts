/** TLS over loopback for unit tests of the server side: a self-signed context, and connections wrapped as the node wraps them. */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { connect, createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before } from "node:test";
import { connect as tlsConnect, createSecureContext, type ConnectionOptions, type SecureContext, type TLSSocket } from "node:tls";
import { ensureSelfSigned } from "../../src/tls/self-signed.js";
import { acceptTls, type Handshake } from "../../src/tls/upgrade.js";

/**
 * A SecureContext with a fresh self-signed certificate for the enclosing suite: made before its
 * tests, its files removed after; call the returned function inside a test.
 */
export function selfSignedContext(): () => SecureContext {
  let dir = "";
  let context: SecureContext | null = null;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "edgeftp-tls-"));
    const files = await ensureSelfSigned(dir);
    context = createSecureContext({ cert: readFileSync(files.cert), key: readFileSync(files.key), sessionTimeout: 3600 });
  });
  after(() => rmSync(dir, { recursive: true, force: true }));
  return () => context!;
}

/**
 * A TLS connection on loopback once both handshakes are done: `server` wrapped on the accepted
 * (paused) socket by acceptTls, as for PROT P, with `sessionHost` (TlsSessionCache.host); `client`
 * over `tcp`, with `options` (a session to resume, a maximum version…).
 */
export async function tlsPair(
  context: SecureContext,
  options: ConnectionOptions = {},
  sessionHost?: Server,
): Promise<{ server: TLSSocket; handshake: Handshake; client: TLSSocket; tcp: Socket; close(): void }> {
  const listener = createServer({ pauseOnConnect: true });
  await new Promise<void>((resolve) => listener.listen(0, "127.0.0.1", resolve));
  try {
    const accepted = new Promise<Socket>((resolve) => listener.once("connection", resolve));
    const tcp = connect((listener.address() as { port: number }).port, "127.0.0.1");
    tcp.on("error", () => undefined);
    const client = tlsConnect({ socket: tcp, rejectUnauthorized: false, ...options });
    client.on("error", () => undefined);
    const [{ secure: server, handshake }] = await Promise.all([acceptTls(await accepted, context, 5_000, sessionHost), new Promise((r) => client.once("secureConnect", r))]);
    server.on("error", () => undefined);
    return { server, handshake, client, tcp, close: () => (server.destroy(), client.destroy()) };
  } finally {
    listener.close();
  }
}
