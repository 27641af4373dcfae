/**
 * Storage faults seen from an FTP client: ENOSPC, EIO and EACCES injected into every storage
 * operation (at once, and mid-stream for transfers and listings) must each end in the right reply
 * (452 / 451 / 550; 426 or 451 for a download cut mid-way), keep the session usable, leak nothing,
 * and never destroy the previous version of a file being overwritten.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { existsSync, linkSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import type { Socket } from "node:net";
import { join } from "node:path";
import { after, before, beforeEach, describe, test } from "node:test";
import { RESERVED_PREFIX } from "../../src/storage/local.js";
import { FaultyStorageFactory, type Fault, type FaultError } from "../helpers/faulty-storage.js";
import { checkLeaks } from "../helpers/leaks.js";
import { drainToClose, RawClient } from "../helpers/raw-client.js";
import { PASSWORD, startServer, USER, type ConfigOverrides, type TestServer } from "../helpers/server.js";
import { sleep, waitFor } from "../helpers/wait.js";

const ERRORS: FaultError[] = ["no-space", "permission", "io"];
/** The reply each injected error must produce (protocol/errors.ts: replyForStorageError). */
const REPLY: Record<FaultError, number> = { "no-space": 452, permission: 550, io: 451 };

const SEED = randomBytes(10_000);
const BIG = randomBytes(1024 * 1024 + 7);
/** What an overwrite tries to store: bigger than any fault threshold, so the fault always fires mid-way. */
const PAYLOAD = randomBytes(2 * 1024 * 1024 + 3);

interface Fixture {
  server: TestServer;
  faults: FaultyStorageFactory;
  home: string;
}

function fixture(overrides: ConfigOverrides = {}): Fixture {
  const f = {} as Fixture;
  before(async () => {
    f.faults = new FaultyStorageFactory();
    f.server = await startServer(overrides, [], { storage: f.faults });
    f.home = f.server.home(USER);
  });
  after(async () => {
    await f.server.close();
  });
  beforeEach(() => {
    // Every test starts from the same home: seed.txt, big.bin, an empty directory; no faults.
    f.faults.plan.clear();
    rmSync(f.home, { recursive: true, force: true });
    mkdirSync(join(f.home, "emptydir"), { recursive: true });
    writeFileSync(join(f.home, "seed.txt"), SEED);
    writeFileSync(join(f.home, "big.bin"), BIG);
  });
  return f;
}

function session(f: Fixture): Promise<RawClient> {
  return RawClient.binarySession(f.server.port, USER, PASSWORD);
}

async function quit(c: RawClient): Promise<void> {
  assert.equal((await c.command("QUIT")).code, 221);
  await c.closed();
}

/** NOOP and a plain command still answer: the session survived the fault. */
async function assertUsable(c: RawClient): Promise<void> {
  assert.equal((await c.command("NOOP")).code, 200);
  assert.equal((await c.command("PWD")).code, 257);
}

/** A download or listing: the reply codes (preliminary and final) and the bytes received. */
async function download(c: RawClient, line: string): Promise<{ codes: number[]; data: Buffer }> {
  const data = await c.openData();
  const received = drainToClose(data);
  c.send(line);
  const first = await c.reply();
  if (first.code !== 150) {
    data.destroy();
    await received;
    return { codes: [first.code], data: Buffer.alloc(0) };
  }
  const bytes = await received;
  return { codes: [150, (await c.reply()).code], data: bytes };
}

/** An upload of `payload`: the reply codes (preliminary and final). */
async function upload(c: RawClient, line: string, payload: Buffer): Promise<number[]> {
  const data = await c.openData();
  const closed = drainToClose(data);
  c.send(line);
  const first = await c.reply();
  if (first.code !== 150) {
    data.destroy();
    await closed;
    return [first.code];
  }
  data.end(payload);
  const final = await c.reply();
  data.destroy();
  await closed;
  return [150, final.code];
}

/** Files below `dir` whose name carries the reserved temporary prefix. */
function tempFiles(dir: string): string[] {
  const found: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (entry.name.startsWith(RESERVED_PREFIX)) found.push(join(entry.parentPath, entry.name));
  }
  return found;
}

