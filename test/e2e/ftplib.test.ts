/**
 * Python's stdlib ftplib against a real node: binary transfers in PASV, EPSV, PORT and EPRT mode,
 * TYPE A conversion (storlines/retrlines and the raw wire bytes), MLSD facts, NLST, SIZE, MDTM,
 * REST on RETR and STOR, file management, CWD clamping at the root, and the reply codes of errors
 * as ftplib raises them. The Python side does the FTP work and prints JSON; the assertions are here.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, truncateSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { sha256 } from "../helpers/hash.js";
import { checkLeaks } from "../helpers/leaks.js";
import { run, show } from "../helpers/run-client.js";
import { PASSWORD, startServer, USER, type TestServer } from "../helpers/server.js";

/**
 * The Python side. `python3 script.py SCENARIO PORT USER PASSWORD JSON-ARGS` runs one scenario and
 * prints one JSON object. Every socket has a timeout and every loop a bound.
 */
const SCRIPT = String.raw`
import ftplib, hashlib, io, json, socket, sys

scenario, port, user, password = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
args = json.loads(sys.argv[5])

class Client(ftplib.FTP):
    """ftplib.FTP that records the commands it sends and can be told which data-setup command to use."""
    data_mode = "pasv"  # pasv | epsv | port | eprt

    def __init__(self):
        super().__init__(timeout=10)
        self.sent = []

    def putcmd(self, line):
        self.sent.append(line)
        super().putcmd(line)

    def makepasv(self):
        # ftplib only uses EPSV on IPv6; force it here.
        if self.data_mode == "epsv":
            return ftplib.parse229(self.sendcmd("EPSV"), self.sock.getpeername())
        return super().makepasv()

    def makeport(self):
        # Listen on loopback only (ftplib would listen on every interface); PORT or EPRT as asked.
        sock = socket.create_server(("127.0.0.1", 0), family=socket.AF_INET, backlog=1)
        sock.settimeout(10)
        host, lport = sock.getsockname()[:2]
        if self.data_mode == "eprt":
            self.sendeprt(host, lport)
        else:
            self.sendport(host, lport)
        return sock

def connect(login=True):
    f = Client()
    f.connect("127.0.0.1", port)
    if login:
        f.login(user, password)
    return f

def error_of(fn, *a, **k):
    """'ok' or '<ExceptionClass> <reply text>' for one call."""
    try:
        fn(*a, **k)
        return "ok"
    except ftplib.all_errors as e:
        return type(e).__name__ + " " + str(e)

def recv_all(conn):
    data = b""
    for _ in range(100000):
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
    conn.close()
    return data

def raw_retr(f, type_, name):
    f.voidcmd("TYPE " + type_)
    conn = f.transfercmd("RETR " + name)
    data = recv_all(conn)
    f.voidresp()
    return data

def raw_stor(f, type_, name, data):
    f.voidcmd("TYPE " + type_)
    conn = f.transfercmd("STOR " + name)
    conn.sendall(data)
    conn.close()
    return f.voidresp()

out = {}

if scenario == "transfers":
    payload = open(args["payload"], "rb").read()
    for mode in ["pasv", "epsv", "port", "eprt"]:
        f = connect()
        f.data_mode = mode
        f.set_pasv(mode in ("pasv", "epsv"))
        name = "ftplib-" + mode + ".bin"
        stor = f.storbinary("STOR " + name, io.BytesIO(payload), blocksize=65536)
        h = hashlib.sha256()
        retr = f.retrbinary("RETR " + name, h.update, blocksize=65536)
        size = f.size(name)
        f.quit()
        out[mode] = {"stor": stor, "retr": retr, "sha": h.hexdigest(), "size": size, "sent": f.sent}

elif scenario == "ascii":
    f = connect()
    # storlines sends every line CRLF-terminated whatever its local ending.
    f.storlines("STOR lines.txt", io.BytesIO(args["lf_text"].encode()))
    # A raw TYPE A upload: exactly these bytes on the wire (a lone CR must survive).
    raw_stor(f, "A", "raw-crlf.txt", args["crlf_text"].encode())
    raw_stor(f, "A", "mixed-up.txt", open(args["mixed_up"], "rb").read())
    lines = []
    f.retrlines("RETR server-lf.txt", lines.append)
    out["retrlines"] = lines
    out["wire_A"] = raw_retr(f, "A", "server-lf.txt").hex()
    out["wire_I"] = raw_retr(f, "I", "server-lf.txt").hex()
    with open(args["mixed_down"], "wb") as w:
        w.write(raw_retr(f, "A", "mixed-down.txt"))
    f.quit()

elif scenario == "facts":
    f = connect()
    out["mlsd"] = [[name, facts] for name, facts in f.mlsd(args["dir"])]
    out["mlsd_selected"] = [[name, facts] for name, facts in f.mlsd(args["dir"], facts=["type", "size"])]
    out["nlst_dir"] = f.nlst(args["dir"])
    f.cwd(args["dir"])
    out["nlst_cwd"] = f.nlst()
    out["size"] = f.size(args["file"])
    out["mdtm"] = f.sendcmd("MDTM " + args["file"])
    out["mdtm_ms"] = f.sendcmd("MDTM " + args["file_ms"])
    out["mfmt"] = f.sendcmd("MFMT 20190807060504 " + args["file_ms"])
    out["mdtm_after_mfmt"] = f.sendcmd("MDTM " + args["file_ms"])
    out["size_dir"] = error_of(f.size, "sub")
    out["mlsd_file"] = error_of(lambda: list(f.mlsd(args["file"])))
    f.quit()

elif scenario == "resume":
    payload = open(args["payload"], "rb").read()
    n = args["offset"]
    f = connect()
    f.set_pasv(args["pasv"])
    got = io.BytesIO()
    f.retrbinary("RETR whole.bin", got.write, rest=n)
    out["retr_rest_sha"] = hashlib.sha256(got.getvalue()).hexdigest()
    out["retr_rest_len"] = len(got.getvalue())
    # REST + STOR: the server holds the first n bytes; send the rest from offset n.
    out["stor_rest"] = f.storbinary("STOR prefix.bin", io.BytesIO(payload[n:]), rest=n)
    # A REST applies to one transfer only: the next plain STOR replaces the file.
    f.storbinary("STOR once.bin", io.BytesIO(b"0123456789"))
    f.storbinary("STOR once.bin", io.BytesIO(b"XY"), rest=4)
    f.storbinary("STOR once.bin", io.BytesIO(b"fresh"))
    # REST + APPE: APPE appends (the offset does not apply) and uses up the REST as well,
    # so the next plain STOR creates a new file rather than writing at that offset.
    f.storbinary("STOR appended.bin", io.BytesIO(b"head-"))
    out["appe_rest"] = f.storbinary("APPE appended.bin", io.BytesIO(b"tail"), rest=3)
    out["stor_after_appe"] = error_of(f.storbinary, "STOR after-appe.bin", io.BytesIO(b"new file"))
    out["sent"] = f.sent
    f.quit()

elif scenario == "manage":
    f = connect()
    out["pwd0"] = f.pwd()
    out["mkd"] = f.mkd("made")
    out["mkd_nested"] = f.mkd("made/inner")
    f.cwd("made/inner")
    out["pwd1"] = f.pwd()
    f.cwd("..")
    out["pwd2"] = f.pwd()
    f.cwd("..")
    out["pwd3"] = f.pwd()
    f.cwd("..")  # at the root already: stays there
    out["pwd4"] = f.pwd()
    f.cwd("made")
    out["cwd_up_many"] = f.sendcmd("CWD ../../../..")
    out["pwd5"] = f.pwd()
    f.storbinary("STOR made/to-rename.txt", io.BytesIO(b"rename me"))
    out["rename"] = f.rename("made/to-rename.txt", "made/renamed.txt")
    out["renamed_size"] = f.size("made/renamed.txt")
    out["old_name"] = error_of(f.size, "made/to-rename.txt")
    out["delete"] = f.delete("made/renamed.txt")
    out["deleted"] = error_of(f.size, "made/renamed.txt")
    out["rmd_nonempty"] = error_of(f.rmd, "made")
    out["rmd_inner"] = f.rmd("made/inner")
    out["rmd"] = f.rmd("made")
    out["errors"] = {
        "retr_missing": error_of(f.retrbinary, "RETR no-such-file.bin", lambda b: None),
        "size_missing": error_of(f.size, "no-such-file.bin"),
        "dele_missing": error_of(f.delete, "no-such-file.bin"),
        "cwd_missing": error_of(f.cwd, "no-such-dir"),
        "rmd_missing": error_of(f.rmd, "no-such-dir"),
        "mkd_existing": error_of(f.mkd, "keep"),
        "rnfr_missing": error_of(f.sendcmd, "RNFR no-such-file.bin"),
        "rnto_alone": error_of(f.sendcmd, "RNTO anything.txt"),
        "rnto_after_other": error_of(lambda: (f.sendcmd("RNFR keep/file.txt"), f.sendcmd("NOOP"), f.sendcmd("RNTO keep/other.txt"))),
        "unknown": error_of(f.sendcmd, "FROB"),
    }
    f.quit()
    bad = connect(login=False)
    out["errors"]["wrong_password"] = error_of(bad.login, user, "not-" + password)
    out["errors"]["after_failed_login"] = error_of(bad.pwd)
    bad.close()
    out["sent"] = f.sent

elif scenario == "abort":
    # ftplib's abort() sends "ABOR\r\n" as TCP urgent data (the Telnet Synch, RFC 959 §4.1.3).
    f = connect()
    f.voidcmd("TYPE I")
    conn = f.transfercmd("RETR " + args["name"])
    out["received_before"] = len(conn.recv(65536))
    out["abort"] = f.abort()
    conn.close()
    out["after_abort"] = f.getresp()
    out["noop"] = f.voidcmd("NOOP")
    f.quit()

print(json.dumps(out))
`;

