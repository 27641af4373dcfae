/**
 * The metadata system calls of the local storage (realpath, lstat, stat, mkdir, rmdir, unlink,
 * rename, chmod, utimes, and the open, fstat, fchmod, access and close around a transfer), made
 * synchronously while the medium answers fast, and on libuv's thread pool otherwise (see SyncPacing
 * for how and why): one upload of a small file needs half a dozen of them, each ~2 µs synchronously
 * on cached metadata against ~25-30 µs of CPU, and as much latency, through the pool. Listings pace
 * their batches the same way (LocalStorage.list).
 * Results and errors are the same either way, except as documented per method.
 */
import * as fs from "node:fs";
import type { Stats } from "node:fs";
import * as pool from "node:fs/promises";
import { promisify } from "node:util";
import { SyncPacing, type SyncPacingOptions } from "../sync-pacing.js";
import { openNoSymlinks } from "./pinned-paths.js";

const openAsync = promisify(fs.open);
const fstatAsync = promisify(fs.fstat);
const closeAsync = promisify(fs.close);
const fchmodAsync = promisify(fs.fchmod);
const fchownAsync = promisify(fs.fchown);

export type MetadataCallsOptions = SyncPacingOptions;

/**
 * Some calls cost what the file holds, not what the medium answers: freeing a file's blocks (unlink,
 * a rename over a file, a truncating open, the close of the last descriptor of an unlinked file) and,
 * on ext4, writing back new data (a rename over a file, the first close after a truncating open:
 * auto_da_alloc). Measured on this VM's ext4: ~0.05 ms at 4 KiB, 0.2-4 ms at 1 MiB, 80-350 ms at
 * 0.5-1 GiB. Pacing would only notice after the event loop had been blocked, and again at every large
 * file, so such a call is weighed just before it is made (an lstat or fstat, ~1 µs: a size read any
 * earlier can be stale, another session may have appended to the file or deleted it since) and goes
 * to the thread pool with more than this many bytes at stake.
 */
export const LARGE_FILE_BYTES = 128 * 1024;

/** A regular file's size, 0 for anything else. */
function fileBytes(st: Stats | undefined): number {
  return st?.isFile() ? st.size : 0;
}

/** What `weigh` finds at stake; 0 when it fails (the call itself then reports the error). */
function weighed(weigh: () => number): number {
  try {
    return weigh();
  } catch {
    return 0;
  }
}

function nullIfNoEntry(err: unknown): null {
  if ((err as NodeJS.ErrnoException | null)?.code === "ENOENT") return null;
  throw err;
}

export class MetadataCalls {
  private readonly pacing: SyncPacing;

  constructor(options: MetadataCallsOptions = {}) {
    this.pacing = new SyncPacing(options);
  }

  /** Whether the next call runs synchronously (false while backing off after a slow call). */
  get synchronous(): boolean {
    return this.pacing.synchronous;
  }

  /** Calls sent to the thread pool so far (a slow medium, or a large file at stake). */
  get callsOnPool(): number {
    return this.onPool;
  }

  private onPool = 0;

  /**
   * One call: `now` on the event loop (timed) while the medium answers fast, or `onPool` on the
   * thread pool; also on the pool when `weigh` (run just before, on the event loop) finds more than
   * {@link LARGE_FILE_BYTES} at stake. A failing `weigh` counts as nothing at stake: the call itself
   * reports the error.
   */
  async call<T>(now: () => T, onPool: () => Promise<T>, weigh?: () => number): Promise<T> {
    if (this.pacing.takeSynchronous() && !(weigh && this.pacing.timed(() => weighed(weigh)) > LARGE_FILE_BYTES)) return this.pacing.timed(now);
    this.onPool++;
    return onPool();
  }

  /** realpath(3): the canonical path of an existing `p`; throws as fs does (ENOENT for a missing one). */
  realpath(p: string): Promise<string> {
    return this.call(() => fs.realpathSync.native(p), () => pool.realpath(p));
  }

  /** lstat(2), or null when nothing is there (ENOENT only: ENOTDIR and the rest throw). */
  lstat(p: string): Promise<Stats | null> {
    return this.call(() => fs.lstatSync(p, { throwIfNoEntry: false }) ?? null, () => pool.lstat(p).catch(nullIfNoEntry));
  }

  /** stat(2) (symlinks followed), or null when nothing is there (ENOENT only). */
  stat(p: string): Promise<Stats | null> {
    return this.call(() => fs.statSync(p, { throwIfNoEntry: false }) ?? null, () => pool.stat(p).catch(nullIfNoEntry));
  }

