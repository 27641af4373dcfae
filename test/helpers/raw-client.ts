/**
 * A bare FTP control client for tests that need byte-level control (pipelining, garbage, exact
 * reply codes, chosen source addresses in 127.0.0.0/8 to stand for different clients), and the
 * client side of data connections. It can start TLS on its connection (AUTH TLS) and go on
 * parsing replies there, for the FTPS tests.
 */
import assert from "node:assert/strict";
import { connect, createServer, type Socket } from "node:net";
import type { Readable } from "node:stream";
import { connect as tlsConnect, TLSSocket, type ConnectionOptions } from "node:tls";

export interface FtpReply {
  code: number;
  /** Every line of the reply, without CRLF. */
  lines: string[];
  /** The text of the final line. */
  text: string;
}

/** Asserts a reply's code; the message names the step and shows the whole reply. */
export function expectCode(reply: FtpReply, code: number, what: string): void {
  assert.equal(reply.code, code, `${what}: expected ${code}, got ${reply.code} ${reply.lines.join(" | ")}`);
}

export class RawClient {
  /** The control connection: the TCP socket, or after startTls() the TLS socket over it. */
  socket: Socket;
  /** The latest TLS session (a TLS 1.3 ticket) the server issued on this connection, to resume on data connections. */
  tlsSession: Buffer | null = null;
  /** The TCP socket, also under TLS (closed with it). */
  private readonly tcp: Socket;
  private buffer = "";
  private readonly replies: FtpReply[] = [];
  private waiter: ((r: FtpReply) => void) | null = null;
  private ended = false;
  private endWaiters: Array<() => void> = [];

  /** Takes a connected socket; the factories then consume the greeting (see expectGreeting). */
  protected constructor(socket: Socket) {
    this.socket = socket;
    this.tcp = socket;
    this.listen(socket);
  }

  /** Connects and consumes the 220 greeting. */
  static async connect(port: number, options: { host?: string; localAddress?: string } = {}): Promise<RawClient> {
    const client = new RawClient(await connectData(port, options.localAddress, options.host));
    await client.expectGreeting();
    return client;
  }

  /** Connects, logs in and sets TYPE I: a session ready for binary transfers. */
  static async binarySession(port: number, user: string, password: string): Promise<RawClient> {
    const client = await RawClient.connect(port);
    await client.login(user, password);
    expectCode(await client.command("TYPE I"), 200, "TYPE I");
    return client;
  }

  /** Consumes the 220 greeting; on anything else closes the connection and throws. */
  protected async expectGreeting(): Promise<void> {
    const greeting = await this.reply();
    if (greeting.code !== 220) {
      await this.close();
      throw new Error(`unexpected greeting ${greeting.code} ${greeting.text}`);
    }
  }

  /**
   * Starts TLS on this connection, as after a 234 to AUTH TLS: wraps the TCP socket client-side
   * (tls.connect({ socket })) and reads the following replies from the TLS socket. Resolves once
   * the handshake has completed.
   */
  async startTls(options: ConnectionOptions): Promise<void> {
    const plain = this.socket;
    plain.off("data", this.onData);
    plain.off("close", this.onClose);
    const secure = tlsConnect({ ...options, socket: plain });
    this.socket = secure;
    this.listen(secure);
    await handshake(secure);
  }

  private listen(socket: Socket): void {
    socket.setEncoding("utf8");
    socket.on("data", this.onData);
    socket.on("error", () => {});
    socket.on("close", this.onClose);
    if (socket instanceof TLSSocket) socket.on("session", (session: Buffer) => (this.tlsSession = session));
  }

  private readonly onClose = (): void => {
    this.ended = true;
    for (const w of this.endWaiters) w();
    this.endWaiters = [];
  };

  private readonly onData = (text: string): void => {
    this.buffer += text;
    for (;;) {
      const reply = this.parseOne();
      if (!reply) break;
      if (this.waiter) {
        const w = this.waiter;
        this.waiter = null;
        w(reply);
      } else this.replies.push(reply);
    }
  };

