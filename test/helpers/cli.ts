/** Runs the built CLI in a child process, as an operator would, for the CLI tests. */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { TestContext } from "node:test";

/** The built CLI: this file runs as dist/test/helpers/cli.js. */
export const CLI = fileURLToPath(new URL("../../src/cli.cjs", import.meta.url));

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** A temporary working directory, removed when the test ends; `dataDir` is inside it. */
export function workspace(t: TestContext): { dir: string; dataDir: string } {
  const dir = mkdtempSync(join(tmpdir(), "edgeftp-cli-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return { dir, dataDir: join(dir, "data") };
}

/**
 * Runs the CLI in `cwd` with `input` on stdin (a pipe, never a terminal). The inherited
 * environment is stripped of EDGEFTP_* variables so only those in `env` apply.
 */
export function edgeftp(cwd: string, args: string[], { input = "", env = {} }: { input?: string; env?: Record<string, string> } = {}): Promise<Run> {
  const base = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith("EDGEFTP_")));
  const child = spawn(process.execPath, [CLI, ...args], { cwd, env: { ...base, ...env } });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
  child.stdin.end(input);
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

/** Asserts a failure: exit status 1 and exactly one line on stderr, matching `reason`. */
export function assertFailure(run: Run, reason: RegExp): void {
  assert.equal(run.code, 1, `exit status (stderr: ${run.stderr})`);
  assert.match(run.stderr, /^edgeftp: [^\n]+\n$/, "one line on stderr");
  assert.match(run.stderr, reason);
}

export function assertSuccess(run: Run): void {
  assert.equal(run.code, 0, `exit status (stderr: ${run.stderr})`);
  assert.equal(run.stderr, "");
}
