import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { formatConfigReference } from "../../src/config/reference.js";

const readme = readFileSync(new URL("../../../README.md", import.meta.url), "utf8");

test("README's configuration reference is the one the schema generates", () => {
  const start = readme.indexOf("<!-- config-reference:start");
  const end = readme.indexOf("<!-- config-reference:end -->");
  assert.ok(start >= 0 && end > start, "README has the config-reference markers");
  const embedded = readme.slice(readme.indexOf("\n", start) + 1, end);
  assert.equal(embedded, formatConfigReference(), "run `npm run docs` to regenerate it");
});

test("README gives the two quick-start commands and the test command CI runs", () => {
  assert.match(readme, /npm ci && npm run quickstart/);
  assert.match(readme, /npm ci && npm test/);
  assert.match(readFileSync(new URL("../../../.ci/run", import.meta.url), "utf8"), /npm ci && npm test/);
});
