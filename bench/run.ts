/**
 * `npm run bench`: runs the workloads of bench/workloads.ts against edgeftp and its peers, one
 * server at a time, and prints one Markdown table (also written to .bench/results.md) with each
 * server's figure, edgeftp's ratio to the best peer, and the machine's facts.
 *
 *   node dist/bench/run.js [--quick] [--only big,small,...] [--servers edgeftp,vsftpd,...]
 *                          [--runs N] [--rounds N] [--profile] [--cpu] [--edgeftp-cli PATH] [--edgeftp-node-flags "F ..."]
 *                          [--budget-minutes M]
 *
 * --quick: one run of smaller sizes. --only: workload names or groups (pasv, big, small, list,
 * sessions, idle, active, ftps, list100k, idle10k). --profile: edgeftp runs under `node --cpu-prof`, one profile per workload,
 * summarised into .bench/profiles/summary.md. --cpu: logs each run's server CPU time by thread (and the client's)
 * (threads alive at the end of the run). --edgeftp-node-flags: node flags for the edgeftp server (e.g. a V8 heap
 * setting to measure); the machine facts under the table name them. --rounds N: the whole selection N times,
 * interleaving the servers' blocks of runs against a machine whose speed drifts. Loopback only; every server is
 * stopped by PID.
 */
import { execFileSync, execSync } from "node:child_process";
import {
  chownSync,
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { cpus, release, tmpdir, totalmem } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { within } from "./client.js";
import { ALL_SERVERS, live, startServer, type BenchContext, type RunningServer, type ServerSpec } from "./peers.js";
import { formatProfileSummary, summarizeProfile } from "./profile.js";
import { formatCpuDelta, isAlive, stopTree, threadCpu } from "./proc.js";
import { capTimeWait, restoreTimeWait } from "./time-wait.js";
import { bigSize, FILES, mediumHead, selectWorkloads, type Cell, type RowDef, type Workload } from "./workloads.js";

const repo = resolve(fileURLToPath(new URL("../..", import.meta.url)));

// ---------------------------------------------------------------------------------------------
// Options.

interface Options {
  quick: boolean;
  only: string[] | null;
  servers: string[] | null;
  runs: number | null;
  /** Times the whole selection is run, each server's runs of a round one block: see --rounds. */
  rounds: number;
  profile: boolean;
  cpu: boolean;
  edgeftpCli: string;
  /** Extra node flags for the edgeftp server, named in the machine facts. */
  edgeftpNodeFlags: string[];
  budgetMs: number;
}

function parseArgs(argv: string[]): Options {
  const o: Options = {
    quick: false,
    only: null,
    servers: null,
    runs: null,
    rounds: 1,
    profile: false,
    cpu: false,
    edgeftpCli: join(repo, "dist", "src", "cli.cjs"),
    edgeftpNodeFlags: [],
    budgetMs: 15 * 60_000,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === "--quick") o.quick = true;
    else if (a === "--profile") o.profile = true;
    else if (a === "--cpu") o.cpu = true;
    else if (a === "--only") o.only = value().split(",").map((s) => s.trim()).filter(Boolean);
    else if (a === "--servers") o.servers = value().split(",").map((s) => s.trim()).filter(Boolean);
    else if (a === "--runs") o.runs = Math.max(1, Math.min(20, Number(value()) || 1));
    else if (a === "--rounds") o.rounds = Math.max(1, Math.min(10, Number(value()) || 1));
    else if (a === "--edgeftp-cli") o.edgeftpCli = resolve(value());
    else if (a === "--edgeftp-node-flags") o.edgeftpNodeFlags = value().split(/\s+/).filter(Boolean);
    else if (a === "--budget-minutes") o.budgetMs = Math.max(1, Number(value()) || 15) * 60_000;
    else if (a === "--help" || a === "-h") {
      process.stdout.write(readFileSync(fileURLToPath(import.meta.url), "utf8").split("*/")[0] + "*/\n");
      process.exit(0);
    } else throw new Error(`unknown option ${a}`);
  }
  return o;
}

