/**
 * Summarises V8 CPU profiles (`node --cpu-prof`): self time by function and by module, as
 * Markdown. Usable alone: `node dist/bench/profile.js FILE.cpuprofile... [--top N]`.
 */
import { existsSync, readFileSync } from "node:fs";
import { dirname, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
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

const BASE64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/** Decoded `mappings` of a source map: per generated line, [generated column, source, original line] segments. */
type LineMap = Array<Array<[number, number, number]>>;
const sourceMaps = new Map<string, { sources: string[]; lines: LineMap } | null>();

function loadSourceMap(jsPath: string): { sources: string[]; lines: LineMap } | null {
  if (sourceMaps.has(jsPath)) return sourceMaps.get(jsPath)!;
  let result: { sources: string[]; lines: LineMap } | null = null;
  const mapPath = `${jsPath}.map`;
  if (existsSync(mapPath)) {
    const map = JSON.parse(readFileSync(mapPath, "utf8")) as { sources: string[]; mappings: string };
    const lines: LineMap = [];
    let source = 0;
    let origLine = 0;
    for (const lineText of map.mappings.split(";")) {
      const segments: Array<[number, number, number]> = [];
      let column = 0;
      for (const seg of lineText.split(",")) {
        if (!seg) continue;
        const values: number[] = [];
        let value = 0;
        let shift = 0;
        for (const ch of seg) {
          const digit = BASE64.indexOf(ch);
          value += (digit & 31) << shift;
          if (digit & 32) shift += 5;
          else {
            values.push(value & 1 ? -(value >>> 1) : value >>> 1);
            value = 0;
            shift = 0;
          }
        }
        column += values[0];
        if (values.length >= 4) {
          source += values[1];
          origLine += values[2];
          segments.push([column, source, origLine]);
        }
      }
      lines.push(segments);
    }
    result = { sources: map.sources.map((s) => resolve(dirname(jsPath), s)), lines };
  }
  sourceMaps.set(jsPath, result);
  return result;
}

/** A compiled project file's position mapped back to its TypeScript source (through its .map), 1-based line. */
function originalPosition(jsPath: string, line: number, column: number): { path: string; line: number } | null {
  const map = loadSourceMap(jsPath);
  const segments = map?.lines[line];
  if (!map || !segments || segments.length === 0) return null;
  let best = segments[0];
  for (const s of segments) if (s[0] <= column) best = s;
  return { path: map.sources[best[1]], line: best[2] + 1 };
}

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
    const { functionName, url, lineNumber, columnNumber } = byId.get(id)!.callFrame;
    totalUs += us;
    if (functionName === "(idle)") {
      idleUs += us;
      continue;
    }
    const module = moduleOf(url, functionName);
    let where = url ? `${module}:${lineNumber + 1}` : module;
    if (url.startsWith("file://") && !module.startsWith("npm:")) {
      const original = originalPosition(fileURLToPath(url), lineNumber, columnNumber);
      if (original) where = `${relative(repoRoot, original.path)}:${original.line}`;
    }
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
  if (args.length === 0 || args.includes("--help") || !Number.isInteger(top) || top < 1) {
    process.stderr.write("usage: node dist/bench/profile.js FILE.cpuprofile... [--top N]\n");
    process.exit(args.includes("--help") ? 0 : 2);
  }
  for (const file of args) {
    if (!existsSync(file)) {
      process.stderr.write(`profile: no such file: ${file}\n`);
      process.exit(1);
    }
    process.stdout.write(formatProfileSummary(file, summarizeProfile(file), top) + "\n");
  }
}
