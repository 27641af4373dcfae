/**
 * The metadata system calls of the local storage (realpath, lstat, stat, recursive mkdir, and the
 * open, fstat, fchmod, access, rename and close around a transfer), made synchronously while the medium answers fast, and
 * on libuv's thread pool otherwise (see SyncPacing for how and why): one upload of a small file needs
 * half a dozen of them, each ~2 µs synchronously on cached metadata against ~25-30 µs of CPU through
 * the pool. Listings pace their batches the same way (LocalStorage.list).
 * Results and errors are the same either way, except as documented per method.
 */
import { accessSync, close, closeSync, fchmod, fchmodSync, fstat, fstatSync, lstatSync, mkdirSync, open, openSync, realpathSync, renameSync, statSync, type Stats } from "node:fs";
import { access, lstat, mkdir, realpath, rename, stat } from "node:fs/promises";
import { promisify } from "node:util";
import { SyncPacing, type SyncPacingOptions } from "../sync-pacing.js";

const openAsync = promisify(open);
const fstatAsync = promisify(fstat);
const closeAsync = promisify(close);
const fchmodAsync = promisify(fchmod);

export type MetadataCallsOptions = SyncPacingOptions;

function isNoEntry(err: unknown): boolean {
  return (err as NodeJS.ErrnoException | null)?.code === "ENOENT";
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

  private takeSynchronous(): boolean {
    return this.pacing.takeSynchronous();
  }

  private timed<T>(call: () => T): T {
    return this.pacing.timed(call);
  }

  /** realpath(3): the canonical path of an existing `p`; throws as fs does (ENOENT for a missing one). */
  async realpath(p: string): Promise<string> {
    return this.takeSynchronous() ? this.timed(() => realpathSync.native(p)) : realpath(p);
  }

  /** lstat(2), or null when nothing is there (ENOENT only: ENOTDIR and the rest throw). */
  async lstat(p: string): Promise<Stats | null> {
    if (this.takeSynchronous()) return this.timed(() => lstatSync(p, { throwIfNoEntry: false })) ?? null;
    return lstat(p).catch((err: unknown) => {
      if (isNoEntry(err)) return null;
      throw err;
    });
  }

  /** stat(2) (symlinks followed), or null when nothing is there (ENOENT only). */
  async stat(p: string): Promise<Stats | null> {
    if (this.takeSynchronous()) return this.timed(() => statSync(p, { throwIfNoEntry: false })) ?? null;
    return stat(p).catch((err: unknown) => {
      if (isNoEntry(err)) return null;
      throw err;
    });
  }

  /** open(2) with `flags` ("r", "w", "a", "r+"…): a file descriptor, which the caller must close (a stream's autoClose does). */
  async open(p: string, flags: string): Promise<number> {
    return this.takeSynchronous() ? this.timed(() => openSync(p, flags)) : openAsync(p, flags);
  }

  /** fstat(2) of an open file descriptor. */
  async fstat(fd: number): Promise<Stats> {
    return this.takeSynchronous() ? this.timed(() => fstatSync(fd)) : fstatAsync(fd);
  }

  /** close(2) of a file descriptor this caller owns. */
  async close(fd: number): Promise<void> {
    if (this.takeSynchronous()) this.timed(() => closeSync(fd));
    else await closeAsync(fd);
  }

  /** fchmod(2) of an open file descriptor. */
  async fchmod(fd: number, mode: number): Promise<void> {
    if (this.takeSynchronous()) this.timed(() => fchmodSync(fd, mode));
    else await fchmodAsync(fd, mode);
  }

  /** access(2): throws (EACCES, EROFS…) unless `p` allows `mode` (fs.constants.W_OK…). */
  async access(p: string, mode: number): Promise<void> {
    if (this.takeSynchronous()) this.timed(() => accessSync(p, mode));
    else await access(p, mode);
  }

  /** rename(2). */
  async rename(from: string, to: string): Promise<void> {
    if (this.takeSynchronous()) this.timed(() => renameSync(from, to));
    else await rename(from, to);
  }

  /** `mkdir -p`: creates `p` and its missing parents; succeeds when it is already a directory. */
  async mkdirRecursive(p: string): Promise<void> {
    if (this.takeSynchronous()) this.timed(() => mkdirSync(p, { recursive: true }));
    else await mkdir(p, { recursive: true });
  }
}
