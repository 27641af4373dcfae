/**
 * A lean FTP client for the benchmark: one control socket with a small reply parser, data sockets
 * that read into one reused buffer (no per-chunk allocation) and write one reused buffer, and
 * every wait bounded by a timeout. Passive mode (EPSV/PASV), active mode (PORT: the client
 * listens on 127.0.0.1 and the server connects back) and explicit FTPS (AUTH TLS, PROT P, the
 * data connection resuming the control connection's TLS session), all on loopback.
 */
import { connect, createServer, Socket, type OnReadOpts, type Server } from "node:net";
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from "node:tls";

export interface Reply {
  code: number;
  /** The text of the final line. */
  text: string;
}

/** The server closed the control connection (or it failed) before the awaited reply. */
export class ClosedError extends Error {
  constructor(message = "control connection closed") {
    super(message);
    this.name = "ClosedError";
  }
}

export class TimeoutError extends Error {
  constructor(what: string) {
    super(`timed out: ${what}`);
    this.name = "TimeoutError";
  }
}

export interface ConnectOptions {
  host?: string;
  port: number;
  localAddress?: string;
  timeoutMs?: number;
}

/** Opens a TCP connection, bounded in time. */
export function openSocket(opts: ConnectOptions): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: opts.host ?? "127.0.0.1", port: opts.port, localAddress: opts.localAddress });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new TimeoutError(`connect to port ${opts.port}`));
    }, opts.timeoutMs ?? 10_000);
    socket.once("connect", () => {
      clearTimeout(timer);
      socket.removeListener("error", onError);
      resolve(socket);
    });
    const onError = (err: Error) => {
      clearTimeout(timer);
      socket.destroy();
      reject(err);
    };
    socket.once("error", onError);
  });
}

export class FtpControl {
  private buffer = "";
  private readonly queued: Reply[] = [];
  private waiter: { resolve(r: Reply): void; reject(e: Error): void; timer: NodeJS.Timeout } | null = null;
  private closedError: Error | null = null;
  /** Lines of the multi-line reply being received (LIST-less servers send long FEAT/HELP). */
  private multi: string | null = null;
  private sock: Socket;
  /** After AUTH TLS: the latest TLS session the server offered (for the data connections to resume). */
  private tlsSession: Buffer | null = null;
  private readonly onDataText = (text: string) => this.onData(text);
  private readonly onError = (err: Error) => this.fail(err);
  private readonly onClose = () => this.fail(new ClosedError());

  private constructor(
    socket: Socket,
    readonly timeoutMs: number,
  ) {
    this.sock = socket;
    socket.setNoDelay(true);
    this.attach(socket);
  }

  /** The control socket (a TLSSocket after AUTH TLS). */
  get socket(): Socket {
    return this.sock;
  }

  private attach(socket: Socket): void {
    socket.setEncoding("latin1");
    socket.on("data", this.onDataText);
    socket.on("error", this.onError);
    socket.on("close", this.onClose);
  }

  private detach(socket: Socket): void {
    socket.off("data", this.onDataText);
    socket.off("error", this.onError);
    socket.off("close", this.onClose);
  }

  /**
   * AUTH TLS (RFC 4217): the control connection continues over TLS (certificate not checked: the
   * servers use a self-signed one on loopback). Keeps the session the server offers, so data
   * connections can resume it (TLS 1.3 delivers it after the handshake, in the 'session' event).
   */
  async upgradeTls(timeoutMs = this.timeoutMs): Promise<void> {
    await this.expect("AUTH TLS", (c) => c === 234);
    const raw = this.sock;
    this.detach(raw);
    // ftp-srv wraps its socket only once its 234 is written: a ClientHello arriving before that
    // is read as a command and answered in clear. Outside every timed part, so the same for all.
    await new Promise((resolve) => setTimeout(resolve, 20));
    const secure = tlsConnect({ socket: raw, rejectUnauthorized: false });
    secure.on("session", (session: Buffer) => {
      this.tlsSession = session;
    });
    await within(
      new Promise<void>((resolve, reject) => {
        secure.once("secureConnect", () => {
          secure.off("error", reject);
          resolve();
        });
        secure.once("error", reject);
      }),
      timeoutMs,
      "control TLS handshake",
    ).catch((err: unknown) => {
      secure.destroy();
      if (err instanceof Error) err.message = `AUTH TLS handshake: ${err.message}`;
      throw err;
    });
    this.sock = secure;
    this.attach(secure);
  }

