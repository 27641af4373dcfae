/**
 * The quick start's certificate: generated once, kept under <dataDir>/tls/ so clients that pinned
 * it keep trusting it across restarts.
 */
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { generate } from "selfsigned";

export interface CertificateFiles {
  cert: string;
  key: string;
}

/** Where the self-signed certificate and key are kept in `dir`, whether they exist yet or not. */
export function selfSignedFiles(dir: string): CertificateFiles {
  return { cert: join(dir, "self-signed-cert.pem"), key: join(dir, "self-signed-key.pem") };
}

/** Paths of the self-signed certificate and key in `dir`, generating them if absent. */
export async function ensureSelfSigned(dir: string): Promise<CertificateFiles & { created: boolean }> {
  const files = selfSignedFiles(dir);
  if (existsSync(files.cert) && existsSync(files.key)) return { ...files, created: false };
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const name = hostname() || "edgeftp";
  const pems = await generate([{ name: "commonName", value: name }], {
    keyType: "ec",
    curve: "P-256",
    notAfterDate: new Date(Date.now() + 825 * 24 * 3600 * 1000),
    algorithm: "sha256",
    extensions: [{ name: "subjectAltName", altNames: [{ type: 2, value: name }, { type: 2, value: "localhost" }, { type: 7, ip: "127.0.0.1" }, { type: 7, ip: "::1" }] }],
  });
  writeFileSync(files.key, pems.private, { mode: 0o600 });
  writeFileSync(files.cert, pems.cert, { mode: 0o644 });
  return { ...files, created: true };
}
