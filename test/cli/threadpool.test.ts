/**
 * libuv's thread pool runs every file operation, kernel copy and password check: `serve` must run
 * with the 16 threads the entry point (src/cli.cts) asks for, not libuv's default 4, which an ES
 * entry point cannot change (Node's ES loader has used the pool before any of its code runs).
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readdirSync } from "node:fs";
import { test } from "node:test";
import { CLI, workspace } from "../helpers/cli.js";

test("serve runs with a 16-thread libuv pool, not libuv's 4", { skip: process.platform !== "linux" && "reads /proc" }, async (t) => {
  const { dir, dataDir } = workspace(t);
  const pasv = 20000 + Math.floor(Math.random() * 120) * 100;
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith("EDGEFTP_") && name !== "UV_THREADPOOL_SIZE"));
  const args = ["serve", "--host", "127.0.0.1", "--port", "0", "--active-port", "0", "--tls-implicit", "false", "--pasv-ports", `${pasv}-${pasv + 9}`, "--data-dir", dataDir];
  const child = spawn(process.execPath, [CLI, ...args], { cwd: dir, env });
  let output = "";
  let threads = -1;
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => (output += chunk));
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
    output += chunk;
    if (threads < 0 && output.includes("edgeftp listening on port")) {
      threads = readdirSync(`/proc/${child.pid}/task`).length;
      child.kill("SIGTERM");
    }
  });
  const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
  const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
  clearTimeout(timer);
  assert.equal(code, 0, output);
  // The main thread, V8's platform workers and the pool: about 11 threads with libuv's default
  // pool of 4, about 23 with 16.
  assert.ok(threads >= 17, `serve runs ${threads} threads: its libuv pool is not the 16 threads it asks for`);
});