/** bench/bench.env: KEY=VALUE lines; and BENCH_PASSWORD, the machine's own from .bench/password (bench/setup.sh). */
function readEnvFile(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of readFileSync(join(repo, "bench", "bench.env"), "utf8").split("\n")) {
    const m = /^([A-Z_]+)=(.*)$/.exec(line.trim());
    if (m) out[m[1]] = m[2];
  }
  try {
    out.BENCH_PASSWORD = readFileSync(join(repo, ".bench", "password"), "utf8").trim();
  } catch {
    throw new Error("no .bench/password: run bench/setup.sh first (as root)");
  }
  return out;
}

function userIds(name: string): { uid: number; gid: number } {
  for (const line of readFileSync("/etc/passwd", "utf8").split("\n")) {
    const f = line.split(":");
    if (f[0] === name) return { uid: Number(f[2]), gid: Number(f[3]) };
  }
  throw new Error(`local user ${name} missing: run bash bench/setup.sh`);
}

// ---------------------------------------------------------------------------------------------
// Test files.

function writeFilled(path: string, size: number, head?: Buffer): void {
  if (existsSync(path) && statSync(path).size === size) return;
  const block = Buffer.alloc(Math.min(size, 1024 * 1024));
  for (let i = 0; i < block.length; i++) block[i] = (i * 131 + 7) & 0xff;
  const fd = openSync(path, "w");
  try {
    let written = 0;
    for (let i = 0; written < size && i < 1_000_000; i++) {
      const chunk = i === 0 && head ? Buffer.concat([head, block.subarray(head.length)]) : block;
      written += writeSync(fd, chunk, 0, Math.min(chunk.length, size - written));
    }
  } finally {
    closeSync(fd);
  }
}

/** A directory of `count` empty files e0…; rewritten only if its entry count is not `count`. */
function writeListDir(ctx: BenchContext, name: string, count: number): void {
  const dir = join(ctx.root, name);
  mkdirSync(dir, { recursive: true });
  if (readdirSync(dir).length !== count) {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir);
    const digits = String(count - 1).length;
    for (let i = 0; i < count; i++) closeSync(openSync(join(dir, `e${String(i).padStart(digits, "0")}`), "w"));
  }
}

/**
 * The FTPS row's certificate: self-signed, EC P-256 (the key type edgeftp generates for itself),
 * made once with openssl into .bench/tls/; readable by the local user edgeftp and ftp-srv run as.
 */
function ensureCertificate(ctx: BenchContext): { cert: string; key: string } {
  const dir = join(ctx.repo, ".bench", "tls");
  const cert = join(dir, "bench-cert.pem");
  const key = join(dir, "bench-key.pem");
  if (!existsSync(cert) || !existsSync(key)) {
    mkdirSync(dir, { recursive: true, mode: 0o755 });
    execFileSync(
      "openssl",
      ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-sha256", "-days", "825",
        "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", key, "-out", cert],
      { stdio: ["ignore", "ignore", "pipe"], timeout: 20_000 },
    );
  }
  chownSync(key, ctx.uid, ctx.gid);
  chownSync(cert, ctx.uid, ctx.gid);
  return { cert, key };
}

function prepareFiles(ctx: BenchContext, quick: boolean, workloads: Workload[]): void {
  mkdirSync(ctx.root, { recursive: true });
  chownSync(ctx.root, ctx.uid, ctx.gid);
  writeFilled(join(ctx.root, FILES.big), bigSize(quick));
  for (let k = 0; k < FILES.mediumCount; k++) writeFilled(join(ctx.root, FILES.medium(k)), FILES.mediumSize, mediumHead(k));
  writeFilled(join(ctx.root, FILES.small64k), 64 * 1024);
  writeListDir(ctx, FILES.listDir, FILES.listEntries);
  if (workloads.some((w) => w.name === "list100k")) writeListDir(ctx, FILES.list100kDir, FILES.list100kEntries);
  rmSync(join(ctx.root, FILES.upload), { force: true });
  for (const name of readdirSync(ctx.root)) chownSync(join(ctx.root, name), ctx.uid, ctx.gid);
}

