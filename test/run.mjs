// Runs every compiled test file (dist/test/**/*.test.js) with node's test runner, whose summary
// (tests / pass / fail) ends the output. Extra arguments are passed to `node --test`, e.g.
// `npm test -- --test-name-pattern=EPSV`. A filter on file names: EDGEFTP_TEST_FILES=storage.
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { spawnSync } from "node:child_process";

function findTests(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...findTests(p));
    else if (name.endsWith(".test.js")) out.push(p);
  }
  return out;
}

const filter = process.env.EDGEFTP_TEST_FILES;
const files = findTests("dist/test")
  .filter((f) => !filter || f.includes(filter))
  .sort();
if (files.length === 0) {
  console.error("no test files found under dist/test (did the build run?)");
  process.exit(1);
}
const result = spawnSync(
  process.execPath,
  ["--test", "--test-concurrency=2", "--test-timeout=120000", ...process.argv.slice(2), ...files],
  { stdio: "inherit" },
);
process.exit(result.status ?? 1);
