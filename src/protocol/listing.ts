/**
 * Wire formats for directory listings and times: `ls -l` lines for LIST (the de-facto format
 * every client parses), MLSx facts (RFC 3659 §7) and the YYYYMMDDHHMMSS[.sss] time-val (§2.3).
 */
import type { FileInfo } from "../storage/types.js";

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const SIX_MONTHS_MS = 182 * 24 * 3600 * 1000;

const pad2 = (n: number) => (n < 10 ? `0${n}` : `${n}`);

/** RFC 3659 time-val in UTC, with milliseconds only when there are some. */
export function formatTimeVal(date: Date): string {
  const base =
    `${date.getUTCFullYear()}${pad2(date.getUTCMonth() + 1)}${pad2(date.getUTCDate())}` +
    `${pad2(date.getUTCHours())}${pad2(date.getUTCMinutes())}${pad2(date.getUTCSeconds())}`;
  const ms = date.getUTCMilliseconds();
  return ms ? `${base}.${String(ms).padStart(3, "0")}` : base;
}

/** Parses an RFC 3659 time-val (UTC); null when malformed or out of range. */
export function parseTimeVal(text: string): Date | null {
  const m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(?:\.(\d{1,3}))?$/.exec(text);
  if (!m) return null;
  const [y, mo, d, h, mi, s] = m.slice(1, 7).map(Number);
  const ms = m[7] ? Number(m[7].padEnd(3, "0")) : 0;
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60) return null;
  const date = new Date(Date.UTC(y, mo - 1, d, h, mi, s, ms));
  return Number.isNaN(date.getTime()) ? null : date;
}

function modeString(info: FileInfo): string {
  const kind = info.type === "dir" ? "d" : info.type === "link" ? "l" : "-";
  const mode = info.mode ?? (info.type === "dir" ? 0o755 : 0o644);
  let out = kind;
  for (let shift = 6; shift >= 0; shift -= 3) {
    const bits = (mode >> shift) & 7;
    out += (bits & 4 ? "r" : "-") + (bits & 2 ? "w" : "-") + (bits & 1 ? "x" : "-");
  }
  return out;
}

/** Names cannot hold CR or LF on the wire: a listing line would split. */
function wireName(name: string): string {
  return name.replace(/[\r\n]/g, "?");
}

/** One `ls -l` style line (without CRLF), dated like ls: time for recent files, year for older. */
export function formatListLine(info: FileInfo, now: number): string {
  const d = info.mtime;
  const recent = Math.abs(now - d.getTime()) < SIX_MONTHS_MS;
  const when = `${MONTHS[d.getUTCMonth()]} ${String(d.getUTCDate()).padStart(2, " ")} ${
    recent ? `${pad2(d.getUTCHours())}:${pad2(d.getUTCMinutes())}` : ` ${d.getUTCFullYear()}`
  }`;
  return `${modeString(info)} 1 ftp ftp ${String(info.size).padStart(12, " ")} ${when} ${wireName(info.name)}`;
}

/** What the session may do with an entry, as MLSx `perm` letters (RFC 3659 §7.5.5). */
export interface PermFlags {
  read: boolean;
  write: boolean;
  delete: boolean;
  rename: boolean;
  mkdir: boolean;
  list: boolean;
}

function permFact(info: FileInfo, p: PermFlags): string {
  let perm = "";
  if (info.type === "dir") {
    if (p.write) perm += "c";
    if (p.delete) perm += "d";
    if (p.list) perm += "el";
    if (p.rename) perm += "f";
    if (p.mkdir) perm += "m";
    if (p.delete) perm += "p";
  } else {
    if (p.write) perm += "aw";
    if (p.delete) perm += "d";
    if (p.rename) perm += "f";
    if (p.read) perm += "r";
  }
  return perm;
}

/** Every fact we can emit (RFC 3659 §7.5), in the order they are written. */
export const MLSX_FACTS = ["type", "size", "modify", "perm", "unix.mode"] as const;

/** The MLSx fact line for an entry, with the facts the client selected: `type=file;size=…; name`. */
export function formatMlsxLine(info: FileInfo, perms: PermFlags, facts: ReadonlySet<string>): string {
  let line = "";
  if (facts.has("type")) line += `type=${info.type === "dir" ? "dir" : info.type === "file" ? "file" : "OS.unix=" + info.type};`;
  if (facts.has("size") && info.type !== "dir") line += `size=${info.size};`;
  if (facts.has("modify")) line += `modify=${formatTimeVal(info.mtime)};`;
  if (facts.has("perm")) line += `perm=${permFact(info, perms)};`;
  if (facts.has("unix.mode") && info.mode !== undefined) line += `unix.mode=0${(info.mode & 0o7777).toString(8)};`;
  return `${line} ${wireName(info.name)}`;
}

/** FEAT line for MLST: facts we emit, `*` marking those on by default. */
export const MLST_FEAT = `MLST ${MLSX_FACTS.map((f) => `${f}*;`).join("")}`;
