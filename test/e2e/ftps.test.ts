/**
 * FTPS (RFC 4217) with real clients against a real node: explicit AUTH TLS and implicit TLS with
 * curl, lftp (passive and active), Python's ftplib.FTP_TLS (with and without resuming the control
 * connection's TLS session on the data connection) and basic-ftp; the STARTTLS command-injection
 * class; the TLS policies per node and per account and the RFC 4217 reply codes; certificate
 * reload by SIGHUP's handler and by the file watcher without dropping sessions; and a stranger's
 * connection to a pending PROT P data port.
 *
 * Not covered here: curl in active mode (-P) with FTPS. The installed curl (7.88.1) never starts
 * TLS on an active data connection (curl/curl#10666, a 7.87.0 regression fixed in 8.0.0 by
 * curl/curl#10669), so it would fail against any FTPS server. Active FTPS is covered by lftp and
 * by Python's ftplib instead.
 */
import assert from "node:assert/strict";
import { randomBytes, X509Certificate } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { after, before, describe, test } from "node:test";
import { connect as tlsConnect, TLSSocket, type ConnectionOptions } from "node:tls";
import { Client } from "basic-ftp";
import { generate } from "selfsigned";
import { downloadToBuffer } from "../helpers/basic-ftp.js";
import { sha256 } from "../helpers/hash.js";
import { checkLeaks } from "../helpers/leaks.js";
import { connectData, expectCode, handshake, RawClient, readAll, type FtpReply } from "../helpers/raw-client.js";
import { childEnv, curlCommands, curlReplies, lftpCommands, run, show } from "../helpers/run-client.js";
import { PASSWORD, startServer, USER, type TestServer } from "../helpers/server.js";
import { sleep } from "../helpers/wait.js";

// -------------------------------------------------------------------------------------------------
// A minimal FTPS control client in Node (the server's own TLS stack is not used on this side)
// -------------------------------------------------------------------------------------------------

const TLS_CLIENT: ConnectionOptions = { rejectUnauthorized: false };

/** An FTP control connection over TLS (RawClient after AUTH TLS, or implicit), with the PROT P data-connection steps. */
class TlsControl extends RawClient {
  /** Explicit FTPS: plain connect, 220, AUTH TLS, 234, client-side handshake. */
  static async explicit(port: number): Promise<TlsControl> {
    const control = await TlsControl.plain(port);
    const auth = await control.command("AUTH TLS");
    if (auth.code !== 234) {
      await control.close();
      throw new Error(`AUTH TLS: ${auth.code} ${auth.text}`);
    }
    await control.startTls(TLS_CLIENT);
    return control;
  }

  /** A plain connection past its 220, for a test that sends AUTH TLS itself and then calls startTls(TLS_CLIENT). */
  static async plain(port: number): Promise<TlsControl> {
    const control = new TlsControl(await connectData(port));
    await control.expectGreeting();
    return control;
  }

  /** Implicit FTPS: TLS from the first byte, then the 220. */
  static async implicit(port: number): Promise<TlsControl> {
    const control = new TlsControl(await handshake(tlsConnect({ host: "127.0.0.1", port, ...TLS_CLIENT })));
    await control.expectGreeting();
    return control;
  }

  get fingerprint(): string {
    assert.ok(this.socket instanceof TLSSocket, "the control connection is TLS");
    return this.socket.getPeerCertificate().fingerprint256;
  }

  override reply(timeoutMs = 10_000): Promise<FtpReply> {
    return super.reply(timeoutMs);
  }

  override async login(user = USER, password = PASSWORD): Promise<void> {
    expectCode(await this.command(`USER ${user}`), 331, "USER");
    expectCode(await this.command(`PASS ${password}`), 230, "PASS");
  }

  /** PBSZ 0 + PROT P. */
  async protect(): Promise<void> {
    expectCode(await this.command("PBSZ 0"), 200, "PBSZ 0");
    expectCode(await this.command("PROT P"), 200, "PROT P");
  }

  /**
   * Connects to a passive data port and starts TLS there, resuming this control connection's
   * session unless `resume` is false. The handshake completes once the server takes the
   * connection (after the transfer command), so it is not awaited here.
   */
  async dataTls(port: number, resume = true): Promise<TLSSocket> {
    const socket = await connectData(port);
    assert.ok(this.socket instanceof TLSSocket, "the control connection is TLS");
    const session = this.tlsSession ?? this.socket.getSession();
    assert.ok(!resume || session, "the control connection has a TLS session to resume");
    return tlsConnect({ socket, ...TLS_CLIENT, ...(resume && session ? { session } : {}) });
  }

  /**
   * A passive transfer over PROT P that reads (on `port`, by default a new EPSV's): the bytes, the
   * final reply, whether the session was resumed.
   */
  async retrieve(command: string, port?: number): Promise<{ bytes: Buffer; end: FtpReply; reused: boolean }> {
    const data = await this.dataTls(port ?? (await this.epsv()));
    data.on("error", () => {});
    const secured = whenSecured(data);
    try {
      expectCode(await this.command(command), 150, command);
      const bytes = await readAll(data);
      const end = await this.reply();
      const { secured: ok, reused } = await secured;
      assert.ok(ok, "the data connection completed its TLS handshake");
      return { bytes, end, reused };
    } finally {
      data.destroy();
    }
  }

  /** A passive upload over PROT P: the reply to `command` when it is not 150, else the final one. */
  async store(command: string, bytes: Buffer): Promise<FtpReply> {
    const data = await this.dataTls(await this.epsv());
    data.on("error", () => {}); // a refused upload resets the data connection
    try {
      const first = await this.command(command);
      if (first.code !== 150) return first;
      data.end(bytes);
      return await this.reply();
    } finally {
      data.destroy();
    }
  }
}

/** Runs `body` on a new explicit FTPS session (AUTH TLS done, not logged in) and closes it after, whatever happens. */
async function withExplicit(port: number, body: (control: TlsControl) => Promise<void>): Promise<void> {
  const control = await TlsControl.explicit(port);
  try {
    await body(control);
  } finally {
    await control.close();
  }
}

/** Whether `socket` completes its TLS handshake (before closing), and whether that resumed a session (read then: it is gone after close). */
function whenSecured(socket: TLSSocket): Promise<{ secured: boolean; reused: boolean }> {
  return new Promise((resolve) => {
    socket.once("secureConnect", () => resolve({ secured: true, reused: socket.isSessionReused() }));
    socket.once("close", () => resolve({ secured: false, reused: false }));
  });
}

/** The SHA-256 fingerprint of the certificate a new TLS connection sees, explicit (AUTH TLS) or implicit. */
async function presentedFingerprint(server: TestServer, how: "explicit" | "implicit"): Promise<string> {
  const control = how === "explicit" ? await TlsControl.explicit(server.port) : await TlsControl.implicit(server.node.implicitPort);
  try {
    return control.fingerprint;
  } finally {
    await control.close();
  }
}

// -------------------------------------------------------------------------------------------------
// Python's ftplib.FTP_TLS
// -------------------------------------------------------------------------------------------------

