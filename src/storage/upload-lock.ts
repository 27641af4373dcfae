/**
 * Which temporary upload files are still being written, across processes and nodes sharing the
 * storage. The writer takes an exclusive flock(2) on its temporary file as soon as it has created
 * it, and holds it (on a duplicate of the descriptor: the writing closes its own) until the rename;
 * the leftover cleanup removes only files it can lock itself. The kernel drops a dead process's
 * locks, so what a killed node left is removed, while an upload in progress on another node is left
 * alone (flock reaches other hosts on NFS, where Linux emulates it with POSIX locks). Without the
 * native addon nothing is locked, and the cleanup spares only this process's own uploads.
 */
import { constants } from "node:fs";
import { open } from "node:fs/promises";
import { constants as osConstants } from "node:os";
import { nativeAddon } from "../native.js";

const addon = nativeAddon<{ lockExclusive?(fd: number): number; duplicate?(fd: number): number }>();
const available = typeof addon?.lockExclusive === "function" && typeof addon.duplicate === "function";

/**
 * Locks the temporary file just created on `fd`. Returns a descriptor that holds the lock until it
 * is closed, whatever becomes of `fd`; null where the lock could not be taken (no addon, a file
 * system without locks, no descriptor to spare): the upload goes on unprotected, as without a lock.
 */
export function holdUploadLock(fd: number): number | null {
  if (!available || addon!.lockExclusive!(fd) !== 0) return null;
  const holder = addon!.duplicate!(fd);
  return holder >= 0 ? holder : null;
}

/**
 * Whether another open file may hold the upload lock on `file`: it does, or `file` cannot be opened
 * to tell. A temporary file keeps the mode of the file it replaces, which may deny reading but not
 * writing (the replace checked it), and flock takes either. False where locks are not available,
 * or `file` is gone.
 */
export async function lockedByAnUpload(file: Buffer): Promise<boolean> {
  if (!available) return false;
  let handle;
  try {
    handle = await openToLock(file, constants.O_RDONLY).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== "EACCES") throw err;
      return openToLock(file, constants.O_WRONLY);
    });
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== "ENOENT";
  }
  try {
    return addon!.lockExclusive!(handle.fd) === osConstants.errno.EWOULDBLOCK;
  } finally {
    await handle.close();
  }
}

function openToLock(file: Buffer, access: number) {
  return open(file, access | constants.O_NOFOLLOW | constants.O_NONBLOCK);
}
