/** A token bucket that makes its caller wait for a token instead of refusing it. */

export class RateLimiter {
  private tokens: number;
  private last = performance.now();

  /** `perSecond` 0 means unlimited; `burst` tokens may be spent at once. */
  constructor(
    private readonly perSecond: number,
    private readonly burst: number,
  ) {
    this.tokens = burst;
  }

  /** Resolves at once while tokens remain, else when the next one has accrued. */
  take(): Promise<void> | void {
    if (this.perSecond <= 0) return;
    const now = performance.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.perSecond);
    this.last = now;
    this.tokens -= 1;
    if (this.tokens >= 0) return;
    // In debt: wait until the balance is back to zero.
    const waitMs = (-this.tokens / this.perSecond) * 1000;
    return new Promise((resolve) => setTimeout(resolve, waitMs));
  }
}
