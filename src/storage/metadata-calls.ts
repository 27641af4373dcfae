/**
 * The metadata system calls of the local storage (realpath, lstat, stat, recursive mkdir), made
 * synchronously while the medium answers fast, and on libuv's thread pool otherwise.
 *
 * Why: with the metadata in the page cache (the normal case on a busy edge), a synchronous lstat
 * costs ~2 µs of the event loop, and the same call through the thread pool ~25-30 µs of CPU (a
 * promise, a request object, a hand-off to a pool thread and back), while one upload of a small
 * file needs half a dozen of them. Why not always: on a slow or remote medium a synchronous call
 * blocks every session of the node. So every synchronous call is timed, and one that takes longer
 * than `slowCallMs` sends the calls to the thread pool for `backoffMs` before they are tried
 * synchronously again. Listings make the same trade per batch of entries (LocalStorage.list).
 * Results and errors are the same either way, except as documented per method.
 */
import { lstatSync, mkdirSync, realpathSync, statSync, type Stats } from "node:fs";
import { lstat, mkdir, realpath, stat } from "node:fs/promises";

export interface MetadataCallsOptions {
  /** A synchronous call slower than this (ms) sends the calls to the thread pool for a while. */
  slowCallMs?: number;
  /** How long (ms) calls stay on the thread pool after a slow one. */
  backoffMs?: number;
  /** Never call synchronously (a medium known to be slow or remote; tests of the pool path). */
  threadPoolOnly?: boolean;
}

/** Calls are ~2-10 µs on cached metadata; a millisecond means the medium itself is being waited for. */
const DEFAULT_SLOW_CALL_MS = 1;
const DEFAULT_BACKOFF_MS = 10_000;

function isNoEntry(err: unknown): boolean {
  return (err as NodeJS.ErrnoException | null)?.code === "ENOENT";
}

export class MetadataCalls {
  private readonly slowCallMs: number;
  private readonly backoffMs: number;
  /** performance.now() until which calls go to the thread pool; Infinity: always. */
  private poolUntil: number;

  constructor(options: MetadataCallsOptions = {}) {
    this.slowCallMs = options.slowCallMs ?? DEFAULT_SLOW_CALL_MS;
    this.backoffMs = options.backoffMs ?? DEFAULT_BACKOFF_MS;
    this.poolUntil = options.threadPoolOnly ? Infinity : 0;
  }

  /** Whether the next call runs synchronously (false while backing off after a slow call). */
  get synchronous(): boolean {
    return this.poolUntil === 0 || (this.poolUntil !== Infinity && performance.now() >= this.poolUntil && this.resume());
  }

  private resume(): true {
    this.poolUntil = 0;
    return true;
  }

  /** Runs a synchronous call, timing it (also when it throws). */
  private timed<T>(call: () => T): T {
    const started = performance.now();
    try {
      return call();
    } finally {
      const ended = performance.now();
      if (ended - started > this.slowCallMs) this.poolUntil = ended + this.backoffMs;
    }
  }

  /** realpath(3): the canonical path of an existing `p`; throws as fs does (ENOENT for a missing one). */
  async realpath(p: string): Promise<string> {
    return this.synchronous ? this.timed(() => realpathSync.native(p)) : realpath(p);
  }

  /** lstat(2), or null when nothing is there (ENOENT only: ENOTDIR and the rest throw). */
  async lstat(p: string): Promise<Stats | null> {
    if (this.synchronous) return this.timed(() => lstatSync(p, { throwIfNoEntry: false })) ?? null;
    return lstat(p).catch((err: unknown) => {
      if (isNoEntry(err)) return null;
      throw err;
    });
  }

  /** stat(2) (symlinks followed), or null when nothing is there (ENOENT only). */
  async stat(p: string): Promise<Stats | null> {
    if (this.synchronous) return this.timed(() => statSync(p, { throwIfNoEntry: false })) ?? null;
    return stat(p).catch((err: unknown) => {
      if (isNoEntry(err)) return null;
      throw err;
    });
  }

  /** `mkdir -p`: creates `p` and its missing parents; succeeds when it is already a directory. */
  async mkdirRecursive(p: string): Promise<void> {
    if (this.synchronous) this.timed(() => mkdirSync(p, { recursive: true }));
    else await mkdir(p, { recursive: true });
  }
}
