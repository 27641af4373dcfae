/**
 * One control connection: its login state, working directory, transfer parameters and data
 * channel. Commands run strictly one at a time, in the order received, so replies come in that
 * order; only the two RFC 959 §4.1.3 acts on a transfer in progress, marked `duringTransfer` (ABOR,
 * STAT), jump the queue while a transfer runs. Only the session writes to the control socket.
 */
import { randomUUID } from "node:crypto";
import type { Socket } from "node:net";
import type { Account, Permission } from "../accounts/types.js";
import { dispatch } from "../commands/dispatcher.js";
import { MAX_TIMER_MS } from "../config/schema.js";
import type { DataChannel } from "../data/data-channel.js";
import { canonicalIp } from "../data/addresses.js";
import { refusalText } from "../guard/admission.js";
import type { Lease } from "../guard/connection-guard.js";
import type { Logger } from "../observe/logger.js";
import { LineReader } from "../protocol/line-reader.js";
import { MLSX_FACTS } from "../protocol/listing.js";
import { formatFirstLine, formatInnerLine, formatReply, Reply, type ReplyCode } from "../protocol/replies.js";
import { resolveVirtualPath } from "../storage/virtual-path.js";
import type { SessionLineage } from "../tls/session-lineage.js";
import { acceptControlTls } from "../tls/upgrade.js";
import type { WheelTimer } from "../node/timer-wheel.js";
import { RateLimiter } from "./rate-limiter.js";
import { controlFd, peerClosed, peerClosedKnown } from "./control-peer.js";
import type { Storage } from "../storage/types.js";
import type { NodeServices } from "../node/services.js";

/** The default MLSx fact selection, shared by every session until one sends OPTS MLST. */
const ALL_MLSX_FACTS: ReadonlySet<string> = new Set(MLSX_FACTS);

/** Queued in place of a line that was too long: answered with a 500 in its turn. */
const TOO_LONG = Symbol("line too long");

/** Past this many unprocessed lines, stop reading the socket until the queue drains. */
const MAX_QUEUED_LINES = 64;

/** How often the control connection is asked of the kernel while an overwrite waits (watchClientBeforeReplace). */
const REPLACE_GRACE_POLL_MS = 2;

/**
 * Longest a session's queued commands run before the event loop serves others (ms). Commands that
 * need no real I/O (a fast disk answers synchronously) never hand it back by themselves, so a client
 * pipelining thousands of them would hold every other session of the node up for as long.
 */
const TURN_MS = 1;

/** The transfer in progress: what ABOR aborts and STAT reports. */
export interface ActiveTransfer {
  readonly label: string;
  /** The command that started it (RETR, STOR, LIST…), for its log line. */
  readonly command: string;
  readonly startedAt: number;
  readonly controller: AbortController;
  socket: Socket | null;
  /** Settles when the transfer's final reply (226/426/4xx/5xx) has been sent. */
  readonly done: Promise<void>;
}

export class Session {
  readonly id = randomUUID().slice(0, 8);
  readonly peerIp: string;
  /** The control connection's TCP descriptor (under TLS too), for asking the kernel whether the client is still there. */
  private readonly controlFd: number | null;
  readonly localIp: string;
  readonly log: Logger;

  // Login state.
  pendingUser: string | null = null;
  account: Account | null = null;
  /** The verb of the command being run (a transfer started by it keeps it for its log line). */
  command = "";
  /** The account store's revision when {@link account} was last known current (read at login, or checked since). */
  accountRevision = 0;
  storage: Storage | null = null;
  cwd = "/";

  // Transfer parameters. RFC 959 §3.1.1.1 makes ASCII the default TYPE, but clients that never send
  // TYPE (naive uploaders, embedded devices) mean binary: converting their JPEGs' CRLF bytes corrupts
  // them. vsftpd never converts unless told to (ascii_upload_enable), and ftpserverlib moved its
  // default to binary for this reason; TYPE A still converts when a client asks for it.
  type: "A" | "I" = "I";
  restOffset = 0;
  renameFrom: string | null = null;
  /** After EPSV ALL, other data-setup commands are refused (RFC 2428 §4). */
  epsvAll = false;
  dataChannel: DataChannel | null = null;
  transfer: ActiveTransfer | null = null;
  /** RFC 3659 §7.9: facts the client selected with OPTS MLST. */
  mlstFacts: ReadonlySet<string> = ALL_MLSX_FACTS;

