/**
 * Whether a call that may wait for a slow medium runs synchronously on the event loop or on libuv's
 * thread pool, decided call by call: synchronously while such calls answer fast, on the pool for a
 * while after one that did not.
 *
 * Why: with the data in the page cache (the normal case on a busy edge), a synchronous call costs a
 * few µs of the event loop, and the same call through the thread pool ~25-30 µs of CPU (a request,
 * a hand-off to a pool thread and back, often a context switch each way). Why not always: on a slow
 * or remote medium a synchronous call blocks every session of the node. So every synchronous call is
 * timed, and one that takes longer than `slowCallMs` sends the next call to the thread pool, then
 * tries synchronously again; each further slow try in a row doubles the number of calls sent to the
 * pool (1, 2, 4 … up to `maxPoolCalls`), and a fast one ends the backoff. Counted in calls rather
 * than time: on a busy machine a fast call now and then looks slow because the process was
 * descheduled during it, and that must cost a call or two on the pool, not seconds of them; a slow
 * disk, on the other hand, soon ends up with nearly every call on the pool and one timed try in
 * `maxPoolCalls`. Used by the storage's metadata calls, by small kernel copies, and per listing by
 * the storage's listings without the native reader (where a "call" is a batch).
 */

export interface SyncPacingOptions {
  /** A synchronous call slower than this (ms) sends the next calls to the thread pool. */
  slowCallMs?: number;
  /** The most calls sent to the thread pool before the next synchronous try. */
  maxPoolCalls?: number;
  /** Never call synchronously (a medium known to be slow or remote; tests of the pool path). */
  threadPoolOnly?: boolean;
  /** Milliseconds, for timing the calls (tests); default performance.now. */
  clock?: () => number;
}

/** Calls are ~2-10 µs on cached data; a millisecond means the medium itself is being waited for. */
const DEFAULT_SLOW_CALL_MS = 1;
const DEFAULT_MAX_POOL_CALLS = 1024;

export class SyncPacing {
  private readonly slowCallMs: number;
  private readonly maxPoolCalls: number;
  private readonly threadPoolOnly: boolean;
  private readonly clock: () => number;
  /** Calls still to send to the thread pool before the next synchronous try. */
  private poolCalls = 0;
  /** How many calls the next slow synchronous one sends to the pool. */
  private backoff = 1;

  constructor(options: SyncPacingOptions = {}) {
    this.slowCallMs = options.slowCallMs ?? DEFAULT_SLOW_CALL_MS;
    this.maxPoolCalls = options.maxPoolCalls ?? DEFAULT_MAX_POOL_CALLS;
    this.threadPoolOnly = options.threadPoolOnly === true;
    this.clock = options.clock ?? (() => performance.now());
  }

  /** Whether the next call runs synchronously (false while backing off after a slow call). */
  get synchronous(): boolean {
    return !this.threadPoolOnly && this.poolCalls === 0;
  }

  /** Decides for one call: synchronously (then run it through {@link timed}), or (counting it) on the pool. */
  takeSynchronous(): boolean {
    if (this.synchronous) return true;
    if (this.poolCalls > 0) this.poolCalls--;
    return false;
  }

  /** Runs a synchronous call, timing it (also when it throws). */
  timed<T>(call: () => T): T {
    const started = this.clock();
    try {
      return call();
    } finally {
      this.settle(this.clock() - started > this.slowCallMs);
    }
  }

  /**
   * Records how a synchronous call went when the caller timed it itself (work that awaits between
   * synchronous steps, such as a listing batch): a slow one starts or doubles the backoff.
   */
  settle(slow: boolean): void {
    if (slow) {
      this.poolCalls = this.backoff;
      this.backoff = Math.min(this.backoff * 2, this.maxPoolCalls);
    } else {
      this.backoff = 1;
    }
  }
}
