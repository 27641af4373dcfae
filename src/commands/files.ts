/** File management: DELE, RNFR/RNTO, MKD, RMD (RFC 959), SIZE, MDTM (RFC 3659), MFMT, SITE. */
import { badSequence, fileUnavailable, FtpError, syntaxError } from "../protocol/errors.js";
import { formatTimeVal, parseTimeVal } from "../protocol/listing.js";
import { quotePath, Reply } from "../protocol/replies.js";
import { ownEntryState, withQuota } from "../session/quota.js";
import { claimCreation, claimPaths, withClaim } from "../session/path-claims.js";
import type { Session } from "../session/session.js";
import { StorageError, type FileInfo } from "../storage/types.js";
import { alias, type CommandSpec } from "./command.js";
import { requireCapability, requirePermission, storageFailure } from "./dispatcher.js";

/**
 * Runs a storage call on `name`, a path the client gave after other words (MFMT's time, SITE's
 * subcommand and mode): a failure names that path, not the whole argument the dispatcher would quote.
 */
async function onPath<T>(session: Session, name: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    if (err instanceof StorageError) throw storageFailure(session, err, name);
    throw err;
  }
}

/** Splits `<first-word> <rest>`; rest keeps its spaces (file names may have them). */
function splitFirst(arg: string): [string, string] {
  const trimmed = arg.trimStart();
  const space = trimmed.indexOf(" ");
  return space < 0 ? [trimmed, ""] : [trimmed.slice(0, space), trimmed.slice(space + 1)];
}

const mkd: CommandSpec = {
  verb: "MKD",
  help: "MKD <sp> pathname: make a directory",
  arg: "required",
  permission: "mkdir",
  async handler(session, arg) {
    const path = session.resolve(arg);
    // Claimed like every other change of a name, so that an upload or a rename of the same name cannot
    // interleave with it and count the entry twice. Counted against the files quota (552 when reached).
    await withClaim(claimCreation(session, `a creation of ${path}`, path), () =>
      withQuota(session, (quota) => quota.createEntry(() => session.fs.mkdir(path))),
    );
    session.reply(Reply.PathCreated, `${quotePath(path)} created.`);
  },
};

const rmd: CommandSpec = {
  verb: "RMD",
  help: "RMD <sp> pathname: remove an empty directory",
  arg: "required",
  permission: "delete",
  async handler(session, arg) {
    const path = session.resolve(arg);
    if (path === "/") throw fileUnavailable("Can't remove the root directory.");
    await withClaim(claimPaths(session, `a removal of ${path}`, path), () =>
      withQuota(session, (quota) => quota.removeEntry({ size: 0 }, () => session.fs.rmdir(path))),
    );
    session.reply(Reply.FileActionOk, "Directory removed.");
  },
};

async function siteChmod(session: Session, rest: string): Promise<void> {
  const [modeText, name] = splitFirst(rest);
  if (!/^[0-7]{3,4}$/.test(modeText) || !name) throw syntaxError("Usage: SITE CHMOD <octal mode> <path>");
  requirePermission(session, "write");
  requireCapability(session, "chmod", "CHMOD");
  await onPath(session, name, () => session.fs.chmod(session.resolve(name), parseInt(modeText, 8) & 0o777));
  session.reply(Reply.CommandOk, "SITE CHMOD command ok.");
}

/**
 * SITE UTIME in both forms clients send: `UTIME YYYYMMDDhhmm[ss] <path>` (ProFTPD mod_site_misc)
 * and `UTIME <path> <atime> <mtime> <ctime> UTC` (the 5-argument form); times are UTC.
 */
async function siteUtime(session: Session, rest: string): Promise<void> {
  let when: Date | null = null;
  let name = "";
  const five = /^(.+) (\d{14}) (\d{14}) (\d{14}) UTC$/i.exec(rest.trim());
  if (five) {
    name = five[1];
    when = parseTimeVal(five[3]);
  } else {
    const [timeText, path] = splitFirst(rest);
    name = path;
    when = parseTimeVal(/^\d{12}$/.test(timeText) ? `${timeText}00` : timeText);
  }
  if (!when || !name) throw syntaxError("Usage: SITE UTIME YYYYMMDDhhmm[ss] <path>");
  await setModifiedTime(session, name, when);
  session.reply(Reply.CommandOk, "SITE UTIME command ok.");
}

/** SITE UTIME and MDTM's setting form: the checks the dispatcher makes for MFMT from its spec. */
async function setModifiedTime(session: Session, name: string, when: Date): Promise<void> {
  requirePermission(session, "write");
  requireCapability(session, "setModifiedTime", "Setting times");
  await onPath(session, name, () => session.fs.setModifiedTime(session.resolve(name), when));
}

/** SIZE and MDTM answer for plain files only (RFC 3659 §4.2, §3.1). */
async function plainFile(session: Session, arg: string): Promise<FileInfo> {
  const info = await session.fs.stat(session.resolve(arg));
  if (info.type !== "file") throw fileUnavailable(`${arg}: not a plain file.`);
  return info;
}

