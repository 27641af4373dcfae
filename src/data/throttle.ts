/**
 * Bandwidth throttling: a token bucket shared by every transfer of one account in one direction on
 * this node (five parallel downloads share the account's bytes/s), and the Transform that meters a
 * transfer's stream through it.
 *
 * The bucket is a GCRA (virtual scheduling) token bucket: it keeps the theoretical time `tat` at
 * which everything reserved so far has been paid for. Reserving `n` bytes moves `tat` on by
 * `n / rate`, and the bytes may go once `tat - burst` is reached. Because the schedule is absolute,
 * late timers do not accumulate into a slower rate; the burst bounds how far ahead an idle bucket
 * lets a transfer run. Reservations are made in arrival order, so sharers are served in turn.
 *
 * Cost: no timer per transfer. A bucket arms at most one timer, only while some transfer waits on
 * it, waking at most every EARLY_MS, and the waiting transfers are linked through their own fields
 * (no per-chunk allocation: a
 * chunk passes through whole unless it is larger than a quarter of a second's worth of bytes, when
 * it is passed on in views of that size so a slow rate still moves bytes often enough for the
 * stall timeout). Every timer is released when its last waiter leaves: completion, error or abort
 * (destroy) alike. Unlimited accounts get no Throttle at all (see `throttleFor`).
 */
import { Transform, type TransformCallback } from "node:stream";

/** How far ahead of the rate an idle bucket lets bytes go, in seconds (the burst, as time). */
export const BURST_SECONDS = 0.1;
/** The largest piece passed on at once, in seconds of the rate (bounds the gap between writes). */
const SLICE_SECONDS = 0.25;
/** Smallest piece for very low rates: below this, per-piece overhead would dominate. */
const MIN_SLICE_BYTES = 64;
/**
 * A reservation due within this many ms goes at once, and a timer releases every waiter due within
 * it: at most one wake-up per this many ms per bucket whatever the rate, at the cost of letting
 * bytes go up to this much early (the schedule is absolute, so it never adds up).
 */
const EARLY_MS = 5;

/** One transfer waiting for its bytes to be paid for; linked into the bucket's wait list. */
interface Waiter {
  due: number;
  prevWaiter: Waiter | null;
  nextWaiter: Waiter | null;
  queued: boolean;
  wake(): void;
}

/** A token bucket of `rate` bytes per second; shared by the transfers that hold it. */
export class TokenBucket {
  /** Theoretical arrival time: when everything reserved so far is paid for (performance.now() ms). */
  private tat = 0;
  private bytesPerSecond = 0;
  private msPerByte: number;
  private burstMs: number;
  private head: Waiter | null = null;
  private tail: Waiter | null = null;
  private timer: NodeJS.Timeout | null = null;
  private timerDue = Infinity;
  private readonly onTimerBound = () => this.onTimer();
  /** Throttles attached; at 0 the bucket calls `onIdle` (its registry forgets it). */
  private holders = 0;

  constructor(
    rate: number,
    private readonly onIdle: (bucket: TokenBucket) => void = () => {},
  ) {
    this.msPerByte = 0;
    this.burstMs = 0;
    this.setRate(rate);
  }

  /** Bytes per second. */
  get rate(): number {
    return this.bytesPerSecond;
  }

  /** The size of the pieces a Throttle passes on. */
  get sliceBytes(): number {
    return Math.max(MIN_SLICE_BYTES, Math.floor(this.rate * SLICE_SECONDS));
  }

  /** Whether a timer is armed (tests check that none is left behind). */
  get armed(): boolean {
    return this.timer !== null;
  }

  /** Changes the rate (an account's setting changed); reservations already made keep their time. */
  setRate(rate: number): void {
    if (!(rate > 0) || !Number.isFinite(rate)) throw new RangeError(`bandwidth must be a positive number of bytes/s, not ${rate}`);
    this.bytesPerSecond = rate;
    this.msPerByte = 1000 / rate;
    this.burstMs = BURST_SECONDS * 1000;
  }

  /** Reserves `bytes`; returns the delay in ms before they may go (0 or less: at once). */
  reserve(bytes: number, now = performance.now()): number {
    this.tat = Math.max(this.tat, now) + bytes * this.msPerByte;
    return this.tat - this.burstMs - now;
  }

  attach(): void {
    this.holders++;
  }

  detach(): void {
    if (--this.holders === 0) {
      this.clearTimer();
      this.onIdle(this);
    }
  }

  /** Wakes `waiter` at `due` (performance.now() ms). */
  enqueue(waiter: Waiter, due: number): void {
    waiter.due = due;
    waiter.queued = true;
    waiter.nextWaiter = null;
    waiter.prevWaiter = this.tail;
    if (this.tail) this.tail.nextWaiter = waiter;
    else this.head = waiter;
    this.tail = waiter;
    if (due < this.timerDue) this.arm(due);
  }

  /** Removes `waiter` (a transfer destroyed while waiting); the timer goes with the last one. */
  cancel(waiter: Waiter): void {
    if (!waiter.queued) return;
    this.unlink(waiter);
    if (!this.head) this.clearTimer();
  }

