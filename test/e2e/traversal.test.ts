/**
 * Path traversal: every spelling of "outside the root" a client can send, through every command
 * that takes a path, and symlinks inside the home that lead out of it. The home is
 * <dataDir>/homes/alice, so `../../outside` names a real directory next to it: a server that
 * failed to clamp would find the planted files there.
 */
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import type { Socket } from "node:net";
import { join, relative, sep } from "node:path";
import { checkLeaks } from "../helpers/leaks.js";
import { expectCode, RawClient, readAll, type FtpReply } from "../helpers/raw-client.js";
import { PASSWORD, startServer, USER, type TestServer } from "../helpers/server.js";
import { TestConnections } from "../helpers/test-connections.js";

const SECRET = "outside secret: must never be served";
const SIBLING_SECRET = "sibling home secret";

/** Spellings that try to reach a file outside the root. */
const FILE_SPELLINGS = [
  "../../etc/passwd",
  "/../../../etc/passwd",
  "../../../../../../../../../../etc/passwd",
  "/etc/passwd",
  "..\\..\\..\\etc\\passwd",
  "..\\..\\windows\\win.ini",
  "%2e%2e/%2e%2e/%2e%2e/etc/passwd",
  "%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd",
  "..%2f..%2f..%2fetc%2fpasswd",
  "....//....//....//etc/passwd",
  "..//..//..//etc/passwd",
  "./.././../../etc/passwd",
  "~/../../etc/passwd",
  "~root/.ssh/id_rsa",
  "/..\\../..\\../etc/passwd",
  "../../outside/secret.txt",
  "/../../outside/secret.txt",
  "..\\..\\outside\\secret.txt",
  "%2e%2e/%2e%2e/outside/secret.txt",
  "../alice-sibling/secret.txt",
  ".../.../outside/secret.txt",
];

/** Spellings that try to make a directory outside the root the working directory. */
const DIR_SPELLINGS = [
  "../../etc",
  "/../../..",
  "../..",
  "..\\..\\windows",
  "%2e%2e/%2e%2e/etc",
  "....//....//",
  "../../outside",
  "../alice-sibling",
  "/etc",
  "~",
  "../../../../../../../../../../",
];

function expectRefused(r: FtpReply, what: string): void {
  assert.ok(r.code === 550 || r.code === 553, `${what}: expected 550/553, got ${r.code} ${r.lines.join(" | ")}`);
}

/** STAT's refusal: 450 for what is not there (RFC 959 §5.4), 550 or 553 for a path refused outright. */
function expectStatRefused(r: FtpReply, what: string): void {
  assert.ok([450, 550, 553].includes(r.code), `${what}: expected 450/550/553, got ${r.code} ${r.lines.join(" | ")}`);
}

/** Every path under `dir` (relative, `/`-separated), not following symlinks. */
function walk(dir: string, prefix = ""): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const rel = prefix ? `${prefix}/${entry.name}` : entry.name;
    out.push(rel);
    if (entry.isDirectory()) out.push(...walk(join(dir, entry.name), rel));
  }
  return out.sort();
}

