/**
 * The reply choreography every transfer command shares (RFC 959 §5.4): 150 before waiting for
 * the data connection, then 226 only after the bytes are through (and, for uploads, committed by
 * storage), or 425/426/4xx/5xx. The port held by the data channel is released on every path.
 */
import type { Socket } from "node:net";
import { armStallTimeout } from "../data/transfer.js";
import { FtpError, replyForStorageError } from "../protocol/errors.js";
import { Reply } from "../protocol/replies.js";
import type { ActiveTransfer, Session } from "../session/session.js";
import { StorageError } from "../storage/types.js";

export interface TransferJob {
  /** The 150 reply text, e.g. `Opening BINARY mode data connection for a.txt (1234 bytes).` */
  announce: string;
  /** Label for logs and STAT. */
  label: string;
  /** Moves the bytes; resolves with the 226 text. */
  run(socket: Socket, signal: AbortSignal): Promise<string>;
}

export async function runTransfer(session: Session, job: TransferJob): Promise<void> {
  const channel = session.dataChannel;
  if (!channel) throw new FtpError(Reply.CantOpenData, "Use PORT, EPRT, PASV or EPSV first.");
  session.dataChannel = null; // single use: the next transfer needs a new PASV/PORT

  let settle!: () => void;
  const transfer: ActiveTransfer = {
    label: job.label,
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
      session.reply(Reply.CantOpenData, "Can't open data connection.");
      return;
    } finally {
      channel.release();
    }
    transfer.socket = socket;
    armStallTimeout(socket, timeoutMs);
    try {
      const text = await job.run(socket, signal);
      session.reply(Reply.ClosingData, text);
      session.log.info(
        { transfer: job.label, bytesIn: socket.bytesRead, bytesOut: socket.bytesWritten, ms: Date.now() - transfer.startedAt },
        "transfer complete",
      );
    } catch (err) {
      const failure = transferFailure(err, signal.aborted, job.label);
      session.log.info({ transfer: job.label, reason: (err as Error).message, reply: failure.code }, "transfer failed");
      session.reply(failure.code, failure.message);
    }
  } finally {
    socket?.destroy();
    session.transfer = null;
    settle();
  }
}

function transferFailure(err: unknown, aborted: boolean, label: string): FtpError {
  if (aborted) return new FtpError(Reply.TransferAborted, "Connection closed; transfer aborted.");
  if (err instanceof StorageError) return replyForStorageError(err, label);
  if (err instanceof FtpError) return err;
  return new FtpError(Reply.TransferAborted, "Data connection closed; transfer aborted.");
}
