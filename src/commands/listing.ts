/** Directory listings: LIST and NLST (RFC 959 §4.1.3), MLSD and MLST (RFC 3659 §7), STAT (§4.1.3). */
import { socketBytes } from "../data/kernel-copy.js";
import { sendLines } from "../data/transfer.js";
import { FtpError } from "../protocol/errors.js";
import { hasWildcard, tooManyStars, WildcardFilter, WildcardTooCostlyError } from "../protocol/glob.js";
import { listLineFormatter, mlsxLineFormatter, mlstFeat, nlstLine, type PermFlags } from "../protocol/listing.js";
import { Reply } from "../protocol/replies.js";
import type { Session } from "../session/session.js";
import { virtualBasename, virtualDirname } from "../storage/virtual-path.js";
import { StorageError, type FileInfo, type Storage } from "../storage/types.js";
import type { CommandSpec } from "./command.js";
import { typeName, runTransfer, throttleFor } from "./data-transfer.js";
import { requireLogin, requirePermission } from "./dispatcher.js";

/**
 * `LIST -la dir` → `dir`: clients pass ls options, which we accept and ignore, but for `l`: NLST
 * then answers LIST's lines (`NLST -l`, Windows ftp.exe's `ls -l`, as vsftpd does). A `--` word ends
 * them (`lftp ls -- -dash.txt`); the path after them is kept verbatim, as vsftpd does, so a name
 * with a leading or trailing space can be listed too.
 */
function parseListArg(arg: string): { long: boolean; path: string } {
  let rest = arg;
  let long = false;
  while (rest.startsWith("-")) {
    const space = rest.indexOf(" ");
    const word = space < 0 ? rest : rest.slice(0, space);
    rest = space < 0 ? "" : rest.slice(space + 1);
    if (word === "--") break;
    if (!word.startsWith("--") && word.includes("l")) long = true; // `-l`, `-la`; not a long option (`--all`)
  }
  return { long, path: rest.trim() === "" ? "" : rest };
}

/** How a listing reads a directory: entries with their metadata (LIST, STAT), or names only (NLST). */
interface EntrySource<T> {
  list(fs: Storage, path: string): AsyncIterable<T[]>;
  name(item: T): string;
  /** The item for a single file the argument names. */
  file(info: FileInfo, name: string): T;
  /**
   * An item found by a wildcard, or a single file, under the directory part of the argument as the
   * client wrote it (`sub/` for `sub/*.txt`): NLST gives `sub/a.txt`, as classic ftpd globbing
   * does and `mget` needs to fetch it; LIST keeps the name.
   */
  under?(item: T, dirAsWritten: string): T;
}

const WITH_METADATA: EntrySource<FileInfo> = {
  list: (fs, path) => fs.list(path),
  name: (entry) => entry.name,
  file: (info, name) => ({ ...info, name }),
};

const NAMES_ONLY: EntrySource<string> = {
  list: (fs, path) => fs.listNames(path),
  name: (name) => name,
  file: (_info, name) => name,
  under: (name, dir) => dir + name,
};

/**
 * What a LIST/NLST/STAT argument names, in batches (see `Storage.list`): a directory's entries, a
 * single file, or the entries of the parent directory that match a wildcard in the last segment.
 */
async function* entriesFor<T>(session: Session, arg: string, source: EntrySource<T>): AsyncGenerator<T[]> {
  const path = session.resolve(arg || ".");
  const dirAsWritten = arg.slice(0, arg.lastIndexOf("/") + 1);
  const under = (item: T) => (source.under ? source.under(item, dirAsWritten) : item);
  let info: FileInfo;
  try {
    info = await session.fs.stat(path);
  } catch (err) {
    const pattern = virtualBasename(path);
    if (!(err instanceof StorageError && err.code === "not-found" && hasWildcard(pattern))) throw err;
    if (tooManyStars(pattern)) throw new FtpError(Reply.SyntaxErrorArgs, "Too many wildcards.");
    const filter = new WildcardFilter(pattern);
    for await (const batch of source.list(session.fs, virtualDirname(path))) {
      let matching: T[];
      try {
        matching = batch.filter((item) => filter.matches(source.name(item)));
      } catch (err) {
        if (!(err instanceof WildcardTooCostlyError)) throw err;
        throw new FtpError(Reply.SyntaxErrorArgs, "Wildcard pattern too costly to match here; use a simpler one.");
      }
      if (matching.length > 0) yield matching.map(under);
    }
    return;
  }
  if (info.type !== "dir") {
    yield [under(source.file(info, virtualBasename(path)))];
  } else if (!source.under || arg === "" || arg === ".") {
    yield* source.list(session.fs, path);
  } else {
    // NLST of a directory the argument names gives `dir/name`, as classic ftpd, vsftpd, ProFTPD
    // and Pure-FTPd do: what a client fetches next (mget, `for n in nlst('sub')`) must be that
    // entry, not a namesake in the working directory.
    const prefix = `${arg.replace(/\/+$/, "")}/`;
    for await (const batch of source.list(session.fs, path)) yield batch.map((item) => source.under!(item, prefix));
  }
}

function permFlags(session: Session): PermFlags {
  const has = (p: Parameters<Session["hasPermission"]>[0]) => session.hasPermission(p);
  return { read: has("read"), write: has("write"), delete: has("delete"), rename: has("rename"), mkdir: has("mkdir"), list: has("list") };
}

