/** Address helpers for the data channel: one canonical spelling of an IP per family. */
import { isIPv4, isIPv6, SocketAddress } from "node:net";

/**
 * Canonical form of a socket address: IPv4-mapped IPv6 (`::ffff:1.2.3.4`, what a dual-stack
 * listener reports for IPv4 peers) becomes plain IPv4, and IPv6 takes its one RFC 5952 spelling
 * (`0:0:0:0:0:0:0:1` is `::1`, as an EPRT may write it), so comparisons and PASV replies agree.
 */
export function canonicalIp(address: string | undefined): string {
  if (!address) return "";
  const lower = isIPv6(address) ? shortIpv6(address) : address;
  if (lower.startsWith("::ffff:") && isIPv4(lower.slice(7))) return lower.slice(7);
  return lower;
}

/** RFC 5952's spelling of an IPv6 address, its zone (`%eth0`) kept as it was. */
function shortIpv6(address: string): string {
  const zone = address.indexOf("%");
  const bare = zone < 0 ? address : address.slice(0, zone);
  return new SocketAddress({ address: bare, family: "ipv6" }).address + (zone < 0 ? "" : address.slice(zone));
}

/** A network in CIDR notation, as BlockList.addSubnet takes it. */
export interface Network {
  address: string;
  prefix: number;
  family: "ipv4" | "ipv6";
}

/** Parses `10.0.0.0/8` or `fd00::/8`; null unless the address is one and the prefix fits its family. */
export function parseNetwork(text: string): Network | null {
  const slash = text.indexOf("/");
  if (slash < 0) return null;
  const address = text.slice(0, slash);
  const bits = text.slice(slash + 1);
  const family = isIPv4(address) ? "ipv4" : isIPv6(address) ? "ipv6" : null;
  if (family === null || !/^\d{1,3}$/.test(bits)) return null;
  const prefix = Number(bits);
  return prefix <= (family === "ipv4" ? 32 : 128) ? { address, prefix, family } : null;
}

/** The `h1,h2,h3,h4,p1,p2` of a 227 reply (RFC 959 §4.1.2, PASV). */
export function formatPasvAddress(ipv4: string, port: number): string {
  return `${ipv4.split(".").join(",")},${port >> 8},${port & 0xff}`;
}

/** Parses a PORT argument; null when malformed. */
export function parsePortArgument(arg: string): { host: string; port: number } | null {
  const parts = arg.trim().split(",");
  if (parts.length !== 6 || !parts.every((p) => /^\d{1,3}$/.test(p))) return null;
  const n = parts.map(Number);
  if (n.some((v) => v > 255)) return null;
  return { host: n.slice(0, 4).join("."), port: n[4] * 256 + n[5] };
}

/** Parses an EPRT argument `|af|addr|port|` (RFC 2428 §2); null when malformed. */
export function parseEprtArgument(arg: string): { family: 4 | 6; host: string; port: number } | null {
  const delim = arg[0];
  if (!delim || delim.charCodeAt(0) < 33 || delim.charCodeAt(0) > 126) return null;
  const parts = arg.split(delim);
  if (parts.length !== 5 || parts[0] !== "" || parts[4] !== "") return null;
  const [, af, host, portText] = parts;
  if (af !== "1" && af !== "2") return null;
  // The address must be one of the named family (RFC 2428 §2): anything else is a syntax error.
  if (af === "1" ? !isIPv4(host) : !isIPv6(host)) return null;
  if (!/^\d{1,5}$/.test(portText)) return null;
  const port = Number(portText);
  if (port < 1 || port > 65535) return null;
  return { family: af === "1" ? 4 : 6, host: canonicalIp(host), port };
}