/**
 * `python3 script.py SCENARIO PORT USER PASSWORD JSON-ARGS` prints one JSON object.
 *  - resuming: FTP_TLS whose data connections resume the control session; STOR args.src as args.name,
 *    RETR it back; passive, or active when args.active.
 *  - stock: stock FTP_TLS data connections (Python does not resume): STOR and RETR, each reported as
 *    "ok" or the reply code that refused it, then NOOP to show the control connection is in step.
 * Every socket has a timeout and every loop a bound.
 */
const PY_SCRIPT = String.raw`
import ftplib, hashlib, io, json, socket, ssl, sys

scenario, port, user, password = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
args = json.loads(sys.argv[5])

ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE

class Recording(ftplib.FTP_TLS):
    """FTP_TLS that listens on loopback for active mode and records whether each data connection resumed."""
    def __init__(self):
        super().__init__(context=ctx, timeout=10)
        self.reused = []

    def makeport(self):
        sock = socket.create_server(("127.0.0.1", 0), family=socket.AF_INET, backlog=1)
        sock.settimeout(10)
        host, lport = sock.getsockname()[:2]
        self.sendport(host, lport)
        return sock

    def ntransfercmd(self, cmd, rest=None):
        conn, size = super().ntransfercmd(cmd, rest)
        if isinstance(conn, ssl.SSLSocket):
            self.reused.append(conn.session_reused)
        return conn, size

class Resuming(Recording):
    """Wraps the data socket with the control connection's session, as curl, lftp and FileZilla do."""
    def ntransfercmd(self, cmd, rest=None):
        conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)
        if self._prot_p:
            conn = self.context.wrap_socket(conn, server_hostname=self.host, session=self.sock.session)
            self.reused.append(conn.session_reused)
        return conn, size

def connect(cls):
    f = cls()
    f.connect("127.0.0.1", port)
    f.auth()
    f.login(user, password)
    f.prot_p()
    return f

def outcome(f, fn):
    """'ok' or the reply code that refused the transfer (read from the control connection if the data side failed first)."""
    try:
        fn()
        return {"result": "ok"}
    except ftplib.Error as e:
        return {"result": str(e)[:3], "error": type(e).__name__, "text": str(e)}
    except OSError as e:
        try:
            f.voidresp()
            return {"result": "ok-after-" + type(e).__name__}
        except ftplib.Error as e2:
            return {"result": str(e2)[:3], "error": type(e2).__name__, "text": str(e2), "data_error": type(e).__name__}

out = {}
if scenario == "resuming":
    f = connect(Resuming)
    if args.get("active"):
        f.set_pasv(False)
    with open(args["src"], "rb") as src:
        out["stor"] = f.storbinary("STOR " + args["name"], src)
    h = hashlib.sha256()
    out["retr"] = f.retrbinary("RETR " + args["name"], h.update)
    out["sha"] = h.hexdigest()
    out["reused"] = f.reused
    f.quit()
elif scenario == "stock":
    f = connect(Recording)
    with open(args["src"], "rb") as src:
        out["stor"] = outcome(f, lambda: f.storbinary("STOR " + args["name"], src))
    got = []
    out["retr"] = outcome(f, lambda: f.retrbinary("RETR " + args["existing"], got.append))
    h = hashlib.sha256()
    for chunk in got:
        h.update(chunk)
    out["received"] = sum(len(c) for c in got)
    out["sha"] = h.hexdigest()
    out["noop"] = f.voidcmd("NOOP")
    out["reused"] = f.reused
    if args.get("list"):
        lines = []
        out["list"] = outcome(f, lambda: f.retrlines("LIST", lines.append))
        out["listed"] = len(lines)
    f.quit()
elif scenario == "empty_no_notify":
    # Empty uploads whose data connection is closed without close_notify (no unwrap()).
    f = connect(Resuming)
    f.voidcmd("TYPE I")
    out["replies"] = []
    for i in range(args["count"]):
        port = ftplib.parse229(f.sendcmd("EPSV"), f.sock.getpeername())[1]
        raw = socket.create_connection(("127.0.0.1", port), timeout=10)
        f.sendcmd("STOR empty-%d.bin" % i)  # the 150
        conn = ctx.wrap_socket(raw, session=f.sock.session)
        conn.close()  # no unwrap(): no close_notify
        out["replies"].append(f.voidresp())
    f.quit()
elif scenario == "implicit_ticket":
    # The session as a client that keeps it once it has read the greeting (wget) has it.
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10))
    out["greeting"] = s.makefile("rb").readline().decode().strip()
    out["version"] = s.version()
    out["ticket"] = s.session is not None and s.session.has_ticket
    s.close()
print(json.dumps(out))
`;

interface PyOutcome {
  result: string;
  error?: string;
  text?: string;
  data_error?: string;
}

