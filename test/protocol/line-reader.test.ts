import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { LineReader, type LineEvent } from "../../src/protocol/line-reader.js";

const IAC = 0xff;
const IP = 0xf4;
const DM = 0xf2;
const WILL = 0xfb;
const WONT = 0xfc;
const DO = 0xfd;
const DONT = 0xfe;
const SB = 0xfa;
const SE = 0xf0;

/** Feeds `chunks` in order and returns every event, in order. */
function feed(reader: LineReader, chunks: Buffer[]): LineEvent[] {
  const out: LineEvent[] = [];
  for (const c of chunks) out.push(...reader.push(c));
  return out;
}

function bytewise(buf: Buffer): Buffer[] {
  return [...buf].map((b) => Buffer.from([b]));
}

const lines = (...texts: string[]): LineEvent[] => texts.map((line) => ({ kind: "line", line }));

describe("LineReader", () => {
  test("keeps a partial line across chunks, fed byte by byte", () => {
    const reader = new LineReader(512);
    const input = Buffer.from("USER alice\r\nPASS wonderland\r\n");
    const events: LineEvent[] = [];
    for (const chunk of bytewise(input)) {
      const got = reader.push(chunk);
      events.push(...got);
    }
    assert.deepEqual(events, lines("USER alice", "PASS wonderland"));
  });

  test("a line is only emitted once its LF arrives", () => {
    const reader = new LineReader(512);
    assert.deepEqual(reader.push(Buffer.from("NO")), []);
    assert.deepEqual(reader.push(Buffer.from("OP\r")), []);
    assert.deepEqual(reader.push(Buffer.from("\n")), lines("NOOP"));
  });

  test("accepts CRLF and bare LF; a CR inside a line is kept", () => {
    const reader = new LineReader(512);
    assert.deepEqual(reader.push(Buffer.from("A\r\nB\nC\rD\r\n\r\n")), lines("A", "B", "C\rD", ""));
  });

  test("splits pipelined lines that arrive in one chunk, in order", () => {
    const reader = new LineReader(512);
    const many = Array.from({ length: 50 }, (_, i) => `CMD${i} arg ${i}`);
    assert.deepEqual(reader.push(Buffer.from(many.map((l) => l + "\r\n").join(""))), lines(...many));
  });

  test("a UTF-8 character split across chunks is decoded whole", () => {
    const reader = new LineReader(512);
    const input = Buffer.from("MKD é☃𝄞\r\n", "utf8");
    // Split inside each multi-byte character: every single byte is its own chunk.
    assert.deepEqual(feed(reader, bytewise(input)), lines("MKD é☃𝄞"));
    // And a split in the middle of the 4-byte character only.
    const at = input.indexOf(Buffer.from("𝄞", "utf8")) + 2;
    assert.deepEqual(feed(reader, [input.subarray(0, at), input.subarray(at)]), lines("MKD é☃𝄞"));
  });

  test("removes Telnet IAC IP, IAC DM and option negotiation", () => {
    const reader = new LineReader(512);
    const input = Buffer.concat([
      Buffer.from([IAC, IP, IAC, DM]),
      Buffer.from("AB"),
      Buffer.from([IAC, WILL, 0x01, IAC, WONT, 0x03, IAC, DO, 0x18, IAC, DONT, 0x1f]),
      Buffer.from("OR\r\n"),
    ]);
    assert.deepEqual(reader.push(input), lines("ABOR"));
  });

  test("removes a sub-negotiation IAC SB … IAC SE, even holding bytes >= 0xF0", () => {
    const reader = new LineReader(512);
    const input = Buffer.concat([
      Buffer.from("NO"),
      Buffer.from([IAC, SB, 0x18, 0x00, 0x41, 0xf0, IAC, SE]),
      Buffer.from("OP\r\n"),
    ]);
    assert.deepEqual(reader.push(input), lines("NOOP"));
    // The same bytes, split byte by byte: the Telnet state carries across chunks.
    assert.deepEqual(feed(reader, bytewise(input)), lines("NOOP"));
  });

  test("a sub-negotiation left open ends with its line: the commands after it are read", () => {
    // No option is ever agreed to, so no subnegotiation is legitimate; unended, it swallowed the
    // rest of the connection, QUIT included.
    const input = Buffer.concat([Buffer.from([IAC, SB]), Buffer.from("NOOP\r\nPWD\r\nQUIT\r\n")]);
    assert.deepEqual(new LineReader(512).push(input), lines("", "PWD", "QUIT"));
    assert.deepEqual(feed(new LineReader(512), bytewise(input)), lines("", "PWD", "QUIT"));
  });

  test("IAC IAC is one literal 0xFF byte", () => {
    const reader = new LineReader(512);
    // 0xFF alone is not UTF-8 (so it reads as a NUL): exactly one NUL proves exactly one byte was kept.
    const input = Buffer.concat([Buffer.from("A"), Buffer.from([IAC, IAC]), Buffer.from("B\r\n")]);
    assert.deepEqual(reader.push(input), lines("A\u0000B"));
    assert.deepEqual(feed(reader, bytewise(input)), lines("A\u0000B"));
    // Two escaped 0xFF bytes in a row: neither is taken for the start of a command.
    const twice = Buffer.concat([Buffer.from([IAC, IAC, IAC, IAC]), Buffer.from("\r\n")]);
    assert.deepEqual(reader.push(twice), lines("\u0000\u0000"));
  });

  test("bytes that are not UTF-8 read as NUL (no path may hold one); U+FFFD sent as UTF-8 stays", () => {
    const reader = new LineReader(512);
    assert.deepEqual(reader.push(Buffer.from("MKD caf\u00e9\r\n", "latin1")), lines("MKD caf\u0000"));
    assert.deepEqual(reader.push(Buffer.from("MKD caf\ufffd\r\n", "utf8")), lines("MKD caf\ufffd"));
  });

  test("an over-long line gives one too-long event, then the next line is parsed normally", () => {
    const max = 512;
    const reader = new LineReader(max);
    const long = Buffer.alloc(max * 10, 0x41);
    const events = feed(reader, [long.subarray(0, 700), long.subarray(700, 3000), long.subarray(3000), Buffer.from("\r\nNOOP\r\n")]);
    assert.deepEqual(events, [{ kind: "too-long" }, ...lines("NOOP")]);
  });

  test("an over-long line fed byte by byte still gives exactly one too-long event", () => {
    const max = 512;
    const reader = new LineReader(max);
    const input = Buffer.concat([Buffer.alloc(max + 100, 0x42), Buffer.from("\r\nPWD\r\n")]);
    assert.deepEqual(feed(reader, bytewise(input)), [{ kind: "too-long" }, ...lines("PWD")]);
  });

  test("a line exactly at the limit is accepted; one byte more is too long", () => {
    const max = 512;
    const reader = new LineReader(max);
    // The limit counts the bytes before LF (CR included).
    const exact = "x".repeat(max - 1);
    assert.deepEqual(reader.push(Buffer.from(exact + "\r\n")), lines(exact));
    assert.deepEqual(reader.push(Buffer.from("y".repeat(max + 1) + "\n")), [{ kind: "too-long" }]);
    assert.deepEqual(reader.push(Buffer.from("QUIT\r\n")), lines("QUIT"));
  });
});