interface Case {
  name: string;
  fault: Omit<Fault, "error">;
  /** Runs the command under the fault and asserts its reply for `error`. */
  failing(c: RawClient, error: FaultError, f: Fixture): Promise<void>;
  /** The same command once the fault is gone: it works. */
  working(c: RawClient, f: Fixture): Promise<void>;
}

const simple = (line: string, ok: number, prelude?: [string, number]) => ({
  async failing(c: RawClient, error: FaultError) {
    if (prelude) assert.equal((await c.command(prelude[0])).code, prelude[1]);
    assert.equal((await c.command(line)).code, REPLY[error], line);
  },
  async working(c: RawClient) {
    if (prelude) assert.equal((await c.command(prelude[0])).code, prelude[1]);
    assert.equal((await c.command(line)).code, ok, line);
  },
});

const listingWorks = async (c: RawClient) => {
  const { codes, data } = await download(c, "NLST");
  assert.deepEqual(codes, [150, 226]);
  assert.deepEqual(data.toString().trim().split("\r\n").sort(), ["big.bin", "emptydir", "seed.txt"]);
};

const CASES: Case[] = [
  { name: "stat (SIZE)", fault: { op: "stat", path: "/seed.txt" }, ...simple("SIZE seed.txt", 213) },
  {
    name: "list, at once (NLST)",
    fault: { op: "list" },
    async failing(c, error) {
      // A listing fails before its 150 when nothing can be read at all.
      assert.deepEqual((await download(c, "NLST")).codes, [REPLY[error]]);
    },
    working: listingWorks,
  },
  {
    name: "list, after one entry (LIST)",
    fault: { op: "list", after: 1 },
    async failing(c, error) {
      assert.deepEqual((await download(c, "LIST")).codes, [150, REPLY[error]]);
    },
    working: listingWorks,
  },
  {
    name: "read, at open (RETR)",
    fault: { op: "read" },
    async failing(c, error) {
      assert.deepEqual((await download(c, "RETR seed.txt")).codes, [REPLY[error]]);
    },
    async working(c) {
      const { codes, data } = await download(c, "RETR seed.txt");
      assert.deepEqual(codes, [150, 226]);
      assert.ok(data.equals(SEED));
    },
  },
  {
    name: "read, mid-stream (RETR)",
    fault: { op: "read", after: 200_000 },
    async failing(c) {
      const { codes, data } = await download(c, "RETR big.bin");
      assert.equal(codes[0], 150);
      assert.ok(codes[1] === 426 || codes[1] === 451, `final reply ${codes[1]}`);
      assert.ok(data.length <= 200_000, `${data.length} bytes received`);
      assert.ok(data.equals(BIG.subarray(0, data.length)));
    },
    async working(c) {
      const { codes, data } = await download(c, "RETR big.bin");
      assert.deepEqual(codes, [150, 226]);
      assert.ok(data.equals(BIG));
    },
  },
  {
    name: "write, at open, over an existing file (STOR)",
    fault: { op: "write" },
    async failing(c, error, f) {
      assert.deepEqual(await upload(c, "STOR seed.txt", PAYLOAD), [150, REPLY[error]]);
      assert.ok(readFileSync(join(f.home, "seed.txt")).equals(SEED), "previous version intact");
    },
    async working(c, f) {
      assert.deepEqual(await upload(c, "STOR seed.txt", PAYLOAD), [150, 226]);
      assert.ok(readFileSync(join(f.home, "seed.txt")).equals(PAYLOAD));
    },
  },
  {
    name: "write, mid-stream, over an existing file (STOR)",
    fault: { op: "write", after: 300_000 },
    async failing(c, error, f) {
      assert.deepEqual(await upload(c, "STOR big.bin", PAYLOAD), [150, REPLY[error]]);
      assert.ok(readFileSync(join(f.home, "big.bin")).equals(BIG), "previous version intact, byte for byte");
    },
    async working(c, f) {
      assert.deepEqual(await upload(c, "STOR big.bin", PAYLOAD), [150, 226]);
      assert.ok(readFileSync(join(f.home, "big.bin")).equals(PAYLOAD));
    },
  },
  {
    name: "write, mid-stream, of a new file (STOR), then resumed (REST + STOR)",
    fault: { op: "write", after: 300_000 },
    async failing(c, error, f) {
      assert.deepEqual(await upload(c, "STOR fresh.bin", PAYLOAD), [150, REPLY[error]]);
      // partial: keep (the default): what arrived is there, a prefix of the upload.
      const kept = readFileSync(join(f.home, "fresh.bin"));
      assert.ok(kept.length <= 300_000, `${kept.length} bytes kept`);
      assert.ok(kept.equals(PAYLOAD.subarray(0, kept.length)));
    },
    async working(c, f) {
      const size = statSync(join(f.home, "fresh.bin")).size;
      assert.equal((await c.command(`REST ${size}`)).code, 350);
      assert.deepEqual(await upload(c, "STOR fresh.bin", PAYLOAD.subarray(size)), [150, 226]);
      assert.ok(readFileSync(join(f.home, "fresh.bin")).equals(PAYLOAD));
    },
  },
  {
    name: "write, mid-stream, appending (APPE)",
    fault: { op: "write", after: 1000 },
    async failing(c, error, f) {
      assert.deepEqual(await upload(c, "APPE seed.txt", PAYLOAD), [150, REPLY[error]]);
      const now = readFileSync(join(f.home, "seed.txt"));
      assert.ok(now.subarray(0, SEED.length).equals(SEED), "what was there is kept");
      assert.ok(now.length <= SEED.length + 1000);
    },
    async working(c, f) {
      const before = readFileSync(join(f.home, "seed.txt"));
      assert.deepEqual(await upload(c, "APPE seed.txt", SEED), [150, 226]);
      assert.ok(readFileSync(join(f.home, "seed.txt")).equals(Buffer.concat([before, SEED])));
    },
  },
  { name: "mkdir (MKD)", fault: { op: "mkdir" }, ...simple("MKD newdir", 257) },
  { name: "rmdir (RMD)", fault: { op: "rmdir" }, ...simple("RMD emptydir", 250) },
  { name: "delete (DELE)", fault: { op: "delete" }, ...simple("DELE seed.txt", 250) },
  { name: "rename (RNFR + RNTO)", fault: { op: "rename" }, ...simple("RNTO renamed.txt", 250, ["RNFR seed.txt", 350]) },
  { name: "setModifiedTime (MFMT)", fault: { op: "setModifiedTime" }, ...simple("MFMT 20200102030405 seed.txt", 213) },
  { name: "chmod (SITE CHMOD)", fault: { op: "chmod" }, ...simple("SITE CHMOD 600 seed.txt", 200) },
];