describe("FTPS: real clients, session reuse required (the default)", () => {
  let server: TestServer;
  let local: string;
  let home: string;
  let env: NodeJS.ProcessEnv;
  let payload: Buffer;
  let payloadFile: string;
  let pyScript: string;

  before(async () => {
    server = await startServer({}, [
      { name: "noreuse", password: "camera-pass", tlsSessionReuse: false },
      { name: "tlsquota", password: "quota-pass", quotaBytes: 100 * 1024 },
    ]);
    home = server.home(USER);
    local = mkdtempSync(join(tmpdir(), "edgeftp-ftps-"));
    mkdirSync(join(local, "home"));
    env = childEnv(join(local, "home"));
    payload = randomBytes(3 * 1024 * 1024 + 321);
    payloadFile = join(local, "payload.bin");
    writeFileSync(payloadFile, payload);
    pyScript = join(local, "ftps.py");
    writeFileSync(pyScript, PY_SCRIPT);
  });
  after(async () => {
    await server.close();
    rmSync(local, { recursive: true, force: true });
  });
  checkLeaks();

  // ---------------------------------------------------------------------------------------------
  // curl
  // ---------------------------------------------------------------------------------------------

  const curl = (...args: string[]) => run("curl", ["-q", "-sS", "-v", "-k", "--noproxy", "*", "--max-time", "20", ...args], env);
  const explicitUrl = (path: string) => `ftp://${USER}:${PASSWORD}@127.0.0.1:${server.port}/${path}`;

  for (const mode of [
    { name: "EPSV", file: "epsv", args: [] as string[], command: /^EPSV$/ },
    { name: "PASV (--disable-epsv)", file: "pasv", args: ["--disable-epsv"], command: /^PASV$/ },
    // curl resumes TLS 1.2 sessions by session ID, not by ticket: the node's session cache serves it.
    { name: "EPSV with TLS 1.2 only", file: "tls12", args: ["--tlsv1.2", "--tls-max", "1.2"], command: /^EPSV$/, protocol: "TLSv1.2" },
  ]) {
    test(`curl --ssl-reqd (AUTH TLS, PROT P) uploads and downloads 3 MiB over ${mode.name} with matching sha256`, async () => {
      const remote = `curl-${mode.file}.bin`;
      const up = await curl("--ssl-reqd", ...mode.args, "-T", payloadFile, explicitUrl(remote));
      assert.equal(up.code, 0, show(up));
      if (mode.protocol) assert.ok(up.stderr.includes(`SSL connection using ${mode.protocol} `), show(up));
      const upCommands = curlCommands(up.stderr);
      assert.match(upCommands[0] ?? "", /^AUTH (TLS|SSL)$/, upCommands.join(" | "));
      assert.ok(curlReplies(up.stderr).some((r) => /^234 /.test(r)), show(up));
      assert.ok(upCommands.includes("PBSZ 0") && upCommands.includes("PROT P"), upCommands.join(" | "));
      assert.ok(curlReplies(up.stderr).includes("200 Protection level set to P."), show(up));
      assert.ok(upCommands.some((c) => mode.command.test(c)), upCommands.join(" | "));
      assert.ok(upCommands.includes(`STOR ${remote}`), upCommands.join(" | "));
      assert.ok(curlReplies(up.stderr).includes(`226 Transfer complete (${payload.length} bytes).`), show(up));
      assert.equal(sha256(readFileSync(join(home, remote))), sha256(payload));

      const target = join(local, `down-${remote}`);
      const down = await curl("--ssl-reqd", ...mode.args, explicitUrl(remote), "-o", target);
      assert.equal(down.code, 0, show(down));
      const downCommands = curlCommands(down.stderr);
      assert.ok(downCommands.includes("PROT P"), downCommands.join(" | "));
      assert.ok(downCommands.includes(`RETR ${remote}`), downCommands.join(" | "));
      assert.ok(curlReplies(down.stderr).some((r) => r.startsWith("226 ")), show(down));
      const got = readFileSync(target);
      assert.equal(got.length, payload.length);
      assert.equal(sha256(got), sha256(payload));
    });
  }

  test("curl against implicit ftps://127.0.0.1:<implicitPort>/ lists and downloads", async () => {
    const implicitPort = server.node.implicitPort;
    assert.ok(implicitPort > 0, "the implicit FTPS listener is on");
    assert.notEqual(implicitPort, server.port);
    writeFileSync(join(home, "implicit.bin"), payload);
    const base = `ftps://${USER}:${PASSWORD}@127.0.0.1:${implicitPort}/`;

    const list = await curl(base);
    assert.equal(list.code, 0, show(list));
    const commands = curlCommands(list.stderr);
    assert.ok(!commands.some((c) => c.startsWith("AUTH")), `implicit TLS needs no AUTH: ${commands.join(" | ")}`);
    assert.ok(commands.includes("PROT P"), commands.join(" | "));
    assert.ok(commands.includes("LIST"), commands.join(" | "));
    assert.match(list.stdout, new RegExp(String.raw`^-\S{9} +\d+ \S+ +\S+ +${payload.length} .* implicit\.bin$`, "m"), show(list));

    const target = join(local, "implicit-down.bin");
    const down = await curl(`${base}implicit.bin`, "-o", target);
    assert.equal(down.code, 0, show(down));
    assert.ok(curlCommands(down.stderr).includes("RETR implicit.bin"), show(down));
    assert.equal(sha256(readFileSync(target)), sha256(payload));

    // The implicit port speaks TLS only: a plain FTP client gets no greeting there.
    const plain = await curl("--max-time", "3", `ftp://${USER}:${PASSWORD}@127.0.0.1:${implicitPort}/`);
    assert.notEqual(plain.code, 0, show(plain));
    assert.ok(!curlReplies(plain.stderr).some((r) => r.startsWith("220")), show(plain));
  });

  // curl and lftp close an empty upload's data connection right after their handshake: the server
  // must have read whether it resumed the session before the connection ends.
  test("empty uploads over PROT P from curl (explicit, TLS 1.2 and 1.3; implicit) and lftp are complete empty files (226)", async () => {
    const empty = join(local, "empty-upload");
    writeFileSync(empty, "");
    const implicitBase = `ftps://${USER}:${PASSWORD}@127.0.0.1:${server.node.implicitPort}/`;
    for (const [remote, args] of [
      ["curl-empty-13", ["--ssl-reqd", "-T", empty, explicitUrl("curl-empty-13")]],
      ["curl-empty-12", ["--ssl-reqd", "--tls-max", "1.2", "-T", empty, explicitUrl("curl-empty-12")]],
      ["curl-empty-appe", ["--ssl-reqd", "--append", "-T", empty, explicitUrl("curl-empty-appe")]],
      ["curl-empty-implicit", ["--ssl-reqd", "-T", empty, `${implicitBase}curl-empty-implicit`]],
    ] as const) {
      const r = await curl(...args);
      assert.equal(r.code, 0, show(r));
      assert.ok(curlReplies(r.stderr).includes("226 Transfer complete (0 bytes)."), show(r));
      assert.equal(readFileSync(join(home, remote)).length, 0, remote);
    }
    const script = ["set net:max-retries 1", "set net:timeout 10", "set cmd:fail-exit yes", "set ftp:ssl-force true", "set ssl:verify-certificate no"];
    const r = await run("lftp", ["-d", "-u", `${USER},${PASSWORD}`, "-p", String(server.port), "-e", [...script, `put "${empty}" -o lftp-empty`, "quit"].join("; "), "127.0.0.1"], env);
    assert.equal(r.code, 0, show(r));
    assert.ok(lftpCommands(r.stderr).includes("PROT P"), show(r));
    assert.doesNotMatch(r.stderr, /<--- 52[12] /, show(r));
    assert.equal(readFileSync(join(home, "lftp-empty")).length, 0);
  });

  // ---------------------------------------------------------------------------------------------
  // lftp
  // ---------------------------------------------------------------------------------------------

  for (const mode of [
    { name: "passive", settings: [] as string[], command: /^(PASV|EPSV)$/, not: /^(PORT|EPRT)\b/ },
    { name: "active", settings: ["set ftp:passive-mode off"], command: /^(PORT|EPRT) /, not: /^(PASV|EPSV)$/ },
  ]) {
    test(`lftp with ftp:ssl-force and ssl-protect-data puts and gets 3 MiB in ${mode.name} mode with matching sha256`, async () => {
      const remote = `lftp-${mode.name}.bin`;
      const back = join(local, `lftp-back-${mode.name}.bin`);
      const script = [
        "set net:max-retries 1",
        "set net:timeout 10",
        "set net:reconnect-interval-base 1",
        "set cmd:fail-exit yes",
        "set xfer:clobber on",
        "set ftp:ssl-force true",
        "set ftp:ssl-protect-data true",
        "set ssl:verify-certificate no",
        ...mode.settings,
        `put "${payloadFile}" -o ${remote}`,
        `get ${remote} -o "${back}"`,
        "quit",
      ].join("; ");
      const r = await run("lftp", ["-d", "-u", `${USER},${PASSWORD}`, "-p", String(server.port), "-e", script, "127.0.0.1"], env);
      assert.equal(r.code, 0, show(r));
      const commands = lftpCommands(r.stderr);
      const authAt = commands.indexOf("AUTH TLS");
      assert.ok(authAt >= 0, commands.join(" | "));
      assert.ok(authAt < commands.findIndex((c) => c.startsWith("USER ")), `AUTH TLS before USER: ${commands.join(" | ")}`);
      assert.ok(commands.includes("PROT P"), commands.join(" | "));
      assert.ok(r.stderr.includes("<--- 200 Protection level set to P."), show(r));
      assert.ok(commands.includes(`STOR ${remote}`) && commands.includes(`RETR ${remote}`), commands.join(" | "));
      assert.ok(commands.filter((c) => mode.command.test(c)).length >= 2, commands.join(" | "));
      assert.deepEqual(commands.filter((c) => mode.not.test(c)), []);
      assert.doesNotMatch(r.stderr, /<--- 52[12] /, show(r));
      assert.equal(sha256(readFileSync(join(home, remote))), sha256(payload));
      assert.equal(sha256(readFileSync(back)), sha256(payload));
    });
  }

  // ---------------------------------------------------------------------------------------------
  // Python ftplib.FTP_TLS
  // ---------------------------------------------------------------------------------------------

  async function python(scenario: string, args: Record<string, unknown>, user = USER, password = PASSWORD, port = server.port) {
    const r = await run("python3", [pyScript, scenario, String(port), user, password, JSON.stringify(args)], env);
    assert.equal(r.code, 0, show(r));
    return JSON.parse(r.stdout) as Record<string, unknown>;
  }

  for (const active of [false, true]) {
    test(`ftplib.FTP_TLS resuming the control session on ${active ? "active" : "passive"} data connections: STOR and RETR with matching sha256`, async () => {
      const name = `py-resume-${active ? "active" : "passive"}.bin`;
      const out = await python("resuming", { src: payloadFile, name, active });
      assert.match(String(out.stor), /^226 /);
      assert.match(String(out.retr), /^226 /);
      assert.deepEqual(out.reused, [true, true], "both data connections resumed the control connection's session");
      assert.equal(out.sha, sha256(payload));
      assert.equal(sha256(readFileSync(join(home, name))), sha256(payload));
    });
  }

  test("stock ftplib.FTP_TLS (no session resumption) is refused with 522 on STOR and RETR while reuse is required", async () => {
    writeFileSync(join(home, "py-existing.bin"), payload);
    const out = await python("stock", { src: payloadFile, name: "py-stock-refused.bin", existing: "py-existing.bin" });
    assert.deepEqual(out.reused, [false, false], "the stock client's data connections did not resume");
    const stor = out.stor as PyOutcome;
    const retr = out.retr as PyOutcome;
    assert.equal(stor.result, "522", JSON.stringify(stor));
    assert.equal(stor.error, "error_perm", JSON.stringify(stor));
    assert.match(stor.text ?? "", /session/i);
    assert.equal(retr.result, "522", JSON.stringify(retr));
    assert.equal(retr.error, "error_perm", JSON.stringify(retr));
    assert.equal(out.received, 0, "no file bytes reached the non-resuming data connection");
    assert.match(String(out.noop), /^200 /, "the control connection stays usable and in step");
    assert.equal(existsSync(join(home, "py-stock-refused.bin")), false, "the refused upload created nothing");
  });

  test("empty uploads whose client closes without close_notify are complete empty files (226)", async () => {
    const out = await python("empty_no_notify", { count: 10 });
    assert.deepEqual((out.replies as string[]).map((r) => r.slice(0, 3)), Array(10).fill("226"));
    for (let i = 0; i < 10; i++) assert.equal(readFileSync(join(home, `empty-${i}.bin`)).length, 0);
  });

  test("implicit FTPS: the session tickets come before the 220, so a client that keeps its session after the greeting has one", async () => {
    const out = await python("implicit_ticket", {}, USER, PASSWORD, server.node.implicitPort);
    assert.match(String(out.greeting), /^220 /);
    assert.equal(out.version, "TLSv1.3");
    assert.equal(out.ticket, true);
  });

  test("the same stock ftplib.FTP_TLS succeeds for an account with tlsSessionReuse: false", async () => {
    mkdirSync(server.home("noreuse"), { recursive: true });
    writeFileSync(join(server.home("noreuse"), "cam-existing.bin"), payload);
    const out = await python("stock", { src: payloadFile, name: "cam-upload.bin", existing: "cam-existing.bin", list: true }, "noreuse", "camera-pass");
    assert.deepEqual(out.reused, [false, false, false], "the data connections really did not resume");
    // A listing over TLS 1.3 too: its session tickets go before the data, so the close is clean.
    assert.deepEqual(out.list, { result: "ok" });
    assert.equal(out.listed, 2);
    assert.deepEqual(out.stor, { result: "ok" });
    assert.deepEqual(out.retr, { result: "ok" });
    assert.equal(out.received, payload.length);
    assert.equal(out.sha, sha256(payload));
    assert.equal(sha256(readFileSync(join(server.home("noreuse"), "cam-upload.bin"))), sha256(payload));
  });

  // ---------------------------------------------------------------------------------------------
  // basic-ftp
  // ---------------------------------------------------------------------------------------------

  for (const secure of [true, "implicit"] as const) {
    test(`basic-ftp with secure: ${JSON.stringify(secure)} uploads and downloads with matching sha256`, async () => {
      const client = new Client(10_000);
      const log: string[] = [];
      client.ftp.verbose = true;
      client.ftp.log = (message: string) => log.push(message);
      try {
        await client.access({
          host: "127.0.0.1",
          port: secure === true ? server.port : server.node.implicitPort,
          user: USER,
          password: PASSWORD,
          secure,
          secureOptions: { rejectUnauthorized: false },
        });
        assert.ok(client.ftp.socket instanceof TLSSocket, "the control connection is TLS");
        const name = `basic-${secure}.bin`;
        await client.uploadFrom(Readable.from([payload]), name);
        assert.equal(sha256(readFileSync(join(home, name))), sha256(payload));
        const back = await downloadToBuffer(client, name);
        assert.equal(back.length, payload.length);
        assert.equal(sha256(back), sha256(payload));
        const second = await downloadToBuffer(client, name); // a later data connection resumes too
        assert.equal(sha256(second), sha256(payload));
        assert.ok(log.some((l) => l.includes("> PROT P")), log.join("\n"));
        if (secure === true) assert.ok(log.some((l) => l.includes("> AUTH TLS")), log.join("\n"));
      } finally {
        client.close();
      }
    });
  }

  test("PROT P uploads within a byte quota: STOR and APPE crossing it stop with 552 and the files stay within it; appends and replacements within it are exact", async () => {
    const home = server.home("tlsquota");
    const size = (name: string) => (existsSync(join(home, name)) ? readFileSync(join(home, name)).length : 0);
    await withExplicit(server.port, async (control) => {
      await control.login("tlsquota", "quota-pass");
      await control.protect();
      expectCode(await control.command("TYPE I"), 200, "TYPE I");
      const tooBig = randomBytes(1024 * 1024);
      expectCode(await control.store("STOR big.bin", tooBig), 552, "STOR crossing the quota");
      // A new file the quota stopped is removed, whatever uploads.partial says (as over plain data).
      assert.equal(existsSync(join(home, "big.bin")), false, "the new file the quota stopped is removed");
      const fits = randomBytes(60 * 1024);
      expectCode(await control.store("STOR grows.bin", fits), 226, "STOR within the quota");
      assert.equal(sha256(readFileSync(join(home, "grows.bin"))), sha256(fits));
      // An append is streamed (O_APPEND gives a direct copy no position): the quota counter meters it.
      expectCode(await control.store("APPE grows.bin", tooBig), 552, "APPE crossing the quota");
      assert.ok(size("grows.bin") <= 100 * 1024, `within the quota: ${size("grows.bin")}`);
      expectCode(await control.command("DELE grows.bin"), 250, "DELE");
      const appended = randomBytes(20 * 1024);
      expectCode(await control.store("APPE new.bin", appended), 226, "APPE within the quota");
      expectCode(await control.store("APPE new.bin", appended), 226, "APPE within the quota");
      assert.equal(sha256(readFileSync(join(home, "new.bin"))), sha256(Buffer.concat([appended, appended])));
      // Replacing a file goes through a temporary file and a rename (uploads.atomic).
      const replacement = randomBytes(30 * 1024);
      expectCode(await control.store("STOR new.bin", replacement), 226, "STOR over an existing file");
      assert.equal(sha256(readFileSync(join(home, "new.bin"))), sha256(replacement));
    });
  });

  // ---------------------------------------------------------------------------------------------
  // STARTTLS injection
  // ---------------------------------------------------------------------------------------------

  test("bytes pipelined after AUTH TLS are discarded: USER sent in the same write is never executed", async () => {
    const control = await TlsControl.plain(server.port);
    try {
      control.socket.write(`AUTH TLS\r\nUSER ${USER}\r\n`);
      expectCode(await control.reply(), 234, "AUTH TLS");
      await control.startTls(TLS_CLIENT);
      // Had USER been executed, PASS would log in (230); it is 503 "Login with USER first".
      expectCode(await control.command(`PASS ${PASSWORD}`), 503, "PASS after the injected USER");
      expectCode(await control.command("PWD"), 530, "PWD while not logged in");
      await control.login();
      expectCode(await control.command("PWD"), 257, "PWD after a real login");
    } finally {
      await control.close();
    }
  });

  test("a whole injected login (AUTH TLS, USER, PASS, DELE in one write) leaves the session logged out and the file intact", async () => {
    writeFileSync(join(home, "keep-me.txt"), "still here");
    const control = await TlsControl.plain(server.port);
    try {
      control.socket.write(`AUTH TLS\r\nUSER ${USER}\r\nPASS ${PASSWORD}\r\nDELE keep-me.txt\r\n`);
      expectCode(await control.reply(), 234, "AUTH TLS");
      await control.startTls(TLS_CLIENT);
      expectCode(await control.command("PWD"), 530, "PWD: the injected login did not happen");
      expectCode(await control.command("NOOP"), 200, "NOOP");
      assert.equal(readFileSync(join(home, "keep-me.txt"), "utf8"), "still here");
    } finally {
      await control.close();
    }
  });

  // ---------------------------------------------------------------------------------------------
  // Replies of the security commands
  // ---------------------------------------------------------------------------------------------

  test("ABOR during a PROT P data connection's TLS handshake ends it at once: 426, then 226", async () => {
    writeFileSync(join(server.home(USER), "abor-handshake.bin"), "x");
    await withExplicit(server.port, async (control) => {
      await control.login();
      await control.protect();
      // A data connection that never sends its ClientHello: the handshake would wait for the data timeout.
      const silent = await connectData(await control.epsv());
      silent.on("error", () => {});
      try {
        expectCode(await control.command("RETR abor-handshake.bin"), 150, "RETR");
        control.send("ABOR");
        expectCode(await control.reply(5000), 426, "the transfer aborted");
        expectCode(await control.reply(5000), 226, "ABOR");
        expectCode(await control.command("NOOP"), 200, "NOOP after it");
      } finally {
        silent.destroy();
      }
    });
  });

  test("a PROT P upload interrupted by ABOR keeps what arrived, as a plain one does (uploads.partial keep): the client can resume", async () => {
    await withExplicit(server.port, async (control) => {
      await control.login();
      await control.protect();
      expectCode(await control.command("TYPE I"), 200, "TYPE I");
      const data = await control.dataTls(await control.epsv());
      data.on("error", () => {});
      try {
        expectCode(await control.command("STOR interrupted.bin"), 150, "STOR");
        const sent = randomBytes(300_000);
        await new Promise<void>((resolve) => data.write(sent, () => resolve()));
        // Received and decrypted by now; less than the server gathers before a write to the disk.
        await sleep(300);
        control.send("ABOR");
        expectCode(await control.reply(5000), 426, "the upload aborted");
        expectCode(await control.reply(5000), 226, "ABOR");
        assert.deepEqual(readFileSync(join(server.home(USER), "interrupted.bin")), sent);
        expectCode(await control.command("SIZE interrupted.bin"), 213, "SIZE");
      } finally {
        data.destroy();
      }
    });
  });

  test("FEAT lists AUTH TLS, PBSZ and PROT; PBSZ before AUTH 503, PROT before PBSZ 503, PROT S 536, CCC 534, AUTH KERBEROS 504", async () => {
    const plain = await RawClient.connect(server.port);
    try {
      const feat = await plain.command("FEAT");
      expectCode(feat, 211, "FEAT");
      const features = feat.lines.slice(1, -1).map((l) => l.trim());
      for (const f of ["AUTH TLS", "PBSZ", "PROT"]) assert.ok(features.includes(f), `FEAT has ${f}: ${features.join(" | ")}`);
      expectCode(await plain.command("PBSZ 0"), 503, "PBSZ before AUTH");
      expectCode(await plain.command("PROT P"), 503, "PROT before AUTH");
      expectCode(await plain.command("AUTH KERBEROS"), 504, "AUTH KERBEROS");
    } finally {
      await plain.close();
    }

    await withExplicit(server.port, async (control) => {
      expectCode(await control.command("AUTH TLS"), 503, "AUTH TLS twice");
      expectCode(await control.command("PROT P"), 503, "PROT before PBSZ");
      expectCode(await control.command("PBSZ abc"), 501, "PBSZ takes a decimal number (RFC 2228)");
      expectCode(await control.command("PBSZ 0"), 200, "PBSZ 0");
      expectCode(await control.command("PROT S"), 536, "PROT S");
      expectCode(await control.command("PROT E"), 536, "PROT E");
      await control.login();
      expectCode(await control.command("CCC"), 534, "CCC");
      // After the refused CCC the control connection is still TLS and in step.
      expectCode(await control.command("NOOP"), 200, "NOOP after CCC");
      expectCode(await control.command("PROT P"), 200, "PROT P");
      writeFileSync(join(home, "after-ccc.txt"), "protected");
      const got = await control.retrieve("RETR after-ccc.txt");
      expectCode(got.end, 226, "RETR");
      assert.equal(got.bytes.toString(), "protected");
      assert.equal(got.reused, true);
    });
  });

  test("PROT C after PROT P sends the data in clear again (optional policy)", async () => {
    writeFileSync(join(home, "clear.txt"), "in clear");
    await withExplicit(server.port, async (control) => {
      await control.login();
      await control.protect();
      expectCode(await control.command("PROT C"), 200, "PROT C");
      const data = await connectData(await control.epsv());
      expectCode(await control.command("RETR clear.txt"), 150, "RETR");
      const bytes = await readAll(data);
      expectCode(await control.reply(), 226, "RETR done");
      assert.equal(bytes.toString(), "in clear");
    });
  });

  // ---------------------------------------------------------------------------------------------
  // A stranger on the pending PROT P data port
  // ---------------------------------------------------------------------------------------------

  test("a TLS connection from 127.0.0.2 to 127.0.0.1's pending PROT P port is cut at TCP level; the rightful client still gets its file", async () => {
    writeFileSync(join(home, "secret.bin"), payload);
    await withExplicit(server.port, async (control) => {
      await control.login();
      expectCode(await control.command("TYPE I"), 200, "TYPE I");
      await control.protect();
      const port = await control.epsv();
      const before = server.node.portPool.stats().strangersRefused;

      // The stranger connects first and starts TLS (it has no session of ours to resume).
      // (tls.connect passes localAddress on to net.connect; @types/node does not list it.)
      const strangerOptions = { host: "127.0.0.1", port, localAddress: "127.0.0.2", ...TLS_CLIENT };
      const stranger = tlsConnect(strangerOptions);
      const strangerChunks: Buffer[] = [];
      stranger.on("data", (chunk: Buffer) => strangerChunks.push(chunk));
      const strangerOutcome = await new Promise<{ secured: boolean; error: string | null }>((resolve) => {
        let secured = false;
        let error: string | null = null;
        // Bounded: a stranger that is not cut off gives up (and fails the assertions below) after 5 s.
        const timer = setTimeout(() => {
          error = null;
          stranger.destroy();
        }, 5000);
        stranger.once("secureConnect", () => (secured = true));
        stranger.on("error", (err) => (error ??= err.message));
        stranger.once("close", () => {
          clearTimeout(timer);
          resolve({ secured, error });
        });
      });
      assert.equal(strangerOutcome.secured, false, "the stranger never completed a TLS handshake");
      assert.ok(strangerOutcome.error, "the stranger's connection failed");
      assert.equal(Buffer.concat(strangerChunks).length, 0, "the stranger got no data");
      assert.equal(server.node.portPool.stats().strangersRefused, before + 1, "refused by its address");
      assert.equal(server.node.portPool.stats().pendingReservations, 1, "the reservation is still pending for the rightful client");

      // The rightful client then retrieves on the same port, resuming its session.
      const got = await control.retrieve("RETR secret.bin", port);
      expectCode(got.end, 226, "RETR done");
      assert.equal(got.reused, true);
      assert.equal(sha256(got.bytes), sha256(payload));
    });
  });

  test("a PROT P data connection from the right address that resumes another client's session (an account of its own) gets 522 and no data", async () => {
    writeFileSync(join(home, "secret3.txt"), "not for a neighbour behind the same NAT");
    await withExplicit(server.port, async (victim) => {
      await victim.login();
      await victim.protect();
      const thief = await TlsControl.explicit(server.port);
      try {
        await thief.login("tlsquota", "quota-pass");
        await thief.protect();
        // The thief resumes its own session, valid on this node, on the victim's data port.
        const data = await thief.dataTls(await victim.epsv());
        data.on("error", () => {});
        const chunks: Buffer[] = [];
        data.on("data", (c: Buffer) => chunks.push(c));
        const closed = new Promise<void>((resolve) => data.once("close", () => resolve()));
        const secured = whenSecured(data);
        expectCode(await victim.command("RETR secret3.txt"), 150, "RETR");
        expectCode(await victim.reply(), 522, "RETR over the thief's session");
        await closed;
        assert.deepEqual(await secured, { secured: true, reused: true }, "the thief's own session did resume");
        assert.equal(Buffer.concat(chunks).length, 0, "no file bytes were sent");
        const again = await victim.retrieve("RETR secret3.txt");
        expectCode(again.end, 226, "RETR by the victim");
        assert.equal(again.bytes.toString(), "not for a neighbour behind the same NAT");
      } finally {
        await thief.close();
      }
    });
  });

  test("a PROT P data connection from the right address that does not resume the session gets 522 and no data", async () => {
    writeFileSync(join(home, "secret2.txt"), "not for a fresh session");
    await withExplicit(server.port, async (control) => {
      await control.login();
      await control.protect();
      const data = await control.dataTls(await control.epsv(), false);
      data.on("error", () => {});
      const chunks: Buffer[] = [];
      data.on("data", (c: Buffer) => chunks.push(c));
      const closed = new Promise<void>((resolve) => data.once("close", () => resolve()));
      const secured = whenSecured(data);
      try {
        expectCode(await control.command("RETR secret2.txt"), 150, "RETR");
        const end = await control.reply();
        expectCode(end, 522, "RETR over a fresh TLS session");
        assert.match(end.text, /session/i);
        await closed;
        // The handshake itself completes (as a full one); the server then checks it and hangs up.
        assert.deepEqual(await secured, { secured: true, reused: false });
        assert.equal(Buffer.concat(chunks).length, 0, "no file bytes were sent");
        // The session goes on: the next, resuming, data connection works.
        const again = await control.retrieve("RETR secret2.txt");
        expectCode(again.end, 226, "RETR resumed");
        assert.equal(again.bytes.toString(), "not for a fresh session");
      } finally {
        data.destroy();
      }
    });
  });
});

