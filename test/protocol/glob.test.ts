import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { globMatch, hasWildcard, MAX_GLOB_STARS, tooManyStars, WildcardFilter, WildcardTooCostlyError } from "../../src/protocol/glob.js";

describe("globMatch", () => {
  test("literal patterns match only themselves", () => {
    assert.equal(globMatch("a.txt", "a.txt"), true);
    assert.equal(globMatch("a.txt", "a.txtx"), false);
    assert.equal(globMatch("a.txt", "xa.txt"), false);
    assert.equal(globMatch("", ""), true);
    assert.equal(globMatch("", "a"), false);
  });

  test("* matches any run, including the empty one", () => {
    assert.equal(globMatch("*.txt", "a.txt"), true);
    assert.equal(globMatch("*.txt", ".txt"), true);
    assert.equal(globMatch("*.txt", "a.txt.bak"), false);
    assert.equal(globMatch("*", ""), true);
    assert.equal(globMatch("*", "anything at all"), true);
    assert.equal(globMatch("a*b*c", "abc"), true);
    assert.equal(globMatch("a*b*c", "aXXbYYc"), true);
    assert.equal(globMatch("a*b*c", "aXXbYY"), false);
    assert.equal(globMatch("a*b*c", "acb"), false);
    assert.equal(globMatch("**x**", "x"), true);
  });

  test("? matches exactly one character", () => {
    assert.equal(globMatch("img?.jpg", "img1.jpg"), true);
    assert.equal(globMatch("img?.jpg", "img.jpg"), false);
    assert.equal(globMatch("img?.jpg", "img12.jpg"), false);
    assert.equal(globMatch("?*", ""), false);
    assert.equal(globMatch("?*", "a"), true);
  });

  test("matching needs backtracking past a first candidate", () => {
    assert.equal(globMatch("*ab", "aab"), true);
    assert.equal(globMatch("*aab", "aaab"), true);
    assert.equal(globMatch("a*a*b", "aaaaab"), true);
    assert.equal(globMatch("*.tar.gz", "x.tar.tar.gz"), true);
  });

  test("is case-sensitive and treats brackets literally", () => {
    assert.equal(globMatch("*.TXT", "a.txt"), false);
    assert.equal(globMatch("[ab].txt", "a.txt"), false);
    assert.equal(globMatch("[ab].txt", "[ab].txt"), true);
  });

  test("a pathological pattern against 10k characters completes with the right answer", () => {
    const pattern = "*a*a*a*a*a*a*a*b";
    const as = "a".repeat(10_000);
    assert.equal(globMatch(pattern, as), false);
    assert.equal(globMatch(pattern, as + "b"), true);
    assert.equal(globMatch(pattern, "aaaaaab"), false); // only six a's before the b
    assert.equal(globMatch(pattern, "aaaaaaab"), true);
    assert.equal(globMatch("*?*?*?*?*?*?*?*x", "y".repeat(10_000)), false);
  });
});

describe("hasWildcard / tooManyStars", () => {
  test("hasWildcard", () => {
    assert.equal(hasWildcard("a.txt"), false);
    assert.equal(hasWildcard("*.txt"), true);
    assert.equal(hasWildcard("a?.txt"), true);
  });

  test(`more than ${MAX_GLOB_STARS} stars is too many`, () => {
    assert.equal(tooManyStars("*".repeat(MAX_GLOB_STARS)), false);
    assert.equal(tooManyStars("*".repeat(MAX_GLOB_STARS + 1)), true);
    assert.equal(tooManyStars("*a".repeat(MAX_GLOB_STARS) + "*"), true);
    assert.equal(tooManyStars("???"), false);
  });
});

describe("WildcardFilter", () => {
  test("an ordinary pattern over 200,000 names never runs out of steps", () => {
    for (const [pattern, expected] of [["*.txt", 200_000], ["img?.*", 10], ["*1*2*3*", 9_002], ["*", 200_000]] as const) {
      const filter = new WildcardFilter(pattern);
      let matched = 0;
      for (let i = 0; i < 200_000; i++) if (filter.matches(`img${i}.txt`)) matched++;
      assert.equal(matched, expected, pattern);
    }
  });

  test("a pattern whose every match costs name × pattern is refused within a few hundred names", () => {
    const filter = new WildcardFilter(`*${"a".repeat(120)}b*`);
    let examined = 0;
    assert.throws(() => {
      for (; examined < 200_000; examined++) filter.matches(`${"a".repeat(240)}${String(examined).padStart(6, "0")}`);
    }, WildcardTooCostlyError);
    assert.ok(examined < 500, `${examined} names examined before the refusal`);
  });

  test("its answers are globMatch's", () => {
    const filter = new WildcardFilter("a*b?c");
    for (const name of ["abxc", "aXXbYc", "abc", "ab", "aXbYYc"]) assert.equal(filter.matches(name), globMatch("a*b?c", name), name);
  });
});
