import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { formatReply, quotePath, Reply } from "../../src/protocol/replies.js";

/** Every line of a formatted reply must end with CRLF, and CR/LF must appear nowhere else. */
function assertFraming(wire: string): string[] {
  assert.ok(wire.endsWith("\r\n"), `reply must end with CRLF: ${JSON.stringify(wire)}`);
  const lines = wire.slice(0, -2).split("\r\n");
  for (const line of lines) assert.doesNotMatch(line, /[\r\n]/, `stray CR/LF in ${JSON.stringify(line)}`);
  return lines;
}

describe("formatReply", () => {
  test("single line: code, space, text, CRLF", () => {
    assert.equal(formatReply(200, "NOOP ok."), "200 NOOP ok.\r\n");
    assert.equal(formatReply(Reply.ClosingControl, "Goodbye."), "221 Goodbye.\r\n");
    assert.equal(formatReply(230, ["Only one line."]), "230 Only one line.\r\n");
  });

  test("multi-line: code-hyphen first, code-space last, inner lines as they are", () => {
    assert.equal(
      formatReply(211, ["Features:", " EPSV", " UTF8", "End"]),
      "211-Features:\r\n EPSV\r\n UTF8\r\n211 End\r\n",
    );
    assert.equal(formatReply(214, ["first", "last"]), "214-first\r\n214 last\r\n");
  });

  test("an inner line starting with a digit is indented so it cannot end the reply", () => {
    const wire = formatReply(211, ["Status:", "226 looks like a final line", "211 so does this", "42", "End."]);
    assert.equal(wire, "211-Status:\r\n 226 looks like a final line\r\n 211 so does this\r\n 42\r\n211 End.\r\n");
    const lines = assertFraming(wire);
    // Only the last line may begin with `211 `.
    assert.deepEqual(
      lines.map((l) => /^\d{3} /.test(l)),
      [false, false, false, false, true],
    );
  });

  test("other control characters become ? (no terminal escape sequences reach the client)", () => {
    assert.equal(formatReply(331, "Password required for ab\u001b[2J\u0007\u0000x."), "331 Password required for ab?[2J??x.\r\n");
    assert.equal(formatReply(211, ["Status:", "tab\tkept, DEL\u007f not", "End"]), "211-Status:\r\ntab\tkept, DEL? not\r\n211 End\r\n");
    assert.equal(formatReply(550, "CSI \u009b2J, é kept"), "550 CSI ?2J, é kept\r\n");
  });

  test("CR and LF in the text are sanitised (no reply injection)", () => {
    const single = formatReply(550, "/a\r\n230 Login successful.\r\nb: No such file.");
    assert.equal(single, "550 /a  230 Login successful.  b: No such file.\r\n");
    assertFraming(single);
    assert.equal(formatReply(550, "bare\nLF and bare\rCR"), "550 bare LF and bare CR\r\n");

    const multi = formatReply(213, ["Status follows:", "a\r\n213 fake end", "x\ry", "End\n226 x"]);
    const lines = assertFraming(multi);
    assert.equal(lines.length, 4);
    assert.equal(lines[0], "213-Status follows:");
    assert.equal(lines[1], "a  213 fake end");
    assert.equal(lines[2], "x y");
    assert.equal(lines[3], "213 End 226 x");
  });
});

describe("quotePath", () => {
  test("encloses in double quotes", () => {
    assert.equal(quotePath("/"), '"/"');
    assert.equal(quotePath("/a b/c"), '"/a b/c"');
  });

  test("doubles embedded double quotes (RFC 959 Appendix II)", () => {
    assert.equal(quotePath('/a"b'), '"/a""b"');
    assert.equal(quotePath('/"quoted"/x""y'), '"/""quoted""/x""""y"');
  });

  test("a 257 reply with a quoted path round-trips through the RFC 959 parsing rule", () => {
    const path = '/we"ird/"dir"';
    const wire = formatReply(Reply.PathCreated, `${quotePath(path)} created.`);
    const m = /^257 "((?:[^"]|"")*)"/.exec(wire);
    assert.ok(m, wire);
    assert.equal(m[1].replace(/""/g, '"'), path);
  });
});