/**
 * Several PROT P transfers on one control connection by a client that uses each TLS 1.3 ticket only
 * once (curl 7.88 with OpenSSL 3, as RFC 8446 §C.4 advises): Node's TLS server issues no new ticket
 * on a resumed connection, so such a client's second data connection has nothing left to resume.
 * Over TLS 1.2 it resumes by session ID, which the node's cache serves again and again.
 */
describe("FTPS: several curl transfers on one control connection, session reuse required", () => {
  let server: TestServer;
  let capped: TestServer;
  let local: string;
  let env: NodeJS.ProcessEnv;
  const files = ["one.bin", "two.bin", "three.bin"].map((name) => ({ name, content: randomBytes(200 * 1024 + name.length) }));

  before(async () => {
    server = await startServer({});
    capped = await startServer({ tls: { maxVersion: "TLSv1.2" } });
    local = mkdtempSync(join(tmpdir(), "edgeftp-ftps-several-"));
    mkdirSync(join(local, "home"));
    env = childEnv(join(local, "home"));
    for (const s of [server, capped]) for (const f of files) writeFileSync(join(s.home(USER), f.name), f.content);
  });
  after(async () => {
    await Promise.all([server.close(), capped.close()]);
    rmSync(local, { recursive: true, force: true });
  });
  checkLeaks();

  /** One curl run that downloads every file over one control connection; asserts the bytes and one login. */
  const downloadAll = async (node: TestServer, label: string, ...args: string[]) => {
    const out = files.flatMap((f) => [`ftp://${USER}:${PASSWORD}@127.0.0.1:${node.port}/${f.name}`, "-o", join(local, `${label}-${f.name}`)]);
    const r = await run("curl", ["-q", "-sS", "-v", "-k", "--noproxy", "*", "--max-time", "20", "--ssl-reqd", ...args, ...out], env);
    assert.equal(r.code, 0, show(r));
    assert.equal(curlCommands(r.stderr).filter((c) => c.startsWith("USER ")).length, 1, "one control connection");
    for (const f of files) assert.equal(sha256(readFileSync(join(local, `${label}-${f.name}`))), sha256(f.content));
    return r;
  };

  test("a client that caps itself at TLS 1.2 (curl --tls-max 1.2) resumes the control session on every data connection", async () => {
    const r = await downloadAll(server, "client-capped", "--tls-max", "1.2");
    assert.ok(r.stderr.includes("SSL connection using TLSv1.2 "), show(r));
  });

  test("a node with tls.maxVersion TLSv1.2 serves curl's several transfers without any client setting", async () => {
    const r = await downloadAll(capped, "node-capped");
    assert.ok(r.stderr.includes("SSL connection using TLSv1.2 "), show(r));
    assert.ok(!r.stderr.includes("SSL connection using TLSv1.3 "), show(r));
  });
});

