/**
 * edgeftp's native addon (native/, built by `npm install` through node-gyp): what Node does not
 * expose, such as zero-copy transfers (src/data/kernel-copy.ts), batched directory listings
 * (src/storage/directory-reader.ts) and descriptor-pinned paths (src/storage/pinned-paths.ts); the
 * modules that import {@link nativeAddon} are its users. It exists on Linux only and only where the
 * build succeeded; every user falls back to Node's own APIs without it.
 */
import { createRequire } from "node:module";
import { constants as osConstants } from "node:os";

function load(): object | null {
  if (process.platform !== "linux") return null;
  try {
    // dist/src/native.js → build/Release at the package root.
    return createRequire(import.meta.url)("../../build/Release/edgeftp.node") as object;
  } catch {
    return null;
  }
}

const addon = load();

/** The addon's exports, seen through the part a caller uses; null where it is not built. */
export function nativeAddon<Part extends object>(): Part | null {
  return addon as Part | null;
}

/** errno numbers → their names. */
const ERRNO_NAMES = new Map<number, string>(Object.entries(osConstants.errno).map(([name, value]) => [value, name]));

/** The name of an errno value the addon reported (`ECONNRESET`…). */
export function errnoName(errno: number): string {
  return ERRNO_NAMES.get(errno) ?? `E${errno}`;
}

/** An error shaped like Node's own system errors (`code`, `errno`, `syscall`) for an errno the addon reported. */
export function errnoError(errno: number, syscall: string): NodeJS.ErrnoException {
  const code = errnoName(errno);
  return Object.assign(new Error(`${syscall} failed: ${code}`), { code, errno, syscall });
}
