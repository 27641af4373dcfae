#!/usr/bin/env node
/**
 * The `edgeftp` command's entry point. CommonJS on purpose: libuv sizes its thread pool, which runs
 * every file operation and kernel copy, at the pool's first use, and Node's ES module loader reads
 * an ES entry point through that pool before any of its code runs, so an ES entry could not size it
 * (the node kept libuv's 4 threads). A CommonJS file is read synchronously: the size is set here,
 * before anything touches the pool (an operator's UV_THREADPOOL_SIZE wins). Then the ES modules:
 * first the SIGHUP guard, a small module, then the commands (commander, pino, zod, SQLite…, ~0.3 s).
 */
process.env.UV_THREADPOOL_SIZE ??= "16";
void import("./node/early-sighup.js").then(() => import("./cli-main.js"));
