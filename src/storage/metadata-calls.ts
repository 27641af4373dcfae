/**
 * The metadata system calls of the local storage (realpath, lstat, stat, recursive mkdir, and the
 * open and fstat before a transfer), made synchronously while the medium answers fast, and on
 * libuv's thread pool otherwise.
 *
 * Why: with the metadata in the page cache (the normal case on a busy edge), a synchronous lstat
 * costs ~2 µs of the event loop, and the same call through the thread pool ~25-30 µs of CPU (a
 * promise, a request object, a hand-off to a pool thread and back), while one upload of a small
 * file needs half a dozen of them. Why not always: on a slow or remote medium a synchronous call
 * blocks every session of the node. So every synchronous call is timed, and one that takes longer
 * than `slowCallMs` sends the next call to the thread pool, then tries synchronously again; each
 * further slow try in a row doubles the number of calls sent to the pool (1, 2, 4 … up to
 * `maxPoolCalls`), and a fast one ends the backoff. Counted in calls rather than time: on a busy
 * machine a fast call now and then looks slow because the process was descheduled during it, and
 * that must cost a call or two on the pool, not seconds of them; a slow disk, on the other hand,
 * soon ends up with nearly every call on the pool and one timed try in `maxPoolCalls`. Listings
 * pace their batches the same way (LocalStorage.list).
 * Results and errors are the same either way, except as documented per method.
 */
import { close, closeSync, fstat, fstatSync, lstatSync, mkdirSync, open, openSync, realpathSync, statSync, type Stats } from "node:fs";
import { lstat, mkdir, realpath, stat } from "node:fs/promises";
import { promisify } from "node:util";

const openAsync = promisify(open);
const fstatAsync = promisify(fstat);
const closeAsync = promisify(close);

export interface MetadataCallsOptions {
  /** A synchronous call slower than this (ms) sends the next calls to the thread pool. */
  slowCallMs?: number;
  /** The most calls sent to the thread pool before the next synchronous try. */
  maxPoolCalls?: number;
  /** Never call synchronously (a medium known to be slow or remote; tests of the pool path). */
  threadPoolOnly?: boolean;
  /** Milliseconds, for timing the calls (tests); default performance.now. */
  clock?: () => number;
}

/** Calls are ~2-10 µs on cached metadata; a millisecond means the medium itself is being waited for. */
const DEFAULT_SLOW_CALL_MS = 1;
const DEFAULT_MAX_POOL_CALLS = 1024;

function isNoEntry(err: unknown): boolean {
  return (err as NodeJS.ErrnoException | null)?.code === "ENOENT";
}

export class MetadataCalls {
  private readonly slowCallMs: number;
  private readonly maxPoolCalls: number;
  private readonly threadPoolOnly: boolean;
  private readonly clock: () => number;
  /** Calls still to send to the thread pool before the next synchronous try. */
  private poolCalls = 0;
  /** How many calls the next slow synchronous one sends to the pool. */
  private backoff = 1;

  constructor(options: MetadataCallsOptions = {}) {
    this.slowCallMs = options.slowCallMs ?? DEFAULT_SLOW_CALL_MS;
    this.maxPoolCalls = options.maxPoolCalls ?? DEFAULT_MAX_POOL_CALLS;
    this.threadPoolOnly = options.threadPoolOnly === true;
    this.clock = options.clock ?? (() => performance.now());
  }

  /** Whether the next call runs synchronously (false while backing off after a slow call). */
  get synchronous(): boolean {
    return !this.threadPoolOnly && this.poolCalls === 0;
  }

  /** Decides for one call: synchronously, or (counting it) on the pool. */
  private takeSynchronous(): boolean {
    if (this.synchronous) return true;
    if (this.poolCalls > 0) this.poolCalls--;
    return false;
  }

  /** Runs a synchronous call, timing it (also when it throws). */
  private timed<T>(call: () => T): T {
    const started = this.clock();
    try {
      return call();
    } finally {
      if (this.clock() - started > this.slowCallMs) {
        this.poolCalls = this.backoff;
        this.backoff = Math.min(this.backoff * 2, this.maxPoolCalls);
      } else {
        this.backoff = 1;
      }
    }
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

  /** `mkdir -p`: creates `p` and its missing parents; succeeds when it is already a directory. */
  async mkdirRecursive(p: string): Promise<void> {
    if (this.takeSynchronous()) this.timed(() => mkdirSync(p, { recursive: true }));
    else await mkdir(p, { recursive: true });
  }
}
