/**
 * The paths with an upload in progress on this node, per account. Another upload to such a path,
 * or a DELE or rename of it, is refused with 450 (file busy, RFC 959 §4.2) until the upload ends.
 * Let through, the two would interleave: an upload written in place is unlinked by the other's
 * atomic replace, so its 226 reports bytes that are no longer under the name, and each command's
 * quota delta (the path's state after against before) counts the other's partial file, so that the
 * tracked usage drifts below the disk's. Uploads on other nodes sharing the storage are not seen.
 */
import { FtpError } from "../protocol/errors.js";
import { Reply } from "../protocol/replies.js";
import type { Session } from "./session.js";

/** Per node (its services): account and path, NUL-separated (no name or path holds a NUL). */
const registries = new WeakMap<object, Set<string>>();

function registryOf(session: Session): Set<string> {
  let paths = registries.get(session.services);
  if (!paths) registries.set(session.services, (paths = new Set()));
  return paths;
}

const keyOf = (session: Session, path: string) => `${session.account?.name ?? ""}\u0000${path}`;

/** Refuses with 450 while an upload to `path` (a resolved virtual path) is in progress. */
export function refuseIfUploading(session: Session, path: string): void {
  if (registryOf(session).has(keyOf(session, path))) {
    throw new FtpError(Reply.FileUnavailableBusy, `${path}: File busy: an upload to it is in progress.`);
  }
}

/** Marks `path` as being uploaded (450 if it already is); returns the release, to call once the upload ended. */
export function claimUpload(session: Session, path: string): () => void {
  refuseIfUploading(session, path);
  const paths = registryOf(session);
  const key = keyOf(session, path);
  paths.add(key);
  return () => paths.delete(key);
}
