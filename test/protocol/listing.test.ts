import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { formatTimeVal, listLineFormatter, mlsxLineFormatter, MLSX_FACTS, nlstLine, parseTimeVal, type PermFlags } from "../../src/protocol/listing.js";
import type { FileInfo } from "../../src/storage/types.js";

const NOW = Date.UTC(2026, 10, 29, 12, 0, 0);
const ALL: PermFlags = { read: true, write: true, delete: true, rename: true, mkdir: true, list: true };
const NONE: PermFlags = { read: false, write: false, delete: false, rename: false, mkdir: false, list: false };
const DEFAULT_FACTS: ReadonlySet<string> = new Set(MLSX_FACTS);

const file = (over: Partial<FileInfo> = {}): FileInfo => ({
  name: "a.txt",
  type: "file",
  size: 1234,
  mtime: new Date(Date.UTC(2026, 10, 3, 9, 5, 7)),
  mode: 0o644,
  ...over,
});

describe("LIST lines", () => {
  test("recent entries show the time, older ones (either side of six months) the year", () => {
    const format = listLineFormatter(NOW);
    assert.equal(format(file()), "-rw-r--r-- 1 ftp ftp         1234 Nov  3 09:05 a.txt");
    assert.equal(format(file({ mtime: new Date(Date.UTC(2024, 0, 15, 23, 59)) })), "-rw-r--r-- 1 ftp ftp         1234 Jan 15  2024 a.txt");
    assert.equal(format(file({ mtime: new Date(Date.UTC(2027, 11, 31, 1, 2)) })), "-rw-r--r-- 1 ftp ftp         1234 Dec 31  2027 a.txt");
    // The future, even near, shows its year: a client would read "Dec 10 12:00" as last December.
    assert.equal(format(file({ mtime: new Date(Date.UTC(2026, 11, 10, 12, 0)) })), "-rw-r--r-- 1 ftp ftp         1234 Dec 10  2026 a.txt");
  });

  test("entries in the same minute or day share the date text, whatever their order", () => {
    const format = listLineFormatter(NOW);
    const times = [
      Date.UTC(2026, 10, 3, 9, 5, 7),
      Date.UTC(2026, 10, 3, 9, 5, 59),
      Date.UTC(2026, 10, 3, 9, 6, 0),
      Date.UTC(2026, 10, 3, 9, 5, 1),
      Date.UTC(2020, 1, 29, 10, 0),
      Date.UTC(2020, 1, 29, 11, 0),
      Date.UTC(2026, 10, 3, 9, 5, 1),
    ];
    assert.deepEqual(
      times.map((t) => format(file({ mtime: new Date(t) })).slice(34, 46)),
      ["Nov  3 09:05", "Nov  3 09:05", "Nov  3 09:06", "Nov  3 09:05", "Feb 29  2020", "Feb 29  2020", "Nov  3 09:05"],
    );
  });

  test("type letter and permission bits; defaults when the medium has no mode", () => {
    const format = listLineFormatter(NOW);
    assert.match(format(file({ type: "dir", mode: 0o755, size: 0 })), /^drwxr-xr-x 1 ftp ftp            0 /);
    assert.match(format(file({ type: "link", mode: 0o777, size: 0 })), /^lrwxrwxrwx /);
    assert.match(format(file({ type: "other", mode: 0o600 })), /^-rw------- /);
    assert.match(format(file({ type: "other", special: "p", mode: 0o644, size: 0 })), /^prw-r--r-- /);
    assert.match(format(file({ type: "other", special: "s", mode: 0o755, size: 0 })), /^srwxr-xr-x /);
    assert.match(format(file({ mode: 0o4751 & 0o777 })), /^-rwxr-x--x /);
    assert.match(format(file({ mode: undefined })), /^-rw-r--r-- /);
    assert.match(format(file({ type: "dir", mode: undefined })), /^drwxr-xr-x /);
  });

  test("large sizes widen the column; CR and LF in names become ?", () => {
    const format = listLineFormatter(NOW);
    assert.equal(format(file({ size: 12345678901234 })), "-rw-r--r-- 1 ftp ftp 12345678901234 Nov  3 09:05 a.txt");
    assert.equal(format(file({ name: "two\r\nlines" })), "-rw-r--r-- 1 ftp ftp         1234 Nov  3 09:05 two??lines");
    assert.equal(format(file({ name: "with space ü" })), "-rw-r--r-- 1 ftp ftp         1234 Nov  3 09:05 with space ü");
  });
});

