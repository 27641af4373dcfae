/**
 * libuv's thread pool runs every file operation and password hash. Its default of 4 threads lets
 * a few slow disk calls or argon2 verifications (~13 ms each) queue up everything else on a busy
 * edge. The size is read once, at the pool's first use, so this module is imported first by the
 * CLI. An operator's UV_THREADPOOL_SIZE wins.
 */
process.env.UV_THREADPOOL_SIZE ??= "16";
