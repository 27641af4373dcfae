/**
 * Reply codes (RFC 959 §4.2, with the later RFCs that added codes) and the one place that
 * formats a reply for the wire.
 */

export const Reply = {
  RestartMarker: 110,
  FileStatusOk: 150, // about to open data connection
  CommandOk: 200,
  Superfluous: 202,
  SystemStatus: 211,
  DirectoryStatus: 212,
  FileStatus: 213,
  Help: 214,
  SystemType: 215,
  ServiceReady: 220,
  ClosingControl: 221,
  DataOpenNoTransfer: 225,
  ClosingData: 226,
  EnteringPassive: 227,
  EnteringExtendedPassive: 229, // RFC 2428
  LoggedIn: 230,
  AuthOk: 234, // RFC 2228: security data exchange complete
  FileActionOk: 250,
  PathCreated: 257,
  NeedPassword: 331,
  NeedAccount: 332,
  PendingFurtherInfo: 350,
  ServiceNotAvailable: 421,
  CantOpenData: 425,
  TransferAborted: 426,
  FileUnavailableBusy: 450,
  LocalError: 451,
  InsufficientStorage: 452,
  SyntaxError: 500,
  SyntaxErrorArgs: 501,
  NotImplemented: 502,
  BadSequence: 503,
  ParamNotImplemented: 504,
  NoProtectedDataChannel: 521, // RFC 4217 §9: data connection cannot be opened with this PROT
  NetworkProtocolNotSupported: 522, // RFC 2428; also RFC 4217's "TLS negotiation failed" on data
  PolicyDenied: 534, // RFC 2228
  ProtectionNotSupported: 536, // RFC 2228
  NotLoggedIn: 530,
  FileUnavailable: 550,
  PageTypeUnknown: 551,
  ExceededStorage: 552,
  FileNameNotAllowed: 553,
} as const;

export type ReplyCode = (typeof Reply)[keyof typeof Reply] | number;

/**
 * Keeps client-influenced text (paths, arguments, names on disk) from breaking the reply framing
 * (CR, LF) or reaching the client's terminal as control sequences (ESC, BEL, NUL…).
 */
export function sanitize(text: string): string {
  return text.replace(/[\r\n]/g, " ").replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g, "?");
}

/**
 * Formats a reply. Several lines become a multi-line reply (RFC 959 §4.2): `code-first`, then
 * the inner lines, then `code last`; an inner line that starts with digits is indented so no
 * client mistakes it for the final line.
 */
export function formatReply(code: ReplyCode, text: string | readonly string[]): string {
  const lines = typeof text === "string" ? [text] : text;
  if (lines.length <= 1) return `${code} ${sanitize(lines[0] ?? "")}\r\n`;
  let out = formatFirstLine(code, lines[0]);
  for (let i = 1; i < lines.length - 1; i++) out += formatInnerLine(lines[i]);
  return out + `${code} ${sanitize(lines[lines.length - 1])}\r\n`;
}

/** The opening `code-text` line of a multi-line reply. */
export function formatFirstLine(code: ReplyCode, text: string): string {
  return `${code}-${sanitize(text)}\r\n`;
}

/** An inner line of a multi-line reply: one that starts with a digit is indented, so no client takes it for the last. */
export function formatInnerLine(text: string): string {
  const line = sanitize(text);
  return /^\d/.test(line) ? ` ${line}\r\n` : `${line}\r\n`;
}

/** Quotes a path for a 257 reply: enclosed in double quotes, inner quotes doubled (RFC 959 Appendix II). */
export function quotePath(path: string): string {
  return `"${path.replace(/"/g, '""')}"`;
}