describe("FTPS: node with tls.requireSessionReuse false", () => {
  let server: TestServer;
  let local: string;
  let env: NodeJS.ProcessEnv;
  let pyScript: string;
  const payload = randomBytes(1024 * 1024 + 5);

  before(async () => {
    server = await startServer({ tls: { requireSessionReuse: false } }, [{ name: "strict", password: "strict-pass", tlsSessionReuse: true }]);
    local = mkdtempSync(join(tmpdir(), "edgeftp-ftps-noreuse-"));
    mkdirSync(join(local, "home"));
    env = childEnv(join(local, "home"));
    writeFileSync(join(local, "payload.bin"), payload);
    pyScript = join(local, "ftps.py");
    writeFileSync(pyScript, PY_SCRIPT);
  });
  after(async () => {
    await server.close();
    rmSync(local, { recursive: true, force: true });
  });
  checkLeaks();

  const python = async (user: string, password: string, name: string) => {
    const r = await run("python3", [pyScript, "stock", String(server.port), user, password, JSON.stringify({ src: join(local, "payload.bin"), name, existing: "existing.bin" })], env);
    assert.equal(r.code, 0, show(r));
    return JSON.parse(r.stdout) as Record<string, unknown>;
  };

  test("stock ftplib.FTP_TLS (no resumption) transfers for any account with matching sha256", async () => {
    writeFileSync(join(server.home(USER), "existing.bin"), payload);
    const out = await python(USER, PASSWORD, "stock-up.bin");
    assert.deepEqual(out.reused, [false, false]);
    assert.deepEqual(out.stor, { result: "ok" });
    assert.deepEqual(out.retr, { result: "ok" });
    assert.equal(out.sha, sha256(payload));
    assert.equal(sha256(readFileSync(join(server.home(USER), "stock-up.bin"))), sha256(payload));
  });

  test("an account with tlsSessionReuse: true still requires resumption there (522)", async () => {
    writeFileSync(join(server.home("strict"), "existing.bin"), payload);
    const out = await python("strict", "strict-pass", "strict-up.bin");
    assert.equal((out.stor as PyOutcome).result, "522", JSON.stringify(out.stor));
    assert.equal((out.retr as PyOutcome).result, "522", JSON.stringify(out.retr));
    assert.equal(out.received, 0);
    assert.equal(existsSync(join(server.home("strict"), "strict-up.bin")), false);
  });
});

