/**
 * The benchmark's workloads. Each runs against one started server, from this (one) Node process,
 * and returns one value per row it reports. Every loop is bounded in count and every wait in time.
 */
import { rmSync, mkdirSync, chownSync, statSync } from "node:fs";
import { join } from "node:path";
import { ClosedError, DataConn, FtpControl, Gate, ReplyError, TimeoutError, withConcurrency, within, type Reply } from "./client.js";
import type { BenchContext, RunningServer } from "./peers.js";
import { processTree, resetPeakRss, rssOf, treeMemory } from "./proc.js";

/** The test files every server serves (written by run.ts into the common root). */
export const FILES = {
  /** The large file for RETR (1 GiB, 256 MiB with --quick). */
  big: "big.bin",
  /** 16 distinct 1 MiB files: client i fetches medium(i % 16); the first 8 bytes name the file. */
  medium: (i: number) => `m1m-${String(i % 16).padStart(2, "0")}.bin`,
  mediumCount: 16,
  mediumSize: 1024 * 1024,
  /** The 64 KiB file of the concurrent-sessions workload. */
  small64k: "f64k.bin",
  /** A directory of 10,000 empty files. */
  listDir: "list10k",
  listEntries: 10_000,
  /** A directory of 100,000 empty files (written only when the list100k workload runs). */
  list100kDir: "list100k",
  list100kEntries: 100_000,
  /** Scratch directory for the small-file uploads (emptied before each run). */
  smallDir: "small",
  /** Name of the large upload (removed after each run). */
  upload: "upload.bin",
} as const;

/** The first 8 bytes of medium file `k`: "M1M-kk\r\n". */
export const mediumHead = (k: number) => Buffer.from(`M1M-${String(k).padStart(2, "0")}\r\n`, "latin1");

/** Client source addresses standing for distinct clients (all of 127.0.0.0/8 is local on Linux). */
export const SOURCE_ADDRESSES = Array.from({ length: 12 }, (_, i) => `127.0.0.${i + 2}`);

export interface RunEnv {
  ctx: BenchContext;
  server: RunningServer;
  quick: boolean;
  /** Absolute time (ms) by which this run must be over. */
  deadline: number;
  /** 0 for the first counted run against this server, 1 for the second… (to alternate orders); warm-up runs count down from -1. */
  runIndex: number;
}

/** One cell of the table for one run. `value` null: not supported / not measured. */
export interface Cell {
  value: number | null;
  /** Shown instead of the number (e.g. "1000 ok / 0 fail / 0 ref"). */
  text?: string;
  /** Appended to the cell, e.g. "capped at 400 files", "n.a.". */
  note?: string;
}

export interface RowDef {
  id: string;
  label: string;
  /** Which direction is better, for the ratio column. */
  better: "higher" | "lower";
  /** Decimals shown. */
  digits: number;
  /**
   * A row whose figure is a ratio with a target for edgeftp (e.g. active ÷ passive ≥ 0.90): the
   * ratio column shows edgeftp's figure against the target instead of against the best peer.
   */
  target?: { min: number };
  /** How the runs are summed up: the median (default), or the largest (a peak, where the worst run is the figure). */
  aggregate?: "median" | "max";
}