  /** The TLS session for a data connection to resume (null before AUTH TLS or if none was offered). */
  get session(): Buffer | null {
    return this.tlsSession ?? (this.sock as TLSSocket).getSession?.() ?? null;
  }

  /** "TLSv1.3 TLS_AES_256_GCM_SHA384" once the control connection is secure, else null. */
  get tlsDescription(): string | null {
    const t = this.sock as TLSSocket;
    if (typeof t.getCipher !== "function") return null;
    return `${t.getProtocol() ?? "?"} ${t.getCipher()?.standardName ?? t.getCipher()?.name ?? "?"}`;
  }

  /** Connects and reads the greeting; throws ClosedError/a reply error if it is not 220. */
  static async open(opts: ConnectOptions): Promise<FtpControl> {
    const timeoutMs = opts.timeoutMs ?? 10_000;
    const socket = await openSocket({ ...opts, timeoutMs });
    const ftp = new FtpControl(socket, timeoutMs);
    const greeting = await ftp.reply();
    if (greeting.code !== 220) {
      ftp.destroy();
      throw new ReplyError("greeting", greeting);
    }
    return ftp;
  }

  get localAddress(): string {
    return this.sock.localAddress ?? "127.0.0.1";
  }

  private onData(text: string): void {
    this.buffer += text;
    let start = 0;
    for (;;) {
      const end = this.buffer.indexOf("\n", start);
      if (end < 0) break;
      const line = this.buffer.slice(start, end).replace(/\r$/, "");
      start = end + 1;
      this.onLine(line);
    }
    this.buffer = this.buffer.slice(start);
  }

  private onLine(line: string): void {
    if (this.multi !== null) {
      // A multi-line reply ends with the same code followed by a space.
      if (line.length >= 4 && line.startsWith(this.multi) && line[3] === " ") {
        this.multi = null;
        this.push({ code: Number(line.slice(0, 3)), text: line.slice(4) });
      }
      return;
    }
    if (!/^\d{3}/.test(line)) return; // stray text
    if (line[3] === "-") {
      this.multi = line.slice(0, 3);
      return;
    }
    this.push({ code: Number(line.slice(0, 3)), text: line.slice(4) });
  }

  private push(reply: Reply): void {
    const w = this.waiter;
    if (w) {
      this.waiter = null;
      clearTimeout(w.timer);
      w.resolve(reply);
    } else this.queued.push(reply);
  }

  private fail(err: Error): void {
    if (this.closedError) return;
    this.closedError = err instanceof ClosedError ? err : new ClosedError(`control connection: ${err.message}`);
    const w = this.waiter;
    if (w) {
      this.waiter = null;
      clearTimeout(w.timer);
      w.reject(this.closedError);
    }
  }

