/** Access control commands (RFC 959 §4.1.1, RFC 7151 HOST), with the login-failure defence. */
import { isAccountName, MAX_ACCOUNT_NAME_LENGTH } from "../accounts/types.js";
import { refusalText } from "../guard/admission.js";
import { badSequence, FtpError } from "../protocol/errors.js";
import { Reply } from "../protocol/replies.js";
import type { Session } from "../session/session.js";
import type { CommandSpec } from "./command.js";
import { measureUsageAtLogin } from "../session/quota.js";
import { tlsPolicyFor } from "./security.js";

/**
 * A failed PASS: counted on the connection and toward the address's ban score, answered only
 * after a delay that grows with each failure on this connection (limits.loginFailureDelay × n).
 * The handler awaits the delay, so the session's queue waits with it: whatever the client
 * pipelined behind the PASS runs, and is answered, afterwards and in order. The last allowed
 * failure (limits.maxLoginAttempts; 0: no cap), or the one that bans the address, gets 421 and
 * the connection is closed. The per-connection count is never reset (not by REIN, not by a good
 * login), and neither is the address's score (see BanPolicy for why). A right password verified
 * after its address was banned comes here too (`why` says so in the log), so that nothing in its
 * reply or timing singles it out among the guesses.
 */
async function loginFailed(session: Session, name: string, why = "login failed"): Promise<void> {
  // Only what could be an account's name is logged: a password typed at the USER prompt is not.
  const user = isAccountName(name) ? name : "(not an account name)";
  session.loginFailures += 1;
  const failures = session.loginFailures;
  const { maxLoginAttempts, loginFailureDelay } = session.config.limits;
  session.log.info({ user, failures }, why);
  const { bans } = session.services.guard;
  // Banned by this failure, or meanwhile by guesses made at once on other connections: a 421 either
  // way, which tells a guesser nothing more about this password.
  const banned = (await bans.loginFailed(session.peerIp, user)) || (await bans.isBanned(session.peerIp));
  await session.wait(loginFailureDelay * 1000 * failures);
  if (banned) {
    session.close(Reply.ServiceNotAvailable, "Too many failed logins from your address; try again later.");
  } else if (maxLoginAttempts > 0 && failures >= maxLoginAttempts) {
    session.log.info({ failures }, "too many failed logins on one connection: closing");
    session.close(Reply.ServiceNotAvailable, "Too many failed logins; closing connection.");
  } else {
    session.reply(Reply.NotLoggedIn, "Login incorrect.");
  }
}

export const accessCommands: CommandSpec[] = [
  {
    verb: "USER",
    help: "USER <sp> username: name the account to log in as",
    login: false,
    arg: "required",
    async handler(session, arg) {
      if (session.account) throw new FtpError(Reply.NotLoggedIn, "Can't change to another user.");
      if (!session.tls.control) {
        // Per-account exceptions (an old camera on a TLS-only node) need the account's own policy.
        const account = await session.services.accounts.get(arg);
        if (tlsPolicyFor(session, account) !== "optional") {
          throw new FtpError(Reply.NotLoggedIn, "TLS required: secure the connection with AUTH TLS before USER.");
        }
      }
      session.pendingUser = arg;
      // A longer name than any account's (up to a whole command line) is not echoed,
      // so a client that sends such lines and never reads its replies cannot make the node hold them.
      session.reply(Reply.NeedPassword, arg.length <= MAX_ACCOUNT_NAME_LENGTH ? `Password required for ${arg}.` : "Password required.");
    },
  },
  {
    verb: "PASS",
    help: "PASS <sp> password: complete the login",
    login: false,
    arg: "optional",
    secretArg: true,
    async handler(session, arg) {
      if (session.account) throw badSequence("Already logged in.");
      const name = session.pendingUser;
      if (name === null) throw badSequence("Login with USER first.");
      session.pendingUser = null;
      const { accounts, storage, homeFor, guard, config } = session.services;
      // Banned since this connection was admitted (by failures on its other connections): no more guesses.
      if (await guard.bans.isBanned(session.peerIp)) {
        session.close(Reply.ServiceNotAvailable, refusalText("banned"));
        return;
      }
      // Before the read: a change made meanwhile is then seen at the next command.
      const revision = accounts.revision();
      const account = await accounts.authenticate(name, arg);
      if (!account) {
        await loginFailed(session, name);
        return;
      }
      // Guesses sent at once on many connections are all verified; once they have banned the
      // address, a right one among them gets the same 421 as the wrong ones: the same text, after
      // the same delay, or its reply would single out the right password among the guesses.
      if (await guard.bans.isBanned(session.peerIp)) {
        await loginFailed(session, name, "login refused: the address was banned while its password was checked");
        return;
      }
      // Checked only now, with the password verified: a guesser learns nothing from a 421.
      const maxSessions = account.maxSessions ?? config.limits.maxSessionsPerAccount;
      const registration = await guard.connections.registerSession(account.name, maxSessions);
      if (!registration.admitted) {
        session.log.info({ user: account.name, max: maxSessions }, "login refused: account session limit reached");
        session.close(Reply.ServiceNotAvailable, refusalText("sessions-per-account", maxSessions));
        return;
      }
      if (!session.holdAccountLease(registration.lease)) return; // closed while checking
      try {
        session.storage = await storage.forRoot(homeFor(account));
      } catch (err) {
        session.releaseAccountLease();
        // The operator's to fix; the client learns only that the login failed.
        session.log.warn({ user: account.name, err: (err as Error).message, cause: ((err as Error).cause as Error | undefined)?.message }, "login refused: the account's home cannot be used");
        throw new FtpError(Reply.NotLoggedIn, "Login failed: home directory unavailable.");
      }
      session.account = account;
      session.accountRevision = revision;
      session.cwd = "/";
      session.log.info({ user: account.name }, "logged in");
      session.reply(Reply.LoggedIn, "Login successful.");
      // Accounts with a quota whose usage was never measured are measured now, in the background;
      // commands that change usage wait for it.
      void measureUsageAtLogin(session);
    },
  },
  {
    verb: "ACCT",
    help: "ACCT <sp> account-information: not needed here",
    login: false,
    arg: "required",
    secretArg: true,
    handler(session) {
      session.reply(Reply.Superfluous, "ACCT not needed.");
    },
  },
  {
    verb: "HOST",
    help: "HOST <sp> domain: name the virtual host (RFC 7151), before USER",
    login: false,
    arg: "required",
    feat: "HOST",
    handler(session) {
      if (session.account || session.pendingUser !== null) throw badSequence("HOST must come before USER.");
      session.reply(Reply.ServiceReady, "Host accepted.");
    },
  },
  {
    verb: "REIN",
    help: "REIN: log out, keep the connection",
    login: false,
    arg: "none",
    handler(session) {
      session.resetLogin();
      session.reply(Reply.ServiceReady, session.config.banner);
    },
  },
  {
    verb: "QUIT",
    help: "QUIT: close the connection",
    login: false,
    arg: "none",
    // Not during a transfer: RFC 959 §4.1.1 keeps the connection open for the transfer's reply.
    handler(session) {
      session.close(Reply.ClosingControl, "Goodbye.");
    },
  },
];
