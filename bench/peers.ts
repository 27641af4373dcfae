/**
 * Launchers for the servers under test: edgeftp and its peers (vsftpd, ProFTPD, Pure-FTPd,
 * ftp-srv). Each runs in the foreground as a child process of the benchmark, on 127.0.0.1 with a
 * given control port, the same passive range, the same account and the same root directory; start()
 * resolves once the control port answers 220, and stop() ends the process tree by PID.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { FtpControl } from "./client.js";
import { stopTree } from "./proc.js";

export interface BenchContext {
  /** The repository (where .bench/ lives). */
  repo: string;
  /** The common root directory, holding the test files. */
  root: string;
  user: string;
  password: string;
  pasvFirst: number;
  pasvLast: number;
  /** Scratch directory for configs, logs, pid files. */
  runDir: string;
  /** edgeftp's CLI (dist/src/cli.cjs of the tree under test). */
  edgeftpCli: string;
  /** edgeftp's data dir (its SQLite accounts). */
  edgeftpDataDir: string;
  /** Extra node flags for the edgeftp server (e.g. --cpu-prof). */
  edgeftpNodeArgs: string[];
  /** The local account's uid/gid: the Node servers run as it, like the forking peers' sessions. */
  uid: number;
  gid: number;
  /**
   * Set for the FTPS workload: one self-signed certificate and key (PEM, made with openssl into
   * .bench/tls/) that every server with TLS is started with. Null: servers start without TLS
   * settings (edgeftp then uses its own generated certificate if a client asks for AUTH TLS).
   */
  tls: { cert: string; key: string } | null;
}

export interface RunningServer {
  readonly name: string;
  readonly pid: number;
  readonly port: number;
  stop(): Promise<void>;
}

export interface ServerSpec {
  name: string;
  /** Why it cannot run here, or null. */
  unavailable(ctx: BenchContext): string | null;
  version(ctx: BenchContext): string;
  /** The command line that runs it in the foreground (writes its config files first). */
  command(ctx: BenchContext, port: number): { cmd: string; args: string[]; env?: NodeJS.ProcessEnv; asUser?: boolean };
  /**
   * Set for a reference that is not a peer (null-ftpd): the workloads it runs; it never counts as
   * the best peer, and the table says what it bounds.
   */
  reference?: { workloads: readonly string[] };
}

const peersDir = (ctx: BenchContext) => join(ctx.repo, ".bench", "peers");
const pureFtpd = (ctx: BenchContext) => join(peersDir(ctx), "pure-ftpd", "usr", "sbin", "pure-ftpd");
const proftpd = (ctx: BenchContext) => join(peersDir(ctx), "proftpd-core", "usr", "sbin", "proftpd");
const VSFTPD = "/usr/sbin/vsftpd";

function firstLine(cmd: string, args: string[], pattern: RegExp): string {
  const r = spawnSync(cmd, args, { encoding: "utf8", timeout: 5000 });
  const text = `${r.stdout ?? ""}\n${r.stderr ?? ""}`;
  return pattern.exec(text)?.[1] ?? "unknown";
}

/** The `serve` flags this build of edgeftp knows (the tree under test changes as issues land). */
const serveFlags = new Map<string, string>();
function supports(cli: string, flag: string): boolean {
  if (!serveFlags.has(cli)) {
    const r = spawnSync(process.execPath, [cli, "serve", "--help"], { encoding: "utf8", timeout: 10_000 });
    serveFlags.set(cli, r.stdout ?? "");
  }
  // The whole flag: --tls-implicit must not match --tls-implicit-port.
  return new RegExp(`(^|\\s)${flag}[\\s,=]`, "m").test(serveFlags.get(cli)!);
}

/**
 * Settings that put edgeftp on the same footing as the peers, applied when this build has them:
 * no per-IP connection cap (the peers' are lifted as far as they go), no per-session command rate
 * limit (no peer throttles commands; edgeftp's default of 5,000/s with bursts of twice that could
 * slow a small-file burst), no implicit-FTPS listener (port 990 needs root; not part of any workload).
 */
const EDGEFTP_BENCH_FLAGS: Array<[string, string]> = [
  // The node-wide cap would refuse part of the 10,000-idle-sessions row.
  ["--limits-max-connections", "0"],
  ["--limits-max-connections-per-ip", "0"],
  ["--limits-commands-per-second", "0"],
  ["--tls-implicit", "false"],
];

export const edgeftp: ServerSpec = {
  name: "edgeftp",
  unavailable: (ctx) => (existsSync(ctx.edgeftpCli) ? null : `${ctx.edgeftpCli} missing (npm run build)`),
  version(ctx) {
    try {
      const pkg = JSON.parse(readFileSync(join(ctx.edgeftpCli, "..", "..", "..", "package.json"), "utf8")) as { version: string };
      return pkg.version;
    } catch {
      return "unknown";
    }
  },
  command: (ctx, port) => ({
    cmd: process.execPath,
    args: [
      ...ctx.edgeftpNodeArgs,
      ctx.edgeftpCli,
      "serve",
      "--port", String(port),
      "--pasv-ports", `${ctx.pasvFirst}-${ctx.pasvLast}`,
      "--data-dir", ctx.edgeftpDataDir,
      "--host", "127.0.0.1",
      "--active-port", "0",
      "--log-level", "warn",
      ...EDGEFTP_BENCH_FLAGS.filter(([flag]) => supports(ctx.edgeftpCli, flag)).flat(),
      // FTPS row: the same certificate as the peers (session reuse is required by default).
      ...(ctx.tls ? ["--tls-cert", ctx.tls.cert, "--tls-key", ctx.tls.key] : []),
    ],
    asUser: true,
  }),
};

