/**
 * A bare FTP control client for tests that need byte-level control (pipelining, garbage, exact
 * reply codes, chosen source addresses in 127.0.0.0/8 to stand for different clients).
 */
import { connect, type Socket } from "node:net";

export interface FtpReply {
  code: number;
  /** Every line of the reply, without CRLF. */
  lines: string[];
  /** The text of the final line. */
  text: string;
}

export class RawClient {
  private buffer = "";
  private readonly replies: FtpReply[] = [];
  private waiter: ((r: FtpReply) => void) | null = null;
  private ended = false;
  private endWaiters: Array<() => void> = [];

  private constructor(readonly socket: Socket) {
    socket.setEncoding("utf8");
    socket.on("data", (text: string) => this.onData(text));
    socket.on("error", () => {});
    socket.on("close", () => {
      this.ended = true;
      for (const w of this.endWaiters) w();
      this.endWaiters = [];
    });
  }

  /** Connects and consumes the 220 greeting. */
  static async connect(port: number, options: { host?: string; localAddress?: string } = {}): Promise<RawClient> {
    const socket = connect({ port, host: options.host ?? "127.0.0.1", localAddress: options.localAddress });
    await new Promise<void>((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("error", reject);
    });
    const client = new RawClient(socket);
    const greeting = await client.reply();
    if (greeting.code !== 220) throw new Error(`unexpected greeting ${greeting.code} ${greeting.text}`);
    return client;
  }

  private onData(text: string): void {
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
  }

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

  /** EPSV, then connects to the announced port from `localAddress` (default: the control socket's). */
  async passive(localAddress = this.socket.localAddress): Promise<Socket> {
    const r = await this.command("EPSV");
    const m = /\(\|\|\|(\d+)\|\)/.exec(r.text);
    if (r.code !== 229 || !m) throw new Error(`EPSV: ${r.code} ${r.text}`);
    return connectData(Number(m[1]), localAddress);
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

  /** Closes without QUIT and waits for the socket to be gone. */
  async close(): Promise<void> {
    this.socket.destroy();
    await this.closed();
  }
}

export function connectData(port: number, localAddress?: string, host = "127.0.0.1"): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host, localAddress });
    socket.once("connect", () => resolve(socket));
    socket.once("error", reject);
  });
}

/** Reads a data socket to its end. */
export async function readAll(socket: Socket): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of socket) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
