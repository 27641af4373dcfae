// Puts a benchmark result (.bench/results.md, or the file given) into README.md's Benchmarks
// section: its table, notes and machine facts replace the previous ones, and the sentence naming the run is
// rewritten from the result's facts. The prose after it ("What it shows") stays the author's.
import { readFileSync, writeFileSync } from "node:fs";

const results = readFileSync(process.argv[2] ?? ".bench/results.md", "utf8");
const file = new URL("../README.md", import.meta.url);
let readme = readFileSync(file, "utf8");

const table = results.split("\n").filter((line) => line.startsWith("|")).join("\n");
const notes = /^Notes:\n\n((?:\d+\. .*\n)+)/m.exec(results)?.[1] ?? "";
// The machine's facts and what was not measured, as the run printed them under its table.
const facts = ["Not measured", "Machine"].map((heading) => new RegExp(`^${heading}:\\n\\n((?:- .*\\n)+)`, "m").exec(results)).filter(Boolean);
const commit = /edgeftp at git (\w+)/.exec(results)?.[1];
const run = /Benchmark wall time: ([\d.]+ min); command: `([^`]*)`/.exec(results);
const start = readme.indexOf("| workload | **edgeftp**");
const end = readme.indexOf("What it shows");
if (!commit || !run || start < 0 || end < start) throw new Error("unexpected results or README layout");

readme =
  readme.slice(0, start) +
  `${table}\n\n${notes ? `Notes:\n\n${notes}\n` : ""}${facts.map((m) => `${m[0].split(":")[0]}:\n\n${m[1]}\n`).join("")}` +
  readme.slice(end);
readme = readme.replace(
  /Latest full run \(`[^`]*`, [\d.]+ min, edgeftp at \w+\):/,
  `Latest full run (\`${run[2].trim()}\`, ${run[1]}, edgeftp at ${commit}):`,
);
writeFileSync(file, readme);
console.log(`README.md benchmark table replaced (edgeftp at ${commit})`);
