/**
 * `edgeftp doctor`: checks a running or configured node the way a support engineer would, from
 * the outside, and says for each problem which option fixes it.
 */
import { createPrivateKey, X509Certificate } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { once } from "node:events";
import { connect, isIP, isIPv4, isIPv6, type Socket } from "node:net";
import { connect as tlsConnect } from "node:tls";
import { networkInterfaces } from "node:os";
import { join } from "node:path";
import type { Config } from "../config/schema.js";
import { resolveDataPaths } from "../config/load.js";
import { canonicalIp } from "../data/addresses.js";
import { isPublicIPv4, PassiveAddressPolicy } from "../data/passive-address.js";
import { createLogger } from "../observe/logger.js";
import { selfSignedFiles } from "../tls/self-signed.js";
import { canBind } from "./bind-probe.js";

export type CheckStatus = "ok" | "warn" | "fail";

export interface CheckResult {
  check: string;
  status: CheckStatus;
  detail: string;
}

export interface DoctorOptions {
  /** Where the node's control port is reached from here (default: 127.0.0.1, or the configured host). */
  target?: string;
  /** With credentials, doctor also logs in, asks for PASV and connects to the advertised port. */
  user?: string;
  password?: string;
  timeoutMs?: number;
}

const result = (check: string, status: CheckStatus, detail: string): CheckResult => ({ check, status, detail });

/**
 * A tiny FTP conversation: the greeting; then, when there are `lines` to send and the greeting is a
 * 220, AUTH TLS (the password never goes in clear, and a node that requires TLS lets no one log in
 * without it) and `lines` one at a time. Resolves with the greeting and the final reply of each line
 * sent; rejects when TLS cannot be started.
 */
