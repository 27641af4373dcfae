/**
 * The node's TLS credentials: one SecureContext shared by control and data connections (so a data
 * connection can resume the control connection's session), replaced in place on reload (SIGHUP or
 * a change of the certificate files) without touching established sessions. The session-ticket
 * keys and the session-ID cache survive reloads, so a session opened before a reload still resumes
 * after it.
 */
import { randomBytes, X509Certificate } from "node:crypto";
import { readFileSync, watch, type FSWatcher } from "node:fs";
import { dirname, join } from "node:path";
import { createSecureContext, type SecureContext } from "node:tls";
import { ConfigError, resolveDataPaths } from "../config/load.js";
import type { Config } from "../config/schema.js";
import type { Logger } from "../observe/logger.js";
import { ensureSelfSigned, type CertificateFiles } from "./self-signed.js";
import { TlsSessionCache } from "./session-cache.js";

/**
 * How long a TLS session may be resumed, by ticket or by session ID: a PROT P data connection
 * must resume its control connection's session (tls.requireSessionReuse), which lives as long as
 * that connection; an hour cut off every transfer of a longer mirror with 522. Seven days is the
 * most a TLS 1.3 ticket may live (RFC 8446 §4.6.1); vsftpd, for the same reason, never expires them.
 */
const SESSION_LIFETIME_S = 7 * 24 * 3600;
/** Coalesces the burst of events one certificate renewal makes (cert and key written separately). */
const WATCH_DEBOUNCE_MS = 250;

export class TlsContextProvider {
  private current: SecureContext;
  /** The PEM bytes behind `current`, so the watcher reloads only on a real change. */
  private loaded: Buffer[] = [];
  /** The files' contents when a reload by the watcher last failed. */
  private rejected: Buffer[] | null = null;
  private readonly ticketKeys = randomBytes(48);
  /** Sessions by ID, for clients that resume without tickets; like the ticket keys, kept across reloads. */
  readonly sessions = new TlsSessionCache(SESSION_LIFETIME_S * 1000);
  private watchers: FSWatcher[] = [];
  private debounce: NodeJS.Timeout | null = null;

  private constructor(
    private readonly config: Config,
    private readonly files: CertificateFiles & { ca: string },
    private readonly logger: Logger,
  ) {
    this.current = this.load();
    const invalid = validityProblem(this.loaded[0]);
    if (invalid) this.logger.warn({ cert: this.files.cert }, `TLS certificate ${invalid}: clients that verify it will refuse to connect`);
  }

  /** Loads the configured certificate, or generates the quick start's self-signed one. */
  static async create(config: Config, logger: Logger): Promise<TlsContextProvider> {
    let files: CertificateFiles;
    if (config.tls.cert || config.tls.key) {
      if (!config.tls.cert || !config.tls.key) throw new ConfigError("tls: set both tls.cert and tls.key (--tls-cert, --tls-key)");
      files = { cert: config.tls.cert, key: config.tls.key };
    } else {
      const generated = await ensureSelfSigned(join(resolveDataPaths(config).dataDir, "tls"));
      logger.warn(
        { cert: generated.cert, created: generated.created },
        "FTPS uses a self-signed certificate (clients will warn); set tls.cert and tls.key (--tls-cert, --tls-key) to a real one",
      );
      files = generated;
    }
    return new TlsContextProvider(config, { ...files, ca: config.tls.ca }, logger);
  }

  /**
   * What serve would refuse at start in the TLS settings that need no certificate (the quick start's
   * is generated then): the CA chain file, the versions and the cipher list. For `config check`, which
   * creates nothing.
   */
  static checkSettings(config: Config): void {
    const { tls } = config;
    if (tls.ca) checkChain(readTlsFile(tls.ca, "CA chain"), tls.ca);
    try {
      createSecureContext({ minVersion: tls.minVersion, maxVersion: tls.maxVersion, ...(tls.ciphers ? { ciphers: tls.ciphers } : {}) });
    } catch (err) {
      throw settingsError(err, tls.ciphers) ?? new ConfigError(`tls: ${(err as Error).message}`);
    }
  }

  get context(): SecureContext {
    return this.current;
  }

