/**
 * Wildcards in LIST/NLST/STAT arguments (`*.txt`, `img?.jpg`), as shells and ftp clients send
 * them. Matching is the two-pointer algorithm with a single backtrack point: O(name × pattern)
 * at worst, never exponential, and the number of `*` is capped (the glob DoS class, CVE-2010-2632).
 */

export const MAX_GLOB_STARS = 8;

export function hasWildcard(name: string): boolean {
  return name.includes("*") || name.includes("?");
}

/** True when `name` matches `pattern` (`*` any run, `?` one character, no brackets). */
export function globMatch(pattern: string, name: string): boolean {
  let p = 0;
  let n = 0;
  let starP = -1;
  let starN = 0;
  while (n < name.length) {
    if (p < pattern.length && (pattern[p] === "?" || pattern[p] === name[n])) {
      p++;
      n++;
    } else if (p < pattern.length && pattern[p] === "*") {
      starP = p++;
      starN = n;
    } else if (starP >= 0) {
      p = starP + 1;
      n = ++starN;
    } else {
      return false;
    }
  }
  while (p < pattern.length && pattern[p] === "*") p++;
  return p === pattern.length;
}

export function tooManyStars(pattern: string): boolean {
  let stars = 0;
  for (const c of pattern) if (c === "*" && ++stars > MAX_GLOB_STARS) return true;
  return false;
}