// ---------------------------------------------------------------------------------------------
// Machine facts.

function sh(cmd: string): string {
  try {
    return execSync(cmd, { encoding: "utf8", timeout: 5000, stdio: ["ignore", "pipe", "ignore"] }).trim();
  } catch {
    return "unknown";
  }
}

function fsTypeOf(path: string): string {
  return sh(`stat -f -c %T ${JSON.stringify(path)}`);
}

/** Whether the benchmarked edgeftp has its native addon (zero-copy transfers, native listings). */
function nativeAddonState(ctx: BenchContext): string {
  const built = existsSync(join(ctx.edgeftpCli, "..", "..", "..", "build", "Release", "edgeftp.node"));
  return built ? "native addon built" : "native addon NOT built (streams and Node's calls only)";
}

function machineFacts(ctx: BenchContext, specs: ServerSpec[], timeWait: string, edgeftpNodeFlags: string[]): string[] {
  const model = /model name\s*:\s*(.*)/.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1] ?? cpus()[0]?.model ?? "unknown";
  const versions = specs.map((s) => `${s.name} ${s.unavailable(ctx) ? "(not available)" : s.version(ctx)}`).join(", ");
  return [
    `- CPU: ${model}, ${cpus().length} cores; memory ${(totalmem() / 2 ** 30).toFixed(1)} GiB`,
    `- Kernel: Linux ${release()}; ${sh(". /etc/os-release && echo $PRETTY_NAME")}`,
    `- Node ${process.version} (client and the Node servers); edgeftp at git ${sh(`git -C ${JSON.stringify(join(ctx.edgeftpCli, "..", "..", ".."))} describe --always --dirty`)}, ${nativeAddonState(ctx)}${edgeftpNodeFlags.length ? `, under \`node ${edgeftpNodeFlags.join(" ")}\`` : ""}`,
    `- Servers: ${versions}`,
    `- Files: ${ctx.root} on ${fsTypeOf(ctx.root)}; loopback (127.0.0.1, clients also from 127.0.0.2-13); passive range ${ctx.pasvFirst}-${ctx.pasvLast} for every server`,
    `- ${timeWait}`,
  ];
}

// ---------------------------------------------------------------------------------------------
// Running.

interface Results {
  /** rows by id → server → the cells of each run. */
  cells: Map<string, Map<string, Cell[]>>;
  /** server → why it has no figures (did not start, time budget, …), per workload name. */
  problems: Map<string, string[]>;
}

const log = (text: string) => process.stderr.write(`bench: ${text}\n`);

function addCell(results: Results, row: string, server: string, cell: Cell): void {
  let byServer = results.cells.get(row);
  if (!byServer) results.cells.set(row, (byServer = new Map()));
  const list = byServer.get(server) ?? [];
  list.push(cell);
  byServer.set(server, list);
}

async function runAll(options: Options, ctx: BenchContext, specs: ServerSpec[], workloads: Workload[]): Promise<Results> {
  const results: Results = { cells: new Map(), problems: new Map() };
  const startedAt = Date.now();
  // Control ports: a fresh one for each server start (no TIME_WAIT left by the previous one).
  let port = 18100;
  const problem = (server: string, text: string) => {
    const list = results.problems.get(server) ?? [];
    if (!list.includes(text)) list.push(text);
    results.problems.set(server, list);
  };
  // Rounds interleave the servers' runs (A B C, A B C…), so that a machine whose speed drifts over
  // minutes weighs on every server alike; a cell that is no run (not available, skipped) is added once.
  for (let round = 0; round < options.rounds; round++) {
    for (const workload of workloads) {
      for (const spec of specs) {
        const errorCell = (text: string): Cell => ({ value: null, text });
        const once = (row: string, cell: Cell) => round === 0 && addCell(results, row, spec.name, cell);
        if (spec.reference && !spec.reference.workloads.includes(workload.name)) {
          for (const row of workload.rows) once(row.id, { value: null, text: "–" });
          continue;
        }
        if (workload.servers && !workload.servers.includes(spec.name)) {
          for (const row of workload.rows) once(row.id, { value: null, text: "–", note: workload.skipped });
          continue;
        }
        const unavailable = spec.unavailable(ctx);
        if (unavailable) {
          problem(spec.name, `not available: ${unavailable}`);
          for (const row of workload.rows) once(row.id, errorCell("not available"));
          continue;
        }
        const timeoutMs = workload.timeoutMs(options.quick);
        if (Date.now() - startedAt + timeoutMs > options.budgetMs) {
          problem(spec.name, `${workload.name}: skipped (time budget)`);
          for (const row of workload.rows) once(row.id, errorCell("skipped (time budget)"));
          continue;
        }
        const profileDir = join(repo, ".bench", "profiles", workload.name);
        if (options.profile && spec.name === "edgeftp") {
          rmSync(profileDir, { recursive: true, force: true });
          mkdirSync(profileDir, { recursive: true });
          chownSync(profileDir, ctx.uid, ctx.gid);
        }
        const runCtx: BenchContext = {
          ...ctx,
          edgeftpNodeArgs: [...options.edgeftpNodeFlags, ...(options.profile && spec.name === "edgeftp" ? ["--cpu-prof", "--cpu-prof-dir", profileDir] : [])],
          tls: workload.tls ? ensureCertificate(ctx) : null,
        };
        port = port >= 18990 ? 18100 : port + 1;
        let server: RunningServer;
        try {
          server = await startServer(spec, runCtx, port);
        } catch (err) {
          const why = (err as Error).message;
          log(`${spec.name} did not start: ${why}`);
          problem(spec.name, `did not start (${workload.name}): ${why}`);
          for (const row of workload.rows) addCell(results, row.id, spec.name, errorCell("did not start"));
          continue;
        }
        const runs = options.quick ? 1 : (options.runs ?? workload.runs);
        const warmups = options.quick ? 0 : (workload.warmupRuns ?? 0);
        try {
          // The budget holds for every run, not only for the first of a server's block.
          const fits = () => Date.now() - startedAt + timeoutMs <= options.budgetMs;
          for (let w = 0; w < warmups && fits(); w++) {
            const env = { ctx: runCtx, server, quick: false, deadline: Date.now() + timeoutMs - 2000, runIndex: -1 - w };
            await within(workload.run(env), timeoutMs, `${workload.name} on ${spec.name} (warm-up)`).then(
              () => log(`${workload.name} on ${spec.name}: warm-up ${w + 1}/${warmups} done`),
              (err: Error) => log(`${workload.name} on ${spec.name}: warm-up ${w + 1}/${warmups} failed: ${err.message.slice(0, 120)}`),
            );
            await new Promise((res) => setTimeout(res, 500));
          }
          for (let r = 0; r < runs; r++) {
            if (!fits()) {
              problem(spec.name, `${workload.name}: ${runs - r} of ${runs} runs skipped (time budget)`);
              for (const row of workload.rows) addCell(results, row.id, spec.name, errorCell("skipped (time budget)"));
              continue;
            }
            const t0 = Date.now();
            const env = { ctx: runCtx, server, quick: options.quick, deadline: t0 + timeoutMs - 2000, runIndex: r };
            const cpuBefore = options.cpu ? threadCpu(server.pid) : null;
            const clientCpuBefore = options.cpu ? process.cpuUsage() : null;
            try {
              const cells = await within(workload.run(env), timeoutMs, `${workload.name} on ${spec.name}`);
              // Forking servers' session processes count once reaped: give the listener a moment.
              if (cpuBefore) await new Promise((res) => setTimeout(res, 300));
              if (cpuBefore) {
                const client = process.cpuUsage(clientCpuBefore ?? undefined);
                log(`${workload.name} on ${spec.name}: server ${formatCpuDelta(cpuBefore, threadCpu(server.pid))}; client ${((client.user + client.system) / 1e6).toFixed(2)} s CPU`);
              }
              for (const row of workload.rows) addCell(results, row.id, spec.name, cells[row.id] ?? errorCell("no value"));
              log(`${workload.name} on ${spec.name} ${options.rounds > 1 ? `round ${round + 1}/${options.rounds}, ` : ""}run ${r + 1}/${runs}: ${workload.rows.map((row) => describe(cells[row.id], row)).join(", ")} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
            } catch (err) {
              const why = (err as Error).message.slice(0, 120);
              log(`${workload.name} on ${spec.name} ${options.rounds > 1 ? `round ${round + 1}/${options.rounds}, ` : ""}run ${r + 1}/${runs} failed: ${why}`);
              for (const row of workload.rows) addCell(results, row.id, spec.name, { value: null, text: "error", note: why });
            }
            // Let closing connections finish before the next run.
            await new Promise((res) => setTimeout(res, 500));
          }
        } finally {
          await server.stop();
        }
      }
    }
  }
  return results;
}