export interface Workload {
  /** Short name for --only. */
  name: string;
  rows: RowDef[];
  /** Default number of runs (medians over them); --runs overrides it. */
  runs: number;
  /**
   * Runs first against the same server process and thrown away (not with --quick): the JIT of the
   * Node servers, and of the benchmark's own client, warms over the first few hundred sessions, and
   * a node in service has long been warm. Every server gets them, so none meets a colder client.
   */
  warmupRuns?: number;
  /** Time allowed for one run against one server. */
  timeoutMs(quick: boolean): number;
  run(env: RunEnv): Promise<Record<string, Cell>>;
  /** Only these servers run it (default: all); the others' cells say why (`skipped`). */
  servers?: readonly string[];
  skipped?: string;
  /** Servers are started with TLS configured (the common certificate in BenchContext.tls). */
  tls?: boolean;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

const is = (...codes: number[]) => (c: number) => codes.includes(c);
const prelim = (c: number) => c === 125 || c === 150;

/**
 * New control connections are opened at most this many at a time (connect until the 220): a
 * burst beyond a server's listen backlog (Pure-FTPd listens with a backlog of 9) is silently
 * lost under SYN cookies, and since FTP servers speak first such a client would wait forever for
 * its greeting. The sessions themselves all run concurrently once greeted.
 */
const connectGate = new Gate(8);

/** Opens a control connection, logs in, TYPE I. */
async function session(env: RunEnv, localAddress?: string, timeoutMs = 20_000, onAdmitted?: () => void): Promise<FtpControl> {
  const c = await connectGate.run(() => {
    onAdmitted?.();
    return FtpControl.open({ port: env.server.port, localAddress, timeoutMs });
  });
  try {
    await c.login(env.ctx.user, env.ctx.password);
    await c.expect("TYPE I", is(200));
    return c;
  } catch (err) {
    c.destroy();
    throw err;
  }
}

/** EPSV + connect: the data connection for the next command. */
async function passive(c: FtpControl, localAddress?: string): Promise<DataConn> {
  const port = await c.epsv();
  return DataConn.open({ port, localAddress: localAddress ?? c.localAddress, timeoutMs: 10_000 });
}

/** Sends a transfer command on an open data connection; returns the final reply after the preliminary one. */
async function transferReplies(c: FtpControl, line: string): Promise<Reply> {
  const first = await c.command(line);
  if (!prelim(first.code)) throw new ReplyError(line.split(" ")[0], first);
  const final = await c.reply();
  if (final.code !== 226 && final.code !== 250) throw new ReplyError(line.split(" ")[0], final);
  return final;
}

const remaining = (env: RunEnv) => Math.max(1, env.deadline - Date.now());

// ---------------------------------------------------------------------------------------------
// a. Issue 3: N concurrent passive RETR of 1 MiB through the 100-port range.

type Outcome = "ok" | "failed" | "refused";

interface PasvResult {
  ok: number;
  /** Completed through a port inside the range (what a firewall that opens only the range lets through). */
  okInRange: number;
  failed: number;
  refused: number;
  portsOutside: number;
  wrongAddress: number;
  reasons: Map<string, number>;
}

function reasonOf(err: unknown): string {
  if (err instanceof ReplyError) return `${err.command} ${err.reply.code}`;
  if (err instanceof TimeoutError) return err.message;
  if (err instanceof ClosedError) return "closed";
  const code = (err as NodeJS.ErrnoException).code;
  return code ?? (err as Error).message.slice(0, 40);
}

/** Refused: the server said no (a 4xx/5xx reply, or it closed the control connection) before any transfer began. */
function classify(err: unknown, transferStarted: boolean): Outcome {
  if (transferStarted) return "failed";
  if (err instanceof ReplyError && err.reply.code >= 400) return "refused";
  if (err instanceof ClosedError) return "refused";
  const code = (err as NodeJS.ErrnoException).code;
  if (code === "ECONNREFUSED" || code === "ECONNRESET") return "refused";
  return "failed";
}

async function concurrentRetr(env: RunEnv, n: number, spread: boolean): Promise<PasvResult> {
  const { pasvFirst, pasvLast } = env.ctx;
  const result: PasvResult = { ok: 0, okInRange: 0, failed: 0, refused: 0, portsOutside: 0, wrongAddress: 0, reasons: new Map() };
  const outcome = (o: Outcome, why?: string) => {
    result[o]++;
    if (why) result.reasons.set(why, (result.reasons.get(why) ?? 0) + 1);
  };
  const clients: Array<FtpControl | null> = new Array(n).fill(null);
  const datas: DataConn[] = [];
  const addressOf = (i: number) => (spread ? SOURCE_ADDRESSES[i % SOURCE_ADDRESSES.length] : "127.0.0.1");
  try {
    // 1. Every client logs in (at most 100 logins in flight); all stay connected.
    const loggedIn: boolean[] = new Array(n).fill(false);
    await within(
      withConcurrency(
        Array.from({ length: n }, (_, i) => i),
        100,
        async (i) => {
          try {
            clients[i] = await session(env, addressOf(i), 30_000);
            loggedIn[i] = true;
          } catch (err) {
            outcome(classify(err, false), `login: ${reasonOf(err)}`);
          }
        },
      ),
      remaining(env),
      "logins",
    ).catch(() => {});

    // 2. PASV (and, for the single-address variant, connect as soon as the reply arrives).
    const transfer = async (i: number, c: FtpControl, port: number): Promise<void> => {
      let started = false;
      try {
        const data = await DataConn.open({ port, localAddress: addressOf(i), timeoutMs: 20_000 });
        datas.push(data);
        started = true;
        const k = i % FILES.mediumCount;
        const [, got] = await Promise.all([transferReplies(c, `RETR ${FILES.medium(k)}`), data.drain(60_000)]);
        if (got.bytes !== FILES.mediumSize) throw new Error(`short file (${got.bytes} bytes)`);
        if (!got.head.subarray(0, 8).equals(mediumHead(k))) throw new Error("wrong file");
        outcome("ok");
        if (port >= pasvFirst && port <= pasvLast) result.okInRange++;
      } catch (err) {
        outcome(classify(err, started), `transfer: ${reasonOf(err)}`);
      }
    };
    const reserve = async (i: number): Promise<{ i: number; c: FtpControl; port: number } | null> => {
      const c = clients[i]!;
      try {
        // 15 s: well past any server's own wait for a free port (edgeftp's pasv.collisionWait is 3 s).
        const r = await c.command("PASV", 15_000);
        const m = /(\d+),(\d+),(\d+),(\d+),(\d+),(\d+)/.exec(r.text);
        if (r.code !== 227 || !m) throw new ReplyError("PASV", r);
        const host = `${m[1]}.${m[2]}.${m[3]}.${m[4]}`;
        const port = Number(m[5]) * 256 + Number(m[6]);
        if (port < pasvFirst || port > pasvLast) result.portsOutside++;
        if (host !== "127.0.0.1") result.wrongAddress++;
        return { i, c, port };
      } catch (err) {
        outcome(classify(err, false), `PASV: ${reasonOf(err)}`);
        return null;
      }
    };
    const ready = clients.map((c, i) => (c && loggedIn[i] ? i : -1)).filter((i) => i >= 0);
    let work: Promise<unknown>;
    if (spread) {
      // (i) every client holds its reservation before any connects.
      work = Promise.all(ready.map(reserve)).then((held) =>
        Promise.all(held.map((h) => (h ? transfer(h.i, h.c, h.port) : undefined))),
      );
    } else {
      // (ii) each client connects as soon as its own PASV reply arrives.
      work = Promise.all(ready.map((i) => reserve(i).then((h) => (h ? transfer(h.i, h.c, h.port) : undefined))));
    }
    await within(work, remaining(env), "transfers").catch(() => {});
  } finally {
    for (const c of clients) c?.destroy();
    for (const d of datas) d.destroy();
  }
  // Whatever did not finish by the deadline failed.
  const unaccounted = n - result.ok - result.failed - result.refused;
  if (unaccounted > 0) outcome("failed", `unfinished at deadline ×${unaccounted}`);
  return result;
}

/** The cell's value is what completed through the range; the text says how many completed at all. */
function pasvCell(r: PasvResult): Cell {
  let text = `${r.ok} ok / ${r.failed} fail / ${r.refused} ref`;
  if (r.portsOutside > 0) text += ` · ${r.portsOutside} PASV ports outside the range`;
  if (r.wrongAddress > 0) text += ` · ${r.wrongAddress} wrong address`;
  const top = [...r.reasons.entries()].sort((a, b) => b[1] - a[1]).slice(0, 2);
  return { value: r.okInRange, text, note: top.length ? top.map(([why, count]) => `${why} ×${count}`).join("; ") : undefined };
}

function pasvWorkload(n: number, spread: boolean): Workload {
  const label = spread
    ? `${n.toLocaleString("en")} concurrent RETR 1 MiB, 12 client addresses, all reservations held first: ok / fail / refused`
    : `${n.toLocaleString("en")} concurrent RETR 1 MiB, one client address, connect on PASV reply: ok / fail / refused`;
  const id = `pasv-${n}-${spread ? "spread" : "single"}`;
  return {
    name: id,
    rows: [{ id, label, better: "higher", digits: 0 }],
    runs: 1,
    timeoutMs: () => (n >= 1000 ? 120_000 : 60_000),
    async run(env) {
      return { [id]: pasvCell(await concurrentRetr(env, n, spread)) };
    },
  };
}

// ---------------------------------------------------------------------------------------------
// b. RETR and STOR of one large file.

export const bigSize = (quick: boolean) => (quick ? 256 : 1024) * 1024 * 1024;
const UPLOAD_BLOCK = Buffer.alloc(1024 * 1024, 0x5a);

const bigFile: Workload = {
  name: "big",
  rows: [
    { id: "retr-big", label: "RETR 1 GiB, MB/s", better: "higher", digits: 0 },
    { id: "stor-big", label: "STOR 1 GiB, MB/s", better: "higher", digits: 0 },
  ],
  // 5: on this VM a 1 GiB upload into tmpfs swings 2-3x from run to run for every server (fresh pages).
  runs: 5,
  timeoutMs: () => 90_000,
  async run(env) {
    const size = bigSize(env.quick);
    const c = await session(env);
    const upload = join(env.ctx.root, FILES.upload);
    try {
      // RETR: from the command to both the 226 and the end of the data.
      let data = await passive(c);
      let t0 = performance.now();
      const [, got] = await Promise.all([transferReplies(c, `RETR ${FILES.big}`), data.drain(remaining(env))]);
      const retrMs = performance.now() - t0;
      if (got.bytes !== size) throw new Error(`RETR: got ${got.bytes} of ${size} bytes`);

      // STOR: from the command to the 226 (the server has the whole file).
      data = await passive(c);
      t0 = performance.now();
      const replies = transferReplies(c, `STOR ${FILES.upload}`);
      replies.catch(() => {});
      await data.send(UPLOAD_BLOCK, size, remaining(env));
      await replies;
      const storMs = performance.now() - t0;
      const stored = statSync(upload).size;
      if (stored !== size) throw new Error(`STOR: file has ${stored} of ${size} bytes`);
      await c.quit();
      return {
        "retr-big": { value: size / 1e6 / (retrMs / 1000) },
        "stor-big": { value: size / 1e6 / (storMs / 1000) },
      };
    } finally {
      c.destroy();
      rmSync(upload, { force: true });
    }
  },
};

// ---------------------------------------------------------------------------------------------
// c. Many small files in one session: STOR all, then RETR all.

const SMALL = Buffer.alloc(4096, 0x61);

function prepareSmallDir(ctx: BenchContext): void {
  const dir = join(ctx.root, FILES.smallDir);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir);
  chownSync(dir, ctx.uid, ctx.gid);
}

