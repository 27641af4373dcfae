/**
 * Errors that carry their reply. A handler throws one of these; the dispatcher sends its code
 * and message. Anything else that escapes a handler becomes 451 with the detail in the log only.
 */
import { StorageError } from "../storage/types.js";
import { Reply, type ReplyCode } from "./replies.js";

export class FtpError extends Error {
  constructor(
    readonly code: ReplyCode,
    message: string,
  ) {
    super(message);
    this.name = "FtpError";
  }
}

export const syntaxError = (message = "Syntax error in parameters or arguments.") =>
  new FtpError(Reply.SyntaxErrorArgs, message);
export const badSequence = (message: string) => new FtpError(Reply.BadSequence, message);
export const fileUnavailable = (message: string) => new FtpError(Reply.FileUnavailable, message);

/** The mapping of every storage failure to its reply, in one place. */
export function replyForStorageError(err: StorageError, path: string): FtpError {
  switch (err.code) {
    case "not-found":
      return new FtpError(Reply.FileUnavailable, `${path}: No such file or directory.`);
    case "exists":
      return new FtpError(Reply.FileUnavailable, `${path}: File exists.`);
    case "not-dir":
      return new FtpError(Reply.FileUnavailable, `${path}: Not a directory.`);
    case "is-dir":
      return new FtpError(Reply.FileUnavailable, `${path}: Is a directory.`);
    case "not-empty":
      return new FtpError(Reply.FileUnavailable, `${path}: Directory not empty.`);
    case "permission":
      return new FtpError(Reply.FileUnavailable, `${path}: Permission denied.`);
    case "invalid-path":
      return new FtpError(Reply.FileNameNotAllowed, `File name not allowed.`);
    case "no-space":
      return new FtpError(Reply.InsufficientStorage, `Insufficient storage space.`);
    case "unsupported":
      return new FtpError(Reply.NotImplemented, err.message);
    case "io":
      return new FtpError(Reply.LocalError, `Local error in processing.`);
  }
}
