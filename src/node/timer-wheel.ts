/**
 * Coarse shared timers for thousands of long-lived sessions: one interval per node instead of a
 * timer per session, and O(1) rescheduling (every command pushes its session's idle deadline).
 * Deadlines fire within one tick (`resolutionMs`) after they are due; the interval runs only while
 * something is scheduled, so an idle node (or a finished test) holds no timer.
 */

export interface WheelTimer {
  /** Moves the deadline to `delayMs` from now. */
  reschedule(delayMs: number): void;
  cancel(): void;
}

interface Entry {
  tick: number;
  callback: () => void;
}

export class TimerWheel {
  private readonly buckets = new Map<number, Set<Entry>>();
  private size = 0;
  private interval: NodeJS.Timeout | null = null;
  private lastTick: number;

  constructor(private readonly resolutionMs = 1000) {
    this.lastTick = this.currentTick();
  }

  private currentTick(): number {
    return Math.floor(Date.now() / this.resolutionMs);
  }

  /** Calls `callback` once, about `delayMs` from now, unless cancelled or rescheduled. */
  schedule(delayMs: number, callback: () => void): WheelTimer {
    const entry: Entry = { tick: 0, callback };
    let active = false;
    const remove = () => {
      if (!active) return;
      active = false;
      const bucket = this.buckets.get(entry.tick);
      bucket?.delete(entry);
      if (bucket?.size === 0) this.buckets.delete(entry.tick);
      if (--this.size === 0) this.stop();
    };
    const add = (ms: number) => {
      // Round up: a deadline never fires early.
      entry.tick = Math.max(Math.ceil((Date.now() + ms) / this.resolutionMs), this.lastTick);
      let bucket = this.buckets.get(entry.tick);
      if (!bucket) this.buckets.set(entry.tick, (bucket = new Set()));
      bucket.add(entry);
      active = true;
      if (++this.size === 1) this.start();
    };
    entry.callback = () => {
      active = false;
      callback();
    };
    add(delayMs);
    return {
      reschedule: (ms) => {
        remove();
        add(ms);
      },
      cancel: remove,
    };
  }

  private start(): void {
    this.lastTick = this.currentTick();
    this.interval = setInterval(() => this.tick(), this.resolutionMs);
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
