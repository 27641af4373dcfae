/** The account settings `user add` and `user set` take as flags (TLS overrides, quotas, bandwidth, sessions, permissions), parsed and described. */
import { Command, Option } from "commander";
import { PERMISSIONS, READ_ONLY_PERMISSIONS, TLS_POLICIES, type Account, type AccountPatch, type Permission, type TlsPolicy } from "../accounts/types.js";
import { CliError } from "./common.js";

/** Sizes on the command line (--quota-bytes, --bandwidth-*): binary multiples, 64K is 65,536 bytes. */
const SIZE_UNITS: Readonly<Record<string, number>> = { "": 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 };
const SIZE = /^(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?$/i;

export interface SettingsOptions {
  home?: string;
  permissions?: string;
  readOnly?: boolean;
  enable?: boolean;
  disable?: boolean;
  tlsPolicy?: string;
  tlsSessionReuse?: string;
  quotaBytes?: string;
  quotaFiles?: string;
  bandwidthUp?: string;
  bandwidthDown?: string;
  maxSessions?: string;
}

/** The settings `user add` and `user set` share: permissions, TLS overrides and limits. */
export function withAccountSettings(command: Command): Command {
  return command
    .addOption(permissionsOption())
    .addOption(new Option("--read-only", `grant only ${READ_ONLY_PERMISSIONS.join(",")}`).conflicts("permissions"))
    .addOption(tlsPolicyOption())
    .addOption(tlsSessionReuseOption())
    .addOption(quotaBytesOption())
    .addOption(quotaFilesOption())
    .addOption(bandwidthOption("up"))
    .addOption(bandwidthOption("down"))
    .addOption(maxSessionsOption());
}

function tlsPolicyOption(): Option {
  return new Option("--tls-policy <policy>", "this account's TLS requirement; `node` follows the node's tls.policy").choices([...TLS_POLICIES, "node"]);
}

function tlsSessionReuseOption(): Option {
  return new Option(
    "--tls-session-reuse <bool>",
    "whether this account's PROT P data connections must resume the control TLS session; `node` follows tls.requireSessionReuse",
  ).choices(["true", "false", "node"]);
}

/** The account's TLS overrides from --tls-policy / --tls-session-reuse (`node` resets to the node's setting). */
export function tlsSettings(options: SettingsOptions): AccountPatch {
  const patch: AccountPatch = {};
  if (options.tlsPolicy !== undefined) patch.tlsPolicy = options.tlsPolicy === "node" ? null : (options.tlsPolicy as TlsPolicy);
  if (options.tlsSessionReuse !== undefined) {
    patch.tlsSessionReuse = options.tlsSessionReuse === "node" ? null : options.tlsSessionReuse === "true";
  }
  return patch;
}

/**
 * A size such as `10G`, `500M`, `64K`, `1.5G`, `4096` (bytes; K/M/G/T are binary multiples, an
 * optional `B`/`iB` suffix is accepted) as whole bytes, or null for `none`.
 */
function parseSize(flag: string, text: string): number | null {
  if (text.trim().toLowerCase() === "none") return null;
  const match = SIZE.exec(text.trim());
  const value = match ? Math.floor(Number(match[1]) * SIZE_UNITS[match[2].toUpperCase()]) : NaN;
  if (!Number.isSafeInteger(value)) {
    throw new CliError(`${flag} ${JSON.stringify(text)}: expected a size such as 10G, 500M, 64K or 4096 (bytes), or none`);
  }
  return value;
}

/** A whole number of 0 or more, or null for `none`. */
function parseCount(flag: string, text: string): number | null {
  if (text.trim().toLowerCase() === "none") return null;
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(Number(text))) {
    throw new CliError(`${flag} ${JSON.stringify(text)}: expected a whole number, or none`);
  }
  return Number(text);
}

function quotaBytesOption(): Option {
  return new Option("--quota-bytes <size>", "storage quota, e.g. 10G, 500M, 64K (binary multiples) or bytes; none: unlimited");
}

function quotaFilesOption(): Option {
  return new Option("--quota-files <n>", "quota on the number of files and directories; none: unlimited");
}

function bandwidthOption(direction: "up" | "down"): Option {
  const what = direction === "up" ? "upload" : "download";
  return new Option(
    `--bandwidth-${direction} <size>`,
    `${what} limit in bytes per second shared by all the account's sessions, e.g. 1M, 512K; none (or 0): unlimited`,
  );
}

