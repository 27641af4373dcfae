/**
 * Whether the client has closed its side of the control connection, asked of the kernel: it knows
 * of the FIN before Node has read it. A killed client's sockets all close cleanly, its data
 * connection's EOF often handled first: an upload about to be committed asks, so that a truncated
 * file never replaces the previous version (its 226 could not be delivered anyway).
 */
import type { Socket } from "node:net";
import { nativeAddon } from "../native.js";

const addon = nativeAddon<{ peerClosed?(socketFd: number): number }>();

/** The descriptor of a plain TCP socket (before any TLS goes on top of it), or null. */
export function controlFd(socket: Socket): number | null {
  const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
  return typeof fd === "number" && fd >= 0 ? fd : null;
}

/** Whether {@link peerClosed} can tell at all (Linux, with the native addon). */
export const peerClosedKnown = typeof addon?.peerClosed === "function";

/** True when the kernel says the peer has closed (or the connection is gone); false where it cannot tell. */
export function peerClosed(fd: number | null): boolean {
  return fd !== null && typeof addon?.peerClosed === "function" && addon.peerClosed(fd) === 1;
}
