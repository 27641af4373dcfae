/**
 * Process helpers: a process's descendants and their memory (from /proc), and stopping a process
 * tree that this benchmark started, by PID.
 */
import { readdirSync, readFileSync, writeFileSync } from "node:fs";

/** Parent PID of every live process. */
function parentMap(): Map<number, number[]> {
  const children = new Map<number, number[]>();
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${name}/stat`, "latin1");
    } catch {
      continue; // gone meanwhile
    }
    // comm may contain spaces and parentheses: the fields after it start at the last ')'.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const ppid = Number(fields[1]);
    const list = children.get(ppid);
    if (list) list.push(Number(name));
    else children.set(ppid, [Number(name)]);
  }
  return children;
}

/** `pid` and all its live descendants. */
export function processTree(pid: number): number[] {
  const children = parentMap();
  const out: number[] = [];
  const stack = [pid];
  while (stack.length > 0 && out.length < 100_000) {
    const p = stack.pop()!;
    out.push(p);
    for (const c of children.get(p) ?? []) stack.push(c);
  }
  return out.filter(isAlive);
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export interface TreeMemory {
  processes: number;
  /** Sum of resident set sizes, KiB (counts pages shared between processes once per process). */
  rssKiB: number;
  /** Sum of proportional set sizes, KiB (shared pages divided among their sharers). */
  pssKiB: number;
}

/** RSS and PSS of `pid` and its descendants. */
export function treeMemory(pid: number): TreeMemory {
  let rssKiB = 0;
  let pssKiB = 0;
  let processes = 0;
  for (const p of processTree(pid)) {
    try {
      const rollup = readFileSync(`/proc/${p}/smaps_rollup`, "latin1");
      rssKiB += Number(/^Rss:\s+(\d+)/m.exec(rollup)?.[1] ?? 0);
      pssKiB += Number(/^Pss:\s+(\d+)/m.exec(rollup)?.[1] ?? 0);
      processes++;
    } catch {
      // exited meanwhile
    }
  }
  return { processes, rssKiB, pssKiB };
}

/** Resolves when `pid` is gone, or false after `ms`. */
export async function waitGone(pid: number, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (let i = 0; i < 1000 && Date.now() < deadline; i++) {
    if (!isAlive(pid)) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return !isAlive(pid);
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

/**
 * Stops the tree rooted at `pid` (a process this benchmark spawned, detached into its own process
 * group): SIGTERM to it, up to `graceMs` for it to exit, then SIGKILL to every descendant it left
 * (by PID) and to its process group.
 */
export async function stopTree(pid: number, graceMs = 5000): Promise<void> {
  const tree = processTree(pid);
  signal(pid, "SIGTERM");
  const gone = await waitGone(pid, graceMs);
  if (!gone) signal(pid, "SIGKILL");
  // Session processes of forking servers (and the group of the one we started) go too.
  for (const p of tree) if (p !== pid) signal(p, "SIGKILL");
  signal(-pid, "SIGKILL");
  await waitGone(pid, 2000);
}

/** CPU time (user + system, ms) of every live thread of `pid`'s tree, summed by thread name. */
export function threadCpu(pid: number): Map<string, number> {
  const ticksMs = 10; // USER_HZ is 100 on Linux
  const out = new Map<string, number>();
  try {
    // Session processes that ended and were reaped (forking servers) count in the root's cutime/cstime.
    const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    out.set("exited children", (Number(f[13]) + Number(f[14])) * ticksMs);
  } catch {
    // gone
  }
  for (const p of processTree(pid)) {
    let tids: string[];
    try {
      tids = readdirSync(`/proc/${p}/task`);
    } catch {
      continue;
    }
    for (const tid of tids) {
      try {
        const stat = readFileSync(`/proc/${p}/task/${tid}/stat`, "latin1");
        const name = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
        const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
        // Fields 14 and 15 of stat (utime, stime) are 11 and 12 after the comm.
        const ms = (Number(f[11]) + Number(f[12])) * ticksMs;
        const key = p === pid ? (tid === String(pid) ? `${name} main thread` : `${name} other threads`) : `${name} session processes`;
        out.set(key, (out.get(key) ?? 0) + ms);
      } catch {
        // thread gone
      }
    }
  }
  return out;
}

/** `after - before`, by thread name, largest first, as "name 1.2 s, …". */
export function formatCpuDelta(before: Map<string, number>, after: Map<string, number>): string {
  const delta = [...after].map(([k, v]) => [k, v - (before.get(k) ?? 0)] as const).filter(([, v]) => v > 0);
  delta.sort((a, b) => b[1] - a[1]);
  const total = delta.reduce((sum, [, v]) => sum + v, 0);
  return `${(total / 1000).toFixed(2)} s CPU: ` + delta.slice(0, 6).map(([k, v]) => `${k} ${(v / 1000).toFixed(2)} s`).join(", ");
}

/** VmRSS and VmHWM (peak RSS) of one process, KiB; null if it is gone. */
export function rssOf(pid: number): { rssKiB: number; hwmKiB: number } | null {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "latin1");
    return {
      rssKiB: Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1] ?? 0),
      hwmKiB: Number(/^VmHWM:\s+(\d+)/m.exec(status)?.[1] ?? 0),
    };
  } catch {
    return null;
  }
}

/**
 * Resets the peak-RSS mark (VmHWM) of each process to its current RSS (`5` to
 * /proc/PID/clear_refs, Linux 4.0+; needs the right to ptrace it, i.e. root here). False if any
 * reset failed: the caller then samples instead.
 */
export function resetPeakRss(pids: number[]): boolean {
  let ok = true;
  for (const pid of pids) {
    try {
      writeFileSync(`/proc/${pid}/clear_refs`, "5");
    } catch {
      if (isAlive(pid)) ok = false;
    }
  }
  return ok;
}
