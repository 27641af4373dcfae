import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { generate } from "selfsigned";
import { describe, test } from "node:test";
import { checkLeaks } from "../helpers/leaks.js";
import { PASSWORD, startServer, USER } from "../helpers/server.js";

/**
 * Runs `edgeftp doctor`. Always with `--active-port 0`: checking port 20 binds it for a moment, and a
 * test running beside this one (edge-data-channel) needs to connect from it at that time.
 */
function doctor(args: string[], stdin = ""): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, ["dist/src/cli.cjs", "doctor", "--active-port", "0", ...args], { timeout: 60_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
    child.stdin!.end(stdin);
  });
}

/** Listens on `count` ports from `first` as another program would; resolves a function that lets them go. */
async function holdPorts(first: number, count: number): Promise<() => Promise<void>> {
  const holders: Server[] = [];
  for (let p = first; p < first + count; p++) {
    const s = createServer();
    await new Promise<void>((r) => s.listen(p, "::", r));
    holders.push(s);
  }
  return async () => {
    for (const s of holders) await new Promise<void>((r) => s.close(() => r()));
  };
}

describe("edgeftp doctor", () => {
  checkLeaks();

  test("a healthy running node passes, including a PASV round trip with credentials (over AUTH TLS, also where TLS is required)", async () => {
    const server = await startServer({ tls: { policy: "data" } });
    try {
      const r = await doctor(
        ["--port", String(server.port), "--pasv-ports", server.config.pasv.ports, "--data-dir", server.dataDir, "--user", USER, "--password-stdin"],
        `${PASSWORD}\n`,
      );
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.match(r.stdout, /^OK\s+control\s+127\.0\.0\.1:\d+ answers: 220/m);
      assert.match(r.stdout, /^OK\s+pasv round trip\s+PASV offered 127\.0\.0\.1:\d+; a data connection to it was accepted/m);
      assert.match(r.stdout, /^OK\s+passive ports\s+/m);
      assert.match(r.stdout, /^OK\s+accounts\s+/m);
      // No public address is configured: the warning names the option that fixes it.
      assert.match(r.stdout, /^WARN\s+pasv address\s+.*--pasv-address/m);
      // The node generated its quick-start certificate: valid, but self-signed.
      assert.match(r.stdout, /^WARN\s+tls certificate\s+.*self-signed/m);
    } finally {
      await server.close();
    }
  });

  test("over IPv6 (--target ::1) the round trip uses EPSV, since PASV cannot carry an IPv6 address (RFC 2428)", async () => {
    const server = await startServer({ host: "::" });
    try {
      const r = await doctor(
        ["--port", String(server.port), "--pasv-ports", server.config.pasv.ports, "--data-dir", server.dataDir, "--target", "::1", "--user", USER, "--password-stdin"],
        `${PASSWORD}\n`,
      );
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.match(r.stdout, /^OK\s+pasv round trip\s+EPSV offered \[::1\]:\d+; a data connection to it was accepted/m);
    } finally {
      await server.close();
    }
  });

  test("a running node that advertises another address than the configuration doctor reads fails the round trip", async () => {
    // The operator's shell has EDGEFTP_PASV_ADDRESS (or another --config) that the service lacks.
    const server = await startServer();
    try {
      const r = await doctor(
        ["--port", String(server.port), "--pasv-ports", server.config.pasv.ports, "--pasv-address", "203.0.113.5", "--data-dir", server.dataDir, "--user", USER, "--password-stdin"],
        `${PASSWORD}\n`,
      );
      assert.notEqual(r.code, 0, r.stdout);
      assert.match(r.stdout, /^FAIL\s+pasv round trip\s+PASV offered 127\.0\.0\.1:\d+, but this configuration advertises 203\.0\.113\.5/m);
    } finally {
      await server.close();
    }
  });

  test("a PASV offer that cannot be reached from here (a wrong pasv.address, a closed firewall) fails the round trip", async () => {
    // Listeners bind the control connection's address (127.0.0.1): nothing answers on 127.0.0.9.
    const server = await startServer({ pasv: { address: "127.0.0.9" } });
    try {
      const r = await doctor(
        ["--port", String(server.port), "--pasv-ports", server.config.pasv.ports, "--pasv-address", "127.0.0.9", "--data-dir", server.dataDir, "--user", USER, "--password-stdin"],
        `${PASSWORD}\n`,
      );
      assert.notEqual(r.code, 0);
      assert.match(r.stdout, /^FAIL\s+pasv round trip\s+PASV offered 127\.0\.0\.9:\d+; a data connection to it failed \(.*ECONNREFUSED.*\): check the firewall/m);
    } finally {
      await server.close();
    }
  });

  test("a certificate whose key does not match fails, naming the option", async () => {
    const dir = mkdtempSync(join(tmpdir(), "edgeftp-doctor-"));
    try {
      const [a, b] = await Promise.all([1, 2].map(() => generate([{ name: "commonName", value: "x" }], { keyType: "ec" })));
      writeFileSync(join(dir, "cert.pem"), a.cert);
      writeFileSync(join(dir, "key.pem"), b.private);
      const r = await doctor(["--port", "1", "--pasv-ports", "32900-32901", "--data-dir", dir, "--tls-cert", join(dir, "cert.pem"), "--tls-key", join(dir, "key.pem")]);
      assert.match(r.stdout, /^FAIL\s+tls certificate\s+.*is not the key of.*--tls-key/m);
      writeFileSync(join(dir, "key.pem"), a.private);
      const ok = await doctor(["--port", "1", "--pasv-ports", "32900-32901", "--data-dir", dir, "--tls-cert", join(dir, "cert.pem"), "--tls-key", join(dir, "key.pem")]);
      assert.match(ok.stdout, /^OK\s+tls certificate\s+CN=x, valid until/m);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a node that is not running fails with a one-line reason and a non-zero exit", async () => {
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, "127.0.0.1", r));
    const port = (probe.address() as { port: number }).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const r = await doctor(["--port", String(port), "--pasv-ports", "45000-45009", "--data-dir", "/nonexistent-edgeftp"]);
    assert.notEqual(r.code, 0);
    assert.match(r.stdout, /^FAIL\s+control\s+nothing answers FTP/m);
    assert.match(r.stdout, /^WARN\s+accounts\s+.*edgeftp user add/m);
    assert.equal(r.stderr.trim().split("\n").length, 1);
  });

  test("a passive range held entirely by another program, with no node running, fails", async () => {
    // 32700-32767: below the ephemeral range, apart from the other tests' ranges.
    const base = 32700 + Math.floor(Math.random() * 13) * 5;
    const release = await holdPorts(base, 3);
    try {
      const r = await doctor(["--port", "1", "--pasv-ports", `${base}-${base + 2}`, "--data-dir", "/nonexistent-edgeftp"]);
      assert.match(r.stdout, /^FAIL\s+passive ports\s+all 3 ports .* --pasv-ports/m);
    } finally {
      await release();
    }
  });

  test("ports of the passive range held by another program are named, with the option that fixes it", async () => {
    // 32000-32699: below the ephemeral range and above the test servers' passive ranges.
    const base = 32000 + Math.floor(Math.random() * 70) * 10;
    const release = await holdPorts(base, 5);
    try {
      const r = await doctor(["--port", "1", "--pasv-ports", `${base}-${base + 9}`, "--data-dir", "/nonexistent-edgeftp"]);
      const m = /^WARN\s+passive ports\s+(\d+) of 10 ports are in use \(([\d, ]+)\)/m.exec(r.stdout);
      assert.ok(m, r.stdout);
      // Other programs on the machine may hold more of the range; ours must all be named.
      const named = m[2].split(", ").map(Number);
      for (let p = base; p < base + 5; p++) assert.ok(named.includes(p), `port ${p} named in ${m[2]}`);
      assert.match(r.stdout, /--pasv-ports/);
    } finally {
      await release();
    }
  });
});