describe("every storage fault maps to its reply and leaves the session usable", () => {
  const f = fixture();
  checkLeaks();

  for (const kase of CASES) {
    for (const error of ERRORS) {
      test(`${kase.name}: ${error}`, async () => {
        const c = await session(f);
        f.faults.plan.inject({ ...kase.fault, error });
        const fired = f.faults.plan.fired;
        await kase.failing(c, error, f);
        assert.equal(f.faults.plan.fired, fired + 1, "the fault fired once");
        await assertUsable(c);
        f.faults.plan.clear();
        await kase.working(c, f);
        await assertUsable(c);
        await quit(c);
        assert.deepEqual(tempFiles(f.home), []);
      });
    }
  }

  test("a client that vanishes mid-overwrite leaves the previous version intact", async () => {
    const c = await session(f);
    const data = await c.openData();
    const closed = drainToClose(data);
    c.send("STOR big.bin");
    assert.equal((await c.reply()).code, 150);
    data.write(PAYLOAD.subarray(0, 500_000));
    await waitFor(() => tempFiles(f.home).length === 1, "the upload to reach its temporary file");
    // The control connection goes: the session ends and aborts its transfer.
    await c.close();
    await closed;
    await waitFor(() => tempFiles(f.home).length === 0, "the aborted upload's temporary file to be removed");
    assert.ok(readFileSync(join(f.home, "big.bin")).equals(BIG));
    const again = await session(f);
    assert.deepEqual((await download(again, "RETR big.bin")).data.equals(BIG), true);
    await quit(again);
  });

  test("ABOR during an overwrite leaves the previous version intact", async () => {
    const c = await session(f);
    const data = await c.openData();
    const closed = drainToClose(data);
    c.send("STOR seed.txt");
    assert.equal((await c.reply()).code, 150);
    data.write(PAYLOAD.subarray(0, 100_000));
    c.send("ABOR");
    assert.equal((await c.reply()).code, 426);
    assert.equal((await c.reply()).code, 226);
    await closed;
    assert.ok(readFileSync(join(f.home, "seed.txt")).equals(SEED));
    assert.deepEqual(tempFiles(f.home), []);
    await assertUsable(c);
    await quit(c);
  });

  test("a listing the client does not read: ABOR answers 426 then 226, a reset 426, the session goes on; its end ends the listing", async () => {
    // Far more than the socket buffers hold (~12 MB of MLSD lines), so the listing waits on the client.
    mkdirSync(join(f.home, "many"));
    writeFileSync(join(f.home, "many", "f0"), "");
    for (let i = 1; i < 40_000; i++) linkSync(join(f.home, "many", "f0"), join(f.home, "many", `f${i}-${"n".repeat(240)}`));
    const c = await session(f);
    const stalled = await c.openData();
    stalled.pause();
    c.send("MLSD many");
    assert.equal((await c.reply()).code, 150);
    c.send("ABOR");
    assert.equal((await c.reply()).code, 426);
    assert.equal((await c.reply()).code, 226);
    stalled.destroy();
    await assertUsable(c);

    const reset = await c.openData();
    reset.pause();
    c.send("LIST many");
    assert.equal((await c.reply()).code, 150);
    reset.resetAndDestroy();
    assert.equal((await c.reply()).code, 426);
    await assertUsable(c);
    assert.deepEqual((await download(c, "NLST many")).codes, [150, 226]);

    // The session ending (the control connection gone) ends the listing at once too.
    const orphaned = await c.openData();
    orphaned.pause();
    c.send("MLSD many");
    assert.equal((await c.reply()).code, 150);
    await sleep(200); // the socket buffers fill: the next write waits on the client
    const [live] = f.server.node.sessions;
    assert.ok(live.transfer, "the listing waits on the client");
    await c.close();
    await waitFor(() => live.transfer === null, "the listing to end with its session (not at the stall timeout, 120 s)");
    orphaned.destroy();
  });

  test("reserved temporary names are invisible and refused over FTP", async () => {
    const planted = `${RESERVED_PREFIX}0123-planted`;
    const c = await session(f);
    // Planted after the login: the first login to a root removes leftover temporary files.
    writeFileSync(join(f.home, planted), "server's own");
    const { codes, data } = await download(c, "LIST -a");
    assert.deepEqual(codes, [150, 226]);
    assert.ok(!data.toString().includes(RESERVED_PREFIX));
    assert.equal((await c.command(`SIZE ${planted}`)).code, 550);
    assert.equal((await c.command(`MDTM ${planted}`)).code, 550);
    assert.equal((await c.command(`DELE ${planted}`)).code, 553);
    assert.equal((await c.command(`MKD ${RESERVED_PREFIX}dir`)).code, 553);
    assert.equal((await c.command(`RNFR seed.txt`)).code, 350);
    assert.equal((await c.command(`RNTO ${RESERVED_PREFIX}x`)).code, 553);
    assert.deepEqual((await download(c, `RETR ${planted}`)).codes, [550]);
    // Refused before the 150: RFC 959 has 553 as a first reply only.
    for (const command of ["STOR", "APPE", "STOU"]) assert.deepEqual(await upload(c, `${command} ${RESERVED_PREFIX}new`, SEED), [553], command);
    assert.equal(readFileSync(join(f.home, planted), "utf8"), "server's own");
    assert.ok(!existsSync(join(f.home, `${RESERVED_PREFIX}new`)));
    await assertUsable(c);
    await quit(c);
  });
});

