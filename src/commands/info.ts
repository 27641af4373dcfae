/** Informational commands: NOOP, SYST, HELP (RFC 959), FEAT and OPTS (RFC 2389, RFC 2640), LANG (RFC 2640). */
import { MLSX_FACTS } from "../protocol/listing.js";
import { FtpError, syntaxError } from "../protocol/errors.js";
import { Reply } from "../protocol/replies.js";
import type { CommandSpec } from "./command.js";

/** Features that are not one command's (RFC 2640 UTF8, RFC 3659 TVFS). */
const GENERAL_FEATURES = ["UTF8", "TVFS"];

export const infoCommands: CommandSpec[] = [
  {
    verb: "NOOP",
    keepsRestOffset: true,
    help: "NOOP: do nothing (keeps the connection alive)",
    login: false,
    arg: "none",
    handler(session) {
      session.reply(Reply.CommandOk, "NOOP ok.");
    },
  },
  {
    verb: "SYST",
    help: "SYST: the system type",
    login: false,
    arg: "none",
    handler(session) {
      // What clients expect to hear so that they parse LIST as `ls -l`.
      session.reply(Reply.SystemType, "UNIX Type: L8");
    },
  },
  {
    verb: "FEAT",
    help: "FEAT: list the extensions this server supports (RFC 2389)",
    login: false,
    arg: "none",
    handler(session) {
      const lines = [...session.services.commands.values()].flatMap((c) => (c.feat ? [typeof c.feat === "string" ? c.feat : c.feat(session)] : []));
      const features = [...new Set([...lines, ...GENERAL_FEATURES])].sort();
      session.reply(Reply.SystemStatus, ["Features:", ...features.map((f) => ` ${f}`), "End"]);
    },
  },
  {
    verb: "OPTS",
    help: "OPTS <sp> UTF8 ON | MLST facts: set options of a command (RFC 2389)",
    login: false,
    arg: "required",
    handler(session, arg) {
      const [command, ...rest] = arg.trim().split(/\s+/);
      const value = rest.join(" ");
      switch (command.toUpperCase()) {
        case "UTF8":
        case "UTF-8":
          // Paths are always UTF-8 here (RFC 2640); ON is the only sensible answer.
          session.reply(Reply.CommandOk, "Always in UTF8 mode.");
          return;
        case "MLST": {
          const wanted = value.split(";").map((f) => f.trim().toLowerCase());
          const facts = MLSX_FACTS.filter((f) => wanted.includes(f));
          session.mlstFacts = new Set(facts);
          session.reply(Reply.CommandOk, `MLST OPTS${facts.length > 0 ? ` ${facts.map((f) => `${f};`).join("")}` : ""}`);
          return;
        }
        default:
          throw syntaxError(`Option not understood: ${command}.`);
      }
    },
  },
  {
    verb: "LANG",
    help: "LANG [<sp> language-tag]: the language of replies, English here (RFC 2640 §4)",
    login: false,
    arg: "optional",
    feat: "LANG EN*",
    handler(session, arg) {
      // Replies are in English only: EN (any subtag, en-US) or no tag (the default) is what there is.
      const tag = arg.trim();
      if (tag !== "" && !/^en(-[a-z0-9]{1,8})*$/i.test(tag)) throw new FtpError(Reply.ParamNotImplemented, `Language ${tag.slice(0, 32)} not supported.`);
      session.reply(Reply.CommandOk, "Replies are in English.");
    },
  },
  {
    verb: "HELP",
    help: "HELP [<sp> command]: list commands, or the syntax of one",
    login: false,
    arg: "optional",
    handler(session, arg) {
      const { commands } = session.services;
      const verb = arg.trim().toUpperCase();
      if (verb) {
        const spec = commands.get(verb);
        if (!spec) throw new FtpError(Reply.NotImplemented, `Unknown command ${verb.slice(0, 32)}.`);
        session.reply(Reply.Help, spec.help);
        return;
      }
      const verbs = [...commands.keys()].sort();
      const rows: string[] = [];
      for (let i = 0; i < verbs.length; i += 8) rows.push(" " + verbs.slice(i, i + 8).map((v) => v.padEnd(5)).join(" "));
      session.reply(Reply.Help, ["The following commands are recognized:", ...rows, "Help OK."]);
    },
  },
];
