/** FTP security extensions over TLS (RFC 2228, RFC 4217): AUTH, PBSZ, PROT, CCC. */
import type { Account, TlsPolicy } from "../accounts/types.js";
import { FtpError, syntaxError } from "../protocol/errors.js";
import { Reply } from "../protocol/replies.js";
import type { Session } from "../session/session.js";
import type { CommandSpec } from "./command.js";

/** The TLS requirement for an account (its override, else the node's); for an unknown name, the node's. */
export function tlsPolicyFor(session: Session, account: Account | null): TlsPolicy {
  return account?.tlsPolicy ?? session.config.tls.policy;
}

/** Whether PROT P data connections must resume the control connection's TLS session. */
export function sessionReuseRequired(session: Session): boolean {
  return session.account?.tlsSessionReuse ?? session.config.tls.requireSessionReuse;
}

export const securityCommands: CommandSpec[] = [
  {
    verb: "AUTH",
    help: "AUTH <sp> TLS: secure the control connection (RFC 4217); SSL is an alias",
    login: false,
    arg: "required",
    feat: "AUTH TLS",
    async handler(session, arg) {
      const mechanism = arg.trim().toUpperCase();
      if (mechanism !== "TLS" && mechanism !== "SSL" && mechanism !== "TLS-C") {
        throw new FtpError(Reply.ParamNotImplemented, `AUTH ${mechanism.slice(0, 16)} not supported; use AUTH TLS.`);
      }
      if (session.tls.control) throw new FtpError(Reply.BadSequence, "Already using TLS.");
      if (session.account || session.pendingUser !== null) throw new FtpError(Reply.BadSequence, "AUTH must come before USER.");
      await session.secureControl(`AUTH ${mechanism} successful.`);
    },
  },
  {
    verb: "PBSZ",
    keepsRestOffset: true,
    help: "PBSZ <sp> 0: protection buffer size (always 0 with TLS)",
    login: false,
    arg: "required",
    feat: "PBSZ",
    handler(session, arg) {
      if (!/^\d+$/.test(arg.trim())) throw syntaxError("PBSZ takes a decimal size (0 with TLS).");
      if (!session.tls.control) throw new FtpError(Reply.BadSequence, "PBSZ requires AUTH TLS first.");
      session.tls.pbsz = true;
      // RFC 4217 §8: any value is answered with PBSZ=0, the only size TLS needs.
      session.reply(Reply.CommandOk, arg.trim() === "0" ? "PBSZ=0" : "PBSZ=0 (size ignored: TLS needs none)");
    },
  },
  {
    verb: "PROT",
    keepsRestOffset: true,
    help: "PROT <sp> P | C: protect data connections with TLS (P) or not (C)",
    login: false,
    arg: "required",
    feat: "PROT",
    handler(session, arg) {
      if (!session.tls.control) throw new FtpError(Reply.BadSequence, "PROT requires AUTH TLS first.");
      if (!session.tls.pbsz) throw new FtpError(Reply.BadSequence, "PROT requires PBSZ first.");
      const level = arg.trim().toUpperCase();
      if (level === "P" || level === "C") {
        if (level === "C" && session.account && tlsPolicyFor(session, session.account) === "data") {
          throw new FtpError(Reply.PolicyDenied, "PROT C refused: this account's data connections must be protected.");
        }
        session.tls.prot = level;
        session.reply(Reply.CommandOk, `Protection level set to ${level}.`);
      } else if (level === "S" || level === "E") {
        throw new FtpError(Reply.ProtectionNotSupported, `PROT ${level} not supported; use P or C.`);
      } else {
        throw new FtpError(Reply.ParamNotImplemented, "Unknown protection level.");
      }
    },
  },
  {
    verb: "CCC",
    help: "CCC: clear the control connection (refused: credentials and paths stay encrypted)",
    arg: "none",
    handler() {
      throw new FtpError(Reply.PolicyDenied, "CCC refused by policy.");
    },
  },
];