  /** Failed PASS attempts on this connection; never reset, so neither a REIN nor a good login buys more guesses. */
  loginFailures = 0;
  /** Guard registrations (this connection; the logged-in account's session), released on every close path. */
  private connectionLease: Lease | null;
  private accountLease: Lease | null = null;
  /** Pending {@link wait}s, cut short when the session closes. */
  private readonly waits = new Set<() => void>();

  /**
   * Where the login deadline counts from: the connect (an implicit FTPS handshake comes before the
   * session), or the logout of a REIN.
   */
  private loginClockFrom: number;
  /** The control connection's AUTH TLS handshake is under way: no reply may be written in clear. */
  private handshaking = false;
  private readonly reader: LineReader;
  private readonly queue: Array<string | typeof TOO_LONG> = [];
  /** An ABOR or STAT is running while a transfer does (see onData). */
  private outOfBand = false;
  /** The command loop while it runs: a closed session is reported closed once its command has ended. */
  private running: Promise<void> | null = null;
  private closed = false;
  /** The node is stopping: the session closes with 421 once no command or transfer is under way. */
  private windingDown = false;
  /** The command loop waits for the client to read its replies before it takes the next command. */
  private waitingForReader = false;
  private deadline: WheelTimer | null = null;
  /** Commands per second (limits.commandsPerSecond): a flooding client is slowed, not served faster. */
  private readonly commandRate: RateLimiter;
  private lingerTimer: NodeJS.Timeout | null = null;
  /** Last reply code sent, for the per-command log line. */
  lastReply: ReplyCode = 0;

  /** The control connection: a TCP socket, replaced by its TLS wrapper after AUTH TLS. */
  socket: Socket;
  /**
   * RFC 4217 state: control connection secured, PBSZ seen, data protection level, and the TLS
   * sessions the client holds (the one PROT P data connections must resume; null until TLS).
   */
  readonly tls = { control: false, pbsz: false, prot: "C" as "C" | "P", sessions: null as SessionLineage | null };

  private readonly onDataBound = (chunk: Buffer) => this.onData(chunk);
  private readonly onErrorBound = (err: Error) => this.log.debug({ err }, "control connection error");
  private readonly onCloseBound = () => this.onClose();

  constructor(
    socket: Socket,
    readonly services: NodeServices,
    /** `tlsSessions`: the control connection is implicit TLS, on the sessions so far. */
    options: { tlsSessions?: SessionLineage | null; connectionLease?: Lease; connectedAt?: number; tcpSocket?: Socket } = {},
  ) {
    this.socket = socket;
    this.controlFd = controlFd(options.tcpSocket ?? socket);
    this.loginClockFrom = options.connectedAt ?? Date.now();
    this.connectionLease = options.connectionLease ?? null;
    this.peerIp = canonicalIp(socket.remoteAddress);
    this.localIp = canonicalIp(socket.localAddress);
    this.log = services.logger.child({ session: this.id, peer: this.peerIp });
    this.reader = new LineReader(services.config.limits.maxLineLength);
    this.tls.sessions = options.tlsSessions ?? null;
    this.tls.control = this.tls.sessions !== null;
    const rate = services.config.limits.commandsPerSecond;
    this.commandRate = new RateLimiter(rate, rate * 2);
    socket.setNoDelay(true);
    this.attach(socket);
  }

  private attach(socket: Socket): void {
    socket.on("data", this.onDataBound);
    socket.on("error", this.onErrorBound);
    socket.on("close", this.onCloseBound);
  }

  private detach(socket: Socket): void {
    socket.off("data", this.onDataBound);
    socket.off("error", this.onErrorBound);
    socket.off("close", this.onCloseBound);
  }

  /**
   * AUTH TLS (RFC 4217 §4): sends the 234 in clear, then hands the connection to TLS. Everything
   * the client sent after AUTH and before the handshake is discarded, never executed (the
   * STARTTLS command-injection class, CVE-2011-0411).
   */
  async secureControl(text: string): Promise<void> {
    const raw = this.socket;
    this.detach(raw);
    this.queue.length = 0;
    this.reader.reset();
    this.reply(Reply.AuthOk, text);
    // Until the handshake is done, a closed connection must still end the session.
    raw.once("close", this.onCloseBound);
    this.handshaking = true;
    try {
      const { secure, sessions } = await acceptControlTls(raw, this.services.tls, this.config.timeouts.data * 1000);
      this.tls.sessions = sessions;
      raw.off("close", this.onCloseBound);
      if (this.closed || secure.destroyed) {
        // Gone in the turn the handshake took to settle (see acceptTls).
        secure.destroy();
        if (!this.closed) this.onClose();
        else this.services.tls.sessions.release(sessions.pins);
        return;
      }
      this.socket = secure;
      this.tls.control = true;
      this.attach(secure);
      this.socket.resume();
    } catch (err) {
      this.log.info({ err: (err as Error).message }, "control TLS handshake failed");
      raw.destroy();
    } finally {
      this.handshaking = false;
    }
  }

