import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { Readable, type Transform } from "node:stream";
import { AsciiDecoder, AsciiEncoder } from "../../src/data/ascii.js";
import { prng } from "../helpers/prng.js";

/** Runs `chunks` through a fresh transform and returns the output. */
async function run(transform: Transform, chunks: (string | Buffer)[]): Promise<string> {
  const out: Buffer[] = [];
  const done = new Promise<void>((resolve, reject) => {
    transform.on("data", (b: Buffer) => out.push(b));
    transform.on("end", resolve);
    transform.on("error", reject);
  });
  for (const c of chunks) transform.write(typeof c === "string" ? Buffer.from(c, "latin1") : c);
  transform.end();
  await done;
  return Buffer.concat(out).toString("latin1");
}

const encode = (...chunks: string[]) => run(new AsciiEncoder(), chunks);
const decode = (...chunks: string[]) => run(new AsciiDecoder(), chunks);

/** Reference semantics. */
const refEncode = (s: string) => s.replace(/(?<!\r)\n/g, "\r\n");
const refDecode = (s: string) => s.replace(/\r\n/g, "\n");

function randomSplit(s: string, rand: () => number): string[] {
  const parts: string[] = [];
  let i = 0;
  while (i < s.length) {
    const n = 1 + Math.floor(rand() * 4);
    parts.push(s.slice(i, i + n));
    i += n;
  }
  return parts;
}

describe("AsciiEncoder (LF → CRLF, downloads)", () => {
  test("converts bare LF", async () => {
    assert.equal(await encode("a\nb\n"), "a\r\nb\r\n");
    assert.equal(await encode("\n\n"), "\r\n\r\n");
  });

  test("leaves an existing CRLF untouched", async () => {
    assert.equal(await encode("a\r\nb\r\n"), "a\r\nb\r\n");
    assert.equal(await encode("mixed\r\nand\nlines\r\n"), "mixed\r\nand\r\nlines\r\n");
  });

  test("keeps a lone CR", async () => {
    assert.equal(await encode("a\rb"), "a\rb");
    assert.equal(await encode("a\r\rb\n"), "a\r\rb\r\n");
  });

  test("a CRLF split across chunks is not doubled", async () => {
    assert.equal(await encode("a\r", "\nb"), "a\r\nb");
    assert.equal(await encode("a\r", "", "\nb"), "a\r\nb");
  });

  test("an LF at the start of a chunk after a non-CR gets its CR", async () => {
    assert.equal(await encode("a", "\nb"), "a\r\nb");
    assert.equal(await encode("\n", "\n"), "\r\n\r\n");
  });

  test("passes binary-looking bytes through", async () => {
    const bytes = Buffer.from([0, 1, 0xff, 0x0a, 0x80]);
    assert.deepEqual(
      Buffer.from(await run(new AsciiEncoder(), [bytes]), "latin1"),
      Buffer.from([0, 1, 0xff, 0x0d, 0x0a, 0x80]),
    );
  });

  test("any chunking gives the same result as the reference (seeded)", async () => {
    const rand = prng(12345);
    const alphabet = ["a", "\r", "\n", "b"];
    for (let round = 0; round < 200; round++) {
      let s = "";
      const len = Math.floor(rand() * 40);
      for (let i = 0; i < len; i++) s += alphabet[Math.floor(rand() * alphabet.length)];
      assert.equal(await run(new AsciiEncoder(), randomSplit(s, rand)), refEncode(s), JSON.stringify(s));
    }
  });
});

describe("AsciiDecoder (CRLF → LF, uploads)", () => {
  test("converts CRLF", async () => {
    assert.equal(await decode("a\r\nb\r\n"), "a\nb\n");
  });

  test("leaves a bare LF alone", async () => {
    assert.equal(await decode("a\nb"), "a\nb");
  });

  test("keeps a lone CR, mid-chunk and at the end of the stream", async () => {
    assert.equal(await decode("a\rb"), "a\rb");
    assert.equal(await decode("a\r"), "a\r");
    assert.equal(await decode("\r\r\n"), "\r\n");
  });

  test("a CRLF split across chunks becomes one LF", async () => {
    assert.equal(await decode("a\r", "\nb"), "a\nb");
    assert.equal(await decode("a\r", "\n"), "a\n");
    assert.equal(await decode("\r", "\n", "\r", "\n"), "\n\n");
  });

  test("a CR at the end of a chunk not followed by LF is kept", async () => {
    assert.equal(await decode("a\r", "b"), "a\rb");
    assert.equal(await decode("a\r", "\r", "\n"), "a\r\n");
    assert.equal(await decode("a\r", "\r"), "a\r\r");
  });

  test("byte-by-byte input gives the same result as one chunk", async () => {
    const s = "x\r\ny\r\r\nz\rw\n\r";
    assert.equal(await decode(...s.split("")), refDecode(s));
    assert.equal(await decode(s), refDecode(s));
  });

  test("any chunking gives the same result as the reference (seeded)", async () => {
    const rand = prng(987654);
    const alphabet = ["a", "\r", "\n", "b"];
    for (let round = 0; round < 200; round++) {
      let s = "";
      const len = Math.floor(rand() * 40);
      for (let i = 0; i < len; i++) s += alphabet[Math.floor(rand() * alphabet.length)];
      assert.equal(await run(new AsciiDecoder(), randomSplit(s, rand)), refDecode(s), JSON.stringify(s));
    }
  });

  test("decode(encode(x)) restores text that has no CR", async () => {
    const text = "line one\nline two\n\nlast";
    const wire = await encode(text);
    assert.equal(await decode(wire), text);
    // And through a real pipeline with a Readable source.
    const piped = await new Promise<string>((resolve, reject) => {
      const out: Buffer[] = [];
      Readable.from([Buffer.from(wire)])
        .pipe(new AsciiDecoder())
        .on("data", (b: Buffer) => out.push(b))
        .on("end", () => resolve(Buffer.concat(out).toString()))
        .on("error", reject);
    });
    assert.equal(piped, text);
  });
});
