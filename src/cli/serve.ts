/** `edgeftp serve`: starts a node on the configured data, drains it on SIGTERM, reloads on SIGHUP. */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { openAccountStore } from "../accounts/open.js";
import { resolveDataPaths } from "../config/load.js";
import type { Config } from "../config/schema.js";
import { EdgeNode } from "../node/edge-node.js";
import { releaseEarlySighup } from "../node/early-sighup.js";
import { claimRunMarker, type RunMarker } from "../node/run-marker.js";
import { createLogger } from "../observe/logger.js";
import { LocalStorageFactory } from "../storage/local.js";
import { selfSignedFiles } from "../tls/self-signed.js";
import { CliError, configFrom, databaseFiles, giveToNodeUser, type CommonOptions } from "./common.js";

export async function serve(options: CommonOptions): Promise<void> {
  const config = configFrom(options);
  const paths = resolveDataPaths(config);
  const logger = createLogger(config.log.level);
  mkdirSync(paths.homesDir, { recursive: true });
  const accounts = openAccountStore({ driver: config.accounts.driver, sqlitePath: paths.sqlitePath, server: true });
  let node: EdgeNode;
  let marker: RunMarker | null = null;
  try {
    try {
      marker = claimRunMarker(paths.dataDir);
    } catch (err) {
      logger.warn({ err: (err as Error).message }, "no run marker could be kept in the data directory: an unclean stop of this node will not be noticed at the next start");
    }
    if (marker && marker.uncleanStops > 0) {
      // Uploads a killed node was receiving left their partial files on disk, uncounted.
      const accountsForgotten = await accounts.forgetUsage();
      logger.warn(
        { uncleanStops: marker.uncleanStops, accountsForgotten },
        "the node serving this data directory last time did not stop cleanly: quota usage will be measured again when each account is next used",
      );
    }
    if ((await accounts.list()).length === 0) {
      logger.warn(
        { sqlitePath: paths.sqlitePath },
        "no accounts yet, so nobody can log in: add one with `edgeftp user add NAME` (with this server's --data-dir or --config)",
      );
    }
    node = await EdgeNode.start(config, { logger, accounts, storage: new LocalStorageFactory({ logger }) });
  } catch (err) {
    await accounts.close();
    marker?.release();
    throw bindFailure(err, config) ?? err;
  }
  // Run as root on a service user's data directory (to bind port 21): what this start made there
  // stays usable by that user, as `user add` leaves what it makes.
  const tlsDir = join(paths.dataDir, "tls");
  const { cert, key } = selfSignedFiles(tlsDir);
  // The account database too, when this start created it (no `user add` ran first): left to root,
  // mode 0600, the service user could neither serve it nor add an account to it.
  giveToNodeUser(paths.dataDir, [...(marker?.made ?? []), paths.homesDir, tlsDir, cert, key, ...databaseFiles(paths.sqlitePath)]);
  let signals = 0;
  const stop = (signal: NodeJS.Signals): void => {
    // A second signal: the operator will not wait for the transfers (they are aborted, and their
    // partial uploads removed); a third: not even for that.
    if (++signals > 1) {
      logger.warn({ signal }, signals === 2 ? "second signal: aborting the transfers in progress" : "third signal: exiting now");
      if (signals === 2) node.cutDrainShort();
      else process.exit(1);
      return;
    }
    logger.info({ signal }, "shutting down");
    node
      .close()
      .then(() => accounts.close())
      .then(
        () => {
          marker?.release();
          logger.info("stopped");
          process.exit(0);
        },
        (err: unknown) => {
          logger.error({ err }, "shutdown failed");
          process.exit(1);
        },
      );
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
  // SIGHUP: re-read TLS certificates and re-resolve the PASV hostname, keeping every session.
  releaseEarlySighup();
  process.on("SIGHUP", () => {
    logger.info("SIGHUP: reloading");
    void node.reload();
  });
  // Last: whoever waits for this line (a supervisor, a test) may signal the node at once.
  logger.info(
    {
      host: config.host,
      port: node.port,
      implicitTlsPort: node.implicitPort,
      pasvPorts: config.pasv.ports,
      activePort: node.activePort,
      dataDir: paths.dataDir,
    },
    `edgeftp listening on port ${node.port}${node.implicitPort ? `, implicit FTPS on ${node.implicitPort}` : ""}`,
  );
}

/**
 * The one-line reason for a listen failure the operator can fix, or undefined for any other
 * error. Looks through `cause`, as the node may wrap the listener's error.
 */
function bindFailure(err: unknown, config: Config): CliError | undefined {
  let current: unknown = err;
  while (current instanceof Error) {
    const e = current as NodeJS.ErrnoException & { port?: unknown; hostname?: unknown };
    if (e.syscall === "listen" || e.syscall === "bind") {
      const port = typeof e.port === "number" ? e.port : config.port;
      const isControlPort = port === config.port;
      switch (e.code) {
        case "EACCES":
          if (port >= 1024) return new CliError(`cannot bind port ${port}: permission denied`);
          return new CliError(
            `cannot bind port ${port} (needs root or CAP_NET_BIND_SERVICE)` +
              (isControlPort ? `; use --port ${port + 2100} for a user port` : ""),
          );
        case "EADDRINUSE":
          return new CliError(`port ${port} is already in use${isControlPort ? " (--port to choose another)" : ""}`);
        case "EADDRNOTAVAIL":
          return new CliError(`cannot listen on ${config.host}: not an address of this machine (--host to choose another)`);
        case "EAFNOSUPPORT":
          return new CliError(`cannot listen on ${config.host}: address family not supported here (try --host 0.0.0.0)`);
      }
    }
    if (e.syscall === "getaddrinfo" && e.hostname === config.host) {
      return new CliError(`cannot listen on ${config.host} (host): the name does not resolve (${e.code}); give an address of this machine`);
    }
    current = e.cause;
  }
  return undefined;
}