  get config() {
    return this.services.config;
  }

  /** Greets the client (after admission) and starts the login timer. */
  start(): void {
    this.log.info("connected");
    this.reply(Reply.ServiceReady, this.config.banner);
    this.armTimer();
  }

  hasPermission(permission: Permission): boolean {
    return this.account?.permissions.includes(permission) ?? false;
  }

  /**
   * Resolves a path argument against the working directory (virtual, clamped at the root). A
   * leading `~` (alone or as `~/...`) is the account's home, which is the virtual root, as vsftpd,
   * ProFTPD and Pure-FTPd read it (`cd ~/public_html` from scripts and BSD ftp).
   */
  resolve(arg: string): string {
    if (arg === "~" || arg.startsWith("~/")) return resolveVirtualPath("/", arg.slice(1));
    return resolveVirtualPath(this.cwd, arg);
  }

  /** Storage of the logged-in account; the dispatcher guarantees login before handlers run. */
  get fs(): Storage {
    if (!this.storage) throw new Error("storage used before login");
    return this.storage;
  }

  reply(code: ReplyCode, text: string | readonly string[]): void {
    this.lastReply = code;
    // During AUTH TLS's handshake the client expects TLS records: a clear reply would break it.
    if (this.closed || this.socket.destroyed || this.handshaking) return;
    this.socket.write(formatReply(code, text));
  }

  /**
   * A multi-line reply whose middle is streamed (STAT of a large directory) at the socket's pace, from
   * batches of lines (without CRLF). The first batch is pulled before anything is written, so a bad
   * argument still gets a plain error.
   */
  async replyStream(code: ReplyCode, first: string, lines: AsyncIterable<readonly string[]>, last: string): Promise<void> {
    const iterator = lines[Symbol.asyncIterator]();
    let next = await iterator.next();
    this.socket.write(formatFirstLine(code, first));
    try {
      while (!next.done && !this.socket.destroyed) {
        let text = "";
        for (const line of next.value) text += formatInnerLine(line);
        if (!this.socket.write(text)) await this.drained();
        next = await iterator.next();
      }
    } catch (err) {
      this.log.warn({ err }, "streamed reply failed");
      last = "End (incomplete: listing failed).";
    } finally {
      // Left unfinished (the client went away while we waited for it to read): close the source,
      // or the listing's open directory stays with the node for good.
      if (!next.done) await iterator.return?.().catch(() => undefined);
    }
    this.reply(code, last);
  }

