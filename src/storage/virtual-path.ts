/**
 * Virtual paths: the absolute, POSIX, root-relative paths a session works with and hands to a Storage.
 *
 * Only `/` separates segments. A backslash or a percent sign is an ordinary character of a name, so
 * `..\..\etc` and `%2e%2e` are single (odd) names that cannot climb out of the root; this is what keeps
 * the semantics identical whatever the server's own platform.
 */
import { StorageError } from "./types.js";

/**
 * C0 control characters and DEL, except TAB: never valid in a name, and CR/LF would break replies.
 * NUL is also what the line reader makes of bytes that are not UTF-8 (line-reader.ts). TAB is an
 * ordinary character of a name (vsftpd stores it; refusing it stops a whole `lftp mirror -R`).
 */
const INVALID_CHARACTER = /[\u0000-\u0008\u000a-\u001f\u007f]/;

/**
 * Resolves an FTP path argument against the session's virtual working directory.
 *
 * @param cwd - The current virtual directory, itself absolute and normalised (`/` or `/a/b`).
 * @param arg - The client's argument: absolute (`/x`) or relative to `cwd`.
 * @returns An absolute normalised path: `..` clamped at `/`, `.` and empty segments dropped,
 *   no trailing slash except for the root itself.
 * @throws StorageError `invalid-path` when `arg` contains a control character other than TAB, or DEL.
 */
export function resolveVirtualPath(cwd: string, arg: string): string {
  if (INVALID_CHARACTER.test(arg)) {
    throw new StorageError("invalid-path", "Invalid character in path");
  }
  const combined = arg.startsWith("/") ? arg : `${cwd}/${arg}`;
  const segments: string[] = [];
  for (const segment of combined.split("/")) {
    if (segment === "" || segment === ".") continue;
    // Popping an empty array is a no-op, which is exactly the clamp at the root.
    if (segment === "..") segments.pop();
    else segments.push(segment);
  }
  return `/${segments.join("/")}`;
}

/**
 * The last segment of a normalised virtual path; `/` for the root.
 */
export function virtualBasename(p: string): string {
  if (p === "/") return "/";
  return p.slice(p.lastIndexOf("/") + 1);
}

/**
 * The parent of a normalised virtual path; the root is its own parent.
 */
export function virtualDirname(p: string): string {
  const cut = p.lastIndexOf("/");
  return cut <= 0 ? "/" : p.slice(0, cut);
}

/**
 * Appends one name to a normalised virtual directory path.
 *
 * @param dir - A normalised virtual directory path.
 * @param name - A single segment (as produced by a listing); it is not re-normalised.
 */
export function joinVirtual(dir: string, name: string): string {
  return dir === "/" ? `/${name}` : `${dir}/${name}`;
}