const smallFiles: Workload = {
  name: "small",
  rows: [
    { id: "stor-small", label: "2,000 × 4 KiB STOR, one session, files/s", better: "higher", digits: 0 },
    { id: "retr-small", label: "2,000 × 4 KiB RETR, one session, files/s", better: "higher", digits: 0 },
  ],
  runs: 3,
  warmupRuns: 2,
  timeoutMs: () => 60_000,
  async run(env) {
    const count = env.quick ? 500 : 2000;
    // A phase stops early after this long: a slow server gets its rate over the files it did.
    const phaseCapMs = env.quick ? 2_000 : 4_000;
    prepareSmallDir(env.ctx);
    const c = await session(env);
    try {
      const phase = async (verb: "STOR" | "RETR", limit: number): Promise<{ done: number; ms: number }> => {
        const t0 = performance.now();
        let done = 0;
        for (let i = 0; i < limit && performance.now() - t0 < phaseCapMs && Date.now() < env.deadline; i++) {
          const data = await passive(c);
          const name = `${FILES.smallDir}/s${String(i).padStart(5, "0")}`;
          if (verb === "STOR") {
            const replies = transferReplies(c, `STOR ${name}`);
            replies.catch(() => {});
            await data.send(SMALL, SMALL.length, 10_000);
            await replies;
          } else {
            const [, got] = await Promise.all([transferReplies(c, `RETR ${name}`), data.drain(10_000)]);
            if (got.bytes !== SMALL.length) throw new Error(`RETR ${name}: ${got.bytes} bytes`);
          }
          done++;
        }
        return { done, ms: performance.now() - t0 };
      };
      const stor = await phase("STOR", count);
      const retr = await phase("RETR", stor.done);
      await c.quit();
      const cell = (p: { done: number; ms: number }): Cell => ({
        value: p.done / (p.ms / 1000),
        note: p.done < count ? `fewer than ${count} files within the ${phaseCapMs / 1000} s cap: rate over the files done` : undefined,
      });
      return { "stor-small": cell(stor), "retr-small": cell(retr) };
    } finally {
      c.destroy();
    }
  },
};

