/**
 * The control protocol, verb by verb, through a bare client: success codes and the RFC 959 / 2389 /
 * 2428 / 3659 misuse codes, data-channel setup and its protections, transfers checked byte for byte.
 */
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { join } from "node:path";
import { checkLeaks } from "../helpers/leaks.js";
import { connectData, drainToClose, expectCode, RawClient, readAll, type FtpReply } from "../helpers/raw-client.js";
import { PASSWORD, startServer, USER, type TestServer } from "../helpers/server.js";
import { TestConnections } from "../helpers/test-connections.js";
import { within } from "../helpers/wait.js";

const RO = { name: "ro", password: "x", permissions: ["list", "read"] as ("list" | "read")[] };

describe("FTP protocol (raw client)", () => {
  let server: TestServer;
  let home = "";
  let roHome = "";
  const connections = new TestConnections();
  const listeners: Server[] = [];

  before(async () => {
    server = await startServer({}, [RO]);
    home = server.home(USER);
    roHome = server.home(RO.name);
    mkdirSync(home, { recursive: true });
    mkdirSync(roHome, { recursive: true });
  });
  after(async () => {
    await server.close();
  });
  checkLeaks();

  async function cleanup(): Promise<void> {
    // The server's side of each session closes right after ours. Listeners last: a listener's
    // close waits for the connections it accepted, which closeAll destroys.
    await connections.closeAll(server);
    for (const l of listeners.splice(0)) await new Promise((r) => l.close(r));
  }
  /** Runs a test body and always closes what it opened, before the leak check looks. */
  async function clean(body: () => Promise<void>): Promise<void> {
    try {
      await body();
    } finally {
      await cleanup();
    }
  }
  const track = <T extends Socket>(s: T): T => connections.track(s);
  const open = (localAddress?: string): Promise<RawClient> => connections.open(server.port, localAddress);
  async function loggedIn(user = USER, password = PASSWORD): Promise<RawClient> {
    const c = await open();
    await c.login(user, password);
    return c;
  }
  async function binary(c: RawClient): Promise<void> {
    expectCode(await c.command("TYPE I"), 200, "TYPE I");
  }

  /** EPSV, connect, send `command`, read the data to its end; the final reply too. */
  async function download(c: RawClient, command: string): Promise<{ start: FtpReply; data: Buffer; end: FtpReply | null }> {
    const data = track(await c.passive());
    const start = await c.command(command);
    if (start.code !== 150) {
      data.destroy();
      return { start, data: Buffer.alloc(0), end: null };
    }
    const [bytes, end] = await Promise.all([readAll(data), c.reply(10_000)]);
    return { start, data: bytes, end };
  }

  /** EPSV, connect, send `command`, write `bytes` and close; the final reply too. */
  async function upload(c: RawClient, command: string, bytes: Buffer): Promise<{ start: FtpReply; end: FtpReply | null }> {
    const data = track(await c.passive());
    const start = await c.command(command);
    if (start.code !== 150) {
      data.destroy();
      return { start, end: null };
    }
    data.end(bytes);
    const end = await c.reply(10_000);
    return { start, end };
  }

  /** A listener for active mode on `host`; records every connection it gets. */
  async function activeListener(host: string): Promise<{ port: number; accepted: Socket[]; server: Server }> {
    const accepted: Socket[] = [];
    const l = createServer((s) => {
      accepted.push(track(s));
    });
    listeners.push(l);
    await new Promise<void>((resolve, reject) => {
      l.once("error", reject);
      l.listen({ host, port: 0 }, () => resolve());
    });
    const address = l.address();
    assert.ok(address && typeof address === "object");
    return { port: address.port, accepted, server: l };
  }

  // ---------------------------------------------------------------------------------------------
  // Login and the commands allowed before it
  // ---------------------------------------------------------------------------------------------

  test("an unknown verb is 500, before and after login; an empty line too", () =>
    clean(async () => {
      const c = await open();
      expectCode(await c.command("XYZZY"), 500, "XYZZY before login");
      expectCode(await c.command(""), 500, "empty line");
      await c.login(USER, PASSWORD);
      expectCode(await c.command("XYZZY plugh"), 500, "XYZZY after login");
      expectCode(await c.command("SITE"), 501, "SITE needs an argument");
      expectCode(await c.command("NOOP"), 200, "still usable");
    }));

  test("commands that need a login are refused with 530 before it", () =>
    clean(async () => {
      const c = await open();
      for (const line of [
        "LIST",
        "NLST",
        "MLSD",
        "MLST /",
        "RETR a.txt",
        "STOR a.txt",
        "APPE a.txt",
        "STOU",
        "CWD /",
        "XCWD /",
        "CDUP",
        "PWD",
        "XPWD",
        "MKD d",
        "RMD d",
        "DELE a.txt",
        "RNFR a.txt",
        "RNTO b.txt",
        "SIZE a.txt",
        "MDTM a.txt",
        "MFMT 20200101000000 a.txt",
        "PASV",
        "EPSV",
        "PORT 127,0,0,1,4,1",
        "EPRT |1|127.0.0.1|1025|",
        "TYPE I",
        "MODE S",
        "STRU F",
        "REST 0",
        "ALLO 10",
        "ABOR",
        "SITE HELP",
        "STAT /",
      ]) {
        expectCode(await c.command(line), 530, line);
      }
      // Nothing was reserved for the refused PASV/EPSV.
      assert.equal(server.node.portPool.stats().pendingReservations, 0);
    }));

  test("USER, PASS, QUIT, FEAT, SYST, HELP, NOOP, OPTS, HOST, LANG, STAT, ACCT work before login", () =>
    clean(async () => {
      const c = await open();
      const feat = await c.command("FEAT");
      expectCode(feat, 211, "FEAT");
      assert.ok(feat.lines.includes(" LANG EN*"), feat.lines.join("\n"));
      // RFC 2640 §4: English is all there is; no tag means the default.
      expectCode(await c.command("LANG"), 200, "LANG");
      expectCode(await c.command("LANG en-US"), 200, "LANG en-US");
      expectCode(await c.command("LANG fr"), 504, "LANG fr");
      const syst = await c.command("SYST");
      expectCode(syst, 215, "SYST");
      assert.match(syst.text, /^UNIX Type: L8/);
      expectCode(await c.command("HELP"), 214, "HELP");
      expectCode(await c.command("NOOP"), 200, "NOOP");
      expectCode(await c.command("OPTS UTF8 ON"), 200, "OPTS UTF8 ON");
      expectCode(await c.command("HOST localhost"), 220, "HOST");
      const stat = await c.command("STAT");
      expectCode(stat, 211, "STAT");
      assert.ok(stat.lines.some((l) => /Not logged in/.test(l)), stat.lines.join("\n"));
      expectCode(await c.command("ACCT whatever"), 202, "ACCT");
      expectCode(await c.command(`USER ${USER}`), 331, "USER");
      expectCode(await c.command("HOST localhost"), 503, "HOST after USER");
      expectCode(await c.command(`PASS ${PASSWORD}`), 230, "PASS");
      const after = await c.command("STAT");
      assert.ok(after.lines.some((l) => l.includes(`Logged in as ${USER}`)), after.lines.join("\n"));
      expectCode(await c.command("QUIT"), 221, "QUIT");
      await c.closed();
    }));

  test("PASS without USER is 503; a wrong password is 530 and USER must come again", () =>
    clean(async () => {
      const c = await open();
      expectCode(await c.command(`PASS ${PASSWORD}`), 503, "PASS without USER");
      expectCode(await c.command(`USER ${USER}`), 331, "USER");
      expectCode(await c.command("PASS not-the-password"), 530, "wrong password");
      expectCode(await c.command("LIST"), 530, "still logged out");
      expectCode(await c.command(`PASS ${PASSWORD}`), 503, "PASS again without a new USER");
      expectCode(await c.command("USER nobody-here"), 331, "unknown user is asked for a password too");
      expectCode(await c.command("PASS whatever"), 530, "unknown user");
      expectCode(await c.command("USER"), 501, "USER without a name");
      await c.login(USER, PASSWORD);
      expectCode(await c.command("PWD"), 257, "logged in");
    }));

  test("USER while logged in is 530; PASS while logged in is 503", () =>
    clean(async () => {
      const c = await loggedIn();
      expectCode(await c.command(`USER ${RO.name}`), 530, "USER while logged in");
      expectCode(await c.command(`PASS ${PASSWORD}`), 503, "PASS while logged in");
      const stat = await c.command("STAT");
      assert.ok(stat.lines.some((l) => l.includes(`Logged in as ${USER}`)), "still the same user");
    }));

  test("a client that never sends TYPE gets its bytes unchanged both ways (binary by default)", () =>
    clean(async () => {
      const c = await loggedIn();
      const jpeg = Buffer.from([0xff, 0xd8, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x0d, 0x61, 0x0a]);
      const r = await upload(c, "STOR no-type.jpg", jpeg);
      expectCode(r.start, 150, "STOR without TYPE");
      expectCode(r.end!, 226, "STOR done");
      assert.deepEqual(readFileSync(join(home, "no-type.jpg")), jpeg, "stored byte for byte");
      const data = track(await c.passive());
      expectCode(await c.command("RETR no-type.jpg"), 150, "RETR without TYPE");
      assert.deepEqual(await readAll(data), jpeg, "sent byte for byte");
      expectCode(await c.reply(10_000), 226, "RETR done");
    }));

  test("REIN logs out and keeps the connection; a new login works", () =>
    clean(async () => {
      const c = await loggedIn();
      // Away from the default, so that the check below sees REIN put it back.
      expectCode(await c.command("TYPE A"), 200, "TYPE A");
      expectCode(await c.command("REIN"), 220, "REIN");
      expectCode(await c.command("LIST"), 530, "LIST after REIN");
      expectCode(await c.command("PWD"), 530, "PWD after REIN");
      await c.login(RO.name, RO.password);
      const stat = await c.command("STAT");
      assert.ok(stat.lines.some((l) => l.includes(`Logged in as ${RO.name}`)), stat.lines.join("\n"));
      assert.ok(stat.lines.some((l) => l.includes("TYPE: BINARY")), "REIN reset TYPE to its default");
    }));

  test("QUIT answers 221 and closes the connection, releasing a pending passive port", () =>
    clean(async () => {
      const c = await loggedIn();
      expectCode(await c.command("PASV"), 227, "PASV");
      assert.equal(server.node.portPool.stats().pendingReservations, 1);
      expectCode(await c.command("QUIT now"), 501, "QUIT takes no argument");
      expectCode(await c.command("QUIT"), 221, "QUIT");
      await c.closed();
      const deadline = Date.now() + 3000;
      while (server.node.portPool.stats().pendingReservations > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      assert.equal(server.node.portPool.stats().pendingReservations, 0);
    }));

  // ---------------------------------------------------------------------------------------------
  // Arguments
  // ---------------------------------------------------------------------------------------------

  test("a missing argument is 501", () =>
    clean(async () => {
      const c = await loggedIn();
      for (const verb of [
        "RETR",
        "STOR",
        "APPE",
        "CWD",
        "XCWD",
        "TYPE",
        "MODE",
        "STRU",
        "DELE",
        "MKD",
        "XMKD",
        "RMD",
        "RNFR",
        "RNTO",
        "SIZE",
        "MDTM",
        "MFMT",
        "PORT",
        "EPRT",
        "REST",
        "SITE",
        "ALLO",
        "OPTS",
        "ACCT",
        "RETR   ",
      ]) {
        expectCode(await c.command(verb), 501, verb);
      }
    }));

  test("an argument to a verb that takes none is 501", () =>
    clean(async () => {
      const c = await loggedIn();
      for (const line of ["NOOP x", "PWD x", "XPWD /", "CDUP x", "PASV x", "SYST x", "FEAT x", "ABOR x", "REIN x"]) {
        expectCode(await c.command(line), 501, line);
      }
      expectCode(await c.command("PWD"), 257, "still logged in after REIN x was refused");
    }));

  test("TYPE A, A N, I and L 8 are 200; E, A T, L 7 are 504", () =>
    clean(async () => {
      const c = await loggedIn();
      for (const line of ["TYPE A", "TYPE I", "TYPE L 8", "TYPE a", "TYPE A N", "type i"]) expectCode(await c.command(line), 200, line);
      for (const line of ["TYPE E", "TYPE A T", "TYPE L 7", "TYPE X", "TYPE I N"]) expectCode(await c.command(line), 504, line);
    }));

  test("MODE S is 200, MODE B/C 504; STRU F is 200, STRU R/P 504", () =>
    clean(async () => {
      const c = await loggedIn();
      expectCode(await c.command("MODE S"), 200, "MODE S");
      expectCode(await c.command("MODE s"), 200, "MODE s");
      expectCode(await c.command("MODE B"), 504, "MODE B");
      expectCode(await c.command("MODE C"), 504, "MODE C");
      expectCode(await c.command("STRU F"), 200, "STRU F");
      expectCode(await c.command("STRU R"), 504, "STRU R");
      expectCode(await c.command("STRU P"), 504, "STRU P");
    }));

  test("ALLO is 200 (cameras treat 202 as a refusal); ACCT is 202 (superfluous)", () =>
    clean(async () => {
      const c = await loggedIn();
      expectCode(await c.command("ALLO 1000"), 200, "ALLO");
      expectCode(await c.command("ALLO 1000 R 10"), 200, "ALLO with record size");
      expectCode(await c.command("ACCT billing"), 202, "ACCT");
    }));

  // ---------------------------------------------------------------------------------------------
  // Files and directories
  // ---------------------------------------------------------------------------------------------

  test("RNFR/RNTO: 350 then 250; RNTO without RNFR 503; RNFR of a missing file 550; the pair must be adjacent", () =>
    clean(async () => {
      const c = await loggedIn();
      writeFileSync(join(home, "ren-a.txt"), "rename me");
      expectCode(await c.command("RNTO ren-b.txt"), 503, "RNTO without RNFR");
      expectCode(await c.command("RNFR no-such-file.txt"), 550, "RNFR missing");
      expectCode(await c.command("RNTO ren-b.txt"), 503, "RNTO after a failed RNFR");
      expectCode(await c.command("RNFR ren-a.txt"), 350, "RNFR");
      expectCode(await c.command("NOOP"), 200, "NOOP in between");
      expectCode(await c.command("RNTO ren-b.txt"), 503, "RNTO after another command");
      assert.ok(existsSync(join(home, "ren-a.txt")));
      expectCode(await c.command("RNFR ren-a.txt"), 350, "RNFR");
      expectCode(await c.command("RNTO ren-b.txt"), 250, "RNTO");
      assert.ok(!existsSync(join(home, "ren-a.txt")));
      assert.equal(readFileSync(join(home, "ren-b.txt"), "utf8"), "rename me");
      expectCode(await c.command("RNFR /"), 550, "RNFR of the root");
    }));

  test("RETR of a missing file and of a directory is 550", () =>
    clean(async () => {
      const c = await loggedIn();
      mkdirSync(join(home, "retr-dir"), { recursive: true });
      expectCode(await c.command("RETR does-not-exist.bin"), 550, "RETR missing (no data channel)");
      const directory = await c.command("RETR retr-dir");
      expectCode(directory, 550, "RETR directory (no data channel)");
      assert.match(directory.text, /retr-dir: Not a plain file\./);
      // With a data channel set up, still 550 and nothing is sent.
      const data = track(await c.passive());
      expectCode(await c.command("RETR does-not-exist.bin"), 550, "RETR missing");
      expectCode(await c.command("RETR retr-dir"), 550, "RETR directory");
      expectCode(await c.command("RETR /"), 550, "RETR of the root");
      data.destroy();
    }));

  test("a transfer command without PASV/EPSV/PORT/EPRT is 425; a data channel serves one transfer", () =>
    clean(async () => {
      const c = await loggedIn();
      await binary(c);
      writeFileSync(join(home, "once.txt"), "once");
      for (const line of ["RETR once.txt", "LIST", "NLST", "MLSD", "STOR no-channel.txt", "APPE no-channel.txt", "STOU"]) {
        expectCode(await c.command(line), 425, line);
      }
      assert.ok(!existsSync(join(home, "no-channel.txt")), "a refused STOR creates nothing");
      const got = await download(c, "RETR once.txt");
      expectCode(got.start, 150, "RETR");
      expectCode(got.end!, 226, "226");
      assert.equal(got.data.toString(), "once");
      expectCode(await c.command("RETR once.txt"), 425, "the channel was used up");
    }));

  test("MKD: 257 with the quoted path, 550 when it exists; quotes in the name are doubled", () =>
    clean(async () => {
      const c = await loggedIn();
      const made = await c.command("MKD mkd-new");
      expectCode(made, 257, "MKD");
      assert.match(made.text, /^"\/mkd-new"/);
      assert.ok(statSync(join(home, "mkd-new")).isDirectory());
      expectCode(await c.command("MKD mkd-new"), 550, "MKD existing");
      writeFileSync(join(home, "mkd-file"), "");
      expectCode(await c.command("MKD mkd-file"), 550, "MKD over a file");
      expectCode(await c.command("MKD no-parent/child"), 550, "MKD with a missing parent");

      const quoted = await c.command('MKD say "hi"');
      expectCode(quoted, 257, "MKD with quotes");
      assert.ok(quoted.text.startsWith('"/say ""hi"""'), quoted.text);
      assert.ok(statSync(join(home, 'say "hi"')).isDirectory());

      const nested = await c.command("XMKD mkd-new/inner");
      expectCode(nested, 257, "XMKD nested");
      assert.ok(nested.text.startsWith('"/mkd-new/inner"'), nested.text);
    }));

  test("RMD: 250 for an empty directory; 550 when not empty, missing, a file or the root", () =>
    clean(async () => {
      const c = await loggedIn();
      mkdirSync(join(home, "rmd-full"), { recursive: true });
      writeFileSync(join(home, "rmd-full", "x"), "x");
      mkdirSync(join(home, "rmd-empty"), { recursive: true });
      writeFileSync(join(home, "rmd-file"), "f");
      expectCode(await c.command("RMD rmd-full"), 550, "RMD non-empty");
      assert.ok(existsSync(join(home, "rmd-full", "x")));
      expectCode(await c.command("RMD rmd-missing"), 550, "RMD missing");
      expectCode(await c.command("RMD rmd-file"), 550, "RMD of a file");
      assert.ok(existsSync(join(home, "rmd-file")));
      expectCode(await c.command("RMD /"), 550, "RMD of the root");
      expectCode(await c.command("RMD rmd-empty"), 250, "RMD empty");
      assert.ok(!existsSync(join(home, "rmd-empty")));
    }));

  test("DELE: 250 for a file; 550 for a directory or a missing file", () =>
    clean(async () => {
      const c = await loggedIn();
      mkdirSync(join(home, "dele-dir"), { recursive: true });
      writeFileSync(join(home, "dele-file"), "bye");
      expectCode(await c.command("DELE dele-dir"), 550, "DELE of a directory");
      assert.ok(statSync(join(home, "dele-dir")).isDirectory());
      expectCode(await c.command("DELE dele-missing"), 550, "DELE missing");
      expectCode(await c.command("DELE dele-file"), 250, "DELE");
      assert.ok(!existsSync(join(home, "dele-file")));
      expectCode(await c.command("DELE dele-file"), 550, "DELE again");
    }));

  test("CWD: 250 into a directory, 550 to a file or a missing path (cwd unchanged); PWD quotes", () =>
    clean(async () => {
      const c = await loggedIn();
      mkdirSync(join(home, "cwd-a", 'q"d'), { recursive: true });
      writeFileSync(join(home, "cwd-a", "file.txt"), "");
      expectCode(await c.command("CWD cwd-a"), 250, "CWD");
      const pwd = await c.command("PWD");
      expectCode(pwd, 257, "PWD");
      assert.match(pwd.text, /^"\/cwd-a" /);
      expectCode(await c.command("CWD file.txt"), 550, "CWD to a file");
      expectCode(await c.command("CWD nowhere"), 550, "CWD missing");
      assert.match((await c.command("PWD")).text, /^"\/cwd-a" /, "cwd unchanged after failures");
      expectCode(await c.command('CWD q"d'), 250, "CWD with a quote");
      const quoted = await c.command("XPWD");
      expectCode(quoted, 257, "XPWD");
      assert.ok(quoted.text.startsWith('"/cwd-a/q""d" '), quoted.text);
      expectCode(await c.command("XCWD /"), 250, "XCWD /");
      assert.match((await c.command("PWD")).text, /^"\/" /);
    }));

  test("CWD ~ and ~/dir lead to the home (the root), as vsftpd, ProFTPD and Pure-FTPd read them", () =>
    clean(async () => {
      const c = await loggedIn();
      mkdirSync(join(home, "tilde-a", "b"), { recursive: true });
      writeFileSync(join(home, "~tilde.txt"), "");
      expectCode(await c.command("CWD /tilde-a/b"), 250, "CWD");
      expectCode(await c.command("CWD ~"), 250, "CWD ~");
      assert.match((await c.command("PWD")).text, /^"\/" /);
      expectCode(await c.command("CWD ~/tilde-a/b"), 250, "CWD ~/dir");
      assert.match((await c.command("PWD")).text, /^"\/tilde-a\/b" /);
      expectCode(await c.command("CWD ~/.."), 250, "CWD ~/.. stays at the root");
      assert.match((await c.command("PWD")).text, /^"\/" /);
      expectCode(await c.command("SIZE ~tilde.txt"), 213, "a name that only starts with ~ is a name");
    }));

  test("CDUP: 200, to the parent; at the root it stays at /", () =>
    clean(async () => {
      const c = await loggedIn();
      mkdirSync(join(home, "up-a", "b"), { recursive: true });
      expectCode(await c.command("CDUP"), 200, "CDUP at root");
      assert.match((await c.command("PWD")).text, /^"\/" /);
      expectCode(await c.command("CWD .."), 250, "CWD .. at root");
      assert.match((await c.command("PWD")).text, /^"\/" /);
      expectCode(await c.command("CWD /up-a/b"), 250, "CWD");
      expectCode(await c.command("CDUP"), 200, "CDUP");
      assert.match((await c.command("PWD")).text, /^"\/up-a" /);
      expectCode(await c.command("XCUP"), 200, "XCUP");
      expectCode(await c.command("XCUP"), 200, "XCUP at root");
      assert.match((await c.command("PWD")).text, /^"\/" /);
    }));

  test("SIZE and MDTM: 213 with the value for a file; 550 for a directory or a missing file", () =>
    clean(async () => {
      const c = await loggedIn();
      const file = join(home, "sized.bin");
      writeFileSync(file, Buffer.alloc(12345, 7));
      mkdirSync(join(home, "sized-dir"), { recursive: true });
      const size = await c.command("SIZE sized.bin");
      expectCode(size, 213, "SIZE");
      assert.equal(size.text, "12345");
      expectCode(await c.command("SIZE sized-dir"), 550, "SIZE dir");
      expectCode(await c.command("SIZE missing.bin"), 550, "SIZE missing");

      const mtime = statSync(file).mtime;
      const mdtm = await c.command("MDTM sized.bin");
      expectCode(mdtm, 213, "MDTM");
      const m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(?:\.(\d{1,3}))?$/.exec(mdtm.text);
      assert.ok(m, `MDTM value ${mdtm.text}`);
      const when = Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6], m[7] ? +m[7].padEnd(3, "0") : 0);
      assert.equal(when, Math.floor(mtime.getTime()), "MDTM is the file's mtime in UTC");
      expectCode(await c.command("MDTM sized-dir"), 550, "MDTM dir");
      expectCode(await c.command("MDTM missing.bin"), 550, "MDTM missing");
    }));

  test("MFMT sets the modification time (checked on disk)", () =>
    clean(async () => {
      const c = await loggedIn();
      const file = join(home, "mfmt.txt");
      writeFileSync(file, "t");
      const r = await c.command("MFMT 20200102030405 mfmt.txt");
      expectCode(r, 213, "MFMT");
      assert.match(r.text, /Modify=20200102030405; \/mfmt\.txt/);
      assert.equal(statSync(file).mtime.getTime(), Date.UTC(2020, 0, 2, 3, 4, 5));
      expectCode(await c.command("MDTM mfmt.txt"), 213, "MDTM");
      assert.equal((await c.command("MDTM mfmt.txt")).text, "20200102030405");
      expectCode(await c.command("MFMT 20201302030405 mfmt.txt"), 501, "MFMT month 13");
      expectCode(await c.command("MFMT 20230230120000 mfmt.txt"), 501, "MFMT February 30");
      expectCode(await c.command("MFMT yesterday mfmt.txt"), 501, "MFMT not a time");
      expectCode(await c.command("MFMT 20200102030405"), 501, "MFMT without a path");
      expectCode(await c.command("MFMT 20200102030405 missing.txt"), 550, "MFMT missing file");
      assert.equal(statSync(file).mtime.getTime(), Date.UTC(2020, 0, 2, 3, 4, 5), "failed MFMTs changed nothing");
      // The older clients' setting form of MDTM, as vsftpd takes it; a file named so is read instead.
      expectCode(await c.command("MDTM 20210304050607 mfmt.txt"), 213, "MDTM setting form");
      assert.equal(statSync(file).mtime.getTime(), Date.UTC(2021, 2, 4, 5, 6, 7));
      writeFileSync(join(home, "20000101000000 odd.txt"), "x");
      assert.match((await c.command("MDTM 20000101000000 odd.txt")).text, /^\d{14}(\.\d+)?$/, "a file named like the setting form is read");
    }));

  test("NLST -l (Windows ftp.exe's ls -l) answers LIST's lines; NLST -a names only", () =>
    clean(async () => {
      const c = await loggedIn();
      mkdirSync(join(home, "nlst-l"), { recursive: true });
      writeFileSync(join(home, "nlst-l", "f.txt"), "12345");
      const long = (await download(c, "NLST -l nlst-l")).data.toString();
      assert.match(long, /^-rw\S+ +\d+ \S+ +\S+ +5 .+ f\.txt\r\n$/, long);
      assert.equal((await download(c, "NLST -a nlst-l")).data.toString(), "nlst-l/f.txt\r\n");
      assert.equal((await download(c, "NLST --all nlst-l")).data.toString(), "nlst-l/f.txt\r\n", "a long option is no -l");
    }));

  test("MLST gives the facts of one entry on the control connection; OPTS MLST selects them", () =>
    clean(async () => {
      const c = await loggedIn();
      mkdirSync(join(home, "mlst-dir"), { recursive: true });
      const file = join(home, "mlst-dir", "f.txt");
      writeFileSync(file, "12345");
      const r = await c.command("MLST mlst-dir/f.txt");
      expectCode(r, 250, "MLST");
      assert.equal(r.lines.length, 3, r.lines.join("\n"));
      assert.ok(r.lines[0].startsWith("250-"));
      const line = r.lines[1];
      assert.ok(line.startsWith(" "), "the fact line starts with one space (RFC 3659 §7.2)");
      const [factText, name] = [line.slice(1, line.indexOf(" ", 1)), line.slice(line.indexOf(" ", 1) + 1)];
      assert.equal(name, "/mlst-dir/f.txt");
      const facts = Object.fromEntries(
        factText
          .split(";")
          .filter(Boolean)
          .map((f) => f.split("=") as [string, string]),
      );
      assert.equal(facts.type, "file");
      assert.equal(facts.size, "5");
      assert.match(facts.modify, /^\d{14}(\.\d{1,3})?$/);
      assert.equal(facts.modify.slice(0, 14), (await c.command("MDTM mlst-dir/f.txt")).text.slice(0, 14));
      assert.ok(facts.perm.includes("r") && facts.perm.includes("w") && facts.perm.includes("d"), facts.perm);
      assert.equal(facts["unix.mode"], "0" + (statSync(file).mode & 0o777).toString(8));

      const dir = await c.command("MLST mlst-dir");
      expectCode(dir, 250, "MLST dir");
      assert.match(dir.lines[1], /^ type=dir;/);
      assert.doesNotMatch(dir.lines[1], /size=/);
      assert.match(dir.lines[1], /perm=[^;]*e[^;]*l/);

      const cwd = await c.command("MLST");
      expectCode(cwd, 250, "MLST without argument");
      assert.match(cwd.lines[1], /^ type=dir;.* \/$/);
      expectCode(await c.command("MLST missing"), 550, "MLST missing");

      const mlstFeat = async () => (await c.command("FEAT")).lines.find((l) => l.startsWith(" MLST "));
      assert.equal(await mlstFeat(), " MLST type*;size*;modify*;perm*;unix.mode*;");
      expectCode(await c.command("OPTS MLST type;size;"), 200, "OPTS MLST");
      const fewer = await c.command("MLST mlst-dir/f.txt");
      assert.equal(fewer.lines[1], " type=file;size=5; /mlst-dir/f.txt");
      // FEAT marks the facts now selected (RFC 3659 §7.9).
      assert.equal(await mlstFeat(), " MLST type*;size*;modify;perm;unix.mode;");
    }));

  test("MLSD lists a directory with facts; a file is not a directory (501)", () =>
    clean(async () => {
      const c = await loggedIn();
      mkdirSync(join(home, "mlsd", "sub"), { recursive: true });
      writeFileSync(join(home, "mlsd", "a.txt"), "aaa");
      const got = await download(c, "MLSD mlsd");
      expectCode(got.start, 150, "MLSD");
      expectCode(got.end!, 226, "MLSD 226");
      const lines = got.data.toString().split("\r\n").filter(Boolean).sort();
      assert.equal(lines.length, 2);
      assert.match(lines[0], /^type=dir;.* sub$/);
      assert.match(lines[1], /^type=file;size=3;.* a\.txt$/);
      expectCode(await c.command("MLSD mlsd/a.txt"), 501, "MLSD of a file");
    }));

  // ---------------------------------------------------------------------------------------------
  // Features, help, status, SITE
  // ---------------------------------------------------------------------------------------------

  test("FEAT lists the extensions, each line indented by one space", () =>
    clean(async () => {
      const c = await open();
      const r = await c.command("FEAT");
      expectCode(r, 211, "FEAT");
      assert.ok(r.lines[0].startsWith("211-"));
      assert.ok(r.lines[r.lines.length - 1].startsWith("211 "));
      const inner = r.lines.slice(1, -1);
      for (const l of inner) assert.match(l, /^ \S/, `feature line ${JSON.stringify(l)}`);
      const features = inner.map((l) => l.trim());
      for (const f of ["EPSV", "EPRT", "SIZE", "MDTM", "REST STREAM", "UTF8", "MFMT", "TVFS", "HOST"]) {
        assert.ok(features.includes(f), `FEAT lacks ${f}: ${features.join(", ")}`);
      }
      const mlst = features.find((f) => f.startsWith("MLST "));
      assert.ok(mlst, "FEAT lacks MLST");
      for (const fact of ["type*;", "size*;", "modify*;", "perm*;"]) assert.ok(mlst.includes(fact), mlst);
    }));

  test("OPTS UTF8 ON is 200; an unknown option is 501", () =>
    clean(async () => {
      const c = await loggedIn();
      expectCode(await c.command("OPTS UTF8 ON"), 200, "OPTS UTF8 ON");
      expectCode(await c.command("opts utf8 on"), 200, "lower case");
      expectCode(await c.command("OPTS FROB ON"), 501, "unknown option");
      // UTF-8 names work on the wire.
      const made = await c.command("MKD żółw-☃");
      expectCode(made, 257, "MKD UTF-8");
      assert.ok(made.text.startsWith('"/żółw-☃"'), made.text);
      assert.ok(statSync(join(home, "żółw-☃")).isDirectory());
    }));

  test("HELP lists the verbs (214); HELP RETR is 214; an unknown verb is 502", () =>
    clean(async () => {
      const c = await open();
      const all = await c.command("HELP");
      expectCode(all, 214, "HELP");
      assert.ok(all.lines.length > 3);
      const words = new Set(all.lines.slice(1, -1).join(" ").split(/\s+/));
      for (const verb of ["USER", "PASS", "RETR", "STOR", "LIST", "EPSV", "EPRT", "MLSD", "FEAT", "QUIT", "ABOR"]) {
        assert.ok(words.has(verb), `HELP lacks ${verb}`);
      }
      const one = await c.command("HELP RETR");
      expectCode(one, 214, "HELP RETR");
      assert.match(one.text, /RETR/);
      expectCode(await c.command("HELP retr"), 214, "HELP retr");
      expectCode(await c.command("HELP FROBNICATE"), 502, "HELP unknown");
    }));

  test("STAT: 211 multi-line without argument; 213 listing for a directory or file; 550 when missing", () =>
    clean(async () => {
      const c = await loggedIn();
      mkdirSync(join(home, "stat-dir"), { recursive: true });
      writeFileSync(join(home, "stat-dir", "one.txt"), "1");
      writeFileSync(join(home, "stat-dir", "two.txt"), "22");
      expectCode(await c.command("PASV"), 227, "PASV");
      const status = await c.command("STAT");
      expectCode(status, 211, "STAT");
      assert.ok(status.lines.length >= 3);
      assert.ok(status.lines.some((l) => l.includes("Connected from 127.0.0.1")));
      assert.ok(status.lines.some((l) => /Data connection: passive/.test(l)), status.lines.join("\n"));

      const dir = await c.command("STAT stat-dir");
      expectCode(dir, 213, "STAT dir");
      const body = dir.lines.slice(1, -1);
      assert.equal(body.length, 2, dir.lines.join("\n"));
      assert.ok(body.some((l) => /^-rw.* 1 .*one\.txt$/.test(l)), body.join("\n"));
      assert.ok(body.some((l) => /^-rw.* 2 .*two\.txt$/.test(l)), body.join("\n"));
      const file = await c.command("STAT stat-dir/two.txt");
      expectCode(file, 213, "STAT file");
      assert.ok(file.lines.some((l) => l.endsWith(" two.txt")));
      expectCode(await c.command("STAT nowhere"), 450, "STAT missing (RFC 959 §5.4 lists 450 for STAT)");
    }));

  test("SITE: HELP 214, CHMOD changes the mode on disk, unknown SITE command 500", () =>
    clean(async () => {
      const c = await loggedIn();
      const file = join(home, "chmod.sh");
      writeFileSync(file, "#!/bin/sh\n", { mode: 0o644 });
      expectCode(await c.command("SITE HELP"), 214, "SITE HELP");
      expectCode(await c.command("SITE CHMOD 755 chmod.sh"), 200, "SITE CHMOD 755");
      assert.equal(statSync(file).mode & 0o777, 0o755);
      expectCode(await c.command("site chmod 0600 chmod.sh"), 200, "site chmod 0600");
      assert.equal(statSync(file).mode & 0o777, 0o600);
      expectCode(await c.command("SITE CHMOD 999 chmod.sh"), 501, "SITE CHMOD bad mode");
      expectCode(await c.command("SITE CHMOD 755"), 501, "SITE CHMOD without a path");
      expectCode(await c.command("SITE CHMOD 755 missing.sh"), 550, "SITE CHMOD missing");
      assert.equal(statSync(file).mode & 0o777, 0o600, "failed CHMODs changed nothing");
      expectCode(await c.command("SITE EXEC /bin/sh -c id"), 500, "SITE EXEC");
      expectCode(await c.command("SITE"), 501, "SITE without argument");
    }));

  // ---------------------------------------------------------------------------------------------
  // Data channel setup
  // ---------------------------------------------------------------------------------------------

  test("PASV is 227 with this host's address and a port of the range; EPSV 1 is 229; EPSV 2 on IPv4 is 522", () =>
    clean(async () => {
      const c = await loggedIn();
      const [first, last] = server.config.pasv.ports.split("-").map(Number);
      const pasv = await c.command("PASV");
      expectCode(pasv, 227, "PASV");
      const m = /\((\d+),(\d+),(\d+),(\d+),(\d+),(\d+)\)/.exec(pasv.text);
      assert.ok(m, pasv.text);
      assert.equal(m.slice(1, 5).join("."), "127.0.0.1");
      const port = Number(m[5]) * 256 + Number(m[6]);
      assert.ok(port >= first && port <= last, `${port} in ${first}-${last}`);
      const epsv = await c.command("EPSV 1");
      expectCode(epsv, 229, "EPSV 1");
      assert.match(epsv.text, /\(\|\|\|\d+\|\)/);
      expectCode(await c.command("EPSV 2"), 522, "EPSV 2 on IPv4");
      expectCode(await c.command("EPSV 3"), 522, "EPSV 3");
      // One pending reservation per session, whatever the number of PASV/EPSV.
      assert.equal(server.node.portPool.stats().pendingReservations, 1);
    }));

  test("EPSV ALL: then PASV, PORT and EPRT are 503 and EPSV is 229; REIN lifts it", () =>
    clean(async () => {
      const c = await loggedIn();
      const l = await activeListener("127.0.0.1");
      expectCode(await c.command("EPSV ALL"), 200, "EPSV ALL");
      expectCode(await c.command("PASV"), 503, "PASV after EPSV ALL");
      expectCode(await c.command(`PORT 127,0,0,1,${l.port >> 8},${l.port & 255}`), 503, "PORT after EPSV ALL");
      expectCode(await c.command(`EPRT |1|127.0.0.1|${l.port}|`), 503, "EPRT after EPSV ALL");
      expectCode(await c.command("EPSV"), 229, "EPSV after EPSV ALL");
      expectCode(await c.command("REIN"), 220, "REIN");
      await c.login(USER, PASSWORD);
      expectCode(await c.command("PASV"), 227, "PASV after REIN");
      assert.equal(l.accepted.length, 0);
    }));

  test("PORT/EPRT to another address (127.0.0.2) are 500 and nothing connects there", () =>
    clean(async () => {
      const c = await loggedIn();
      writeFileSync(join(home, "bounce.txt"), "bounce");
      const target = await activeListener("127.0.0.2");
      const p = target.port;
      expectCode(await c.command(`PORT 127,0,0,2,${p >> 8},${p & 255}`), 500, "PORT to 127.0.0.2");
      expectCode(await c.command(`EPRT |1|127.0.0.2|${p}|`), 500, "EPRT to 127.0.0.2");
      expectCode(await c.command(`PORT 10,0,0,1,${p >> 8},${p & 255}`), 500, "PORT to 10.0.0.1");
      // No data channel was set up: the transfer commands have nothing to use.
      expectCode(await c.command("RETR bounce.txt"), 425, "RETR");
      expectCode(await c.command("LIST"), 425, "LIST");
      // A real active transfer to our own address completes, proving the check is the address.
      const own = await activeListener("127.0.0.1");
      expectCode(await c.command(`PORT 127,0,0,1,${own.port >> 8},${own.port & 255}`), 200, "PORT to own address");
      expectCode(await c.command("NLST"), 150, "NLST");
      expectCode(await c.reply(), 226, "NLST done");
      assert.equal(own.accepted.length, 1);
      assert.equal(target.accepted.length, 0, "the server never connected to 127.0.0.2");
    }));

  test("PORT/EPRT to a port below 1024 are 500; malformed ones 501; EPRT of the other family 522", () =>
    clean(async () => {
      const c = await loggedIn();
      expectCode(await c.command("PORT 127,0,0,1,0,21"), 500, "PORT to 21");
      expectCode(await c.command("PORT 127,0,0,1,3,255"), 500, "PORT to 1023");
      expectCode(await c.command("EPRT |1|127.0.0.1|22|"), 500, "EPRT to 22");
      for (const bad of ["PORT 127,0,0,1,4", "PORT x", "PORT 127,0,0,1,4,256", "PORT 300,0,0,1,4,1", "PORT 127.0.0.1:1025"]) {
        expectCode(await c.command(bad), 501, bad);
      }
      for (const bad of ["EPRT |1|127.0.0.1|", "EPRT |1|127.0.0.1|70000|", "EPRT garbage", "EPRT |1|localhost|2000|", "EPRT |x|127.0.0.1|2000|"]) {
        expectCode(await c.command(bad), 501, bad);
      }
      expectCode(await c.command("EPRT |2|::1|2000|"), 522, "EPRT IPv6 from an IPv4 session");
      // Another protocol, well formed (RFC 2428 §2): 522 names the one to use.
      const other = await c.command("EPRT |9|127.0.0.1|2000|");
      expectCode(other, 522, "EPRT of an unknown protocol");
      assert.match(other.text, /use \(1\)/);
      assert.match((await c.command("EPRT |1|127.0.0.1|22|")).text, /^Illegal EPRT command/);
    }));

  test("active mode (PORT and EPRT to the client's own address) carries RETR and STOR", () =>
    clean(async () => {
      const c = await loggedIn();
      await binary(c);
      const content = Buffer.from("active mode payload\n".repeat(1000));
      writeFileSync(join(home, "active.bin"), content);
      const l = await activeListener("127.0.0.1");
      expectCode(await c.command(`PORT 127,0,0,1,${l.port >> 8},${l.port & 255}`), 200, "PORT");
      expectCode(await c.command("RETR active.bin"), 150, "RETR");
      const done = c.reply(10_000);
      const deadline = Date.now() + 5000;
      while (l.accepted.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
      assert.equal(l.accepted.length, 1);
      assert.equal(l.accepted[0].remoteAddress, "127.0.0.1");
      const got = await readAll(l.accepted[0]);
      expectCode(await done, 226, "RETR done");
      assert.deepEqual(got, content);

      expectCode(await c.command(`EPRT |1|127.0.0.1|${l.port}|`), 200, "EPRT");
      expectCode(await c.command("STOR active-up.bin"), 150, "STOR");
      const deadline2 = Date.now() + 5000;
      while (l.accepted.length === 1 && Date.now() < deadline2) await new Promise((r) => setTimeout(r, 5));
      assert.equal(l.accepted.length, 2);
      l.accepted[1].end(content);
      expectCode(await c.reply(10_000), 226, "STOR done");
      assert.deepEqual(readFileSync(join(home, "active-up.bin")), content);
    }));

  test("a passive connection from 127.0.0.2 to a port reserved for 127.0.0.1 is closed; the right client still gets the file", () =>
    clean(async () => {
      const c = await loggedIn();
      await binary(c);
      writeFileSync(join(home, "secret.txt"), "for alice only");
      const epsv = await c.command("EPSV");
      expectCode(epsv, 229, "EPSV");
      const port = Number(/\|\|\|(\d+)\|/.exec(epsv.text)![1]);
      const before = server.node.portPool.stats().strangersRefused;
      const thief = track(await connectData(port, "127.0.0.2"));
      const stolen = await within(drainToClose(thief), 5000, "thief closed");
      assert.equal(stolen.length, 0, "the stranger got no data");
      assert.equal(server.node.portPool.stats().strangersRefused, before + 1);
      assert.equal(server.node.portPool.stats().pendingReservations, 1, "the reservation is still pending");
      const data = track(await connectData(port, "127.0.0.1"));
      expectCode(await c.command("RETR secret.txt"), 150, "RETR");
      const [bytes, end] = await Promise.all([readAll(data), c.reply()]);
      expectCode(end, 226, "RETR done");
      assert.equal(bytes.toString(), "for alice only");
    }));

  // ---------------------------------------------------------------------------------------------
  // Permissions
  // ---------------------------------------------------------------------------------------------

  test("a read-only account gets 550 for STOR/APPE/STOU/DELE/MKD/RMD/RNFR/MFMT/SITE CHMOD, and can read", () =>
    clean(async () => {
      writeFileSync(join(roHome, "ro.txt"), "read me");
      mkdirSync(join(roHome, "ro-dir"), { recursive: true });
      const c = await loggedIn(RO.name, RO.password);
      await binary(c);
      const data = track(await c.passive());
      for (const line of [
        "STOR new.txt",
        "APPE ro.txt",
        "STOU",
        "DELE ro.txt",
        "MKD made",
        "RMD ro-dir",
        "RNFR ro.txt",
        "MFMT 20200101000000 ro.txt",
        "SITE CHMOD 777 ro.txt",
      ]) {
        expectCode(await c.command(line), 550, line);
      }
      data.destroy();
      assert.equal(readFileSync(join(roHome, "ro.txt"), "utf8"), "read me");
      assert.ok(!existsSync(join(roHome, "new.txt")));
      assert.ok(!existsSync(join(roHome, "made")));
      assert.ok(existsSync(join(roHome, "ro-dir")));
      assert.notEqual(statSync(join(roHome, "ro.txt")).mode & 0o777, 0o777);
      const got = await download(c, "RETR ro.txt");
      expectCode(got.end!, 226, "RETR");
      assert.equal(got.data.toString(), "read me");
      const list = await download(c, "NLST");
      assert.deepEqual(list.data.toString().split("\r\n").filter(Boolean).sort(), ["ro-dir", "ro.txt"]);
      const mlst = await c.command("MLST ro.txt");
      assert.match(mlst.lines[1], /perm=r;/, "perm fact shows read only");
    }));

  // ---------------------------------------------------------------------------------------------
  // Transfers
  // ---------------------------------------------------------------------------------------------

  test("REST + RETR sends the tail; REST applies to one transfer only; REST needs a number", () =>
    clean(async () => {
      const c = await loggedIn();
      await binary(c);
      writeFileSync(join(home, "digits.txt"), "0123456789");
      expectCode(await c.command("REST 4"), 350, "REST 4");
      const tail = await download(c, "RETR digits.txt");
      expectCode(tail.end!, 226, "RETR");
      assert.equal(tail.data.toString(), "456789");
      const whole = await download(c, "RETR digits.txt");
      assert.equal(whole.data.toString(), "0123456789", "REST was consumed");
      for (const bad of ["REST -1", "REST abc", "REST 1.5"]) expectCode(await c.command(bad), 501, bad);
      assert.match((await c.command("REST 9007199254740993")).text, /too large/, "an offset past 2^53 is said to be too large");
    }));

  test("REST: a rejected command cancels it too; STOR at an offset needs the file (550 before any 150); an offset past any end sends nothing", () =>
    clean(async () => {
      const c = await loggedIn();
      await binary(c);
      writeFileSync(join(home, "ten.bin"), "0123456789");
      expectCode(await c.command("REST 3"), 350, "REST");
      expectCode(await c.command("FOOBAR"), 500, "an unknown command");
      assert.equal((await download(c, "RETR ten.bin")).data.toString(), "0123456789", "the REST was cancelled");
      expectCode(await c.command("REST 4"), 350, "REST");
      expectCode(await c.command("REST abc"), 501, "a failed REST");
      assert.equal((await download(c, "RETR ten.bin")).data.toString(), "0123456789", "no REST left pending");

      expectCode(await c.command("REST 4"), 350, "REST");
      const data = track(await c.passive());
      expectCode(await c.command("STOR not-there.bin"), 550, "STOR at an offset of a missing file, before any 150");
      data.destroy();
      assert.equal(existsSync(join(home, "not-there.bin")), false);

      expectCode(await c.command("REST 999999999999999"), 350, "REST far past the end");
      const far = await download(c, "RETR ten.bin");
      expectCode(far.end!, 226, "nothing to send is a complete transfer");
      assert.equal(far.data.length, 0);
    }));

  test("REST + STOR writes at the offset, keeping the bytes before it", () =>
    clean(async () => {
      const c = await loggedIn();
      await binary(c);
      const file = join(home, "rest-stor.bin");
      writeFileSync(file, "AAAAAAAAAA");
      expectCode(await c.command("REST 3"), 350, "REST");
      const r = await upload(c, "STOR rest-stor.bin", Buffer.from("xyz"));
      expectCode(r.start, 150, "STOR");
      expectCode(r.end!, 226, "STOR done");
      assert.equal(readFileSync(file, "utf8"), "AAAxyzAAAA");
      // Resuming at the end extends the file.
      expectCode(await c.command("REST 10"), 350, "REST 10");
      await upload(c, "STOR rest-stor.bin", Buffer.from("BB"));
      assert.equal(readFileSync(file, "utf8"), "AAAxyzAAAABB");
      // Without REST, STOR replaces the file.
      await upload(c, "STOR rest-stor.bin", Buffer.from("new"));
      assert.equal(readFileSync(file, "utf8"), "new");
    }));

  test("APPE appends to a file and creates a missing one", () =>
    clean(async () => {
      const c = await loggedIn();
      await binary(c);
      writeFileSync(join(home, "appe.txt"), "abc");
      const r = await upload(c, "APPE appe.txt", Buffer.from("def"));
      expectCode(r.start, 150, "APPE");
      expectCode(r.end!, 226, "APPE done");
      assert.equal(readFileSync(join(home, "appe.txt"), "utf8"), "abcdef");
      await upload(c, "APPE appe-new.txt", Buffer.from("fresh"));
      assert.equal(readFileSync(join(home, "appe-new.txt"), "utf8"), "fresh");
      mkdirSync(join(home, "appe-dir"), { recursive: true });
      const dirTarget = await upload(c, "APPE appe-dir", Buffer.from("x"));
      expectCode(dirTarget.start, 550, "APPE to a directory");
    }));

  test("STOU answers 150 FILE: <name> and creates a new file, never overwriting", () =>
    clean(async () => {
      const c = await loggedIn();
      await binary(c);
      mkdirSync(join(home, "stou"), { recursive: true });
      writeFileSync(join(home, "stou", "file"), "existing");
      writeFileSync(join(home, "stou", "report.txt"), "existing report");
      expectCode(await c.command("CWD stou"), 250, "CWD");
      const first = await upload(c, "STOU", Buffer.from("one"));
      expectCode(first.start, 150, "STOU");
      const m1 = /^FILE: (.+)$/.exec(first.start.text);
      assert.ok(m1, first.start.text);
      expectCode(first.end!, 226, "STOU done");
      assert.notEqual(m1[1], "file");
      assert.equal(readFileSync(join(home, "stou", m1[1]), "utf8"), "one");
      assert.equal(readFileSync(join(home, "stou", "file"), "utf8"), "existing");

      const second = await upload(c, "STOU report.txt", Buffer.from("two"));
      const m2 = /^FILE: (.+)$/.exec(second.start.text);
      assert.ok(m2, second.start.text);
      assert.notEqual(m2[1], "report.txt");
      assert.notEqual(m2[1], m1[1]);
      assert.equal(readFileSync(join(home, "stou", m2[1]), "utf8"), "two");
      assert.equal(readFileSync(join(home, "stou", "report.txt"), "utf8"), "existing report");

      // A name with a directory: the unique name is made in that directory.
      mkdirSync(join(home, "stou", "sub"));
      const third = await upload(c, "STOU sub/report.txt", Buffer.from("three"));
      expectCode(third.end!, 226, "STOU into a directory");
      assert.equal(third.start.text, "FILE: report.txt");
      assert.equal(readFileSync(join(home, "stou", "sub", "report.txt"), "utf8"), "three");

      // An argument that names a directory: a `file` is made in it, not a `sub.1` beside it.
      for (const [arg, dir] of [["sub/", ["stou", "sub"]], ["sub", ["stou", "sub"]], ["..", []], ["/", []]] as const) {
        const into = await upload(c, `STOU ${arg}`, Buffer.from(arg));
        expectCode(into.end!, 226, `STOU ${arg}`);
        const name = /^FILE: (.+)$/.exec(into.start.text)?.[1] ?? "";
        assert.match(name, /^file(\.\d+)?$/, `STOU ${arg}: ${into.start.text}`);
        assert.equal(readFileSync(join(home, ...dir, name), "utf8"), arg);
      }
    }));

  test("RNTO of a directory into itself is refused (553) and moves nothing", () =>
    clean(async () => {
      const c = await loggedIn();
      mkdirSync(join(home, "into-self", "inner"), { recursive: true });
      expectCode(await c.command("RNFR into-self"), 350, "RNFR");
      expectCode(await c.command("RNTO into-self/inner/moved"), 553, "RNTO below itself");
      assert.ok(statSync(join(home, "into-self", "inner")).isDirectory());
    }));

  test("ABOR while the transfer waits for its data connection: 426, then 226", () =>
    clean(async () => {
      const c = await loggedIn();
      writeFileSync(join(home, "never-fetched.txt"), "x");
      expectCode(await c.command("EPSV"), 229, "EPSV");
      expectCode(await c.command("RETR never-fetched.txt"), 150, "RETR, no data connection yet");
      expectCode(await c.command("ABOR"), 426, "the transfer in progress is aborted");
      expectCode(await c.reply(), 226, "ABOR successful");
      expectCode(await c.command("NOOP"), 200, "NOOP after it");
    }));

  test("TYPE A: RETR converts LF to CRLF, STOR converts CRLF to LF; TYPE I leaves bytes alone", () =>
    clean(async () => {
      const c = await loggedIn();
      const disk = Buffer.from("one\ntwo\r\nthree\rfour\n\n");
      writeFileSync(join(home, "text.txt"), disk);
      expectCode(await c.command("TYPE A"), 200, "TYPE A");
      const ascii = await download(c, "RETR text.txt");
      expectCode(ascii.end!, 226, "RETR A");
      assert.deepEqual(ascii.data, Buffer.from("one\r\ntwo\r\nthree\rfour\r\n\r\n"));

      const up = await upload(c, "STOR text-up.txt", Buffer.from("a\r\nb\r\nc\rd\ne\r\n"));
      expectCode(up.end!, 226, "STOR A");
      assert.deepEqual(readFileSync(join(home, "text-up.txt")), Buffer.from("a\nb\nc\rd\ne\n"));

      await binary(c);
      const raw = await download(c, "RETR text.txt");
      assert.deepEqual(raw.data, disk);
      await upload(c, "STOR text-raw.txt", Buffer.from("a\r\nb"));
      assert.deepEqual(readFileSync(join(home, "text-raw.txt")), Buffer.from("a\r\nb"));
    }));

  test("TYPE A conversion is right when a CRLF is split across TCP segments of the upload", () =>
    clean(async () => {
      const c = await loggedIn();
      expectCode(await c.command("TYPE A"), 200, "TYPE A");
      const data = track(await c.passive());
      data.setNoDelay(true);
      expectCode(await c.command("STOR split.txt"), 150, "STOR");
      for (const piece of ["x\r", "\ny\r", "\n", "z\r", "\r\n"]) {
        data.write(piece);
        await new Promise((r) => setTimeout(r, 20));
      }
      data.end();
      expectCode(await c.reply(), 226, "STOR done");
      assert.deepEqual(readFileSync(join(home, "split.txt")), Buffer.from("x\ny\nz\r\n"));
    }));

  test("LIST -la, LIST with a wildcard, LIST of one file, NLST", () =>
    clean(async () => {
      const c = await loggedIn();
      mkdirSync(join(home, "lst", "sub"), { recursive: true });
      writeFileSync(join(home, "lst", "a.txt"), "a");
      writeFileSync(join(home, "lst", "b.txt"), "bb");
      writeFileSync(join(home, "lst", "c.log"), "ccc");
      expectCode(await c.command("CWD lst"), 250, "CWD");

      const la = await download(c, "LIST -la");
      expectCode(la.start, 150, "LIST -la");
      expectCode(la.end!, 226, "LIST -la done");
      const lines = la.data.toString().split("\r\n").filter(Boolean);
      assert.ok(la.data.toString().endsWith("\r\n"));
      const byName = new Map(lines.map((l) => [l.split(/\s+/).slice(8).join(" "), l]));
      assert.deepEqual([...byName.keys()].sort(), ["a.txt", "b.txt", "c.log", "sub"]);
      assert.match(byName.get("sub")!, /^d[rwx-]{9} /);
      assert.match(byName.get("b.txt")!, /^-[rwx-]{9} +\d+ \S+ \S+ +2 /);

      const wild = await download(c, "LIST *.txt");
      expectCode(wild.end!, 226, "LIST *.txt");
      const wildNames = wild.data.toString().split("\r\n").filter(Boolean).map((l) => l.split(/\s+/).slice(8).join(" "));
      assert.deepEqual(wildNames.sort(), ["a.txt", "b.txt"]);

      const dashWild = await download(c, "LIST -la /lst/*.log");
      assert.deepEqual(dashWild.data.toString().split("\r\n").filter(Boolean).map((l) => l.split(/\s+/).pop()), ["c.log"]);

      // `--` ends the options (lftp's `ls -- -dash.txt`); the path after them is verbatim.
      writeFileSync(join(home, "lst", "-dash.txt"), "d");
      writeFileSync(join(home, "lst", " spaced.txt"), "s");
      for (const line of ["LIST -- -dash.txt", "LIST -l -- -dash.txt", "NLST -- -dash.txt"]) {
        assert.equal((await download(c, line)).data.toString().split("\r\n").filter(Boolean).length, 1, line);
      }
      assert.match((await download(c, "LIST  spaced.txt")).data.toString(), /^-.* 1 .*  spaced\.txt\r\n$/);
      assert.equal((await download(c, "NLST -a  spaced.txt")).data.toString(), " spaced.txt\r\n");
      rmSync(join(home, "lst", "-dash.txt"));
      rmSync(join(home, "lst", " spaced.txt"));

      const single = await download(c, "LIST c.log");
      const singleLines = single.data.toString().split("\r\n").filter(Boolean);
      assert.equal(singleLines.length, 1);
      assert.match(singleLines[0], /^-.* 3 .* c\.log$/);

      const nlst = await download(c, "NLST");
      expectCode(nlst.end!, 226, "NLST");
      assert.deepEqual(nlst.data.toString().split("\r\n").filter(Boolean).sort(), ["a.txt", "b.txt", "c.log", "sub"]);
      const nlstWild = await download(c, "NLST *.log");
      assert.equal(nlstWild.data.toString(), "c.log\r\n");
      // A wildcard, a file or a directory named in the argument: the names carry the directory as
      // written, so that mget can RETR them (classic ftpd, vsftpd, ProFTPD, Pure-FTPd); the working
      // directory's own listing (no argument, `.`) stays bare.
      expectCode(await c.command("CWD /"), 250, "CWD /");
      assert.deepEqual((await download(c, "NLST lst/*.txt")).data.toString().split("\r\n").filter(Boolean).sort(), ["lst/a.txt", "lst/b.txt"]);
      assert.equal((await download(c, "NLST /lst/c.log")).data.toString(), "/lst/c.log\r\n");
      assert.deepEqual((await download(c, "NLST lst")).data.toString().split("\r\n").filter(Boolean).sort(), ["lst/a.txt", "lst/b.txt", "lst/c.log", "lst/sub"]);
      assert.deepEqual((await download(c, "NLST lst//")).data.toString().split("\r\n").filter(Boolean).sort(), ["lst/a.txt", "lst/b.txt", "lst/c.log", "lst/sub"]);
      assert.ok((await download(c, "NLST /")).data.toString().split("\r\n").includes("/lst"));
      assert.ok((await download(c, "NLST .")).data.toString().split("\r\n").includes("lst"));
      expectCode(await c.command("CWD lst"), 250, "CWD back");

      const missing = await download(c, "LIST nowhere");
      expectCode(missing.start, 550, "LIST missing");
      const stars = await download(c, "LIST " + "*a".repeat(20));
      expectCode(stars.start, 501, "LIST with too many wildcards");
    }));

  test("ABOR with no transfer is 225 and releases a pending passive port", () =>
    clean(async () => {
      const c = await loggedIn();
      expectCode(await c.command("ABOR"), 225, "ABOR idle");
      expectCode(await c.command("EPSV"), 229, "EPSV");
      assert.equal(server.node.portPool.stats().pendingReservations, 1);
      expectCode(await c.command("ABOR"), 225, "ABOR with a pending data channel");
      assert.equal(server.node.portPool.stats().pendingReservations, 0);
      expectCode(await c.command("LIST"), 425, "the channel is gone");
    }));

  test("ABOR during a large RETR (slow reader): 426 then 226, and the session stays usable", () =>
    clean(async () => {
      const c = await loggedIn();
      await binary(c);
      const big = join(home, "huge.bin");
      const size = 200 * 1024 * 1024;
      writeFileSync(big, "");
      truncateSync(big, size); // sparse
      writeFileSync(join(home, "after-abort.txt"), "still here");
      const data = track(await c.passive());
      data.pause(); // read nothing: the server's writes back up
      expectCode(await c.command("RETR huge.bin"), 150, "RETR");
      // Telnet IP + Synch before ABOR, as RFC 959 §4.1.3 describes.
      c.socket.write(Buffer.concat([Buffer.from([0xff, 0xf4, 0xff, 0xf2]), Buffer.from("ABOR\r\n")]));
      const first = await c.reply(10_000);
      const second = await c.reply(10_000);
      expectCode(first, 426, "transfer aborted");
      expectCode(second, 226, "ABOR successful");
      const received = await within(drainToClose(data), 10_000, "data connection closed by the server");
      assert.ok(received.length < size, `the transfer stopped early (${received.length} of ${size} bytes)`);
      expectCode(await c.command("NOOP"), 200, "NOOP after ABOR");
      const after = await download(c, "RETR after-abort.txt");
      expectCode(after.end!, 226, "RETR after ABOR");
      assert.equal(after.data.toString(), "still here");
      assert.equal(server.node.portPool.stats().pendingReservations, 0);
    }));

  test("ABOR right after an upload's 150, before any data: 426 then 226; nothing is passed off as complete", () =>
    clean(async () => {
      const c = await loggedIn();
      await binary(c);
      for (let i = 0; i < 5; i++) {
        const data = track(await c.passive());
        expectCode(await c.command(`STOR abor-up-${i}.bin`), 150, "STOR");
        data.write("partial");
        expectCode(await c.command("ABOR"), 426, "transfer aborted");
        expectCode(await c.reply(), 226, "ABOR successful");
        await within(drainToClose(data), 5000, "data connection closed by the server");
      }
      expectCode(await c.command("NOOP"), 200, "NOOP after the aborted uploads");
      const r = await upload(c, "STOR abor-up-0.bin", Buffer.from("complete"));
      expectCode(r.end!, 226, "a new upload works");
      assert.equal(readFileSync(join(home, "abor-up-0.bin"), "utf8"), "complete");
    }));

  test("STAT answers during a transfer; NOOP and every other command wait for it, answered in order", () =>
    clean(async () => {
      const c = await loggedIn();
      await binary(c);
      const big = join(home, "stat-during.bin");
      const size = 64 * 1024 * 1024;
      writeFileSync(big, "");
      truncateSync(big, size);
      const data = track(await c.passive());
      data.pause();
      expectCode(await c.command("RETR stat-during.bin"), 150, "RETR");
      c.send("PWD"); // queued behind the transfer
      const stat = await c.command("STAT");
      expectCode(stat, 211, "STAT during the transfer");
      assert.ok(stat.lines.some((l) => /Transferring \/stat-during\.bin: \d+ bytes so far/.test(l)), stat.lines.join("\n"));
      c.send("NOOP"); // queued too: a 200 now would read as RETR's reply
      // Now read everything: the transfer was not disturbed.
      let total = 0;
      data.on("data", (chunk: Buffer) => (total += chunk.length));
      const closed = new Promise<void>((resolve) => data.once("close", () => resolve()));
      data.resume();
      expectCode(await c.reply(30_000), 226, "transfer complete");
      await within(closed, 10_000, "data closed");
      assert.equal(total, size);
      const pwd = await c.reply();
      expectCode(pwd, 257, "the queued PWD is answered after the transfer");
      expectCode(await c.reply(), 200, "then the queued NOOP");
    }));

  test("an ABOR right behind a STAT in one packet still aborts the transfer at once", () =>
    clean(async () => {
      const c = await loggedIn();
      await binary(c);
      const big = join(home, "stat-abor.bin");
      writeFileSync(big, "");
      truncateSync(big, 256 * 1024 * 1024);
      const data = track(await c.passive());
      data.pause(); // the transfer stalls until the client reads: only ABOR can end it now
      expectCode(await c.command("RETR stat-abor.bin"), 150, "RETR");
      c.send("STAT\r\nABOR");
      expectCode(await c.reply(5000), 211, "STAT");
      expectCode(await c.reply(5000), 426, "the transfer aborted");
      expectCode(await c.reply(5000), 226, "ABOR");
      expectCode(await c.command("NOOP"), 200, "NOOP after it");
    }));

  test("QUIT right after an upload's data waits for the upload: 226, then 221, and the file is whole", () =>
    clean(async () => {
      const c = await loggedIn();
      await binary(c);
      const size = 8 * 1024 * 1024;
      const data = track(await c.passive());
      expectCode(await c.command("STOR quit-after.bin"), 150, "STOR");
      // The client closes the data connection and says QUIT at once, without waiting for the 226.
      data.end(Buffer.alloc(size, 0x71));
      c.send("QUIT");
      expectCode(await c.reply(30_000), 226, "the upload's reply first");
      expectCode(await c.reply(), 221, "then QUIT's");
      assert.equal(statSync(join(home, "quit-after.bin")).size, size);
    }));
});