export const fileCommands: CommandSpec[] = [
  {
    verb: "DELE",
    help: "DELE <sp> pathname: delete a file",
    arg: "required",
    permission: "delete",
    async handler(session, arg) {
      const path = session.resolve(arg);
      // Held from the size read to the unlink, so that what the quota records is what went.
      await withClaim(claimPaths(session, `a deletion of ${path}`, path), () =>
        withQuota(session, async (quota) => {
          // Its size is what the deletion frees (asked only when usage is tracked).
          const removed = quota.tracking ? await ownEntryState(session.fs, path) : null;
          await quota.removeEntry(removed, () => session.fs.delete(path));
        }),
      );
      session.reply(Reply.FileActionOk, "File deleted.");
    },
  },
  {
    verb: "RNFR",
    help: "RNFR <sp> pathname: name the file to rename (followed by RNTO)",
    arg: "required",
    permission: "rename",
    async handler(session, arg) {
      const path = session.resolve(arg);
      if (path === "/") throw fileUnavailable("Can't rename the root directory.");
      // The entry itself: a link is renamed, wherever it points (even outside the root, or nowhere).
      if ((await session.fs.findEntry(path)) === null) throw fileUnavailable(`${path}: No such file or directory.`);
      session.renameFrom = path;
      session.reply(Reply.PendingFurtherInfo, "Ready for RNTO.");
    },
  },
  {
    verb: "RNTO",
    help: "RNTO <sp> pathname: the new name (after RNFR)",
    arg: "required",
    permission: "rename",
    async handler(session, arg) {
      const from = session.renameFrom;
      session.renameFrom = null;
      if (!from) throw badSequence("RNFR required first.");
      const to = session.resolve(arg);
      await withClaim(claimPaths(session, `a rename of ${from}`, from, to), () =>
        withQuota(session, async (quota) => {
          // Renaming over an existing file removes that file (its bytes and its entry).
          const replaced = quota.tracking && to !== from ? await ownEntryState(session.fs, to) : null;
          await quota.rename(replaced, async () => {
            await session.fs.rename(from, to);
            // Two names of one file (through a link): rename(2) does nothing, and nothing was replaced.
            return replaced === null || (await session.fs.findEntry(from)) === null;
          });
        }),
      );
      session.reply(Reply.FileActionOk, "Rename successful.");
    },
  },
  mkd,
  alias("XMKD", mkd),
  rmd,
  alias("XRMD", rmd),
  {
    verb: "SIZE",
    keepsRestOffset: true,
    help: "SIZE <sp> pathname: size of a file in bytes (RFC 3659)",
    arg: "required",
    permission: "list",
    feat: "SIZE",
    async handler(session, arg) {
      // The stored size in either TYPE, as vsftpd and Pure-FTPd answer. RFC 3659 §4 wants TYPE A's
      // converted size, which means reading the whole file for every SIZE: a cost any client could
      // make the node pay, for a figure clients do not use (they switch to TYPE I to transfer).
      session.reply(Reply.FileStatus, String((await plainFile(session, arg)).size));
    },
  },
  {
    verb: "MDTM",
    keepsRestOffset: true,
    help: "MDTM <sp> pathname: modification time of a file (RFC 3659)",
    arg: "required",
    permission: "list",
    feat: "MDTM",
    async handler(session, arg) {
      // `MDTM YYYYMMDDHHMMSS path`, the setting form older clients send (vsftpd takes it too; MFMT is
      // its standard), unless a file is named so.
      const setting = /^(\d{14}) (.+)$/.exec(arg);
      const when = setting && parseTimeVal(setting[1]);
      if (setting && when && (await session.fs.findEntry(session.resolve(arg))) === null) {
        await setModifiedTime(session, setting[2], when);
        session.reply(Reply.FileStatus, "File modification time set.");
        return;
      }
      session.reply(Reply.FileStatus, formatTimeVal((await plainFile(session, arg)).mtime));
    },
  },
  {
    verb: "MFMT",
    help: "MFMT <sp> YYYYMMDDHHMMSS <sp> pathname: set a file's modification time",
    arg: "required",
    permission: "write",
    capability: "setModifiedTime",
    feat: "MFMT",
    async handler(session, arg) {
      const [timeText, name] = splitFirst(arg);
      const when = parseTimeVal(timeText);
      if (!when || !name) throw syntaxError("Usage: MFMT YYYYMMDDHHMMSS <path>");
      const path = session.resolve(name);
      await onPath(session, name, () => session.fs.setModifiedTime(path, when));
      // The time the file system kept (its range or precision may differ from the one asked for).
      const kept = (await onPath(session, name, () => session.fs.stat(path))).mtime;
      session.reply(Reply.FileStatus, `Modify=${formatTimeVal(kept)}; ${path}`);
    },
  },
  {
    verb: "SITE",
    help: "SITE <sp> HELP | CHMOD <mode> <path> | UTIME <time> <path>: site-specific commands",
    arg: "required",
    async handler(session, arg) {
      const [sub, rest] = splitFirst(arg);
      switch (sub.toUpperCase()) {
        case "HELP":
          session.reply(Reply.Help, ["SITE commands:", "CHMOD <octal mode> <path>", "UTIME YYYYMMDDhhmm[ss] <path>", "HELP", "End."]);
          return;
        case "CHMOD":
          return siteChmod(session, rest);
        case "UTIME":
          return siteUtime(session, rest);
        default:
          throw new FtpError(Reply.SyntaxError, "Unknown SITE command.");
      }
    },
  },
];