// ---------------------------------------------------------------------------------------------
// d. LIST and MLSD of a 10,000-entry directory.

/** Counts LF bytes in a data connection's stream (lines of a listing). */
async function listing(c: FtpControl, verb: string, env: RunEnv, dir: string = FILES.listDir): Promise<{ ms: number; lines: number } | null> {
  const data = await passive(c);
  let lines = 0;
  data.tap = (chunk) => {
    for (let i = chunk.indexOf(10); i >= 0; i = chunk.indexOf(10, i + 1)) lines++;
  };
  const t0 = performance.now();
  const first = await c.command(`${verb} ${dir}`);
  if (!prelim(first.code)) {
    data.destroy();
    if (first.code >= 500) return null; // not implemented
    throw new ReplyError(verb, first);
  }
  const [final] = await Promise.all([c.reply(remaining(env)), data.drain(remaining(env))]);
  const ms = performance.now() - t0;
  if (final.code !== 226 && final.code !== 250) throw new ReplyError(verb, final);
  return { ms, lines };
}

const listCell = (r: { ms: number; lines: number } | null, minLines: number): Cell =>
  r === null
    ? { value: null, text: "n.a." }
    : r.lines < minLines
      ? // A cut listing is no figure: it would be faster for sending less, and could rank as the best peer.
        { value: null, text: `only ${r.lines} entries listed` }
      : { value: r.ms };

const listings: Workload = {
  name: "list",
  rows: [
    { id: "list", label: "LIST of 10,000 entries, ms", better: "lower", digits: 0 },
    { id: "mlsd", label: "MLSD of 10,000 entries, ms", better: "lower", digits: 0 },
  ],
  runs: 3,
  warmupRuns: 1,
  timeoutMs: () => 60_000,
  async run(env) {
    const c = await session(env);
    try {
      const list = await listing(c, "LIST", env);
      const mlsd = await listing(c, "MLSD", env);
      await c.quit();
      return { list: listCell(list, FILES.listEntries), mlsd: listCell(mlsd, FILES.listEntries) };
    } finally {
      c.destroy();
    }
  },
};

