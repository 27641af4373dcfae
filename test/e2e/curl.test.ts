/**
 * The real curl binary against a real node: transfers in every data-connection mode (EPSV, PASV,
 * PORT, EPRT), listings, resume in both directions, APPE, --ftp-create-dirs, -Q quote commands,
 * TYPE A line-end conversion and curl's exit codes for server refusals.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { sha256 } from "../helpers/hash.js";
import { checkLeaks } from "../helpers/leaks.js";
import { childEnv, curlCommands, curlReplies, run, show, type RunResult } from "../helpers/run-client.js";
import { PASSWORD, startServer, USER, type TestServer } from "../helpers/server.js";

/**
 * The bytes of one kind of section of a `curl --trace` file, as on the wire: "Send data" / "Recv data"
 * (data connection), "Send header" / "Recv header" (FTP commands / replies).
 */
function traceBytes(trace: string, kind: "Send data" | "Recv data" | "Send header" | "Recv header"): Buffer {
  const out: number[] = [];
  let inside = false;
  for (const line of trace.split("\n")) {
    if (/^(=>|<=|==) /.test(line)) {
      inside = line.startsWith(`${kind.startsWith("Send") ? "=>" : "<="} ${kind},`);
      continue;
    }
    if (!inside) continue;
    // `0000: 61 0d 0a ...  a..`: an offset, then a fixed 48-column hex field (16 bytes), then text.
    const m = /^[0-9a-f]{4,}: /.exec(line);
    if (!m) continue;
    const hex = line.slice(m[0].length, m[0].length + 48).trim();
    for (const pair of hex.split(/ +/)) if (/^[0-9a-f]{2}$/.test(pair)) out.push(parseInt(pair, 16));
  }
  return Buffer.from(out);
}

