/** Bounded waiting: for a promise, for a condition, or for a while. */

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Rejects after `ms` unless `p` settles first; the timer never outlives the call. */
export async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Polls `cond` every 10 ms for at most `ms`; returns whether it became true. */
export async function eventually(cond: () => boolean, ms = 5000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) return false;
    await sleep(10);
  }
  return true;
}

/**
 * Waits for something the server does on its own schedule: polls every 2 ms, 5,000 times at most,
 * then throws. Counts polls rather than reading a clock: it asserts nothing about time.
 */
export async function waitFor(condition: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 5000; i++) {
    if (condition()) return;
    await sleep(2);
  }
  throw new Error(`gave up waiting for ${what}`);
}
