import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { IpAllowList } from "../../src/guard/ip-allow-list.js";

describe("IpAllowList", () => {
  test("the default list covers IPv4 loopback (any spelling) and ::1, nothing else", () => {
    const list = IpAllowList.parse("127.0.0.0/8,::1/128");
    for (const ip of ["127.0.0.1", "127.0.0.2", "127.255.255.254", "::ffff:127.0.0.2", "::1"]) assert.equal(list.has(ip), true, ip);
    for (const ip of ["128.0.0.1", "10.0.0.1", "::2", "fe80::1", "", "not an ip"]) assert.equal(list.has(ip), false, ip);
  });

  test("an empty list allows nothing (how tests ban loopback addresses)", () => {
    const list = IpAllowList.parse("");
    assert.equal(list.has("127.0.0.1"), false);
    assert.equal(list.has("::1"), false);
  });

  test("networks of both families, with spaces", () => {
    const list = IpAllowList.parse(" 10.0.0.0/8 , 2001:db8::/32,192.0.2.7/32");
    assert.equal(list.has("10.200.1.1"), true);
    assert.equal(list.has("2001:db8:1::5"), true);
    assert.equal(list.has("2001:db9::5"), false);
    assert.equal(list.has("192.0.2.7"), true);
    assert.equal(list.has("192.0.2.8"), false);
  });

  test("a network that only looks like one is an error naming the key", () => {
    for (const bad of ["300.0.0.0/8", "10.0.0.0/33", "::1/129", "1.2.3/8"]) {
      assert.throws(() => IpAllowList.parse(bad), /bans\.allowList/, bad);
    }
  });
});