describe("with uploads.partial = delete", () => {
  const f = fixture({ uploads: { partial: "delete" } });
  checkLeaks();

  for (const error of ERRORS) {
    test(`a failed new file is removed, a failed overwrite keeps the previous version: ${error}`, async () => {
      const c = await session(f);
      f.faults.plan.inject({ op: "write", error, after: 300_000 });
      assert.deepEqual(await upload(c, "STOR fresh.bin", PAYLOAD), [150, REPLY[error]]);
      assert.ok(!existsSync(join(f.home, "fresh.bin")));
      assert.deepEqual(await upload(c, "STOR big.bin", PAYLOAD), [150, REPLY[error]]);
      assert.ok(readFileSync(join(f.home, "big.bin")).equals(BIG));
      assert.deepEqual(tempFiles(f.home), []);
      await assertUsable(c);
      await quit(c);
    });
  }
});

/**
 * A client killed mid-upload: the kernel closes its sockets cleanly, so the data connection's EOF
 * looks like the end of the file, and the control connection's FIN may not have been read by Node
 * yet when that EOF is. Made certain here by holding the session's control socket unread (paused)
 * while the client closes it and then its data connection: the upload must be interrupted, not
 * committed, since its 226 could never be delivered.
 */
describe("a client gone mid-upload, its control connection closed before its data ends, with uploads.partial = delete", () => {
  const f = fixture({ uploads: { partial: "delete" } });
  checkLeaks();

  test("neither an overwrite nor a new file is committed, in TYPE I (kernel copy) and TYPE A (stream)", async () => {
    for (const kind of ["I", "A"]) {
      for (const name of ["big.bin", "fresh.bin"]) {
        const what = `TYPE ${kind}, ${name}`;
        const c = await session(f);
        assert.equal((await c.command(`TYPE ${kind}`)).code, 200);
        const data = await c.openData();
        c.send(`STOR ${name}`);
        assert.equal((await c.reply()).code, 150, what);
        // Node's pause() would still read the FIN (and end the socket, nothing being buffered): stop the handle.
        const [served] = f.server.node.sessions;
        const handle = (served.socket as unknown as { _handle: { readStop(): number; readStart(): number } })._handle;
        handle.readStop();
        await new Promise<void>((resolve) => data.write(PAYLOAD.subarray(0, 100_000), () => resolve()));
        c.socket.end();
        await sleep(50); // the FIN is at the server's kernel, unread
        data.end();
        await sleep(100);
        handle.readStart();
        // A session is reported closed once the command it was running has ended.
        await waitFor(() => f.server.node.sessions.size === 0, `${what}: the session and its upload have ended`);
        data.destroy();
        assert.deepEqual(tempFiles(f.home), [], `${what}: no temporary file is left`);
        assert.ok(readFileSync(join(f.home, "big.bin")).equals(BIG), `${what}: the previous version of big.bin is intact`);
        assert.ok(!existsSync(join(f.home, "fresh.bin")), `${what}: no truncated new file`);
      }
    }
  });
});