function describe(cell: Cell | undefined, row: RowDef): string {
  if (!cell) return `${row.id} ?`;
  return `${row.id} ${cell.text ?? (cell.value === null ? "n.a." : cell.value.toFixed(row.digits))}${cell.note ? ` [${cell.note}]` : ""}`;
}

// ---------------------------------------------------------------------------------------------
// The table.

const fmt = (v: number, digits: number) =>
  v.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** The figure of one server on one row: median (or largest) of the runs with a value, the spread when several. */
function summarize(cells: Cell[] | undefined, row: RowDef, footnote: (text: string) => string): { text: string; value: number | null } {
  if (!cells || cells.length === 0) return { text: "–", value: null };
  const valued = cells.filter((c) => c.value !== null && Number.isFinite(c.value));
  const notes = [...new Set(cells.map((c) => c.note).filter((n): n is string => !!n))];
  const mark = notes.length ? footnote(notes.join("; ")) : "";
  if (valued.length === 0) return { text: (cells[0].text ?? "n.a.") + mark, value: null };
  // A server that failed in most of its runs has no figure: its good runs alone would flatter it.
  if (valued.length * 2 < cells.length) {
    return { text: `${cells.length - valued.length} of ${cells.length} runs without a figure${mark}`, value: null };
  }
  const values = valued.map((c) => c.value!);
  const med = row.aggregate === "max" ? Math.max(...values) : median(values);
  // The text of the run closest to the median (for cells that carry text, e.g. ok/fail/refused).
  const mid = valued.reduce((best, c) => (Math.abs(c.value! - med) < Math.abs(best.value! - med) ? c : best));
  let text = mid.text ?? fmt(med, row.digits);
  if (values.length > 1 && mid.text === undefined) {
    text += ` (${fmt(Math.min(...values), row.digits)}–${fmt(Math.max(...values), row.digits)})`;
  } else if (values.length > 1) {
    text += ` (n=${values.length})`;
  }
  if (valued.length < cells.length) text += ` (${cells.length - valued.length} of ${cells.length} runs without a figure)`;
  return { text: text + mark, value: med };
}

