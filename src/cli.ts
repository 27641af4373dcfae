#!/usr/bin/env node
/**
 * The `edgeftp` command's entry point. Static imports are all loaded before any module runs, and
 * the commands' (commander, pino, zod, SQLite…) take ~0.3 s: so only what must act before them is
 * imported here, the rest (cli-main.ts) once it has.
 */
import "./node/threadpool.js"; // first: sizes libuv's thread pool before anything uses it
import "./node/early-sighup.js"; // next: a SIGHUP while the node loads must not kill it
await import("./cli-main.js");