  private unlink(waiter: Waiter): void {
    if (waiter.prevWaiter) waiter.prevWaiter.nextWaiter = waiter.nextWaiter;
    else this.head = waiter.nextWaiter;
    if (waiter.nextWaiter) waiter.nextWaiter.prevWaiter = waiter.prevWaiter;
    else this.tail = waiter.prevWaiter;
    waiter.prevWaiter = waiter.nextWaiter = null;
    waiter.queued = false;
  }

  private arm(due: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.timerDue = due;
    this.timer = setTimeout(this.onTimerBound, Math.max(0, Math.ceil(due - performance.now())));
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.timerDue = Infinity;
  }

  /**
   * Releases every waiter whose time has come. Due times only grow in arrival order unless the rate
   * changed, so the list is scanned whole (it holds one entry per waiting transfer of the account).
   */
  private onTimer(): void {
    this.timer = null;
    this.timerDue = Infinity;
    const limit = performance.now() + EARLY_MS;
    // Woken transfers may queue again at the tail; they are for the next round.
    const last = this.tail;
    let waiter = this.head;
    while (waiter) {
      const next: Waiter | null = waiter === last ? null : waiter.nextWaiter;
      if (waiter.due <= limit) {
        this.unlink(waiter);
        waiter.wake();
      }
      waiter = next;
    }
    let earliest = Infinity;
    for (let w = this.head; w; w = w.nextWaiter) earliest = Math.min(earliest, w.due);
    if (earliest !== Infinity && earliest < this.timerDue) this.arm(earliest);
  }
}

/**
 * Passes bytes on at the bucket's pace. One chunk is in hand at a time (a Transform's contract), so
 * the stream's own buffering, not this class, bounds memory; backpressure reaches the source (for an
 * upload, the client's TCP window).
 */
export class Throttle extends Transform implements Waiter {
  due = 0;
  prevWaiter: Waiter | null = null;
  nextWaiter: Waiter | null = null;
  queued = false;
  private chunk: Buffer | null = null;
  private offset = 0;
  /** Bytes reserved and waited for, passed on when woken. */
  private reserved = 0;
  private done: TransformCallback | null = null;
  private released = false;

  constructor(readonly bucket: TokenBucket) {
    super();
    bucket.attach();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.chunk = chunk;
    this.offset = 0;
    this.done = done;
    this.pump();
  }

  /** Called by the bucket when the reserved bytes are paid for. */
  wake(): void {
    if (this.destroyed || !this.chunk) return;
    this.pass();
    this.pump();
  }

  private pump(): void {
    const chunk = this.chunk!;
    const slice = this.bucket.sliceBytes;
    while (this.offset < chunk.length) {
      if (this.destroyed) return;
      this.reserved = Math.min(slice, chunk.length - this.offset);
      const now = performance.now();
      const delay = this.bucket.reserve(this.reserved, now);
      if (delay > EARLY_MS) {
        this.bucket.enqueue(this, now + delay);
        return;
      }
      this.pass();
    }
    if (this.destroyed) return;
    const done = this.done!;
    this.chunk = null;
    this.done = null;
    done();
  }

  private pass(): void {
    const chunk = this.chunk!;
    const end = this.offset + this.reserved;
    this.push(this.offset === 0 && end === chunk.length ? chunk : chunk.subarray(this.offset, end));
    this.offset = end;
    this.reserved = 0;
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    this.bucket.cancel(this);
    this.chunk = null;
    this.done = null;
    if (!this.released) {
      this.released = true;
      this.bucket.detach();
    }
    callback(err);
  }
}

/**
 * The buckets of one node, by key (e.g. `down:alice`): created on first use, forgotten when their
 * last transfer ends (an idle bucket holds nothing a new one would not: its burst is full).
 */
export class BucketRegistry {
  private readonly buckets = new Map<string, TokenBucket>();

  /** A Throttle on the shared bucket `key`, set to `rate` bytes/s (the latest setting wins). */
  throttle(key: string, rate: number): Throttle {
    let bucket = this.buckets.get(key);
    if (!bucket) {
      bucket = new TokenBucket(rate, (idle) => {
        if (this.buckets.get(key) === idle) this.buckets.delete(key);
      });
      this.buckets.set(key, bucket);
    } else if (bucket.rate !== rate) {
      bucket.setRate(rate);
    }
    return new Throttle(bucket);
  }

  /** Buckets in use (transfers attached). */
  get size(): number {
    return this.buckets.size;
  }

  get(key: string): TokenBucket | undefined {
    return this.buckets.get(key);
  }
}

const registries = new WeakMap<object, BucketRegistry>();

/** The registry of `owner` (a node's services): buckets are shared by that node's sessions only. */
export function bucketRegistry(owner: object): BucketRegistry {
  let registry = registries.get(owner);
  if (!registry) {
    registry = new BucketRegistry();
    registries.set(owner, registry);
  }
  return registry;
}