type Json = Record<string, any>;

/** Short random lines ending in LF, CRLF or a lone CR, with CR,LF at offsets 64Ki*k - 1, 64Ki*k. */
function asciiMix(length: number): Buffer {
  const tokens = ["a", "bc", "def", "\n", "\r\n", "\r", "\r\n", "\n"];
  const random = randomBytes(length);
  const parts: string[] = [];
  let size = 0;
  for (let i = 0; size < length; i++) {
    const t = tokens[random[i % length] % tokens.length];
    parts.push(t);
    size += t.length;
  }
  const buf = Buffer.from(parts.join("").slice(0, length), "latin1");
  for (let k = 1; 64 * 1024 * k < buf.length; k++) {
    buf[64 * 1024 * k - 1] = 0x0d;
    buf[64 * 1024 * k] = 0x0a;
  }
  return buf;
}

describe("python ftplib client", () => {
  let server: TestServer;
  let local: string;
  let home: string;
  let script: string;
  let env: NodeJS.ProcessEnv;

  before(async () => {
    server = await startServer();
    home = server.home(USER);
    mkdirSync(home, { recursive: true });
    local = mkdtempSync(join(tmpdir(), "edgeftp-ftplib-"));
    script = join(local, "client.py");
    writeFileSync(script, SCRIPT);
    env = { ...process.env, PYTHONIOENCODING: "utf-8", PYTHONDONTWRITEBYTECODE: "1" };
  });
  after(async () => {
    await server.close();
    rmSync(local, { recursive: true, force: true });
  });
  checkLeaks();

  async function python(scenario: string, args: Json = {}): Promise<Json> {
    const r = await run("python3", [script, scenario, String(server.port), USER, PASSWORD, JSON.stringify(args)], env, 20_000);
    assert.equal(r.code, 0, show(r));
    return JSON.parse(r.stdout) as Json;
  }

  test("storbinary/retrbinary of 3 MiB in PASV, EPSV, PORT and EPRT mode keep the sha256", async () => {
    const payload = randomBytes(3 * 1024 * 1024 + 11);
    const payloadFile = join(local, "payload.bin");
    writeFileSync(payloadFile, payload);
    const out = await python("transfers", { payload: payloadFile });
    const expectCommand: Record<string, RegExp> = {
      pasv: /^PASV$/,
      epsv: /^EPSV$/,
      port: /^PORT 127,0,0,1,\d+,\d+$/,
      eprt: /^EPRT \|1\|127\.0\.0\.1\|\d+\|$/,
    };
    for (const mode of ["pasv", "epsv", "port", "eprt"]) {
      const r = out[mode] as Json;
      const sent = r.sent as string[];
      // One data setup per transfer (STOR, RETR), all of the mode under test.
      const setups = sent.filter((c) => /^(PASV|EPSV|PORT|EPRT)\b/.test(c));
      assert.equal(setups.length, 2, `${mode}: ${sent.join(" | ")}`);
      for (const c of setups) assert.match(c, expectCommand[mode], mode);
      assert.equal(r.stor, `226 Transfer complete (${payload.length} bytes).`, mode);
      assert.match(r.retr as string, /^226 /, mode);
      assert.equal(sha256(readFileSync(join(home, `ftplib-${mode}.bin`))), sha256(payload), `${mode}: stored`);
      assert.equal(r.sha, sha256(payload), `${mode}: retrieved`);
      assert.equal(r.size, payload.length, `${mode}: SIZE`);
    }
  });

  test("TYPE A: CRLF on the wire is stored as LF, an LF file is sent as CRLF lines", async () => {
    const lfText = "first\nsecond line\n\nlast\n";
    writeFileSync(join(home, "server-lf.txt"), lfText);
    // ~1.5 MB of short lines with LF, CRLF and lone CR mixed, and a CRLF straddling every multiple
    // of 64 KiB: whatever the chunking (socket reads, 256 KiB file reads), some chunk boundary falls
    // inside a CRLF, which the converters must carry across.
    const mixed = asciiMix(1_500_000);
    const mixedUpFile = join(local, "mixed-up.txt");
    const mixedDownFile = join(local, "mixed-down.txt");
    writeFileSync(mixedUpFile, mixed);
    writeFileSync(join(home, "mixed-down.txt"), mixed);
    const out = await python("ascii", { lf_text: lfText, crlf_text: "one\r\ntwo\r\nlone\rcr\r\n", mixed_up: mixedUpFile, mixed_down: mixedDownFile });

    // storlines put CRLF on the wire; the server stored LF.
    assert.equal(readFileSync(join(home, "lines.txt"), "utf8"), lfText);
    // A raw CRLF upload: CRLF becomes LF, a CR not followed by LF is data and stays.
    assert.equal(readFileSync(join(home, "raw-crlf.txt"), "utf8"), "one\ntwo\nlone\rcr\n");
    // Upload: every CRLF became LF, everything else (lone CR, lone LF) is data and stayed.
    const mixedText = mixed.toString("latin1");
    const storedMixed = readFileSync(join(home, "mixed-up.txt"));
    assert.equal(storedMixed.length, Buffer.byteLength(mixedText.replace(/\r\n/g, "\n"), "latin1"));
    assert.equal(sha256(storedMixed), sha256(Buffer.from(mixedText.replace(/\r\n/g, "\n"), "latin1")));

    // retrlines of the LF file yields its lines; the raw wire bytes are CRLF in TYPE A, LF in TYPE I.
    assert.deepEqual(out.retrlines, ["first", "second line", "", "last"]);
    assert.equal(Buffer.from(out.wire_A as string, "hex").toString("utf8"), lfText.replace(/\n/g, "\r\n"));
    assert.equal(Buffer.from(out.wire_I as string, "hex").toString("utf8"), lfText);
    // Download: every LF not already preceded by CR went out as CRLF.
    const wireMixed = readFileSync(mixedDownFile);
    const expectedWire = Buffer.from(mixedText.replace(/(?<!\r)\n/g, "\r\n"), "latin1");
    assert.equal(wireMixed.length, expectedWire.length);
    assert.equal(sha256(wireMixed), sha256(expectedWire));
  });

  test("mlsd facts, nlst, size and MDTM/MFMT report what is on disk", async () => {
    const dir = join(home, "facts");
    mkdirSync(join(dir, "sub"), { recursive: true });
    writeFileSync(join(dir, "data.bin"), randomBytes(1234));
    writeFileSync(join(dir, "ms.txt"), "x");
    writeFileSync(join(dir, "café ü.txt"), "utf-8 name");
    const when = new Date("2020-01-02T03:04:05Z");
    utimesSync(join(dir, "data.bin"), when, when);
    utimesSync(join(dir, "café ü.txt"), when, when);
    utimesSync(join(dir, "ms.txt"), when, new Date("2020-01-02T03:04:05.250Z"));
    utimesSync(join(dir, "sub"), when, new Date("2021-06-07T08:09:10Z"));

    const out = await python("facts", { dir: "facts", file: "data.bin", file_ms: "ms.txt" });
    const mlsd = new Map((out.mlsd as Array<[string, Record<string, string>]>).map(([n, f]) => [n, f]));
    assert.deepEqual([...mlsd.keys()].sort(), ["café ü.txt", "data.bin", "ms.txt", "sub"]);
    const data = mlsd.get("data.bin")!;
    assert.equal(data.type, "file");
    assert.equal(data.size, "1234");
    assert.equal(data.modify, "20200102030405");
    assert.match(data.perm, /r/);
    assert.match(data.perm, /w/);
    assert.equal(mlsd.get("café ü.txt")!.size, String(Buffer.byteLength("utf-8 name")));
    assert.equal(mlsd.get("ms.txt")!.modify, "20200102030405.250");
    const sub = mlsd.get("sub")!;
    assert.equal(sub.type, "dir");
    assert.equal(sub.modify, "20210607080910");
    assert.equal(sub.size, undefined);
    assert.match(sub.perm, /e/);
    assert.match(sub.perm, /l/);
    // OPTS MLST type;size; restricts the facts...
    const selected = new Map((out.mlsd_selected as Array<[string, Record<string, string>]>).map(([n, f]) => [n, f]));
    assert.deepEqual(selected.get("data.bin"), { type: "file", size: "1234" });
    assert.deepEqual(selected.get("sub"), { type: "dir" });

    const basename = (p: string) => p.slice(p.lastIndexOf("/") + 1);
    assert.deepEqual((out.nlst_dir as string[]).map(basename).sort(), ["café ü.txt", "data.bin", "ms.txt", "sub"]);
    assert.deepEqual((out.nlst_cwd as string[]).slice().sort(), ["café ü.txt", "data.bin", "ms.txt", "sub"]);
    assert.equal(out.size, 1234);
    assert.equal(out.mdtm, "213 20200102030405");
    assert.equal(out.mdtm_ms, "213 20200102030405.250");
    assert.match(out.mfmt as string, /^213 Modify=20190807060504; /);
    assert.equal(out.mdtm_after_mfmt, "213 20190807060504");
    assert.equal(statSync(join(dir, "ms.txt")).mtime.toISOString(), new Date("2019-08-07T06:05:04Z").toISOString());
    assert.match(out.size_dir as string, /^error_perm 550 /);
    assert.match(out.mlsd_file as string, /^error_perm 501 /);
  });

  for (const pasv of [true, false]) {
    test(`rest= resumes retrbinary (REST+RETR) and storbinary (REST+STOR) in ${pasv ? "passive" : "active"} mode`, async () => {
      const payload = randomBytes(2 * 1024 * 1024 + 5);
      const offset = 777_777;
      const payloadFile = join(local, `resume-${pasv}.bin`);
      writeFileSync(payloadFile, payload);
      writeFileSync(join(home, "whole.bin"), payload);
      writeFileSync(join(home, "prefix.bin"), payload.subarray(0, offset));
      const out = await python("resume", { payload: payloadFile, offset, pasv });

      assert.equal(out.retr_rest_len, payload.length - offset);
      assert.equal(out.retr_rest_sha, sha256(payload.subarray(offset)));
      assert.equal(out.stor_rest, `226 Transfer complete (${payload.length - offset} bytes).`);
      const stored = readFileSync(join(home, "prefix.bin"));
      assert.equal(stored.length, payload.length);
      assert.equal(sha256(stored), sha256(payload));
      // STOR 10 bytes, REST 4 + STOR "XY", then a plain STOR: REST did not leak into the third transfer.
      assert.equal(readFileSync(join(home, "once.bin"), "utf8"), "fresh");
      assert.match(out.appe_rest as string, /^226 /);
      assert.equal(readFileSync(join(home, "appended.bin"), "utf8"), "head-tail");
      assert.equal(out.stor_after_appe, "ok");
      assert.equal(readFileSync(join(home, "after-appe.bin"), "utf8"), "new file");
      const sent = out.sent as string[];
      assert.ok(sent.includes(`REST ${offset}`), sent.join(" | "));
      assert.ok(sent.includes("REST 4"), sent.join(" | "));
      assert.ok(sent.some((c) => (pasv ? /^PASV$/ : /^PORT /).test(c)), sent.join(" | "));
    });
  }

  test("mkd, cwd, pwd, rename, delete, rmd; cwd('..') clamps at the root; errors carry their codes", async () => {
    mkdirSync(join(home, "keep"), { recursive: true });
    writeFileSync(join(home, "keep", "file.txt"), "stays");
    const out = await python("manage");

    assert.equal(out.pwd0, "/");
    assert.equal(out.mkd, "/made");
    assert.equal(out.mkd_nested, "/made/inner");
    assert.equal(out.pwd1, "/made/inner");
    assert.equal(out.pwd2, "/made");
    assert.equal(out.pwd3, "/");
    assert.equal(out.pwd4, "/");
    assert.match(out.cwd_up_many as string, /^250 /);
    assert.equal(out.pwd5, "/");
    assert.match(out.rename as string, /^250 /);
    assert.equal(out.renamed_size, "rename me".length);
    assert.match(out.old_name as string, /^error_perm 550 /);
    assert.match(out.delete as string, /^250 /);
    assert.match(out.deleted as string, /^error_perm 550 /);
    assert.match(out.rmd_nonempty as string, /^error_perm 550 /);
    assert.match(out.rmd_inner as string, /^250 /);
    assert.match(out.rmd as string, /^250 /);
    assert.equal(existsSync(join(home, "made")), false);

    const e = out.errors as Record<string, string>;
    assert.match(e.retr_missing, /^error_perm 550 /);
    assert.match(e.size_missing, /^error_perm 550 /);
    assert.match(e.dele_missing, /^error_perm 550 /);
    assert.match(e.cwd_missing, /^error_perm 550 /);
    assert.match(e.rmd_missing, /^error_perm 550 /);
    assert.match(e.mkd_existing, /^error_perm 550 /);
    assert.match(e.rnfr_missing, /^error_perm 550 /);
    assert.match(e.rnto_alone, /^error_perm 503 /);
    // RNTO must follow RNFR immediately: a NOOP in between cancels the pending rename.
    assert.match(e.rnto_after_other, /^error_perm 503 /);
    assert.equal(readFileSync(join(home, "keep", "file.txt"), "utf8"), "stays");
    assert.equal(existsSync(join(home, "keep", "other.txt")), false);
    assert.match(e.unknown, /^error_perm 500 /);
    assert.match(e.wrong_password, /^error_perm 530 /);
    assert.match(e.after_failed_login, /^error_perm 530 /);
    // Nothing was left behind by the failed calls.
    assert.equal(existsSync(join(home, "no-such-file.bin")), false);
    assert.equal(existsSync(join(home, "anything.txt")), false);
  });

  test("abort() sends ABOR as urgent data during a download: 426, then 226, and the session goes on", async () => {
    const big = join(home, "abort-me.bin");
    writeFileSync(big, "");
    truncateSync(big, 256 * 1024 * 1024);
    const out = await python("abort", { name: "abort-me.bin" });
    assert.ok((out.received_before as number) > 0);
    assert.match(out.abort as string, /^426 /);
    assert.match(out.after_abort as string, /^226 /);
    assert.match(out.noop as string, /^200 /);
  });
});