  /** The next reply, within `timeoutMs`. */
  reply(timeoutMs = this.timeoutMs): Promise<Reply> {
    const next = this.queued.shift();
    if (next) return Promise.resolve(next);
    if (this.closedError) return Promise.reject(this.closedError);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = null;
        reject(new TimeoutError("reply"));
      }, timeoutMs);
      this.waiter = { resolve, reject, timer };
    });
  }

  send(line: string): void {
    if (!this.sock.destroyed) this.sock.write(line + "\r\n");
  }

  async command(line: string, timeoutMs?: number): Promise<Reply> {
    this.send(line);
    return this.reply(timeoutMs);
  }

  /** Sends a command and requires a reply with the given first digit or exact code. */
  async expect(line: string, ok: (code: number) => boolean, timeoutMs?: number): Promise<Reply> {
    const r = await this.command(line, timeoutMs);
    if (!ok(r.code)) throw new ReplyError(line.split(" ")[0], r);
    return r;
  }

  async login(user: string, password: string): Promise<void> {
    const u = await this.command(`USER ${user}`);
    if (u.code === 230) return;
    if (u.code !== 331) throw new ReplyError("USER", u);
    const p = await this.command(`PASS ${password}`);
    if (p.code !== 230) throw new ReplyError("PASS", p);
  }

  /** EPSV: the port to connect to (the control connection's host). */
  async epsv(): Promise<number> {
    const r = await this.command("EPSV");
    const m = /\(\|\|\|(\d+)\|\)/.exec(r.text);
    if (r.code !== 229 || !m) throw new ReplyError("EPSV", r);
    return Number(m[1]);
  }

  /** PASV: the advertised address and port. */
  async pasv(): Promise<{ host: string; port: number }> {
    const r = await this.command("PASV");
    const m = /(\d+),(\d+),(\d+),(\d+),(\d+),(\d+)/.exec(r.text);
    if (r.code !== 227 || !m) throw new ReplyError("PASV", r);
    return { host: `${m[1]}.${m[2]}.${m[3]}.${m[4]}`, port: Number(m[5]) * 256 + Number(m[6]) };
  }

  async quit(): Promise<void> {
    try {
      await this.command("QUIT", 3000);
    } catch {
      // The server may close without a 221: either way we are done.
    }
    this.destroy();
  }

  /**
   * PORT: listens on 127.0.0.1 (a fresh ephemeral port) and names it; the returned listener yields
   * the server's connection. The listener is closed on failure.
   */
  async port(timeoutMs = this.timeoutMs): Promise<ActiveListener> {
    const listener = await ActiveListener.listen("127.0.0.1", timeoutMs);
    try {
      const p = listener.port;
      const r = await this.command(`PORT 127,0,0,1,${p >> 8},${p & 0xff}`, timeoutMs);
      if (r.code !== 200) throw new ReplyError("PORT", r);
      return listener;
    } catch (err) {
      listener.close();
      throw err;
    }
  }

  destroy(): void {
    this.sock.destroy();
  }
}

export class ReplyError extends Error {
  constructor(
    readonly command: string,
    readonly reply: Reply,
  ) {
    super(`${command}: ${reply.code} ${reply.text}`);
    this.name = "ReplyError";
  }
}

/** What a data connection delivered. */
export interface Drained {
  bytes: number;
  /** The first bytes received (up to 16), to check which file arrived. */
  head: Buffer;
}

/** One reusable receive buffer per process: data connections read into it (`onread`). */
const RECEIVE_BUFFER = Buffer.allocUnsafe(256 * 1024);

/**
 * A passive data connection. Received bytes are counted from the moment it connects (so nothing is
 * lost if the server sends before we look) and read into one shared static buffer, so a 1 GiB
 * download allocates nothing per chunk; only the first 16 bytes are kept.
 */
export class DataConn {
  /** Settles when the server has closed its side: bytes received, or the socket's error. */
  readonly received: Promise<Drained>;
  /** Optional observer of each chunk (`buf` is a view into the shared buffer, valid during the call). */
  tap: ((chunk: Uint8Array) => void) | null = null;
  private bytes = 0;
  private readonly head = Buffer.alloc(16);
  private headLen = 0;

  private constructor(readonly socket: Socket) {
    this.received = new Promise<Drained>((resolve, reject) => {
      socket.once("error", reject);
      socket.once("end", () => resolve({ bytes: this.bytes, head: this.head.subarray(0, this.headLen) }));
      socket.once("close", () => reject(new ClosedError("data connection closed without EOF")));
    });
    this.received.catch(() => {}); // observed by whoever awaits it; never an unhandled rejection
  }

