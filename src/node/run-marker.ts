/**
 * Whether the nodes that served this data directory before were stopped cleanly. Each `serve` holds
 * an exclusive flock(2) on a file of its own in `<dataDir>/run/` for as long as it runs, and removes
 * the file when it stops cleanly. The kernel drops a dead process's locks, so a file that can be
 * locked at start was left by a node that did not stop cleanly (kill -9, out of memory, power
 * loss); a file still locked belongs to a node serving now. Without the native addon (no flock)
 * nothing can be told, and every earlier stop counts as clean.
 *
 * Why it matters: what a killed node had not yet written down is lost, the quota usage of uploads
 * it was receiving (their partial files stay on disk) among it.
 */
import { closeSync, mkdirSync, openSync, readdirSync, renameSync, rmSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { nativeAddon } from "../native.js";

const addon = nativeAddon<{ lockExclusive?(fd: number): number }>();

const PREFIX = "serve-";

export interface RunMarker {
  /** How many earlier nodes were found to have stopped without cleaning up (their markers are removed). */
  readonly uncleanStops: number;
  /** The files this node made (its marker and their directory), for a root node to hand over as it does the rest. */
  readonly made: string[];
  /** Removes this node's marker: a clean stop. */
  release(): void;
}

/** Takes this node's marker in `dataDir`, counting (and removing) those of nodes that stopped uncleanly. */
export function claimRunMarker(dataDir: string): RunMarker {
  if (typeof addon?.lockExclusive !== "function") return { uncleanStops: 0, made: [], release: () => undefined };
  const dir = join(dataDir, "run");
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  let uncleanStops = 0;
  for (const name of readdirSync(dir)) {
    if (!name.startsWith(PREFIX)) continue;
    const file = join(dir, name);
    let fd: number;
    try {
      fd = openSync(file, "r");
    } catch {
      continue; // removed meanwhile by its node, or by another starting one
    }
    try {
      if (addon.lockExclusive(fd) !== 0) continue; // held: that node is running
      uncleanStops++;
      rmSync(file, { force: true });
    } finally {
      closeSync(fd);
    }
  }
  // Locked under another name first: a node starting meanwhile must never find it unlocked.
  const id = `${process.pid}-${randomBytes(4).toString("hex")}`;
  const own = join(dir, PREFIX + id);
  const fresh = join(dir, `.new-${id}`);
  const fd = openSync(fresh, "wx", 0o600);
  if (addon.lockExclusive(fd) !== 0) {
    closeSync(fd);
    rmSync(fresh, { force: true });
    return { uncleanStops, made: [], release: () => undefined };
  }
  renameSync(fresh, own);
  return {
    uncleanStops,
    made: [dir, own],
    release() {
      rmSync(own, { force: true });
      closeSync(fd);
    },
  };
}