async function converse(
  host: string,
  port: number,
  lines: string[] | ((remote: { address: string; ipv6: boolean; local: string }) => string[]),
  timeoutMs: number,
  /** Called with each reply before the next line is sent (e.g. to connect to the port a PASV offered). */
  onReply?: (reply: string) => Promise<void>,
): Promise<string[]> {
  let socket: Socket = connect({ host, port });
  const timer = setTimeout(() => socket.destroy(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
  try {
    const clear = replyReader(socket);
    const replies = [await clear.next()];
    // A hostname may resolve to either family: what to send depends on the one connected.
    if (typeof lines === "function") lines = lines({ address: socket.remoteAddress ?? host, ipv6: socket.remoteFamily === "IPv6", local: socket.localAddress ?? "" });
    if (lines.length === 0 || !replies[0].startsWith("220")) return replies;
    socket.write("AUTH TLS\r\n");
    const auth = await clear.next();
    if (!auth.startsWith("234")) throw new Error(`AUTH TLS refused: ${auth}`);
    clear.stop(); // what follows is the handshake's
    // The certificate is checked on its own (certificateCheck); here it only protects the password.
    const secure = tlsConnect({ socket, servername: isIP(host) ? undefined : host, rejectUnauthorized: false });
    await once(secure, "secureConnect");
    socket = secure;
    const protectedReplies = replyReader(socket);
    for (const line of lines) {
      socket.write(line + "\r\n");
      const reply = await protectedReplies.next();
      replies.push(reply);
      await onReply?.(reply);
    }
    return replies;
  } finally {
    clearTimeout(timer);
    socket.destroy();
  }
}

/** The final lines of replies read from `socket`, one per `next()` (inner lines of a multi-line reply skipped), until `stop()`. */
function replyReader(socket: Socket): { next(): Promise<string>; stop(): void } {
  const ready: string[] = [];
  const waiting: Array<{ resolve(line: string): void; reject(err: Error): void }> = [];
  let failure: Error | null = null;
  let buffer = "";
  const onData = (chunk: Buffer) => {
    buffer += chunk.toString("utf8");
    for (let end = buffer.indexOf("\r\n"); end >= 0; end = buffer.indexOf("\r\n")) {
      const line = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      if (!/^\d{3} /.test(line)) continue;
      const waiter = waiting.shift();
      if (waiter) waiter.resolve(line);
      else ready.push(line);
    }
  };
  const onEnd = (err?: Error) => {
    failure = err ?? new Error("connection closed");
    for (const waiter of waiting.splice(0)) waiter.reject(failure);
  };
  const onClose = () => onEnd();
  socket.on("data", onData);
  socket.on("error", onEnd);
  socket.on("close", onClose);
  return {
    next() {
      const line = ready.shift();
      if (line !== undefined) return Promise.resolve(line);
      if (failure) return Promise.reject(failure);
      return new Promise((resolve, reject) => waiting.push({ resolve, reject }));
    },
    stop() {
      socket.off("data", onData);
      socket.off("error", onEnd);
      socket.off("close", onClose);
    },
  };
}

function localAddresses(): Set<string> {
  const out = new Set<string>();
  for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) out.add(a.address);
  return out;
}

export async function runDoctor(config: Config, options: DoctorOptions = {}): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  const timeoutMs = options.timeoutMs ?? 5000;
  const target = options.target ?? (config.host === "::" || config.host === "0.0.0.0" ? "127.0.0.1" : config.host);
  const bindHost = config.host === "::" ? "::" : config.host;

  // Control port.
  let running = false;
  try {
    const [greeting] = await converse(target, config.port, [], timeoutMs);
    running = greeting.startsWith("220");
    results.push(result("control", running ? "ok" : "fail", `${target}:${config.port} answers: ${greeting}`));
  } catch (err) {
    results.push(
      result("control", "fail", `nothing answers FTP on ${target}:${config.port} (${(err as Error).message}); is \`edgeftp serve\` running with this --port / --config?`),
    );
  }

  // Passive range: every port bindable (a running node's own pending listeners may hold a few).
  if (config.pasv.enabled) {
    const [first, last] = config.pasv.ports.split("-").map(Number);
    const busy: number[] = [];
    let denied = 0;
    for (let port = first; port <= last; port++) {
      const err = await canBind(bindHost, port);
      if (err?.code === "EADDRINUSE") busy.push(port);
      else if (err) denied++;
    }
    const total = last - first + 1;
    if (denied > 0) {
      results.push(result("passive ports", "fail", `${denied} of ${total} ports in ${config.pasv.ports} cannot be bound (permission); choose an unprivileged range with --pasv-ports`));
    } else if (busy.length === total && !running) {
      // No node of ours runs to hold them: another program does, and every PASV/EPSV would get 425.
      results.push(result("passive ports", "fail", `all ${total} ports in ${config.pasv.ports} are in use by another program: every PASV/EPSV would fail; move the range with --pasv-ports`));
    } else if (busy.length > total / 10) {
      results.push(
        result("passive ports", "warn", `${busy.length} of ${total} ports are in use (${busy.slice(0, 10).join(", ")}${busy.length > 10 ? ", …" : ""}); another program may hold them, or the running node (its listeners linger ~10 s after a transfer): if it persists, move the range with --pasv-ports`),
      );
    } else {
      results.push(result("passive ports", "ok", `${total - busy.length} of ${total} ports in ${config.pasv.ports} bindable${busy.length ? ` (${busy.length} in use, e.g. by pending reservations)` : ""}`));
    }
  } else {
    results.push(result("passive ports", "warn", "passive mode is disabled (--pasv-enabled); most clients need it"));
  }

  // Advertised address.
  const policy = new PassiveAddressPolicy(config.pasv.address, config.pasv.addressOverrides, createLogger("silent"));
  let policyResolved = false;
  try {
    await policy.refresh();
    policyResolved = true;
    const advertised = policy.addressFor("0.0.0.0", "");
    if (!advertised) {
      results.push(result("pasv address", "warn", "PASV advertises the control connection's local address; behind NAT set --pasv-address to the public IP or DNS name (EPSV clients are unaffected)"));
    } else if (!isPublicIPv4(advertised)) {
      results.push(result("pasv address", "warn", `PASV advertises ${advertised}, a non-public address: clients outside its network cannot reach it; set --pasv-address to the public address`));
    } else if (!localAddresses().has(advertised)) {
      results.push(result("pasv address", "ok", `PASV advertises ${advertised} (not an interface of this machine: fine behind NAT if ${config.pasv.ports} is forwarded here)`));
    } else {
      results.push(result("pasv address", "ok", `PASV advertises ${advertised}, an interface of this machine`));
    }
  } catch (err) {
    results.push(result("pasv address", "fail", (err as Error).message));
  }

  // A full passive round trip, when we may log in: the data port PASV offers must take a connection
  // from here (through the NAT and firewall in between, if any).
  if (running && options.user !== undefined) {
    try {
      let reached: string | null = null;
      // PASV cannot carry an IPv6 address (RFC 2428 §1): over IPv6 the node answers it 522, so ask
      // for EPSV there, whose port is on the address the control connection reached.
      let v6 = isIPv6(target);
      let peer = target;
      const parseOffer = (reply: string): { host: string; port: number } | null => {
        if (v6) {
          const m = /^229 .*\(([!-~])\1\1(\d+)\1\)/.exec(reply);
          return m ? { host: peer, port: Number(m[2]) } : null;
        }
        const m = /^227 .*\((\d+),(\d+),(\d+),(\d+),(\d+),(\d+)\)/.exec(reply);
        return m ? { host: m.slice(1, 5).join("."), port: Number(m[5]) * 256 + Number(m[6]) } : null;
      };
      const connectToOffer = async (reply: string) => {
        const offer = parseOffer(reply);
        if (!offer) return;
        const data = connect(offer);
        // Within the conversation's own time limit, which runs meanwhile: a port a firewall drops
        // in silence is reported as such, not as the control connection timing out.
        const connectMs = Math.max(500, Math.floor(timeoutMs / 3));
        const timer = setTimeout(() => data.destroy(new Error(`no connection within ${connectMs} ms`)), connectMs);
        try {
          await once(data, "connect");
          reached = "connected";
        } catch (err) {
          reached = (err as Error).message;
        } finally {
          clearTimeout(timer);
          data.destroy();
        }
      };
      // What this configuration says the node should offer a client at our address (overrides included).
      let expected = "";
      const lines = (remote: { address: string; ipv6: boolean; local: string }) => {
        v6 = remote.ipv6;
        peer = remote.address;
        if (!v6 && policyResolved) expected = policy.addressFor(canonicalIp(remote.local), canonicalIp(remote.address));
        return [`USER ${options.user}`, `PASS ${options.password ?? ""}`, v6 ? "EPSV" : "PASV", "QUIT"];
      };
      const replies = await converse(target, config.port, lines, timeoutMs, connectToOffer);
      const verb = v6 ? "EPSV" : "PASV";
      const pasv = replies[3] ?? "";
      const m = parseOffer(pasv);
      if (replies.length === 1) {
        results.push(result("pasv round trip", "fail", `the node greeted with ${replies[0]}`));
      } else if (!replies[2]?.startsWith("230")) {
        results.push(result("pasv round trip", "fail", `login as ${options.user} failed: ${replies[2]}`));
      } else if (!m) {
        results.push(result("pasv round trip", "fail", `${verb} failed: ${pasv}`));
      } else {
        const { host, port } = m;
        const [first, last] = config.pasv.ports.split("-").map(Number);
        const inRange = port >= first && port <= last;
        const connected = reached === "connected";
        // The running node does not read this configuration (another --config, an environment
        // variable set only in this shell): what "pasv address" checked is not what clients get.
        const mismatch =
          !v6 && expected && host !== expected
            ? `, but this configuration advertises ${expected} (does \`edgeftp serve\` read the same --config and environment?)`
            : "";
        // A public address of the NAT in front (not this machine's): many NATs do not loop a
        // connection from inside back in, so failing from here proves nothing about the outside.
        const behindNat = !connected && !localAddresses().has(host) && !host.startsWith("127.") && host !== "::1";
        results.push(
          result(
            "pasv round trip",
            !inRange || mismatch ? "fail" : connected ? "ok" : behindNat ? "warn" : "fail",
            `${verb} offered ${v6 ? `[${host}]` : host}:${port}${inRange ? "" : `, outside the configured range ${config.pasv.ports}`}${mismatch}; ${
              connected
                ? "a data connection to it was accepted"
                : `a data connection to it failed (${reached ?? "not tried"}): ${behindNat ? "it is not this machine's address, and a NAT may not loop connections back in; check from outside" : `check the firewall or NAT forwarding of ${config.pasv.ports}`}`
            }`,
          ),
        );
      }
    } catch (err) {
      results.push(result("pasv round trip", "fail", (err as Error).message));
    }
  }

  // Active mode from port 20.
  if (config.active.enabled && config.active.port > 0) {
    const err = await canBind(isIPv4(target) ? "0.0.0.0" : "::", config.active.port);
    if (!err || err.code === "EADDRINUSE") {
      results.push(result("active port", "ok", `port ${config.active.port} can be bound for active-mode connections (by this user: serve needs the same privilege)`));
    } else {
      results.push(
        result("active port", "warn", `port ${config.active.port} cannot be bound (${err.code}): active data will come from ephemeral ports; run as root or with CAP_NET_BIND_SERVICE, or set --active-port 0`),
      );
    }
  }

  // Clock: MDTM/MFMT, logs and certificates all depend on it.
  const year = new Date().getUTCFullYear();
  results.push(year >= 2024 && year < 2100 ? result("clock", "ok", new Date().toISOString()) : result("clock", "fail", `system clock reads ${new Date().toISOString()}; fix NTP`));

  results.push(certificateCheck(config));

  // Embedded data.
  const paths = resolveDataPaths(config);
  if (config.accounts.driver === "sqlite") {
    results.push(
      existsSync(paths.sqlitePath)
        ? result("accounts", "ok", `SQLite store at ${paths.sqlitePath}`)
        : result("accounts", "warn", `no account store at ${paths.sqlitePath}: nobody can log in; add one with \`edgeftp user add NAME\` (same --data-dir)`),
    );
  }
  return results;
}