  /** Connects to `opts.port`, within `opts.timeoutMs`. */
  static open(opts: ConnectOptions): Promise<DataConn> {
    return new Promise((resolve, reject) => {
      let conn: DataConn | null = null;
      const socket = connect({
        host: opts.host ?? "127.0.0.1",
        port: opts.port,
        localAddress: opts.localAddress,
        onread: {
          buffer: RECEIVE_BUFFER,
          callback: (n: number, buf: Uint8Array) => {
            conn?.onChunk(buf, n);
            return true;
          },
        },
      });
      conn = new DataConn(socket);
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new TimeoutError(`data connect to port ${opts.port}`));
      }, opts.timeoutMs ?? 10_000);
      socket.once("connect", () => {
        clearTimeout(timer);
        socket.removeListener("error", onError);
        resolve(conn!);
      });
      const onError = (err: Error) => {
        clearTimeout(timer);
        socket.destroy();
        reject(err);
      };
      socket.once("error", onError);
      // Reading must be on from the start: 'end' is only emitted by a flowing socket.
      socket.resume();
    });
  }

  /**
   * PROT P: a TLS data connection to `opts.port` resuming `session` (the control connection's).
   * Resolves once TCP is connected, with `secured` settling when the handshake is done (within
   * `opts.timeoutMs`): the client sends its ClientHello right away and the transfer command next;
   * a server that starts TLS after its 150 (edgeftp, vsftpd, Pure-FTPd) finds the hello waiting,
   * one that wants TLS before answering (ftp-srv) gets it. Decrypted bytes are read into the shared
   * static buffer (`onread`, which tls.connect supports when it makes the TCP connection itself):
   * per chunk the client only counts, as for plain transfers, so the client's per-byte cost is the
   * decryption.
   */
  static openTls(opts: ConnectOptions, session: Buffer | null): Promise<{ conn: DataConn; secured: Promise<void> }> {
    return new Promise((resolve, reject) => {
      let conn: DataConn | null = null;
      // localAddress and onread are passed on to the TCP socket (the typings of tls.connect omit them).
      const options: ConnectionOptions & { localAddress?: string; onread?: OnReadOpts } = {
        host: opts.host ?? "127.0.0.1",
        port: opts.port,
        rejectUnauthorized: false,
        ...(opts.localAddress ? { localAddress: opts.localAddress } : {}),
        ...(session ? { session } : {}),
        onread: {
          buffer: RECEIVE_BUFFER,
          callback: (n: number, buf: Uint8Array) => {
            conn?.onChunk(buf, n);
            return true;
          },
        },
      };
      const socket = tlsConnect(options);
      conn = new DataConn(socket);
      const timeoutMs = opts.timeoutMs ?? 10_000;
      let timer: NodeJS.Timeout | null = setTimeout(() => {
        socket.destroy();
        reject(new TimeoutError(`data connect to port ${opts.port}`));
      }, timeoutMs);
      const secured = new Promise<void>((ok, fail) => {
        socket.once("secureConnect", () => ok());
        socket.once("error", fail);
        socket.once("close", () => fail(new ClosedError("data connection closed during the TLS handshake")));
      });
      secured.catch(() => {});
      const handshake = within(secured, timeoutMs, "TLS handshake on the data connection").catch((err: unknown) => {
        socket.destroy();
        throw err;
      });
      handshake.catch(() => {});
      socket.once("connect", () => {
        if (timer) clearTimeout(timer);
        timer = null;
        resolve({ conn: conn!, secured: handshake });
      });
      socket.once("error", (err) => {
        if (!timer) return; // after connect: reported through `secured` / `received`
        clearTimeout(timer);
        socket.destroy();
        reject(err);
      });
      socket.resume();
    });
  }

  /** Whether this (TLS) data connection resumed a session; null for plain TCP. */
  get sessionReused(): boolean | null {
    const t = this.socket as TLSSocket;
    return typeof t.isSessionReused === "function" ? t.isSessionReused() : null;
  }

  /** Wraps a socket the server connected to (active mode); its `onread` must call `receive`. */
  static adopt(socket: Socket): DataConn {
    return new DataConn(socket);
  }

  /** Counts a received chunk (for sockets created elsewhere with an `onread` callback). */
  receive(buf: Uint8Array, n: number): void {
    this.onChunk(buf, n);
  }

  private onChunk(buf: Uint8Array, n: number): void {
    if (this.headLen < 16) {
      const take = Math.min(n, 16 - this.headLen);
      this.head.set(buf.subarray(0, take), this.headLen);
      this.headLen += take;
    }
    this.bytes += n;
    this.tap?.(buf.subarray(0, n));
  }

  /** Waits for the server to close its side, within `timeoutMs` (then destroys the socket). */
  async drain(timeoutMs: number): Promise<Drained> {
    try {
      return await within(this.received, timeoutMs, "data connection");
    } finally {
      this.socket.destroy();
    }
  }

  /**
   * Writes `total` bytes by repeating `block` (the same memory each time), with backpressure,
   * then half-closes and waits until the FIN is sent.
   */
  send(block: Buffer, total: number, timeoutMs: number): Promise<void> {
    const socket = this.socket;
    const done = new Promise<void>((resolve, reject) => {
      let sent = 0;
      const onError = (err: Error) => reject(err);
      socket.once("error", onError);
      socket.once("close", () => reject(new ClosedError("data connection closed during upload")));
      const pump = () => {
        while (sent < total) {
          const n = Math.min(block.length, total - sent);
          sent += n;
          if (!socket.write(n === block.length ? block : block.subarray(0, n))) {
            socket.once("drain", pump);
            return;
          }
        }
        socket.end(() => resolve());
      };
      pump();
    });
    return within(done, timeoutMs, "upload").catch((err: unknown) => {
      socket.destroy();
      throw err;
    });
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/**
 * Active mode, the client's side: a listener on `host` (ephemeral port) that takes the first
 * connection the server makes. The accepted socket is re-created around its handle with `onread`
 * (net.Server cannot be given one), so an active download reads into the same static buffer as a
 * passive one and the client's cost per byte is the same in both modes.
 */
export class ActiveListener {
  private accepted: Promise<DataConn>;

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {
    this.accepted = new Promise<DataConn>((resolve) => {
      server.once("connection", (s: Socket) => {
        resolve(ActiveListener.rewrap(s));
        server.close(); // one connection per listener
      });
    });
    this.accepted.catch(() => {});
  }

  static listen(host: string, timeoutMs: number): Promise<ActiveListener> {
    return new Promise((resolve, reject) => {
      const server = createServer({ pauseOnConnect: true });
      const timer = setTimeout(() => {
        server.close();
        reject(new TimeoutError("listen"));
      }, timeoutMs);
      server.once("error", (err) => {
        clearTimeout(timer);
        server.close();
        reject(err);
      });
      server.listen({ host, port: 0, backlog: 4 }, () => {
        clearTimeout(timer);
        const address = server.address();
        if (!address || typeof address === "string") {
          server.close();
          reject(new Error("listener has no port"));
          return;
        }
        resolve(new ActiveListener(server, address.port));
      });
    });
  }

  /**
   * Moves an accepted (paused) socket's handle into a new Socket created with `onread`: reads go
   * into RECEIVE_BUFFER, nothing is allocated per chunk. The original Socket object is left without
   * a handle (it never read: the server was created with pauseOnConnect).
   */
  private static rewrap(accepted: Socket): DataConn {
    const internal = accepted as unknown as { _handle: unknown };
    const handle = internal._handle;
    internal._handle = null;
    let conn: DataConn | null = null;
    const socket = new Socket({
      handle,
      readable: true,
      writable: true,
      onread: {
        buffer: RECEIVE_BUFFER,
        callback: (n: number, buf: Uint8Array) => {
          conn?.receive(buf, n);
          return true;
        },
      },
    } as unknown as ConstructorParameters<typeof Socket>[0]);
    conn = DataConn.adopt(socket);
    socket.resume();
    return conn;
  }

  /** The server's connection, within `timeoutMs` (the listener is closed either way). */
  async accept(timeoutMs: number): Promise<DataConn> {
    try {
      return await within(this.accepted, timeoutMs, "active data connection from the server");
    } finally {
      this.close();
    }
  }

  close(): void {
    if (this.server.listening) this.server.close();
  }
}

/** A counting semaphore: at most `limit` holders at once, the others queue in order. */
export class Gate {
  private active = 0;
  private readonly queue: Array<() => void> = [];
  constructor(readonly limit: number) {}

  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.active >= this.limit) await new Promise<void>((resolve) => this.queue.push(resolve));
    this.active++;
    try {
      return await fn();
    } finally {
      this.active--;
      this.queue.shift()?.();
    }
  }
}

/** Runs `fn` over `items` with at most `limit` in flight. */
export async function withConcurrency<T>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      await fn(items[i], i);
    }
  });
  await Promise.all(workers);
}

/** A promise that rejects after `ms` unless `p` settles first (the timer never outlives it). */
export function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new TimeoutError(what)), ms);
    }),
  ]);
}