describe("path traversal", () => {
  let server: TestServer;
  let home = "";
  let outside = "";
  let sibling = "";
  /** What must exist outside the home, exactly, for the whole run. */
  let outsideSnapshot: string[] = [];
  const connections = new TestConnections();

  before(async () => {
    server = await startServer();
    home = server.home(USER);
    // A real login creates the home the way the server does.
    const c = await RawClient.connect(server.port);
    await c.login(USER, PASSWORD);
    await c.command("QUIT");
    await c.closed();

    outside = join(server.dataDir, "outside");
    mkdirSync(join(outside, "subdir"), { recursive: true });
    writeFileSync(join(outside, "secret.txt"), SECRET, { mode: 0o644 });
    utimesSync(join(outside, "secret.txt"), new Date(Date.UTC(2001, 0, 1)), new Date(Date.UTC(2001, 0, 1)));
    // A sibling home whose name starts with this home's name: a prefix check without a separator
    // would let it through.
    sibling = join(server.dataDir, "homes", "alice-sibling");
    mkdirSync(sibling, { recursive: true });
    writeFileSync(join(sibling, "secret.txt"), SIBLING_SECRET);

    mkdirSync(join(home, "inside-dir"), { recursive: true });
    writeFileSync(join(home, "inside-dir", "ok.txt"), "inside ok");
    writeFileSync(join(home, "mine.txt"), "mine");
    mkdirSync(join(home, "....", "...."), { recursive: true });

    symlinkSync("/etc", join(home, "etclink"));
    symlinkSync("/etc/passwd", join(home, "passwdlink"));
    symlinkSync("/", join(home, "rootlink"));
    symlinkSync(outside, join(home, "outlink"));
    symlinkSync(join(outside, "secret.txt"), join(home, "secretlink"));
    symlinkSync("../../outside", join(home, "rellink"));
    symlinkSync(sibling, join(home, "siblink"));
    symlinkSync(join(outside, "not-yet.txt"), join(home, "dangling"));
    symlinkSync(join(home, "chain2"), join(home, "chain1"));
    symlinkSync("/etc", join(home, "chain2"));
    symlinkSync(join(home, "inside-dir"), join(home, "inlink"));

    outsideSnapshot = walk(server.dataDir).filter((p) => !p.startsWith("homes/alice/") && p !== "homes/alice");
  });
  after(async () => {
    await server.close();
  });
  checkLeaks();

  /** Runs a test body, checks nothing changed outside the home, and closes what it opened. */
  async function clean(body: () => Promise<void>): Promise<void> {
    try {
      await body();
      assert.deepEqual(
        walk(server.dataDir).filter((p) => !p.startsWith("homes/alice/") && p !== "homes/alice"),
        outsideSnapshot,
        "nothing outside the home was created, removed or renamed",
      );
      assert.equal(readFileSync(join(outside, "secret.txt"), "utf8"), SECRET);
      assert.equal(readFileSync(join(sibling, "secret.txt"), "utf8"), SIBLING_SECRET);
      assert.equal(statSync(join(outside, "secret.txt")).mode & 0o777, 0o644);
      assert.equal(statSync(join(outside, "secret.txt")).mtime.getTime(), Date.UTC(2001, 0, 1));
    } finally {
      await connections.closeAll(server);
    }
  }
  const track = (s: Socket): Socket => connections.track(s);
  async function loggedIn(): Promise<RawClient> {
    const c = await connections.open(server.port);
    await c.login(USER, PASSWORD);
    expectCode(await c.command("TYPE I"), 200, "TYPE I");
    return c;
  }

  /**
   * Sends a transfer command with a passive connection ready, so a server that wrongly accepted it
   * would really send (or receive) data; returns the first reply and, on 150, the data.
   */
  async function tryRetr(c: RawClient, arg: string): Promise<{ reply: FtpReply; data: string }> {
    const data = track(await c.passive());
    const reply = await c.command(`RETR ${arg}`);
    if (reply.code !== 150) {
      data.destroy();
      return { reply, data: "" };
    }
    const [bytes] = await Promise.all([readAll(data), c.reply()]);
    return { reply, data: bytes.toString() };
  }
  async function tryStor(c: RawClient, verb: string, arg: string, content: string): Promise<FtpReply> {
    const data = track(await c.passive());
    const reply = await c.command(`${verb} ${arg}`);
    if (reply.code !== 150) {
      data.destroy();
      return reply;
    }
    data.end(content);
    await c.reply();
    return reply;
  }
  async function tryList(c: RawClient, verb: string, arg: string): Promise<{ reply: FtpReply; data: string }> {
    const data = track(await c.passive());
    const reply = await c.command(`${verb} ${arg}`);
    if (reply.code !== 150) {
      data.destroy();
      return { reply, data: "" };
    }
    const [bytes] = await Promise.all([readAll(data), c.reply()]);
    return { reply, data: bytes.toString() };
  }
  async function pwd(c: RawClient): Promise<string> {
    const r = await c.command("PWD");
    expectCode(r, 257, "PWD");
    const m = /^"((?:[^"]|"")*)"/.exec(r.text);
    assert.ok(m, r.text);
    return m[1].replace(/""/g, '"');
  }

  test("RETR, SIZE, MDTM and MLST of a file outside the root fail with 550, whatever the spelling", () =>
    clean(async () => {
      const c = await loggedIn();
      const passwd = existsSync("/etc/passwd") ? readFileSync("/etc/passwd", "utf8") : null;
      for (const spelling of FILE_SPELLINGS) {
        const { reply, data } = await tryRetr(c, spelling);
        assert.ok(!data.includes(SECRET) && !data.includes(SIBLING_SECRET), `RETR ${spelling} leaked a secret`);
        if (passwd) assert.notEqual(data, passwd, `RETR ${spelling} served /etc/passwd`);
        expectRefused(reply, `RETR ${spelling}`);
        expectRefused(await c.command(`SIZE ${spelling}`), `SIZE ${spelling}`);
        expectRefused(await c.command(`MDTM ${spelling}`), `MDTM ${spelling}`);
        expectRefused(await c.command(`MLST ${spelling}`), `MLST ${spelling}`);
      }
      // Control: the same commands work on a file inside the root.
      const ok = await tryRetr(c, "inside-dir/ok.txt");
      expectCode(ok.reply, 150, "RETR inside");
      assert.equal(ok.data, "inside ok");
    }));

  test("CWD never leaves the root: PWD stays a path of the home and lists what is on disk there", () =>
    clean(async () => {
      const c = await loggedIn();
      for (const spelling of DIR_SPELLINGS) {
        expectCode(await c.command("CWD /"), 250, "CWD /");
        const r = await c.command(`CWD ${spelling}`);
        assert.ok(r.code === 250 || r.code === 550, `CWD ${spelling}: ${r.code} ${r.text}`);
        const where = await pwd(c);
        assert.ok(where.startsWith("/"), `PWD ${where}`);
        assert.ok(!where.split("/").includes(".."), `PWD ${where} after CWD ${spelling}`);
        // Whatever PWD says is a directory inside the home, and the listing is that directory's.
        const local = join(home, where);
        assert.ok(!relative(home, local).split(sep).includes(".."), `${where} maps inside the home`);
        assert.ok(statSync(local).isDirectory(), `${where} is a directory of the home`);
        const listed = await tryList(c, "NLST", "");
        expectCode(listed.reply, 150, `NLST after CWD ${spelling}`);
        assert.deepEqual(listed.data.split("\r\n").filter(Boolean).sort(), readdirSync(local).sort(), `listing of ${where}`);
      }
      // `....` is an ordinary name: the directory made for it is where CWD lands.
      expectCode(await c.command("CWD /"), 250, "CWD /");
      expectCode(await c.command("CWD ....//....//"), 250, "CWD ....//....//");
      assert.equal(await pwd(c), "/..../....");
      // Climbing above the root clamps at the root.
      expectCode(await c.command("CWD /../../.."), 250, "CWD /../../..");
      assert.equal(await pwd(c), "/");
      expectCode(await c.command("CWD ../../etc"), 550, "CWD ../../etc (no etc in the home)");
      assert.equal(await pwd(c), "/");
      // CDUP many times stays at the root.
      for (let i = 0; i < 5; i++) expectCode(await c.command("CDUP"), 200, "CDUP");
      assert.equal(await pwd(c), "/");
    }));

  test("LIST/NLST/STAT of a directory outside the root fail; of `..` above the root list the root", () =>
    clean(async () => {
      const c = await loggedIn();
      const rootNames = readdirSync(home).sort();
      for (const spelling of ["../../outside", "/../../../etc", "..\\..\\outside", "%2e%2e/%2e%2e/outside", "../alice-sibling", "../../etc/passwd"]) {
        expectRefused((await tryList(c, "LIST", spelling)).reply, `LIST ${spelling}`);
        expectRefused((await tryList(c, "NLST", spelling)).reply, `NLST ${spelling}`);
        expectRefused((await tryList(c, "MLSD", spelling)).reply, `MLSD ${spelling}`);
        expectStatRefused(await c.command(`STAT ${spelling}`), `STAT ${spelling}`);
      }
      for (const spelling of ["../..", "/../../..", "../../../../", "-a ../.."]) {
        const r = await tryList(c, "NLST", spelling);
        expectCode(r.reply, 150, `NLST ${spelling}`);
        // Each name under the directory as written (`../../a`): it resolves, clamped, to the root's `a`.
        const names = r.data.split("\r\n").filter(Boolean);
        assert.deepEqual(names.map((n) => n.slice(n.lastIndexOf("/") + 1)).sort(), rootNames, `NLST ${spelling} lists the root`);
      }
      const wild = await tryList(c, "NLST", "../../outside/*");
      expectRefused(wild.reply, "NLST ../../outside/*");
      assert.equal(wild.data, "");
    }));

  test("STOR/APPE/STOU with traversal land inside the home or fail; MKD too", () =>
    clean(async () => {
      const c = await loggedIn();
      const tag = `${process.pid}-${Date.now()}`;
      // Clamped at the root: the file lands at the top of the home.
      expectCode(await tryStor(c, "STOR", `../../escape-${tag}.txt`, "e1"), 150, "STOR ../../escape");
      assert.equal(readFileSync(join(home, `escape-${tag}.txt`), "utf8"), "e1");
      expectCode(await tryStor(c, "APPE", `/../../../escape-${tag}.txt`, "+"), 150, "APPE /../../../escape");
      assert.equal(readFileSync(join(home, `escape-${tag}.txt`), "utf8"), "e1+");
      // Backslashes are part of a name: one odd file, inside the home.
      expectCode(await tryStor(c, "STOR", `..\\..\\bs-${tag}.txt`, "bs"), 150, "STOR with backslashes");
      assert.equal(readFileSync(join(home, `..\\..\\bs-${tag}.txt`), "utf8"), "bs");
      // Parents that exist only outside the home do not exist here.
      for (const spelling of [
        `../../outside/planted-${tag}.txt`,
        `%2e%2e/%2e%2e/outside/planted-${tag}.txt`,
        `/../../../tmp/planted-${tag}.txt`,
        `../alice-sibling/planted-${tag}.txt`,
      ]) {
        expectRefused(await tryStor(c, "STOR", spelling, "planted"), `STOR ${spelling}`);
        expectRefused(await tryStor(c, "APPE", spelling, "planted"), `APPE ${spelling}`);
      }
      assert.ok(!existsSync(`/tmp/planted-${tag}.txt`));
      expectCode(await c.command("CWD /"), 250, "CWD /");
      const stou = await tryStor(c, "STOU", `../../outside/stou-${tag}`, "u");
      // STOU keeps only the base name, in the working directory.
      if (stou.code === 150) {
        const m = /^FILE: (.+)$/.exec(stou.text);
        assert.ok(m, stou.text);
        assert.ok(existsSync(join(home, m[1])), `STOU wrote ${m[1]} in the home`);
      } else expectRefused(stou, "STOU");

      const mk = await c.command(`MKD ../../mkd-${tag}`);
      expectCode(mk, 257, "MKD ../../x clamps");
      assert.ok(mk.text.startsWith(`"/mkd-${tag}"`), mk.text);
      assert.ok(statSync(join(home, `mkd-${tag}`)).isDirectory());
      expectRefused(await c.command(`MKD ../../outside/mkd-${tag}`), "MKD ../../outside/x");
      expectRefused(await c.command(`MKD /../../../tmp/mkd-${tag}`), "MKD /tmp/x");
      expectCode(await c.command("MKD %2e%2e"), 257, "MKD %2e%2e is an ordinary name");
      assert.ok(statSync(join(home, "%2e%2e")).isDirectory());
      assert.ok(!existsSync(`/tmp/mkd-${tag}`));
    }));

  test("DELE, RMD, RNFR/RNTO, SITE CHMOD and MFMT cannot reach outside the root", () =>
    clean(async () => {
      const c = await loggedIn();
      for (const spelling of ["../../outside/secret.txt", "/../../../etc/passwd", "..\\..\\outside\\secret.txt", "%2e%2e/%2e%2e/outside/secret.txt", "../alice-sibling/secret.txt"]) {
        expectRefused(await c.command(`DELE ${spelling}`), `DELE ${spelling}`);
        expectRefused(await c.command(`RNFR ${spelling}`), `RNFR ${spelling}`);
        expectRefused(await c.command(`SITE CHMOD 777 ${spelling}`), `SITE CHMOD ${spelling}`);
        expectRefused(await c.command(`MFMT 20300101000000 ${spelling}`), `MFMT ${spelling}`);
      }
      expectRefused(await c.command("RMD ../../outside/subdir"), "RMD ../../outside/subdir");
      expectRefused(await c.command("RMD ../../outside"), "RMD ../../outside");
      // Renaming a home file to a traversal target either lands inside the home or fails.
      writeFileSync(join(home, "mv-me.txt"), "move");
      expectCode(await c.command("RNFR mv-me.txt"), 350, "RNFR");
      expectRefused(await c.command("RNTO ../../outside/moved.txt"), "RNTO ../../outside/moved.txt");
      expectCode(await c.command("RNFR mv-me.txt"), 350, "RNFR");
      expectCode(await c.command("RNTO ../../../moved-top.txt"), 250, "RNTO clamped");
      assert.equal(readFileSync(join(home, "moved-top.txt"), "utf8"), "move");
      expectCode(await c.command("RNFR /"), 550, "RNFR of the root");
      expectCode(await c.command("RNFR /../.."), 550, "RNFR of the root, spelt with ..");
    }));

  test("a NUL or other control byte in a path is refused and creates nothing", () =>
    clean(async () => {
      const c = await loggedIn();
      const before = readdirSync(home).sort();
      const send = async (parts: (string | number[])[]): Promise<FtpReply> => {
        c.socket.write(Buffer.concat(parts.map((p) => (typeof p === "string" ? Buffer.from(p) : Buffer.from(p)))));
        return c.reply();
      };
      const data = track(await c.passive());
      expectRefused(await send(["RETR mine.txt", [0], "../../etc/passwd\r\n"]), "RETR with NUL");
      expectRefused(await send(["RETR ../../etc/passwd", [0], ".txt\r\n"]), "RETR with NUL suffix");
      expectRefused(await send(["STOR nul", [0], ".txt\r\n"]), "STOR with NUL");
      expectRefused(await send(["STOR ctl", [1], ".txt\r\n"]), "STOR with 0x01");
      expectRefused(await send(["STOR del", [0x7f], ".txt\r\n"]), "STOR with DEL");
      expectRefused(await send(["MKD nul", [0], "dir\r\n"]), "MKD with NUL");
      expectRefused(await send(["DELE mine.txt", [0], "\r\n"]), "DELE with NUL");
      expectRefused(await send(["RNFR mine.txt", [0], "\r\n"]), "RNFR with NUL");
      const cwd = await send(["CWD ..", [0], "/..\r\n"]);
      assert.ok(cwd.code >= 500, `CWD with NUL: ${cwd.code}`);
      assert.equal(await pwd(c), "/");
      data.destroy();
      assert.deepEqual(readdirSync(home).sort(), before, "nothing was created or removed");
      assert.equal(readFileSync(join(home, "mine.txt"), "utf8"), "mine");
      // `%00` is just three characters of a name.
      expectRefused((await tryRetr(c, "mine.txt%00")).reply, "RETR mine.txt%00");
    }));

  test("symlinks to /etc, /, and to a directory outside the home cannot be read, listed or entered", () =>
    clean(async () => {
      const c = await loggedIn();
      for (const spelling of [
        "etclink/passwd",
        "passwdlink",
        "rootlink/etc/passwd",
        `rootlink${outside}/secret.txt`,
        "outlink/secret.txt",
        "secretlink",
        "rellink/secret.txt",
        "siblink/secret.txt",
        "chain1/passwd",
        "/outlink/../outlink/secret.txt",
      ]) {
        const { reply, data } = await tryRetr(c, spelling);
        assert.ok(!data.includes(SECRET) && !data.includes(SIBLING_SECRET), `RETR ${spelling} leaked`);
        expectRefused(reply, `RETR ${spelling}`);
        expectRefused(await c.command(`SIZE ${spelling}`), `SIZE ${spelling}`);
        expectRefused(await c.command(`MLST ${spelling}`), `MLST ${spelling}`);
      }
      for (const dir of ["etclink", "etclink/", "rootlink", "outlink", "rellink", "siblink", "chain1"]) {
        expectRefused((await tryList(c, "LIST", dir)).reply, `LIST ${dir}`);
        expectRefused((await tryList(c, "NLST", dir)).reply, `NLST ${dir}`);
        expectRefused((await tryList(c, "MLSD", dir)).reply, `MLSD ${dir}`);
        expectStatRefused(await c.command(`STAT ${dir}`), `STAT ${dir}`);
        expectRefused(await c.command(`CWD ${dir}`), `CWD ${dir}`);
        assert.equal(await pwd(c), "/", `PWD after CWD ${dir}`);
      }
      const wild = await tryList(c, "NLST", "outlink/*.txt");
      expectRefused(wild.reply, "NLST outlink/*.txt");

      // The listing of the root still works and shows the escaping links as links, without their targets' sizes.
      const root = await tryList(c, "LIST", "");
      expectCode(root.reply, 150, "LIST /");
      const lines = root.data.split("\r\n").filter(Boolean);
      for (const name of ["etclink", "outlink", "secretlink", "rootlink"]) {
        const line = lines.find((l) => l.endsWith(` ${name}`));
        assert.ok(line, `${name} listed`);
        assert.match(line, /^l/, `${name} is shown as a link: ${line}`);
        assert.match(line, /^\S+ +\d+ \S+ \S+ +0 /, `${name} shows size 0: ${line}`);
      }

      // Control: a symlink that stays inside the home works.
      const ok = await tryRetr(c, "inlink/ok.txt");
      expectCode(ok.reply, 150, "RETR inlink/ok.txt");
      assert.equal(ok.data, "inside ok");
      expectCode(await c.command("CWD inlink"), 250, "CWD inlink");
    }));

  test("writes through an escaping symlink are refused: STOR/APPE/MKD/DELE/RMD/RNFR/RNTO/CHMOD/MFMT", () =>
    clean(async () => {
      const c = await loggedIn();
      for (const [verb, arg] of [
        ["STOR", "outlink/planted.txt"],
        ["STOR", "secretlink"],
        ["STOR", "dangling"],
        ["STOR", "rellink/planted.txt"],
        ["STOR", "siblink/planted.txt"],
        ["APPE", "secretlink"],
        ["APPE", "dangling"],
        ["APPE", "outlink/secret.txt"],
      ] as const) {
        expectRefused(await tryStor(c, verb, arg, "planted"), `${verb} ${arg}`);
      }
      expectCode(await c.command("REST 3"), 350, "REST");
      expectRefused(await tryStor(c, "STOR", "secretlink", "XXX"), "REST + STOR secretlink");
      expectCode(await c.command("REST 0"), 350, "REST 0");
      expectRefused(await c.command("MKD outlink/newdir"), "MKD outlink/newdir");
      expectRefused(await c.command("MKD rellink/newdir"), "MKD rellink/newdir");
      expectRefused(await c.command("DELE outlink/secret.txt"), "DELE outlink/secret.txt");
      expectRefused(await c.command("DELE siblink/secret.txt"), "DELE siblink/secret.txt");
      expectRefused(await c.command("RMD outlink/subdir"), "RMD outlink/subdir");
      expectRefused(await c.command("RNFR outlink/secret.txt"), "RNFR outlink/secret.txt");
      writeFileSync(join(home, "to-move.txt"), "x");
      expectCode(await c.command("RNFR to-move.txt"), 350, "RNFR");
      expectRefused(await c.command("RNTO outlink/moved.txt"), "RNTO outlink/moved.txt");
      assert.ok(existsSync(join(home, "to-move.txt")));
      expectRefused(await c.command("SITE CHMOD 777 secretlink"), "SITE CHMOD secretlink");
      expectRefused(await c.command("SITE CHMOD 777 outlink/secret.txt"), "SITE CHMOD outlink/secret.txt");
      expectRefused(await c.command("MFMT 20300101000000 secretlink"), "MFMT secretlink");
      expectRefused(await c.command("MFMT 20300101000000 outlink/secret.txt"), "MFMT outlink/secret.txt");
      assert.ok(!existsSync(join(outside, "not-yet.txt")), "the dangling link's target was not created");
      // Removing the link itself is allowed (it is inside), and never touches its target.
      const dele = await c.command("DELE secretlink");
      assert.ok(dele.code === 250 || dele.code === 550, `DELE secretlink: ${dele.code}`);
      assert.equal(readFileSync(join(outside, "secret.txt"), "utf8"), SECRET);
      if (dele.code === 250) symlinkSync(join(outside, "secret.txt"), join(home, "secretlink"));
    }));
});
