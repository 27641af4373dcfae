/**
 * The same machine for every server: TIME_WAIT sockets.
 *
 * Each data connection the client closes first (every STOR) leaves a TIME_WAIT socket on loopback
 * for 60 s. With ten thousand or more of them, the client's connect() spends most of its time
 * looking for a free local port, so a server that runs after a connection-heavy run was measured
 * against a slower client (seen here: pure-ftpd's small-file rate fell from ~3,200 to ~500 files/s
 * after vsftpd's runs, and edgeftp, which runs first, never met it). While the benchmark runs it
 * caps the kernel's TIME_WAIT table (net.ipv4.tcp_max_tw_buckets; past the cap, closing sockets
 * skip TIME_WAIT), and puts the previous value back when it stops.
 */
import { readFileSync, writeFileSync } from "node:fs";

const SYSCTL = "/proc/sys/net/ipv4/tcp_max_tw_buckets";
/** Above what one run needs at once, below where connect() slows down. */
const CAP = 4096;

let previous: string | null = null;

/** Applies the cap; returns the line the machine facts show. */
export function capTimeWait(): string {
  try {
    const current = readFileSync(SYSCTL, "utf8").trim();
    if (Number(current) <= CAP) return `TIME_WAIT sockets: at most ${current} (net.ipv4.tcp_max_tw_buckets, left as it was)`;
    writeFileSync(SYSCTL, String(CAP));
    previous = current;
    return `TIME_WAIT sockets: capped at ${CAP} while the benchmark ran (net.ipv4.tcp_max_tw_buckets, ${current} before and after), so each server meets the same client`;
  } catch (err) {
    return `TIME_WAIT sockets: not capped (${(err as Error).message.split("\n")[0]}); a server that runs after a connection-heavy run may be measured against a slower client`;
  }
}

/** Puts the value found by capTimeWait back (idempotent). */
export function restoreTimeWait(): void {
  if (previous === null) return;
  try {
    writeFileSync(SYSCTL, previous);
  } catch {
    // the benchmark is stopping anyway; the value resets with the machine
  }
  previous = null;
}
