/**
 * Wildcards in LIST/NLST/STAT arguments (`*.txt`, `img?.jpg`), as shells and ftp clients send
 * them. Matching is the two-pointer algorithm with a single backtrack point: O(name × pattern)
 * at worst, never exponential, and the number of `*` is capped (the glob DoS class, CVE-2010-2632);
 * a listing's matching is bounded too ({@link WildcardFilter}).
 */

export const MAX_GLOB_STARS = 8;

export function hasWildcard(name: string): boolean {
  return name.includes("*") || name.includes("?");
}

/**
 * True when `name` matches `pattern` (`*` any run, `?` one character, no brackets). With `budget`,
 * each step of the match is taken from `budget.steps`, and a match that runs it out throws
 * {@link WildcardTooCostlyError}.
 */
export function globMatch(pattern: string, name: string, budget?: { steps: number }): boolean {
  let p = 0;
  let n = 0;
  let starP = -1;
  let starN = 0;
  while (n < name.length) {
    if (budget && --budget.steps < 0) throw new WildcardTooCostlyError();
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

export class WildcardTooCostlyError extends Error {
  constructor() {
    super("wildcard pattern too costly to match");
    this.name = "WildcardTooCostlyError";
  }
}

/** Steps any listing may take, whatever it matches. */
const BASE_STEPS = 1_000_000;
/** Steps each name examined adds, per character of name and pattern: a linear match, several times over. */
const STEPS_PER_CHARACTER = 8;

/**
 * One listing's wildcard: names are short, but a directory holds many, and a pattern can make each
 * match cost name × pattern steps (`*aaaa…ab*` against long names of a's). The steps allowed grow
 * with what a linear match of each name examined would take, so an ordinary pattern never runs out,
 * and a costly one is refused ({@link WildcardTooCostlyError}) instead of keeping the node busy.
 */
export class WildcardFilter {
  private readonly budget = { steps: BASE_STEPS };

  constructor(readonly pattern: string) {}

  matches(name: string): boolean {
    this.budget.steps += STEPS_PER_CHARACTER * (name.length + this.pattern.length);
    return globMatch(this.pattern, name, this.budget);
  }
}
