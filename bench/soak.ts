/**
 * Soak: N minutes of mixed load against one edgeftp node from 12 client addresses, reporting
 * operations, unexpected replies and the server's memory over time. Not a test: it reports.
 *
 *   npm run build && node dist/bench/soak.js [--minutes 10] [--clients 48]
 *
 * The server runs as its own process (the built CLI) on loopback, with a temp data dir; every loop
 * is bounded by the deadline, every wait by a timeout, and the server is stopped by its PID.
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DataConn, FtpControl } from "./client.js";

const args = new Map<string, string>();
for (let i = 2; i < process.argv.length; i += 2) args.set(process.argv[i].replace(/^--/, ""), process.argv[i + 1]);
const MINUTES = Number(args.get("minutes") ?? 10);
const CLIENTS = Number(args.get("clients") ?? 48);
const SAMPLE_MS = Math.max(5_000, (MINUTES * 60_000) / 20);
const ADDRESSES = Array.from({ length: 12 }, (_, i) => `127.0.0.${i + 2}`);
const USER = "soak";
const PASSWORD = "soak-password";
const CLI = new URL("../src/cli.cjs", import.meta.url).pathname;

const counts = { sessions: 0, ops: 0, unexpected: 0, bytes: 0 };
const unexpected = new Map<string, number>();

function note(what: string): void {
  counts.unexpected++;
  unexpected.set(what, (unexpected.get(what) ?? 0) + 1);
}

function rssKiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) : 0;
}

async function cli(dataDir: string, argv: string[], input = ""): Promise<void> {
  const child = spawn(process.execPath, [CLI, ...argv, "--data-dir", dataDir], { stdio: ["pipe", "ignore", "inherit"] });
  child.stdin.end(input);
  const code = await new Promise<number | null>((r) => child.on("close", r));
  if (code !== 0) throw new Error(`edgeftp ${argv.join(" ")} exited ${code}`);
}

/** Starts the server and resolves with its PID and port (read from its log line). */
async function startServer(dataDir: string, port: number): Promise<{ pid: number; stop(): Promise<void> }> {
  const child = spawn(
    process.execPath,
    [CLI, "serve", "--host", "127.0.0.1", "--port", String(port), "--pasv-ports", "17000-17099", "--data-dir", dataDir,
      "--tls-implicit", "false", "--active-port", "0", "--log-level", "warn", "--limits-max-connections-per-ip", "0"],
    { stdio: ["ignore", "ignore", "inherit"] },
  );
  const deadline = Date.now() + 15_000;
  for (;;) {
    try {
      (await FtpControl.open({ port, timeoutMs: 2000 })).destroy();
      break;
    } catch {
      if (Date.now() > deadline) throw new Error("server did not start");
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  return {
    pid: child.pid!,
    async stop() {
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
      await new Promise((r) => child.on("close", r));
      clearTimeout(timer);
    },
  };
}

/** One virtual client: a session doing a random mix, then the next session, until the deadline. */
async function client(port: number, index: number, deadline: number): Promise<void> {
  const localAddress = ADDRESSES[index % ADDRESSES.length];
  const payload = randomBytes(64 * 1024);
  while (Date.now() < deadline) {
    let ftp: FtpControl | null = null;
    try {
      ftp = await FtpControl.open({ port, localAddress, timeoutMs: 20_000 });
      counts.sessions++;
      if (Math.random() < 0.05) {
        const r = await ftp.command(`USER ${USER}`).then(() => ftp!.command("PASS wrong"));
        if (r.code !== 530) note(`bad PASS got ${r.code}`);
        ftp.destroy();
        continue;
      }
      await ftp.login(USER, PASSWORD);
      await ftp.command("TYPE I");
      const ops = 1 + Math.floor(Math.random() * 8);
      for (let i = 0; i < ops && Date.now() < deadline; i++) {
        const name = `c${index}-${i % 3}.bin`;
        const pick = Math.random();
        counts.ops++;
        if (pick < 0.3) {
          const data = await DataConn.open({ port: await ftp.epsv(), localAddress });
          const [r150, drained] = await Promise.all([ftp.command(`RETR shared-${i % 4}.bin`), data.drain(30_000)]);
          const done = await ftp.reply(30_000);
          if (r150.code !== 150 || done.code !== 226) note(`RETR ${r150.code}/${done.code}`);
          counts.bytes += drained.bytes;
        } else if (pick < 0.55) {
          const data = await DataConn.open({ port: await ftp.epsv(), localAddress });
          const r150 = await ftp.command(`STOR ${name}`);
          await data.send(payload, payload.length, 30_000);
          const done = await ftp.reply(30_000);
          if (r150.code !== 150 || done.code !== 226) note(`STOR ${r150.code}/${done.code}`);
          counts.bytes += payload.length;
        } else if (pick < 0.7) {
          const data = await DataConn.open({ port: await ftp.epsv(), localAddress });
          const [r150] = await Promise.all([ftp.command("LIST"), data.drain(30_000)]);
          const done = await ftp.reply(30_000);
          if (r150.code !== 150 || done.code !== 226) note(`LIST ${r150.code}/${done.code}`);
        } else if (pick < 0.8) {
          await ftp.epsv(); // a reservation never used: must be released by the next command or QUIT
        } else if (pick < 0.9) {
          const r = await ftp.command(`DELE ${name}`);
          if (r.code !== 250 && r.code !== 550) note(`DELE ${r.code}`);
        } else {
          const r = await ftp.command("XYZZY garbage \u00ff");
          if (r.code !== 500) note(`garbage got ${r.code}`);
        }
      }
      if (Math.random() < 0.2) ftp.destroy(); // abrupt disconnect
      else await ftp.quit();
    } catch (err) {
      note(`exception: ${(err as Error).message.replace(/\d+/g, "N").slice(0, 60)}`);
      ftp?.destroy();
    }
  }
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "edgeftp-soak-"));
  const dataDir = join(dir, "data");
  const port = 17100 + Math.floor(Math.random() * 100);
  let server: { pid: number; stop(): Promise<void> } | null = null;
  try {
    await cli(dataDir, ["user", "add", USER, "--password-stdin"], `${PASSWORD}\n`);
    const home = join(dataDir, "homes", USER);
    mkdirSync(home, { recursive: true });
    for (let i = 0; i < 4; i++) writeFileSync(join(home, `shared-${i}.bin`), randomBytes(256 * 1024));
    server = await startServer(dataDir, port);
    const started = Date.now();
    const deadline = started + MINUTES * 60_000;
    const samples: string[] = [];
    const sample = () => {
      const t = Math.round((Date.now() - started) / 1000);
      samples.push(`| ${t} | ${counts.sessions} | ${counts.ops} | ${counts.unexpected} | ${(counts.bytes / 1e6).toFixed(0)} | ${(rssKiB(server!.pid) / 1024).toFixed(1)} |`);
      console.error(samples[samples.length - 1]);
    };
    sample();
    const sampler = setInterval(sample, SAMPLE_MS);
    await Promise.all(Array.from({ length: CLIENTS }, (_, i) => client(port, i, deadline)));
    clearInterval(sampler);
    sample();
    console.log(`## edgeftp soak: ${MINUTES} min, ${CLIENTS} clients from ${ADDRESSES.length} addresses\n`);
    console.log("| s | sessions | operations | unexpected replies | MB moved | server RSS MiB |");
    console.log("| ---: | ---: | ---: | ---: | ---: | ---: |");
    for (const line of samples) console.log(line);
    console.log(`\nUnexpected: ${counts.unexpected === 0 ? "none" : [...unexpected].map(([k, v]) => `${k} ×${v}`).join("; ")}`);
    console.log(`Command: node dist/bench/soak.js --minutes ${MINUTES} --clients ${CLIENTS}`);
  } finally {
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