describe("FTPS policy: control (TLS required to log in)", () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({ tls: { policy: "control" } }, [{ name: "camera", password: "cam-pass", tlsPolicy: "optional" }]);
  });
  after(async () => {
    await server.close();
  });
  checkLeaks();

  test("plain USER gets 530 saying TLS is required; after AUTH TLS the login works", async () => {
    const plain = await RawClient.connect(server.port);
    try {
      const r = await plain.command(`USER ${USER}`);
      expectCode(r, 530, "plain USER");
      assert.match(r.text, /TLS/);
      expectCode(await plain.command(`PASS ${PASSWORD}`), 503, "PASS after the refused USER");
      expectCode(await plain.command("PWD"), 530, "not logged in");
    } finally {
      await plain.close();
    }
    await withExplicit(server.port, async (control) => {
      await control.login();
      expectCode(await control.command("PWD"), 257, "PWD over TLS");
    });
    const implicit = await TlsControl.implicit(server.node.implicitPort);
    try {
      await implicit.login();
    } finally {
      await implicit.close();
    }
  });

  test("an account with tlsPolicy: optional (an old camera) logs in and transfers in plain FTP", async () => {
    writeFileSync(join(server.home("camera"), "snap.jpg"), "jpeg bytes");
    const plain = await RawClient.connect(server.port);
    try {
      await plain.login("camera", "cam-pass");
      const data = await plain.passive();
      expectCode(await plain.command("RETR snap.jpg"), 150, "RETR");
      const bytes = await readAll(data);
      expectCode(await plain.reply(), 226, "RETR done");
      assert.equal(bytes.toString(), "jpeg bytes");
    } finally {
      await plain.close();
    }
  });
});

