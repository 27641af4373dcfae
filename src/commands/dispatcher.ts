/**
 * The one place that turns a command line into a handler call: parses the verb, does the checks
 * every command shares (known verb, login, argument, permission, capability) and maps whatever a
 * handler throws to a reply. Handlers only act.
 */
import type { Permission } from "../accounts/types.js";
import { fileUnavailable, FtpError, replyForStorageError, syntaxError } from "../protocol/errors.js";
import { Reply } from "../protocol/replies.js";
import type { Session } from "../session/session.js";
import { StorageError, type StorageCapabilities } from "../storage/types.js";
import type { CommandSpec } from "./command.js";

/**
 * Splits `VERB arg` (RFC 959 §5.3.1): verb case-insensitive, the argument kept verbatim. Verbs are
 * ASCII, and so is their case: toUpperCase() would also make `PAß` a PASS.
 */
export function parseCommand(line: string): { verb: string; arg: string } {
  const space = line.indexOf(" ");
  const verb = space < 0 ? line : line.slice(0, space);
  return { verb: verb.replace(/[a-z]+/g, (letters) => letters.toUpperCase()), arg: space < 0 ? "" : line.slice(space + 1) };
}

/** A line that may carry a secret, however the client spaced or cased it: never logged. */
const SECRET = /^[\s\u0000-\u001f]*(PASS|ACCT)/i;

/** 530 unless logged in: the dispatcher's check, for a handler whose need depends on its argument (STAT path). */
export function requireLogin(session: Session): void {
  if (!session.account) throw new FtpError(Reply.NotLoggedIn, "Please login with USER and PASS.");
}

/** 550 unless the account holds `permission`: the dispatcher's check, for sub-commands (SITE CHMOD). */
export function requirePermission(session: Session, permission: Permission): void {
  if (!session.hasPermission(permission)) throw fileUnavailable("Permission denied.");
}

/** 502 unless the storage declares `capability`; `what` names the refused action in the reply. */
export function requireCapability(session: Session, capability: keyof StorageCapabilities, what: string): void {
  if (!session.fs.capabilities[capability]) throw new FtpError(Reply.NotImplemented, `${what} is not supported by this storage.`);
}

/**
 * The reply to a storage failure, quoting `subject` (the argument, or the path in it a handler names):
 * an unexpected errno (EIO…) is 451 for the client, its detail for the operator's log.
 */
export function storageFailure(session: Session, err: StorageError, subject: string): FtpError {
  if (err.code === "io") session.log.warn({ err: err.cause ?? err, verb: session.command }, "storage error");
  return replyForStorageError(err, subject);
}

export async function dispatch(session: Session, line: string): Promise<void> {
  // The per-command line is debug level: at the usual levels neither it nor its timing is built.
  const started = session.log.isLevelEnabled("debug") ? performance.now() : -1;
  const { verb, arg } = parseCommand(line);
  const spec = session.services.commands.get(verb);
  // A rename must be RNFR immediately followed by RNTO (RFC 959 §4.1.3).
  const renameFrom = session.renameFrom;
  session.renameFrom = null;
  try {
    // REST applies to the next transfer command only: any other command cancels it, even one refused.
    if (!spec?.keepsRestOffset) session.restOffset = 0;
    if (!spec) {
      // Echoed only when it is a word: `PASS\tsecret` is one word too, and no secret is quoted back.
      session.reply(Reply.SyntaxError, isWord(verb) ? `${verb}: command not understood.` : "Command not understood.");
    } else {
      await run(session, spec, verb, arg, renameFrom);
    }
  } catch (err) {
    if (err instanceof FtpError) {
      session.reply(err.code, err.message);
    } else if (err instanceof StorageError) {
      const ftp = storageFailure(session, err, spec?.secretArg ? verb : arg);
      session.reply(ftp.code, ftp.message);
    } else {
      session.log.error({ err, verb }, "command failed");
      session.reply(Reply.LocalError, "Local error in processing.");
    }
  }
  if (started < 0) return;
  // "PASS\tx" is one word to parseCommand, so the secret may be in the verb too; of a line that is
  // no command (`\x7fPASS x`), only a verb of letters is logged, and no argument.
  const secret = spec?.secretArg === true || SECRET.test(line);
  session.log.debug(
    {
      verb: spec || isWord(verb) ? verb : "(not a command)",
      arg: secret ? "****" : spec ? arg.slice(0, 256) : undefined,
      reply: session.lastReply,
      ms: +(performance.now() - started).toFixed(2),
    },
    "command",
  );
}

/** The checks every command shares, from its spec, then its handler. */
async function run(session: Session, spec: CommandSpec, verb: string, arg: string, renameFrom: string | null): Promise<void> {
  if (spec.login !== false) requireLogin(session);
  // Closed with its 421: whatever the command, even one that needs no login (NOOP, STAT path), so a
  // withdrawn account's session can neither be kept alive nor list its files. A transfer under way
  // finishes first (a STAT or ABOR during it is not checked).
  if (session.account && !session.transfer && (await session.accountWithdrawn())) return;
  if (spec.arg === "required" && arg.trim() === "") throw syntaxError(`${verb} needs an argument.`);
  if (spec.arg === "none" && arg.trim() !== "") throw syntaxError(`${verb} takes no argument.`);
  if (spec.permission) requirePermission(session, spec.permission);
  if (spec.capability) requireCapability(session, spec.capability, verb);
  if (verb === "RNTO") session.renameFrom = renameFrom;
  session.command = verb;
  await spec.handler(session, arg);
}

/** A verb of letters only: safe to echo or log (a secret glued to PASS by a tab is not). */
function isWord(verb: string): boolean {
  return /^[A-Z]{1,8}$/.test(verb);
}