/** Which workloads ran warm-up runs first (not counted), for the table's legend. */
function warmupNote(workloads: Workload[], options: Options): string {
  const warmed = options.quick ? [] : workloads.filter((w) => w.warmupRuns);
  if (warmed.length === 0) return "";
  return `, after warm-up runs against the same server process that are not counted (${warmed.map((w) => `${w.name}: ${w.warmupRuns}`).join(", ")}; they warm the Node servers' JIT and the client's)`;
}

function buildTable(results: Results, workloads: Workload[], specs: ServerSpec[], ctx: BenchContext, options: Options, elapsedMs: number, timeWait: string): string {
  const footnotes: string[] = [];
  const footnote = (text: string) => {
    let i = footnotes.indexOf(text);
    if (i < 0) i = footnotes.push(text) - 1;
    return ` [${i + 1}]`;
  };
  const names = specs.map((s) => s.name);
  const header = ["workload", ...names.map((n) => (n === "edgeftp" ? "**edgeftp**" : n)), "edgeftp vs best peer"];
  const lines = [`| ${header.join(" | ")} |`, `| ${header.map((_, i) => (i === 0 ? "---" : "---:")).join(" | ")} |`];
  const sizeNote = options.quick ? " (quick sizes)" : "";
  for (const workload of workloads) {
    for (const row of workload.rows) {
      const byServer = results.cells.get(row.id);
      const figures = names.map((n) => summarize(byServer?.get(n), row, footnote));
      const edge = figures[names.indexOf("edgeftp")]?.value ?? null;
      let best: { name: string; value: number } | null = null;
      names.forEach((n, i) => {
        const v = figures[i].value;
        if (n === "edgeftp" || v === null || specs[i].reference) return;
        if (!best || (row.better === "higher" ? v > best.value : v < best.value)) best = { name: n, value: v };
      });
      let ratio = "–";
      const b = best as { name: string; value: number } | null;
      if (row.target) {
        if (edge !== null) ratio = `${edge.toFixed(row.digits)}: ${edge >= row.target.min ? "meets" : "misses"} the ≥ ${row.target.min.toFixed(2)} target`;
      } else if (edge !== null && b !== null) {
        const r = row.better === "higher" ? (b.value === 0 ? Infinity : edge / b.value) : edge === 0 ? Infinity : b.value / edge;
        ratio = `${Number.isFinite(r) ? r.toFixed(2) : "∞"}× (${b.name})`;
        // What the ceiling allows on this row, as the same ratio: a target above it is out of reach.
        names.forEach((n, i) => {
          const v = figures[i].value;
          if (specs[i].reference && v !== null && row.better === "higher" && b.value > 0) ratio += `; ${n}: ${(v / b.value).toFixed(2)}×`;
        });
      }
      lines.push(`| ${row.label}${sizeNote} | ${figures.map((f) => f.text).join(" | ")} | ${ratio} |`);
    }
  }
  const out = [
    `## edgeftp benchmark${options.quick ? " (--quick)" : ""}`,
    "",
    `Figures: median of the runs, or the largest where the row says so (min–max when several runs)${warmupNote(workloads, options)}; ratio: edgeftp against the best peer on that row, above 1.00× means edgeftp is ahead (for ms and memory rows: best peer's value ÷ edgeftp's); on the "active ÷ passive" and "FTPS ÷ plain" rows, edgeftp's own ratio against its target instead. MB = 10^6 bytes. Issue-3 rows: completed / failed / refused of all clients, and how many PASV replies named a port outside the range; their ratio compares the transfers completed through a port inside the range (a firewall that opens only the range stops the others).${specs.some((s) => s.reference) ? " null-ftpd is not a peer but the small-file rows' ceiling: the protocol with nothing behind it (bench/null-ftpd.c: no accounts, paths or files; a STOR's bytes dropped, a RETR sent from memory), so no server can pass its rate with this client on this machine; its rate over the best peer's follows the ratio." : ""}`,
    "",
    ...lines,
    "",
  ];
  if (footnotes.length) {
    out.push("Notes:", "", ...footnotes.map((t, i) => `${i + 1}. ${t}`), "");
  }
  const problems = [...results.problems.entries()];
  if (problems.length) {
    out.push("Not measured:", "", ...problems.map(([s, list]) => `- ${s}: ${list.join("; ")}`), "");
  }
  out.push("Machine:", "", ...machineFacts(ctx, specs, timeWait, options.edgeftpNodeFlags), `- Benchmark wall time: ${(elapsedMs / 60_000).toFixed(1)} min; command: \`node dist/bench/run.js ${process.argv.slice(2).join(" ")}\``.trimEnd(), "");
  return out.join("\n");
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  takeLock();
  const env = readEnvFile();
  const user = env.BENCH_USER;
  const { uid, gid } = userIds(user);
  const ctx: BenchContext = {
    repo,
    root: process.env.BENCH_ROOT || env.BENCH_ROOT_DEFAULT,
    user,
    password: env.BENCH_PASSWORD,
    // Below Linux's ephemeral range (32768+), so no client socket holds a port a server listens on,
    // and clear of 20000-31999, where the test suite picks its random ranges.
    pasvFirst: 18000,
    pasvLast: 18099,
    runDir: join(repo, ".bench", "run"),
    edgeftpCli: options.edgeftpCli,
    edgeftpDataDir: join(repo, ".bench", "edgeftp-data"),
    edgeftpNodeArgs: [],
    uid,
    gid,
    tls: null,
  };
  mkdirSync(ctx.runDir, { recursive: true });
  const specs = ALL_SERVERS.filter((s) => !options.servers || options.servers.includes(s.name));
  if (options.profile) log("--profile: edgeftp runs under node --cpu-prof");
  const workloads = selectWorkloads(options.only);
  if (workloads.length === 0) throw new Error(`no workload matches --only ${options.only?.join(",")}`);
  log(`preparing test files in ${ctx.root}`);
  prepareFiles(ctx, options.quick, workloads);
  const timeWait = capTimeWait();
  log(timeWait);
  const t0 = Date.now();
  const results = await runAll(options, ctx, specs, workloads);
  const table = buildTable(results, workloads, specs, ctx, options, Date.now() - t0, timeWait);
  process.stdout.write(table + "\n");
  mkdirSync(join(repo, ".bench"), { recursive: true });
  writeFileSync(join(repo, ".bench", "results.md"), table + "\n");
  writeFileSync(
    join(repo, ".bench", "results.json"),
    JSON.stringify({ options, cells: Object.fromEntries([...results.cells].map(([k, v]) => [k, Object.fromEntries(v)])) }, null, 1),
  );
  log("table written to .bench/results.md (raw runs in .bench/results.json)");
  if (options.profile) {
    const parts: string[] = [];
    for (const workload of workloads) {
      const dir = join(repo, ".bench", "profiles", workload.name);
      if (!existsSync(dir)) continue;
      for (const f of readdirSync(dir).filter((n) => n.endsWith(".cpuprofile"))) {
        parts.push(formatProfileSummary(`edgeftp, ${workload.name} (${f})`, summarizeProfile(join(dir, f))));
      }
    }
    writeFileSync(join(repo, ".bench", "profiles", "summary.md"), parts.join("\n"));
    log("profile summaries written to .bench/profiles/summary.md");
  }
}