describe("NLST lines", () => {
  test("the name alone; CR and LF become ?", () => {
    assert.equal(nlstLine("plain name.txt"), "plain name.txt");
    assert.equal(nlstLine("two\r\nlines\n"), "two??lines?");
  });
});

describe("MLSx lines", () => {
  test("every default fact, for a file and a directory", () => {
    const format = mlsxLineFormatter(ALL, DEFAULT_FACTS);
    assert.equal(format(file()), "type=file;size=1234;modify=20261103090507;perm=awdfr;unix.mode=0644; a.txt");
    assert.equal(format(file({ type: "dir", name: "sub", size: 4096, mode: 0o755 })), "type=dir;modify=20261103090507;perm=cdelfmp;unix.mode=0755; sub");
    assert.equal(format(file({ type: "link", name: "l", size: 0, mode: 0o777 })), "type=OS.unix=symlink;size=0;modify=20261103090507;perm=awdf;unix.mode=0777; l");
  });

  test("perm follows the session's permissions", () => {
    assert.equal(mlsxLineFormatter(NONE, new Set(["perm"]))(file()), "perm=; a.txt");
    assert.equal(mlsxLineFormatter(NONE, new Set(["perm"]))(file({ type: "dir" })), "perm=; a.txt");
    const readOnly = { ...NONE, read: true, list: true };
    assert.equal(mlsxLineFormatter(readOnly, new Set(["perm"]))(file()), "perm=r; a.txt");
    assert.equal(mlsxLineFormatter(readOnly, new Set(["perm"]))(file({ type: "dir" })), "perm=el; a.txt");
  });

  test("only the selected facts, and unix.mode only when known", () => {
    assert.equal(mlsxLineFormatter(ALL, new Set(["type", "size"]))(file()), "type=file;size=1234; a.txt");
    assert.equal(mlsxLineFormatter(ALL, new Set())(file()), " a.txt");
    assert.equal(mlsxLineFormatter(ALL, new Set(["unix.mode"]))(file({ mode: undefined })), " a.txt");
    assert.equal(mlsxLineFormatter(ALL, new Set(["modify"]))(file({ name: "x\ny" })), "modify=20261103090507; x?y");
  });

  test("modify keeps milliseconds when there are some, also for consecutive entries of the same second", () => {
    const format = mlsxLineFormatter(ALL, new Set(["modify"]));
    const base = Date.UTC(2026, 0, 2, 3, 4, 5);
    assert.deepEqual(
      [base + 7, base, base + 250, base + 1000, base + 7].map((t) => format(file({ mtime: new Date(t) }))),
      [
        "modify=20260102030405.007; a.txt",
        "modify=20260102030405; a.txt",
        "modify=20260102030405.250; a.txt",
        "modify=20260102030406; a.txt",
        "modify=20260102030405.007; a.txt",
      ],
    );
  });
});

describe("time-val", () => {
  test("UTC, milliseconds only when there are some", () => {
    assert.equal(formatTimeVal(new Date(Date.UTC(1999, 11, 31, 23, 59, 59))), "19991231235959");
    assert.equal(formatTimeVal(new Date(Date.UTC(2001, 0, 1, 0, 0, 0, 5))), "20010101000000.005");
  });
});

describe("parseTimeVal", () => {
  test("a valid time-val, with a fraction of any length", () => {
    assert.equal(parseTimeVal("20230228235959")?.toISOString(), "2023-02-28T23:59:59.000Z");
    assert.equal(parseTimeVal("20240229120000.5")?.toISOString(), "2024-02-29T12:00:00.500Z");
    assert.equal(parseTimeVal("20230101000000.123456")?.toISOString(), "2023-01-01T00:00:00.123Z");
    assert.equal(parseTimeVal("19690101000000")?.toISOString(), "1969-01-01T00:00:00.000Z");
    assert.equal(parseTimeVal("00500101000000")?.getUTCFullYear(), 50, "year 50, not 1950");
    // A leap second is the next second, whatever day it ends.
    assert.equal(parseTimeVal("20161231235960")?.toISOString(), "2017-01-01T00:00:00.000Z");
    assert.equal(parseTimeVal("20160630235960")?.toISOString(), "2016-07-01T00:00:00.000Z");
  });

  test("what is not a date is null, never rolled over into another one", () => {
    for (const text of ["20230230120000", "20230431000000", "20230229000000", "20231301000000", "20230100000000", "20230101240000", "2023010100000", "20230101000000.", "x"]) {
      assert.equal(parseTimeVal(text), null, text);
    }
  });
});