describe("curl client", () => {
  let server: TestServer;
  let local: string;
  let home: string;
  let env: NodeJS.ProcessEnv;
  let payload: Buffer;
  let payloadFile: string;

  before(async () => {
    server = await startServer();
    home = server.home(USER);
    mkdirSync(home, { recursive: true });
    local = mkdtempSync(join(tmpdir(), "edgeftp-curl-"));
    env = childEnv(local);
    payload = randomBytes(4 * 1024 * 1024 + 123);
    payloadFile = join(local, "payload.bin");
    writeFileSync(payloadFile, payload);
  });
  after(async () => {
    await server.close();
    rmSync(local, { recursive: true, force: true });
  });
  checkLeaks();

  const url = (path: string, password = PASSWORD) => `ftp://${USER}:${password}@127.0.0.1:${server.port}/${path}`;
  /** curl with no config file, errors shown, verbose protocol log, bounded run time. */
  const curl = (...args: string[]) => run("curl", ["-q", "-sS", "-v", "--noproxy", "*", "--max-time", "15", ...args], env, 20_000);

  // `other`: data-setup commands that must not appear (curl falls back, e.g. EPRT → PORT, when one is refused).
  const modes: Array<{ name: string; args: string[]; command: RegExp; reply: RegExp; other: RegExp }> = [
    { name: "EPSV (default)", args: [], command: /^EPSV$/, reply: /^229 .*\(\|\|\|\d+\|\)/, other: /^(PASV|PORT|EPRT)\b/ },
    { name: "PASV (--disable-epsv)", args: ["--disable-epsv"], command: /^PASV$/, reply: /^227 .*\(127,0,0,1,\d+,\d+\)/, other: /^(EPSV|PORT|EPRT)\b/ },
    { name: "active PORT (-P --disable-eprt)", args: ["-P", "127.0.0.1", "--disable-eprt"], command: /^PORT 127,0,0,1,\d+,\d+$/, reply: /^200 PORT command successful/, other: /^(EPSV|PASV|EPRT)\b/ },
    { name: "active EPRT (-P)", args: ["-P", "127.0.0.1"], command: /^EPRT \|1\|127\.0\.0\.1\|\d+\|$/, reply: /^200 EPRT command successful/, other: /^(EPSV|PASV|PORT)\b/ },
  ];

  for (const [i, mode] of modes.entries()) {
    test(`uploads and downloads 4 MiB over ${mode.name} with matching sha256`, async () => {
      const remote = `mode-${i}.bin`;
      const up = await curl(...mode.args, "-T", payloadFile, url(remote));
      assert.equal(up.code, 0, show(up));
      const upCommands = curlCommands(up.stderr);
      assert.ok(upCommands.some((c) => mode.command.test(c)), `expected ${mode.command} in ${upCommands.join(" | ")}`);
      assert.ok(curlReplies(up.stderr).some((r) => mode.reply.test(r)), show(up));
      assert.deepEqual(upCommands.filter((c) => mode.other.test(c)), []);
      assert.ok(upCommands.includes(`STOR ${remote}`), upCommands.join(" | "));
      assert.match(up.stderr, new RegExp(`< 226 Transfer complete \\(${payload.length} bytes\\)`));
      const stored = readFileSync(join(home, remote));
      assert.equal(stored.length, payload.length);
      assert.equal(sha256(stored), sha256(payload));

      const target = join(local, `down-${i}.bin`);
      const down = await curl(...mode.args, url(remote), "-o", target);
      assert.equal(down.code, 0, show(down));
      const downCommands = curlCommands(down.stderr);
      assert.ok(downCommands.some((c) => mode.command.test(c)), downCommands.join(" | "));
      assert.deepEqual(downCommands.filter((c) => mode.other.test(c)), []);
      assert.ok(downCommands.includes(`RETR ${remote}`), downCommands.join(" | "));
      const got = readFileSync(target);
      assert.equal(got.length, payload.length);
      assert.equal(sha256(got), sha256(payload));
    });
  }

  /** Runs curl with --trace (which replaces -v): the FTP commands sent and the data-connection bytes received. */
  async function traced(name: string, ...args: string[]): Promise<{ result: RunResult; commands: string[]; replies: string[]; data: Buffer }> {
    const traceFile = join(local, `${name}.trace`);
    const result = await curl("--trace", traceFile, ...args);
    const trace = existsSync(traceFile) ? readFileSync(traceFile, "utf8") : "";
    return {
      result,
      commands: traceBytes(trace, "Send header").toString("utf8").split("\r\n").filter(Boolean),
      replies: traceBytes(trace, "Recv header").toString("utf8").split("\r\n").filter(Boolean),
      data: traceBytes(trace, "Recv data"),
    };
  }

  test("UTF-8 and spaces in names, with --ftp-method nocwd and singlecwd", async () => {
    mkdirSync(join(home, "ünï dir"), { recursive: true });
    const src = join(local, "utf8-src.txt");
    writeFileSync(src, "naïve content\n");
    const remote = "%C3%BCn%C3%AF%20dir/caf%C3%A9%20%C3%BC.txt"; // "ünï dir/café ü.txt"
    const up = await curl("--ftp-method", "nocwd", "-T", src, url(remote));
    assert.equal(up.code, 0, show(up));
    assert.ok(curlCommands(up.stderr).includes("STOR ünï dir/café ü.txt"), up.stderr);
    assert.equal(readFileSync(join(home, "ünï dir", "café ü.txt"), "utf8"), "naïve content\n");

    const target = join(local, "utf8-down.txt");
    const down = await curl("--ftp-method", "singlecwd", url(remote), "-o", target);
    assert.equal(down.code, 0, show(down));
    const commands = curlCommands(down.stderr);
    assert.ok(commands.includes("CWD ünï dir"), commands.join(" | "));
    assert.ok(commands.includes("RETR café ü.txt"), commands.join(" | "));
    assert.equal(readFileSync(target, "utf8"), "naïve content\n");
  });

  test("lists a directory (LIST) in ls -l form and names only with --list-only (NLST)", async () => {
    mkdirSync(join(home, "listing", "subdir"), { recursive: true });
    writeFileSync(join(home, "listing", "five.txt"), "12345");
    writeFileSync(join(home, "listing", "empty.dat"), "");

    const list = await traced("list", url("listing/"));
    assert.equal(list.result.code, 0, show(list.result));
    assert.ok(list.commands.includes("LIST"), list.commands.join(" | "));
    // On the wire every line ends in CRLF (the listing is ASCII); curl hands it out with LF line ends.
    const wire = list.data.toString("utf8");
    assert.match(wire, /^(?:[^\r\n]+\r\n)+$/, JSON.stringify(wire));
    assert.equal(list.result.stdout, wire.replace(/\r\n/g, "\n"));
    const lines = wire.split("\r\n").filter(Boolean);
    assert.equal(lines.length, 3, wire);
    const date = String.raw`[A-Z][a-z]{2} [ \d]\d (?:\d\d:\d\d| \d{4})`;
    const line = (name: string) => lines.find((l) => l.endsWith(` ${name}`));
    assert.match(line("five.txt") ?? "", new RegExp(String.raw`^-rw\S{7} +\d+ \S+ +\S+ +5 ${date} five\.txt$`));
    assert.match(line("empty.dat") ?? "", new RegExp(String.raw`^-\S{9} +\d+ \S+ +\S+ +0 ${date} empty\.dat$`));
    assert.match(line("subdir") ?? "", new RegExp(String.raw`^d\S{9} +\d+ \S+ +\S+ +\d+ ${date} subdir$`));

    // A name with a line break must not split NLST's lines (LIST and MLSD replace it too).
    writeFileSync(join(home, "listing", "line\nbreak.txt"), "");
    const names = await traced("nlst", "--list-only", url("listing/"));
    assert.equal(names.result.code, 0, show(names.result));
    assert.ok(names.commands.includes("NLST"), names.commands.join(" | "));
    const nameWire = names.data.toString("utf8");
    assert.match(nameWire, /^(?:[^\r\n]+\r\n)+$/, JSON.stringify(nameWire));
    assert.deepEqual(nameWire.split("\r\n").filter(Boolean).sort(), ["empty.dat", "five.txt", "line?break.txt", "subdir"]);
    assert.deepEqual(names.result.stdout.split("\n").filter(Boolean).sort(), ["empty.dat", "five.txt", "line?break.txt", "subdir"]);
  });

  test("resumes a download with -C - (SIZE, REST, RETR)", async () => {
    writeFileSync(join(home, "resume-down.bin"), payload);
    const part = join(local, "resume-down.part");
    const offset = 1_500_000;
    writeFileSync(part, payload.subarray(0, offset));
    const r = await curl("-C", "-", url("resume-down.bin"), "-o", part);
    assert.equal(r.code, 0, show(r));
    const commands = curlCommands(r.stderr);
    assert.ok(commands.includes(`REST ${offset}`), commands.join(" | "));
    assert.ok(curlReplies(r.stderr).some((l) => l.startsWith("350 ")), r.stderr);
    assert.ok(commands.includes("RETR resume-down.bin"), commands.join(" | "));
    const got = readFileSync(part);
    // A server that ignored REST would have sent the whole file: the result would be too long.
    assert.equal(got.length, payload.length);
    assert.equal(sha256(got), sha256(payload));
  });

  test("resumes an upload with -C - -T (curl asks SIZE, then APPEs the rest)", async () => {
    const offset = 1_000_000;
    writeFileSync(join(home, "resume-up.bin"), payload.subarray(0, offset));
    const r = await curl("-C", "-", "-T", payloadFile, url("resume-up.bin"));
    assert.equal(r.code, 0, show(r));
    const commands = curlCommands(r.stderr);
    assert.ok(commands.includes("SIZE resume-up.bin"), commands.join(" | "));
    assert.ok(curlReplies(r.stderr).includes(`213 ${offset}`), r.stderr);
    assert.ok(commands.includes("APPE resume-up.bin"), commands.join(" | "));
    // 226 reports the bytes written by this transfer: only the missing tail.
    assert.match(r.stderr, new RegExp(`< 226 Transfer complete \\(${payload.length - offset} bytes\\)`));
    const stored = readFileSync(join(home, "resume-up.bin"));
    assert.equal(stored.length, payload.length);
    assert.equal(sha256(stored), sha256(payload));
  });

  test("--append appends to an existing file (APPE) and creates a missing one", async () => {
    writeFileSync(join(home, "log.txt"), "first line\n");
    const more = join(local, "more.txt");
    writeFileSync(more, "second line\n");
    const r = await curl("--append", "-T", more, url("log.txt"));
    assert.equal(r.code, 0, show(r));
    assert.ok(curlCommands(r.stderr).includes("APPE log.txt"), r.stderr);
    assert.equal(readFileSync(join(home, "log.txt"), "utf8"), "first line\nsecond line\n");

    const fresh = await curl("--append", "-T", more, url("fresh-append.txt"));
    assert.equal(fresh.code, 0, show(fresh));
    assert.equal(readFileSync(join(home, "fresh-append.txt"), "utf8"), "second line\n");
  });

  test("--ftp-create-dirs makes the missing directories (MKD); without it the upload is refused", async () => {
    const small = join(local, "small.txt");
    writeFileSync(small, "deep content\n");
    const refused = await curl("-T", small, url("made/by/curl/f.txt"));
    assert.equal(refused.code, 9, show(refused)); // CURLE_REMOTE_ACCESS_DENIED: CWD failed
    assert.ok(curlReplies(refused.stderr).some((l) => l.startsWith("550 ")), refused.stderr);
    assert.equal(existsSync(join(home, "made")), false);

    const r = await curl("--ftp-create-dirs", "-T", small, url("made/by/curl/f.txt"));
    assert.equal(r.code, 0, show(r));
    const commands = curlCommands(r.stderr);
    for (const dir of ["made", "by", "curl"]) assert.ok(commands.includes(`MKD ${dir}`), commands.join(" | "));
    assert.ok(curlReplies(r.stderr).includes(`257 "/made/by/curl" created.`), r.stderr);
    assert.equal(readFileSync(join(home, "made", "by", "curl", "f.txt"), "utf8"), "deep content\n");
  });

  test("-Q quote commands delete (DELE) and rename (RNFR/RNTO); a failing one exits 21", async () => {
    writeFileSync(join(home, "doomed.txt"), "bye");
    writeFileSync(join(home, "old-name.txt"), "keep me");
    const r = await curl("-Q", "DELE doomed.txt", "-Q", "RNFR old-name.txt", "-Q", "RNTO new-name.txt", url(""), "-o", join(local, "quote-list.txt"));
    assert.equal(r.code, 0, show(r));
    const replies = curlReplies(r.stderr);
    assert.ok(replies.includes("250 File deleted."), r.stderr);
    assert.ok(replies.includes("350 Ready for RNTO."), r.stderr);
    assert.ok(replies.includes("250 Rename successful."), r.stderr);
    assert.equal(existsSync(join(home, "doomed.txt")), false);
    assert.equal(existsSync(join(home, "old-name.txt")), false);
    assert.equal(readFileSync(join(home, "new-name.txt"), "utf8"), "keep me");
    // The listing curl fetched after the quote commands already shows the new state.
    const listing = readFileSync(join(local, "quote-list.txt"), "utf8");
    assert.match(listing, / new-name\.txt\r?\n/);
    assert.doesNotMatch(listing, /doomed\.txt|old-name\.txt/);

    const failing = await curl("-Q", "DELE no-such-file.txt", url(""), "-o", join(local, "quote-list2.txt"));
    assert.equal(failing.code, 21, show(failing)); // CURLE_QUOTE_ERROR
    assert.ok(curlReplies(failing.stderr).some((l) => l.startsWith("550 ")), failing.stderr);
  });

  test("--use-ascii (TYPE A): CRLF on the wire, LF on disk, in both directions", async () => {
    const text = "alpha\nbeta\n\ngamma\n";
    const lfFile = join(local, "lf.txt");
    writeFileSync(lfFile, text);
    const upTrace = join(local, "up.trace");
    const up = await curl("--use-ascii", "--trace", upTrace, "-T", lfFile, url("ascii-up.txt"));
    assert.equal(up.code, 0, show(up));
    // curl turns LF into CRLF when sending in ASCII mode: the wire carries the network form...
    assert.equal(traceBytes(readFileSync(upTrace, "utf8"), "Send data").toString("latin1"), text.replace(/\n/g, "\r\n"));
    // ...and the server stores the local (LF) form.
    assert.equal(readFileSync(join(home, "ascii-up.txt"), "latin1"), text);

    writeFileSync(join(home, "ascii-down.txt"), text);
    const downTrace = join(local, "down.trace");
    const target = join(local, "ascii-down.txt");
    const down = await curl("--use-ascii", "--trace", downTrace, url("ascii-down.txt"), "-o", target);
    assert.equal(down.code, 0, show(down));
    // The server sends CRLF...
    assert.equal(traceBytes(readFileSync(downTrace, "utf8"), "Recv data").toString("latin1"), text.replace(/\n/g, "\r\n"));
    // ...and curl converts it back to LF on this platform, so its output file cannot show the wire form.
    assert.equal(readFileSync(target, "latin1"), text);

    // Independent check of the wire bytes with Python's ftplib (raw data socket, no conversion):
    // TYPE A sends CRLF, TYPE I sends the stored bytes unchanged.
    const script = [
      "import ftplib, json, sys",
      "f = ftplib.FTP()",
      "f.connect('127.0.0.1', int(sys.argv[1]), timeout=10)",
      "f.login(sys.argv[2], sys.argv[3])",
      "out = {}",
      "for t in ('A', 'I'):",
      "    f.voidcmd('TYPE ' + t)",
      "    conn = f.transfercmd('RETR ascii-down.txt')",
      "    data = b''",
      "    for _ in range(10000):",
      "        chunk = conn.recv(65536)",
      "        if not chunk: break",
      "        data += chunk",
      "    conn.close()",
      "    f.voidresp()",
      "    out[t] = data.hex()",
      "f.quit()",
      "print(json.dumps(out))",
    ].join("\n");
    const py = await run("python3", ["-c", script, String(server.port), USER, PASSWORD], env, 20_000);
    assert.equal(py.code, 0, show(py));
    const wire = JSON.parse(py.stdout) as { A: string; I: string };
    assert.equal(Buffer.from(wire.A, "hex").toString("latin1"), text.replace(/\n/g, "\r\n"));
    assert.equal(Buffer.from(wire.I, "hex").toString("latin1"), text);
  });

  test("refusals map to curl's exit codes: wrong password 67, missing file 78, missing directory 9", async () => {
    const wrong = await curl(url("", "not-the-password"));
    assert.equal(wrong.code, 67, show(wrong)); // CURLE_LOGIN_DENIED
    assert.ok(curlReplies(wrong.stderr).some((l) => l.startsWith("530 ")), wrong.stderr);

    const missing = await curl(url("no-such-file.bin"), "-o", join(local, "never.bin"));
    assert.equal(missing.code, 78, show(missing)); // CURLE_REMOTE_FILE_NOT_FOUND
    assert.ok(curlReplies(missing.stderr).some((l) => /^550 /.test(l)), missing.stderr);

    const missingDir = await curl(url("no-such-dir/"));
    assert.equal(missingDir.code, 9, show(missingDir));
  });
});
