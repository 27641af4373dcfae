/**
 * Wire formats for directory listings and times: `ls -l` lines for LIST (the de-facto format
 * every client parses), MLSx facts (RFC 3659 §7) and the YYYYMMDDHHMMSS[.sss] time-val (§2.3).
 */
import type { EntryType, FileInfo } from "../storage/types.js";

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const SIX_MONTHS_MS = 182 * 24 * 3600 * 1000;
const MINUTE_MS = 60 * 1000;
const DAY_MS = 24 * 3600 * 1000;

const pad2 = (n: number) => (n < 10 ? `0${n}` : `${n}`);

/** `YYYYMMDDHHMMSS` in UTC: the time-val without its fraction. */
function timeValSeconds(date: Date): string {
  return (
    `${date.getUTCFullYear()}${pad2(date.getUTCMonth() + 1)}${pad2(date.getUTCDate())}` +
    `${pad2(date.getUTCHours())}${pad2(date.getUTCMinutes())}${pad2(date.getUTCSeconds())}`
  );
}

const timeValFraction = (ms: number) => (ms ? `.${String(ms).padStart(3, "0")}` : "");

/** RFC 3659 time-val in UTC, with milliseconds only when there are some. */
export function formatTimeVal(date: Date): string {
  return timeValSeconds(date) + timeValFraction(date.getUTCMilliseconds());
}

/**
 * Parses an RFC 3659 time-val (UTC; a fraction of any length, kept to the millisecond); null when
 * malformed or not a date (February 30 is not March 2; a second of 60 is a leap second).
 */
export function parseTimeVal(text: string): Date | null {
  const m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(?:\.(\d+))?$/.exec(text);
  if (!m) return null;
  const [y, mo, d, h, mi, s] = m.slice(1, 7).map(Number);
  const ms = m[7] ? Number(m[7].slice(0, 3).padEnd(3, "0")) : 0;
  if (mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || s > 60) return null;
  const date = new Date(Date.UTC(2000, mo - 1, d, h, mi, Math.min(s, 59), ms));
  // Date.UTC reads years 0-99 as 1900-1999: the year is set on its own.
  date.setUTCFullYear(y, mo - 1, d);
  if (date.getUTCDate() !== d || date.getUTCMonth() !== mo - 1) return null;
  // A leap second (…235960) is the next second: UTC has no name for it.
  return s === 60 ? new Date(date.getTime() + 1000) : date;
}

/** `rwxr-x---` for every permission-bit pattern, indexed by `mode & 0o777`. */
const PERMISSION_TEXT: readonly string[] = Array.from({ length: 0o1000 }, (_, mode) => {
  let text = "";
  for (let shift = 6; shift >= 0; shift -= 3) {
    const bits = (mode >> shift) & 7;
    text += (bits & 4 ? "r" : "-") + (bits & 2 ? "w" : "-") + (bits & 1 ? "x" : "-");
  }
  return text;
});

/** ls's mode column (`drwxr-xr-x`) by entry type and `mode & 0o777`: built once, not per line. */
const MODE_COLUMN: Readonly<Record<EntryType, readonly string[]>> = {
  file: PERMISSION_TEXT.map((p) => `-${p}`),
  dir: PERMISSION_TEXT.map((p) => `d${p}`),
  link: PERMISSION_TEXT.map((p) => `l${p}`),
  other: PERMISSION_TEXT.map((p) => `-${p}`),
};

function modeString(info: FileInfo): string {
  const column = MODE_COLUMN[info.type][(info.mode ?? (info.type === "dir" ? 0o755 : 0o644)) & 0o777];
  // A FIFO, socket or device says so, as ls does: not a 0-byte file a client would try to download.
  return info.special ? info.special + column.slice(1) : column;
}

/** The size column: right-aligned in 12 characters (as ls pads it), from a table of paddings. */
const PADDING = Array.from({ length: 13 }, (_, n) => " ".repeat(n));
function sizeColumn(size: number): string {
  const digits = String(size);
  return digits.length < 12 ? PADDING[12 - digits.length] + digits : digits;
}

/** Names cannot hold CR or LF on the wire: a listing line would split. */
function wireName(name: string): string {
  // Nearly every name has neither: two scans cost less than a regular expression run per line.
  return name.includes("\r") || name.includes("\n") ? name.replace(/[\r\n]/g, "?") : name;
}

