/**
 * The reply choreography every transfer command shares (RFC 959 §5.4): 150 before waiting for
 * the data connection, then 226 only after the bytes are through (and, for uploads, committed by
 * storage), or 425/426/4xx/5xx. The port held by the data channel is released on every path.
 */
import type { Socket } from "node:net";
import type { TLSSocket } from "node:tls";
import { KernelCopyError, socketBytes } from "../data/kernel-copy.js";
import { bucketRegistry, type Throttle } from "../data/throttle.js";
import { armStallTimeout } from "../data/transfer.js";
import { FtpError, replyForStorageError } from "../protocol/errors.js";
import { Reply } from "../protocol/replies.js";
import type { ActiveTransfer, Session } from "../session/session.js";
import { StorageError } from "../storage/types.js";
import { acceptTls, type Handshake } from "../tls/upgrade.js";
import { sessionReuseRequired, tlsPolicyFor } from "./security.js";

/** The 426 text of a transfer ended by ABOR, the session closing or the connection going. */
const ABORTED = "Connection closed; transfer aborted.";

export interface TransferJob {
  /** The 150 reply text, e.g. `Opening BINARY mode data connection for a.txt (1234 bytes).` */
  announce: string;
  /** Label for logs and STAT. */
  label: string;
  /** Moves the bytes; resolves with the 226 text. */
  run(socket: Socket, signal: AbortSignal): Promise<string>;
}

/** The TYPE (not the MODE, always S) as the 150 and STAT replies name it. */
export const typeName = (session: Session): string => (session.type === "A" ? "ASCII" : "BINARY");

/**
 * The account's bandwidth throttle for one direction, shared by every transfer of the account in
 * that direction on this node; null (no stage at all) when the account is unlimited (null or 0).
 * The limits are the account's settings at login. Listings use the down throttle too.
 */
export function throttleFor(session: Session, direction: "up" | "down"): Throttle | null {
  const account = session.account;
  const rate = direction === "up" ? account?.bandwidthUp : account?.bandwidthDown;
  if (!account || !rate) return null;
  return bucketRegistry(session.services).throttle(`${direction}:${account.name}`, rate);
}

/** What a transfer's log line says of it: who, which command, what, how many bytes each way, how long. */
function transferFacts(session: Session, job: TransferJob, socket: Socket, transfer: ActiveTransfer): Record<string, unknown> {
  const bytes = socketBytes(socket);
  return {
    user: session.account?.name,
    command: transfer.command,
    transfer: job.label,
    bytesIn: bytes.in,
    bytesOut: bytes.out,
    zeroCopy: bytes.zeroCopy,
    ms: Date.now() - transfer.startedAt,
  };
}

export async function runTransfer(session: Session, job: TransferJob): Promise<void> {
  const channel = session.dataChannel;
  if (!channel) throw new FtpError(Reply.CantOpenData, "Use PORT, EPRT, PASV or EPSV first.");
  if (session.tls.prot !== "P" && tlsPolicyFor(session, session.account) === "data") {
    throw new FtpError(Reply.NoProtectedDataChannel, "Data connections must be protected: send PBSZ 0 and PROT P.");
  }
  session.dataChannel = null; // single use: the next transfer needs a new PASV/PORT

  let settle!: () => void;
  const transfer: ActiveTransfer = {
    label: job.label,
    // Taken now: a STAT or ABOR during the transfer is a command of its own.
    command: session.command,
    startedAt: Date.now(),
    controller: new AbortController(),
    socket: null,
    done: new Promise<void>((resolve) => (settle = resolve)),
  };
  const { signal } = transfer.controller;
  const timeoutMs = session.config.timeouts.data * 1000;
  session.transfer = transfer;
  session.pauseTimer();
  session.reply(Reply.FileStatusOk, job.announce);
  let socket: Socket | null = null;
  try {
    try {
      socket = await channel.open(timeoutMs, signal);
    } catch (err) {
      session.log.info({ err: (err as Error).message, mode: channel.mode }, "data connection failed");
      // An ABOR while we waited ends a transfer in progress (the 150 is out): 426, as RFC 959 §4.1.3 says.
      if (signal.aborted) session.reply(Reply.TransferAborted, ABORTED);
      else session.reply(Reply.CantOpenData, "Can't open data connection.");
      return;
    } finally {
      channel.release();
    }
    if (session.tls.prot === "P") {
      socket = await protectData(session, socket, timeoutMs, signal);
      if (!socket) return;
    }
    transfer.socket = socket;
    // The job's pipeline sees the socket's errors once it is attached; until then (an upload waits
    // for storage to open the file) a reset, an ABOR or the control connection closing would emit
    // 'error' with no listener: an uncaught exception that takes the whole node down.
    let networkError: Error | null = null;
    socket.on("error", (err: NodeJS.ErrnoException) => {
      if (err.code && NETWORK_ERRORS.has(err.code)) networkError = err;
      session.log.debug({ err: err.message }, "data connection error");
    });
    armStallTimeout(socket, session.config.timeouts.stall * 1000);
    try {
      const text = await job.run(socket, signal);
      session.reply(Reply.ClosingData, text);
      if (session.log.isLevelEnabled("info")) session.log.info(transferFacts(session, job, socket, transfer), "transfer complete");
    } catch (err) {
      // ETIMEDOUT: no progress within timeouts.stall, the socket's timer or the kernel copy's own.
      const stalled = (networkError as NodeJS.ErrnoException | null)?.code === "ETIMEDOUT" || networkFailure(err) === "ETIMEDOUT";
      const failure = stalled
        ? new FtpError(Reply.TransferAborted, `Transfer stalled (no progress for ${session.config.timeouts.stall} s); aborted.`)
        : transferFailure(err, signal.aborted || networkError !== null || networkFailure(err) !== null, job.label);
      session.log.info({ ...transferFacts(session, job, socket, transfer), reason: (err as Error).message, reply: failure.code }, "transfer failed");
      session.reply(failure.code, failure.message);
    }
  } finally {
    socket?.destroy();
    session.transfer = null;
    settle();
  }
}

