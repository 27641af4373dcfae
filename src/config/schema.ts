/**
 * The one configuration schema: every option, its default and its documentation live here.
 * The YAML file uses the nested keys; each leaf can also be set by a flag and an environment
 * variable derived from its path (pasv.ports → --pasv-ports, EDGEFTP_PASV_PORTS), flags winning.
 */
import { isIP, isIPv4 } from "node:net";
import { z } from "zod";
import { parseNetwork } from "../data/addresses.js";

const portRange = z
  .string()
  // abort: the range check below means nothing for a value of the wrong shape.
  .regex(/^\d{1,5}-\d{1,5}$/, { error: "expected A-B, e.g. 21000-21100", abort: true })
  .refine((s) => {
    const [a, b] = s.split("-").map(Number);
    return a >= 1 && b <= 65535 && a <= b;
  }, "range must satisfy 1 <= A <= B <= 65535");

/**
 * Flags and environment variables arrive as strings. Only non-blank strings are converted:
 * `z.coerce.number()` would also turn `""` into 0 and `true` into 1, accepting typos silently.
 */
const numeric = (inner: z.ZodNumber) =>
  z.preprocess((v) => (typeof v === "string" && v.trim() !== "" ? Number(v) : v), inner);

const PORT_MESSAGE = "expected a port number from 0 to 65535";
const port = numeric(z.number({ error: PORT_MESSAGE }).int(PORT_MESSAGE).min(0, PORT_MESSAGE).max(65535, PORT_MESSAGE));
const seconds = numeric(
  z.number({ error: "expected a number of seconds" }).positive("expected a positive number of seconds"),
);
/** The longest delay a Node timer keeps (2^31 - 1 ms); a longer one fires at once. */
export const MAX_TIMER_MS = 2 ** 31 - 1;
const MAX_TIMER_SECONDS = Math.floor(MAX_TIMER_MS / 1000);
/** Seconds a timer waits, at most what a timer can wait: positive, or (`orZero`) 0 too. */
const timerSeconds = (orZero = false) => {
  const n = z.number({ error: "expected a number of seconds" });
  return numeric(
    (orZero ? n.min(0, "expected 0 or a positive number of seconds") : n.positive("expected a positive number of seconds")).max(
      MAX_TIMER_SECONDS,
      `expected at most ${MAX_TIMER_SECONDS} seconds (about 24 days, the longest timer Node keeps)`,
    ),
  );
};

/** `10.0.0.0/8=10.0.0.5`: a client network (IPv4) and the PASV address its clients are given. */
function isOverrideRule(rule: string): boolean {
  const [network, address, ...rest] = rule.trim().split("=");
  return rest.length === 0 && address !== undefined && parseNetwork(network)?.family === "ipv4" && isIPv4(address);
}

const count = numeric(z.number({ error: "expected a whole number" }).int("expected a whole number").min(0, "expected 0 or more"));

const bool = z.preprocess(
  (v) => (v === "true" ? true : v === "false" ? false : v),
  z.boolean({ error: "expected true or false" }),
);

/**
 * The configuration schema. Every object is strict, so a misspelt key is an error that names it.
 * Sections use `.prefault({})`, not `.default({})`: zod 4 returns a default as-is without parsing
 * it, which would leave a missing section empty instead of filled with its fields' defaults.
 */
