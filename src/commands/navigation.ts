/** Working directory commands (RFC 959 §4.1.1, §4.1.3; X-variants from RFC 775). */
import { fileUnavailable } from "../protocol/errors.js";
import { quotePath, Reply } from "../protocol/replies.js";
import type { Session } from "../session/session.js";
import { alias, type CommandSpec } from "./command.js";

async function changeDirectory(session: Session, target: string, code: number): Promise<void> {
  const info = await session.fs.stat(target);
  if (info.type !== "dir") throw fileUnavailable(`${target}: Not a directory.`);
  session.cwd = target;
  session.reply(code, `Directory changed to ${target}.`);
}

const cwd: CommandSpec = {
  verb: "CWD",
  help: "CWD <sp> pathname: change the working directory",
  arg: "required",
  handler: (session, arg) => changeDirectory(session, session.resolve(arg), Reply.FileActionOk),
};

const cdup: CommandSpec = {
  verb: "CDUP",
  help: "CDUP: change to the parent directory",
  arg: "none",
  // RFC 959 §5.4 lists 200 for CDUP.
  handler: (session) => changeDirectory(session, session.resolve(".."), Reply.CommandOk),
};

const pwd: CommandSpec = {
  verb: "PWD",
  help: "PWD: print the working directory",
  arg: "none",
  handler(session) {
    session.reply(Reply.PathCreated, `${quotePath(session.cwd)} is the current directory.`);
  },
};

export const navigationCommands: CommandSpec[] = [cwd, alias("XCWD", cwd), cdup, alias("XCUP", cdup), pwd, alias("XPWD", pwd)];
