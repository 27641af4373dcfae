import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { checkLeaks } from "../helpers/leaks.js";
import { RawClient, readAll } from "../helpers/raw-client.js";
import { PASSWORD, startServer, USER, type TestServer } from "../helpers/server.js";

describe("REST applies to the next transfer only", () => {
  let server: TestServer;
  before(async () => {
    server = await startServer();
    writeFileSync(join(server.home(USER), "digits.txt"), "0123456789");
  });
  after(async () => {
    await server.close();
  });
  checkLeaks();

  test("data-setup and type commands between REST and RETR keep the offset", async () => {
    const c = await RawClient.connect(server.port);
    await c.login(USER, PASSWORD);
    assert.equal((await c.command("REST 4")).code, 350);
    assert.equal((await c.command("TYPE I")).code, 200);
    assert.equal((await c.command("SIZE digits.txt")).code, 213);
    const data = await c.passive();
    c.send("RETR digits.txt");
    assert.equal((await readAll(data)).toString(), "456789");
    assert.equal((await c.reply()).code, 150);
    assert.equal((await c.reply()).code, 226);
    await c.close();
  });

  test("any other command cancels a pending REST (no stale offset for a later STOR or RETR)", async () => {
    const c = await RawClient.connect(server.port);
    await c.login(USER, PASSWORD);
    assert.equal((await c.command("REST 3")).code, 350);
    assert.equal((await c.command("PWD")).code, 257);
    let data = await c.passive();
    c.send("STOR brand-new.txt");
    assert.equal((await c.reply()).code, 150);
    data.end("fresh");
    assert.equal((await c.reply()).code, 226);
    assert.equal(readFileSync(join(server.home(USER), "brand-new.txt"), "utf8"), "fresh");

    assert.equal((await c.command("REST 5")).code, 350);
    assert.equal((await c.command("CWD /")).code, 250);
    data = await c.passive();
    c.send("RETR digits.txt");
    assert.equal((await readAll(data)).toString(), "0123456789");
    assert.equal((await c.reply()).code, 150);
    assert.equal((await c.reply()).code, 226);
    await c.close();
  });

  test("a restart in TYPE A is refused before any 150, as vsftpd, ProFTPD and Pure-FTPd refuse it: the offset would count stored bytes, not the CRLF stream", async () => {
    const c = await RawClient.connect(server.port);
    await c.login(USER, PASSWORD);
    assert.equal((await c.command("TYPE A")).code, 200);
    for (const transfer of ["RETR digits.txt", "STOR digits.txt"]) {
      assert.equal((await c.command("REST 2")).code, 350);
      const refused = await c.command(transfer);
      assert.equal(refused.code, 550, `${transfer}: ${refused.text}`);
      assert.match(refused.text, /TYPE I/);
    }
    assert.equal(readFileSync(join(server.home(USER), "digits.txt"), "utf8"), "0123456789");
    // REST 0 is no restart, and the refusal left no offset pending.
    assert.equal((await c.command("REST 0")).code, 350);
    const data = await c.passive();
    c.send("RETR digits.txt");
    assert.equal((await readAll(data)).toString(), "0123456789");
    assert.equal((await c.reply()).code, 150);
    assert.equal((await c.reply()).code, 226);
    await c.close();
  });
});
