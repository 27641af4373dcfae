import type { Socket } from "node:net";
import { RawClient } from "./raw-client.js";
import type { TestServer } from "./server.js";
import { eventually } from "./wait.js";

/**
 * The connections a test body opens to a server, kept so that they are closed when the body ends,
 * pass or fail, and before the leak check looks.
 */
export class TestConnections {
  private readonly sockets: Socket[] = [];
  private readonly clients: RawClient[] = [];

  /** Keeps `socket` to destroy after the test; its errors (resets by the server) are expected. */
  track<T extends Socket>(socket: T): T {
    socket.on("error", () => {});
    this.sockets.push(socket);
    return socket;
  }

  /** A new control client (from `localAddress` when given), closed after the test. */
  async open(port: number, localAddress?: string): Promise<RawClient> {
    const client = await RawClient.connect(port, localAddress ? { localAddress } : {});
    this.clients.push(client);
    return client;
  }

  /** Destroys the sockets, closes the clients without QUIT, and waits (up to 3 s) for the server's side of each session to end. */
  async closeAll(server: TestServer): Promise<void> {
    for (const s of this.sockets.splice(0)) s.destroy();
    for (const c of this.clients.splice(0)) await c.close().catch(() => undefined);
    await eventually(() => server.node.sessions.size === 0, 3000);
  }
}