export const configSchema = z
  .object({
    host: z.string().default("::").describe("Address the control listener binds; '::' is dual-stack (IPv4 and IPv6)."),
    port: port.default(21).describe("Control connection port."),
    dataDir: z
      .string()
      .default("./edgeftp-data")
      .describe("Where the embedded default keeps its SQLite accounts file and the default homes (<dataDir>/homes/<user>)."),
    banner: z.string().default("edgeftp ready").describe("Text of the 220 greeting."),
    pasv: z
      .object({
        enabled: bool.default(true).describe("Allow PASV/EPSV."),
        ports: portRange.default("21000-21100").describe("Passive data port range, inclusive."),
        address: z
          .string()
          .default("")
          // A 227 reply carries four decimal bytes (RFC 959 §4.1.2): an IPv6 literal, or a number
          // that only inet_aton would read as an address, cannot go there.
          .refine((s) => s === "" || isIPv4(s) || (isIP(s) === 0 && !/^[\d.]+$/.test(s) && /^[A-Za-z0-9._-]+$/.test(s)), {
            error: "expected an IPv4 address (a.b.c.d) or a hostname",
          })
          .describe(
            "Public IPv4 address (or hostname, resolved at start and on SIGHUP) advertised in PASV replies, for edges behind NAT. Empty: the control connection's local address. EPSV carries no address and needs none.",
          ),
        addressOverrides: z
          .string()
          .default("")
          .refine((s) => s === "" || s.split(",").every(isOverrideRule), {
            error: "expected comma-separated CIDR=IPv4 rules, e.g. 10.0.0.0/8=10.0.0.5",
          })
          .describe(
            "PASV address by client network, comma-separated CIDR=IPv4 (first match wins), e.g. 10.0.0.0/8=10.0.0.5: clients inside the private network get the private address.",
          ),
        collisionWait: timerSeconds()
          .default(3)
          .describe("Seconds a PASV/EPSV waits when this client's IP already has a pending reservation on every port of the range, before 425."),
        allowForeignAddress: bool
          .default(false)
          .describe("Accept a passive data connection from an IP other than the control connection's peer (proxy setups only)."),
      })
      .strict()
      .prefault({}),
    active: z
      .object({
        enabled: bool.default(true).describe("Allow PORT/EPRT."),
        port: port
          .default(20)
          .describe("Local port active data connections come from (RFC 959: L-1). Ephemeral ports instead when the node lacks the privilege to bind it (a warning at start), and for a connection where it is busy toward that client (the price of a fixed source port). 0: always ephemeral."),
      })
      .strict()
      .prefault({}),
    accounts: z
      .object({
        driver: z.enum(["sqlite"]).default("sqlite").describe("Account store."),
        sqlitePath: z.string().default("").describe("SQLite file. Empty: <dataDir>/accounts.db."),
      })
      .strict()
      .prefault({}),
    storage: z
      .object({
        driver: z.enum(["local"]).default("local").describe("File storage backend."),
      })
      .strict()
      .prefault({}),
    tls: z
      .object({
        cert: z
          .string()
          .default("")
          .describe("PEM certificate (optionally followed by its chain). Empty: a self-signed certificate is generated once under <dataDir>/tls/ and the log says so."),
        key: z.string().default("").describe("PEM private key of tls.cert."),
        ca: z.string().default("").describe("Optional PEM file of intermediate certificates, sent after tls.cert."),
        policy: z
          .enum(["optional", "control", "data"])
          .default("optional")
          .describe("TLS requirement: optional; control (login only over AUTH TLS or implicit TLS); data (control and PROT P data). An account may override it."),
        implicit: bool.default(true).describe("Run the implicit FTPS listener (TLS from the first byte, RFC 4217 §2 notes it as common practice)."),
        implicitPort: port
          .default(990)
          .describe("Port of the implicit FTPS listener. Without the privilege to bind it: a warning, and the node runs without it."),
        requireSessionReuse: bool
          .default(true)
          .describe("A PROT P data connection must resume the control connection's TLS session (as vsftpd's require_ssl_reuse), so a stolen data port is useless. An account may override it."),
        minVersion: z.enum(["TLSv1.2", "TLSv1.3"]).default("TLSv1.2").describe("Oldest TLS version accepted."),
        maxVersion: z
          .enum(["TLSv1.2", "TLSv1.3"])
          .default("TLSv1.3")
          .describe(
            "Newest TLS version offered. TLSv1.2 lets clients that use a TLS 1.3 ticket only once (curl 7.x and others, as RFC 8446 advises) make several PROT P transfers on one control connection with requireSessionReuse: Node's TLS server issues no new ticket on a resumed data connection, while a TLS 1.2 session ID can be resumed again and again.",
          ),
        ciphers: z.string().default("").describe("OpenSSL cipher list for TLS 1.2. Empty: Node's default, forward-secret AEAD suites first; with an RSA certificate it also accepts RSA key exchange and CBC suites, for old clients. ECDHE+AESGCM:ECDHE+CHACHA20 keeps forward-secret AEAD only."),
      })
      .strict()
      .prefault({}),
    transfers: z
      .object({
        zeroCopy: bool
          .default(true)
          .describe("Let the kernel move file bytes to and from plain data connections by itself (sendfile/splice: Linux, with the addon npm install builds), for binary transfers of accounts without a bandwidth limit (byte quotas still hold). Off: plain transfers pass through user space too, as TLS ones always do."),
      })
      .strict()
      .prefault({}),
    timeouts: z
      .object({
        login: timerSeconds().default(60).describe("Seconds a connection may take to log in, counted from connect (a slow-loris client is cut off)."),
        idle: timerSeconds().default(300).describe("Seconds a logged-in control connection may stay idle (not counted while a transfer runs)."),
        data: timerSeconds().default(30).describe("Seconds to wait for the data connection to be made (passive accept or active connect) and its TLS handshake."),
        stall: timerSeconds().default(120).describe("Seconds a transfer may make no progress before it is aborted (426)."),
        drain: timerSeconds(true)
          .default(30)
          .describe(
            "Seconds a stopping node (SIGTERM, SIGINT) lets the transfers in progress finish: it takes no new connections, and each session gets 421 as soon as it has no command or transfer under way. A second signal, or the end of this time, aborts what is left (426). 0: abort at once.",
          ),
      })
      .strict()
      .prefault({}),
    limits: z
      .object({
        maxLineLength: numeric(
          z.number({ error: "expected a number of bytes" }).int("expected a whole number of bytes").min(512, "expected at least 512 bytes"),
        )
          .default(8192)
          .describe("Longest command line accepted, in bytes; longer lines get 500."),
        maxConnections: count.default(50000).describe("Connections the node accepts at once; the next gets 421 before the greeting (mind the open-file limit: a session needs one file descriptor, up to six while it transfers: the data connection, a duplicate of it for kernel copies, the file, a pipe for an upload). 0: no limit."),
        maxConnectionsPerIp: count.default(50).describe("Connections one client IP may hold at once (421 beyond). 0: no limit."),
        maxSessionsPerAccount: count
          .default(0)
          .describe("Logged-in sessions one account may hold at once, checked at login (421 beyond); an account may override it. 0: no limit."),
        commandsPerSecond: count
          .default(5000)
          .describe(
            "Commands a session may send per second (bursts of twice that); faster clients are slowed down, not disconnected. High enough for small-file bursts (3-4 commands a file). 0: no limit.",
          ),
        maxLoginAttempts: count.default(3).describe("Failed PASS attempts per connection before it is closed with 421. 0: no limit."),
        loginFailureDelay: timerSeconds()
          .default(1)
          .describe("Delay before answering a failed PASS, growing with each failure on the connection (1×, 2×, 3×…)."),
      })
      .strict()
      .prefault({}),
    bans: z
      .object({
        threshold: count.default(10).describe("Failed logins from one IP within bans.window that ban it. 0: never ban."),
        window: seconds.default(300).describe("Seconds over which failed logins are counted."),
        duration: seconds.default(900).describe("Seconds a ban lasts; a banned IP gets 421 before the greeting."),
        allowList: z
          .string()
          .default("127.0.0.0/8,::1/128")
          .refine((s) => s === "" || s.split(",").every((c) => parseNetwork(c.trim()) !== null), { error: "expected comma-separated CIDRs, e.g. 10.0.0.0/8,::1/128" })
          .describe("Comma-separated networks never banned (monitoring, the operator's own)."),
      })
      .strict()
      .prefault({}),
    uploads: z
      .object({
        atomic: bool
          .default(true)
          .describe("Upload to a temporary name in the same directory and rename on success, so a failed or interrupted upload never destroys the previous version of a file."),
        fsync: bool
          .default(false)
          .describe("fsync every upload (and the directory of an atomic replace) before the 226, so it survives a power loss, at a cost in throughput. A killed process loses nothing either way."),
        replaceGraceMs: count
          .default(20)
          .describe("An atomic overwrite whose data is complete waits this many ms more before it replaces the previous version, watching the client's control connection: a killed client's connections close together, the data connection's end often reaching the node first, and its truncated upload must not replace the file. Every overwrite's 226 comes that much later; new files do not wait. 0: no wait."),
        partial: z
          .enum(["keep", "delete"])
          .default("keep")
          .describe("What an interrupted upload of a NEW file leaves: keep (the client can resume with REST/APPE) or delete."),
      })
      .strict()
      .prefault({}),
    log: z
      .object({
        level: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info").describe("Log level (pino)."),
      })
      .strict()
      .prefault({}),
  })
  .strict()
  .superRefine((config, ctx) => {
    if (config.tls.maxVersion < config.tls.minVersion) {
      ctx.addIssue({ code: "custom", path: ["tls", "maxVersion"], message: "must not be older than tls.minVersion" });
    }
    if (config.tls.implicit && config.port !== 0 && config.tls.implicitPort === config.port) {
      ctx.addIssue({ code: "custom", path: ["tls", "implicitPort"], message: "must differ from port (the control port)" });
    }
    if (Boolean(config.tls.cert) !== Boolean(config.tls.key)) {
      ctx.addIssue({ code: "custom", path: ["tls", config.tls.cert ? "key" : "cert"], message: "set both tls.cert and tls.key, or neither" });
    }
    // A listener's own port inside the passive range: every PASV landing on it fails to bind.
    const [first, last] = config.pasv.ports.split("-").map(Number);
    // (A range refused by its own check says so alone.)
    const inRange = (p: number) => first >= 1 && last <= 65535 && p !== 0 && p >= first && p <= last;
    for (const [key, value] of [["port", config.port], ["tls.implicitPort", config.tls.implicit ? config.tls.implicitPort : 0], ["active.port", config.active.port]] as const) {
      if (inRange(value)) ctx.addIssue({ code: "custom", path: ["pasv", "ports"], message: `must not contain ${key} (${value})` });
    }
  });

/** The validated configuration, every default filled in. */
export type Config = z.infer<typeof configSchema>;