  /** open(2) with `flags` ("r", "w", "a", "r+"…): a file descriptor, which the caller must close (a stream's autoClose does). */
  open(p: string, flags: string): Promise<number> {
    // "w" truncates: what is there now is freed.
    const weigh = flags.startsWith("w") ? () => fileBytes(fs.statSync(p, { throwIfNoEntry: false })) : undefined;
    return this.call(() => fs.openSync(p, flags), () => openAsync(p, flags), weigh);
  }

  /**
   * open(2) of `p` with numeric `flags` (O_PATH references, O_NOFOLLOW…); a truncating open (O_TRUNC)
   * is weighed as {@link open}'s "w".
   */
  openWith(p: string, flags: number): Promise<number> {
    const weigh = flags & fs.constants.O_TRUNC ? () => fileBytes(fs.statSync(p, { throwIfNoEntry: false })) : undefined;
    return this.call(() => fs.openSync(p, flags), () => openAsync(p, flags), weigh);
  }

  /** {@link openNoSymlinks} (see pinned-paths.ts); null also when the call would go to the pool (the caller's own way goes there). */
  openNoSymlinks(p: string, flags: number): Promise<number | null> {
    return this.call(() => openNoSymlinks(p, flags), async () => null);
  }

  /** fstat(2) of an open file descriptor. */
  fstat(fd: number): Promise<Stats> {
    return this.call(() => fs.fstatSync(fd), () => fstatAsync(fd));
  }

  /** fchmod(2) of an open file descriptor. */
  fchmod(fd: number, mode: number): Promise<void> {
    return this.call(() => fs.fchmodSync(fd, mode), () => fchmodAsync(fd, mode));
  }

  /** fchown(2) of an open file descriptor. */
  fchown(fd: number, uid: number, gid: number): Promise<void> {
    return this.call(() => fs.fchownSync(fd, uid, gid), () => fchownAsync(fd, uid, gid));
  }

  /**
   * close(2) of a file descriptor this caller owns. A large file's goes to the pool: it may be the
   * last descriptor of a file unlinked or replaced meanwhile, or the first close after a truncating
   * rewrite, by this session or another.
   */
  close(fd: number): Promise<void> {
    return this.call(() => fs.closeSync(fd), () => closeAsync(fd), () => fileBytes(fs.fstatSync(fd)));
  }

  /** access(2): throws (EACCES, EROFS…) unless `p` allows `mode` (fs.constants.W_OK…). */
  access(p: string, mode: number): Promise<void> {
    return this.call(() => fs.accessSync(p, mode), () => pool.access(p, mode));
  }

  /** mkdir(2); with `recursive`, `mkdir -p` (creates missing parents, succeeds on a directory). */
  async mkdir(p: string, recursive = false): Promise<void> {
    await this.call(() => fs.mkdirSync(p, { recursive }), () => pool.mkdir(p, { recursive }));
  }

  /** rmdir(2). */
  rmdir(p: string): Promise<void> {
    return this.call(() => fs.rmdirSync(p), () => pool.rmdir(p));
  }

  /** unlink(2). */
  unlink(p: string): Promise<void> {
    const weigh = () => {
      const st = fs.lstatSync(p, { throwIfNoEntry: false });
      return st && st.nlink > 1 ? 0 : fileBytes(st); // another link keeps the blocks
    };
    return this.call(() => fs.unlinkSync(p), () => pool.unlink(p), weigh);
  }

  /** rename(2). Over a file, it frees the replaced one and (ext4) writes the moved one back. */
  rename(from: string, to: string): Promise<void> {
    const weigh = () => {
      const replaced = fileBytes(fs.lstatSync(to, { throwIfNoEntry: false }));
      return replaced > 0 ? replaced + fileBytes(fs.lstatSync(from, { throwIfNoEntry: false })) : 0;
    };
    return this.call(() => fs.renameSync(from, to), () => pool.rename(from, to), weigh);
  }

  /** chmod(2) (symlinks followed). */
  chmod(p: string, mode: number): Promise<void> {
    return this.call(() => fs.chmodSync(p, mode), () => pool.chmod(p, mode));
  }

  /** utimes(2) (symlinks followed). */
  utimes(p: string, atime: Date, mtime: Date): Promise<void> {
    return this.call(() => fs.utimesSync(p, atime, mtime), () => pool.utimes(p, atime, mtime));
  }
}
