/**
 * Property: whatever sequence of command lines a client pipelines, a real server answers every
 * line with exactly one final reply, in order, and keeps serving. Bounded in CI
 * (EDGEFTP_FUZZ_RUNS, default 60); a longer run: `EDGEFTP_FUZZ_RUNS=5000 EDGEFTP_TEST_FILES=fuzz npm test`.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import fc from "fast-check";
import { checkLeaks } from "../helpers/leaks.js";
import { RawClient } from "../helpers/raw-client.js";
import { PASSWORD, startServer, USER, type TestServer } from "../helpers/server.js";

const RUNS = Number(process.env.EDGEFTP_FUZZ_RUNS ?? 60);

// Every verb the server knows, some it does not, in odd cases. Excluded: those that end or change
// the connection (QUIT, REIN, AUTH) and data setup (a transfer would then wait for a data
// connection); they have their own tests.
const VERBS = [
  "USER", "PASS", "ACCT", "CWD", "XCWD", "CDUP", "XCUP", "PWD", "XPWD", "LIST", "NLST", "MLSD", "MLST", "RETR", "STOR",
  "STOU", "APPE", "REST", "DELE", "RNFR", "RNTO", "MKD", "XMKD", "RMD", "XRMD", "TYPE", "MODE", "STRU", "ALLO", "NOOP",
  "SYST", "STAT", "HELP", "SITE", "ABOR", "FEAT", "OPTS", "SIZE", "MDTM", "MFMT", "HOST", "PBSZ", "PROT", "CCC",
  "LPRT", "XYZZY", "", "stor", "Cwd",
];

const argument = fc.oneof(
  fc.constant(""),
  fc.constantFrom("/", "..", "../../etc/passwd", "*", "-la", "A", "I", "L 8", "E", "0", "999999999999", "UTF8 ON", "CHMOD 777 .", "20200101000000 x"),
  fc.string({ unit: "grapheme", maxLength: 40 }),
  fc.string({ unit: "binary", maxLength: 300 }),
);

const line = fc
  .tuple(fc.constantFrom(...VERBS), argument)
  .map(([verb, arg]) => (arg === "" ? verb : `${verb} ${arg}`))
  // Framing (CR, LF, Telnet IAC) has its own tests; here each generated line must stay one line.
  .filter((l) => !/[\r\n\uFFFD]/.test(l) && !Buffer.from(l).includes(0xff));

describe("command parser and dispatcher fuzz", () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({ limits: { maxLoginAttempts: 1_000_000, loginFailureDelay: 0.001, commandsPerSecond: 0 } as never });
  });
  after(async () => {
    await server.close();
  });
  checkLeaks();

  test(`every pipelined line gets exactly one final reply (${RUNS} runs)`, async () => {
    await fc.assert(
      fc.asyncProperty(fc.boolean(), fc.array(line, { minLength: 1, maxLength: 25 }), async (loggedIn, lines) => {
        const client = await RawClient.connect(server.port);
        try {
          if (loggedIn) await client.login(USER, PASSWORD);
          client.socket.write(lines.map((l) => l + "\r\n").join(""));
          for (let i = 0; i < lines.length; i++) {
            const reply = await client.reply(10_000);
            assert.ok(reply.code >= 200 && reply.code < 600, `line ${JSON.stringify(lines[i])} got ${reply.code}`);
          }
          // Nothing more arrives, and the session still works.
          assert.equal((await client.command("NOOP")).code, 200);
        } finally {
          await client.close();
        }
      }),
      { numRuns: RUNS },
    );
    // The node is still serving new clients.
    const fresh = await RawClient.connect(server.port);
    await fresh.login(USER, PASSWORD);
    await fresh.close();
  });
});