// ---------------------------------------------------------------------------------------------
// e. Concurrent short sessions: login, TYPE I, EPSV, RETR 64 KiB, QUIT.

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

const sessions: Workload = {
  name: "sessions",
  rows: [
    { id: "sessions-rate", label: "200 concurrent clients of one account (login, TYPE I, EPSV, RETR 64 KiB, QUIT), sessions/s", better: "higher", digits: 0 },
    { id: "sessions-p99", label: "… the same, p99 session time, ms", better: "lower", digits: 0 },
  ],
  // 5 after 5 thrown away: a run takes well under a second, and edgeftp's rate was still rising
  // over the first five (424 -> ~1,100 -> ~1,600 sessions/s) as its and the client's code warmed.
  runs: 5,
  warmupRuns: 5,
  timeoutMs: () => 90_000,
  async run(env) {
    const n = env.quick ? 100 : 200;
    const latencies: number[] = [];
    let failed = 0;
    const reasons = new Map<string, number>();
    const open: FtpControl[] = [];
    const t0 = performance.now();
    const one = async (i: number) => {
      // From the connect (once the client's own gate lets it through) to the 221: time spent
      // queued in the client's connect gate is the client's, not the server's.
      let start = performance.now();
      const addr = SOURCE_ADDRESSES[i % SOURCE_ADDRESSES.length];
      let c: FtpControl | null = null;
      try {
        c = await session(env, addr, 30_000, () => (start = performance.now()));
        open.push(c);
        const data = await passive(c, addr);
        const [, got] = await Promise.all([transferReplies(c, `RETR ${FILES.small64k}`), data.drain(30_000)]);
        if (got.bytes !== 64 * 1024) throw new Error(`short file (${got.bytes})`);
        const bye = await c.command("QUIT");
        if (bye.code !== 221) throw new ReplyError("QUIT", bye);
        latencies.push(performance.now() - start);
      } catch (err) {
        failed++;
        const why = reasonOf(err);
        reasons.set(why, (reasons.get(why) ?? 0) + 1);
      } finally {
        c?.destroy();
      }
    };
    try {
      await within(Promise.all(Array.from({ length: n }, (_, i) => one(i))), remaining(env), "sessions");
    } finally {
      for (const c of open) c.destroy();
    }
    const wallMs = performance.now() - t0;
    latencies.sort((a, b) => a - b);
    if (failed > 0) {
      // A run where some sessions failed measures something else (e.g. Pure-FTPd's 50-user cap,
      // half the passive range): no figure from it.
      const text = `${failed} of ${n} failed`;
      const note = [...reasons.entries()].map(([w, k]) => `${w} ×${k}`).join("; ");
      return { "sessions-rate": { value: null, text, note }, "sessions-p99": { value: null, text, note } };
    }
    return {
      "sessions-rate": { value: n / (wallMs / 1000) },
      "sessions-p99": { value: percentile(latencies, 99) },
    };
  },
};

// ---------------------------------------------------------------------------------------------
// f. Idle logged-in sessions: server memory per session.

function idleWorkload(opts: {
  name: string;
  id: string;
  sessions: number;
  quickSessions: number;
  timeoutMs: number;
  servers?: readonly string[];
  skipped?: string;
}): Workload {
  return {
    name: opts.name,
    rows: [
      {
        id: opts.id,
        label: `${opts.sessions.toLocaleString("en")} idle logged-in sessions, server memory per session, KiB RSS (PSS)`,
        better: "lower",
        digits: 0,
      },
    ],
    runs: 1,
    servers: opts.servers,
    skipped: opts.skipped,
    timeoutMs: () => opts.timeoutMs,
    async run(env) {
      const n = env.quick ? opts.quickSessions : opts.sessions;
      // Warm the server up (first login loads the account store, hashing, storage), then settle.
      const warm = await session(env);
      await warm.quit();
      await sleep(500);
      const before = treeMemory(env.server.pid);
      const clients: FtpControl[] = [];
      let failed = 0;
      const reasons = new Map<string, number>();
      try {
        await within(
          withConcurrency(
            Array.from({ length: n }, (_, i) => i),
            50,
            async (i) => {
              try {
                clients.push(await session(env, SOURCE_ADDRESSES[i % SOURCE_ADDRESSES.length], 30_000));
              } catch (err) {
                failed++;
                const why = reasonOf(err);
                reasons.set(why, (reasons.get(why) ?? 0) + 1);
              }
            },
          ),
          remaining(env),
          "idle logins",
        ).catch(() => {});
        await sleep(1500);
        const after = treeMemory(env.server.pid);
        const k = clients.length;
        if (k === 0) return { [opts.id]: { value: null, text: "no session", note: `${failed} logins failed` } };
        const rss = (after.rssKiB - before.rssKiB) / k;
        const pss = (after.pssKiB - before.pssKiB) / k;
        const why = [...reasons.entries()].map(([w, count]) => `${w} ×${count}`).join("; ");
        return {
          [opts.id]: {
            // The ratio uses PSS, the fair figure for forking servers (their children share pages);
            // for a single process, as edgeftp, PSS is its RSS.
            value: pss,
            text: `${Math.round(rss)} (${Math.round(pss)})`,
            note:
              [
                k < n ? `${k} of ${n} sessions${why ? ` (${why})` : ""}` : undefined,
                after.processes > 1 ? `${after.processes} processes` : undefined,
              ]
                .filter(Boolean)
                .join(", ") || undefined,
          },
        };
      } finally {
        for (const c of clients) c.destroy();
      }
    },
  };
}