  private load(): SecureContext {
    const { tls } = this.config;
    const [cert, key, ca] = this.readFiles(readTlsFile);
    if (ca) checkChain(ca, this.files.ca);
    try {
      const context = createSecureContext({
        cert,
        key,
        ...(ca ? { ca } : {}),
        minVersion: tls.minVersion,
        maxVersion: tls.maxVersion,
        ...(tls.ciphers ? { ciphers: tls.ciphers } : {}),
        ticketKeys: this.ticketKeys,
        sessionTimeout: SESSION_LIFETIME_S,
      });
      this.loaded = ca ? [cert, key, ca] : [cert, key];
      return context;
    } catch (err) {
      throw settingsError(err, tls.ciphers) ?? new ConfigError(`tls: certificate ${this.files.cert} and key ${this.files.key} do not load (${(err as Error).message})`);
    }
  }

  private readFiles(read: (path: string, what: string) => Buffer): Buffer[] {
    const files = [read(this.files.cert, "certificate"), read(this.files.key, "key")];
    if (this.files.ca) files.push(read(this.files.ca, "CA chain"));
    return files;
  }

  /**
   * The files on disk when they differ from what is loaded and from what last failed to load; null
   * otherwise, or when they cannot be read right now (mid-renewal: a later event sees the finished
   * files). A broken certificate is thus tried, and logged, once: not again for every event in its
   * directory (a log file kept there would otherwise feed a loop).
   */
  private changedOnDisk(): Buffer[] | null {
    try {
      const now = this.readFiles((path) => readFileSync(path));
      const same = (files: Buffer[]) => now.length === files.length && now.every((b, i) => b.equals(files[i]));
      return same(this.loaded) || (this.rejected !== null && same(this.rejected)) ? null : now;
    } catch {
      return null;
    }
  }

  /** Re-reads the files; on failure keeps serving the previous credentials and says why. */
  reload(): boolean {
    try {
      // A renewal that puts an expired (or not yet valid) certificate in place must not replace a
      // working one: every verifying client would be refused until the next fix.
      const [cert] = this.readFiles(readTlsFile);
      const invalid = validityProblem(cert);
      if (invalid) throw new ConfigError(`tls: certificate ${this.files.cert} ${invalid}`);
      this.current = this.load();
      this.logger.info({ cert: this.files.cert }, "TLS certificate reloaded");
      return true;
    } catch (err) {
      this.logger.error({ err: (err as Error).message }, "TLS certificate reload failed; keeping the previous one");
      return false;
    }
  }

  /**
   * Reloads when the certificate, the key or the CA chain changes. Any event in their directories triggers a
   * comparison of the file contents: renewals rename files over each other, and secret mounts
   * (Kubernetes) swap a `..data` symlink, so the event's file name cannot be trusted.
   */
  watch(): void {
    for (const dir of new Set([this.files.cert, this.files.key, this.files.ca].filter(Boolean).map((file) => dirname(file)))) {
      try {
        const watcher = watch(dir, () => {
          if (this.debounce) clearTimeout(this.debounce);
          this.debounce = setTimeout(() => {
            this.debounce = null;
            const files = this.changedOnDisk();
            if (files) this.rejected = this.reload() ? null : files;
          }, WATCH_DEBOUNCE_MS);
        });
        watcher.on("error", (err) => this.logger.warn({ err }, "certificate watcher failed; SIGHUP still reloads"));
        this.watchers.push(watcher);
      } catch (err) {
        this.logger.warn({ err, dir }, "cannot watch the certificate directory; SIGHUP still reloads");
      }
    }
  }

  close(): void {
    for (const w of this.watchers) w.close();
    this.watchers = [];
    if (this.debounce) clearTimeout(this.debounce);
    this.debounce = null;
  }
}

function readTlsFile(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new ConfigError(`tls: cannot read ${what} ${path} (${(err as NodeJS.ErrnoException).code})`);
  }
}

/** Node skips PEM blocks that are not certificates: a key or CSR given as the chain would send none. */
function checkChain(ca: Buffer, path: string): void {
  if (!ca.includes("-----BEGIN CERTIFICATE-----")) throw new ConfigError(`tls: ${path} (tls.ca) holds no PEM certificate`);
}

/** The ConfigError for a context that would not build because of the settings (not the files), or null. */
function settingsError(err: unknown, ciphers: string | undefined): ConfigError | null {
  if (/no cipher match/i.test((err as Error).message)) return new ConfigError(`tls.ciphers: no cipher matches "${ciphers}"`);
  return null;
}

/** Why the certificate (its first PEM block) is not valid now, or null (also when it does not parse: load() says that). */
function validityProblem(pem: Buffer | undefined): string | null {
  if (!pem) return null;
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(pem);
  } catch {
    return null;
  }
  const now = Date.now();
  if (Date.parse(cert.validTo) <= now) return `expired ${cert.validTo}`;
  if (Date.parse(cert.validFrom) > now) return `is not valid before ${cert.validFrom}`;
  return null;
}