describe("FTPS policy: data (TLS required for control and data)", () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({ tls: { policy: "data" } });
    writeFileSync(join(server.home(USER), "listed.txt"), "x");
  });
  after(async () => {
    await server.close();
  });
  checkLeaks();

  test("LIST with PROT C is 521, PROT C after login is 534, with PROT P LIST works", async () => {
    await withExplicit(server.port, async (control) => {
      expectCode(await control.command("PBSZ 0"), 200, "PBSZ 0");
      // Before login the account (and so its policy) is unknown: PROT C is accepted...
      expectCode(await control.command("PROT C"), 200, "PROT C before login");
      await control.login();
      // ...but no clear data connection is opened for it.
      await control.epsv();
      const refused = await control.command("LIST");
      expectCode(refused, 521, "LIST with PROT C");
      assert.match(refused.text, /PROT P/);
      expectCode(await control.command("PROT C"), 534, "PROT C after login");
      expectCode(await control.command("PROT P"), 200, "PROT P");
      const list = await control.retrieve("LIST");
      expectCode(list.end, 226, "LIST over PROT P");
      assert.equal(list.reused, true);
      assert.match(list.bytes.toString(), / listed\.txt\r\n$/);
    });
  });

  test("LIST before any PROT is 521", async () => {
    await withExplicit(server.port, async (control) => {
      await control.login();
      await control.epsv();
      expectCode(await control.command("LIST"), 521, "LIST before PROT");
      expectCode(await control.command("NOOP"), 200, "NOOP");
    });
  });
});

