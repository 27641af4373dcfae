import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { isIPv4 } from "node:net";
import { canonicalIp, formatPasvAddress, parseEprtArgument, parsePortArgument } from "../../src/data/addresses.js";

describe("canonicalIp", () => {
  test("IPv4-mapped IPv6 becomes plain IPv4", () => {
    assert.equal(canonicalIp("::ffff:127.0.0.1"), "127.0.0.1");
    assert.equal(canonicalIp("::FFFF:10.1.2.3"), "10.1.2.3");
  });

  test("plain IPv4 and IPv6 stay (IPv6 lower-cased)", () => {
    assert.equal(canonicalIp("192.0.2.7"), "192.0.2.7");
    assert.equal(canonicalIp("::1"), "::1");
    assert.equal(canonicalIp("2001:DB8::1"), "2001:db8::1");
  });

  test("IPv6 takes its one short spelling, whatever form it came in", () => {
    assert.equal(canonicalIp("0:0:0:0:0:0:0:1"), "::1");
    assert.equal(canonicalIp("2001:0DB8:0000:0000:0000:0000:0000:0001"), "2001:db8::1");
    assert.equal(canonicalIp("::ffff:7f00:1"), "127.0.0.1");
    assert.equal(canonicalIp("FE80:0::1%eth0"), "fe80::1%eth0");
  });

  test("a ::ffff: prefix without an IPv4 tail is not stripped", () => {
    assert.ok(!isIPv4(canonicalIp("::ffff:abcd")), canonicalIp("::ffff:abcd"));
  });

  test("missing address is the empty string", () => {
    assert.equal(canonicalIp(undefined), "");
    assert.equal(canonicalIp(""), "");
  });
});

describe("formatPasvAddress", () => {
  test("h1,h2,h3,h4,p1,p2", () => {
    assert.equal(formatPasvAddress("127.0.0.1", 50000), "127,0,0,1,195,80");
    assert.equal(formatPasvAddress("10.0.0.255", 21), "10,0,0,255,0,21");
    assert.equal(formatPasvAddress("1.2.3.4", 65535), "1,2,3,4,255,255");
  });

  test("round-trips through parsePortArgument", () => {
    for (const port of [1024, 1025, 30000, 65535]) {
      assert.deepEqual(parsePortArgument(formatPasvAddress("127.0.0.2", port)), { host: "127.0.0.2", port });
    }
  });
});

describe("parsePortArgument", () => {
  test("parses a valid argument", () => {
    assert.deepEqual(parsePortArgument("127,0,0,1,195,80"), { host: "127.0.0.1", port: 50000 });
    assert.deepEqual(parsePortArgument(" 192,168,1,2,4,0 "), { host: "192.168.1.2", port: 1024 });
  });

  test("rejects malformed arguments", () => {
    for (const bad of [
      "",
      "127,0,0,1,195",
      "127,0,0,1,195,80,1",
      "256,0,0,1,4,0",
      "127,0,0,1,256,0",
      "127,0,0,1,4,256",
      "127,0,0,1,-1,5",
      "1270,0,0,1,4,0",
      "a,b,c,d,e,f",
      "127.0.0.1,4,0",
      "127,0,0,1,4,",
      "127,,0,1,4,0",
      "127, 0,0,1,4,0",
      "0x7f,0,0,1,4,0",
      "127,0,0,1,4,0;",
    ]) {
      assert.equal(parsePortArgument(bad), null, JSON.stringify(bad));
    }
  });
});

describe("parseEprtArgument", () => {
  test("parses IPv4 and IPv6 forms", () => {
    assert.deepEqual(parseEprtArgument("|1|127.0.0.1|50000|"), { family: 4, host: "127.0.0.1", port: 50000 });
    assert.deepEqual(parseEprtArgument("|2|::1|2121|"), { family: 6, host: "::1", port: 2121 });
    assert.deepEqual(parseEprtArgument("|2|2001:DB8::5|65535|"), { family: 6, host: "2001:db8::5", port: 65535 });
  });

  test("any printable delimiter (RFC 2428 §2)", () => {
    assert.deepEqual(parseEprtArgument("!1!10.0.0.1!6000!"), { family: 4, host: "10.0.0.1", port: 6000 });
    assert.deepEqual(parseEprtArgument("#2#::1#6000#"), { family: 6, host: "::1", port: 6000 });
  });

  test("rejects malformed arguments", () => {
    for (const bad of [
      "",
      "|1|127.0.0.1|50000",
      "1|127.0.0.1|50000|",
      "|1|127.0.0.1|50000|x",
      "|1|127.0.0.1||",
      "|1|127.0.0.1|0|",
      "|1|127.0.0.1|65536|",
      "|1|127.0.0.1|123456|",
      "|1|127.0.0.1|-5|",
      "|1|127.0.0.1|5a|",
      "|3|127.0.0.1|5000|",
      "||127.0.0.1|5000|",
      "|1|127.0.0.1|5000|5000|",
      " |1| 127.0.0.1|5000|",
      "\u0000|1|127.0.0.1|5000|",
    ]) {
      assert.equal(parseEprtArgument(bad), null, JSON.stringify(bad));
    }
  });

  test("rejects an address that is not an IP of the named family", () => {
    for (const bad of [
      "|1||5000|",
      "|1|not-an-ip|5000|",
      "|1|::1|5000|",
      "|1|127.0.0.256|5000|",
      "|1|127.0.0|5000|",
      "|2|127.0.0.1|5000|",
      "|2|::g|5000|",
    ]) {
      assert.equal(parseEprtArgument(bad), null, JSON.stringify(bad));
    }
  });
});
