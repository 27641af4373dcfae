/** Access control commands (RFC 959 §4.1.1, RFC 7151 HOST). */
import { Reply } from "../protocol/replies.js";
import type { CommandSpec } from "./command.js";
import { tlsPolicyFor } from "./security.js";

export const accessCommands: CommandSpec[] = [
  {
    verb: "USER",
    help: "USER <sp> username: name the account to log in as",
    login: false,
    arg: "required",
    async handler(session, arg) {
      if (session.account) {
        session.reply(Reply.NotLoggedIn, "Can't change to another user.");
        return;
      }
      if (!session.tls.control) {
        // Per-account exceptions (an old camera on a TLS-only node) need the account's own policy.
        const account = await session.services.accounts.get(arg);
        if (tlsPolicyFor(session, account) !== "optional") {
          session.reply(Reply.NotLoggedIn, "TLS required: secure the connection with AUTH TLS before USER.");
          return;
        }
      }
      session.pendingUser = arg;
      session.reply(Reply.NeedPassword, `Password required for ${arg}.`);
    },
  },
  {
    verb: "PASS",
    help: "PASS <sp> password: complete the login",
    login: false,
    arg: "optional",
    async handler(session, arg) {
      if (session.account) {
        session.reply(Reply.BadSequence, "Already logged in.");
        return;
      }
      const name = session.pendingUser;
      if (name === null) {
        session.reply(Reply.BadSequence, "Login with USER first.");
        return;
      }
      session.pendingUser = null;
      const { accounts, storage, homeFor } = session.services;
      const account = await accounts.authenticate(name, arg);
      if (!account) {
        session.log.info({ user: name }, "login failed");
        session.reply(Reply.NotLoggedIn, "Login incorrect.");
        return;
      }
      session.storage = await storage.forRoot(homeFor(account));
      session.account = account;
      session.cwd = "/";
      session.log.info({ user: account.name }, "logged in");
      session.reply(Reply.LoggedIn, "Login successful.");
    },
  },
  {
    verb: "ACCT",
    help: "ACCT <sp> account-information: not needed here",
    login: false,
    arg: "required",
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
      if (session.account || session.pendingUser !== null) {
        session.reply(Reply.BadSequence, "HOST must come before USER.");
        return;
      }
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
    duringTransfer: true,
    handler(session) {
      session.close(Reply.ClosingControl, "Goodbye.");
    },
  },
];
