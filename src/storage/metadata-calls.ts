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

const openAsync = promisify(fs.open);
const fstatAsync = promisify(fs.fstat);
const closeAsync = promisify(fs.close);
const fchmodAsync = promisify(fs.fchmod);

export type MetadataCallsOptions = SyncPacingOptions;

/**
 * Some calls cost what the file holds, not what the medium answers: freeing a file's blocks (unlink,
 * a rename over a file, a truncating open) and, on ext4, writing back a replaced or truncated file's
 * new data (rename over a file, the close after a truncating rewrite: auto_da_alloc). Measured on
 * this VM's ext4: ~0.05 ms at 4 KiB, 0.2-4 ms at 1 MiB, 80-240 ms at 512 MiB. Pacing would only
 * notice after the event loop had been blocked, and again at every large file, so with more bytes
 * than this at stake such a call always goes to the thread pool.
 */
export const LARGE_FILE_BYTES = 128 * 1024;

/** Bytes at stake that are not known (a partial upload, a file reached through a link): counted as large. */
export const SIZE_UNKNOWN = Number.POSITIVE_INFINITY;

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

  /**
   * One call: `now` on the event loop (timed) while the medium answers fast, or `onPool` on the
   * thread pool; always on the pool with more than {@link LARGE_FILE_BYTES} at stake.
   */
  async call<T>(now: () => T, onPool: () => Promise<T>, bytesAtStake = 0): Promise<T> {
    return bytesAtStake <= LARGE_FILE_BYTES && this.pacing.takeSynchronous() ? this.pacing.timed(now) : onPool();
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

  /**
   * open(2) with `flags` ("r", "w", "a", "r+"…): a file descriptor, which the caller must close (a
   * stream's autoClose does). `truncating`: the size of the file a "w" open empties.
   */
  open(p: string, flags: string, truncating = 0): Promise<number> {
    return this.call(() => fs.openSync(p, flags), () => openAsync(p, flags), truncating);
  }

  /** fstat(2) of an open file descriptor. */
  fstat(fd: number): Promise<Stats> {
    return this.call(() => fs.fstatSync(fd), () => fstatAsync(fd));
  }

  /** fchmod(2) of an open file descriptor. */
  fchmod(fd: number, mode: number): Promise<void> {
    return this.call(() => fs.fchmodSync(fd, mode), () => fchmodAsync(fd, mode));
  }

  /**
   * close(2) of a file descriptor this caller owns. `atStake`: the size of the file when this may be
   * its last reference after an unlink or a replace (the close frees it), or the bytes written into a
   * file a truncating open emptied (ext4 writes them back in the close).
   */
  close(fd: number, atStake = 0): Promise<void> {
    return this.call(() => fs.closeSync(fd), () => closeAsync(fd), atStake);
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

  /** unlink(2) of a file of `size` bytes. */
  unlink(p: string, size: number): Promise<void> {
    return this.call(() => fs.unlinkSync(p), () => pool.unlink(p), size);
  }

  /** rename(2); `replacing`: the bytes of the file it replaces plus those of the file it moves (0 for a new name). */
  rename(from: string, to: string, replacing: number): Promise<void> {
    return this.call(() => fs.renameSync(from, to), () => pool.rename(from, to), replacing);
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