/**
 * A killed client whose data connection's end reaches the node before its control connection's FIN
 * (seen with lftp under load, a few ms apart): the overwrite waits uploads.replaceGraceMs, watching
 * the control connection, before it replaces anything. A long grace here makes the order certain.
 */
describe("a client gone just after its overwrite's data ended, within uploads.replaceGraceMs", () => {
  const f = fixture({ uploads: { replaceGraceMs: 3000 } });
  checkLeaks();

  test("the previous version is kept: the client's control connection closed during the grace", async () => {
    const c = await session(f);
    const data = await c.openData();
    c.send("STOR big.bin");
    assert.equal((await c.reply()).code, 150);
    data.end(PAYLOAD);
    // The whole upload is in its temporary file: the node now only waits for the grace to pass.
    await waitFor(() => tempFiles(f.home).some((file) => statSync(file).size === PAYLOAD.length), "the complete upload in its temporary file");
    await sleep(200);
    c.socket.end();
    await waitFor(() => f.server.node.sessions.size === 0, "the session and its upload have ended");
    data.destroy();
    assert.ok(readFileSync(join(f.home, "big.bin")).equals(BIG), "the previous version of big.bin is intact");
    assert.deepEqual(tempFiles(f.home), [], "no temporary file is left");
  });
});

describe("a node closing (SIGTERM's handler) during uploads, with uploads.partial = delete", () => {
  checkLeaks();

  test("close() resolves once the uploads it cut have ended: no partial new file, no temporary file, the old version intact", async () => {
    const faults = new FaultyStorageFactory();
    // No drain: the uploads are cut at once.
    const server = await startServer({ uploads: { partial: "delete" }, timeouts: { drain: 0 } }, [], { storage: faults });
    try {
      const home = server.home(USER);
      writeFileSync(join(home, "big.bin"), BIG);
      const clients: RawClient[] = [];
      const sockets: Socket[] = [];
      for (const name of ["fresh.bin", "big.bin"]) {
        const c = await RawClient.connect(server.port);
        await c.login(USER, PASSWORD);
        assert.equal((await c.command("TYPE I")).code, 200);
        const data = await c.passive();
        data.on("error", () => {});
        c.send(`STOR ${name}`);
        assert.equal((await c.reply()).code, 150);
        data.write(PAYLOAD.subarray(0, 1024 * 1024));
        clients.push(c);
        sockets.push(data);
      }
      // Bytes on disk: the new file under its name, the overwrite under a temporary one.
      await waitFor(() => existsSync(join(home, "fresh.bin")) && statSync(join(home, "fresh.bin")).size > 0 && tempFiles(home).length === 1, "both uploads under way");
      // Each client hangs up as soon as it reads the 426 and the 421.
      const hungUp = clients.map(async (c, i) => {
        assert.equal((await c.reply(10_000)).code, 426);
        assert.equal((await c.reply(10_000)).code, 421);
        sockets[i].destroy();
        await c.close();
      });
      // The new file's upload is held once its write has failed and cleaned up: close() must wait for it.
      const settled = faults.plan.hold("write-end", "/fresh.bin");
      let closed = false;
      const closing = server.node.close().then(() => (closed = true));
      await settled.reached;
      await sleep(200);
      assert.equal(closed, false, "close() waits for the upload it cut");
      settled.release();
      await closing;
      assert.ok(!existsSync(join(home, "fresh.bin")), "the partial new file is removed");
      assert.deepEqual(tempFiles(home), []);
      assert.ok(readFileSync(join(home, "big.bin")).equals(BIG));
      await Promise.all(hungUp);
    } finally {
      await server.close();
    }
  });
});