/** The TLS certificate: readable, matching its key, valid now and for a while yet. */
function certificateCheck(config: Config): CheckResult {
  const selfSigned = !config.tls.cert;
  const quickStart = selfSignedFiles(join(resolveDataPaths(config).dataDir, "tls"));
  const certPath = config.tls.cert || quickStart.cert;
  const keyPath = config.tls.key || quickStart.key;
  if (selfSigned && !existsSync(certPath)) {
    return result("tls certificate", "warn", "none configured: a self-signed one is generated at first start; set --tls-cert and --tls-key for clients that verify");
  }
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(readFileSync(certPath));
    if (!cert.checkPrivateKey(createPrivateKey(readFileSync(keyPath)))) {
      return result("tls certificate", "fail", `${keyPath} is not the key of ${certPath}; fix --tls-key`);
    }
  } catch (err) {
    return result("tls certificate", "fail", `cannot load ${certPath} / ${keyPath}: ${(err as Error).message}`);
  }
  const now = Date.now();
  const until = Date.parse(cert.validTo);
  const from = Date.parse(cert.validFrom);
  const days = Math.floor((until - now) / 86_400_000);
  if (from > now) return result("tls certificate", "fail", `not valid before ${cert.validFrom}: is the clock right?`);
  if (until <= now) return result("tls certificate", "fail", `expired ${cert.validTo}; renew it (the node reloads on SIGHUP or file change)`);
  if (days < 14) return result("tls certificate", "warn", `expires in ${days} days (${cert.validTo}); renew it`);
  return result(
    "tls certificate",
    selfSigned ? "warn" : "ok",
    `${cert.subject.replace(/\n/g, ", ")}, valid until ${cert.validTo}${selfSigned ? " (self-signed: clients will warn; set --tls-cert/--tls-key)" : ""}`,
  );
}

export function formatDoctorReport(results: CheckResult[]): string {
  const width = Math.max(...results.map((r) => r.check.length));
  return results.map((r) => `${r.status.toUpperCase().padEnd(4)}  ${r.check.padEnd(width)}  ${r.detail}`).join("\n") + "\n";
}
