/** File transfer commands (RFC 959 §4.1.3) and ABOR (§4.1.3, RFC 1123 §4.1.3.2). */
import { receiveFromClient, sendToClient } from "../data/transfer.js";
import { fileUnavailable, FtpError } from "../protocol/errors.js";
import { Reply } from "../protocol/replies.js";
import { stateOf, withQuota, type EntryState } from "../session/quota.js";
import type { Session } from "../session/session.js";
import { changeAtOrAbove, claimPaths, fileBusy, isClaimed, withClaim } from "../session/path-claims.js";
import { joinVirtual, virtualBasename, virtualDirname } from "../storage/virtual-path.js";
import type { FileReadable } from "../storage/types.js";
import type { CommandSpec } from "./command.js";
import { typeName, runTransfer, throttleFor } from "./data-transfer.js";

/** REST applies to the next transfer command only. */
function takeRestOffset(session: Session): number {
  const offset = session.restOffset;
  session.restOffset = 0;
  return offset;
}

/**
 * A restart in TYPE A is refused, as vsftpd, ProFTPD and Pure-FTPd refuse it: RFC 3659's marker
 * counts octets of the transferred stream (CRLF line ends), the file holds another count (LF), and
 * finding where one maps into the other would mean reading the file up to there.
 */
function refuseAsciiRestart(session: Session, offset: number): void {
  if (offset > 0 && session.type === "A") throw fileUnavailable("Resuming a transfer in TYPE A is not supported; use TYPE I.");
}

/**
 * Fails before the 150 when the upload cannot land: missing parent, a directory in the way, or a
 * REST offset into a file that does not exist.
 * Returns the target's current state (null: a new file).
 */
async function checkUploadTarget(session: Session, path: string, offset: number): Promise<EntryState> {
  if (session.fs.isReserved(path)) throw new FtpError(Reply.FileNameNotAllowed, "File name not allowed.");
  const target = await session.fs.find(path);
  if (target?.type === "dir") throw fileUnavailable(`${path}: Is a directory.`);
  // REST then STOR resumes a file: there must be one (RFC 3659 §5.5 leaves the rest to the server).
  if (target === null && offset > 0) throw fileUnavailable(`${path}: No such file to resume at ${offset}.`);
  // Where something is, its parent is a directory; a new name needs the parent looked at.
  if (target === null) {
    const parent = await session.fs.stat(virtualDirname(path));
    if (parent.type !== "dir") throw fileUnavailable(`${virtualDirname(path)}: Not a directory.`);
  }
  return stateOf(target);
}

/** `release`: the claim on `path` an upload holds (see path-claims), when its caller made it. */
async function upload(session: Session, path: string, mode: "replace" | "append", announce?: string, release?: () => void): Promise<void> {
  // APPE consumes a pending REST too (and ignores it): left pending, it would turn the next plain
  // STOR into a write at that offset (550 for a new file).
  const rest = takeRestOffset(session);
  const offset = mode === "append" ? 0 : rest;
  refuseAsciiRestart(session, offset);
  await withClaim(release ?? claimPaths(session, `an upload to ${path}`, path), () => uploadClaimed(session, path, mode, offset, announce));
}

async function uploadClaimed(session: Session, path: string, mode: "replace" | "append", offset: number, announce?: string): Promise<void> {
  const before = await checkUploadTarget(session, path, offset);
  const ascii = session.type === "A";
  await withQuota(session, async (quota) => {
    // 552 before the 150 when already at or over the quota.
    const tracked = quota.beginUpload(session.fs, path, before, { offset, append: mode === "append" });
    try {
      await runTransfer(session, {
        announce: announce ?? `Opening ${typeName(session)} mode data connection for ${virtualBasename(path)}.`,
        label: path,
        async run(socket, signal) {
          const source = receiveFromClient(socket, ascii, signal, {
            throttle: throttleFor(session, "up"),
            counter: tracked.counter,
            allowance: tracked.counter ? tracked : null,
            zeroCopy: session.config.transfers.zeroCopy,
            onEnd: () => session.abortTransferIfClientGone(),
          });
          try {
            const bytes = await session.fs.write(path, source, {
              offset: offset || undefined,
              append: mode === "append",
              atomic: session.config.uploads.atomic,
              keepPartial: session.config.uploads.partial === "keep",
              durable: session.config.uploads.fsync,
              signal,
              beforeReplace: () => session.watchClientBeforeReplace(),
            });
            return `Transfer complete (${bytes} bytes).`;
          } catch (err) {
            // Storage reports the counter's refusal as a failed write; the reply says why.
            if (tracked.exceeded) {
              // A new file the quota stopped is removed, whatever uploads.partial says, as Pure-FTPd
              // ("won't be saved") and ProFTPD's mod_quotatab do: it cannot be resumed while the
              // account is full, and kept it would be a truncated file under the client's name,
              // holding the account at its quota. This upload's claim still holds the name.
              if (before === null) await session.fs.delete(path).catch(() => undefined);
              throw tracked.error();
            }
            throw err;
          } finally {
            // Before the 226/4xx/552, so what the client sees next is already counted.
            await tracked.settle();
          }
        },
      });
    } finally {
      tracked.abandon();
    }
  });
}

