/**
 * Check, then use, without the race in between (Linux). LocalStorage checks that a path leads inside
 * the account's root, then hands the path to a system call, which resolves it again: a rename made
 * in between by another session (RNFR/RNTO of a directory, or of a symlink an operator left in the
 * tree; a relative link that led inside can lead outside once moved) could send that second
 * resolution outside the root. So what the check found is opened (O_PATH: a reference to the object,
 * no access to its content, nothing read), the kernel says where the opened object is (the link
 * /proc/self/fd/N), and the call then goes through /proc/self/fd/N: to the object itself, or to a
 * name inside the opened directory. No rename can redirect that.
 */
import { constants, existsSync, readlinkSync } from "node:fs";
import { constants as osConstants } from "node:os";
import { errnoError, nativeAddon } from "../native.js";

const addon = nativeAddon<{ openNoSymlinks?(path: string, flags: number): number }>();

/** Whether paths are pinned here (Linux with /proc); elsewhere a checked path is used as it is. */
export const pinning = process.platform === "linux" && existsSync("/proc/self/fd");

/** open(2)'s O_PATH: the generic Linux value, which every architecture Node supports uses. */
const O_PATH = 0o10000000;

/** Flags to open a path as a reference only (a directory's, with `directory`: ENOTDIR otherwise). */
export function referenceFlags(directory: boolean): number {
  return O_PATH | (directory ? constants.O_DIRECTORY : 0);
}

/** The path by which a call reaches the object open at `fd`, or with `name`, that entry of the directory open at `fd`. */
export function throughDescriptor(fd: number, name?: string): string {
  return name === undefined ? `/proc/self/fd/${fd}` : `/proc/self/fd/${fd}/${name}`;
}

/** Where the object open at `fd` is now, as the kernel says (" (deleted)" appended once it is unlinked). */
export function placeOf(fd: number): string {
  return readlinkSync(throughDescriptor(fd));
}

const { ELOOP, ENOSYS } = osConstants.errno;
let withoutSymlinks = pinning && typeof addon?.openNoSymlinks === "function";

/**
 * `path` (absolute, below a real root, no "..") opened by the kernel without following any symlink
 * on the way (openat2 RESOLVE_NO_SYMLINKS): then it is where its name says, and no readlink is
 * needed. Null where a symlink is on the way (the caller pins and asks), or where the kernel or the
 * addon cannot; throws fs's error (ENOENT…) otherwise.
 */
export function openNoSymlinks(path: string, flags: number): number | null {
  if (!withoutSymlinks) return null;
  const fd = addon!.openNoSymlinks!(path, flags);
  if (fd >= 0) return fd;
  if (-fd === ENOSYS) withoutSymlinks = false;
  if (-fd === ELOOP || -fd === ENOSYS) return null;
  throw errnoError(-fd, "open");
}