describe("FTPS certificate reload", () => {
  let local: string;
  before(() => {
    local = mkdtempSync(join(tmpdir(), "edgeftp-ftps-certs-"));
  });
  after(() => {
    rmSync(local, { recursive: true, force: true });
  });
  checkLeaks();

  /** A new self-signed EC certificate; returns its PEMs and SHA-256 fingerprint (as getPeerCertificate() writes it). */
  async function makeCert(cn: string): Promise<{ cert: string; key: string; fingerprint: string }> {
    const pems = await generate([{ name: "commonName", value: cn }], {
      keyType: "ec",
      curve: "P-256",
      algorithm: "sha256",
      notAfterDate: new Date(Date.now() + 7 * 24 * 3600 * 1000),
    });
    return { cert: pems.cert, key: pems.private, fingerprint: new X509Certificate(pems.cert).fingerprint256 };
  }

  function writeCert(dir: string, pems: { cert: string; key: string }): void {
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "cert.pem"), pems.cert);
    writeFileSync(join(dir, "key.pem"), pems.key, { mode: 0o600 });
  }

  /**
   * The certificate a new explicit connection is presented, polled every 100 ms until it is
   * `expected`: a bounded wait for the watcher (it debounces bursts), at most ~3 s.
   */
  async function watchedFingerprint(server: TestServer, expected: string): Promise<string> {
    let seen = "";
    for (let i = 0; i < 30 && seen !== expected; i++) {
      await sleep(100);
      seen = await presentedFingerprint(server, "explicit");
    }
    return seen;
  }

  /**
   * Starts a node with the certificate `tls` (whose fingerprint is `first`), checks that a new
   * connection is presented it, and runs `body` with a session open on it to check that it
   * survives reloads: logged in, PROT P, its LIST working (marker.txt gives listings a line).
   * Closes the session and the node after, whatever happens.
   */
  async function withSessionOnNode(
    tls: { cert: string; key: string },
    first: string,
    body: (server: TestServer, control: TlsControl) => Promise<void>,
  ): Promise<void> {
    const server = await startServer({ tls });
    let control: TlsControl | null = null;
    try {
      writeFileSync(join(server.home(USER), "marker.txt"), "m");
      assert.equal(await presentedFingerprint(server, "explicit"), first);
      control = await TlsControl.explicit(server.port);
      await control.login();
      await control.protect();
      const list = await control.retrieve("LIST");
      expectCode(list.end, 226, "LIST before the reload");
      assert.equal(list.reused, true);
      await body(server, control);
    } finally {
      await control?.close();
      await server.close();
    }
  }

  async function stillWorks(control: TlsControl, fingerprint: string): Promise<void> {
    expectCode(await control.command("NOOP"), 200, "NOOP on the existing session");
    assert.equal(control.fingerprint, fingerprint, "the existing session keeps its certificate");
    const list = await control.retrieve("LIST");
    expectCode(list.end, 226, "LIST over PROT P on the existing session");
    assert.equal(list.reused, true, "its new data connection resumed the session opened before the reload");
    assert.match(list.bytes.toString(), / marker\.txt\r\n$/);
  }

  test("node.reload() (SIGHUP's handler) serves the new certificate to new connections; the open session keeps working", async () => {
    const dir = join(local, "sighup");
    const [one, two, three] = await Promise.all([makeCert("edgeftp-reload-one"), makeCert("edgeftp-reload-two"), makeCert("edgeftp-reload-three")]);
    assert.notEqual(one.fingerprint, two.fingerprint);
    writeCert(join(dir, "v1"), one);
    writeCert(join(dir, "v2"), two);
    // A deliberately broken pair: v3's certificate with v2's key.
    writeCert(join(dir, "v3"), { cert: three.cert, key: two.key });
    // The configured paths go through a symlinked directory, swapped atomically (as secret
    // mounts do). The watcher watches the directory it resolved at start, so only reload() can
    // pick the swap up: this test sees SIGHUP's path alone.
    symlinkSync("v1", join(dir, "live"));
    const swapTo = (version: string) => {
      symlinkSync(version, join(dir, "live.next"));
      renameSync(join(dir, "live.next"), join(dir, "live"));
    };

    await withSessionOnNode({ cert: join(dir, "live", "cert.pem"), key: join(dir, "live", "key.pem") }, one.fingerprint, async (server, control) => {
      assert.equal(control.fingerprint, one.fingerprint);

      swapTo("v2");
      assert.equal(await presentedFingerprint(server, "explicit"), one.fingerprint, "nothing changes before the reload");
      await server.node.reload();
      assert.equal(await presentedFingerprint(server, "explicit"), two.fingerprint, "AUTH TLS presents the new certificate");
      assert.equal(await presentedFingerprint(server, "implicit"), two.fingerprint, "implicit TLS presents the new certificate");
      await stillWorks(control, one.fingerprint);

      // A broken replacement is refused by the reload: the node keeps serving the previous certificate.
      swapTo("v3");
      await server.node.reload();
      assert.equal(await presentedFingerprint(server, "explicit"), two.fingerprint, "a mismatched key does not replace the certificate");
      await stillWorks(control, one.fingerprint);
    });
  });

  test("the watcher reloads when the certificate files are replaced; the open session keeps working", async () => {
    const dir = join(local, "watched");
    const [one, two] = await Promise.all([makeCert("edgeftp-watch-one"), makeCert("edgeftp-watch-two")]);
    assert.notEqual(one.fingerprint, two.fingerprint);
    writeCert(dir, one);
    await withSessionOnNode({ cert: join(dir, "cert.pem"), key: join(dir, "key.pem") }, one.fingerprint, async (server, control) => {
      // Replace both files atomically (write aside, rename over), as certificate renewals do.
      writeFileSync(join(dir, "key.pem.new"), two.key, { mode: 0o600 });
      writeFileSync(join(dir, "cert.pem.new"), two.cert);
      renameSync(join(dir, "key.pem.new"), join(dir, "key.pem"));
      renameSync(join(dir, "cert.pem.new"), join(dir, "cert.pem"));

      assert.equal(await watchedFingerprint(server, two.fingerprint), two.fingerprint, "a new connection sees the replaced certificate without SIGHUP");
      assert.equal(await presentedFingerprint(server, "implicit"), two.fingerprint);
      await stillWorks(control, one.fingerprint);
    });
  });

  test("the watcher follows a secret mount's ..data symlink swap (Kubernetes-style layout)", async () => {
    const dir = join(local, "k8s");
    const [one, two] = await Promise.all([makeCert("edgeftp-k8s-one"), makeCert("edgeftp-k8s-two")]);
    writeCert(join(dir, "..v1"), one);
    writeCert(join(dir, "..v2"), two);
    // cert.pem -> ..data/cert.pem, ..data -> ..v1: the mount swaps ..data atomically.
    symlinkSync("..v1", join(dir, "..data"));
    symlinkSync(join("..data", "cert.pem"), join(dir, "cert.pem"));
    symlinkSync(join("..data", "key.pem"), join(dir, "key.pem"));
    const server = await startServer({ tls: { cert: join(dir, "cert.pem"), key: join(dir, "key.pem") } });
    try {
      assert.equal(await presentedFingerprint(server, "explicit"), one.fingerprint);
      symlinkSync("..v2", join(dir, "..data_tmp"));
      renameSync(join(dir, "..data_tmp"), join(dir, "..data"));
      assert.equal(await watchedFingerprint(server, two.fingerprint), two.fingerprint, "the swapped certificate is served without SIGHUP");
    } finally {
      await server.close();
    }
  });
});
