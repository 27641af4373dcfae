import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { StorageError } from "../../src/storage/types.js";
import {
  joinVirtual,
  resolveVirtualPath,
  virtualBasename,
  virtualDirname,
} from "../../src/storage/virtual-path.js";

function isInvalidPath(err: unknown): boolean {
  return err instanceof StorageError && err.code === "invalid-path";
}

describe("resolveVirtualPath", () => {
  test("resolves relative arguments against the cwd", () => {
    assert.equal(resolveVirtualPath("/", "a"), "/a");
    assert.equal(resolveVirtualPath("/a/b", "c/d"), "/a/b/c/d");
    assert.equal(resolveVirtualPath("/a/b", ".."), "/a");
    assert.equal(resolveVirtualPath("/a/b", "../c"), "/a/c");
    assert.equal(resolveVirtualPath("/a/b", ""), "/a/b");
    assert.equal(resolveVirtualPath("/a/b", "."), "/a/b");
  });

  test("absolute arguments ignore the cwd", () => {
    assert.equal(resolveVirtualPath("/a/b", "/x/y"), "/x/y");
    assert.equal(resolveVirtualPath("/a/b", "/"), "/");
  });

  test("normalises slashes, dots and trailing slashes", () => {
    assert.equal(resolveVirtualPath("/", "//a///b//"), "/a/b");
    assert.equal(resolveVirtualPath("/", "./a/./b/."), "/a/b");
    assert.equal(resolveVirtualPath("/", "a/b/../c/"), "/a/c");
    assert.equal(resolveVirtualPath("/", "///"), "/");
  });

  test("clamps .. at the root", () => {
    assert.equal(resolveVirtualPath("/", "../../etc/passwd"), "/etc/passwd");
    assert.equal(resolveVirtualPath("/a", "../../../etc/passwd"), "/etc/passwd");
    assert.equal(resolveVirtualPath("/", "/../.."), "/");
    assert.equal(resolveVirtualPath("/x", "a/../../b"), "/b");
    assert.equal(resolveVirtualPath("/", "a/../../b"), "/b");
    assert.equal(resolveVirtualPath("/a/b", "/../../.."), "/");
  });

  test("backslashes are part of a name, not separators", () => {
    assert.equal(resolveVirtualPath("/", "..\\..\\windows"), "/..\\..\\windows");
    assert.equal(resolveVirtualPath("/d", "..\\..\\etc"), "/d/..\\..\\etc");
    assert.equal(resolveVirtualPath("/", "a\\b"), "/a\\b");
  });

  test("percent-encoding is not decoded", () => {
    assert.equal(resolveVirtualPath("/", "%2e%2e/%2e%2e"), "/%2e%2e/%2e%2e");
    assert.equal(resolveVirtualPath("/d", "%2e%2e%2f%2e%2e%2fetc"), "/d/%2e%2e%2f%2e%2e%2fetc");
  });

  test("keeps unusual but legal names", () => {
    assert.equal(resolveVirtualPath("/", "...") , "/...");
    assert.equal(resolveVirtualPath("/", "a b/ c "), "/a b/ c ");
    assert.equal(resolveVirtualPath("/", "é/日本"), "/é/日本");
  });

  test("rejects NUL, CR, LF, other C0 controls and DEL; TAB is part of a name", () => {
    for (const bad of ["a\0b", "a\r", "\nb", "x\r\nDELE y", "\u001b[2J", "del\u007f", "/a/\0/.."]) {
      assert.throws(() => resolveVirtualPath("/", bad), isInvalidPath, JSON.stringify(bad));
    }
    assert.equal(resolveVirtualPath("/d", "tab\there"), "/d/tab\there");
  });

  test("the rejection message does not echo the argument", () => {
    assert.throws(
      () => resolveVirtualPath("/", "x\r\n250 fake"),
      (err: unknown) => isInvalidPath(err) && !(err as Error).message.includes("fake"),
    );
  });
});

describe("virtual path helpers", () => {
  test("virtualBasename", () => {
    assert.equal(virtualBasename("/"), "/");
    assert.equal(virtualBasename("/a"), "a");
    assert.equal(virtualBasename("/a/b.txt"), "b.txt");
  });

  test("virtualDirname", () => {
    assert.equal(virtualDirname("/"), "/");
    assert.equal(virtualDirname("/a"), "/");
    assert.equal(virtualDirname("/a/b"), "/a");
    assert.equal(virtualDirname("/a/b/c"), "/a/b");
  });

  test("joinVirtual", () => {
    assert.equal(joinVirtual("/", "a"), "/a");
    assert.equal(joinVirtual("/a", "b"), "/a/b");
    assert.equal(joinVirtual(virtualDirname("/a/b"), virtualBasename("/a/b")), "/a/b");
  });
});
