/**
 * Fails a test that leaves a socket, listener, timer, file handle, child process or kernel copy
 * open: `process.getActiveResourcesInfo()` (and the zero-copy addon's count) after the test must
 * come back to what it was before.
 */
import { afterEach, beforeEach } from "node:test";
import { kernelCopiesInFlight } from "../../src/data/kernel-copy.js";

const WATCHED = new Set(["TCPSocketWrap", "TCPServerWrap", "Timeout", "FileHandle", "FSReqCallback", "ProcessWrap", "PipeWrap", "TLSWrap"]);

function snapshot(): Map<string, number> {
  const counts = new Map<string, number>();
  for (const kind of process.getActiveResourcesInfo()) {
    if (WATCHED.has(kind)) counts.set(kind, (counts.get(kind) ?? 0) + 1);
  }
  // The zero-copy addon's handles (a poll and a timer per copy) are invisible to Node's list.
  const kernelCopies = kernelCopiesInFlight();
  if (kernelCopies > 0) counts.set("KernelCopy", kernelCopies);
  return counts;
}

function excess(before: Map<string, number>): string[] {
  const now = snapshot();
  const out: string[] = [];
  for (const [kind, n] of now) {
    const extra = n - (before.get(kind) ?? 0);
    if (extra > 0) out.push(`${extra} ${kind}`);
  }
  return out;
}

/** Installs the before/after hooks in the current test file (or describe block). */
export function checkLeaks(settleMs = 2000): void {
  let before = new Map<string, number>();
  beforeEach(() => {
    before = snapshot();
  });
  afterEach(async () => {
    const deadline = Date.now() + settleMs;
    let left = excess(before);
    // Closing is asynchronous (FIN handshakes, fs callbacks): give it a bounded moment.
    while (left.length > 0 && Date.now() < deadline) {
      await new Promise((r) => setImmediate(r));
      await new Promise((r) => setTimeout(r, 10));
      left = excess(before);
    }
    if (left.length > 0) throw new Error(`test left resources open: ${left.join(", ")}`);
  });
}