const idle = idleWorkload({ name: "idle", id: "idle-mem", sessions: 2000, quickSessions: 500, timeoutMs: 150_000 });

/**
 * 10,000 idle sessions: edgeftp and ftp-srv (one process each). The forking peers would need
 * 10,000-20,000 processes; their figure per session is the 2,000-session row's.
 */
const idle10k = idleWorkload({
  name: "idle10k",
  id: "idle10k-mem",
  sessions: 10_000,
  quickSessions: 3000,
  timeoutMs: 150_000,
  servers: ["edgeftp", "ftp-srv"],
  skipped: "not run: forks one or two processes per session (see the 2,000-session row)",
});

// ---------------------------------------------------------------------------------------------
// g. Active mode (PORT) and h. FTPS (PROT P): 1 GiB each way, against passive plain in the same
// run (same server process, same minute), so the ratio does not carry the machine's drift.

type DataMode = "passive" | "active" | "tls";

/** Why a TLS data connection did not resume the control connection's session (noted in the cell). */
interface TlsFacts {
  description: string | null;
  notResumed: number;
}

/**
 * The data connection for the next transfer command, in three steps around that command: before
 * (EPSV + TCP connect, or PORT + listen), and after its preliminary reply (the server's connection
 * in active mode; the TLS handshake for PROT P, as ftplib and curl do it).
 */
/**
 * The data connection for the next transfer command, in two steps around that command: before
 * (EPSV + TCP connect, with the TLS ClientHello sent for PROT P; or PORT + listen), and after its
 * preliminary reply (the server's connection in active mode; the end of the TLS handshake).
 */
async function prepareData(c: FtpControl, mode: DataMode): Promise<{ connect(tls: TlsFacts): Promise<DataConn>; abort(): void }> {
  if (mode === "passive") {
    const data = await passive(c);
    return { connect: async () => data, abort: () => data.destroy() };
  }
  if (mode === "active") {
    const listener = await c.port();
    return { connect: () => listener.accept(30_000), abort: () => listener.close() };
  }
  const port = await c.epsv();
  const { conn, secured } = await DataConn.openTls({ port, timeoutMs: 15_000 }, c.session);
  return {
    async connect(facts) {
      await secured;
      if (conn.sessionReused === false) facts.notResumed++;
      return conn;
    },
    abort: () => conn.destroy(),
  };
}

/** RETR or STOR of the big file over `mode`: MB/s from the command to the 226 (and EOF). */
async function timedBig(c: FtpControl, env: RunEnv, verb: "RETR" | "STOR", mode: DataMode, facts: TlsFacts): Promise<number> {
  const size = bigSize(env.quick);
  const upload = join(env.ctx.root, FILES.upload);
  const pending = await prepareData(c, mode);
  try {
    const t0 = performance.now();
    const first = await c.command(verb === "RETR" ? `RETR ${FILES.big}` : `STOR ${FILES.upload}`, 30_000);
    if (!prelim(first.code)) throw new ReplyError(`${verb} (${mode})`, first);
    const final = c.reply(remaining(env));
    final.catch(() => {});
    const data = await pending.connect(facts);
    if (verb === "RETR") {
      const [done, got] = await Promise.all([final, data.drain(remaining(env))]);
      if (done.code !== 226 && done.code !== 250) throw new ReplyError(`RETR (${mode})`, done);
      if (got.bytes !== size) throw new Error(`RETR (${mode}): got ${got.bytes} of ${size} bytes`);
    } else {
      await data.send(UPLOAD_BLOCK, size, remaining(env));
      const done = await final;
      if (done.code !== 226 && done.code !== 250) throw new ReplyError(`STOR (${mode})`, done);
    }
    const ms = performance.now() - t0;
    if (verb === "STOR") {
      const stored = statSync(upload).size;
      if (stored !== size) throw new Error(`STOR (${mode}): file has ${stored} of ${size} bytes`);
    }
    return size / 1e6 / (ms / 1000);
  } catch (err) {
    // Say which of the four transfers of the run failed.
    if (err instanceof Error && !err.message.includes(`(${mode})`)) err.message = `${verb} (${mode}): ${err.message}`;
    throw err;
  } finally {
    pending.abort();
    if (verb === "STOR") rmSync(upload, { force: true });
  }
}

