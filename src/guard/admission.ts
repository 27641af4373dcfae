/**
 * Admission of a new control connection, before any greeting (conventions §8), in a fixed order:
 * a banned address first (the cheapest refusal, and a banned client learns nothing else), then
 * the node-wide and per-IP limits, then registration. A connection rate limit, when it gets a
 * configuration key, goes between the limits and registration. The per-account session limit is
 * checked at login, once the account is known and its password verified.
 *
 * This module decides; the node does the socket work (421 on port 21, a bare close on the
 * implicit TLS port, before any handshake).
 */
import type { Lease, LimitKind } from "./connection-guard.js";
import type { NodeGuard } from "./node-guard.js";

export type RefusalReason = "banned" | LimitKind | "shutting-down" | "unavailable";

export type Admission = { admitted: true; lease: Lease } | { admitted: false; reason: RefusalReason; text: string };

/** The 421 texts: say what happened and that trying later helps; never more than the client needs. */
export function refusalText(reason: RefusalReason, max = 0): string {
  switch (reason) {
    case "banned":
      return "Your address is temporarily banned after repeated failed logins; try again later.";
    case "connections":
      return "Too many connections to this server; try again later.";
    case "connections-per-ip":
      return `Too many connections from your address (limit ${max}); close one and try again.`;
    case "sessions-per-account":
      return `Too many sessions for this account (limit ${max}); close one and try again.`;
    case "shutting-down":
      return "Server shutting down.";
    case "unavailable":
      return "Service temporarily unavailable; try again later.";
  }
}

/** Runs the admission checks for a connection from `ip`; when admitted, the caller holds the lease. */
export async function admitConnection(ip: string, guard: NodeGuard): Promise<Admission> {
  if (await guard.bans.isBanned(ip)) return { admitted: false, reason: "banned", text: refusalText("banned") };
  const registration = await guard.connections.registerConnection(ip);
  if (!registration.admitted) {
    return { admitted: false, reason: registration.limit, text: refusalText(registration.limit, registration.max) };
  }
  return registration;
}