/**
 * PROT P: TLS on the data connection, where this server is the TLS server in both modes
 * (RFC 4217 §10). With session reuse required, the client must resume one of the TLS sessions it
 * holds (session-lineage.ts), which a thief of the data port does not have, even one with a
 * session of its own on this node. Replies and returns null on failure.
 */
async function protectData(session: Session, socket: Socket, timeoutMs: number, signal: AbortSignal): Promise<TLSSocket | null> {
  let secure: TLSSocket;
  let handshake: Handshake;
  // Sessions issued on this connection (TLS 1.3 tickets) belong to the client only once it is accepted.
  const issued: Buffer[] = [];
  try {
    const host = session.services.tls.sessions.host((s) => issued.push(s));
    ({ secure, handshake } = await acceptTls(socket, session.services.tls.context, timeoutMs, host, signal));
  } catch (err) {
    session.log.info({ err: (err as Error).message }, "data TLS handshake failed");
    if (signal.aborted) session.reply(Reply.TransferAborted, ABORTED);
    else session.reply(Reply.NetworkProtocolNotSupported, "TLS negotiation on the data connection failed.");
    return null;
  }
  const sessions = session.tls.sessions;
  if (secure.destroyed && !secure.readableEnded) {
    // Reset right after its handshake: nothing to tell about its session, the connection is gone.
    session.reply(Reply.TransferAborted, ABORTED);
    return null;
  }
  if (sessionReuseRequired(session) && !sessions?.resumedBy(handshake)) {
    const resumedAnother = handshake.resumed;
    secure.destroy();
    session.log.warn({ resumedAnother }, "data connection did not resume the control connection's TLS session; refused");
    session.reply(Reply.NetworkProtocolNotSupported, "TLS session of the data connection must resume the control connection's (session reuse required).");
    return null;
  }
  for (const s of issued) sessions?.addData(s);
  return secure;
}

/**
 * Failures of the data connection itself. Storage wraps whatever breaks its pipeline, so a reset
 * would otherwise read as a local error (451); the client's side of the story is 426.
 */
const NETWORK_ERRORS = new Set(["ECONNRESET", "EPIPE", "ETIMEDOUT", "ECONNABORTED", "ERR_STREAM_PREMATURE_CLOSE"]);

/**
 * A kernel copy's socket side failing (a reset, the stall timeout): the copy reports it as an error
 * of its own, never as the socket's 'error', and storage wraps it like a failure of the disk.
 * Returns its code, or null.
 */
function networkFailure(err: unknown): string | null {
  const failure = err instanceof StorageError ? err.cause : err;
  return failure instanceof KernelCopyError && NETWORK_ERRORS.has(failure.code) ? failure.code : null;
}

function transferFailure(err: unknown, aborted: boolean, label: string): FtpError {
  if (aborted) return new FtpError(Reply.TransferAborted, ABORTED);
  if (err instanceof StorageError) return replyForStorageError(err, label);
  if (err instanceof FtpError) return err;
  return new FtpError(Reply.TransferAborted, "Data connection closed; transfer aborted.");
}
