/**
 * The paths commands are changing on this node: an upload's target for the whole upload, a DELE's,
 * RMD's or rename's names for the moment the command takes. A command whose paths overlap a claim
 * (the same path, one above it or one below it) is refused with 450 (file busy, RFC 959 §4.2) and
 * may be retried.
 *
 * Let through, two such commands would interleave: an upload written in place is unlinked by the
 * other's atomic replace, so its 226 reports bytes no longer under the name; renaming or removing a
 * directory above an upload moves the file out from under it; and each command's quota delta (the
 * path's state after against before) would count the other's change too, a DELE and an RNTO onto
 * the same name both subtracting the one file, so that the tracked usage drifts from the disk's and
 * the quota can be passed.
 *
 * Claims are keyed by where the files are (Storage.location + the virtual path), not by account: two
 * accounts whose homes are the same directory, or one inside the other, share their claims.
 * Commands on other nodes sharing the storage are not seen.
 */
import { FtpError } from "../protocol/errors.js";
import { Reply } from "../protocol/replies.js";
import type { Session } from "./session.js";

/** The keys of the directories above `key`, nearest first (`/a/b/c` → `/a/b`, `/a`). */
function* above(key: string): Generator<string> {
  for (let at = key.lastIndexOf("/"); at > 0; at = key.lastIndexOf("/", at - 1)) yield key.slice(0, at);
}

class Claims {
  /** Claimed keys, with what claimed them (for the 450's text). */
  private readonly held = new Map<string, string>();
  /** Per key above a claim: how many claims lie below it. */
  private readonly below = new Map<string, number>();

  /** What overlaps `key`, or null; `below: false` leaves out the claims below it. */
  conflict(key: string, below = true): string | null {
    const same = this.held.get(key);
    if (same !== undefined) return same;
    if (below && this.below.has(key)) return "a change below it";
    for (const dir of above(key)) {
      const what = this.held.get(dir);
      if (what !== undefined) return what;
    }
    return null;
  }

  add(key: string, what: string): void {
    this.held.set(key, what);
    for (const dir of above(key)) this.below.set(dir, (this.below.get(dir) ?? 0) + 1);
  }

  delete(key: string): void {
    this.held.delete(key);
    for (const dir of above(key)) {
      const count = this.below.get(dir)! - 1;
      if (count === 0) this.below.delete(dir);
      else this.below.set(dir, count);
    }
  }
}

/** Per node (its services). */
const nodes = new WeakMap<object, Claims>();

function claimsOf(session: Session): Claims {
  let claims = nodes.get(session.services);
  if (!claims) nodes.set(session.services, (claims = new Claims()));
  return claims;
}

/** The key of a resolved virtual path: where it is, whichever account names it. */
const keyOf = (session: Session, path: string) => session.fs.location.replace(/\/+$/, "") + (path === "/" ? "" : path);

/**
 * Claims `paths` (resolved virtual paths) for a command described by `what` ("an upload to /a"),
 * or throws 450 when one of them overlaps a claim; returns the release, to call once the change is
 * done, on every path.
 */
export function claimPaths(session: Session, what: string, ...paths: string[]): () => void {
  return claim(session, what, paths, true);
}

/**
 * {@link claimPaths} for a creation (MKD): a claim below the name is no conflict, since an entry below
 * it means the name exists already and the creation fails without changing anything.
 */
export function claimCreation(session: Session, what: string, path: string): () => void {
  return claim(session, what, [path], false);
}

function claim(session: Session, what: string, paths: string[], below: boolean): () => void {
  const claims = claimsOf(session);
  for (const path of paths) {
    const other = claims.conflict(keyOf(session, path), below);
    if (other !== null) throw fileBusy(path, other);
  }
  const keys = [...new Set(paths.map((path) => keyOf(session, path)))];
  for (const key of keys) claims.add(key, what);
  let released = false;
  return () => {
    if (released) return;
    released = true;
    for (const key of keys) claims.delete(key);
  };
}

/** The 450 for a command on `path` while `change` ("an upload to /a") is under way there. */
export function fileBusy(path: string, change: string): FtpError {
  return new FtpError(Reply.FileUnavailableBusy, `${path}: File busy: ${change} is in progress.`);
}

/** Runs `action` under a claim (the release {@link claimPaths} or {@link claimCreation} returned), released on every path. */
export async function withClaim<T>(release: () => void, action: () => Promise<T>): Promise<T> {
  try {
    return await action();
  } finally {
    release();
  }
}

/** Whether `path` overlaps a claim (STOU skips such names). */
export function isClaimed(session: Session, path: string): boolean {
  return claimsOf(session).conflict(keyOf(session, path)) !== null;
}

/** What is changing `path` itself or a directory above it (a removal, a rename), or null. */
export function changeAtOrAbove(session: Session, path: string): string | null {
  return claimsOf(session).conflict(keyOf(session, path), false);
}
