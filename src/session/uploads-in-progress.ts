/**
 * The paths with an upload in progress on this node, per account. Another upload to such a path,
 * or a DELE or rename of it or of a directory above it, is refused with 450 (file busy, RFC 959
 * §4.2) until the upload ends.
 * Let through, the two would interleave: an upload written in place is unlinked by the other's
 * atomic replace, so its 226 reports bytes that are no longer under the name, and each command's
 * quota delta (the path's state after against before) counts the other's partial file, so that the
 * tracked usage drifts below the disk's. Uploads on other nodes sharing the storage are not seen.
 */
import { FtpError } from "../protocol/errors.js";
import { Reply } from "../protocol/replies.js";
import type { Session } from "./session.js";

/** Per node (its services): per account with uploads in progress, their paths. */
const registries = new WeakMap<object, Map<string, Set<string>>>();

function accountsOf(session: Session): Map<string, Set<string>> {
  let accounts = registries.get(session.services);
  if (!accounts) registries.set(session.services, (accounts = new Map()));
  return accounts;
}

const accountOf = (session: Session) => session.account?.name ?? "";

/**
 * Refuses with 450 while an upload to `path` (a resolved virtual path), or to anything below it, is
 * in progress: renaming or removing a directory under an upload would move the file out from under
 * it (the upload then counts nothing against the quota, or its atomic replace fails).
 */
export function refuseIfUploading(session: Session, path: string): void {
  const below = path === "/" ? "/" : `${path}/`;
  for (const uploading of accountsOf(session).get(accountOf(session)) ?? []) {
    if (uploading === path || uploading.startsWith(below)) {
      throw new FtpError(Reply.FileUnavailableBusy, `${path}: File busy: an upload to ${uploading} is in progress.`);
    }
  }
}

/** Marks `path` as being uploaded (450 if it already is); returns the release, to call once the upload ended. */
export function claimUpload(session: Session, path: string): () => void {
  const accounts = accountsOf(session);
  const name = accountOf(session);
  let paths = accounts.get(name);
  if (paths?.has(path)) throw new FtpError(Reply.FileUnavailableBusy, `${path}: File busy: an upload to it is in progress.`);
  if (!paths) accounts.set(name, (paths = new Set()));
  paths.add(path);
  const claimed = paths;
  return () => {
    claimed.delete(path);
    if (claimed.size === 0 && accounts.get(name) === claimed) accounts.delete(name);
  };
}