/** An NLST line (RFC 959 §4.1.3: the name alone), as safe on the wire as the other formats. */
export const nlstLine = wireName;

/** ls's date column: `Mon DD HH:MM` for recent entries, `Mon DD  YYYY` for the others. */
function lsDate(d: Date, recent: boolean): string {
  return `${MONTHS[d.getUTCMonth()]} ${String(d.getUTCDate()).padStart(2, " ")} ${
    recent ? `${pad2(d.getUTCHours())}:${pad2(d.getUTCMinutes())}` : ` ${d.getUTCFullYear()}`
  }`;
}

/**
 * The `ls -l` line formatter of one listing (lines without CRLF), dated like ls: time for entries
 * of the last six months, year for older and for future ones (a client guesses the missing year
 * from its clock, so a future `HH:MM` date would read as a year early). Entries written together share their date
 * text, so the last one is kept (by minute, or by day for old entries) instead of rebuilt per line.
 */
export function listLineFormatter(now: number): (info: FileInfo) => string {
  let lastKey = NaN;
  let lastRecent = false;
  let lastDate = "";
  return (info) => {
    const time = info.mtime.getTime();
    const recent = time <= now && now - time < SIX_MONTHS_MS;
    const key = Math.floor(time / (recent ? MINUTE_MS : DAY_MS));
    if (key !== lastKey || recent !== lastRecent) {
      lastDate = lsDate(info.mtime, recent);
      lastKey = key;
      lastRecent = recent;
    }
    return `${modeString(info)} 1 ftp ftp ${sizeColumn(info.size)} ${lastDate} ${wireName(info.name)}`;
  };
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

/** The `perm` letters of a directory (`dir`) or of anything else. */
function permLetters(dir: boolean, p: PermFlags): string {
  let perm = "";
  if (dir) {
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

/** `unix.mode=0644;` for every `mode & 0o7777`. */
const UNIX_MODE_FACT: readonly string[] = Array.from({ length: 0o10000 }, (_, mode) => `unix.mode=0${mode.toString(8)};`);

const TYPE_FACT: Readonly<Record<EntryType, string>> = {
  file: "type=file;",
  dir: "type=dir;",
  // The spelling ProFTPD writes and clients (basic-ftp, lftp) read; RFC 3659's examples say slink.
  link: "type=OS.unix=symlink;",
  other: "type=OS.unix=other;",
};

/**
 * The MLSx fact-line formatter for one listing (`type=file;size=…; name`), with the facts the
 * client selected and the session's permissions, both decided once rather than per line. The
 * modify fact of the last second is kept, since entries written together share it.
 */
export function mlsxLineFormatter(perms: PermFlags, facts: ReadonlySet<string>): (info: FileInfo) => string {
  const [type, size, modify, perm, unixMode] = MLSX_FACTS.map((fact) => facts.has(fact));
  const dirPerm = `perm=${permLetters(true, perms)};`;
  const otherPerm = `perm=${permLetters(false, perms)};`;
  // A symlink listed as such leads outside the home or nowhere: it can be deleted or renamed (and a
  // dangling one written through, to create its target), not read: no RETR is promised that fails.
  const linkPerm = `perm=${permLetters(false, { ...perms, read: false })};`;
  let lastSecond = NaN;
  let lastModify = "";
  return (info) => {
    let line = "";
    if (type) line += TYPE_FACT[info.type];
    if (size && info.type !== "dir") line += `size=${info.size};`;
    if (modify) {
      const time = info.mtime.getTime();
      const second = Math.floor(time / 1000);
      if (second !== lastSecond) {
        lastModify = timeValSeconds(info.mtime);
        lastSecond = second;
      }
      line += `modify=${lastModify}${timeValFraction(time - second * 1000)};`;
    }
    if (perm) line += info.type === "dir" ? dirPerm : info.type === "link" ? linkPerm : otherPerm;
    if (unixMode && info.mode !== undefined) line += UNIX_MODE_FACT[info.mode & 0o7777];
    return `${line} ${wireName(info.name)}`;
  };
}
/** FEAT line for MLST: the facts we can emit, `*` marking those selected (RFC 3659 §7.8, §7.9). */
export function mlstFeat(selected: ReadonlySet<string>): string {
  return `MLST ${MLSX_FACTS.map((f) => `${f}${selected.has(f) ? "*" : ""};`).join("")}`;
}
