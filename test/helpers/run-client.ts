/** Running a real FTP client program (curl, lftp, python3) as a child process, and reading its protocol log. */
import { execFile } from "node:child_process";

export interface RunResult {
  /** Exit code; null when the process was killed or could not start. */
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs a child process asynchronously (the server under test shares this event loop), killed
 * with SIGKILL after `timeoutMs`.
 */
export function run(cmd: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs = 30_000): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(
      cmd,
      args,
      { env, timeout: timeoutMs, killSignal: "SIGKILL", maxBuffer: 64 * 1024 * 1024, encoding: "utf8" },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === "number" ? error.code : null) : 0;
        resolve({ code, signal: error?.signal ?? null, stdout, stderr });
      },
    );
  });
}

/** A run for an assertion message: exit status, the start of stdout and the end of stderr. */
export const show = (r: RunResult): string =>
  `exit ${r.code} signal ${r.signal}\nstdout:\n${r.stdout.slice(0, 3000)}\nstderr:\n${r.stderr.slice(-5000)}`;

/** An environment for client processes: a private HOME (no user rc files), no proxies, UTF-8. */
export function childEnv(home: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, HOME: home, LC_ALL: "C.UTF-8", LANG: "C.UTF-8" };
  for (const key of Object.keys(env)) if (/_proxy$/i.test(key) || key.startsWith("XDG_") || key === "LFTP_HOME") delete env[key];
  return env;
}

/** The FTP commands curl sent, from its -v output (`> VERB arg`). */
export function curlCommands(stderr: string): string[] {
  return stderr
    .split(/\r?\n/)
    .filter((l) => l.startsWith("> "))
    .map((l) => l.slice(2));
}

/** The replies curl received, from its -v output (`< 226 text`). */
export function curlReplies(stderr: string): string[] {
  return stderr
    .split(/\r?\n/)
    .filter((l) => l.startsWith("< "))
    .map((l) => l.slice(2));
}

/** The FTP commands lftp sent, from its -d output (`---> VERB arg`). */
export function lftpCommands(stderr: string): string[] {
  return stderr
    .split("\n")
    .filter((l) => l.startsWith("---> "))
    .map((l) => l.slice(5).trimEnd());
}
