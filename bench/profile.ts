/**
 * Summarises V8 CPU profiles (`node --cpu-prof`): self time by function and by module, as
 * Markdown. Usable alone: `node dist/bench/profile.js FILE.cpuprofile... [--top N]`.
 */
import { readFileSync } from "node:fs";
import { relative } from "node:path";
import { fileURLToPath } from "node:url";

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

const repoRoot = fileURLToPath(new URL("../..", import.meta.url));

/** Where a frame's code lives: a project file, a package, Node's internals, or V8's pseudo-frames. */
function moduleOf(url: string, functionName: string): string {
  if (!url) return functionName.startsWith("(") ? functionName : "(native)";
  const path = url.startsWith("file://") ? fileURLToPath(url) : url;
  const nm = path.lastIndexOf("/node_modules/");
  if (nm >= 0) {
    const rest = path.slice(nm + "/node_modules/".length).split("/");
    return `npm:${rest[0].startsWith("@") ? `${rest[0]}/${rest[1]}` : rest[0]}`;
  }
  if (path.startsWith("node:")) return path;
  if (path.startsWith(repoRoot)) return relative(repoRoot, path).replace(/^dist\//, "").replace(/\.js$/, ".ts");
  return path;
}

export interface ProfileSummary {
  totalMs: number;
  idleMs: number;
  functions: Array<{ name: string; where: string; ms: number }>;
  modules: Array<{ module: string; ms: number }>;
}

export function summarizeProfile(file: string): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, "utf8")) as CpuProfile;
  const byId = new Map<number, ProfileNode>();
  for (const n of profile.nodes) byId.set(n.id, n);
  const selfUs = new Map<number, number>();
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i];
    selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  }
  const fn = new Map<string, { name: string; where: string; us: number }>();
  const mod = new Map<string, number>();
  let totalUs = 0;
  let idleUs = 0;
  for (const [id, us] of selfUs) {
    const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
    totalUs += us;
    if (functionName === "(idle)") {
      idleUs += us;
      continue;
    }
    const module = moduleOf(url, functionName);
    const where = url ? `${module}:${lineNumber + 1}` : module;
    const name = functionName || "(anonymous)";
    const key = `${name}@${where}`;
    const entry = fn.get(key) ?? { name, where, us: 0 };
    entry.us += us;
    fn.set(key, entry);
    mod.set(module, (mod.get(module) ?? 0) + us);
  }
  return {
    totalMs: totalUs / 1000,
    idleMs: idleUs / 1000,
    functions: [...fn.values()].sort((a, b) => b.us - a.us).map((e) => ({ name: e.name, where: e.where, ms: e.us / 1000 })),
    modules: [...mod.entries()].sort((a, b) => b[1] - a[1]).map(([module, us]) => ({ module, ms: us / 1000 })),
  };
}

/** Markdown: the top `top` functions and modules by self time, as shares of the busy (non-idle) time. */
export function formatProfileSummary(title: string, s: ProfileSummary, top = 15): string {
  const busy = s.totalMs - s.idleMs;
  const pct = (ms: number) => `${((100 * ms) / Math.max(busy, 1e-9)).toFixed(1)} %`;
  const lines = [
    `#### ${title}`,
    "",
    `Profiled ${(s.totalMs / 1000).toFixed(1)} s, busy ${(busy / 1000).toFixed(1)} s (${((100 * busy) / Math.max(s.totalMs, 1e-9)).toFixed(0)} % of the main thread).`,
    "",
    "| self time | share of busy | function | where |",
    "| ---: | ---: | --- | --- |",
    ...s.functions.slice(0, top).map((f) => `| ${f.ms.toFixed(0)} ms | ${pct(f.ms)} | \`${f.name}\` | ${f.where} |`),
    "",
    "| self time | share of busy | module |",
    "| ---: | ---: | --- |",
    ...s.modules.slice(0, 10).map((m) => `| ${m.ms.toFixed(0)} ms | ${pct(m.ms)} | ${m.module} |`),
    "",
  ];
  return lines.join("\n");
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const args = process.argv.slice(2);
  const topAt = args.indexOf("--top");
  const top = topAt >= 0 ? Number(args.splice(topAt, 2)[1]) : 15;
  for (const file of args) process.stdout.write(formatProfileSummary(file, summarizeProfile(file), top) + "\n");
}