describe("a quota whose usage cannot be measured", () => {
  checkLeaks();

  test("refuses what would grow the account (451 before any 150), still serves downloads, and recovers", async () => {
    const faults = new FaultyStorageFactory();
    const server = await startServer({}, [{ name: "limited", password: PASSWORD, quotaBytes: 1024 * 1024 }], { storage: faults });
    try {
      mkdirSync(server.home("limited"), { recursive: true });
      writeFileSync(join(server.home("limited"), "seed.txt"), SEED);
      faults.plan.inject({ op: "usage", error: "io" });
      const c = await RawClient.connect(server.port);
      await c.login("limited", PASSWORD);
      assert.equal((await c.command("TYPE I")).code, 200);
      assert.deepEqual(await upload(c, "STOR new.bin", SEED), [451]);
      assert.equal((await c.command("MKD dir")).code, 451);
      assert.deepEqual((await download(c, "RETR seed.txt")).codes, [150, 226]);
      assert.ok(!existsSync(join(server.home("limited"), "new.bin")) && !existsSync(join(server.home("limited"), "dir")));
      // Once it can be measured, the account's next command is served.
      faults.plan.clear();
      assert.deepEqual(await upload(c, "STOR new.bin", SEED), [150, 226]);
      await quit(c);
    } finally {
      await server.close();
    }
  });
});
