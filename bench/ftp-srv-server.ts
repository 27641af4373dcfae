/**
 * ftp-srv (the Node peer) as a foreground server for the benchmark: one account, rooted at the
 * common root, the common passive range. Settings come from the environment (bench/peers.ts).
 */
import { readFileSync } from "node:fs";
import { FtpSrv } from "ftp-srv";

const env = (name: string): string => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} not set`);
  return v;
};

const port = Number(env("BENCH_PORT"));
const [pasvMin, pasvMax] = env("BENCH_PASV").split("-").map(Number);
const root = env("BENCH_ROOT");
const user = env("BENCH_USER");
const password = env("BENCH_PASSWORD");
// FTPS row: explicit TLS (AUTH TLS) with the common certificate when these are set.
const tlsCert = process.env.BENCH_TLS_CERT;
const tlsKey = process.env.BENCH_TLS_KEY;

// ftp-srv logs through bunyan by default; a silent logger keeps logging out of the measurement.
const quiet: Record<string, unknown> = {};
for (const level of ["trace", "debug", "info", "warn", "error", "fatal"]) quiet[level] = () => {};
quiet.child = () => quiet;

const server = new FtpSrv({
  url: `ftp://127.0.0.1:${port}`,
  pasv_url: "127.0.0.1",
  pasv_min: pasvMin,
  pasv_max: pasvMax,
  anonymous: false,
  greeting: "ftp-srv ready",
  log: quiet,
  timeout: 600_000,
  ...(tlsCert && tlsKey ? { tls: { cert: readFileSync(tlsCert), key: readFileSync(tlsKey) } } : {}),
});

server.on("login", ({ username, password: given }, resolve, reject) => {
  if (username === user && given === password) resolve({ root });
  else reject(new Error("bad credentials"));
});
// A client that resets its connection must not take the server down.
server.on("client-error", () => {});

await server.listen();

const stop = () => {
  void Promise.resolve(server.close()).finally(() => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
