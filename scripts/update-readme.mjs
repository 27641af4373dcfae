// Regenerates README.md's configuration reference from the schema (run after `npm run build`;
// test/docs/readme.test.ts fails while the two differ).
import { readFileSync, writeFileSync } from "node:fs";
import { formatConfigReference } from "../dist/src/config/reference.js";

const file = new URL("../README.md", import.meta.url);
const readme = readFileSync(file, "utf8");
const start = readme.indexOf("\n", readme.indexOf("<!-- config-reference:start")) + 1;
const end = readme.indexOf("<!-- config-reference:end -->");
if (start <= 0 || end < start) throw new Error("README.md lacks the config-reference markers");
writeFileSync(file, readme.slice(0, start) + formatConfigReference() + readme.slice(end));
console.log("README.md configuration reference updated");