export const vsftpd: ServerSpec = {
  name: "vsftpd",
  unavailable: () => (existsSync(VSFTPD) ? null : `${VSFTPD} missing`),
  // vsftpd -v writes its version to file descriptor 0.
  version: () => firstLine("sh", ["-c", `${VSFTPD} -v 0>&1`], /version\s+([\d.]+)/),
  command(ctx, port) {
    const empty = join(ctx.runDir, "vsftpd-empty");
    mkdirSync(empty, { recursive: true, mode: 0o755 });
    const conf = join(ctx.runDir, "vsftpd.conf");
    // Debian's defaults otherwise (isolate/isolate_network on: a network namespace per session).
    const settings: Record<string, string | number> = {
      listen: "YES",
      listen_ipv6: "NO",
      listen_address: "127.0.0.1",
      listen_port: port,
      background: "NO",
      anonymous_enable: "NO",
      local_enable: "YES",
      write_enable: "YES",
      local_umask: "022",
      local_root: ctx.root,
      chroot_local_user: "YES",
      allow_writeable_chroot: "YES",
      pasv_enable: "YES",
      pasv_min_port: ctx.pasvFirst,
      pasv_max_port: ctx.pasvLast,
      max_clients: 0,
      max_per_ip: 0,
      seccomp_sandbox: "NO",
      pam_service_name: "vsftpd",
      secure_chroot_dir: empty,
      xferlog_enable: "NO",
      syslog_enable: "NO",
      connect_from_port_20: "NO",
      ssl_enable: "NO",
      userlist_enable: "NO",
      tcp_wrappers: "NO",
      idle_session_timeout: 600,
      data_connection_timeout: 120,
      use_sendfile: "YES",
    };
    if (ctx.tls) {
      // FTPS row: explicit TLS offered, not forced (the same session also measures plain
      // transfers); data connections must resume the control connection's TLS session, as
      // edgeftp's default requires.
      Object.assign(settings, {
        ssl_enable: "YES",
        rsa_cert_file: ctx.tls.cert,
        rsa_private_key_file: ctx.tls.key,
        require_ssl_reuse: "YES",
        ssl_ciphers: "HIGH",
        ssl_request_cert: "NO",
        allow_anon_ssl: "NO",
        force_local_logins_ssl: "NO",
        force_local_data_ssl: "NO",
      });
    }
    writeFileSync(conf, Object.entries(settings).map(([k, v]) => `${k}=${v}\n`).join(""), { mode: 0o600 });
    return { cmd: VSFTPD, args: [conf] };
  },
};

export const pureftpd: ServerSpec = {
  name: "pure-ftpd",
  unavailable: (ctx) => (existsSync(pureFtpd(ctx)) ? null : "not unpacked (bench/setup.sh)"),
  version: (ctx) => firstLine(pureFtpd(ctx), ["--help"], /pure-ftpd v([\d.]+)/),
  command: (ctx, port) => ({
    cmd: pureFtpd(ctx),
    args: [
      "-S", `127.0.0.1,${port}`,
      "-p", `${ctx.pasvFirst}:${ctx.pasvLast}`,
      "-4", // IPv4 only
      "-l", "unix", // system accounts (crypt against /etc/shadow)
      "-E", // no anonymous
      "-A", // chroot everyone
      "-H", // no reverse DNS
      "-c", "5000", // max clients (default 50)
      "-C", "5000", // max clients per IP (default 50)
      "-L", "100000:5", // listings: up to 100,000 entries (default 10,000), depth 5
      "-I", "10", // idle timeout, minutes
      "-f", "none", // no syslog
      "-u", "1", // minimum uid
      // FTPS row: TLS accepted, not required (-Y 1), with the common certificate.
      ...(ctx.tls ? ["-Y", "1", "-2", `${ctx.tls.cert},${ctx.tls.key}`] : []),
    ],
  }),
};