/** Both directions in `mode` and in plain passive mode, alternating which goes first by run. */
async function againstPassive(
  env: RunEnv,
  mode: "active" | "tls",
  open: () => Promise<{ plain: FtpControl; other: FtpControl }>,
  facts: TlsFacts,
): Promise<{ retr: number; stor: number; retrPassive: number; storPassive: number }> {
  const { plain, other } = await open();
  try {
    const order: Array<[FtpControl, DataMode]> = [
      [plain, "passive"],
      [other, mode],
    ];
    if (env.runIndex % 2 === 1) order.reverse();
    const out = new Map<string, number>();
    for (const verb of ["RETR", "STOR"] as const) {
      for (const [c, m] of order) out.set(`${verb} ${m}`, await timedBig(c, env, verb, m, facts));
    }
    await plain.quit();
    if (other !== plain) await other.quit();
    return {
      retr: out.get(`RETR ${mode}`)!,
      stor: out.get(`STOR ${mode}`)!,
      retrPassive: out.get("RETR passive")!,
      storPassive: out.get("STOR passive")!,
    };
  } finally {
    plain.destroy();
    other.destroy();
    rmSync(join(env.ctx.root, FILES.upload), { force: true });
  }
}

const activeMode: Workload = {
  name: "active",
  rows: [
    { id: "active-retr", label: "RETR 1 GiB, active mode (PORT), MB/s", better: "higher", digits: 0 },
    { id: "active-stor", label: "STOR 1 GiB, active mode (PORT), MB/s", better: "higher", digits: 0 },
    { id: "active-retr-ratio", label: "… RETR active ÷ passive (EPSV), same session and run", better: "higher", digits: 2, target: { min: 0.9 } },
    { id: "active-stor-ratio", label: "… STOR active ÷ passive (EPSV), same session and run", better: "higher", digits: 2, target: { min: 0.9 } },
  ],
  runs: 3,
  timeoutMs: () => 90_000,
  async run(env) {
    const facts: TlsFacts = { description: null, notResumed: 0 };
    const r = await againstPassive(
      env,
      "active",
      async () => {
        const c = await session(env);
        return { plain: c, other: c };
      },
      facts,
    );
    return {
      "active-retr": { value: r.retr },
      "active-stor": { value: r.stor },
      "active-retr-ratio": { value: r.retr / r.retrPassive },
      "active-stor-ratio": { value: r.stor / r.storPassive },
    };
  },
};

/** A session over explicit TLS: AUTH TLS, login, PBSZ 0, PROT P, TYPE I. */
async function tlsSession(env: RunEnv): Promise<FtpControl> {
  const c = await connectGate.run(() => FtpControl.open({ port: env.server.port, timeoutMs: 20_000 }));
  try {
    await c.upgradeTls();
    await c.login(env.ctx.user, env.ctx.password);
    await c.expect("PBSZ 0", is(200));
    await c.expect("PROT P", is(200));
    await c.expect("TYPE I", is(200));
    return c;
  } catch (err) {
    c.destroy();
    throw err;
  }
}

const ftps: Workload = {
  name: "ftps",
  rows: [
    { id: "ftps-retr", label: "RETR 1 GiB, FTPS (AUTH TLS, PROT P), MB/s", better: "higher", digits: 0 },
    { id: "ftps-stor", label: "STOR 1 GiB, FTPS (AUTH TLS, PROT P), MB/s", better: "higher", digits: 0 },
    { id: "ftps-retr-ratio", label: "… RETR FTPS ÷ plain passive, same run", better: "higher", digits: 2, target: { min: 0.9 } },
    { id: "ftps-stor-ratio", label: "… STOR FTPS ÷ plain passive, same run", better: "higher", digits: 2, target: { min: 0.9 } },
  ],
  runs: 3,
  tls: true,
  servers: ["edgeftp", "vsftpd", "pure-ftpd", "ftp-srv"],
  skipped: "not run: Debian's proftpd-core has no mod_tls (it is in proftpd-mod-crypto, not unpacked)",
  timeoutMs: () => 120_000,
  async run(env) {
    const facts: TlsFacts = { description: null, notResumed: 0 };
    const r = await againstPassive(
      env,
      "tls",
      async () => {
        const plain = await session(env);
        try {
          const secure = await tlsSession(env);
          facts.description = secure.tlsDescription;
          return { plain, other: secure };
        } catch (err) {
          plain.destroy();
          throw err;
        }
      },
      facts,
    );
    const note = [facts.description, facts.notResumed > 0 ? `${facts.notResumed} of 2 data connections did not resume the session` : "data connections resumed the session"]
      .filter(Boolean)
      .join("; ");
    return {
      "ftps-retr": { value: r.retr, note },
      "ftps-stor": { value: r.stor, note },
      "ftps-retr-ratio": { value: r.retr / r.retrPassive },
      "ftps-stor-ratio": { value: r.stor / r.storPassive },
    };
  },
};

