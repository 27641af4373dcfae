import assert from "node:assert/strict";
import { statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { checkLeaks } from "../helpers/leaks.js";
import { RawClient } from "../helpers/raw-client.js";
import { PASSWORD, startServer, USER, type TestServer } from "../helpers/server.js";

describe("SITE offers only safe subcommands", () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({}, [{ name: "ro", password: "ro", permissions: ["list", "read"] }]);
    writeFileSync(join(server.home(USER), "f.txt"), "x");
  });
  after(async () => {
    await server.close();
  });
  checkLeaks();

  test("SITE UTIME sets the modification time in both client forms", async () => {
    const c = await RawClient.connect(server.port);
    await c.login(USER, PASSWORD);
    assert.equal((await c.command("SITE UTIME 200102030405 f.txt")).code, 200);
    assert.equal(statSync(join(server.home(USER), "f.txt")).mtime.toISOString(), "2001-02-03T04:05:00.000Z");
    assert.equal((await c.command("SITE UTIME f.txt 20100101000000 20110203040506 20100101000000 UTC")).code, 200);
    assert.equal(statSync(join(server.home(USER), "f.txt")).mtime.toISOString(), "2011-02-03T04:05:06.000Z");
    assert.equal((await c.command("SITE UTIME yesterday f.txt")).code, 501);
    assert.equal((await c.command("SITE UTIME 20010203040506 missing.txt")).code, 550);
    await c.close();
  });

  test("a failure of MFMT, SITE CHMOD or SITE UTIME names the path, not the whole argument", async () => {
    const c = await RawClient.connect(server.port);
    await c.login(USER, PASSWORD);
    for (const cmd of ["MFMT 20200102030405 missing.txt", "SITE CHMOD 644 missing.txt", "SITE UTIME 200102030405 missing.txt"]) {
      const r = await c.command(cmd);
      assert.equal(r.code, 550, cmd);
      assert.equal(r.lines.at(-1), "550 missing.txt: No such file or directory.", cmd);
    }
    await c.close();
  });

  test("nothing that copies or executes: EXEC, CPFR/CPTO, SYMLINK are unknown; UTIME needs write", async () => {
    const c = await RawClient.connect(server.port);
    await c.login(USER, PASSWORD);
    for (const cmd of ["SITE EXEC ls", "SITE CPFR f.txt", "SITE CPTO g.txt", "SITE SYMLINK f.txt l"]) {
      assert.equal((await c.command(cmd)).code, 500, cmd);
    }
    const help = await c.command("SITE HELP");
    assert.equal(help.code, 214);
    assert.deepEqual(help.lines.slice(1, -1), ["CHMOD <octal mode> <path>", "UTIME YYYYMMDDhhmm[ss] <path>", "HELP"]);
    await c.close();
    const ro = await RawClient.connect(server.port);
    await ro.login("ro", "ro");
    assert.equal((await ro.command("SITE UTIME 200102030405 f.txt")).code, 550);
    assert.equal((await ro.command("SITE CHMOD 777 f.txt")).code, 550);
    await ro.close();
  });
});