function maxSessionsOption(): Option {
  return new Option(
    "--max-sessions <n>",
    "logged-in sessions at once; none (or 0): no limit for this account; node: the node's limits.maxSessionsPerAccount",
  );
}

/** The account's limits from --quota-bytes, --quota-files, --bandwidth-up/-down, --max-sessions. */
export function limitSettings(options: SettingsOptions): AccountPatch {
  const patch: AccountPatch = {};
  if (options.quotaBytes !== undefined) patch.quotaBytes = parseSize("--quota-bytes", options.quotaBytes);
  if (options.quotaFiles !== undefined) patch.quotaFiles = parseCount("--quota-files", options.quotaFiles);
  // A rate of 0 would stop every transfer: like `none`, it means unlimited.
  if (options.bandwidthUp !== undefined) patch.bandwidthUp = parseSize("--bandwidth-up", options.bandwidthUp) || null;
  if (options.bandwidthDown !== undefined) patch.bandwidthDown = parseSize("--bandwidth-down", options.bandwidthDown) || null;
  if (options.maxSessions !== undefined) {
    const text = options.maxSessions.trim().toLowerCase();
    patch.maxSessions = text === "node" ? null : text === "none" ? 0 : parseCount("--max-sessions", options.maxSessions);
  }
  return patch;
}

function permissionsOption(): Option {
  return new Option("--permissions <list>", `comma-separated, from ${PERMISSIONS.join(",")} (default: all)`);
}

/** The permissions asked for by --permissions or --read-only; undefined when neither was given. */
export function requestedPermissions(options: SettingsOptions): Permission[] | undefined {
  if (options.readOnly) return READ_ONLY_PERMISSIONS;
  if (options.permissions === undefined) return undefined;
  const names = options.permissions
    .split(",")
    .map((p) => p.trim())
    .filter((p) => p !== "");
  if (names.length === 0) throw new CliError(`--permissions: give at least one of ${PERMISSIONS.join(",")}`);
  const unknown = names.filter((p) => !(PERMISSIONS as readonly string[]).includes(p));
  if (unknown.length > 0) {
    throw new CliError(`--permissions: unknown ${unknown.join(",")} (known: ${PERMISSIONS.join(",")})`);
  }
  return names as Permission[];
}

/** `, tls policy data, quota 10 GiB, bandwidth down 1 MiB/s` for the overrides and limits an account has; empty when it has none. */
export function describeLimits(account: Account): string {
  return settingsOf(account)
    .map((p) => `, ${p}`)
    .join("");
}

export function settingsOf(account: Account): string[] {
  const parts: string[] = [];
  if (account.tlsPolicy !== null) parts.push(`tls policy ${account.tlsPolicy}`);
  if (account.tlsSessionReuse !== null) parts.push(`tls session reuse ${account.tlsSessionReuse ? "required" : "not required"}`);
  if (account.quotaBytes !== null) parts.push(`quota ${formatSize(account.quotaBytes)}`);
  if (account.quotaFiles !== null) parts.push(`quota ${account.quotaFiles} files`);
  if (account.bandwidthUp !== null) parts.push(`bandwidth up ${formatSize(account.bandwidthUp)}/s`);
  if (account.bandwidthDown !== null) parts.push(`bandwidth down ${formatSize(account.bandwidthDown)}/s`);
  if (account.maxSessions !== null) parts.push(`max sessions ${account.maxSessions === 0 ? "unlimited" : account.maxSessions}`);
  return parts;
}

/** The tracked quota usage, rounded for reading (1.7 MiB, 2 files); `-` while unmeasured (no quota, or to be measured when next needed). */
export function usageOf(account: Account): string {
  if (!account.usage) return "-";
  const { bytes, files } = account.usage;
  return `${formatSize(bytes, true)}, ${files} ${files === 1 ? "file" : "files"}`;
}

/** `10 GiB`; a size that is no whole multiple stays in bytes (a setting, said exactly), unless `round` (a usage: `1.7 MiB`). */
function formatSize(bytes: number, round = false): string {
  for (const unit of ["T", "G", "M", "K"]) {
    const size = SIZE_UNITS[unit];
    if (bytes >= size && (round || bytes % size === 0)) return `${+(bytes / size).toFixed(1)} ${unit}iB`;
  }
  return `${bytes} bytes`;
}
