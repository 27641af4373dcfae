/**
 * The one place that turns a command line into a handler call: parses the verb, does the checks
 * every command shares (known verb, login, argument, permission, capability) and maps whatever a
 * handler throws to a reply. Handlers only act.
 */
import { FtpError, replyForStorageError } from "../protocol/errors.js";
import { Reply } from "../protocol/replies.js";
import type { Session } from "../session/session.js";
import { StorageError } from "../storage/types.js";

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
      session.reply(Reply.SyntaxError, /^[A-Z]{1,8}$/.test(verb) ? `${verb}: command not understood.` : "Command not understood.");
    } else if (spec.login !== false && !session.account) {
      session.reply(Reply.NotLoggedIn, "Please login with USER and PASS.");
    } else if (session.account && !session.transfer && (await session.accountWithdrawn())) {
      // Closed with its 421: whatever the command, even one that needs no login (NOOP, STAT path),
      // so a withdrawn account's session can neither be kept alive nor list its files. A transfer
      // under way finishes first (a STAT or ABOR during it is not checked).
    } else if (spec.arg === "required" && arg.trim() === "") {
      session.reply(Reply.SyntaxErrorArgs, `${verb} needs an argument.`);
    } else if (spec.arg === "none" && arg.trim() !== "") {
      session.reply(Reply.SyntaxErrorArgs, `${verb} takes no argument.`);
    } else if (spec.permission && !session.hasPermission(spec.permission)) {
      session.reply(Reply.FileUnavailable, "Permission denied.");
    } else if (spec.capability && !session.fs.capabilities[spec.capability]) {
      session.reply(Reply.NotImplemented, `${verb} is not supported by this storage.`);
    } else {
      if (verb === "RNTO") session.renameFrom = renameFrom;
      session.command = verb;
      await spec.handler(session, arg);
    }
  } catch (err) {
    if (err instanceof FtpError) {
      session.reply(err.code, err.message);
    } else if (err instanceof StorageError) {
      const ftp = replyForStorageError(err, spec?.secretArg ? verb : arg);
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
      verb: spec || /^[A-Z]{1,8}$/.test(verb) ? verb : "(not a command)",
      arg: secret ? "****" : spec ? arg.slice(0, 256) : undefined,
      reply: session.lastReply,
      ms: +(performance.now() - started).toFixed(2),
    },
    "command",
  );
}
