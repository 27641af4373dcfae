/**
 * A command is data: its verb, what it needs, and its handler. The dispatcher does the generic
 * checks (login, argument, permission, capability) from these fields; FEAT and HELP are
 * generated from them, so a verb's facts are written once.
 */
import type { Permission } from "../accounts/types.js";
import type { Session } from "../session/session.js";
import type { StorageCapabilities } from "../storage/types.js";

export interface CommandSpec {
  verb: string;
  /** HELP text: syntax first, then a short description. */
  help: string;
  /** Whether the command needs a logged-in session (default true). */
  login?: boolean;
  /** Argument shape: 'none' rejects one, 'required' rejects its absence (501). */
  arg: "none" | "optional" | "required";
  /** Permission the account must hold (550 otherwise). */
  permission?: Permission;
  /** Storage capability the backend must declare (502 otherwise). */
  capability?: keyof StorageCapabilities;
  /**
   * Leaves a pending REST offset in place. REST applies to the next transfer command (RFC 3659
   * §5.3); clients send data-setup and type commands between them, but any other command cancels it.
   */
  keepsRestOffset?: boolean;
  /** Runs at once while a transfer is in progress, ahead of queued commands (RFC 959 §4.1.3: ABOR, STAT). */
  duringTransfer?: boolean;
  /** The argument is a secret (PASS, ACCT): never logged, never quoted in a reply. */
  secretArg?: boolean;
  /** Line for FEAT (RFC 2389), if the command extends RFC 959. */
  feat?: string | ((session: Session) => string);
  handler(session: Session, arg: string): Promise<void> | void;
}

/** An alias that shares its target's facts (XCWD for CWD, …). */
export function alias(verb: string, target: CommandSpec): CommandSpec {
  return { ...target, verb, feat: undefined };
}