/** Every server still running (on an error path) is stopped by its PID. */
async function stopAll(): Promise<void> {
  restoreTimeWait();
  for (const child of [...live]) if (child.pid) await stopTree(child.pid, 2000);
  releaseLock();
}

/**
 * One benchmark at a time on this machine: two runs would share the test files (one's STOR
 * truncating the file the other checks) and pick the same control ports, so one would measure the
 * other's servers. The lock file holds the running benchmark's PID; a lock whose process is gone
 * is taken over.
 */
const lockPath = join(tmpdir(), "edgeftp-bench.lock");
let lockHeld = false;

function takeLock(): void {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(lockPath, "wx");
      writeSync(fd, String(process.pid));
      closeSync(fd);
      lockHeld = true;
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      const holder = Number(readFileSync(lockPath, "utf8").trim());
      if (Number.isInteger(holder) && holder > 0 && holder !== process.pid && isAlive(holder)) {
        throw new Error(`another benchmark (PID ${holder}) is running on this machine (${lockPath}); wait for it to finish`);
      }
      rmSync(lockPath, { force: true }); // left by a run that died
    }
  }
  throw new Error(`cannot take ${lockPath}`);
}

function releaseLock(): void {
  if (!lockHeld) return;
  lockHeld = false;
  try {
    if (readFileSync(lockPath, "utf8").trim() === String(process.pid)) rmSync(lockPath, { force: true });
  } catch {
    // already gone
  }
}

for (const sig of ["SIGINT", "SIGTERM"] as const) {
  process.once(sig, () => {
    log(`${sig}: stopping the servers`);
    void stopAll().finally(() => process.exit(130));
  });
}

try {
  await main();
  await stopAll();
  process.exit(0);
} catch (err) {
  log(`failed: ${(err as Error).stack ?? err}`);
  await stopAll();
  process.exit(1);
}
