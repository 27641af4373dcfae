/** Transfer parameter commands (RFC 959 §4.1.2; REST STREAM per RFC 3659 §5). */
import { FtpError, syntaxError } from "../protocol/errors.js";
import { Reply } from "../protocol/replies.js";
import type { CommandSpec } from "./command.js";

export const parameterCommands: CommandSpec[] = [
  {
    verb: "TYPE",
    keepsRestOffset: true,
    help: "TYPE <sp> A | I | L 8: representation type (ASCII or binary)",
    arg: "required",
    handler(session, arg) {
      const [code, param = ""] = arg.trim().toUpperCase().split(/\s+/);
      if (code === "I" && !param) session.type = "I";
      else if (code === "L" && param === "8") session.type = "I";
      else if (code === "A" && (param === "" || param === "N")) session.type = "A";
      else throw new FtpError(Reply.ParamNotImplemented, `TYPE ${arg} not implemented.`);
      session.reply(Reply.CommandOk, `Type set to ${session.type}.`);
    },
  },
  {
    verb: "MODE",
    keepsRestOffset: true,
    help: "MODE <sp> S: transfer mode (stream only)",
    arg: "required",
    handler(session, arg) {
      if (arg.trim().toUpperCase() !== "S") throw new FtpError(Reply.ParamNotImplemented, "Only MODE S is supported.");
      session.reply(Reply.CommandOk, "Mode set to S.");
    },
  },
  {
    verb: "STRU",
    keepsRestOffset: true,
    help: "STRU <sp> F: file structure (file only)",
    arg: "required",
    handler(session, arg) {
      if (arg.trim().toUpperCase() !== "F") throw new FtpError(Reply.ParamNotImplemented, "Only STRU F is supported.");
      session.reply(Reply.CommandOk, "Structure set to F.");
    },
  },
  {
    verb: "ALLO",
    keepsRestOffset: true,
    help: "ALLO <sp> size: reserve space (not needed here)",
    arg: "required",
    handler(session) {
      // RFC 959 §5.4 allows 200 or 202. 200, as Pure-FTPd answers: an embedded uploader (a Dahua
      // camera, hassio-addons/app-ftp#245) was reported to take 202 for a refusal.
      session.reply(Reply.CommandOk, "ALLO command successful.");
    },
  },
  {
    verb: "REST",
    keepsRestOffset: true,
    help: "REST <sp> offset: restart the next RETR/STOR at a byte offset",
    arg: "required",
    feat: "REST STREAM",
    handler(session, arg) {
      const text = arg.trim();
      if (!/^\d{1,15}$/.test(text)) {
        session.restOffset = 0; // a REST that failed leaves none pending, not an earlier one
        throw syntaxError(/^\d+$/.test(text) ? "REST offset too large (at most 15 digits)." : "REST needs a non-negative byte offset.");
      }
      session.restOffset = Number(text);
      session.reply(Reply.PendingFurtherInfo, `Restarting at ${session.restOffset}. Send STOR or RETR to start the transfer.`);
    },
  },
];