  private drained(): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        this.socket.off("drain", done);
        this.socket.off("close", done);
        resolve();
      };
      this.socket.on("drain", done);
      this.socket.on("close", done);
    });
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /**
   * Keeps the registration of this logged-in session until logout or close. Returns false, with
   * the lease released, when the session closed while the login was being checked.
   */
  holdAccountLease(lease: Lease): boolean {
    if (this.closed) {
      lease.release();
      return false;
    }
    this.accountLease?.release();
    this.accountLease = lease;
    return true;
  }

  releaseAccountLease(): void {
    this.accountLease?.release();
    this.accountLease = null;
  }

  /**
   * Waits `ms`, or less when the session closes first. A handler that awaits it holds the command
   * queue, so the commands behind it still run, and are answered, in order. (A plain timer, not
   * the wheel: these are short, rare and need sub-second precision.)
   */
  wait(ms: number): Promise<void> {
    if (this.closed || ms <= 0) return Promise.resolve();
    // A longer delay would overflow Node's timer, which then fires at once.
    ms = Math.min(ms, MAX_TIMER_MS);
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.waits.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.waits.add(done);
    });
  }

  /** Gives back the guard registrations (a closing session no longer counts) and ends pending waits. */
  private releaseGuard(): void {
    this.releaseAccountLease();
    this.connectionLease?.release();
    this.connectionLease = null;
    for (const done of [...this.waits]) done();
  }

  /** Replaces the pending data channel, releasing what the old one held (one reservation per session). */
  setDataChannel(channel: DataChannel | null): void {
    this.dataChannel?.release();
    // A session that closed meanwhile (its PASV waited for a port) must not keep what it is given.
    if (this.closed) channel?.release();
    this.dataChannel = this.closed ? null : channel;
  }

  /** Back to the state right after the greeting (REIN, RFC 959 §4.1.1). */
  resetLogin(): void {
    const wasLoggedIn = this.account !== null;
    this.pendingUser = null;
    this.account = null;
    this.storage = null;
    this.cwd = "/";
    this.type = "I";
    this.restOffset = 0;
    this.renameFrom = null;
    this.epsvAll = false;
    this.mlstFacts = ALL_MLSX_FACTS;
    this.releaseAccountLease();
    this.setDataChannel(null);
    // A fresh login deadline after a logout; before any login the one counted from connect stays
    // (a REIN every few seconds must not keep an unauthenticated connection open).
    if (!wasLoggedIn) return;
    this.loginClockFrom = Date.now();
    this.pauseTimer();
    this.armTimer();
  }

  /**
   * Whether the logged-in account has been disabled or removed since it was read (`user set
   * --disable`, `user remove`, by this node's CLI or another's): then the session is closed with 421.
   * The account is read again only when the store's revision shows some change, ~2 µs otherwise.
   */
  async accountWithdrawn(): Promise<boolean> {
    const { accounts } = this.services;
    const revision = accounts.revision();
    if (!this.account || revision === this.accountRevision) return false;
    this.accountRevision = revision;
    const current = await accounts.get(this.account.name);
    if (current?.enabled) return false;
    this.log.info({ user: this.account.name, account: current ? "disabled" : "removed" }, "session closed: its account was withdrawn");
    this.close(Reply.ServiceNotAvailable, "This account is no longer available.");
    return true;
  }

  /**
   * Aborts the transfer under way when the client has closed the control connection, though Node
   * may not have read that yet (see control-peer.ts): called as an upload's data ends.
   */
  abortTransferIfClientGone(): void {
    if (this.transfer && peerClosed(this.controlFd)) this.transfer.controller.abort();
  }

  /**
   * Just before an upload replaces a previous version: a killed client's connections close
   * together, but its control connection's FIN can reach the node some ms after its data
   * connection's end, so that one is watched for up to `uploads.replaceGraceMs` more, and the
   * upload aborted (the previous version kept) if the client turns out to be gone.
   */
  async watchClientBeforeReplace(): Promise<void> {
    const transfer = this.transfer;
    if (!transfer || !peerClosedKnown) return;
    const until = performance.now() + this.config.uploads.replaceGraceMs;
    for (;;) {
      this.abortTransferIfClientGone();
      const left = until - performance.now();
      if (transfer.controller.signal.aborted || left <= 0) return;
      await new Promise((resolve) => setTimeout(resolve, Math.min(REPLACE_GRACE_POLL_MS, left)));
    }
  }

  /**
   * Ends the transfer in progress, if any (ABOR, the session closing): its signal aborts what waits
   * for the data connection or a kernel copy, and the data connection is destroyed, so that no read
   * or write waits on a client that does not move. The transfer then answers 426 itself.
   */
  abortTransfer(): void {
    this.transfer?.controller.abort();
    this.transfer?.socket?.destroy(new Error("transfer aborted"));
  }

  /**
   * For a node that is stopping: closes with 421 now if nothing is under way, else once the command
   * (and the transfer it runs) has ended, so that a transfer in progress finishes with its 226;
   * commands the client sent meanwhile are not run. The node cuts what is left after timeouts.drain.
   * True when the session closed now.
   */
  windDown(): boolean {
    this.windingDown = true;
    // A loop waiting only for the client to read before its next command would run none anyway:
    // it must not hold the node's stop for the whole drain (what it wrote is still flushed first).
    if (this.running && !this.waitingForReader) return false;
    this.closeForStop();
    return true;
  }

  /** The node's drain is over: a transfer still under way is aborted (426, then windDown's 421); else 421 now. */
  endDrain(): void {
    if (this.transfer) this.abortTransfer();
    else this.closeForStop();
  }

  /** The 421 of a node that is stopping. */
  private closeForStop(): void {
    this.close(Reply.ServiceNotAvailable, refusalText("shutting-down"));
  }

  /** Replies 221/421 and closes once the reply is flushed. */
  close(code: ReplyCode = Reply.ClosingControl, text = "Goodbye."): void {
    if (this.closed) return;
    this.reply(code, text);
    this.stopWork();
    this.socket.end();
    // A client that never reads must not keep the socket half-open forever.
    this.lingerTimer = setTimeout(() => this.socket.destroy(), 2000);
  }

  /**
   * Arms the idle deadline (logged in, pushed back by every command) or the login deadline
   * (counted from connect and never pushed back, so a slow-loris client is cut off). Paused while
   * a transfer runs. Deadlines live on the node's shared timer wheel, not a timer per session.
   */
  armTimer(): void {
    if (this.closed) return;
    if (!this.account && this.deadline) return;
    const { login, idle } = this.config.timeouts;
    const ms = this.account ? idle * 1000 : Math.max(0, login * 1000 - (Date.now() - this.loginClockFrom));
    if (this.deadline) this.deadline.reschedule(ms);
    else this.deadline = this.services.timers.schedule(ms, () => this.onDeadline());
  }

  pauseTimer(): void {
    this.deadline?.cancel();
    this.deadline = null;
  }

  private onDeadline(): void {
    this.deadline = null;
    const kind = this.account ? "idle" : "login";
    this.log.info({ seconds: this.config.timeouts[kind] }, `${kind} timeout`);
    this.close(Reply.ServiceNotAvailable, "Timeout: closing control connection.");
  }

  private onData(chunk: Buffer): void {
    for (const event of this.reader.push(chunk)) {
      if (event.kind === "too-long") {
        this.queue.push(TOO_LONG);
        continue;
      }
      const line = event.line;
      // ABOR and STAT act on a transfer at once, and only for a client that reads its replies; STAT
      // one at a time (a flood of them waits in the queue, which bounds it, like any other command),
      // ABOR whenever it comes (it ends the transfer, and with it the out-of-band path).
      const verb = this.transfer && !this.socket.writableNeedDrain ? this.duringTransferVerb(line) : null;
      if (verb !== null && (verb === "ABOR" || !this.outOfBand)) {
        this.outOfBand = true;
        const done = () => (this.outOfBand = false);
        void this.execute(line).then(done, done);
      } else {
        this.queue.push(line);
      }
    }
    if (this.queue.length > MAX_QUEUED_LINES) this.socket.pause();
    this.running ??= this.runQueue().finally(() => {
      this.running = null;
      if (this.windingDown) this.closeForStop();
    });
  }

  /** The line's verb when it is one that runs during a transfer (ABOR, STAT); else null. */
  private duringTransferVerb(line: string): string | null {
    const verb = line.split(" ", 1)[0].toUpperCase();
    return this.services.commands.get(verb)?.duringTransfer === true ? verb : null;
  }

  /** Runs the queued commands one at a time (the command loop; not the node's drain on stop, nor a socket's "drain"). */
  private async runQueue(): Promise<void> {
    let turnStarted = performance.now();
    while (this.queue.length > 0 && !this.closed && !this.windingDown) {
      if (performance.now() - turnStarted > TURN_MS) {
        await new Promise(setImmediate);
        turnStarted = performance.now();
      }
      // A client that does not read its replies gets no more: its commands wait (the queue full,
      // its socket is not read either) until it reads them, or its login or idle time runs out.
      if (this.socket.writableNeedDrain) {
        this.waitingForReader = true;
        try {
          await this.drained();
        } finally {
          this.waitingForReader = false;
        }
        continue;
      }
      const line = this.queue.shift()!;
      if (this.queue.length <= MAX_QUEUED_LINES / 2) this.socket.resume();
      if (line === TOO_LONG) {
        this.reply(Reply.SyntaxError, "Command line too long.");
        continue;
      }
      await this.commandRate.take();
      await this.execute(line);
    }
  }

  private async execute(line: string): Promise<void> {
    if (this.closed) return;
    if (!this.transfer) this.armTimer();
    await dispatch(this, line);
    if (!this.transfer) this.armTimer();
  }

  /** Marks the session closed and lets go of what it holds: guard registrations, the transfer, the data channel. */
  private stopWork(): void {
    this.closed = true;
    this.releaseGuard();
    this.abortTransfer();
    this.setDataChannel(null);
  }

  private onClose(): void {
    this.stopWork();
    this.pauseTimer();
    if (this.lingerTimer) clearTimeout(this.lingerTimer);
    this.queue.length = 0;
    // The control connection's TLS sessions need no keeping once no data connection can resume them.
    if (this.tls.sessions) this.services.tls.sessions.release(this.tls.sessions.pins);
    this.log.info({ user: this.account?.name }, "disconnected");
    // Reported once the command under way has ended too: an upload it aborted has then removed or
    // kept its partial file and settled its quota, which a node shutting down waits for.
    const reportClosed = () => this.services.onSessionClosed(this);
    if (this.running) this.running.then(reportClosed, reportClosed);
    else reportClosed();
  }
}