/** Each batch of entries as its lines (without CRLF), for STAT's reply. */
async function* linesOf<T>(batches: AsyncIterable<T[]>, format: (entry: T) => string): AsyncGenerator<string[]> {
  for await (const batch of batches) yield batch.map(format);
}

/** LIST's lines for `path`: what LIST and `NLST -l` send. */
function sendFileList(session: Session, path: string): Promise<void> {
  return sendListing(session, "file list", entriesFor(session, path, WITH_METADATA), listLineFormatter(Date.now()));
}

/**
 * Sends a listing's entries over a data connection, each as the line `format` makes of it (always
 * ASCII: CRLF is added on the way). The first batch is read before the 150, so that an argument that
 * names nothing fails first.
 */
async function sendListing<T>(session: Session, label: string, batches: AsyncIterable<T[]>, format: (entry: T) => string): Promise<void> {
  const iterator = batches[Symbol.asyncIterator]();
  let first: IteratorResult<T[]> | null = await iterator.next();
  // The batches again, the first one already read (an iterator, not a generator: one layer less per batch).
  const all: AsyncIterable<T[]> = {
    [Symbol.asyncIterator]: () => ({
      next: () => {
        const read = first;
        first = null;
        return read ? Promise.resolve(read) : iterator.next();
      },
    }),
  };
  try {
    await runTransfer(session, {
      announce: `Opening ASCII mode data connection for ${label}.`,
      label,
      async run(socket, signal) {
        await sendLines(all, format, socket, signal, throttleFor(session, "down"));
        return "Transfer complete.";
      },
    });
  } finally {
    await iterator.return?.();
  }
}

export const listingCommands: CommandSpec[] = [
  {
    verb: "LIST",
    help: "LIST [<sp> pathname]: long listing of a directory or file",
    arg: "optional",
    permission: "list",
    async handler(session, arg) {
      await sendFileList(session, parseListArg(arg).path);
    },
  },
  {
    verb: "NLST",
    help: "NLST [<sp> pathname]: names in a directory",
    arg: "optional",
    permission: "list",
    async handler(session, arg) {
      const { long, path } = parseListArg(arg);
      if (long) await sendFileList(session, path);
      else await sendListing(session, "name list", entriesFor(session, path, NAMES_ONLY), nlstLine);
    },
  },
  {
    verb: "MLSD",
    help: "MLSD [<sp> pathname]: machine-readable listing of a directory (RFC 3659)",
    arg: "optional",
    permission: "list",
    async handler(session, arg) {
      const path = session.resolve(arg || ".");
      const info = await session.fs.stat(path);
      // RFC 3659 §7.2.1: MLSD names a directory; a file is an error.
      if (info.type !== "dir") throw new FtpError(Reply.SyntaxErrorArgs, `${arg}: Not a directory.`);
      await sendListing(session, "MLSD", session.fs.list(path), mlsxLineFormatter(permFlags(session), session.mlstFacts));
    },
  },
  {
    verb: "MLST",
    help: "MLST [<sp> pathname]: machine-readable facts of one file (RFC 3659)",
    arg: "optional",
    permission: "list",
    feat: (session) => mlstFeat(session.mlstFacts),
    async handler(session, arg) {
      const path = session.resolve(arg || ".");
      const info = await session.fs.stat(path);
      const facts = mlsxLineFormatter(permFlags(session), session.mlstFacts)({ ...info, name: path });
      session.reply(Reply.FileActionOk, [`Listing ${path}`, ` ${facts}`, "End."]);
    },
  },
  {
    verb: "STAT",
    keepsRestOffset: true,
    help: "STAT [<sp> pathname]: server status, transfer status, or a listing over the control connection",
    arg: "optional",
    login: false,
    duringTransfer: true,
    async handler(session, arg) {
      const transfer = session.transfer;
      if (transfer) {
        const moved = transfer.socket ? socketBytes(transfer.socket) : null;
        const bytes = moved ? moved.in + moved.out : 0;
        session.reply(Reply.SystemStatus, ["Status:", `Transferring ${transfer.label}: ${bytes} bytes so far.`, "End of status."]);
        return;
      }
      if (!arg.trim()) {
        session.reply(Reply.SystemStatus, [
          "edgeftp status:",
          `Connected from ${session.peerIp}`,
          session.account ? `Logged in as ${session.account.name}` : "Not logged in",
          `TYPE: ${typeName(session)}; STRUcture: File; transfer MODE: Stream`,
          session.dataChannel ? `Data connection: ${session.dataChannel.mode} set up` : "No data connection",
          "End of status.",
        ]);
        return;
      }
      // A listing needs what LIST needs; status alone (no argument) needs no login.
      requireLogin(session);
      requirePermission(session, "list");
      const lines = linesOf(entriesFor(session, parseListArg(arg).path, WITH_METADATA), listLineFormatter(Date.now()));
      try {
        await session.replyStream(Reply.FileStatus, "Status follows:", lines, "End of status.");
      } catch (err) {
        // RFC 959 §5.4 gives STAT 450, not 550, for what it cannot show.
        if (err instanceof StorageError && err.code === "not-found") throw new FtpError(Reply.FileUnavailableBusy, err.message);
        throw err;
      }
    },
  },
];