  private parseOne(): FtpReply | null {
    const lines: string[] = [];
    let offset = 0;
    for (;;) {
      const end = this.buffer.indexOf("\r\n", offset);
      if (end < 0) return null;
      const line = this.buffer.slice(offset, end);
      offset = end + 2;
      lines.push(line);
      const first = lines[0];
      if (!/^\d{3}[ -]/.test(first)) throw new Error(`malformed reply line: ${JSON.stringify(first)}`);
      if (first[3] === " " || (lines.length > 1 && line.startsWith(first.slice(0, 3) + " "))) {
        this.buffer = this.buffer.slice(offset);
        return { code: Number(first.slice(0, 3)), lines, text: line.slice(4) };
      }
    }
  }

  /** The next reply, in order. */
  reply(timeoutMs = 5000): Promise<FtpReply> {
    const queued = this.replies.shift();
    if (queued) return Promise.resolve(queued);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = null;
        reject(new Error(`no reply within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiter = (r) => {
        clearTimeout(timer);
        resolve(r);
      };
    });
  }

  send(line: string): void {
    this.socket.write(line + "\r\n");
  }

  async command(line: string): Promise<FtpReply> {
    this.send(line);
    return this.reply();
  }

  async login(user: string, password: string): Promise<void> {
    const u = await this.command(`USER ${user}`);
    if (u.code !== 331) throw new Error(`USER: ${u.code} ${u.text}`);
    const p = await this.command(`PASS ${password}`);
    if (p.code !== 230) throw new Error(`PASS: ${p.code} ${p.text}`);
  }

  /** EPSV, and the port it announces. */
  async epsv(): Promise<number> {
    const r = await this.command("EPSV");
    const m = /\(\|\|\|(\d+)\|\)/.exec(r.text);
    if (r.code !== 229 || !m) throw new Error(`EPSV: ${r.code} ${r.text}`);
    return Number(m[1]);
  }

  /** EPSV, then connects to the announced port from `localAddress` (default: the control socket's). */
  async passive(localAddress = this.socket.localAddress): Promise<Socket> {
    return connectData(await this.epsv(), localAddress);
  }

  /** {@link passive}, for a transfer the server may end with a reset (a failed one): an expected end, not an error. */
  async openData(): Promise<Socket> {
    const data = await this.passive();
    data.on("error", () => undefined);
    return data;
  }

  /** Resolves when the server has closed the connection. */
  closed(timeoutMs = 5000): Promise<void> {
    if (this.ended) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("connection still open")), timeoutMs);
      this.endWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /** Closes without QUIT (TLS and the TCP socket under it) and waits for the connection to be gone. */
  async close(): Promise<void> {
    this.socket.destroy();
    this.tcp.destroy();
    await this.closed();
  }
}

/** Resolves once `secure` has completed its handshake; rejects (and destroys it) on error or after 5 s. */
export function handshake(secure: TLSSocket): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const fail = (err: Error) => {
      clearTimeout(timer);
      secure.destroy();
      reject(err);
    };
    const timer = setTimeout(() => fail(new Error("TLS handshake timed out")), 5000);
    secure.once("error", fail);
    secure.once("secureConnect", () => {
      clearTimeout(timer);
      secure.off("error", fail);
      resolve(secure);
    });
  });
}

/** Connects to a data port (or any TCP port), from `localAddress` when given. */
export function connectData(port: number, localAddress?: string, host = "127.0.0.1"): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host, localAddress });
    socket.once("connect", () => resolve(socket));
    socket.once("error", reject);
  });
}

/** Reads a data socket (plain or TLS) to its end; rejects if it fails. */
export async function readAll(socket: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of socket) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Resolves once `socket` is closed, with what it received; errors count as a close. */
export function drainToClose(socket: Socket): Promise<Buffer> {
  const chunks: Buffer[] = [];
  return new Promise((resolve) => {
    if (socket.destroyed) return resolve(Buffer.alloc(0));
    socket.on("data", (c: Buffer) => chunks.push(c));
    socket.on("error", () => {});
    socket.once("close", () => resolve(Buffer.concat(chunks)));
    socket.resume();
  });
}

/** Listens on `host` (kernel-chosen port) for one connection, as the client side of active mode does. */
export async function listenOnce(host: string): Promise<{ port: number; accepted: Promise<Socket>; close(): void }> {
  const listener = createServer();
  await new Promise<void>((resolve, reject) => {
    listener.once("error", reject);
    listener.listen(0, host, () => resolve());
  });
  const { port } = listener.address() as { port: number };
  const accepted = new Promise<Socket>((resolve) => listener.once("connection", resolve));
  return { port, accepted, close: () => listener.close() };
}