/**
 * A name in `dir` that does not exist yet and no other upload is making, `base`, `base.1`,
 * `base.2`, … (bounded), claimed for the upload: returns it with the claim's release.
 */
async function uniqueName(session: Session, dir: string, base: string): Promise<{ path: string; release: () => void }> {
  // The directory itself being removed or renamed: every name in it would be busy.
  const change = changeAtOrAbove(session, dir);
  if (change !== null) throw fileBusy(dir, change);
  for (let i = 0; i < 1000; i++) {
    const candidate = joinVirtual(dir, i === 0 ? base : `${base}.${i}`);
    if (isClaimed(session, candidate) || (await session.fs.find(candidate)) !== null) continue;
    // Claimed by a concurrent STOU while this one looked: on to the next name.
    if (isClaimed(session, candidate)) continue;
    return { path: candidate, release: claimPaths(session, `an upload to ${candidate}`, candidate) };
  }
  throw new FtpError(Reply.FileNameNotAllowed, "Could not find a unique file name.");
}

export const transferCommands: CommandSpec[] = [
  {
    verb: "RETR",
    keepsRestOffset: true,
    help: "RETR <sp> pathname: download a file",
    arg: "required",
    permission: "read",
    async handler(session, arg) {
      const path = session.resolve(arg);
      const offset = takeRestOffset(session);
      refuseAsciiRestart(session, offset);
      // No stat first: opening the file tells its size. When it fails, the stat decides the reply,
      // as it did when it came first (a reserved name is not-found to it, a directory not a plain file).
      let source: FileReadable;
      try {
        source = await session.fs.read(path, offset);
      } catch (err) {
        if ((await session.fs.stat(path)).type === "dir") throw fileUnavailable(`${arg}: Not a plain file.`);
        throw err;
      }
      try {
        const size = source.size ?? (await session.fs.stat(path)).size;
        await runTransfer(session, {
          announce: `Opening ${typeName(session)} mode data connection for ${virtualBasename(path)} (${size} bytes).`,
          label: path,
          async run(socket, signal) {
            await sendToClient(source, socket, session.type === "A", signal, throttleFor(session, "down"), session.config.transfers.zeroCopy);
            return "Transfer complete.";
          },
        });
      } finally {
        source.destroy();
      }
    },
  },
  {
    verb: "STOR",
    keepsRestOffset: true,
    help: "STOR <sp> pathname: upload a file (replacing it, or from the REST offset)",
    arg: "required",
    permission: "write",
    handler: (session, arg) => upload(session, session.resolve(arg), "replace"),
  },
  {
    verb: "APPE",
    keepsRestOffset: true,
    help: "APPE <sp> pathname: append to a file (creating it)",
    arg: "required",
    permission: "write",
    capability: "append",
    handler: (session, arg) => upload(session, session.resolve(arg), "append"),
  },
  {
    verb: "STOU",
    keepsRestOffset: true,
    help: "STOU [<sp> name]: upload to a new, unique file name",
    arg: "optional",
    permission: "write",
    async handler(session, arg) {
      // A name (ours: RFC 959's STOU takes none) may carry a directory: the unique name is made
      // there. An argument that names a directory (`sub/`, `..`, `/`) is where a `file` goes.
      const named = arg.trim() ? session.resolve(arg) : null;
      const intoDir = named !== null && (arg.endsWith("/") || (await session.fs.find(named))?.type === "dir");
      const [dir, base] = named === null ? [session.cwd, "file"] : intoDir ? [named, "file"] : [virtualDirname(named), virtualBasename(named)];
      const { path, release } = await uniqueName(session, dir, base);
      // RFC 1123 §4.1.2.9: the 150 reply names the file.
      await upload(session, path, "replace", `FILE: ${virtualBasename(path)}`, release);
    },
  },
  {
    verb: "ABOR",
    help: "ABOR: abort the transfer in progress",
    arg: "none",
    duringTransfer: true,
    async handler(session) {
      const transfer = session.transfer;
      if (!transfer) {
        session.setDataChannel(null);
        session.reply(Reply.DataOpenNoTransfer, "No transfer to abort.");
        return;
      }
      session.abortTransfer();
      await transfer.done; // the transfer answers 426 first (RFC 959 §4.1.3)
      session.reply(Reply.ClosingData, "Abort successful.");
    },
  },
];