// ---------------------------------------------------------------------------------------------
// i. LIST and MLSD of a 100,000-entry directory: time, and the server's peak RSS growth.

/**
 * Runs `fn` and reports how far the server tree's resident memory rose above its level at the
 * start: the peak-RSS mark of every process is reset first (clear_refs), and read after
 * (VmHWM), so nothing needs sampling and the client adds no load; processes started meanwhile
 * count with their whole peak. Without the right to reset the mark, RSS is sampled every 20 ms.
 */
async function peakRssDuring<T>(serverPid: number, fn: () => Promise<T>): Promise<{ result: T; peakKiB: number; sampled: boolean }> {
  const pids = processTree(serverPid);
  const baseline = new Map(pids.map((p) => [p, rssOf(p)?.rssKiB ?? 0]));
  const exact = resetPeakRss(pids);
  const sampledPeak = new Map(baseline);
  let sampler: NodeJS.Timeout | null = null;
  if (!exact) {
    sampler = setInterval(() => {
      for (const p of pids) {
        const now = rssOf(p)?.rssKiB ?? 0;
        if (now > (sampledPeak.get(p) ?? 0)) sampledPeak.set(p, now);
      }
    }, 20);
  }
  try {
    const result = await fn();
    let peakKiB = 0;
    for (const p of new Set([...pids, ...processTree(serverPid)])) {
      const m = rssOf(p);
      const start = baseline.get(p) ?? 0;
      const top = exact ? (m?.hwmKiB ?? 0) : Math.max(sampledPeak.get(p) ?? 0, m?.rssKiB ?? 0);
      if (m || baseline.has(p)) peakKiB += Math.max(0, top - start);
    }
    return { result, peakKiB, sampled: !exact };
  } finally {
    if (sampler) clearInterval(sampler);
  }
}

const list100k: Workload = {
  name: "list100k",
  rows: [
    { id: "list100k", label: "LIST of 100,000 entries, ms", better: "lower", digits: 0 },
    { id: "list100k-rss", label: "… peak server RSS growth during that LIST, MiB (largest of the runs)", better: "lower", digits: 1, aggregate: "max" },
    { id: "mlsd100k", label: "MLSD of 100,000 entries, ms", better: "lower", digits: 0 },
    { id: "mlsd100k-rss", label: "… peak server RSS growth during that MLSD, MiB (largest of the runs)", better: "lower", digits: 1, aggregate: "max" },
  ],
  runs: 3,
  timeoutMs: () => 60_000,
  async run(env) {
    // Each listing in a session of its own (a fresh session process for the forking servers, whose
    // allocator keeps what one listing grew), LIST first on odd runs, MLSD first on even ones.
    const measure = async (verb: "LIST" | "MLSD", ms: string, rss: string): Promise<Record<string, Cell>> => {
      const c = await session(env);
      try {
        const { result, peakKiB, sampled } = await peakRssDuring(env.server.pid, () => listing(c, verb, env, FILES.list100kDir));
        await c.quit();
        if (result === null) return { [ms]: { value: null, text: "n.a." }, [rss]: { value: null, text: "n.a." } };
        return {
          [ms]: listCell(result, FILES.list100kEntries),
          [rss]: { value: peakKiB / 1024, note: sampled ? "sampled every 20 ms (peak RSS mark not resettable)" : undefined },
        };
      } finally {
        c.destroy();
      }
    };
    const verbs = [
      () => measure("LIST", "list100k", "list100k-rss"),
      () => measure("MLSD", "mlsd100k", "mlsd100k-rss"),
    ];
    if (env.runIndex % 2 === 1) verbs.reverse();
    const out: Record<string, Cell> = {};
    for (const one of verbs) Object.assign(out, await one());
    return out;
  },
};

export const WORKLOADS: readonly Workload[] = [
  pasvWorkload(300, true),
  pasvWorkload(300, false),
  pasvWorkload(1000, true),
  pasvWorkload(1000, false),
  bigFile,
  smallFiles,
  listings,
  sessions,
  idle,
  activeMode,
  ftps,
  list100k,
  idle10k,
];

/** Groups for --only: "pasv" selects the four issue-3 runs. */
export function selectWorkloads(only: string[] | null): Workload[] {
  if (!only) return [...WORKLOADS];
  return WORKLOADS.filter((w) => only.some((o) => w.name === o || w.name.startsWith(`${o}-`)));
}