export const proftpdSpec: ServerSpec = {
  name: "proftpd",
  unavailable: (ctx) => (existsSync(proftpd(ctx)) ? null : "not unpacked (bench/setup.sh)"),
  version: (ctx) => firstLine(proftpd(ctx), ["-v"], /ProFTPD Version ([\d.a-z]+)/i),
  command(ctx, port) {
    const conf = join(ctx.runDir, "proftpd.conf");
    writeFileSync(
      conf,
      [
        `ServerName "edgeftp bench proftpd"`,
        "ServerType standalone",
        "DefaultServer on",
        `Port ${port}`,
        "DefaultAddress 127.0.0.1",
        "SocketBindTight on",
        "UseIPv6 off",
        "User nobody",
        "Group nogroup",
        "Umask 022",
        "MaxInstances 5000",
        `PassivePorts ${ctx.pasvFirst} ${ctx.pasvLast}`,
        `DefaultRoot ${ctx.root}`,
        "AuthPAM off",
        "AuthOrder mod_auth_unix.c",
        "RequireValidShell off",
        "UseReverseDNS off",
        "WtmpLog off",
        "DelayEngine off",
        "TransferLog none",
        `SystemLog ${join(ctx.runDir, "proftpd.log")}`,
        `ScoreboardFile ${join(ctx.runDir, "proftpd.scoreboard")}`,
        `PidFile ${join(ctx.runDir, "proftpd.pid")}`,
        "TimeoutIdle 600",
        "AllowOverwrite on",
        "",
      ].join("\n"),
      { mode: 0o644 },
    );
    return { cmd: proftpd(ctx), args: ["--nodaemon", "--config", conf] };
  },
};

export const ftpsrv: ServerSpec = {
  name: "ftp-srv",
  unavailable(ctx) {
    try {
      createRequire(join(ctx.repo, "package.json")).resolve("ftp-srv");
      return null;
    } catch {
      return "not installed (npm install --save-dev ftp-srv)";
    }
  },
  version(ctx) {
    try {
      const path = createRequire(join(ctx.repo, "package.json")).resolve("ftp-srv/package.json");
      return (JSON.parse(readFileSync(path, "utf8")) as { version: string }).version;
    } catch {
      return "unknown";
    }
  },
  command: (ctx, port) => ({
    cmd: process.execPath,
    args: [join(ctx.repo, "dist", "bench", "ftp-srv-server.js")],
    env: {
      ...process.env,
      BENCH_PORT: String(port),
      BENCH_PASV: `${ctx.pasvFirst}-${ctx.pasvLast}`,
      BENCH_ROOT: ctx.root,
      BENCH_USER: ctx.user,
      BENCH_PASSWORD: ctx.password,
      ...(ctx.tls ? { BENCH_TLS_CERT: ctx.tls.cert, BENCH_TLS_KEY: ctx.tls.key } : {}),
    },
    asUser: true,
  }),
};

/**
 * The small-file rows' ceiling (bench/null-ftpd.c): the protocol with nothing behind it, no
 * accounts, paths or files. Its rate bounds what any server reaches with this client here.
 */
export const nullFtpd: ServerSpec = {
  name: "null-ftpd",
  unavailable: (ctx) => (existsSync(join(peersDir(ctx), "null-ftpd")) ? null : "not compiled (bench/setup.sh)"),
  version: () => "(ceiling)",
  command: (ctx, port) => ({
    cmd: join(peersDir(ctx), "null-ftpd"),
    args: [String(port), String(ctx.pasvFirst), String(ctx.pasvLast)],
    asUser: true,
  }),
  reference: { workloads: ["small"] },
};

export const ALL_SERVERS: readonly ServerSpec[] = [edgeftp, vsftpd, proftpdSpec, pureftpd, ftpsrv, nullFtpd];

/** Every process this benchmark has started and not yet stopped (stopped on exit, by PID). */
export const live = new Set<ChildProcess>();

/** Starts `spec` on `port`, waits for its 220 (within `startMs`), or stops it and throws. */
export async function startServer(spec: ServerSpec, ctx: BenchContext, port: number, startMs = 15_000): Promise<RunningServer> {
  const { cmd, args, env, asUser } = spec.command(ctx, port);
  const child = spawn(cmd, args, {
    detached: true,
    stdio: ["ignore", "ignore", "pipe"],
    env: env ?? process.env,
    ...(asUser ? { uid: ctx.uid, gid: ctx.gid } : {}),
  });
  live.add(child);
  let stderr = "";
  child.stderr?.setEncoding("utf8");
  child.stderr?.on("data", (t: string) => {
    if (stderr.length < 8192) stderr += t;
  });
  let exited: string | null = null;
  child.once("exit", (code, sig) => {
    exited = `exited (${sig ?? code})`;
    live.delete(child);
  });
  child.once("error", (err) => {
    exited = `failed to start: ${err.message}`;
    live.delete(child);
  });
  const pid = child.pid ?? -1;
  const stop = async () => {
    if (pid > 0) await stopTree(pid);
    live.delete(child);
  };
  const deadline = Date.now() + startMs;
  for (let attempt = 0; attempt < 200 && Date.now() < deadline; attempt++) {
    if (exited !== null) break;
    try {
      const c = await FtpControl.open({ port, timeoutMs: 2000 });
      await c.quit();
      return { name: spec.name, pid, port, stop };
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  await stop();
  const why = exited ?? `no 220 on port ${port} within ${startMs} ms`;
  throw new Error(`${spec.name}: ${why}${stderr ? `: ${stderr.trim().split("\n").slice(-3).join(" | ")}` : ""}`);
}
