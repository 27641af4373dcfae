/**
 * Coarse shared timers for thousands of long-lived sessions: one interval per node instead of a
 * timer per session, and O(1) rescheduling (every command pushes its session's idle deadline).
 * Deadlines fire within one tick (`resolutionMs`) after they are due; the interval runs only while
 * something is scheduled, so an idle node (or a finished test) holds no timer. Entries are small
 * objects with prototype methods, not closures: an edge holds one per session. Time is the
 * monotonic clock: a step of the wall clock (NTP, an operator) moves no deadline.
 */

export interface WheelTimer {
  /** Moves the deadline to `delayMs` from now. */
  reschedule(delayMs: number): void;
  cancel(): void;
}

class WheelEntry implements WheelTimer {
  /** The tick it is filed under; -1 while not scheduled. */
  tick = -1;

  constructor(
    private readonly wheel: TimerWheel,
    readonly callback: () => void,
  ) {}

  reschedule(delayMs: number): void {
    // Every command pushes its session's idle deadline back: within one tick that changes nothing.
    if (this.tick >= 0 && this.tick === this.wheel.tickFor(delayMs)) return;
    this.wheel.remove(this);
    this.wheel.add(this, delayMs);
  }

  cancel(): void {
    this.wheel.remove(this);
  }
}

export class TimerWheel {
  private readonly buckets = new Map<number, Set<WheelEntry>>();
  private size = 0;
  private interval: NodeJS.Timeout | null = null;
  private lastTick: number;

  constructor(private readonly resolutionMs = 1000) {
    this.lastTick = this.currentTick();
  }

  private currentTick(): number {
    return Math.floor(performance.now() / this.resolutionMs);
  }

  /** Calls `callback` once, about `delayMs` from now, unless cancelled or rescheduled. */
  schedule(delayMs: number, callback: () => void): WheelTimer {
    const entry = new WheelEntry(this, callback);
    this.add(entry, delayMs);
    return entry;
  }

  /** @internal The tick a deadline `delayMs` from now is filed under. */
  tickFor(delayMs: number): number {
    // Round up: a deadline never fires early; never file behind the tick being processed.
    return Math.max(Math.ceil((performance.now() + delayMs) / this.resolutionMs), this.lastTick);
  }

  /** @internal */
  add(entry: WheelEntry, delayMs: number): void {
    entry.tick = this.tickFor(delayMs);
    let bucket = this.buckets.get(entry.tick);
    if (!bucket) this.buckets.set(entry.tick, (bucket = new Set()));
    bucket.add(entry);
    if (++this.size === 1) this.start();
  }

  /** @internal */
  remove(entry: WheelEntry): void {
    const tick = entry.tick;
    if (tick < 0) return;
    entry.tick = -1;
    const bucket = this.buckets.get(tick);
    if (!bucket?.delete(entry)) return;
    if (bucket.size === 0) this.buckets.delete(tick);
    if (--this.size === 0) this.idle();
  }

  /**
   * A lone session pauses its deadline for every transfer and re-arms it after: clearing and
   * re-creating the interval each time would cost more than the transfer's other bookkeeping.
   * So an emptied wheel only unrefs its interval (it no longer holds the process, nor counts as
   * an active timer) and the next tick clears it, unless a deadline came back meanwhile.
   */
  private start(): void {
    if (this.interval) {
      this.interval.ref();
      return;
    }
    this.lastTick = this.currentTick();
    this.interval = setInterval(() => this.tick(), this.resolutionMs);
  }

  private idle(): void {
    this.interval?.unref();
  }

  private stop(): void {
    if (this.interval) clearInterval(this.interval);
    this.interval = null;
  }

  private tick(): void {
    const now = this.currentTick();
    for (let t = this.lastTick; t <= now; t++) {
      const bucket = this.buckets.get(t);
      if (!bucket) continue;
      this.buckets.delete(t);
      for (const entry of bucket) {
        this.size--;
        entry.tick = -1;
        entry.callback();
      }
    }
    this.lastTick = now + 1;
    if (this.size === 0) this.stop();
  }

  /** Number of pending deadlines (for metrics and tests). */
  get pending(): number {
    return this.size;
  }
}
